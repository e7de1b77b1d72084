/* test_ws_stream.c - the WebSocket stream (lib/ws_stream.c) over real
 * sockets: both ways at volume, the closing handshake from either side and
 * with a reason, pre-read bytes, pings, what a hostile client sees, a reader
 * that stops, the relay and TLS under it.  The codec: test_ws.c.  One file:
 * every test uses the loop and endpoint helpers at its top. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portico/buf.h"
#include "portico/relay.h"
#include "portico/tls.h"
#include "portico/ws.h"
#include "tls_fixture.h"

/* Streams over a socketpair on a loop run by the test itself. */
static uv_loop_t loop;

static void loop_setup(void)
{
	signal(SIGPIPE, SIG_IGN); /* as the daemons do: a peer gone is an error, not a signal */
	cr_assert_eq(uv_loop_init(&loop), 0);
}

TestSuite(ws_stream, .init = loop_setup, .timeout = 60);

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until pred(arg) holds or ms pass; returns whether it held. */
static int run_until(int (*pred)(void *), void *arg, int ms)
{
	uv_timer_t tick;
	uint64_t end;
	int ok;

	uv_update_time(&loop);
	end = uv_now(&loop) + (uint64_t)ms;
	uv_timer_init(&loop, &tick);
	uv_timer_start(&tick, on_tick, 5, 5);
	while (!(ok = pred ? pred(arg) : 0) && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&tick, NULL);
	uv_run(&loop, UV_RUN_NOWAIT);
	return ok;
}

static void socket_pair(struct pt_stream **a, struct pt_stream **b)
{
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	*a = pt_plain_new(&loop, UV_NAMED_PIPE);
	*b = pt_plain_new(&loop, UV_NAMED_PIPE);
	cr_assert(*a && *b);
	cr_assert_eq(uv_pipe_open((uv_pipe_t *)pt_plain_uv(*a), sv[0]), 0);
	cr_assert_eq(uv_pipe_open((uv_pipe_t *)pt_plain_uv(*b), sv[1]), 0);
}

static void pattern_at(uint8_t *p, size_t n, uint64_t off, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(((off + i) * 2654435761u >> 13) ^ seed);
}

/* One end: what it read, and a writer of `total` pattern bytes. */
struct ep {
	struct pt_stream *s;
	uint8_t *got;
	size_t len, cap;
	int eof, err, closed, reading;
	size_t stop_at; /* stop reading once this many bytes came (0: never) */
	uint64_t total, sent;
	size_t inflight, piece;
	unsigned seed;
	int wdone, werr, shut_after;
	uint8_t *wbuf;
};

static void ep_read(struct pt_stream *s, ssize_t nread, char *chunk)
{
	struct ep *e = s->data;

	if (nread > 0) {
		cr_assert_not_null(chunk);
		if (e->len + (size_t)nread > e->cap) {
			e->cap = (e->len + (size_t)nread) * 2;
			e->got = realloc(e->got, e->cap);
			cr_assert_not_null(e->got);
		}
		memcpy(e->got + e->len, chunk, (size_t)nread);
		e->len += (size_t)nread;
		pt_chunk_put(chunk);
		if (e->stop_at && e->len >= e->stop_at) {
			pt_stream_read_stop(s);
			e->reading = 0;
		}
		return;
	}
	cr_assert_null(chunk);
	e->reading = 0;
	if (nread == UV_EOF)
		e->eof = 1;
	else
		e->err = (int)nread;
}

static void ep_start(struct ep *e, struct pt_stream *s, unsigned seed)
{
	e->s = s;
	e->seed = seed;
	s->data = e;
	cr_assert_eq(pt_stream_read_start(s, ep_read), 0);
	e->reading = 1;
}

static const size_t pieces[] = { 1, 100, 16384, 16385, 65536, 300000, 7, 131072, 0 };
#define NPIECES (sizeof(pieces) / sizeof(pieces[0]))

static void ep_write_more(struct ep *e);

static void ep_written(struct pt_stream *s, int status)
{
	struct ep *e = s->data;

	if (status < 0) {
		e->werr = status;
		return;
	}
	e->sent += e->inflight;
	e->inflight = 0;
	ep_write_more(e);
}

static void ep_write_more(struct ep *e)
{
	if (!e->wbuf)
		e->wbuf = malloc(300000);
	while (e->sent < e->total) {
		size_t n = pieces[e->piece++ % NPIECES];
		int rc;
		if (n > e->total - e->sent)
			n = e->total - e->sent;
		pattern_at(e->wbuf, n, e->sent, e->seed);
		rc = pt_stream_write(e->s, (char *)e->wbuf, n, ep_written);
		if (rc == PT_STREAM_DONE) {
			e->sent += n;
			continue;
		}
		if (rc < 0) {
			e->werr = rc;
			return;
		}
		cr_assert_eq(rc, 0);
		e->inflight = n;
		return;
	}
	e->wdone = 1;
	if (e->shut_after)
		cr_assert_eq(pt_stream_shutdown(e->s), 0);
}

static void ep_closed(struct pt_stream *s)
{
	struct ep *e = s->data;

	e->closed = 1;
}

static void ep_close(struct ep *e)
{
	pt_stream_close(e->s, ep_closed);
}

static void ep_free(struct ep *e)
{
	free(e->got);
	free(e->wbuf);
}

