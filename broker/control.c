/*
 * control.c - what must happen to a session's connection at once
 * (docs/api.md, "Gateways": GET /gateway/control).
 *
 * Whoever acts on a session (an admin's disconnect, logoff or message, a
 * user's logoff, a timeout, a host drained now) adds a row to the store's
 * control table, on whichever broker the request reached.  Every gateway
 * long-polls one broker for the rows after the last it saw.  A broker holds
 * those calls here, on the loop, and while any wait it reads the store for
 * newer rows every POLL_MS: the store is shared, so a row another broker
 * wrote reaches this broker's gateways too, within POLL_MS and a round trip.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "control.h"
#include "store_impl.h"
#include "portico/log.h"

#define POLL_MS	     200
#define WAIT_MAX_S   60 /* the longest a gateway may ask to wait */
#define WAIT_DEFAULT 25
#define WAITERS_MAX  1024 /* gateways, not users: a few per broker */

struct waiter {
	struct brk_call *c;
	int64_t after;	  /* -1: "from now", answered at once with the last seq */
	uint64_t until;	  /* uv_now when it is answered with nothing */
	struct waiter *next;
};

struct brk_longpoll {
	struct brk *b;
	uv_timer_t timer;
	uv_work_t work;
	struct waiter *head;
	int nwaiters;
	int querying; /* a read of the store is on the thread pool */
	int stopping;
	/* the read's question and answer */
	int64_t after, last;
	struct brk_control *rows;
	size_t n;
	int rc;
	char why[512];
};

static void answer(struct brk_longpoll *lp, struct waiter *w, int64_t last)
{
	json_t *a = json_array();
	int64_t next = last;

	/* after=-1: where "now" is, nothing before it. */
	for (size_t i = 0; a && w->after >= 0 && i < lp->n; i++) {
		const struct brk_control *r = &lp->rows[i];
		if (r->seq <= w->after)
			continue;
		json_array_append_new(a, json_pack("{s:I,s:I,s:s,s:s,s:I}", "seq", (json_int_t)r->seq,
						   "session_id", (json_int_t)r->session_id,
						   "action", r->action, "text", r->text, "at_ms",
						   (json_int_t)r->at_ms));
	}
	/* A full page: the rest come with the next call. */
	if (lp->n == BRK_CONTROL_MAX && w->after >= 0)
		next = lp->rows[lp->n - 1].seq > w->after ? lp->rows[lp->n - 1].seq : w->after;
	brk_call_ok(w->c, 200, json_pack("{s:o,s:I}", "control", a ? a : json_array(), "next",
					 (json_int_t)next));
	brk_call_finish(w->c);
	lp->nwaiters--;
	free(w);
}

static void query_work(uv_work_t *work)
{
	struct brk_longpoll *lp = work->data;

	lp->rc = brk_store_control_since(lp->b->store, lp->after, &lp->rows, &lp->n, &lp->last);
	if (lp->rc)
		snprintf(lp->why, sizeof(lp->why), "%s", brk_store_error(lp->b->store));
}

static void query_done(uv_work_t *work, int status)
{
	struct brk_longpoll *lp = work->data;
	uint64_t now = uv_now(lp->b->loop);
	struct waiter **pp = &lp->head, *w;

	lp->querying = 0;
	if (status < 0 && !lp->rc)
		lp->rc = -EAGAIN;
	while ((w = *pp) != NULL) {
		/* after > last: a store restored from an older copy; the gateway
		 * starts again from last.  after < last: rows. */
		int ready = lp->rc || lp->stopping || now >= w->until || w->after != lp->last;

		if (!ready) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		if (lp->rc) {
			brk_call_store_failed(w->c, lp->rc, lp->why);
			brk_call_finish(w->c);
			lp->nwaiters--;
			free(w);
		} else {
			answer(lp, w, lp->last);
		}
	}
	free(lp->rows);
	lp->rows = NULL;
	lp->n = 0;
}

