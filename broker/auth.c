/* auth.c - see auth.h */
#include "auth.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "portico/log.h"

struct pending {
	uint32_t id;
	brk_auth_cb cb;
	void *arg;
	struct pending *next;
};

struct brk_auth {
	uv_poll_t poll;
	int fd;
	int max_pending, npending;
	uint32_t next_id;
	struct pending *head, **tail;
};

static void on_readable(uv_poll_t *p, int status, int events)
{
	struct brk_auth *a = p->data;
	struct pt_ipc_auth_rep rep;
	struct pending *q, **pp;
	ssize_t n;

	if (status < 0)
		pt_fatalx("PAM process: %s", uv_strerror(status));
	n = pt_ipc_recv(a->fd, &rep, sizeof(rep), PT_IPC_AUTH_REP);
	if (n == -EAGAIN || n == -EINTR)
		return;
	if (n == 0)
		pt_fatalx("the PAM process has gone away");
	if (n < 0)
		pt_fatalx("malformed message from the PAM process (%s)", strerror((int)-n));
	for (pp = &a->head; (q = *pp) != NULL; pp = &q->next)
		if (q->id == rep.id)
			break;
	if (!q)
		pt_fatalx("the PAM process answered request %u, which was never asked", rep.id);
	*pp = q->next;
	if (a->tail == &q->next)
		a->tail = pp;
	a->npending--;
	q->cb(q->arg, rep.result, rep.user);
	free(q);
}

struct brk_auth *brk_auth_new(uv_loop_t *loop, int fd, int max_pending)
{
	struct brk_auth *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->fd = fd;
	a->max_pending = max_pending;
	a->tail = &a->head;
	if (uv_poll_init(loop, &a->poll, fd) != 0) {
		free(a);
		return NULL;
	}
	a->poll.data = a;
	uv_poll_start(&a->poll, UV_READABLE, on_readable);
	return a;
}

static void on_poll_closed(uv_handle_t *h)
{
	free(h->data);
}

void brk_auth_free(struct brk_auth *a)
{
	if (!a)
		return;
	while (a->head) {
		struct pending *q = a->head;
		a->head = q->next;
		free(q);
	}
	uv_close((uv_handle_t *)&a->poll, on_poll_closed);
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
		   const char *rhost, brk_auth_cb cb, void *arg)
{
	struct pt_ipc_auth_req req;
	struct pending *q;
	uint32_t id;
	int rc;

	if (a->npending >= a->max_pending)
		return -EBUSY;
	memset(&req, 0, sizeof(req));
	req.type = PT_IPC_AUTH_REQ;
	req.id = id = ++a->next_id;
	if (copy(req.service, sizeof(req.service), service) ||
	    copy(req.user, sizeof(req.user), user) ||
	    copy(req.password, sizeof(req.password), password) ||
	    copy(req.rhost, sizeof(req.rhost), rhost)) {
		explicit_bzero(&req, sizeof(req));
		return -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		explicit_bzero(&req, sizeof(req));
		return -ENOMEM;
	}
	rc = pt_ipc_send(a->fd, &req, sizeof(req));
	explicit_bzero(&req, sizeof(req));
	if (rc < 0) {
		free(q);
		pt_fatalx("cannot reach the PAM process: %s", strerror(-rc));
	}
	q->id = id;
	q->cb = cb;
	q->arg = arg;
	*a->tail = q;
	a->tail = &q->next;
	a->npending++;
	return 0;
}