/* The bytes e read are total bytes of the pattern of seed. */
static void ep_check(struct ep *e, uint64_t total, unsigned seed)
{
	uint8_t *want = malloc(total + 1);

	cr_assert_eq(e->len, total, "read %zu bytes, want %llu", e->len, (unsigned long long)total);
	pattern_at(want, total, 0, seed);
	for (size_t i = 0; i < total; i++)
		if (e->got[i] != want[i])
			cr_assert_fail("byte %zu differs", i);
	free(want);
}

static int closed2(void *arg)
{
	struct ep **e = arg;

	return e[0]->closed && (!e[1] || e[1]->closed);
}

/* Close what is still open, wait for it, and check nothing is left: no
 * handle on the loop, no chunk out. */
static void finish(struct ep *a, struct ep *b)
{
	struct ep *both[2] = { a, b };

	if (a && !a->closed && a->s)
		ep_close(a);
	if (b && !b->closed && b->s)
		ep_close(b);
	cr_assert(run_until(closed2, both, 5000), "streams did not close");
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0, "handles left open");
	cr_assert_eq(pt_chunk_in_use(), 0, "chunks leaked: %lld", (long long)pt_chunk_in_use());
	if (a)
		ep_free(a);
	if (b)
		ep_free(b);
}

struct two {
	struct ep *a, *b;
	uint64_t total;
};

static int both_read_all(void *arg)
{
	struct two *t = arg;

	return t->a->len >= t->total && t->b->len >= t->total && t->a->wdone && t->b->wdone;
}

static int got_eof(void *arg)
{
	return ((struct ep *)arg)->eof || ((struct ep *)arg)->err;
}

static int is_closed(void *arg)
{
	return ((struct ep *)arg)->closed;
}

static void ws_pair(struct ep *srv, struct ep *cli)
{
	struct pt_stream *a, *b;

	socket_pair(&a, &b);
	ep_start(srv, pt_ws_stream_new(a, 1, NULL, 0), 1);
	ep_start(cli, pt_ws_stream_new(b, 0, NULL, 0), 2);
}

Test(ws_stream, one_mib_both_ways_intact)
{
	struct ep srv = { 0 }, cli = { 0 };
	struct two t = { &srv, &cli, 1 << 20 };

	ws_pair(&srv, &cli);
	cr_assert_eq(pt_stream_fileno(srv.s), -ENOTSUP);
	cr_assert_eq(pt_stream_fileno(cli.s), -ENOTSUP);
	srv.total = cli.total = t.total;
	ep_write_more(&srv);
	ep_write_more(&cli);
	cr_assert(run_until(both_read_all, &t, 20000), "server read %zu, client %zu", srv.len,
		  cli.len);
	cr_assert_eq(srv.werr, 0);
	cr_assert_eq(cli.werr, 0);
	ep_check(&srv, t.total, 2);
	ep_check(&cli, t.total, 1);
	cr_assert_not(srv.eof || srv.err || cli.eof || cli.err);
	/* One chunk each way in flight at most, and the readers' none. */
	cr_assert_leq(pt_chunk_in_use(), 4);
	finish(&srv, &cli);
}

/* Either side starts the closing handshake; both see the end, with 1000. */
static void close_handshake(int server_first)
{
	struct ep srv = { 0 }, cli = { 0 };
	struct ep *first = server_first ? &srv : &cli, *second = server_first ? &cli : &srv;
	uint16_t code = 0;
	const char *reason = NULL;

	ws_pair(&srv, &cli);
	first->total = 1000;
	first->shut_after = 1;
	ep_write_more(first);
	cr_assert(run_until(got_eof, second, 5000), "no EOF for the side that did not close");
	cr_assert_eq(second->err, 0);
	ep_check(second, 1000, first->seed);
	cr_assert_eq(pt_ws_stream_peer_close(second->s, &code, &reason), 0);
	cr_assert_eq(code, 1000);
	cr_assert_str_eq(reason, "");
	/* It answered with the same code, and can send no more. */
	cr_assert_eq(pt_ws_stream_sent_close(second->s, NULL), 1000);
	cr_assert_eq(pt_stream_write(second->s, "x", 1, ep_written), UV_EPIPE);
	cr_assert(run_until(got_eof, first, 5000), "no EOF for the side that closed");
	cr_assert_eq(first->err, 0);
	cr_assert_eq(pt_ws_stream_peer_close(first->s, &code, &reason), 0);
	cr_assert_eq(code, 1000);
	cr_assert_eq(pt_stream_write(first->s, "x", 1, ep_written), UV_EPIPE);
	cr_assert_eq(pt_stream_read_start(first->s, ep_read), UV_EOF);
	/* Both close frames went: neither waits at close. */
	ep_close(&srv);
	ep_close(&cli);
	struct ep *both[2] = { &srv, &cli };
	cr_assert(run_until(closed2, both, 500), "a close waited");
	finish(&srv, &cli);
}

Test(ws_stream, close_handshake_client_first)
{
	close_handshake(0);
}

Test(ws_stream, close_handshake_server_first)
{
	close_handshake(1);
}

