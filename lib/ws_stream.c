/*
 * ws_stream.c - WebSocket (RFC 6455) as a pt_stream over another pt_stream,
 * see include/portico/ws.h; ws_frame.c reads and writes the frames.
 * Written by hand: no WebSocket library is among Portico's Debian packages.
 *
 * Reading: a chunk from the inner stream is parsed where it lies.  The
 * payload of its data frames is unmasked and moved to the chunk's front,
 * over their headers, in one pass, and the chunk goes to the reader with
 * no other copy; control frames are answered on the way.  At most one inner
 * chunk waits here, and the inner stream is read only while the owner
 * reads, so a reader that stops stops the peer (TCP backpressure).
 *
 * Writing: each owner write is one binary frame.  Its header and payload go
 * to the inner stream in one write when the payload is copied anyway
 * (masked, on the client side) or short; a long unmasked payload goes as a
 * header, then the owner's own bytes.  A pong or close waits for the data
 * frame in progress and never cuts into it.
 *
 * Everything happens in ws_pump(), which never recurses: a nested call
 * asks for another round (the shape of tls_stream.c).  Nothing calls back
 * into the owner from inside the owner's own write() or shutdown().
 *
 * Closing waits (WS_LINGER_MS at most) only for a close frame: to send it,
 * then to read the peer's answer, so that the peer is not reset while our
 * close frame is on its way (a socket closed with unread bytes sends RST).
 *
 * One file past 600 lines: the writer, the reader, the pump and the close
 * share one state (struct ws_stream's flags), read in every part; split,
 * that state would become a header of internals.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "portico/buf.h"
#include "portico/ws.h"

/* A server-side write up to this size goes out copied behind its header, in
 * one inner write; a longer one as two writes, the payload not copied. */
#define WS_COPY_MAX (16 * 1024)
/* The longest wait, once closed, for our close frame to go and the peer's
 * answer to come. */
#define WS_LINGER_MS 2000

/* What the inner stream's write in flight holds. */
enum ws_fly { FLY_NONE, FLY_CTL, FLY_HDR, FLY_COPY, FLY_DIRECT, FLY_TEXT };

struct ws_stream {
	struct pt_stream s;
	struct pt_stream *inner;
	struct pt_ws_reader rd;
	uv_idle_t idle;	   /* deferred pump: input waiting at read_start */
	uv_timer_t linger; /* the limit of the wait at close */

	pt_stream_read_cb read_cb; /* set while the owner reads */
	pt_stream_write_cb write_cb;
	pt_stream_close_cb close_cb;

	char *in; /* inner bytes not parsed yet: `pre`, or a chunk that came
		   * while nobody could take it */
	size_t inlen;

	/* the owner's write */
	const char *wdata;
	size_t wlen, woff; /* woff: payload bytes handed to the inner stream */
	int wresult;	   /* how it ended, when it ended inside write() */
	uint8_t mask[4];
	uint8_t hdr[14];

	/* the inner stream's write */
	enum ws_fly fly;
	char *wchunk;			     /* a header and copied payload */
	uint8_t ctl[14 + PT_WS_CONTROL_MAX]; /* a control frame */

	/* a text frame waiting or going out (pt_ws_stream_send_text), header
	 * included */
	uint8_t *text;
	size_t textlen;

	/* control frames waiting */
	uint8_t pong[PT_WS_CONTROL_MAX];
	size_t ponglen;
	uint8_t closebody[PT_WS_CONTROL_MAX];
	size_t closelen;

	uint16_t sent_code, peer_code;
	char peer_reason[PT_WS_REASON_MAX + 1];
	const char *why;
	int err; /* the first fatal error, or UV_EPROTO for the peer's */
	int pending_closes;

