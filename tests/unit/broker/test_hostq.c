/* test_hostq.c - the per-host queue of calls to session hosts: its cap, its
 * queue limit, a host that stops answering holding only its own calls,
 * calls that waited too long, and stopping.  A job's "call" here waits on a
 * semaphore the test posts, as a frozen host keeps its caller waiting (the
 * integration test, test_broker_load.sh, freezes a real sessiond). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <uv.h>

#include "hostq.h"

struct job {
	struct brk_hostq_job j; /* first */
	uv_sem_t go;		/* posted: the "host" answers */
	int block;
	int why;    /* what run was told; -1 before */
	int ran_on; /* 1: a thread other than the loop's */
	int done;
	volatile int started;
	uv_thread_t loop_thread;
};

static void run(struct brk_hostq_job *hj, int why)
{
	struct job *x = (struct job *)hj;
	uv_thread_t self = uv_thread_self();

	x->why = why;
	x->ran_on = !uv_thread_equal(&self, &x->loop_thread);
	x->started = 1;
	if (why == BRK_HOSTQ_RUN && x->block)
		uv_sem_wait(&x->go);
}

static void done(struct brk_hostq_job *hj)
{
	((struct job *)hj)->done = 1;
}

static void job_init(struct job *x, int block, int64_t wait_ms)
{
	memset(x, 0, sizeof(*x));
	uv_sem_init(&x->go, 0);
	x->block = block;
	x->why = -1;
	x->j.run = run;
	x->j.done = done;
	x->j.wait_ms = wait_ms;
	x->loop_thread = uv_thread_self();
}

/* Run the loop until *flag is set (10 s at most). */
static int spin_until(uv_loop_t *loop, volatile int *flag)
{
	for (int i = 0; i < 10000 && !*flag; i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		uv_sleep(1);
	}
	return *flag;
}

static int running(struct brk_hostq *q, const char *host)
{
	int r, w;

	brk_hostq_counts(q, host, &r, &w);
	return r;
}

static void spin_running(uv_loop_t *loop, struct brk_hostq *q, const char *host, int n)
{
	for (int i = 0; i < 10000 && running(q, host) != n; i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		uv_sleep(1);
	}
	cr_assert_eq(running(q, host), n, "%d calls run for %s, not %d", running(q, host), host,
		     n);
}

static void drain(uv_loop_t *loop, struct brk_hostq *q)
{
	for (int i = 0; i < 10000 && brk_hostq_busy(q); i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		uv_sleep(1);
	}
	cr_assert_eq(brk_hostq_busy(q), 0);
	brk_hostq_free(q);
	uv_run(loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(loop), 0, "a handle is left open");
}

Test(hostq, cap_queue_and_other_hosts_go_on, .timeout = 30)
{
	uv_loop_t loop;
	struct job a[4], b;
	struct brk_hostq *q;
	int r, w;

	uv_loop_init(&loop);
	q = brk_hostq_new(&loop, 2, 1);
	cr_assert_not_null(q);
	for (int i = 0; i < 4; i++)
		job_init(&a[i], 1, 0);
	job_init(&b, 0, 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(brk_hostq_submit(q, "frozen", &a[i].j), 0, "call %d", i);
	cr_assert_eq(brk_hostq_submit(q, "frozen", &a[3].j), -EAGAIN,
		     "2 running and 1 waiting: the 4th is refused");
	spin_running(&loop, q, "frozen", 2);
	brk_hostq_counts(q, "frozen", &r, &w);
	cr_assert_eq(w, 1);
	/* Another host's call runs and ends while the first host holds its
	 * two. */
	cr_assert_eq(brk_hostq_submit(q, "healthy", &b.j), 0);
	cr_assert(spin_until(&loop, &b.done), "a call to another host waited");
	cr_assert_eq(b.why, BRK_HOSTQ_RUN);
	cr_assert(b.ran_on, "the call ran on the loop's thread");
	cr_assert_eq(a[2].why, -1, "the third call ran beyond the cap");
	/* The host answers: the waiting call gets its turn. */
	uv_sem_post(&a[0].go);
	cr_assert(spin_until(&loop, &a[0].done));
	cr_assert(spin_until(&loop, &a[2].started), "the waiting call did not start");
	cr_assert_eq(a[2].why, BRK_HOSTQ_RUN);
	uv_sem_post(&a[1].go);
	uv_sem_post(&a[2].go);
	cr_assert(spin_until(&loop, &a[2].done));
	cr_assert(spin_until(&loop, &a[1].done));
	cr_assert_eq(a[3].why, -1, "a refused call ran");
	drain(&loop, q);
	for (int i = 0; i < 4; i++)
		uv_sem_destroy(&a[i].go);
	uv_sem_destroy(&b.go);
}

Test(hostq, a_call_that_waited_too_long_is_not_made, .timeout = 30)
{
	uv_loop_t loop;
	struct job first, late;
	struct brk_hostq *q;

	uv_loop_init(&loop);
	q = brk_hostq_new(&loop, 1, 4);
	job_init(&first, 1, 0);
	job_init(&late, 1, 50);
	cr_assert_eq(brk_hostq_submit(q, "h", &first.j), 0);
	cr_assert_eq(brk_hostq_submit(q, "h", &late.j), 0);
	spin_running(&loop, q, "h", 1);
	uv_sleep(120);
	brk_hostq_expire(q);
	cr_assert(spin_until(&loop, &late.done), "the late call got no answer");
	cr_assert_eq(late.why, BRK_HOSTQ_LATE);
	cr_assert(late.ran_on, "told on the loop's thread (it may block on the store)");
	cr_assert_not(first.done);
	uv_sem_post(&first.go);
	cr_assert(spin_until(&loop, &first.done));
	cr_assert_eq(first.why, BRK_HOSTQ_RUN);
	drain(&loop, q);
}

Test(hostq, stop_tells_the_waiting_and_waits_for_the_running, .timeout = 30)
{
	uv_loop_t loop;
	struct job first, waiting, after;
	struct brk_hostq *q;

	uv_loop_init(&loop);
	q = brk_hostq_new(&loop, 1, 4);
	job_init(&first, 1, 0);
	job_init(&waiting, 1, 0);
	job_init(&after, 0, 0);
	cr_assert_eq(brk_hostq_submit(q, "h", &first.j), 0);
	cr_assert_eq(brk_hostq_submit(q, "h", &waiting.j), 0);
	spin_running(&loop, q, "h", 1);
	brk_hostq_stop(q);
	cr_assert_eq(brk_hostq_submit(q, "h", &after.j), -ESHUTDOWN);
	cr_assert(spin_until(&loop, &waiting.done));
	cr_assert_eq(waiting.why, BRK_HOSTQ_STOPPING);
	cr_assert_eq(brk_hostq_busy(q), 1, "the running call is still counted");
	uv_sem_post(&first.go);
	cr_assert(spin_until(&loop, &first.done));
	drain(&loop, q);
	cr_assert_eq(brk_hostq_submit(NULL, "h", &after.j), -ESHUTDOWN, "no queue: no calls");
}
