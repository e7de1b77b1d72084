/*
 * tls_stream.c - the TLS engine (tls.c) run over another pt_stream.
 *
 * Everything happens in tls_pump(), which makes as much progress as the
 * engine and the transport allow: handshake, encrypt the caller's pending
 * write, send one ciphertext chunk (one write in flight), decrypt into a
 * plaintext chunk for the reader, and start or stop reading the transport.
 * Callbacks may call back into the stream (stop reading, write, close), so
 * the pump never recurses: a nested call only asks for another round.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "portico/buf.h"
#include "portico/tls.h"

/* Plaintext delivered per read: as much as a chunk holds with room for one
 * more record, so one delivery usually carries several records. */
#define TLS_READ_MAX   (PT_CHUNK_SIZE - 4096)
#define TLS_RECORD_MAX 16384

struct tls_stream {
	struct pt_stream s;
	struct pt_stream *inner;
	struct pt_tls *tls;
	uv_idle_t idle; /* deferred pump (read_start, handshake) */

	pt_stream_read_cb read_cb; /* set while the owner reads */
	pt_tls_handshake_cb hs_cb;
	pt_stream_write_cb write_cb;
	pt_stream_close_cb close_cb;

	const char *wdata; /* the owner's write being encrypted */
	size_t wlen, woff;
	size_t inflight; /* ciphertext bytes in the transport write */
	char *rchunk;	 /* plaintext being gathered for the reader */
	size_t rlen;
	int err; /* first fatal error, reported once */
	int pending_closes;

	unsigned wpending : 1; /* an owner write is not finished */
	unsigned in_write_call : 1;
	unsigned inner_writing : 1;
	unsigned inner_reading : 1;
	unsigned inner_eof : 1;
	unsigned eof_delivered : 1;
	unsigned shut_requested : 1;
	unsigned shut_sent : 1;
	unsigned inner_shut : 1;
	unsigned in_pump : 1;
	unsigned repump : 1;
	unsigned closing : 1;
	unsigned err_reported : 1;
};

static void tls_pump(struct tls_stream *t);

static void on_idle(uv_idle_t *idle)
{
	struct tls_stream *t = idle->data;

	uv_idle_stop(idle);
	tls_pump(t);
}

static void defer_pump(struct tls_stream *t)
{
	if (!t->closing)
		uv_idle_start(&t->idle, on_idle);
}

/* Report the first fatal error to whoever waits, once. */
static void tls_fail(struct tls_stream *t, int err)
{
	if (!t->err)
		t->err = err;
	if (t->inner_reading) {
		pt_stream_read_stop(t->inner);
		t->inner_reading = 0;
	}
	if (t->err_reported)
		return;
	if (t->hs_cb) {
		pt_tls_handshake_cb cb = t->hs_cb;
		t->hs_cb = NULL;
		t->err_reported = 1;
		cb(&t->s, t->err);
	} else if (t->read_cb) {
		pt_stream_read_cb cb = t->read_cb;
		t->read_cb = NULL;
		t->err_reported = 1;
		cb(&t->s, t->err, NULL);
	} else if (t->wpending && !t->in_write_call) {
		t->wpending = 0;
		t->err_reported = 1;
		t->write_cb(&t->s, t->err);
	}
}

static void on_inner_write(struct pt_stream *inner, int status)
{
	struct tls_stream *t = inner->data;

	t->inner_writing = 0;
	if (status < 0) {
		tls_fail(t, status);
		return;
	}
	pt_tls_out_consume(t->tls, t->inflight);
	t->inflight = 0;
	tls_pump(t);
}

static void on_inner_read(struct pt_stream *inner, ssize_t nread, char *chunk)
{
	struct tls_stream *t = inner->data;

	if (nread > 0) {
		pt_tls_in_chunk(t->tls, chunk, nread);
	} else if (nread == UV_EOF) {
		t->inner_eof = 1;
		pt_tls_in_eof(t->tls);
		t->inner_reading = 0;
	} else {
		t->inner_reading = 0;
		tls_fail(t, (int)nread);
		return;
	}
	tls_pump(t);
}

/* Send what the engine produced.  Returns 0 or a negative error. */
static int tls_flush(struct tls_stream *t)
{
	const char *data;
	size_t len;
	int rc;

	while (!t->inner_writing && (len = pt_tls_out_pending(t->tls, &data)) > 0) {
		rc = pt_stream_write(t->inner, data, len, on_inner_write);
		if (rc == PT_STREAM_DONE) {
			pt_tls_out_consume(t->tls, len);
			continue;
		}
		if (rc < 0)
			return rc;
		t->inner_writing = 1;
		t->inflight = len;
	}
	return 0;
}

/* Hand the gathered plaintext to the reader.  Returns nonzero when the
 * reader went away (stopped, closed) during the callback. */
