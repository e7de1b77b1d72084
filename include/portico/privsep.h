/*
 * privsep.h - starting a privilege-separated pair of processes (the
 * OpenSSH way): the parent keeps root and does one small job on checked,
 * fixed-size messages (portico/ipc.h); the child drops to an unprivileged
 * user and faces the network.  portico-broker (PAM) and portico-sessiond
 * (sessions) both start this way.
 */
#ifndef PORTICO_PRIVSEP_H
#define PORTICO_PRIVSEP_H

#include <sys/types.h>

/* socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC), then fork.  Like
 * fork(), returns the child's pid in the parent and 0 in the child; *fd is
 * the caller's own end of the pair (the other end is closed in each
 * process).  The child gets SIGKILL when the parent dies
 * (PR_SET_PDEATHSIG), and ends at once (_exit(1)) if the parent died
 * before that was set.  On failure nothing is left open and a negative
 * errno is returned (in the one process there is). */
pid_t pt_privsep_fork(int *fd);

/* In the child, after it changed its user or group: the kernel clears the
 * parent-death signal on any change of credentials (prctl(2)), so set it
 * again, and end at once if the parent has gone in between.  Does nothing
 * in a process that pt_privsep_fork did not start. */
void pt_privsep_rearm(void);

#endif
