/* privsep.c - see include/portico/privsep.h */
#include "portico/privsep.h"

#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* The parent's pid, in the child only: getppid() after the parent's death
 * is whoever reaps orphans (1, or a subreaper such as systemd --user), so
 * "the parent is gone" is "getppid() is no longer this". */
static pid_t privsep_parent;

static void privsep_watch(void)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != privsep_parent)
		_exit(1);
}

pid_t pt_privsep_fork(int *fd)
{
	pid_t parent = getpid(), pid;
	int sv[2], e;

	*fd = -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1)
		return -errno;
	pid = fork();
	if (pid == -1) {
		e = errno;
		close(sv[0]);
		close(sv[1]);
		return -e;
	}
	if (pid == 0) {
		close(sv[0]);
		*fd = sv[1];
		privsep_parent = parent;
		privsep_watch();
		return 0;
	}
	close(sv[1]);
	*fd = sv[0];
	return pid;
}

void pt_privsep_rearm(void)
{
	if (privsep_parent > 0)
		privsep_watch();
}
