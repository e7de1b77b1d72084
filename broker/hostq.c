/* hostq.c - see hostq.h.  One lock guards the queues; threads are made,
 * joined and handed to the thread pool on the loop thread only (an async
 * handle brings the loop there), so that a job that gets no thread can
 * still be told so on the pool. */
#include "hostq.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/log.h"

/* A host with calls running or waiting; freed when it has none. */
struct hostq_host {
	char name[128];
	int running, waiting;
	struct brk_hostq_job *head, **tail;
	struct brk_hostq_job *run; /* running now (run_next) */
	struct hostq_host *next;
};

struct brk_hostq {
	uv_loop_t *loop;
	uv_mutex_t mu;
	uv_async_t async;
	int per_host, queue_max;
	int stopping;
	int busy;			/* jobs whose done has not been called */
	struct hostq_host *hosts;
	struct brk_hostq_job *finished; /* ran on their thread: to join */
};

static uint64_t now_ms(void)
{
	return uv_hrtime() / 1000000;
}

/* Under the lock. */
static struct hostq_host *host_find(struct brk_hostq *q, const char *name)
{
	for (struct hostq_host *h = q->hosts; h; h = h->next)
		if (!strcmp(h->name, name))
			return h;
	return NULL;
}

/* Under the lock: forget h when nothing runs or waits for it. */
static void host_release(struct brk_hostq *q, struct hostq_host *h)
{
	struct hostq_host **pp;

	if (h->running || h->waiting)
		return;
	for (pp = &q->hosts; *pp != h; pp = &(*pp)->next)
		;
	*pp = h->next;
	free(h);
}

/* Under the lock: the first waiting job of h, taken off its queue. */
static struct brk_hostq_job *host_pop(struct hostq_host *h)
{
	struct brk_hostq_job *j = h->head;

	if (!j)
		return NULL;
	h->head = j->next;
	if (!h->head)
		h->tail = &h->head;
	h->waiting--;
	j->next = NULL;
	return j;
}

/* Loop thread: the job's end (done may free it). */
static void finish(struct brk_hostq_job *j)
{
	struct brk_hostq *q = j->q;

	uv_mutex_lock(&q->mu);
	q->busy--;
	uv_mutex_unlock(&q->mu);
	j->done(j);
}

static void divert_work(uv_work_t *w)
{
	struct brk_hostq_job *j = w->data;

	j->run(j, j->why);
}

static void divert_after(uv_work_t *w, int status)
{
	(void)status; /* nothing here is ever cancelled */
	finish(w->data);
}

/* Loop thread: tell j why it will not call its host, on the pool. */
static void divert(struct brk_hostq_job *j, int why)
{
	j->why = why;
	j->work.data = j;
	if (uv_queue_work(j->q->loop, &j->work, divert_work, divert_after) != 0) {
		j->run(j, why); /* cannot happen: uv_queue_work fails on bad arguments only */
		finish(j);
	}
}

static void thread_main(void *arg)
{
	struct brk_hostq_job *j = arg;
	struct brk_hostq *q = j->q;
	struct brk_hostq_job **pp;

	j->run(j, BRK_HOSTQ_RUN);
	uv_mutex_lock(&q->mu);
	for (pp = &j->h->run; *pp && *pp != j; pp = &(*pp)->run_next)
		;
	if (*pp)
		*pp = j->run_next;
	j->next = q->finished;
	q->finished = j;
	uv_mutex_unlock(&q->mu);
	uv_async_send(&q->async);
}

/* Loop thread, under the lock: start what may start; what may not run is
 * put on *out (why set) for divert() once the lock is released. */
static void dispatch_locked(struct brk_hostq *q, struct brk_hostq_job **out)
{
	uint64_t now = now_ms();
	struct hostq_host *h, *next;
	struct brk_hostq_job *j;

	for (h = q->hosts; h; h = next) {
		next = h->next;
		while (h->running < q->per_host && (j = host_pop(h)) != NULL) {
			if (j->wait_ms > 0 && now - j->queued_ms > (uint64_t)j->wait_ms) {
				j->why = BRK_HOSTQ_LATE;
			} else {
				h->running++;
				j->run_next = h->run;
				h->run = j;
				if (uv_thread_create(&j->thread, thread_main, j) == 0)
					continue;
				h->run = j->run_next;
				h->running--;
				pt_log_warnx("cannot make a thread for a call to session host %s",
					     h->name);
				j->why = BRK_HOSTQ_NOTHREAD;
			}
			j->next = *out;
			*out = j;
		}
		host_release(q, h);
	}
}

static void divert_all(struct brk_hostq_job *list)
{
	while (list) {
		struct brk_hostq_job *j = list;
		list = j->next;
		divert(j, j->why);
	}
}

static void on_async(uv_async_t *a)
{
	struct brk_hostq *q = a->data;
	struct brk_hostq_job *done, *late = NULL, *j;

	uv_mutex_lock(&q->mu);
	done = q->finished;
	q->finished = NULL;
	uv_mutex_unlock(&q->mu);
	while ((j = done) != NULL) {
		done = j->next;
		uv_thread_join(&j->thread); /* it has returned from run already */
		uv_mutex_lock(&q->mu);
		j->h->running--;
		host_release(q, j->h);
		uv_mutex_unlock(&q->mu);
		finish(j);
	}
	uv_mutex_lock(&q->mu);
	dispatch_locked(q, &late);
	uv_mutex_unlock(&q->mu);
	divert_all(late);
}