	unsigned server : 1;
	unsigned wpending : 1;	 /* an owner write is not finished */
	unsigned wstarted : 1;	 /* its header went to the inner stream */
	unsigned frame_open : 1; /* part of its payload did not */
	unsigned in_call : 1;	 /* inside the owner's write() or shutdown() */
	unsigned inner_writing : 1;
	unsigned inner_reading : 1;
	unsigned inner_eof : 1;
	unsigned inner_shut : 1;
	unsigned out_dead : 1; /* the inner stream cannot be written */
	unsigned pong_queued : 1;
	unsigned close_queued : 1;
	unsigned text_queued : 1;
	unsigned close_sent : 1;  /* handed to the inner stream */
	unsigned peer_closed : 1; /* its close frame, or the end, came */
	unsigned eof_delivered : 1;
	unsigned err_reported : 1;
	unsigned shut_requested : 1;
	unsigned in_pump : 1;
	unsigned repump : 1;
	unsigned repump_input : 1;
	unsigned closing : 1;
	unsigned finished : 1;
};

static const struct pt_stream_ops ws_ops;
static void ws_pump(struct ws_stream *t, int input);
static void linger_step(struct ws_stream *t);
static void finish_close(struct ws_stream *t);

static void on_idle(uv_idle_t *idle)
{
	struct ws_stream *t = idle->data;

	uv_idle_stop(idle);
	ws_pump(t, 1);
}

static void stop_inner_reading(struct ws_stream *t)
{
	if (t->inner_reading) {
		pt_stream_read_stop(t->inner);
		t->inner_reading = 0;
	}
}

/* Record the first error and report it, once, to whoever waits: the reader,
 * else a pending writer.  Never from inside the owner's own call (write()
 * and shutdown() return it instead). */
static void ws_fail(struct ws_stream *t, int err)
{
	if (!t->err)
		t->err = err;
	stop_inner_reading(t);
	if (t->err_reported || t->closing || t->in_call)
		return;
	if (t->read_cb) {
		pt_stream_read_cb cb = t->read_cb;
		t->read_cb = NULL;
		t->err_reported = 1;
		cb(&t->s, t->err, NULL);
	} else if (t->wpending) {
		t->wpending = 0;
		t->err_reported = 1;
		t->write_cb(&t->s, t->err);
	}
}

static void queue_close(struct ws_stream *t, const uint8_t *body, size_t n, uint16_t code)
{
	if (t->close_queued || t->close_sent)
		return;
	if (n)
		memcpy(t->closebody, body, n);
	t->closelen = n;
	t->close_queued = 1;
	t->sent_code = code;
}

/* --- writing ------------------------------------------------------------- */

static void on_inner_write(struct pt_stream *inner, int status);

static int inner_write(struct ws_stream *t, const void *p, size_t n, enum ws_fly kind)
{
	int rc = pt_stream_write(t->inner, p, n, on_inner_write);

	if (rc == PT_STREAM_DONE)
		return 0;
	if (rc < 0)
		return rc;
	t->inner_writing = 1;
	t->fly = kind;
	return 0;
}

static int send_control(struct ws_stream *t, int op, const uint8_t *payload, size_t n)
{
	uint8_t key[4];
	int h;

	if (!t->server && RAND_bytes(key, sizeof(key)) != 1)
		return UV_EIO;
	h = pt_ws_frame_header(t->ctl, op, 1, n, t->server ? NULL : key);
	if (h < 0)
		return UV_EINVAL;
	if (!t->server)
		pt_ws_mask(t->ctl + h, payload, n, key, 0);
	else if (n)
		memcpy(t->ctl + h, payload, n);
	return inner_write(t, t->ctl, h + n, FLY_CTL);
}

/* As much of the owner's payload as fits in the chunk after h bytes of
 * header, copied (masked on the client side). */
static int copy_piece(struct ws_stream *t, size_t h)
{
	size_t n = t->wlen - t->woff;

	if (n > PT_CHUNK_SIZE - h)
		n = PT_CHUNK_SIZE - h;
	if (!t->server)
		pt_ws_mask((uint8_t *)t->wchunk + h, (const uint8_t *)t->wdata + t->woff, n,
			   t->mask, t->woff);
	else if (n)
		memcpy(t->wchunk + h, t->wdata + t->woff, n);
	t->woff += n;
	t->frame_open = t->woff < t->wlen;
	return inner_write(t, t->wchunk, h + n, FLY_COPY);
}