/* Read the store for every waiter at once: from the oldest seq any has. */
static void query(struct brk_longpoll *lp)
{
	int64_t after = INT64_MAX;

	if (lp->querying || !lp->head)
		return;
	for (struct waiter *w = lp->head; w; w = w->next)
		after = w->after < after ? (w->after < 0 ? 0 : w->after) : after;
	lp->after = after;
	lp->rc = 0;
	lp->work.data = lp;
	lp->querying = 1;
	if (uv_queue_work(lp->b->loop, &lp->work, query_work, query_done) != 0) {
		lp->querying = 0;
		lp->rc = -EAGAIN;
		snprintf(lp->why, sizeof(lp->why), "the broker is stopping");
		query_done(&lp->work, 0);
	}
}

static void on_tick(uv_timer_t *t)
{
	query(t->data);
}

struct brk_longpoll *brk_longpoll_new(struct brk *b)
{
	struct brk_longpoll *lp = calloc(1, sizeof(*lp));

	if (!lp)
		return NULL;
	lp->b = b;
	uv_timer_init(b->loop, &lp->timer);
	lp->timer.data = lp;
	return lp;
}

void brk_longpoll_stop(struct brk_longpoll *lp)
{
	if (!lp)
		return;
	lp->stopping = 1;
	uv_timer_stop(&lp->timer);
	/* Answered now, with nothing (or when the read under way comes back). */
	if (!lp->querying) {
		for (struct waiter *w; (w = lp->head) != NULL;) {
			lp->head = w->next;
			answer(lp, w, w->after < 0 ? 0 : w->after);
		}
	}
}

int brk_longpoll_busy(const struct brk_longpoll *lp)
{
	return lp && lp->querying;
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

void brk_longpoll_free(struct brk_longpoll *lp)
{
	if (lp)
		uv_close((uv_handle_t *)&lp->timer, on_timer_closed);
}

/* GET /gateway/control?after=SEQ&wait=SECONDS, on the loop. */
void brk_gateway_control(struct brk_call *c)
{
	struct brk_longpoll *lp = c->b->longpoll;
	char v[32], *end;
	long long after = -1, wait = WAIT_DEFAULT;
	struct waiter *w;

	if (pt_http_query(c->req, "after", v, sizeof(v)) == 0) {
		errno = 0;
		after = strtoll(v, &end, 10);
		if (errno || end == v || *end || after < -1) {
			brk_call_fail(c, -EINVAL, "bad_request", "after: a sequence number or -1");
			brk_call_finish(c);
			return;
		}
	}
	if (pt_http_query(c->req, "wait", v, sizeof(v)) == 0) {
		errno = 0;
		wait = strtoll(v, &end, 10);
		if (errno || end == v || *end || wait < 0 || wait > WAIT_MAX_S) {
			brk_call_fail(c, -EINVAL, "bad_request", "wait: 0 to %d seconds", WAIT_MAX_S);
			brk_call_finish(c);
			return;
		}
	}
	if (!lp || lp->stopping || lp->nwaiters >= WAITERS_MAX) {
		brk_call_fail(c, -EAGAIN, "busy", "too many gateways waiting; try again");
		brk_call_finish(c);
		return;
	}
	if (!(w = calloc(1, sizeof(*w)))) {
		brk_call_fail(c, -ENOMEM, "busy", "out of memory");
		brk_call_finish(c);
		return;
	}
	w->c = c;
	w->after = after;
	w->until = uv_now(c->b->loop) + (uint64_t)wait * 1000;
	w->next = lp->head;
	lp->head = w;
	lp->nwaiters++;
	if (!uv_is_active((uv_handle_t *)&lp->timer))
		uv_timer_start(&lp->timer, on_tick, POLL_MS, POLL_MS);
	query(lp);
}

int brk_control_add(struct brk *b, int64_t session_id, const char *action, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	rc = brk_store_control_add(b->store, session_id, action, text, brk_now_ms());
	if (rc)
		pt_log_warnx("session %lld: the gateway cannot be told to %s it at once: %s",
			     (long long)session_id, action, brk_store_error(b->store));
	return rc;
}
