/* sweep.c - what happens by the clock: session timeouts, expired tickets
 * and tokens deleted, and starts that waited too long for their host. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker.h"
#include "control.h"
#include "hostq.h"
#include "portico/log.h"

int64_t brk_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

struct sweep {
	uv_work_t work;
	struct brk *b;
	struct brk_session *ended;
	const char **reasons;
	size_t n;
	int rc;
	char why[512]; /* the store's words, from the thread that failed */
};

/* The loop thread's: whether the last sweep failed, so that a store that
 * stays down (a database restarting) is logged once, and its return. */
static int failing;

static void sweep_work(uv_work_t *w)
{
	struct sweep *s = w->data;
	int64_t now = brk_now_ms();

	s->rc = brk_store_session_expired(s->b->store, now, &s->ended, &s->reasons, &s->n);
	if (s->rc)
		snprintf(s->why, sizeof(s->why), "%s", brk_store_error(s->b->store));
	/* Every broker sweeps: the one whose end changed the row stops the
	 * session on its host and logs it; the others found it ended. */
	for (size_t i = 0; s->rc == 0 && i < s->n; i++) {
		int ended = 0;
		brk_store_session_end(s->b->store, s->ended[i].id, s->reasons[i], now, &ended);
		if (ended) {
			brk_host_stop(s->b, &s->ended[i], s->reasons[i]);
			brk_control_add(s->b, s->ended[i].id, "timeout", "%s", s->reasons[i]);
		} else
			s->reasons[i] = NULL;
	}
	brk_store_purge(s->b->store, now);
	/* Alive: the sessions this broker is starting are its own still. */
	brk_store_broker_beat(s->b->store, s->b->id, now);
}

static void sweep_done(uv_work_t *w, int status)
{
	struct sweep *s = w->data;

	for (size_t i = 0; s->rc == 0 && i < s->n; i++)
		if (s->reasons[i])
			pt_log_info("session %lld of %s in pool %s ended: %s", (long long)s->ended[i].id,
			    s->ended[i].user, s->ended[i].pool, s->reasons[i]);
	if (s->rc && !failing)
		pt_log_warnx("sweep: %s (timeouts wait until the store answers)", s->why);
	else if (!s->rc && failing)
		pt_log_info("sweep: the store answers again");
	failing = s->rc != 0;
	s->b->sweeping = 0;
	free(s->ended);
	free(s->reasons);
	free(s);
}

static void on_sweep(uv_timer_t *t)
{
	struct brk *b = t->data;
	struct sweep *s;

	/* Starts that waited too long for their host: answered now. */
	brk_hostq_expire(b->hostq);
	if (b->sweeping)
		return; /* the last one is still running */
	s = calloc(1, sizeof(*s));
	if (!s)
		return;
	s->b = b;
	s->work.data = s;
	b->sweeping = 1;
	if (uv_queue_work(b->loop, &s->work, sweep_work, sweep_done) != 0) {
		b->sweeping = 0;
		free(s);
	}
}

void brk_sweep_start(struct brk *b, uint64_t every_ms)
{
	unsigned char r[4] = { 0 };
	char host[64] = "broker";

	/* A name for this run: a restart is another broker (what the last
	 * run was starting is no longer in anybody's hands). */
	gethostname(host, sizeof(host) - 1);
	RAND_bytes(r, sizeof(r));
	snprintf(b->id, sizeof(b->id), "%.63s:%ld:%02x%02x%02x%02x", host, (long)getpid(), r[0],
		 r[1], r[2], r[3]);
	b->started_ms = brk_now_ms();
	/* Seen before it serves: another broker must not take the first
	 * sessions this one makes for a dead broker's. */
	if (brk_store_broker_beat(b->store, b->id, b->started_ms))
		pt_log_warnx("sweep: %s", brk_store_error(b->store));
	uv_timer_init(b->loop, &b->sweep);
	b->sweep.data = b;
	uv_timer_start(&b->sweep, on_sweep, every_ms, every_ms);
}