static int start_frame(struct ws_stream *t)
{
	int h;

	if (!t->server && RAND_bytes(t->mask, sizeof(t->mask)) != 1)
		return UV_EIO;
	h = pt_ws_frame_header(t->hdr, PT_WS_OP_BINARY, 1, t->wlen, t->server ? NULL : t->mask);
	if (h < 0)
		return UV_EINVAL;
	t->wstarted = 1;
	t->frame_open = 1;
	if (t->server && t->wlen > WS_COPY_MAX)
		return inner_write(t, t->hdr, (size_t)h, FLY_HDR);
	if (!t->wchunk && !(t->wchunk = pt_chunk_get()))
		return UV_ENOBUFS;
	memcpy(t->wchunk, t->hdr, (size_t)h);
	return copy_piece(t, (size_t)h);
}

/* The rest of a frame whose header went out. */
static int send_payload(struct ws_stream *t)
{
	const char *p = t->wdata + t->woff;
	size_t n = t->wlen - t->woff;

	if (!t->server) {
		if (!t->wchunk && !(t->wchunk = pt_chunk_get()))
			return UV_ENOBUFS;
		return copy_piece(t, 0);
	}
	t->woff = t->wlen;
	t->frame_open = 0;
	return inner_write(t, p, n, FLY_DIRECT);
}

/* Hand the inner stream what may go now, one write at a time: the rest of
 * a data frame first, then a close, a pong, the owner's next frame.
 * Returns 0 or the inner stream's error (then nothing more is written). */
static int out_flush(struct ws_stream *t)
{
	int rc = 0;

	while (rc == 0 && !t->inner_writing && !t->out_dead) {
		if (t->frame_open) {
			rc = send_payload(t);
		} else if (t->close_queued) {
			t->close_queued = 0;
			t->close_sent = 1;
			t->pong_queued = 0;
			rc = send_control(t, PT_WS_OP_CLOSE, t->closebody, t->closelen);
		} else if (t->pong_queued && !t->close_sent) {
			t->pong_queued = 0;
			rc = send_control(t, PT_WS_OP_PONG, t->pong, t->ponglen);
		} else if (t->text_queued && !t->close_sent) {
			t->text_queued = 0;
			rc = inner_write(t, t->text, t->textlen, FLY_TEXT);
		} else if (t->wpending && !t->wstarted && !t->close_sent && !t->err &&
			   !t->closing) {
			rc = start_frame(t);
		} else {
			break;
		}
	}
	if (rc < 0)
		t->out_dead = 1;
	return rc;
}

static void on_inner_write(struct pt_stream *inner, int status)
{
	struct ws_stream *t = inner->data;

	t->inner_writing = 0;
	if (t->fly == FLY_TEXT) {
		free(t->text);
		t->text = NULL;
	}
	t->fly = FLY_NONE;
	if (t->finished)
		return;
	if (status < 0)
		t->out_dead = 1;
	if (t->closing) {
		linger_step(t);
		return;
	}
	if (status < 0 && !t->peer_closed) {
		ws_fail(t, status);
		return;
	}
	ws_pump(t, 1);
}

/* --- reading ------------------------------------------------------------- */

static void peer_close(struct ws_stream *t, const struct pt_ws_event *ev)
{
	uint8_t body[2] = { ev->code >> 8, ev->code & 0xff };

	t->peer_closed = 1;
	t->peer_code = ev->code;
	memcpy(t->peer_reason, ev->data, ev->len);
	t->peer_reason[ev->len] = '\0';
	/* The answer carries the peer's code; a close without one gets none. */
	queue_close(t, body, ev->code == PT_WS_CLOSE_NO_STATUS ? 0 : 2, ev->code);
}

/* Parse the waiting inner chunk: data payload is gathered at its front and
 * goes to the reader; control frames are taken care of. */
