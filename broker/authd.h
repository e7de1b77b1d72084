/*
 * authd.h - the broker's PAM process.
 *
 * It stays root and does PAM and nothing else: no network, no libuv, no
 * OpenSSL.  It answers each of the network side's struct pt_ipc_auth_req
 * with a struct pt_ipc_auth_rep (include/portico/ipc.h), maybe after
 * challenges (struct pt_ipc_auth_chal) that the network side answers or
 * cancels; requests run side by side, each in a child of its own.
 */
#ifndef BROKER_AUTHD_H
#define BROKER_AUTHD_H

/* Serve requests on fd until the network side closes it (returns 0, once
 * the requests it sent before are answered, their questions cancelled) or
 * sends a malformed message (logs it and returns 1, its children killed;
 * the caller then kills the network side, which is broken or compromised).
 * Each request gets its own child and PAM handle: pam_authenticate, then
 * pam_acct_mgmt, and the reply carries the name PAM settled on (PAM_USER).
 * An answer or cancel for a request that is not running is ignored (it
 * crossed the reply).  PAM's failure delay is reported in the reply, never
 * slept here. */
int brk_authd_run(int fd);

/* The same, but a request for any PAM service other than `service` is
 * malformed too.  Pinning the service in the root process means a
 * compromised network side cannot ask for a service such as su, whose
 * pam_rootok would accept it without a password because we are root.
 * service NULL: any service (brk_authd_run). */
int brk_authd_run_service(int fd, const char *service);

/* In the child authd forks for one request: run req's PAM conversation,
 * sending challenges (struct pt_ipc_auth_chal) on fd and waiting for their
 * answers there, then the reply.  The first hidden prompt is answered with
 * the password, a login prompt with the user name; any other prompt is a
 * challenge.  Returns the child's exit status (authd_pam.c). */
struct pt_ipc_auth_req;
int brk_authd_pam(int fd, const struct pt_ipc_auth_req *req);

/* Once, in the root process before its first request: one pam_start and
 * pam_end of service, so that what the PAM library sets up for a process
 * is done here once, not in every child at the same time (pam_wrapper,
 * which the tests run under, makes a directory on a process's first
 * pam_start, and children racing to make theirs collide), and a service
 * PAM cannot start is said at start.  Authenticates nobody. */
void brk_authd_prepare(const char *service);
/* In a child: take (1) or give back (0) the right to call pam_start, one
 * child at a time.  What a PAM library sets up on a process's first
 * pam_start (pam_wrapper, which the tests run under: a directory of its
 * own, picked among few names) must not race between children; their
 * conversations still run side by side.  Nothing without
 * brk_authd_prepare. */
void brk_authd_start_lock(int take);

#endif
