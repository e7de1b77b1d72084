/*
 * auth.h - the network side's client of the PAM process (authd.c).
 *
 * Requests go over the socketpair as fixed-size messages and are answered in
 * turn; at most max_pending wait at once (the bounded PAM queue), so a flood
 * of logins is refused quickly instead of queueing without end.
 */
#ifndef BROKER_AUTH_H
#define BROKER_AUTH_H

#include <uv.h>

#include "portico/ipc.h"

/* result: PT_AUTH_OK, PT_AUTH_DENIED or PT_AUTH_ERROR; user: the name PAM
 * settled on (only meaningful with PT_AUTH_OK). */
typedef void (*brk_auth_cb)(void *arg, int result, const char *user);

struct brk_auth;

/* fd: our end of the socketpair.  The process exits (fatal) when the PAM
 * process goes away or sends a malformed message: the two halves live and
 * die together. */
struct brk_auth *brk_auth_new(uv_loop_t *loop, int fd, int max_pending);
void brk_auth_free(struct brk_auth *a);

/* Queue one authentication.  -EBUSY when max_pending are waiting, -EINVAL
 * when a field does not fit its message slot. */
int brk_auth_start(struct brk_auth *a, const char *service, const char *user, const char *password,
		   const char *rhost, brk_auth_cb cb, void *arg);

#endif