static void take_input(struct ws_stream *t)
{
	char *c = t->in;
	size_t n = t->inlen, off = 0, w = 0;
	struct pt_ws_event ev;
	ssize_t k;
	int broken = 0;

	t->in = NULL;
	t->inlen = 0;
	while (off < n && !t->peer_closed) {
		k = pt_ws_read(&t->rd, (uint8_t *)c + off, n - off, (uint8_t *)c + w, &ev);
		if (k < 0) {
			uint8_t body[2] = { t->rd.close_code >> 8, t->rd.close_code & 0xff };
			t->why = t->rd.why;
			queue_close(t, body, 2, t->rd.close_code);
			stop_inner_reading(t);
			broken = 1;
			break;
		}
		off += (size_t)k;
		if (ev.type == PT_WS_EV_DATA) {
			w += ev.len;
		} else if (ev.type == PT_WS_EV_PING) {
			/* Only the latest ping needs its pong (RFC 6455 5.5.3). */
			memcpy(t->pong, ev.data, ev.len);
			t->ponglen = ev.len;
			t->pong_queued = 1;
		} else if (ev.type == PT_WS_EV_CLOSE) {
			peer_close(t, &ev);
		}
	}
	/* What came before an error or a close is the peer's data all the same;
	 * the error follows it (reported by the pump). */
	if (w > 0)
		t->read_cb(&t->s, (ssize_t)w, c);
	else
		pt_chunk_put(c);
	if (broken && !t->err)
		t->err = UV_EPROTO;
}

static void linger_read(struct ws_stream *t, ssize_t nread, char *chunk);

static void on_inner_read(struct pt_stream *inner, ssize_t nread, char *chunk)
{
	struct ws_stream *t = inner->data;

	if (t->finished) {
		pt_chunk_put(chunk);
		return;
	}
	if (t->closing) {
		linger_read(t, nread, chunk);
		return;
	}
	if (nread > 0) {
		if (t->in) {
			/* Reading stops while a chunk waits: not reached. */
			pt_chunk_put(chunk);
			ws_fail(t, UV_ENOBUFS);
			return;
		}
		t->in = chunk;
		t->inlen = (size_t)nread;
	} else if (nread == UV_EOF) {
		t->inner_reading = 0;
		t->inner_eof = 1;
		if (!t->peer_closed) {
			t->peer_closed = 1;
			t->peer_code = PT_WS_CLOSE_ABNORMAL;
		}
	} else {
		t->inner_reading = 0;
		t->out_dead = 1;
		ws_fail(t, (int)nread);
		return;
	}
	if (t->in_call)
		uv_idle_start(&t->idle, on_idle); /* no reader callback inside write() */
	else
		ws_pump(t, 1);
}

/* --- the pump ---------------------------------------------------------- */

static int pump_once(struct ws_stream *t, int input)
{
	int rc, want;

	/* Once the peer said goodbye, a failed answer is no error: the
	 * reader gets its EOF (out_dead lets it through). */
	if ((rc = out_flush(t)) < 0 && !t->peer_closed)
		return rc;
	if (t->err) {
		if (!t->err_reported && !t->in_call) {
			ws_fail(t, t->err);
			if (t->closing)
				return 0;
		}
		goto release;
	}
	if (t->wpending) {
		int done = t->wstarted && !t->frame_open &&
			   !(t->inner_writing && t->fly == FLY_DIRECT);
		int refused = !t->wstarted && (t->close_queued || t->close_sent);
		if (done || refused) {
			t->wpending = 0;
			if (t->in_call) {
				t->wresult = done ? 0 : UV_EPIPE;
			} else {
				t->write_cb(&t->s, done ? 0 : UV_EPIPE);
				if (t->closing)
					return 0;
			}
		}
	}
	if (t->shut_requested && !t->wpending && !t->frame_open && !t->close_queued &&
	    !t->close_sent) {
		uint8_t body[2] = { PT_WS_CLOSE_NORMAL >> 8, PT_WS_CLOSE_NORMAL & 0xff };
		queue_close(t, body, 2, PT_WS_CLOSE_NORMAL);
		t->repump = 1;
	}
	/* Both close frames went: the TCP connection may end (RFC 6455 7.1.1). */
	if (t->close_sent && t->peer_closed && !t->inner_writing && !t->inner_shut &&
	    !t->out_dead) {
		t->inner_shut = 1;
		pt_stream_shutdown(t->inner);
	}
	if (input && t->read_cb) {
		if (t->in) {
			take_input(t);
			t->repump = 1;
			return 0;
		}
		if (t->peer_closed && !t->eof_delivered &&
		    (t->close_sent || t->out_dead || t->inner_eof)) {
			pt_stream_read_cb cb = t->read_cb;
			t->read_cb = NULL;
			t->eof_delivered = 1;
			cb(&t->s, UV_EOF, NULL);
			t->repump = 1;
			return 0;
		}
	}
release:
	want = t->read_cb && !t->in && !t->peer_closed && !t->err;
	if (want && !t->inner_reading) {
		if ((rc = pt_stream_read_start(t->inner, on_inner_read)) < 0)
			return rc;
		t->inner_reading = 1;
	} else if (!want) {
		stop_inner_reading(t);
	}
	if (t->wchunk && !t->frame_open && !(t->inner_writing && t->fly == FLY_COPY)) {
		pt_chunk_put(t->wchunk);
		t->wchunk = NULL;
	}
	return 0;
}

