/*
 * gw_harness.h - what the gateway's fuzz targets (fuzz_vnc_front.c,
 * fuzz_vnc_backend.c) share: a gateway on a private loop whose broker
 * answers in-process (struct gw's call hook), and a stream that records
 * what the gateway writes instead of a socket.
 *
 * The recorder keeps libuv's promises to its user (include/portico/
 * stream.h): a write either completes at once (PT_STREAM_DONE) or later,
 * when the harness says so (h_flush, as the loop would); a close callback
 * always comes later, never inside the close.  It aborts when the gateway
 * breaks the contract: a second write while one is in flight, a write or a
 * read start after close, a close twice.
 */
#ifndef TESTS_FUZZ_GW_HARNESS_H
#define TESTS_FUZZ_GW_HARNESS_H

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "portico/buf.h"
#include "portico/conf.h"
#include "portico/sources.h"
#include "portico/stream.h"

/* ASan's default quarantine (256 MB) keeps every freed connection's
 * memory out of reuse, so each input faulted in fresh pages for its
 * connection: seven times slower.  A small one still catches a use after
 * free within an input, which is where the gateway's lifetimes live. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=4";
}

#define REC_MAX 16384 /* more than an input holds (libFuzzer: -max_len 4096) */

struct rec {
	struct pt_stream s;
	pt_stream_read_cb read_cb;
	int reading, closed, close_fired;
	int async;			/* writes complete later */
	pt_stream_write_cb write_cb;	/* the write in flight, when async */
	pt_stream_close_cb close_cb;
	struct rec *next_live;
	size_t outlen, inlen;
	unsigned char out[REC_MAX]; /* what was written, cut at REC_MAX */
	unsigned char in[REC_MAX];  /* what the peer sent that was not read yet */
};

static struct rec *h_recs; /* every recorder made for the current input */

static int rec_read_start(struct pt_stream *s, pt_stream_read_cb cb)
{
	struct rec *r = (struct rec *)s;

	if (r->closed)
		abort();
	r->read_cb = cb;
	r->reading = 1;
	return 0;
}

static int rec_read_stop(struct pt_stream *s)
{
	((struct rec *)s)->reading = 0;
	return 0;
}

static int rec_write(struct pt_stream *s, const char *d, size_t n, pt_stream_write_cb cb)
{
	struct rec *r = (struct rec *)s;
	size_t k = n < REC_MAX - r->outlen ? n : REC_MAX - r->outlen;

	if (r->closed || r->write_cb) /* one write in flight, and none after close */
		abort();
	memcpy(r->out + r->outlen, d, k);
	r->outlen += k;
	if (!r->async)
		return PT_STREAM_DONE;
	r->write_cb = cb;
	return 0;
}

static int rec_shutdown(struct pt_stream *s)
{
	return 0;
}

static void rec_close(struct pt_stream *s, pt_stream_close_cb cb)
{
	struct rec *r = (struct rec *)s;

	if (r->closed)
		abort();
	r->closed = 1;
	r->reading = 0;
	r->close_cb = cb;
}

static int rec_fileno(struct pt_stream *s)
{
	return -ENOTSUP; /* no splice: the relay copies */
}

static const struct pt_stream_ops rec_ops = {
	.name = "recorder",
	.read_start = rec_read_start,
	.read_stop = rec_read_stop,
	.write = rec_write,
	.shutdown = rec_shutdown,
	.close = rec_close,
	.fileno = rec_fileno,
};

/* Recorders come from a small static pool: zeroing two fresh 32 KiB
 * buffers per input was most of a run's time. */
#define REC_POOL 4
static struct rec h_pool[REC_POOL];
static int h_pool_used;

static struct rec *rec_new(uv_loop_t *loop, int async)
{
	struct rec *r;

	if (h_pool_used == REC_POOL)
		abort();
	r = &h_pool[h_pool_used++];
	memset(r, 0, offsetof(struct rec, out));
	r->outlen = r->inlen = 0;
	r->s.ops = &rec_ops;
	r->s.loop = loop;
	r->async = async;
	r->next_live = h_recs;
	h_recs = r;
	return r;
}

/* Hand what the peer sent to the reader, as a read callback gets it (a
 * chunk it owns), while it reads.  1 when something was delivered. */
static int rec_deliver(struct rec *r)
{
	char *chunk;
	size_t n = r->inlen;

	if (!r->reading || r->closed || !n)
		return 0;
	chunk = pt_chunk_get();
	if (!chunk)
		abort();
	memcpy(chunk, r->in, n);
	r->inlen = 0;
	r->read_cb(&r->s, (ssize_t)n, chunk);
	return 1;
}