Test(ws_stream, close_with_reason_seen_by_the_other_side)
{
	struct ep srv = { 0 }, cli = { 0 };
	char long_reason[PT_WS_REASON_MAX + 2];
	uint16_t code = 0;
	const char *reason = NULL;

	ws_pair(&srv, &cli);
	/* Refused arguments leave the stream open and working. */
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	cr_assert_eq(pt_ws_stream_close_with(srv.s, 1008, long_reason, ep_closed), -EINVAL);
	cr_assert_eq(pt_ws_stream_close_with(srv.s, 1005, NULL, ep_closed), -EINVAL);
	cr_assert_eq(pt_ws_stream_close_with(srv.s, 1000, "\xc3(", ep_closed), -EINVAL);
	cr_assert_eq(pt_ws_stream_close_with(srv.s, 999, NULL, ep_closed), -EINVAL);
	struct pt_stream *plain = pt_plain_new(&loop, UV_TCP);
	cr_assert_eq(pt_ws_stream_close_with(plain, 1000, NULL, NULL), -EINVAL);
	cr_assert_eq(pt_ws_stream_peer_close(plain, NULL, NULL), -EINVAL);
	cr_assert_eq(pt_ws_stream_limits(plain, 0, 0), -EINVAL);
	pt_stream_close(plain, NULL);
	cr_assert_eq(pt_ws_stream_peer_close(srv.s, NULL, NULL), -ENOENT);
	cr_assert_eq(pt_ws_stream_sent_close(srv.s, NULL), 0);
	srv.total = 10;
	ep_write_more(&srv);
	cr_assert(srv.wdone);

	cr_assert_eq(pt_ws_stream_close_with(srv.s, 1008, "ticket refused: expired", ep_closed), 0);
	cr_assert(run_until(got_eof, &cli, 5000));
	cr_assert_eq(cli.err, 0);
	ep_check(&cli, 10, 1);
	cr_assert_eq(pt_ws_stream_peer_close(cli.s, &code, &reason), 0);
	cr_assert_eq(code, 1008);
	cr_assert_str_eq(reason, "ticket refused: expired");
	/* The client answered, so the server's close did not wait for its
	 * limit. */
	cr_assert(run_until(is_closed, &srv, 1000), "the server's close waited for the timer");
	finish(&srv, &cli);
}

Test(ws_stream, close_with_behind_a_backlog_still_arrives)
{
	/* The client reads nothing for a while: the server's writes fill the
	 * socket, one waits, and then the server closes with a reason.  The
	 * close frame waits for the bytes ahead of it and goes after them. */
	struct ep srv = { 0 }, cli = { 0 };
	static uint8_t buf[16384];
	size_t done = 0;
	uint16_t code;
	const char *reason;
	int rc;

	ws_pair(&srv, &cli);
	pt_stream_read_stop(cli.s);
	cli.reading = 0;
	for (;;) {
		pattern_at(buf, sizeof(buf), done * sizeof(buf), 1);
		rc = pt_stream_write(srv.s, (char *)buf, sizeof(buf), ep_written);
		if (rc == 0)
			break;
		cr_assert_eq(rc, PT_STREAM_DONE);
		done++;
		cr_assert_lt(done, 1000, "the socket never filled");
	}
	cr_assert_eq(pt_ws_stream_close_with(srv.s, 1008, "slow", ep_closed), 0);
	run_until(NULL, NULL, 100);
	cr_assert_not(srv.closed, "closed before its close frame went");
	cr_assert_eq(pt_stream_read_start(cli.s, ep_read), 0);
	cr_assert(run_until(got_eof, &cli, 5000));
	cr_assert_eq(cli.err, 0);
	/* every write that was taken, none that was waiting, then the close */
	ep_check(&cli, done * sizeof(buf), 1);
	cr_assert_eq(pt_ws_stream_peer_close(cli.s, &code, &reason), 0);
	cr_assert_eq(code, 1008);
	cr_assert_str_eq(reason, "slow");
	cr_assert(run_until(is_closed, &srv, 1000));
	cr_assert_eq(srv.werr, 0, "a callback for the write dropped at close");
	finish(&srv, &cli);
}

/* A raw peer: a plain stream whose bytes the test reads and writes. */
static void raw_send(struct ep *raw, const void *p, size_t n)
{
	int rc = pt_stream_write(raw->s, p, n, ep_written);

	cr_assert_eq(rc, PT_STREAM_DONE, "raw write of %zu bytes: %d", n, rc);
}

struct want_len {
	struct ep *e;
	size_t len;
};

static int has_len(void *arg)
{
	struct want_len *w = arg;

	return w->e->len >= w->len || w->e->eof || w->e->err;
}

static void run_for_len(struct ep *e, size_t len)
{
	struct want_len w = { e, len };

	cr_assert(run_until(has_len, &w, 5000), "%zu bytes of %zu", e->len, len);
}

Test(ws_stream, close_with_to_a_peer_that_never_answers)
{
	struct pt_stream *a, *b;
	struct ep srv = { 0 }, raw = { 0 };
	uint64_t t0;

	socket_pair(&a, &b);
	srv.s = pt_ws_stream_new(a, 1, NULL, 0);
	srv.s->data = &srv;
	raw.s = b;
	b->data = &raw;
	t0 = uv_now(&loop);
	cr_assert_eq(pt_ws_stream_close_with(srv.s, 4000, "bye", ep_closed), 0);
	/* Flushed, FIN sent, then the wait for an answer ends at its limit. */
	cr_assert(run_until(is_closed, &srv, 5000));
	cr_assert_geq(uv_now(&loop) - t0, 1500);
	cr_assert_eq(pt_stream_read_start(raw.s, ep_read), 0);
	cr_assert(run_until(got_eof, &raw, 5000));
	cr_assert_eq(raw.err, 0);
	cr_assert_eq(raw.len, 7);
	cr_assert_eq(memcmp(raw.got,
			    "\x88\x05\x0f\xa0"
			    "bye",
			    7),
		     0);
	finish(&raw, NULL);
}

/* Frames made with the header writer (test_ws.c checks it against the
 * RFC's examples). */
