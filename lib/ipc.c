/* ipc.c - see include/portico/ipc.h */
#include "portico/ipc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define IPC_MAX_STRINGS 8

/* What the receiver checks for each type: its size and where its strings
 * are.  A new message type is one more row here. */
#define IPC_STR(t, f)                                             \
	{                                                         \
		offsetof(struct t, f), sizeof(((struct t *)0)->f) \
	}

static const struct ipc_layout {
	uint32_t type;
	size_t size;
	struct {
		size_t off, len;
	} str[IPC_MAX_STRINGS];
} ipc_layouts[] = {
	{ PT_IPC_AUTH_REQ,
	  sizeof(struct pt_ipc_auth_req),
	  { IPC_STR(pt_ipc_auth_req, service), IPC_STR(pt_ipc_auth_req, user),
	    IPC_STR(pt_ipc_auth_req, password), IPC_STR(pt_ipc_auth_req, rhost) } },
	{ PT_IPC_AUTH_REP, sizeof(struct pt_ipc_auth_rep), { IPC_STR(pt_ipc_auth_rep, user) } },
	{ PT_IPC_AUTH_CHAL,
	  sizeof(struct pt_ipc_auth_chal),
	  { IPC_STR(pt_ipc_auth_chal, prompt) } },
	{ PT_IPC_AUTH_ANSWER,
	  sizeof(struct pt_ipc_auth_answer),
	  { IPC_STR(pt_ipc_auth_answer, answer) } },
	{ PT_IPC_AUTH_CANCEL, sizeof(struct pt_ipc_auth_cancel), { { 0, 0 } } },
	{ PT_IPC_SESS_REQ,
	  sizeof(struct pt_ipc_sess_req),
	  { IPC_STR(pt_ipc_sess_req, user), IPC_STR(pt_ipc_sess_req, pool),
	    IPC_STR(pt_ipc_sess_req, command), IPC_STR(pt_ipc_sess_req, image),
	    IPC_STR(pt_ipc_sess_req, geometry), IPC_STR(pt_ipc_sess_req, reason),
	    IPC_STR(pt_ipc_sess_req, password) } },
	{ PT_IPC_SESS_REP,
	  sizeof(struct pt_ipc_sess_rep),
	  { IPC_STR(pt_ipc_sess_rep, user), IPC_STR(pt_ipc_sess_rep, pool),
	    IPC_STR(pt_ipc_sess_rep, backend), IPC_STR(pt_ipc_sess_rep, secret),
	    IPC_STR(pt_ipc_sess_rep, message) } },
};

static _Thread_local char ipc_why[96] = "no error";

static const struct ipc_layout *ipc_layout(uint32_t type)
{
	for (size_t i = 0; i < sizeof(ipc_layouts) / sizeof(ipc_layouts[0]); i++)
		if (ipc_layouts[i].type == type)
			return &ipc_layouts[i];
	return NULL;
}

const char *pt_ipc_error(void)
{
	return ipc_why;
}

int pt_ipc_send(int fd, const void *msg, size_t len)
{
	ssize_t n;

	do
		n = send(fd, msg, len, MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n == -1)
		return -errno;
	/* SOCK_SEQPACKET sends whole records or fails; anything else means
	 * the fd is not the socket we think it is. */
	if ((size_t)n != len)
		return -EPROTO;
	return 0;
}

/* recv() gives 0 both for a zero-length datagram and for the end of the
 * conversation.  Only a hang-up is the end: an empty datagram is malformed,
 * or a compromised peer could make its PAM process quit quietly. */
static int ipc_peer_closed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

	if (poll(&p, 1, 0) != 1)
		return 0;
	return (p.revents & (POLLHUP | POLLRDHUP)) != 0;
}

static ssize_t ipc_malformed(void *msg, size_t len)
{
	explicit_bzero(msg, len);
	return -EPROTO;
}

/* Receive one datagram into msg (cap bytes) and check it against the
 * layout of its type, which must be one of types[]. */