static void ws_pump(struct ws_stream *t, int input)
{
	int rc;

	if (t->in_pump) {
		t->repump = 1;
		t->repump_input |= input;
		return;
	}
	t->in_pump = 1;
	do {
		t->repump = 0;
		input |= t->repump_input;
		t->repump_input = 0;
		if (t->closing)
			break;
		rc = pump_once(t, input && !t->in_call);
		if (rc < 0) {
			ws_fail(t, rc);
			break;
		}
	} while (t->repump);
	t->in_pump = 0;
	if (t->closing)
		linger_step(t);
	else if (t->in_call && input && (t->in || t->peer_closed))
		uv_idle_start(&t->idle, on_idle);
}

/* --- closing --------------------------------------------------------------- */

static void on_part_closed(struct ws_stream *t)
{
	if (--t->pending_closes > 0)
		return;
	if (t->close_cb)
		t->close_cb(&t->s);
	pt_chunk_put(t->in);
	pt_chunk_put(t->wchunk);
	free(t->text);
	free(t);
}

static void on_inner_closed(struct pt_stream *inner)
{
	on_part_closed(inner->data);
}

static void on_handle_closed(uv_handle_t *h)
{
	on_part_closed(h->data);
}

static void finish_close(struct ws_stream *t)
{
	if (t->finished)
		return;
	t->finished = 1;
	t->pending_closes = 3;
	uv_close((uv_handle_t *)&t->idle, on_handle_closed);
	uv_close((uv_handle_t *)&t->linger, on_handle_closed);
	pt_stream_close(t->inner, on_inner_closed);
}

static void on_linger(uv_timer_t *timer)
{
	finish_close(timer->data);
}

/* Closing with a close frame to send: send it, say FIN, and read until the
 * peer's close frame, its end, or the timer. */
static void linger_step(struct ws_stream *t)
{
	int done = 0;

	if (t->finished)
		return;
	if (t->in_pump) {
		t->repump = 1;
		return;
	}
	t->in_pump = 1;
	do {
		t->repump = 0;
		if (out_flush(t) < 0) {
			done = 1;
			break;
		}
		if (t->inner_writing)
			break;
		if (t->peer_closed || t->inner_eof) {
			done = 1;
			break;
		}
		if (!t->inner_shut) {
			t->inner_shut = 1;
			pt_stream_shutdown(t->inner);
			if (t->finished)
				break;
		}
		if (!t->inner_reading) {
			if (pt_stream_read_start(t->inner, on_inner_read) < 0) {
				done = 1;
				break;
			}
			t->inner_reading = 1;
		}
	} while (t->repump);
	t->in_pump = 0;
	if (done)
		finish_close(t);
}

/* What comes while we wait for the peer's close frame: read for it and
 * drop the rest. */
static void linger_read(struct ws_stream *t, ssize_t nread, char *chunk)
{
	struct pt_ws_event ev;
	size_t off = 0;
	ssize_t k;

	if (nread <= 0) {
		t->inner_reading = 0;
		t->inner_eof = 1;
		finish_close(t);
		return;
	}
	while (off < (size_t)nread && !t->peer_closed) {
		k = pt_ws_read(&t->rd, (uint8_t *)chunk + off, (size_t)nread - off, NULL, &ev);
		if (k < 0)
			break; /* a broken peer: drain what it sends until the end */
		off += (size_t)k;
		if (ev.type == PT_WS_EV_CLOSE) {
			t->peer_closed = 1;
			t->peer_code = ev.code;
			memcpy(t->peer_reason, ev.data, ev.len);
			t->peer_reason[ev.len] = '\0';
		}
	}
	pt_chunk_put(chunk);
	if (t->peer_closed)
		linger_step(t);
}

