/* pt_ipc_queue (lib/ipc.c): what a non-blocking SOCK_SEQPACKET socket does
 * not take is kept in order, bounded, and sent when there is room. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portico/ipc.h"

static int sv[2];

static void pair_up(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
}

static void pair_down(void)
{
	close(sv[0]);
	close(sv[1]);
}

static struct pt_ipc_sess_rep msg(int64_t id)
{
	struct pt_ipc_sess_rep m;

	memset(&m, 0, sizeof(m));
	m.type = PT_IPC_SESS_REP;
	m.op = PT_SESS_ENDED;
	m.id = id;
	snprintf(m.message, sizeof(m.message), "message %lld", (long long)id);
	return m;
}

/* Messages through q until the socket is full and `kept` more are kept;
 * the number sent straight away. */
static int64_t fill(struct pt_ipc_queue *q, int64_t kept)
{
	int64_t id = 1, direct = -1;

	for (;; id++) {
		struct pt_ipc_sess_rep m = msg(id);
		cr_assert_eq(pt_ipc_queue_send(q, sv[0], &m, sizeof(m)), 0, "message %lld", (long long)id);
		if (q->len == 1 && direct < 0)
			direct = id - 1;
		if ((int64_t)q->len == kept)
			return direct;
		cr_assert_lt(id, 100000, "the socket never filled");
	}
}

/* Read everything there is; the ids must be first, first + 1, ... */
static int64_t drain(int64_t first)
{
	struct pt_ipc_sess_rep m;
	int64_t n = 0;

	while (pt_ipc_recv(sv[1], &m, sizeof(m), PT_IPC_SESS_REP) == (ssize_t)sizeof(m)) {
		cr_assert_eq(m.id, first + n, "got %lld, expected %lld", (long long)m.id,
			     (long long)(first + n));
		n++;
	}
	return n;
}

Test(ipc_queue, sends_at_once_when_there_is_room, .init = pair_up, .fini = pair_down, .timeout = 10)
{
	struct pt_ipc_queue q;
	struct pt_ipc_sess_rep m = msg(1);

	pt_ipc_queue_init(&q, 4);
	cr_assert_eq(pt_ipc_queue_send(&q, sv[0], &m, sizeof(m)), 0);
	cr_assert_eq(q.len, 0);
	cr_assert_eq(drain(1), 1);
	cr_assert_eq(pt_ipc_queue_flush(&q, sv[0]), 0);
}

Test(ipc_queue, keeps_order_when_full_and_sends_when_there_is_room, .init = pair_up,
     .fini = pair_down, .timeout = 10)
{
	struct pt_ipc_queue q;
	int64_t direct, got = 0;
	int rc;

	pt_ipc_queue_init(&q, 0);
	direct = fill(&q, 500);
	cr_assert_gt(direct, 0);
	cr_assert_eq(pt_ipc_queue_flush(&q, sv[0]), -EAGAIN, "the socket is still full");
	/* The reader catches up bit by bit: every message once, in order. */
	while ((rc = pt_ipc_queue_flush(&q, sv[0])) != 0 || got < direct + 500) {
		cr_assert(rc == 0 || rc == -EAGAIN, "flush: %d", rc);
		got += drain(got + 1);
		cr_assert_leq(got, direct + 500);
	}
	cr_assert_eq(got, direct + 500);
	cr_assert_eq(q.len, 0);
	cr_assert_null(q.head);
	cr_assert_null(q.tail);
}

Test(ipc_queue, refuses_past_its_bound_and_loses_nothing, .init = pair_up, .fini = pair_down,
     .timeout = 10)
{
	struct pt_ipc_queue q;
	struct pt_ipc_sess_rep m = msg(0);
	int64_t direct;

	pt_ipc_queue_init(&q, 3);
	direct = fill(&q, 3);
	m.id = 999999;
	cr_assert_eq(pt_ipc_queue_send(&q, sv[0], &m, sizeof(m)), -ENOBUFS);
	cr_assert_eq(q.len, 3);
	cr_assert_eq(drain(1), direct);
	cr_assert_eq(pt_ipc_queue_flush(&q, sv[0]), 0);
	cr_assert_eq(drain(direct + 1), 3, "the 3 kept, and not the refused one");
	/* Room again: taken again. */
	cr_assert_eq(pt_ipc_queue_send(&q, sv[0], &m, sizeof(m)), 0);
	cr_assert_eq(drain(999999), 1);
}

Test(ipc_queue, a_new_message_waits_behind_kept_ones, .init = pair_up, .fini = pair_down,
     .timeout = 10)
{
	struct pt_ipc_queue q;
	struct pt_ipc_sess_rep m;
	int64_t direct;

	pt_ipc_queue_init(&q, 10);
	direct = fill(&q, 1);
	drain(1); /* room now, but one is kept: the next must not pass it */
	m = msg(direct + 2);
	cr_assert_eq(pt_ipc_queue_send(&q, sv[0], &m, sizeof(m)), 0);
	cr_assert_eq(q.len, 2);
	cr_assert_eq(pt_ipc_queue_flush(&q, sv[0]), 0);
	cr_assert_eq(drain(direct + 1), 2);
}

Test(ipc_queue, a_gone_peer_is_epipe_and_clear_frees, .init = pair_up, .timeout = 10)
{
	struct pt_ipc_queue q;
	struct pt_ipc_sess_rep m = msg(1);
	int rc;

	pt_ipc_queue_init(&q, 0);
	fill(&q, 5);
	close(sv[1]);
	rc = pt_ipc_queue_flush(&q, sv[0]);
	/* ECONNRESET: the peer went away with messages unread. */
	cr_assert(rc == -EPIPE || rc == -ECONNRESET, "flush to a closed peer: %d", rc);
	cr_assert_eq(q.len, 5, "what waits stays after a failure");
	cr_assert_eq(pt_ipc_queue_send(&q, sv[0], &m, sizeof(m)), 0, "kept behind the others");
	pt_ipc_queue_clear(&q);
	cr_assert_eq(q.len, 0);
	cr_assert_null(q.head);
	rc = pt_ipc_queue_send(&q, sv[0], &m, sizeof(m));
	cr_assert(rc == -EPIPE || rc == -ECONNRESET, "send to a closed peer: %d", rc);
	close(sv[0]);
}
