/* auth.c - see auth.h */
#include "auth.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "portico/log.h"

enum pending_state {
	P_WAIT,	     /* held here until a PAM process is free (req) */
	P_PAM,	     /* PAM works on it */
	P_CHALLENGE, /* a challenge waits for its id */
	P_TAKEN,     /* the id was presented; the answer is on its way */
	P_CANCELLED, /* nobody answers: PAM will say no */
};

struct pending {
	uint32_t id;
	int state;
	int64_t expires; /* uv_now's clock: P_CHALLENGE and P_TAKEN */
	uint64_t t0;	 /* uv_hrtime when PAM last had it (not the user) */
	uint64_t pam_ns; /* PAM's own time so far, for the latency metric */
	brk_auth_cb cb;
	brk_auth_challenge_cb on_challenge;
	void *arg;
	char rhost[64];
	char challenge[BRK_AUTH_CHALLENGE_LEN + 1];
	struct pt_ipc_auth_req *req; /* P_WAIT: the message, password and all */
	struct pending *next;
};

struct brk_auth {
	uv_poll_t poll;
	uv_timer_t expiry;
	uv_loop_t *loop;
	int fd;
	int closing;
	int max_pending, npending; /* requests the PAM process has */
	int max_waiting, nwaiting; /* requests held here (P_WAIT) */
	uint32_t next_id;
	struct pending *head, **tail;
};

static void pending_send(struct brk_auth *a, const void *msg, size_t len)
{
	int rc = pt_ipc_send(a->fd, msg, len);

	if (rc < 0)
		pt_fatalx("cannot reach the PAM process: %s", strerror(-rc));
}

static void pending_cancel(struct brk_auth *a, struct pending *q)
{
	struct pt_ipc_auth_cancel x = { .type = PT_IPC_AUTH_CANCEL, .id = q->id };

	if (q->state == P_WAIT || q->state == P_PAM || q->state == P_CANCELLED)
		return;
	explicit_bzero(q->challenge, sizeof(q->challenge));
	q->state = P_CANCELLED;
	pending_send(a, &x, sizeof(x));
}

static void request_free(struct pending *q)
{
	if (q->req) {
		explicit_bzero(q->req, sizeof(*q->req));
		free(q->req);
		q->req = NULL;
	}
}

/* Free PAM processes take the waiting requests, oldest first. */
static void pending_dispatch(struct brk_auth *a)
{
	for (struct pending *q = a->head; q && a->nwaiting > 0 && a->npending < a->max_pending;
	     q = q->next) {
		if (q->state != P_WAIT)
			continue;
		pending_send(a, q->req, sizeof(*q->req));
		request_free(q);
		q->state = P_PAM;
		q->t0 = uv_hrtime();
		a->nwaiting--;
		a->npending++;
	}
}

static struct pending *pending_of_id(struct brk_auth *a, uint32_t id, struct pending ***where)
{
	struct pending *q, **pp;

	for (pp = &a->head; (q = *pp) != NULL; pp = &q->next)
		if (q->id == id)
			break;
	if (where)
		*where = pp;
	return q;
}

static struct pending *pending_of_arg(struct brk_auth *a, void *arg)
{
	struct pending *q;

	for (q = a->head; q; q = q->next)
		if (q->arg == arg)
			return q;
	return NULL;
}

/* PAM's words go to a terminal or a web page: one printable line. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void on_challenge(struct brk_auth *a, struct pt_ipc_auth_chal *m)
{
	struct pending *q = pending_of_id(a, m->id, NULL);

	if (!q || q->state == P_WAIT)
		pt_fatalx("the PAM process asked about request %u, which was never asked", m->id);
	if (q->state != P_PAM) { /* crossed a cancel: nobody answers it */
		pt_log_warnx("request %u: a question crossed its cancel", q->id);
		return;
	}
	q->pam_ns += uv_hrtime() - q->t0;
	if (!q->on_challenge || pt_ticket_new(q->challenge)) {
		q->state = P_CHALLENGE; /* so that it is sent */
		pending_cancel(a, q);
		return;
	}
	q->state = P_CHALLENGE;
	q->expires = (int64_t)uv_now(a->loop) + BRK_AUTH_CHALLENGE_MS;
	printable(m->prompt);
	q->on_challenge(q->arg, q->challenge, m->prompt, m->echo != 0);
}

static void on_readable(uv_poll_t *p, int status, int events)
{
	static const uint32_t types[] = { PT_IPC_AUTH_REP, PT_IPC_AUTH_CHAL };
	struct brk_auth *a = p->data;
	union {
		uint32_t type;
		struct pt_ipc_auth_rep rep;
		struct pt_ipc_auth_chal chal;
	} m;
	struct pending *q, **pp;
	ssize_t n;

	if (status < 0)
		pt_fatalx("PAM process: %s", uv_strerror(status));
	n = pt_ipc_recv_any(a->fd, &m, sizeof(m), types, 2);
	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n == 0)
		pt_fatalx("the PAM process has gone away");
	if (n < 0)
		pt_fatalx("malformed message from the PAM process (%s)",
			  n == -EPROTO ? pt_ipc_error() : strerror((int)-n));
	if (m.type == PT_IPC_AUTH_CHAL) {
		on_challenge(a, &m.chal);
		return;
	}
	q = pending_of_id(a, m.rep.id, &pp);
	if (!q || q->state == P_WAIT)
		pt_fatalx("the PAM process answered request %u, which was never asked", m.rep.id);
	*pp = q->next;
	if (a->tail == &q->next)
		a->tail = pp;
	a->npending--;
	explicit_bzero(q->challenge, sizeof(q->challenge));
	if (q->state == P_PAM)
		q->pam_ns += uv_hrtime() - q->t0;
	brk_metrics_pam_seconds((double)q->pam_ns / 1e9);
	q->cb(q->arg, m.rep.result, m.rep.user);
	free(q);
	pending_dispatch(a);
}