static void ws_close(struct pt_stream *s, pt_stream_close_cb cb)
{
	struct ws_stream *t = (struct ws_stream *)s;
	/* The owner's bytes are not ours to read once it closed: a frame cut
	 * short cannot be followed by a close frame. */
	int owner_bytes = t->frame_open || (t->inner_writing && t->fly == FLY_DIRECT);

	if (t->closing)
		return;
	t->closing = 1;
	t->close_cb = cb;
	t->read_cb = NULL;
	t->wpending = 0;
	t->wdata = NULL;
	pt_chunk_put(t->in);
	t->in = NULL;
	uv_idle_stop(&t->idle);
	stop_inner_reading(t);
	if (owner_bytes || t->out_dead || !(t->close_queued || t->close_sent) ||
	    (t->close_sent && t->peer_closed && !t->inner_writing)) {
		finish_close(t);
		return;
	}
	uv_timer_start(&t->linger, on_linger, WS_LINGER_MS, 0);
	linger_step(t);
}

/* --- the stream's operations ------------------------------------------------ */

static int ws_read_start(struct pt_stream *s, pt_stream_read_cb cb)
{
	struct ws_stream *t = (struct ws_stream *)s;
	int rc;

	if (t->closing)
		return UV_EINVAL;
	if (t->err) {
		t->err_reported = 1;
		return t->err;
	}
	if (t->eof_delivered)
		return UV_EOF;
	t->read_cb = cb;
	if (t->in_pump) {
		t->repump = 1;
		t->repump_input = 1;
		return 0;
	}
	if (t->in || t->peer_closed) {
		uv_idle_start(&t->idle, on_idle);
		return 0;
	}
	if (!t->inner_reading) {
		if ((rc = pt_stream_read_start(t->inner, on_inner_read)) < 0) {
			t->read_cb = NULL;
			return rc;
		}
		t->inner_reading = 1;
	}
	return 0;
}

static int ws_read_stop(struct pt_stream *s)
{
	struct ws_stream *t = (struct ws_stream *)s;

	t->read_cb = NULL;
	if (!t->in_pump && !t->closing)
		stop_inner_reading(t);
	return 0;
}

static int ws_write(struct pt_stream *s, const char *data, size_t len, pt_stream_write_cb cb)
{
	struct ws_stream *t = (struct ws_stream *)s;

	if (t->closing)
		return UV_EINVAL;
	if (t->err) {
		t->err_reported = 1;
		return t->err;
	}
	if (t->wpending)
		return UV_EBUSY;
	if (t->shut_requested || t->close_queued || t->close_sent || t->peer_closed)
		return UV_EPIPE;
	t->wdata = data;
	t->wlen = len;
	t->woff = 0;
	t->write_cb = cb;
	t->wpending = 1;
	t->wstarted = 0;
	t->in_call = 1;
	ws_pump(t, 0);
	t->in_call = 0;
	if (t->err && !t->err_reported) {
		t->err_reported = 1;
		t->wpending = 0;
		return t->err;
	}
	if (!t->wpending)
		return t->wresult == 0 ? PT_STREAM_DONE : t->wresult;
	return 0;
}

static int ws_shutdown(struct pt_stream *s)
{
	struct ws_stream *t = (struct ws_stream *)s;

	if (t->closing || t->shut_requested)
		return 0;
	t->shut_requested = 1;
	t->in_call = 1;
	ws_pump(t, 0);
	t->in_call = 0;
	if (t->err && !t->err_reported) {
		t->err_reported = 1;
		return t->err;
	}
	return 0;
}

static int ws_fileno(struct pt_stream *s)
{
	return -ENOTSUP;
}

static const struct pt_stream_ops ws_ops = {
	.name = "ws",
	.read_start = ws_read_start,
	.read_stop = ws_read_stop,
	.write = ws_write,
	.shutdown = ws_shutdown,
	.close = ws_close,
	.fileno = ws_fileno,
};

