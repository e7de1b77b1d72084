/*
 * test_auth.c - the network side's PAM queue (auth.c): at most max_pending
 * requests with the PAM process at once, up to max_waiting more held, oldest
 * first, until one ends; beyond both, -EBUSY at once.  The test plays the
 * PAM process on the other end of the socketpair, as test_authd.c plays the
 * network side; the integration test (test_broker_login_storm.sh) runs the
 * real one under a login storm.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "auth.h"
#include "portico/ipc.h"

#define MAX_REQ 16

struct peer {
	uv_loop_t loop;
	struct brk_auth *auth;
	int fd; /* the PAM process's end: ours */
	int done[MAX_REQ], result[MAX_REQ];
	char user[MAX_REQ][64];
	int order[MAX_REQ], nended; /* the order the callbacks ran in */
};

static struct peer P;

static void on_end(void *arg, int result, const char *user)
{
	int i = (int)(intptr_t)arg;

	P.done[i]++;
	P.result[i] = result;
	snprintf(P.user[i], sizeof(P.user[i]), "%s", user);
	P.order[P.nended++] = i;
}

static void setup(int max_pending, int max_waiting)
{
	int sv[2];

	memset(&P, 0, sizeof(P));
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(uv_loop_init(&P.loop), 0);
	P.auth = brk_auth_new(&P.loop, sv[0], max_pending, max_waiting);
	cr_assert_not_null(P.auth);
	P.fd = sv[1];
}

static int start(int i, const char *user)
{
	char pw[320];

	snprintf(pw, sizeof(pw), "pw-%s", user);
	return brk_auth_start(P.auth, "portico", user, pw, "192.0.2.1", on_end, NULL,
			      (void *)(intptr_t)i);
}

/* The requests the "PAM process" has been sent so far, in order: their
 * ids and user names. */
static int received(uint32_t *ids, char users[][256], int cap)
{
	struct pt_ipc_auth_req req;
	int n = 0;

	uv_run(&P.loop, UV_RUN_NOWAIT);
	for (;;) {
		ssize_t r = recv(P.fd, &req, sizeof(req), MSG_DONTWAIT);

		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		cr_assert_eq(r, (ssize_t)sizeof(req), "a request of %zd bytes", r);
		cr_assert_eq(req.type, PT_IPC_AUTH_REQ);
		cr_assert(n < cap, "more requests than the test allowed for");
		ids[n] = req.id;
		snprintf(users[n], 256, "%s", req.user);
		cr_assert_str_eq(req.service, "portico");
		cr_assert_str_eq(req.rhost, "192.0.2.1");
		n++;
	}
	return n;
}

/* The "PAM process" answers request id; the loop runs until its callback
 * has (10 s at most). */
static void answer(uint32_t id, int result, const char *user, int index)
{
	struct pt_ipc_auth_rep rep = { .type = PT_IPC_AUTH_REP, .id = id, .result = result };

	snprintf(rep.user, sizeof(rep.user), "%s", user);
	cr_assert_eq(pt_ipc_send(P.fd, &rep, sizeof(rep)), 0);
	for (int i = 0; i < 10000 && !P.done[index]; i++) {
		uv_run(&P.loop, UV_RUN_NOWAIT);
		uv_sleep(1);
	}
	cr_assert_eq(P.done[index], 1, "request %d: its callback ran %d times", index,
		     P.done[index]);
}

static void teardown(void)
{
	brk_auth_free(P.auth);
	uv_run(&P.loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&P.loop), 0);
	close(P.fd);
}