static size_t frame(uint8_t *out, int op, int fin, const void *payload, size_t n, int masked)
{
	static const uint8_t key[4] = { 0xa1, 0x07, 0x5c, 0xe3 };
	int h = pt_ws_frame_header(out, op, fin, n, masked ? key : NULL);

	cr_assert_gt(h, 0);
	if (masked)
		pt_ws_mask(out + h, payload, n, key, 0);
	else if (n)
		memcpy(out + h, payload, n);
	return (size_t)h + n;
}

/* Frames as a browser sends them (masked). */
static size_t cframe(uint8_t *out, int op, int fin, const char *payload, size_t n)
{
	return frame(out, op, fin, payload, n, 1);
}

Test(ws_stream, pre_bytes_are_read_first)
{
	struct pt_stream *a, *b;
	struct ep srv = { 0 }, raw = { 0 };
	uint8_t f[256];
	size_t n = 0, cut;

	socket_pair(&a, &b);
	n += cframe(f + n, PT_WS_OP_BINARY, 1, "pre-", 4);
	cut = n + 8; /* into the second frame's payload */
	n += cframe(f + n, PT_WS_OP_BINARY, 1, "data!", 5);
	n += cframe(f + n, PT_WS_OP_BINARY, 1, " more", 5);
	raw.s = b;
	b->data = &raw;
	cr_assert_null(pt_ws_stream_new(a, 1, (char *)f, PT_CHUNK_SIZE + 1));
	ep_start(&srv, pt_ws_stream_new(a, 1, (char *)f, cut), 0);
	raw_send(&raw, f + cut, n - cut);
	run_for_len(&srv, 14);
	cr_assert_eq(srv.len, 14);
	cr_assert_eq(memcmp(srv.got, "pre-data! more", 14), 0);
	finish(&srv, &raw);
}

Test(ws_stream, pre_bytes_with_a_close_in_them)
{
	struct pt_stream *a, *b;
	struct ep srv = { 0 }, raw = { 0 };
	uint8_t f[256];
	size_t n = 0;
	uint16_t code;

	socket_pair(&a, &b);
	n += cframe(f + n, PT_WS_OP_BINARY, 1, "last", 4);
	n += cframe(f + n, PT_WS_OP_CLOSE, 1, "\x03\xe9", 2);
	ep_start(&srv, pt_ws_stream_new(a, 1, (char *)f, n), 0);
	ep_start(&raw, b, 0);
	cr_assert(run_until(got_eof, &srv, 5000));
	cr_assert_eq(srv.err, 0);
	cr_assert_eq(srv.len, 4);
	cr_assert_eq(memcmp(srv.got, "last", 4), 0);
	cr_assert_eq(pt_ws_stream_peer_close(srv.s, &code, NULL), 0);
	cr_assert_eq(code, 1001);
	/* The answer, then the end: with both close frames sent the server
	 * ends the TCP connection first (RFC 6455 7.1.1), before its owner
	 * even closes. */
	cr_assert(run_until(got_eof, &raw, 5000));
	cr_assert_eq(raw.err, 0);
	cr_assert_eq(raw.len, 4);
	cr_assert_eq(memcmp(raw.got, "\x88\x02\x03\xe9", 4), 0);
	finish(&srv, &raw);
}

Test(ws_stream, a_peer_gone_right_after_its_close_frame_is_an_end_not_an_error)
{
	struct pt_stream *a, *b;
	struct ep srv = { 0 }, raw = { 0 };
	uint8_t f[64];
	size_t n = 0;
	uint16_t code;

	socket_pair(&a, &b);
	n += cframe(f + n, PT_WS_OP_BINARY, 1, "bye", 3);
	n += cframe(f + n, PT_WS_OP_CLOSE, 1, "\x03\xe8", 2);
	raw.s = b;
	b->data = &raw;
	raw_send(&raw, f, n);
	ep_close(&raw); /* before the server even reads: its answer finds no one */
	cr_assert(run_until(is_closed, &raw, 5000));
	ep_start(&srv, pt_ws_stream_new(a, 1, NULL, 0), 0);
	cr_assert(run_until(got_eof, &srv, 5000));
	cr_assert_eq(srv.err, 0, "error %d", srv.err);
	cr_assert_eq(srv.len, 3);
	cr_assert_eq(pt_ws_stream_peer_close(srv.s, &code, NULL), 0);
	cr_assert_eq(code, 1000);
	finish(&srv, &raw);
}

Test(ws_stream, ping_answered_even_inside_a_fragmented_message)
{
	struct pt_stream *a, *b;
	struct ep srv = { 0 }, raw = { 0 };
	uint8_t f[256];
	size_t n;

	socket_pair(&a, &b);
	ep_start(&srv, pt_ws_stream_new(a, 1, NULL, 0), 0);
	ep_start(&raw, b, 0);
	n = cframe(f, PT_WS_OP_PING, 1, "abc", 3);
	raw_send(&raw, f, n);
	run_for_len(&raw, 5);
	cr_assert_eq(raw.len, 5);
	cr_assert_eq(memcmp(raw.got,
			    "\x8a\x03"
			    "abc",
			    5),
		     0);

	n = cframe(f, PT_WS_OP_BINARY, 0, "12", 2);
	n += cframe(f + n, PT_WS_OP_PING, 1, "", 0);
	n += cframe(f + n, PT_WS_OP_PONG, 1, "unasked", 7);
	n += cframe(f + n, PT_WS_OP_CONT, 1, "34", 2);
	raw_send(&raw, f, n);
	run_for_len(&raw, 7);
	run_for_len(&srv, 4);
	cr_assert_eq(raw.len, 7);
	cr_assert_eq(memcmp(raw.got + 5, "\x8a\x00", 2), 0);
	cr_assert_eq(srv.len, 4);
	cr_assert_eq(memcmp(srv.got, "1234", 4), 0);
	cr_assert_not(srv.eof || srv.err);
	finish(&srv, &raw);
}

