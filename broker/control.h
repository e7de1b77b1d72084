/*
 * control.h - what gateways must do to a session's connection at once:
 * rows written to the store's control table, and the gateways' long-poll
 * that reads them (control.c, docs/api.md "Gateways").
 */
#ifndef BROKER_CONTROL_H
#define BROKER_CONTROL_H

#include <stdint.h>

#include "broker.h"
#include "portico/log.h"

struct brk_call;
struct brk_longpoll;

/* The long-polls this broker holds: made at start, on the loop. */
struct brk_longpoll *brk_longpoll_new(struct brk *b);
/* Stopping: every call held is answered (with nothing) now. */
void brk_longpoll_stop(struct brk_longpoll *lp);
/* A read of the store is under way: stopping waits for it. */
int brk_longpoll_busy(const struct brk_longpoll *lp);
void brk_longpoll_free(struct brk_longpoll *lp); /* NULL-safe; after stop */

/* GET /gateway/control (a BRK_ROUTE_LOOP handler). */
void brk_gateway_control(struct brk_call *c);

/* Tell the gateways to act on session_id's connection: action is
 * disconnect, logoff, timeout, drain or message; the text says why (it is
 * logged by the gateway) or is the message.  Blocking (the store): on the
 * thread pool.  A failure is logged; 0 or the store's error. */
int brk_control_add(struct brk *b, int64_t session_id, const char *action, const char *fmt, ...)
	PT_PRINTF(4, 5);

#endif
