/*
 * auth.h - the network side's client of the PAM process (authd.c).
 *
 * Requests go over the socketpair as fixed-size messages.  At most
 * max_pending are with the PAM process at once (each is a process there);
 * up to max_waiting more wait here, oldest first, for one of them to end,
 * so a login storm is slowed, not refused, and a flood beyond both is
 * refused quickly instead of queueing without end.  No new one is taken
 * from an address that has a quarter of max_pending waiting for their
 * users' answers.
 *
 * A request may be challenged: PAM asks for more than the password (a
 * one-time code).  The challenge gets an id of 256 random bits, usable once,
 * from the address that made the request, for BRK_AUTH_CHALLENGE_MS; the
 * caller answers it (brk_auth_take, then brk_auth_answer) or cancels it.
 * One left alone past its time is cancelled here, and the request then ends
 * with PT_AUTH_DENIED like any other.
 */
#ifndef BROKER_AUTH_H
#define BROKER_AUTH_H

#include <stdint.h>
#include <uv.h>

#include "portico/ipc.h"
#include "portico/ticket.h"

/* How long a challenge waits for its answer. */
#define BRK_AUTH_CHALLENGE_MS PT_AUTH_ANSWER_MS
/* The form of a challenge's id: a ticket's (portico/ticket.h). */
#define BRK_AUTH_CHALLENGE_LEN PT_TICKET_LEN

/* result: PT_AUTH_OK, PT_AUTH_DENIED or PT_AUTH_ERROR; user: the name PAM
 * settled on (only meaningful with PT_AUTH_OK).  Called once per request,
 * at its end. */
typedef void (*brk_auth_cb)(void *arg, int result, const char *user);
/* PAM asks request arg for more: prompt (PAM's words, printable), echo (the
 * answer may be shown).  challenge is the id to hand to the user.  The
 * request stays pending until answered, cancelled or expired. */
typedef void (*brk_auth_challenge_cb)(void *arg, const char *challenge, const char *prompt,
				      int echo);

struct brk_auth;

/* fd: our end of the socketpair.  The process exits (fatal) when the PAM
 * process goes away or sends a malformed message: the two halves live and
 * die together. */
struct brk_auth *brk_auth_new(uv_loop_t *loop, int fd, int max_pending, int max_waiting);
/* Requests still waiting for a user's answer end with PT_AUTH_ERROR (their
 * callbacks run); none may wait for PAM any more (the caller waited). */
void brk_auth_free(struct brk_auth *a);

/* Queue one authentication.  -EBUSY when max_pending are with PAM and
 * max_waiting wait for them (or a quarter of max_pending wait for answers
 * from rhost), -EINVAL when a field does not fit its
 * message slot.  on_challenge may be NULL only for stacks that never ask
 * more (then a challenge is cancelled at once). */
int brk_auth_start(struct brk_auth *a, const char *service, const char *user, const char *password,
		   const char *rhost, brk_auth_cb cb, brk_auth_challenge_cb on_challenge,
		   void *arg);

/* The request a challenge id belongs to, taken from rhost: its arg, and the
 * challenge is spent (single use).  NULL for an unknown, spent or expired
 * id, and for one from another address (that one is cancelled: its id has
 * leaked).  Answer it soon with brk_auth_answer (its time still runs). */
void *brk_auth_take(struct brk_auth *a, const char *challenge, const char *rhost);
/* Send the answer to the challenge taken for arg.  0, or -ETIMEDOUT when it
 * expired meanwhile (the request ends as cancelled). */
int brk_auth_answer(struct brk_auth *a, void *arg, const char *answer);
/* Nobody will answer arg's challenge: the request ends (PT_AUTH_DENIED). */
void brk_auth_cancel(struct brk_auth *a, void *arg);

#endif