Test(auth, beyond_the_pam_processes_requests_wait_and_go_oldest_first, .timeout = 20)
{
	uint32_t ids[MAX_REQ];
	char users[MAX_REQ][256];
	char name[16];
	int n;

	setup(2, 3);
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		cr_assert_eq(start(i, name), 0, "request %d refused with 2 + 3 places", i);
	}
	/* Both queues full: refused at once, nothing sent. */
	cr_assert_eq(start(5, "u5"), -EBUSY);
	n = received(ids, users, MAX_REQ);
	cr_assert_eq(n, 2, "%d requests reached PAM, not max_pending = 2", n);
	cr_assert_str_eq(users[0], "u0");
	cr_assert_str_eq(users[1], "u1");
	uint32_t u1 = ids[1];

	/* One ends: the oldest waiting one takes its place, and only it. */
	answer(ids[0], PT_AUTH_OK, "u0", 0);
	cr_assert_eq(P.result[0], PT_AUTH_OK);
	cr_assert_str_eq(P.user[0], "u0");
	n = received(ids, users, MAX_REQ);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(users[0], "u2");
	/* ... and a place is free again for a new one. */
	cr_assert_eq(start(5, "u5"), 0);
	cr_assert_eq(start(6, "u6"), -EBUSY);

	/* The rest, answered as they come: each waiting one goes in turn.
	 * u1 is still with PAM from the first round. */
	uint32_t with_pam = ids[0]; /* u2's */
	answer(u1, PT_AUTH_DENIED, "", 1);
	cr_assert_eq(P.result[1], PT_AUTH_DENIED);
	for (int i = 3; i <= 5; i++) {
		snprintf(name, sizeof(name), "u%d", i);
		n = received(ids, users, MAX_REQ);
		cr_assert_eq(n, 1, "%d requests went to PAM for one place", n);
		cr_assert_str_eq(users[0], name);
		answer(with_pam, PT_AUTH_OK, "", i - 1);
		with_pam = ids[0];
	}
	answer(with_pam, PT_AUTH_OK, "u5", 5);
	cr_assert_eq(received(ids, users, MAX_REQ), 0, "a request sent twice");
	int order[] = { 0, 1, 2, 3, 4, 5 };
	cr_assert_eq(P.nended, 6);
	cr_assert_arr_eq(P.order, order, sizeof(order));
	teardown();
}

Test(auth, the_password_travels_with_the_request_it_was_given_to, .timeout = 20)
{
	struct pt_ipc_auth_req req;

	setup(1, 4);
	cr_assert_eq(brk_auth_start(P.auth, "portico", "ann", "first", "192.0.2.1", on_end, NULL,
				    (void *)0),
		     0);
	cr_assert_eq(brk_auth_start(P.auth, "portico", "ben", "second", "192.0.2.1", on_end, NULL,
				    (void *)1),
		     0);
	uv_run(&P.loop, UV_RUN_NOWAIT);
	cr_assert_eq(recv(P.fd, &req, sizeof(req), MSG_DONTWAIT), (ssize_t)sizeof(req));
	cr_assert_str_eq(req.user, "ann");
	cr_assert_str_eq(req.password, "first");
	answer(req.id, PT_AUTH_OK, "ann", 0);
	uv_run(&P.loop, UV_RUN_NOWAIT);
	cr_assert_eq(recv(P.fd, &req, sizeof(req), MSG_DONTWAIT), (ssize_t)sizeof(req));
	cr_assert_str_eq(req.user, "ben");
	cr_assert_str_eq(req.password, "second");
	answer(req.id, PT_AUTH_DENIED, "", 1);
	teardown();
}

Test(auth, a_field_too_long_is_refused_and_takes_no_place, .timeout = 20)
{
	char longuser[300];

	setup(1, 1);
	memset(longuser, 'a', sizeof(longuser) - 1);
	longuser[sizeof(longuser) - 1] = '\0';
	cr_assert_eq(start(0, longuser), -EINVAL);
	cr_assert_eq(start(1, "u1"), 0);
	cr_assert_eq(start(2, "u2"), 0);
	cr_assert_eq(start(3, "u3"), -EBUSY);
	teardown();
}

Test(auth, freeing_ends_the_waiting_requests_with_an_error, .timeout = 20)
{
	uint32_t ids[MAX_REQ];
	char users[MAX_REQ][256];

	setup(1, 2);
	cr_assert_eq(start(0, "u0"), 0);
	cr_assert_eq(start(1, "u1"), 0);
	cr_assert_eq(received(ids, users, MAX_REQ), 1);
	/* u0 is with PAM (its caller waits for it: no callback), u1 waits
	 * here: freeing ends u1 with an error, its owner waits for nothing
	 * else. */
	brk_auth_free(P.auth);
	cr_assert_eq(P.done[0], 0);
	cr_assert_eq(P.done[1], 1, "the waiting request's callback did not run");
	cr_assert_eq(P.result[1], PT_AUTH_ERROR);
	uv_run(&P.loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&P.loop), 0);
	close(P.fd);
}