/* Bytes from the peer: a reader gets them now; one that stopped reading
 * gets them when it reads again (a socket keeps them meanwhile). */
static void rec_feed(struct rec *r, const uint8_t *p, size_t n)
{
	if (n > REC_MAX - r->inlen)
		n = REC_MAX - r->inlen;
	memcpy(r->in + r->inlen, p, n);
	r->inlen += n;
	rec_deliver(r);
}

/* What the loop would do next: finish writes in flight (cancelled on a
 * closed stream) and run close callbacks.  1 when something happened. */
static int h_flush(void)
{
	int did = 0;

	for (struct rec *r = h_recs; r; r = r->next_live) {
		if (r->write_cb) {
			pt_stream_write_cb cb = r->write_cb;
			r->write_cb = NULL;
			cb(&r->s, r->closed ? UV_ECANCELED : 0);
			did = 1;
		}
		did |= rec_deliver(r);
		if (r->closed && !r->close_fired) {
			r->close_fired = 1;
			if (r->close_cb)
				r->close_cb(&r->s);
			did = 1;
		}
	}
	return did;
}

/* Give back every recorder of the input; each must have been closed. */
static void h_recs_free(void)
{
	for (; h_recs; h_recs = h_recs->next_live)
		if (!h_recs->close_fired)
			abort(); /* the gateway never closed a stream it owned */
	h_pool_used = 0;
}

/* --- the broker, in-process --------------------------------------------------------- */

struct h_call {
	char path[64];
	json_t *body;
	gw_call_cb cb;
	void *arg;
};
#define H_CALLS 16
static struct h_call h_queue[H_CALLS]; /* calls not answered yet */
static int h_ncalls;
static void (*h_on_call)(const char *path, json_t *body); /* the target's check */

static int h_call_hook(struct gw *g, const char *path, json_t *body, gw_call_cb cb, void *arg)
{
	if (h_ncalls == H_CALLS || !body) {
		json_decref(body);
		return -1;
	}
	if (h_on_call)
		h_on_call(path, body);
	snprintf(h_queue[h_ncalls].path, sizeof(h_queue[0].path), "%s", path);
	h_queue[h_ncalls].body = body;
	h_queue[h_ncalls].cb = cb;
	h_queue[h_ncalls].arg = arg;
	h_ncalls++;
	return 0;
}

/* Answer the oldest call waiting, if any: rc -1 (unreachable), or status
 * and a body (JSON text).  1 when there was one. */
static int h_answer(int rc, int status, const char *json)
{
	struct pt_api_resp resp = { 0 };
	struct h_call c = h_queue[0];

	if (!h_ncalls)
		return 0;
	memmove(h_queue, h_queue + 1, sizeof(h_queue[0]) * (size_t)--h_ncalls);
	resp.status = status;
	resp.json = json ? json_loads(json, 0, NULL) : NULL;
	if (c.cb)
		c.cb(c.arg, rc, rc ? NULL : &resp, rc ? "connection refused" : NULL);
	json_decref(resp.json);
	json_decref(c.body);
	return 1;
}

/* --- the gateway ---------------------------------------------------------------------- */

static struct gw h_gw;
static struct pt_conf h_conf;
static uv_loop_t h_loop;
static int h_closed; /* close callbacks of connections */
static struct gw_conn_proto h_proto;

static void h_on_closed(struct gw_conn *c)
{
	h_closed++;
	gw_vnc_proto.closed(c);
}

static struct gw *h_gateway(void)
{
	if (h_gw.loop)
		return &h_gw;
	if (uv_loop_init(&h_loop))
		abort();
	h_conf.gateway.handshake_timeout_ms = 30000;
	h_conf.gateway.max_connections = 100;
	h_conf.gateway.max_pending = 100;
	h_conf.gateway.max_pending_per_addr = 20;
	h_conf.gateway.input_report_ms = 30000;
	h_gw.loop = &h_loop;
	h_gw.conf = &h_conf;
	h_gw.call = h_call_hook;
	h_gw.sources = pt_sources_new();
	h_gw.max_connections = 100;
	h_proto = gw_vnc_proto;
	h_proto.closed = h_on_closed;
	return &h_gw;
}

/* Close everything the input left open and run the loop until it is all
 * gone; then check nothing is counted any more. */
static void h_teardown(const char *source)
{
	struct gw *g = &h_gw;
	int busy = 1;

	gw_conn_close_all(g);
	for (int i = 0; i < 1000 && busy; i++)
		busy = h_flush() | h_answer(0, 200, "{}") | uv_run(g->loop, UV_RUN_NOWAIT);
	if (busy || g->conns || g->nconns || g->pending || pt_sources_get(g->sources, source))
		abort(); /* a connection or a count left behind */
	h_recs_free();
}

#endif
