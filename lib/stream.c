/*
 * stream.c - the plain pt_stream: a TCP or unix socket through libuv.
 *
 * Reads land in pool chunks handed to the reader (no copy); writes try the
 * socket at once (uv_try_write) and queue only the rest, so a relay whose
 * peer keeps up never allocates a write request or waits a loop turn.
 */
#include "portico/stream.h"

#include <errno.h>
#include <stdlib.h>

#include "portico/buf.h"

/* Bytes asked for by one read.  A chunk keeps room for TLS record overhead,
 * so that a chunk read here fits, encrypted, into one chunk (tls.c). */
#define PLAIN_READ_MAX (PT_CHUNK_SIZE - 4096)

struct plain {
	struct pt_stream s;
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} io;
	/* Requests exist only while a write waits for the socket, or while a
	 * FIN is pending: an idle connection carries neither. */
	uv_write_t *wreq;
	pt_stream_read_cb read_cb;
	pt_stream_write_cb write_cb;
	pt_stream_close_cb close_cb;
	unsigned writing : 1;
	unsigned shut : 1;
	unsigned closing : 1;
};

static const struct pt_stream_ops plain_ops;

static void plain_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	buf->base = pt_chunk_get();
	buf->len = buf->base ? PLAIN_READ_MAX : 0;
}

static void plain_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct plain *p = st->data;

	if (nread > 0) {
		p->read_cb(&p->s, nread, buf->base);
		return;
	}
	pt_chunk_put(buf->base);
	if (nread < 0)
		p->read_cb(&p->s, nread, NULL);
}

static int plain_read_start(struct pt_stream *s, pt_stream_read_cb cb)
{
	struct plain *p = (struct plain *)s;
	int rc;

	if (p->closing)
		return UV_EINVAL;
	p->read_cb = cb;
	rc = uv_read_start(&p->io.stream, plain_alloc, plain_on_read);
	return rc == UV_EALREADY ? 0 : rc;
}

static int plain_read_stop(struct pt_stream *s)
{
	struct plain *p = (struct plain *)s;

	return uv_read_stop(&p->io.stream);
}

static void plain_on_write(uv_write_t *req, int status)
{
	struct plain *p = req->data;

	free(req);
	p->wreq = NULL;
	p->writing = 0;
	if (!p->closing)
		p->write_cb(&p->s, status);
}

static int plain_write(struct pt_stream *s, const char *data, size_t len, pt_stream_write_cb cb)
{
	struct plain *p = (struct plain *)s;
	uv_buf_t buf = uv_buf_init((char *)data, len);
	int n, rc;

	if (p->writing || p->closing)
		return UV_EBUSY;
	n = uv_try_write(&p->io.stream, &buf, 1);
	if (n == (int)len)
		return PT_STREAM_DONE;
	if (n < 0 && n != UV_EAGAIN)
		return n;
	if (n > 0) {
		buf.base += n;
		buf.len -= n;
	}
	p->write_cb = cb;
	p->wreq = malloc(sizeof(*p->wreq));
	if (!p->wreq)
		return UV_ENOMEM;
	p->wreq->data = p;
	rc = uv_write(p->wreq, &p->io.stream, &buf, 1, plain_on_write);
	if (rc == 0) {
		p->writing = 1;
	} else {
		free(p->wreq);
		p->wreq = NULL;
	}
	return rc;
}

static void plain_on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status; /* a failed FIN shows up as an error on the next read */
	free(req);
}

static int plain_shutdown(struct pt_stream *s)
{
	struct plain *p = (struct plain *)s;
	int rc;

	if (p->shut || p->closing)
		return 0;
	uv_shutdown_t *req = malloc(sizeof(*req));
	if (!req)
		return UV_ENOMEM;
	p->shut = 1;
	rc = uv_shutdown(req, &p->io.stream, plain_on_shutdown);
	if (rc)
		free(req);
	return rc == UV_ENOTCONN ? 0 : rc;
}

static void plain_on_close(uv_handle_t *h)
{
	struct plain *p = h->data;

	if (p->close_cb)
		p->close_cb(&p->s);
	free(p);
}

static void plain_close(struct pt_stream *s, pt_stream_close_cb cb)
{
	struct plain *p = (struct plain *)s;

	if (p->closing)
		return;
	p->closing = 1;
	p->close_cb = cb;
	uv_close(&p->io.handle, plain_on_close);
}

static int plain_fileno(struct pt_stream *s)
{
	struct plain *p = (struct plain *)s;
	uv_os_fd_t fd;
	int rc = uv_fileno(&p->io.handle, &fd);

	return rc ? rc : fd;
}

static const struct pt_stream_ops plain_ops = {
	.name = "plain",
	.read_start = plain_read_start,
	.read_stop = plain_read_stop,
	.write = plain_write,
	.shutdown = plain_shutdown,
	.close = plain_close,
	.fileno = plain_fileno,
};

struct pt_stream *pt_plain_new(uv_loop_t *loop, uv_handle_type kind)
{
	struct plain *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return NULL;
	if (kind == UV_TCP)
		rc = uv_tcp_init(loop, &p->io.tcp);
	else if (kind == UV_NAMED_PIPE)
		rc = uv_pipe_init(loop, &p->io.pipe, 0);
	else
		rc = UV_EINVAL;
	if (rc) {
		free(p);
		return NULL;
	}
	p->io.handle.data = p;
	p->s.ops = &plain_ops;
	p->s.loop = loop;
	return &p->s;
}

uv_stream_t *pt_plain_uv(struct pt_stream *s)
{
	return &((struct plain *)s)->io.stream;
}

int pt_stream_is_plain(const struct pt_stream *s)
{
	return s->ops == &plain_ops;
}
