/*
 * ipc-inject - send one message of our choosing down a running daemon's
 * privilege-separation socketpair, as a compromised network side would.
 *
 *   ipc-inject PID short|type|unterminated|valid
 *
 * PID is the network side.  Its end of the SOCK_SEQPACKET socketpair is
 * copied out of it with pidfd_getfd(2) (needs ptrace rights over it: root in
 * the tests), so the daemon under test runs unmodified.
 *   short         a datagram shorter than any message
 *   type          the right size, an unknown type
 *   unterminated  an auth request whose user name has no NUL
 *   valid         a well-formed auth request (the control case)
 * Exit 0 when the message was sent.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "portico/ipc.h"

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int pidfd_getfd_(int pidfd, int fd)
{
	return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
}

/* The target's AF_UNIX SOCK_SEQPACKET descriptor, copied into us. */
static int grab(pid_t pid)
{
	char dir[64];
	struct dirent *e;
	DIR *d;
	int pidfd = pidfd_open_(pid), found = -1;

	if (pidfd < 0) {
		perror("pidfd_open");
		return -1;
	}
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d) {
		perror(dir);
		return -1;
	}
	while (found < 0 && (e = readdir(d)) != NULL) {
		int type = 0, domain = 0, fd;
		socklen_t l = sizeof(int);
		if (e->d_name[0] == '.')
			continue;
		fd = pidfd_getfd_(pidfd, atoi(e->d_name));
		if (fd < 0)
			continue;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l) == 0 &&
		    type == SOCK_SEQPACKET && domain == AF_UNIX)
			found = fd;
		else
			close(fd);
	}
	closedir(d);
	close(pidfd);
	return found;
}

int main(int argc, char **argv)
{
	struct pt_ipc_auth_req req;
	size_t len = sizeof(req);
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: ipc-inject PID short|type|unterminated|valid\n");
		return 2;
	}
	memset(&req, 0, sizeof(req));
	req.type = PT_IPC_AUTH_REQ;
	req.id = 1;
	snprintf(req.service, sizeof(req.service), "portico");
	snprintf(req.user, sizeof(req.user), "alice");
	snprintf(req.password, sizeof(req.password), "wrong");
	snprintf(req.rhost, sizeof(req.rhost), "192.0.2.1");
	if (!strcmp(argv[2], "short"))
		len = 3;
	else if (!strcmp(argv[2], "type"))
		req.type = 0x12345678;
	else if (!strcmp(argv[2], "unterminated"))
		memset(req.user, 'a', sizeof(req.user));
	else if (strcmp(argv[2], "valid")) {
		fprintf(stderr, "ipc-inject: unknown message kind '%s'\n", argv[2]);
		return 2;
	}
	fd = grab((pid_t)atoi(argv[1]));
	if (fd < 0) {
		fprintf(stderr, "ipc-inject: no SOCK_SEQPACKET socket in process %s\n", argv[1]);
		return 1;
	}
	if (send(fd, &req, len, 0) != (ssize_t)len) {
		perror("send");
		return 1;
	}
	return 0;
}