struct pt_stream *pt_ws_stream_new(struct pt_stream *inner, int server, const char *pre,
				   size_t prelen)
{
	struct ws_stream *t;

	if (prelen > PT_CHUNK_SIZE)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	if (prelen > 0) {
		t->in = pt_chunk_get();
		if (!t->in) {
			free(t);
			return NULL;
		}
		memcpy(t->in, pre, prelen);
		t->inlen = prelen;
	}
	pt_ws_reader_init(&t->rd, server);
	t->rd.max_frame = PT_WS_STREAM_MAX_FRAME;
	t->server = server ? 1 : 0;
	uv_idle_init(inner->loop, &t->idle);
	t->idle.data = t;
	uv_timer_init(inner->loop, &t->linger);
	t->linger.data = t;
	t->inner = inner;
	inner->data = t;
	t->s.ops = &ws_ops;
	t->s.loop = inner->loop;
	t->s.id = inner->id;
	return &t->s;
}

int pt_ws_stream_limits(struct pt_stream *s, uint64_t max_frame, int binary_only)
{
	struct ws_stream *t = (struct ws_stream *)s;

	if (s->ops != &ws_ops)
		return -EINVAL;
	t->rd.max_frame = max_frame;
	t->rd.binary_only = binary_only ? 1 : 0;
	return 0;
}

int pt_ws_stream_close_with(struct pt_stream *s, uint16_t code, const char *reason,
			    pt_stream_close_cb cb)
{
	struct ws_stream *t = (struct ws_stream *)s;
	uint8_t body[PT_WS_CONTROL_MAX];
	int n;

	if (s->ops != &ws_ops || t->closing)
		return -EINVAL;
	if ((n = pt_ws_close_payload(body, code, reason)) < 0)
		return n;
	queue_close(t, body, (size_t)n, code);
	ws_close(s, cb);
	return 0;
}

int pt_ws_stream_queue_close(struct pt_stream *s, uint16_t code, const char *reason)
{
	struct ws_stream *t = (struct ws_stream *)s;
	uint8_t body[PT_WS_CONTROL_MAX];
	int n;

	if (s->ops != &ws_ops || t->closing)
		return -EINVAL;
	if (t->close_queued || t->close_sent)
		return -EALREADY;
	if ((n = pt_ws_close_payload(body, code, reason)) < 0)
		return n;
	queue_close(t, body, (size_t)n, code);
	if (!t->in_pump && !t->in_call)
		ws_pump(t, 0);
	return 0;
}

int pt_ws_stream_send_text(struct pt_stream *s, const char *text)
{
	struct ws_stream *t = (struct ws_stream *)s;
	size_t n = strlen(text);
	int h;

	if (s->ops != &ws_ops || !t->server || n > PT_WS_TEXT_MAX)
		return -EINVAL;
	if (t->closing || t->close_queued || t->close_sent || t->err || t->out_dead)
		return -EPIPE;
	if (t->text) /* the last one is still on its way */
		return -EBUSY;
	if (!(t->text = malloc(14 + n)))
		return -ENOMEM;
	if ((h = pt_ws_frame_header(t->text, PT_WS_OP_TEXT, 1, n, NULL)) < 0) {
		free(t->text);
		t->text = NULL;
		return -EINVAL;
	}
	memcpy(t->text + h, text, n);
	t->textlen = (size_t)h + n;
	t->text_queued = 1;
	/* Between the owner's frames: a frame under way finishes first. */
	if (!t->in_pump && !t->in_call)
		ws_pump(t, 0);
	return 0;
}

int pt_ws_stream_peer_close(struct pt_stream *s, uint16_t *code, const char **reason)
{
	struct ws_stream *t = (struct ws_stream *)s;

	if (s->ops != &ws_ops)
		return -EINVAL;
	if (!t->peer_closed)
		return -ENOENT;
	if (code)
		*code = t->peer_code;
	if (reason)
		*reason = t->peer_reason;
	return 0;
}

uint16_t pt_ws_stream_sent_close(struct pt_stream *s, const char **why)
{
	struct ws_stream *t = (struct ws_stream *)s;

	if (s->ops != &ws_ops) {
		if (why)
			*why = NULL;
		return 0;
	}
	if (why)
		*why = t->why;
	return t->close_queued || t->close_sent ? t->sent_code : 0;
}