Test(ws_stream, frames_on_the_wire)
{
	struct pt_stream *a, *b, *c, *d;
	struct ep srv = { 0 }, rawc = { 0 }, cli = { 0 }, raws = { 0 };
	static uint8_t big[20000], want[4 + 20000];
	uint8_t key1[4], key2[4], plain[2];

	/* server side: unmasked, the shortest length, a long write whole */
	socket_pair(&a, &b);
	ep_start(&srv, pt_ws_stream_new(a, 1, NULL, 0), 0);
	ep_start(&rawc, b, 0);
	cr_assert_eq(pt_stream_write(srv.s, "hi", 2, ep_written), PT_STREAM_DONE);
	cr_assert_eq(pt_stream_write(srv.s, "", 0, ep_written), PT_STREAM_DONE);
	pattern_at(big, sizeof(big), 0, 9);
	cr_assert_eq(pt_stream_write(srv.s, (char *)big, sizeof(big), ep_written), PT_STREAM_DONE);
	run_for_len(&rawc, 4 + 2 + 4 + sizeof(big));
	cr_assert_eq(memcmp(rawc.got, "\x82\x02hi\x82\x00\x82\x7e\x4e\x20", 10), 0);
	cr_assert_eq(memcmp(rawc.got + 10, big, sizeof(big)), 0);

	/* client side: masked with a fresh key each frame */
	socket_pair(&c, &d);
	ep_start(&cli, pt_ws_stream_new(c, 0, NULL, 0), 0);
	ep_start(&raws, d, 0);
	cr_assert_eq(pt_stream_write(cli.s, "hi", 2, ep_written), PT_STREAM_DONE);
	cr_assert_eq(pt_stream_write(cli.s, "hi", 2, ep_written), PT_STREAM_DONE);
	cr_assert_eq(pt_stream_write(cli.s, (char *)big, sizeof(big), ep_written), PT_STREAM_DONE);
	run_for_len(&raws, 2 * 8 + 8 + sizeof(big));
	cr_assert_eq(memcmp(raws.got, "\x82\x82", 2), 0);
	memcpy(key1, raws.got + 2, 4);
	pt_ws_mask(plain, raws.got + 6, 2, key1, 0);
	cr_assert_eq(memcmp(plain, "hi", 2), 0);
	cr_assert_eq(memcmp(raws.got + 8, "\x82\x82", 2), 0);
	memcpy(key2, raws.got + 10, 4);
	cr_assert_neq(memcmp(key1, key2, 4), 0, "the same masking key twice");
	cr_assert_eq(memcmp(raws.got + 16, "\x82\xfe\x4e\x20", 4), 0);
	pt_ws_mask(want, raws.got + 24, sizeof(big), raws.got + 20, 0);
	cr_assert_eq(memcmp(want, big, sizeof(big)), 0);
	struct ep *second[2] = { &cli, &raws };
	ep_close(&cli);
	ep_close(&raws);
	cr_assert(run_until(closed2, second, 5000));
	ep_free(&cli);
	ep_free(&raws);
	finish(&srv, &rawc);
}

/* A notice (a text frame) goes between the owner's binary frames, never
 * inside one; a close queued ahead goes out when the owner closes. */
Test(ws_stream, text_notice_and_a_queued_close_on_the_wire)
{
	struct pt_stream *a, *b;
	struct ep srv = { 0 }, rawc = { 0 };
	static char big[PT_WS_TEXT_MAX + 2]; /* one byte too many */

	socket_pair(&a, &b);
	ep_start(&srv, pt_ws_stream_new(a, 1, NULL, 0), 0);
	ep_start(&rawc, b, 0);
	cr_assert_eq(pt_stream_write(srv.s, "hi", 2, ep_written), PT_STREAM_DONE);
	cr_assert_eq(pt_ws_stream_send_text(srv.s, "{\"m\":1}"), 0);
	/* One at a time: the next waits for this one to go out. */
	cr_assert(pt_ws_stream_send_text(srv.s, "x") == -EBUSY ||
		  pt_ws_stream_send_text(srv.s, "x") == 0);
	memset(big, 'x', sizeof(big) - 1);
	cr_assert_eq(pt_ws_stream_send_text(srv.s, big), -EINVAL);
	run_for_len(&rawc, 4 + 9);
	cr_assert_eq(memcmp(rawc.got, "\x82\x02hi\x81\x07{\"m\":1}", 13), 0);
	cr_assert_eq(pt_ws_stream_queue_close(srv.s, 4000, "logged off by an administrator"), 0);
	cr_assert_eq(pt_ws_stream_queue_close(srv.s, 4000, "again"), -EALREADY);
	cr_assert_eq(pt_ws_stream_send_text(srv.s, "late"), -EPIPE);
	size_t at = rawc.len;
	run_for_len(&rawc, at + 2 + 2 + 30);
	cr_assert_eq(memcmp(rawc.got + at, "\x88\x20\x0f\xa0logged off by an administrator", 34), 0);
	finish(&srv, &rawc);
}

/* A client's stream sends no notices (a server's word), and a plain stream
 * is not a WebSocket. */
