/*
 * hostq.h - calls to session hosts, off the thread pool.
 *
 * A start on a session host may take a minute and a half (a VM booting),
 * and a host that stops answering holds its caller until the call times
 * out.  Such calls must hold neither libuv's thread pool, which serves
 * logins, redeems and sweeps, nor another host's starts.  So each host has
 * a queue of its own: at most `per_host` of its calls run at once, each on
 * a thread made for it (a call is seconds to minutes long: a thread's start
 * is nothing beside it, and an idle host keeps none), at most `queue_max`
 * wait behind them, and a call beyond is refused at once.  A call that
 * waited longer than its job's wait_ms is not made: its job is told it is
 * late, on the thread pool (it ends what it started in the store, which
 * blocks).
 */
#ifndef BROKER_HOSTQ_H
#define BROKER_HOSTQ_H

#include <stdint.h>
#include <uv.h>

struct brk_hostq;
struct brk_hostq_job;

/* Why a job's run callback runs. */
enum brk_hostq_why {
	BRK_HOSTQ_RUN = 0,  /* make the call (on a thread of the job's own) */
	BRK_HOSTQ_LATE,	    /* it waited past wait_ms: do not call the host */
	BRK_HOSTQ_STOPPING, /* the broker is stopping: do not call the host */
	BRK_HOSTQ_NOTHREAD, /* no thread could be made for it: do not call */
};

/* Runs once per job: with BRK_HOSTQ_RUN on a thread of its own, else on
 * the thread pool.  It may block (the store, the host). */
typedef void (*brk_hostq_run_cb)(struct brk_hostq_job *j, int why);
/* Then, on the loop thread: the job is the caller's again (free it here). */
typedef void (*brk_hostq_done_cb)(struct brk_hostq_job *j);

/* A call to a session host, embedded in the caller's own struct. */
struct brk_hostq_job {
	brk_hostq_run_cb run;
	brk_hostq_done_cb done;
	int64_t wait_ms; /* longest wait in the queue; 0: no limit */
	int64_t key;	 /* what the call is about (a session id), for brk_hostq_has; 0: none */
	/* private */
	struct brk_hostq *q;
	struct hostq_host *h;
	uint64_t queued_ms; /* uv_hrtime's clock */
	int why;
	uv_thread_t thread;
	uv_work_t work;
	struct brk_hostq_job *next;
	struct brk_hostq_job *run_next; /* on its host's running list */
};

/* per_host: calls to one host at once (>= 1); queue_max: calls that may
 * wait behind them.  NULL when out of memory. */
struct brk_hostq *brk_hostq_new(uv_loop_t *loop, int per_host, int queue_max);

/* Any thread: queue j (run and done set) for host.  0: run or done will be
 * called; -EAGAIN: queue_max calls wait for that host already; -ESHUTDOWN:
 * stopping (or q is NULL: a broker with no session host calls, as the API
 * fuzzer's).  On an error j is not taken. */
int brk_hostq_submit(struct brk_hostq *q, const char *host, struct brk_hostq_job *j);

/* Loop thread: the waiting calls that are past their wait_ms are told so
 * now (the broker's sweep calls this every second), so that a launch
 * behind a host that stopped answering gets its answer in time. */
void brk_hostq_expire(struct brk_hostq *q);

/* Loop thread: refuse new calls, tell the waiting ones BRK_HOSTQ_STOPPING
 * (how many: the return value); the running ones go on to their end (their
 * timeouts bound them). */
int brk_hostq_stop(struct brk_hostq *q);

/* Calls queued or running whose done has not been called yet. */
int brk_hostq_busy(struct brk_hostq *q);

/* Any thread: whether a call with this key (non-zero) waits or runs for
 * host now (a session this broker is still starting: a heartbeat that does
 * not report it yet must not end it). */
int brk_hostq_has(struct brk_hostq *q, const char *host, int64_t key);

/* Calls running and waiting for host, at this moment. */
void brk_hostq_counts(struct brk_hostq *q, const char *host, int *running, int *waiting);

/* Loop thread, once brk_hostq_busy() is 0: close (run the loop once more
 * for the close to finish; the memory goes then).  NULL-safe. */
void brk_hostq_free(struct brk_hostq *q);

#endif