static int deliver(struct tls_stream *t)
{
	char *c = t->rchunk;
	size_t n = t->rlen;

	t->rchunk = NULL;
	t->rlen = 0;
	t->read_cb(&t->s, (ssize_t)n, c);
	return t->closing || !t->read_cb;
}

/* One round of progress; see the comment at the top of the file. */
static int pump_once(struct tls_stream *t)
{
	ssize_t n;
	int rc, need_input = 0;

	if (!pt_tls_handshake_done(t->tls)) {
		rc = pt_tls_handshake(t->tls);
		if (rc == -EAGAIN) {
			need_input = 1;
		} else if (rc < 0) {
			tls_flush(t); /* send the alert if we can */
			return UV_EPROTO;
		} else if (t->hs_cb) {
			pt_tls_handshake_cb cb = t->hs_cb;
			t->hs_cb = NULL;
			if ((rc = tls_flush(t)) < 0)
				return rc;
			cb(&t->s, 0);
			if (t->closing)
				return 0;
		}
	}
	if (pt_tls_handshake_done(t->tls)) {
		while (t->wpending && t->woff < t->wlen) {
			n = pt_tls_write(t->tls, t->wdata + t->woff, t->wlen - t->woff);
			if (n == -EAGAIN) {
				/* The output chunk is full: send it and go on,
				 * unless it has to wait for the transport. */
				if (pt_tls_out_pending(t->tls, &(const char *){ NULL }) == 0)
					break;
				if ((rc = tls_flush(t)) < 0)
					return rc;
				if (t->inner_writing)
					break;
				continue;
			}
			if (n < 0)
				return UV_EPROTO;
			t->woff += n;
		}
		if (t->shut_requested && !t->shut_sent && !t->wpending) {
			rc = pt_tls_shutdown(t->tls);
			if (rc == 0)
				t->shut_sent = 1;
			else if (rc != -EAGAIN)
				return UV_EPROTO;
		}
	}
	if ((rc = tls_flush(t)) < 0)
		return rc;

	if (t->wpending && t->woff == t->wlen && !t->inner_writing &&
	    pt_tls_out_pending(t->tls, &(const char *){ NULL }) == 0) {
		t->wpending = 0;
		if (!t->in_write_call) {
			t->write_cb(&t->s, 0);
			if (t->closing)
				return 0;
		}
	}
	if (t->shut_sent && !t->inner_shut && !t->inner_writing &&
	    pt_tls_out_pending(t->tls, &(const char *){ NULL }) == 0) {
		t->inner_shut = 1;
		pt_stream_shutdown(t->inner);
	}

	while (pt_tls_handshake_done(t->tls) && t->read_cb && !t->eof_delivered) {
		if (!t->rchunk) {
			/* No chunk for a reader that waits on an idle line. */
			if (pt_tls_in_queued(t->tls) == 0 && !pt_tls_read_pending(t->tls) &&
			    !t->inner_eof) {
				need_input = 1;
				break;
			}
			t->rchunk = pt_chunk_get();
			if (!t->rchunk)
				return UV_ENOBUFS;
		}
		n = pt_tls_read(t->tls, t->rchunk + t->rlen, TLS_READ_MAX - t->rlen);
		if (n > 0) {
			t->rlen += n;
			if (t->rlen + TLS_RECORD_MAX > TLS_READ_MAX && deliver(t))
				return 0;
			continue;
		}
		if (n == -EAGAIN) {
			need_input = 1;
			if (t->rlen > 0 && deliver(t))
				return 0;
			if (t->rchunk) {
				pt_chunk_put(t->rchunk);
				t->rchunk = NULL;
			}
			break;
		}
		if (n == 0) {
			if (t->rlen > 0 && deliver(t))
				return 0;
			t->eof_delivered = 1;
			pt_chunk_put(t->rchunk);
			t->rchunk = NULL;
			pt_stream_read_cb cb = t->read_cb;
			t->read_cb = NULL;
			cb(&t->s, UV_EOF, NULL);
			if (t->closing)
				return 0;
			break;
		}
		return UV_EPROTO;
	}
	/* A key update or alert produced while reading. */
	if ((rc = tls_flush(t)) < 0)
		return rc;

	/* Read the transport only while the engine waits for input that
	 * someone wants, and only while there is room to queue it. */
	int want = need_input && !t->inner_eof && !pt_tls_in_full(t->tls) &&
		   (!pt_tls_handshake_done(t->tls) || t->read_cb);
	if (t->inner_eof && need_input && !pt_tls_handshake_done(t->tls))
		return UV_EPROTO; /* the peer left mid-handshake */
	if (want && !t->inner_reading) {
		if ((rc = pt_stream_read_start(t->inner, on_inner_read)) < 0)
			return rc;
		t->inner_reading = 1;
	} else if (!want && t->inner_reading) {
		pt_stream_read_stop(t->inner);
		t->inner_reading = 0;
	}
	if (!t->rchunk && !t->wpending)
		pt_tls_release_buffers(t->tls);
	return 0;
}