Test(ws_stream, notices_only_from_a_server)
{
	struct pt_stream *c, *d;
	struct ep cli = { 0 }, raws = { 0 };

	socket_pair(&c, &d);
	ep_start(&cli, pt_ws_stream_new(c, 0, NULL, 0), 0);
	ep_start(&raws, d, 0);
	cr_assert_eq(pt_ws_stream_send_text(cli.s, "x"), -EINVAL);
	struct pt_stream *plain = pt_plain_new(&loop, UV_TCP);
	cr_assert_eq(pt_ws_stream_send_text(plain, "x"), -EINVAL);
	cr_assert_eq(pt_ws_stream_queue_close(plain, 4000, NULL), -EINVAL);
	pt_stream_close(plain, NULL);
	finish(&cli, &raws);
}

/* What a client that breaks the protocol sees: the data it sent before,
 * on the server's side, then a close frame with the code, then the end. */
static const struct {
	const char *name;
	const char *bytes;
	size_t len;
	uint64_t max_frame;
	int binary_only;
	uint16_t code;
	const char *data_before;
} stream_hostile[] = {
	{ "unmasked", "\x82\x02ok", 4, 0, 0, 1002, "" },
	{ "RSV1 after data", "\x82\x82\0\0\0\0ok\xc2\x80\0\0\0\0", 14, 0, 0, 1002, "ok" },
	{ "unknown opcode", "\x83\x80\0\0\0\0", 6, 0, 0, 1002, "" },
	{ "continuation first", "\x80\x80\0\0\0\0", 6, 0, 0, 1002, "" },
	{ "ping of 126 bytes", "\x89\xfe\0\x7e", 4, 0, 0, 1002, "" },
	{ "close of 1 byte", "\x88\x81\0\0\0\0\x03", 7, 0, 0, 1002, "" },
	{ "close code 1005", "\x88\x82\0\0\0\0\x03\xed", 8, 0, 0, 1002, "" },
	{ "close reason not UTF-8", "\x88\x83\0\0\0\0\x03\xe8\xff", 9, 0, 0, 1007, "" },
	{ "text where binary only", "\x82\x81\0\0\0\0a\x81\x81\0\0\0\0b", 14, 0, 1, 1003, "a" },
	{ "over the limit", "\x82\xfe\x04\x01", 4, 1024, 0, 1009, "" },
	{ "2^62 bytes by default", "\x82\xff\x40\0\0\0\0\0\0\0\0\0\0\0", 14, PT_WS_STREAM_MAX_FRAME,
	  0, 1009, "" },
	{ "top bit of the length", "\x82\xff\x80\0\0\0\0\0\0\0\0\0\0\0", 14, 0, 0, 1002, "" },
};

Test(ws_stream, protocol_errors_close_with_their_code)
{
	for (size_t i = 0; i < sizeof(stream_hostile) / sizeof(stream_hostile[0]); i++) {
		struct pt_stream *a, *b;
		struct ep srv = { 0 }, raw = { 0 };
		const char *why = NULL;
		uint8_t want[4];
		size_t before = strlen(stream_hostile[i].data_before);

		if (i > 0) /* finish() closed the last one */
			cr_assert_eq(uv_loop_init(&loop), 0);
		socket_pair(&a, &b);
		srv.s = pt_ws_stream_new(a, 1, NULL, 0);
		cr_assert_eq(pt_ws_stream_limits(srv.s, stream_hostile[i].max_frame,
						 stream_hostile[i].binary_only),
			     0);
		ep_start(&srv, srv.s, 0);
		ep_start(&raw, b, 0);
		raw_send(&raw, stream_hostile[i].bytes, stream_hostile[i].len);
		cr_assert(run_until(got_eof, &srv, 5000), "%s", stream_hostile[i].name);
		cr_assert_eq(srv.err, UV_EPROTO, "%s: %d", stream_hostile[i].name, srv.err);
		cr_assert_eq(srv.len, before, "%s", stream_hostile[i].name);
		if (before)
			cr_assert_eq(memcmp(srv.got, stream_hostile[i].data_before, before), 0);
		cr_assert_eq(pt_ws_stream_sent_close(srv.s, &why), stream_hostile[i].code, "%s",
			     stream_hostile[i].name);
		cr_assert_not_null(why);
		/* A stream that failed stays failed. */
		cr_assert_eq(pt_stream_read_start(srv.s, ep_read), UV_EPROTO);
		cr_assert_eq(pt_stream_write(srv.s, "x", 1, ep_written), UV_EPROTO);
		/* The owner closes on the error: the close frame has gone, the
		 * FIN follows it. */
		ep_close(&srv);
		cr_assert(run_until(got_eof, &raw, 5000), "%s", stream_hostile[i].name);
		want[0] = 0x88;
		want[1] = 2;
		want[2] = stream_hostile[i].code >> 8;
		want[3] = stream_hostile[i].code & 0xff;
		cr_assert_eq(raw.len, 4, "%s: %zu bytes", stream_hostile[i].name, raw.len);
		cr_assert_eq(memcmp(raw.got, want, 4), 0, "%s", stream_hostile[i].name);
		finish(&srv, &raw);
	}
}