/* Challenges nobody answered in time are cancelled; PAM then says no. */
static void on_expiry(uv_timer_t *t)
{
	struct brk_auth *a = t->data;
	int64_t now = (int64_t)uv_now(a->loop);

	for (struct pending *q = a->head; q; q = q->next)
		if ((q->state == P_CHALLENGE || q->state == P_TAKEN) && now >= q->expires)
			pending_cancel(a, q);
}

struct brk_auth *brk_auth_new(uv_loop_t *loop, int fd, int max_pending, int max_waiting)
{
	struct brk_auth *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->loop = loop;
	a->fd = fd;
	a->max_pending = max_pending;
	a->max_waiting = max_waiting;
	a->tail = &a->head;
	if (uv_poll_init(loop, &a->poll, fd) != 0) {
		free(a);
		return NULL;
	}
	a->poll.data = a;
	uv_timer_init(loop, &a->expiry);
	a->expiry.data = a;
	uv_poll_start(&a->poll, UV_READABLE, on_readable);
	uv_timer_start(&a->expiry, on_expiry, 1000, 1000);
	uv_unref((uv_handle_t *)&a->expiry);
	return a;
}

static void on_closed(uv_handle_t *h)
{
	struct brk_auth *a = h->data;

	if (++a->closing == 2)
		free(a);
}

void brk_auth_free(struct brk_auth *a)
{
	if (!a)
		return;
	while (a->head) {
		struct pending *q = a->head;
		a->head = q->next;
		explicit_bzero(q->challenge, sizeof(q->challenge));
		request_free(q);
		if (q->state != P_PAM) /* its owner waits for nothing else */
			q->cb(q->arg, PT_AUTH_ERROR, "");
		free(q);
	}
	uv_close((uv_handle_t *)&a->poll, on_closed);
	uv_close((uv_handle_t *)&a->expiry, on_closed);
}

static int copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (n >= cap)
		return -EINVAL;
	memcpy(dst, src, n + 1);
	return 0;
}

int brk_auth_start(struct brk_auth *a, const char *service, const char *user, const char *password,
		   const char *rhost, brk_auth_cb cb, brk_auth_challenge_cb on_chal, void *arg)
{
	struct pt_ipc_auth_req *req;
	struct pending *q;
	int from = 0;

	if (a->npending >= a->max_pending && a->nwaiting >= a->max_waiting)
		return -EBUSY;
	/* A challenge holds a process in the PAM process for up to a
	 * minute: one address does not get them all. */
	for (q = a->head; q; q = q->next)
		from += q->state != P_WAIT && q->state != P_PAM && strcmp(q->rhost, rhost) == 0;
	if (from >= (a->max_pending + 3) / 4)
		return -EBUSY;
	if (!(q = calloc(1, sizeof(*q))))
		return -ENOMEM;
	if (!(req = calloc(1, sizeof(*req)))) {
		free(q);
		return -ENOMEM;
	}
	req->type = PT_IPC_AUTH_REQ;
	req->id = ++a->next_id;
	q->req = req;
	if (copy(req->service, sizeof(req->service), service) ||
	    copy(req->user, sizeof(req->user), user) ||
	    copy(req->password, sizeof(req->password), password) ||
	    copy(req->rhost, sizeof(req->rhost), rhost)) {
		request_free(q);
		free(q);
		return -EINVAL;
	}
	q->id = req->id;
	q->state = P_WAIT;
	q->cb = cb;
	q->on_challenge = on_chal;
	q->arg = arg;
	memcpy(q->rhost, rhost, strlen(rhost) + 1);
	*a->tail = q;
	a->tail = &q->next;
	a->nwaiting++;
	pending_dispatch(a);
	return 0;
}

void *brk_auth_take(struct brk_auth *a, const char *challenge, const char *rhost)
{
	struct pending *found = NULL;
	int64_t now = (int64_t)uv_now(a->loop);

	if (strlen(challenge) != BRK_AUTH_CHALLENGE_LEN)
		return NULL;
	/* Every id compared in full: the time taken says nothing of how
	 * much of one was right. */
	for (struct pending *q = a->head; q; q = q->next)
		if (q->state == P_CHALLENGE &&
		    CRYPTO_memcmp(q->challenge, challenge, BRK_AUTH_CHALLENGE_LEN) == 0)
			found = q;
	if (!found)
		return NULL;
	if (now >= found->expires || strcmp(found->rhost, rhost) != 0) {
		if (now < found->expires)
			pt_log_warnx("a challenge of request %u was answered from %s, not from %s: "
				     "cancelled",
				     found->id, rhost, found->rhost);
		pending_cancel(a, found);
		return NULL;
	}
	explicit_bzero(found->challenge, sizeof(found->challenge));
	found->state = P_TAKEN;
	return found->arg;
}

int brk_auth_answer(struct brk_auth *a, void *arg, const char *answer)
{
	struct pending *q = pending_of_arg(a, arg);
	struct pt_ipc_auth_answer m = { .type = PT_IPC_AUTH_ANSWER };

	if (!q || q->state != P_TAKEN)
		return -ETIMEDOUT;
	if (copy(m.answer, sizeof(m.answer), answer)) {
		pending_cancel(a, q);
		return -EINVAL;
	}
	m.id = q->id;
	q->state = P_PAM;
	q->t0 = uv_hrtime();
	pending_send(a, &m, sizeof(m));
	explicit_bzero(&m, sizeof(m));
	return 0;
}

void brk_auth_cancel(struct brk_auth *a, void *arg)
{
	struct pending *q = pending_of_arg(a, arg);

	if (q)
		pending_cancel(a, q);
}
