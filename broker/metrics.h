/*
 * metrics.h - the broker's Prometheus metrics (docs/operations.md) and
 * their listener, [broker] metrics_listen.
 *
 * The counters count from the start, whether or not the listener is on
 * (before brk_metrics_init nothing is counted: tests and fuzz targets that
 * link the broker's library never call it).  Every function may be called
 * from any thread.
 */
#ifndef BROKER_METRICS_H
#define BROKER_METRICS_H

#include <stddef.h>

struct brk;
struct brk_call;

/* The registry, the store snapshot's timer and the listener on [broker]
 * metrics_listen (nothing when unset).  0, or -1 with err set (the address
 * cannot be bound). */
int brk_metrics_init(struct brk *b, char *err, size_t errlen);
/* Stop listening and refreshing; returns once a refresh in flight is done
 * (it runs the loop meanwhile). */
void brk_metrics_stop(struct brk *b);

/* A call's answer is known (api.c, on the loop thread): logins, launches,
 * tickets redeemed and requests by route are derived from its route and
 * status; a launch's latency from its request's start. */
void brk_metrics_call_done(const struct brk_call *c);
/* One PAM conversation took s seconds (the privileged process's answer). */
void brk_metrics_pam_seconds(double s);
/* One launch took s seconds, from the request to its answer. */
void brk_metrics_launch_seconds(double s);
/* The store failed a call (-EIO, -EAGAIN, -ENOMEM: store.c). */
void brk_metrics_store_error(void);

#endif