Test(ws_stream, huge_frame_streams_through_a_chunk_at_a_time)
{
	/* A frame that claims 2^62 bytes, with no limit set: 8 MiB of it
	 * arrive, and the stream never holds more than a chunk of them. */
	static const uint8_t hdr[] = {
		0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 0x5a, 0x5a, 0x5a, 0x5a
	};
	struct pt_stream *a, *b;
	struct ep srv = { 0 }, raw = { 0 };
	static uint8_t piece[64 * 1024];
	uint16_t code;
	int64_t most = 0;

	socket_pair(&a, &b);
	srv.s = pt_ws_stream_new(a, 1, NULL, 0);
	cr_assert_eq(pt_ws_stream_limits(srv.s, 0, 0), 0);
	ep_start(&srv, srv.s, 0);
	raw.s = b;
	b->data = &raw;
	raw_send(&raw, hdr, sizeof(hdr));
	for (int i = 0; i < 128; i++) {
		/* masked with 0x5a: the server reads the pattern */
		pattern_at(piece, sizeof(piece), (uint64_t)i * sizeof(piece), 3);
		for (size_t k = 0; k < sizeof(piece); k++)
			piece[k] ^= 0x5a;
		raw_send(&raw, piece, sizeof(piece));
		run_for_len(&srv, (size_t)(i + 1) * sizeof(piece));
		if (pt_chunk_in_use() > most)
			most = pt_chunk_in_use();
	}
	ep_check(&srv, 8u << 20, 3);
	cr_assert_leq(most, 1, "%lld chunks held", (long long)most);
	/* The client goes without a close frame: the end, noted as 1006. */
	ep_close(&raw);
	cr_assert(run_until(got_eof, &srv, 5000));
	cr_assert_eq(srv.err, 0);
	cr_assert_eq(pt_ws_stream_peer_close(srv.s, &code, NULL), 0);
	cr_assert_eq(code, 1006);
	finish(&srv, &raw);
}

Test(ws_stream, endless_tiny_fragments_hold_nothing)
{
	/* 200,000 frames of one byte or none, in one message. */
	struct pt_stream *a, *b;
	struct ep srv = { 0 }, raw = { 0 };
	static uint8_t buf[7 * 1000 + 6 * 1000];
	size_t n = 0;

	socket_pair(&a, &b);
	ep_start(&srv, pt_ws_stream_new(a, 1, NULL, 0), 0);
	raw.s = b;
	b->data = &raw;
	raw_send(&raw, "\x02\x81\0\0\0\0<", 7);
	for (int i = 0; i < 1000; i++) {
		n += cframe(buf + n, PT_WS_OP_CONT, 0, "x", 1);
		n += cframe(buf + n, PT_WS_OP_CONT, 0, "", 0);
	}
	cr_assert_eq(n, sizeof(buf));
	for (int round = 0; round < 100; round++) {
		raw_send(&raw, buf, n);
		run_for_len(&srv, 1 + (size_t)(round + 1) * 1000);
		cr_assert_leq(pt_chunk_in_use(), 1);
	}
	raw_send(&raw, "\x80\x81\0\0\0\0>", 7);
	run_for_len(&srv, 100002);
	cr_assert_eq(srv.len, 100002);
	cr_assert_eq(srv.got[0], '<');
	cr_assert_eq(srv.got[100001], '>');
	for (size_t i = 1; i < 100001; i++)
		cr_assert_eq(srv.got[i], 'x');
	cr_assert_not(srv.eof || srv.err);
	finish(&srv, &raw);
}

Test(ws_stream, a_reader_that_stops_stops_the_peer)
{
	struct ep srv = { 0 }, cli = { 0 };
	uint64_t accepted;

	ws_pair(&srv, &cli);
	srv.stop_at = 1;
	cli.total = 16u << 20;
	ep_write_more(&cli);
	run_until(NULL, NULL, 300);
	/* The server stopped after its first delivery: the client's writes
	 * stall once the socket is full, and nothing piles up in between. */
	accepted = cli.sent + cli.inflight;
	cr_assert_lt(accepted, 4u << 20, "the client got %llu bytes away",
		     (unsigned long long)accepted);
	cr_assert_not(cli.wdone);
	cr_assert_leq(srv.len, PT_CHUNK_SIZE);
	cr_assert_leq(pt_chunk_in_use(), 2, "%lld chunks held", (long long)pt_chunk_in_use());
	run_until(NULL, NULL, 200);
	cr_assert_eq(cli.sent + cli.inflight, accepted, "writes went on with nobody reading");

	srv.stop_at = 0;
	cr_assert_eq(pt_stream_read_start(srv.s, ep_read), 0);
	run_for_len(&srv, 16u << 20);
	cr_assert(cli.wdone);
	ep_check(&srv, 16u << 20, 2);
	finish(&srv, &cli);
}

Test(ws_stream, one_write_at_a_time)
{
	struct ep srv = { 0 }, cli = { 0 };
	static char big[1 << 20];
	int rc;

	ws_pair(&srv, &cli);
	cli.stop_at = 1; /* the client reads one chunk, then nothing */
	srv.s->data = &srv;
	/* Fill the socket until a write has to wait. */
	for (int i = 0; i < 64; i++) {
		rc = pt_stream_write(srv.s, big, sizeof(big), ep_written);
		if (rc == 0)
			break;
		cr_assert_eq(rc, PT_STREAM_DONE);
	}
	cr_assert_eq(rc, 0, "1 MiB writes never waited");
	srv.inflight = sizeof(big);
	cr_assert_eq(pt_stream_write(srv.s, "x", 1, ep_written), UV_EBUSY);
	/* Closing with a write in flight: nothing is sent after a cut frame,
	 * the close does not wait, and the write's callback never comes. */
	ep_close(&srv);
	cr_assert(run_until(is_closed, &srv, 500), "the close waited");
	cr_assert_eq(srv.werr, 0);
	cr_assert_eq(srv.sent, 0);
	finish(&srv, &cli);
}