static ssize_t ipc_recv(int fd, void *msg, size_t cap, const uint32_t *types, size_t ntypes)
{
	const struct ipc_layout *l = NULL;
	const unsigned char *p = msg;
	uint32_t got = 0;
	ssize_t n;
	int err;

	/* MSG_TRUNC makes recv() return the datagram's real length, so an
	 * oversized one is seen as such instead of silently cut to fit. */
	do
		n = recv(fd, msg, cap, MSG_TRUNC);
	while (n == -1 && errno == EINTR);
	if (n == -1) {
		err = errno;
		explicit_bzero(msg, cap);
		return -err;
	}
	if (n == 0 && ipc_peer_closed(fd)) {
		explicit_bzero(msg, cap);
		return 0;
	}
	if ((size_t)n >= sizeof(got) && (size_t)n <= cap)
		memcpy(&got, p, sizeof(got));
	for (size_t i = 0; i < ntypes; i++)
		if (types[i] == got)
			l = ipc_layout(got);
	/* Not one of ours: judged against the first, which is what a
	 * single-type socket expects (its size first, then its type). */
	if (!l) {
		l = ipc_layout(types[0]);
		if ((size_t)n == l->size)
			snprintf(ipc_why, sizeof(ipc_why), "message type 0x%08x, expected 0x%08x",
				 got, types[0]);
		else
			snprintf(ipc_why, sizeof(ipc_why), "datagram of %zd bytes, expected %zu", n,
				 l->size);
		return ipc_malformed(msg, cap);
	}
	if ((size_t)n != l->size) {
		snprintf(ipc_why, sizeof(ipc_why), "datagram of %zd bytes, expected %zu", n,
			 l->size);
		return ipc_malformed(msg, cap);
	}
	for (int i = 0; i < IPC_MAX_STRINGS && l->str[i].len; i++) {
		if (!memchr(p + l->str[i].off, '\0', l->str[i].len)) {
			snprintf(ipc_why, sizeof(ipc_why), "string at offset %zu is not terminated",
				 l->str[i].off);
			return ipc_malformed(msg, cap);
		}
	}
	return n;
}

ssize_t pt_ipc_recv(int fd, void *msg, size_t len, uint32_t type)
{
	const struct ipc_layout *l = ipc_layout(type);

	if (!l || l->size != len) {
		explicit_bzero(msg, len);
		return -EINVAL;
	}
	return ipc_recv(fd, msg, len, &type, 1);
}

ssize_t pt_ipc_recv_any(int fd, void *msg, size_t cap, const uint32_t *types, size_t ntypes)
{
	const struct ipc_layout *l;

	if (ntypes == 0) {
		explicit_bzero(msg, cap);
		return -EINVAL;
	}
	for (size_t i = 0; i < ntypes; i++) {
		l = ipc_layout(types[i]);
		if (!l || l->size > cap) {
			explicit_bzero(msg, cap);
			return -EINVAL;
		}
	}
	return ipc_recv(fd, msg, cap, types, ntypes);
}

/* --- the queue: a singly linked list, oldest first ------------------------ */

struct pt_ipc_qmsg {
	struct pt_ipc_qmsg *next;
	size_t len;
	unsigned char msg[];
};

void pt_ipc_queue_init(struct pt_ipc_queue *q, size_t max)
{
	q->head = q->tail = NULL;
	q->len = 0;
	q->max = max;
}

static void ipc_qmsg_free(struct pt_ipc_qmsg *m)
{
	explicit_bzero(m->msg, m->len);
	free(m);
}

int pt_ipc_queue_send(struct pt_ipc_queue *q, int fd, const void *msg, size_t len)
{
	struct pt_ipc_qmsg *m;
	int rc;

	if (!q->head) {
		rc = pt_ipc_send(fd, msg, len);
		if (rc != -EAGAIN) /* EWOULDBLOCK is EAGAIN on Linux */
			return rc;
	}
	if (q->max && q->len >= q->max)
		return -ENOBUFS;
	m = malloc(sizeof(*m) + len);
	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->len = len;
	memcpy(m->msg, msg, len);
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	q->len++;
	return 0;
}

int pt_ipc_queue_flush(struct pt_ipc_queue *q, int fd)
{
	struct pt_ipc_qmsg *m;
	int rc;

	while ((m = q->head) != NULL) {
		rc = pt_ipc_send(fd, m->msg, m->len);
		if (rc < 0)
			return rc;
		q->head = m->next;
		if (!q->head)
			q->tail = NULL;
		q->len--;
		ipc_qmsg_free(m);
	}
	return 0;
}

void pt_ipc_queue_clear(struct pt_ipc_queue *q)
{
	struct pt_ipc_qmsg *m;

	while ((m = q->head) != NULL) {
		q->head = m->next;
		ipc_qmsg_free(m);
	}
	q->tail = NULL;
	q->len = 0;
}