struct brk_hostq *brk_hostq_new(uv_loop_t *loop, int per_host, int queue_max)
{
	struct brk_hostq *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->loop = loop;
	q->per_host = per_host > 0 ? per_host : 1;
	q->queue_max = queue_max > 0 ? queue_max : 0;
	if (uv_mutex_init(&q->mu) != 0) {
		free(q);
		return NULL;
	}
	if (uv_async_init(loop, &q->async, on_async) != 0) {
		uv_mutex_destroy(&q->mu);
		free(q);
		return NULL;
	}
	q->async.data = q;
	return q;
}

int brk_hostq_submit(struct brk_hostq *q, const char *host, struct brk_hostq_job *j)
{
	struct hostq_host *h;

	if (!q)
		return -ESHUTDOWN;
	uv_mutex_lock(&q->mu);
	if (q->stopping) {
		uv_mutex_unlock(&q->mu);
		return -ESHUTDOWN;
	}
	h = host_find(q, host);
	/* Counted with the running ones: a job waits here until the loop
	 * thread starts it, even when a place is free. */
	if (h && h->running + h->waiting >= q->per_host + q->queue_max) {
		uv_mutex_unlock(&q->mu);
		return -EAGAIN;
	}
	if (!h) {
		h = calloc(1, sizeof(*h));
		if (!h) {
			uv_mutex_unlock(&q->mu);
			return -ENOMEM;
		}
		snprintf(h->name, sizeof(h->name), "%s", host);
		h->tail = &h->head;
		h->next = q->hosts;
		q->hosts = h;
	}
	j->q = q;
	j->h = h;
	j->queued_ms = now_ms();
	j->why = BRK_HOSTQ_RUN;
	j->next = NULL;
	*h->tail = j;
	h->tail = &j->next;
	h->waiting++;
	q->busy++;
	uv_mutex_unlock(&q->mu);
	uv_async_send(&q->async);
	return 0;
}

void brk_hostq_expire(struct brk_hostq *q)
{
	struct brk_hostq_job *late = NULL, *j, **pp;
	uint64_t now = now_ms();
	struct hostq_host *h, *next;

	if (!q)
		return;
	uv_mutex_lock(&q->mu);
	for (h = q->hosts; h; h = next) {
		next = h->next;
		for (pp = &h->head; (j = *pp) != NULL;) {
			if (j->wait_ms <= 0 || now - j->queued_ms <= (uint64_t)j->wait_ms) {
				pp = &j->next;
				continue;
			}
			*pp = j->next;
			if (h->tail == &j->next)
				h->tail = pp;
			h->waiting--;
			j->why = BRK_HOSTQ_LATE;
			j->next = late;
			late = j;
		}
		host_release(q, h);
	}
	uv_mutex_unlock(&q->mu);
	divert_all(late);
}

int brk_hostq_stop(struct brk_hostq *q)
{
	struct brk_hostq_job *stopped = NULL, *j;
	int n = 0;

	if (!q)
		return 0;
	uv_mutex_lock(&q->mu);
	q->stopping = 1;
	for (struct hostq_host *h = q->hosts, *next; h; h = next) {
		next = h->next;
		while ((j = host_pop(h)) != NULL) {
			j->why = BRK_HOSTQ_STOPPING;
			j->next = stopped;
			stopped = j;
			n++;
		}
		host_release(q, h);
	}
	uv_mutex_unlock(&q->mu);
	divert_all(stopped);
	return n;
}

int brk_hostq_busy(struct brk_hostq *q)
{
	int n;

	if (!q)
		return 0;
	uv_mutex_lock(&q->mu);
	n = q->busy;
	uv_mutex_unlock(&q->mu);
	return n;
}

int brk_hostq_has(struct brk_hostq *q, const char *host, int64_t key)
{
	struct hostq_host *h;
	struct brk_hostq_job *j;
	int found = 0;

	if (!q || !key)
		return 0;
	uv_mutex_lock(&q->mu);
	h = host_find(q, host);
	for (j = h ? h->head : NULL; j && !found; j = j->next)
		found = j->key == key;
	for (j = h ? h->run : NULL; j && !found; j = j->run_next)
		found = j->key == key;
	uv_mutex_unlock(&q->mu);
	return found;
}

void brk_hostq_counts(struct brk_hostq *q, const char *host, int *running, int *waiting)
{
	struct hostq_host *h;

	*running = *waiting = 0;
	if (!q)
		return;
	uv_mutex_lock(&q->mu);
	h = host_find(q, host);
	if (h) {
		*running = h->running;
		*waiting = h->waiting;
	}
	uv_mutex_unlock(&q->mu);
}

static void on_closed(uv_handle_t *h)
{
	struct brk_hostq *q = h->data;

	uv_mutex_destroy(&q->mu);
	free(q);
}

void brk_hostq_free(struct brk_hostq *q)
{
	if (q)
		uv_close((uv_handle_t *)&q->async, on_closed);
}