/* --- the relay over a WebSocket -------------------------------------------- */

struct echo {
	struct pt_stream *s;
	char *pending;
	int eof, closed;
};

static void echo_read(struct pt_stream *s, ssize_t nread, char *chunk);

static void echo_closed(struct pt_stream *s)
{
	((struct echo *)s->data)->closed = 1;
}

static void echo_written(struct pt_stream *s, int status)
{
	struct echo *e = s->data;

	pt_chunk_put(e->pending);
	e->pending = NULL;
	cr_assert_eq(status, 0);
	cr_assert_eq(pt_stream_read_start(s, echo_read), 0);
}

static void echo_read(struct pt_stream *s, ssize_t nread, char *chunk)
{
	struct echo *e = s->data;
	int rc;

	if (nread < 0) {
		e->eof = 1;
		pt_stream_close(s, echo_closed);
		return;
	}
	rc = pt_stream_write(s, chunk, (size_t)nread, echo_written);
	if (rc == PT_STREAM_DONE) {
		pt_chunk_put(chunk);
		return;
	}
	cr_assert_eq(rc, 0);
	e->pending = chunk;
	pt_stream_read_stop(s);
}

static int relay_status = 1;

static void relay_done(struct pt_relay *r, int status)
{
	relay_status = status;
}

static int relay_ended(void *arg)
{
	return relay_status != 1;
}

Test(ws_stream, relay_carries_a_websocket_to_a_plain_backend)
{
	/* client WS  <-sockets->  server WS  <-relay->  plain  <-sockets->  echo */
	struct pt_stream *a, *b, *c, *d;
	struct ep cli = { 0 };
	struct echo echo = { 0 };
	struct pt_relay *r;
	uint16_t code;

	socket_pair(&a, &b);
	socket_pair(&c, &d);
	struct pt_stream *front = pt_ws_stream_new(a, 1, NULL, 0);
	ep_start(&cli, pt_ws_stream_new(b, 0, NULL, 0), 7);
	echo.s = d;
	d->data = &echo;
	cr_assert_eq(pt_stream_read_start(d, echo_read), 0);
	r = pt_relay_start(&loop, front, c, 0, relay_done, NULL);
	cr_assert_not_null(r);
	cli.total = 1 << 20;
	ep_write_more(&cli);
	run_for_len(&cli, 1 << 20);
	ep_check(&cli, 1 << 20, 7);
	cr_assert_not(pt_relay_stats(r)->spliced);

	/* The client closes: the relay passes the end to the backend, the
	 * backend's end comes back, and the relay finishes cleanly. */
	cr_assert_eq(pt_stream_shutdown(cli.s), 0);
	cr_assert(run_until(relay_ended, NULL, 5000), "the relay did not end");
	cr_assert_eq(relay_status, 0, "relay status %d", relay_status);
	cr_assert(run_until(got_eof, &cli, 5000));
	cr_assert_eq(cli.err, 0);
	cr_assert_eq(pt_ws_stream_peer_close(cli.s, &code, NULL), 0);
	cr_assert_eq(code, 1000);
	cr_assert(echo.eof);
	struct ep *both[2] = { &cli, NULL };
	ep_close(&cli);
	cr_assert(run_until(closed2, both, 5000));
	cr_assert(run_until(is_closed, &cli, 10));
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert(echo.closed);
	cr_assert_eq(uv_loop_close(&loop), 0, "handles left open");
	cr_assert_eq(pt_chunk_in_use(), 0);
	ep_free(&cli);
}

/* --- over TLS, as the gateway runs it ------------------------------------------ */

Test(ws_stream, over_tls_both_ways_and_a_close_reason)
{
	struct tls_fixture fx;
	struct pt_stream *a, *b;
	struct ep srv = { 0 }, cli = { 0 };
	struct two t = { &srv, &cli, 3 << 20 };
	uint16_t code;
	const char *reason;

	tls_fixture_init(&fx);
	SSL_CTX *sctx = tls_fixture_server(&fx), *cctx = tls_fixture_client(fx.cert);
	socket_pair(&a, &b);
	struct pt_stream *ts = pt_tls_stream_new(a, sctx, 1, NULL);
	struct pt_stream *tc = pt_tls_stream_new(b, cctx, 0, "localhost");
	cr_assert(ts && tc);
	ep_start(&srv, pt_ws_stream_new(ts, 1, NULL, 0), 1);
	ep_start(&cli, pt_ws_stream_new(tc, 0, NULL, 0), 2);
	srv.total = cli.total = t.total;
	ep_write_more(&srv);
	ep_write_more(&cli);
	cr_assert(run_until(both_read_all, &t, 30000), "server read %zu, client %zu", srv.len,
		  cli.len);
	ep_check(&srv, t.total, 2);
	ep_check(&cli, t.total, 1);

	cr_assert_eq(pt_ws_stream_close_with(srv.s, 4403, "ticket refused", ep_closed), 0);
	cr_assert(run_until(got_eof, &cli, 5000));
	cr_assert_eq(cli.err, 0);
	cr_assert_eq(pt_ws_stream_peer_close(cli.s, &code, &reason), 0);
	cr_assert_eq(code, 4403);
	cr_assert_str_eq(reason, "ticket refused");
	cr_assert(run_until(is_closed, &srv, 1000), "the server's close waited for the timer");
	finish(&srv, &cli);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	tls_fixture_fini(&fx);
}