static void tls_pump(struct tls_stream *t)
{
	int rc;

	if (t->in_pump) {
		t->repump = 1;
		return;
	}
	t->in_pump = 1;
	do {
		t->repump = 0;
		if (t->closing || t->err)
			break;
		rc = pump_once(t);
		if (rc < 0) {
			tls_fail(t, rc);
			break;
		}
	} while (t->repump);
	t->in_pump = 0;
}

static int tls_read_start(struct pt_stream *s, pt_stream_read_cb cb)
{
	struct tls_stream *t = (struct tls_stream *)s;

	if (t->closing)
		return UV_EINVAL;
	if (t->err)
		return t->err;
	if (t->eof_delivered)
		return UV_EOF;
	t->read_cb = cb;
	defer_pump(t);
	return 0;
}

static int tls_read_stop(struct pt_stream *s)
{
	struct tls_stream *t = (struct tls_stream *)s;

	t->read_cb = NULL;
	if (!t->in_pump && t->inner_reading && pt_tls_handshake_done(t->tls)) {
		pt_stream_read_stop(t->inner);
		t->inner_reading = 0;
	}
	return 0;
}

static int tls_write(struct pt_stream *s, const char *data, size_t len, pt_stream_write_cb cb)
{
	struct tls_stream *t = (struct tls_stream *)s;

	if (t->closing || t->wpending || t->shut_requested)
		return t->closing ? UV_EINVAL : UV_EBUSY;
	if (t->err)
		return t->err;
	t->wdata = data;
	t->wlen = len;
	t->woff = 0;
	t->write_cb = cb;
	t->wpending = 1;
	t->in_write_call = 1;
	tls_pump(t);
	t->in_write_call = 0;
	if (t->err) {
		if (!t->wpending)
			return t->err;
		t->wpending = 0;
		return t->err;
	}
	if (!t->wpending)
		return PT_STREAM_DONE;
	return 0;
}

static int tls_shutdown(struct pt_stream *s)
{
	struct tls_stream *t = (struct tls_stream *)s;

	if (t->closing || t->shut_requested)
		return 0;
	t->shut_requested = 1;
	if (!t->in_pump)
		tls_pump(t);
	return 0;
}

static void on_part_closed(struct tls_stream *t)
{
	if (--t->pending_closes > 0)
		return;
	if (t->close_cb)
		t->close_cb(&t->s);
	pt_chunk_put(t->rchunk);
	pt_tls_free(t->tls);
	free(t);
}

static void on_inner_closed(struct pt_stream *inner)
{
	on_part_closed(inner->data);
}

static void on_idle_closed(uv_handle_t *h)
{
	on_part_closed(h->data);
}

static void tls_close(struct pt_stream *s, pt_stream_close_cb cb)
{
	struct tls_stream *t = (struct tls_stream *)s;

	if (t->closing)
		return;
	t->closing = 1;
	t->close_cb = cb;
	t->pending_closes = 2;
	uv_close((uv_handle_t *)&t->idle, on_idle_closed);
	pt_stream_close(t->inner, on_inner_closed);
}

static int tls_fileno(struct pt_stream *s)
{
	return -ENOTSUP;
}

static const struct pt_stream_ops tls_ops = {
	.name = "tls",
	.read_start = tls_read_start,
	.read_stop = tls_read_stop,
	.write = tls_write,
	.shutdown = tls_shutdown,
	.close = tls_close,
	.fileno = tls_fileno,
};

struct pt_stream *pt_tls_stream_new(struct pt_stream *inner, SSL_CTX *ctx, int server,
				    const char *host)
{
	struct tls_stream *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->tls = pt_tls_new(ctx, server, host);
	if (!t->tls) {
		free(t);
		return NULL;
	}
	uv_idle_init(inner->loop, &t->idle);
	t->idle.data = t;
	t->inner = inner;
	inner->data = t;
	t->s.ops = &tls_ops;
	t->s.loop = inner->loop;
	t->s.id = inner->id;
	return &t->s;
}

int pt_tls_stream_handshake(struct pt_stream *s, pt_tls_handshake_cb cb)
{
	struct tls_stream *t = (struct tls_stream *)s;

	if (s->ops != &tls_ops)
		return UV_EINVAL;
	if (t->closing)
		return UV_EINVAL;
	if (t->err)
		return t->err;
	t->hs_cb = cb;
	defer_pump(t);
	return 0;
}

struct pt_tls *pt_tls_stream_engine(struct pt_stream *s)
{
	if (s->ops != &tls_ops)
		return NULL;
	return ((struct tls_stream *)s)->tls;
}
