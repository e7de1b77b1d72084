/* test_ws.c - WebSocket: the handshake key and the frame codec (RFC 6455's
 * own examples, every rule a peer can break).  The stream: test_ws_stream.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/ws.h"

TestSuite(ws, .timeout = 30);

/* --- handshake ------------------------------------------------------------ */

Test(ws, accept_rfc_example)
{
	char out[29];

	/* RFC 6455 1.3 */
	cr_assert_eq(pt_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	cr_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	cr_assert(pt_ws_accept_matches("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
	cr_assert_not(
		pt_ws_accept_matches("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOp="));
	cr_assert_not(pt_ws_accept_matches("dGhlIHNhbXBsZSBub25jZQ==", NULL));
}

Test(ws, accept_refuses_keys_that_are_not_16_bytes)
{
	static const char *bad[] = {
		"",
		"dGhlIHNhbXBsZSBub25jZQ=",	   /* 23 characters */
		"dGhlIHNhbXBsZSBub25jZQ===",	   /* 25 */
		" dGhlIHNhbXBsZSBub25jZQ==",	   /* leading space */
		"dGhlIHNhbXBsZSBub25jZQ== ",	   /* trailing space */
		"dGhlIHNhbXBsZSBub25jZQ\r\n",	   /* no padding, CRLF */
		"dGhlIHNhbXBsZSBub25jZQAA",	   /* 18 bytes */
		"dGhlIHNhbXBsZSBub25jZS0=",	   /* 17 bytes */
		"dGhlIHNhbXBs\xff\xfeSBub25jZQ==", /* not base64 */
		"dGhlIHNhbXBsZ-Bub25jZQ==",	   /* base64url is not base64 */
		"dGhlIHNhbXBsZ=Bub25jZQ==",	   /* padding inside */
		"====================\x00===",
		"AAAAAAAAAAAAAAAAAAAA", /* 15 bytes */
	};
	char out[29];

	cr_assert_eq(pt_ws_accept(NULL, out), -EINVAL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(pt_ws_accept(bad[i], out), -EINVAL, "key %zu accepted", i);
}

Test(ws, make_key_gives_fresh_valid_keys)
{
	char a[25], b[25], out[29];

	cr_assert_eq(pt_ws_make_key(a), 0);
	cr_assert_eq(pt_ws_make_key(b), 0);
	cr_assert_eq(strlen(a), 24);
	cr_assert_str_neq(a, b);
	cr_assert_eq(pt_ws_accept(a, out), 0);
	cr_assert_eq(strlen(out), 28);
	cr_assert(pt_ws_accept_matches(a, out));
}

/* --- frame header and mask ------------------------------------------------- */

Test(ws, frame_header_matches_rfc_examples)
{
	static const uint8_t key[4] = { 0x37, 0xfa, 0x21, 0x3d };
	uint8_t h[14];

	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_TEXT, 1, 5, NULL), 2);
	cr_assert_eq(memcmp(h, "\x81\x05", 2), 0);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_TEXT, 1, 5, key), 6);
	cr_assert_eq(memcmp(h, "\x81\x85\x37\xfa\x21\x3d", 6), 0);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_TEXT, 0, 3, NULL), 2);
	cr_assert_eq(memcmp(h, "\x01\x03", 2), 0);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_CONT, 1, 2, NULL), 2);
	cr_assert_eq(memcmp(h, "\x80\x02", 2), 0);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_PING, 1, 5, NULL), 2);
	cr_assert_eq(memcmp(h, "\x89\x05", 2), 0);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_BINARY, 1, 256, NULL), 4);
	cr_assert_eq(memcmp(h, "\x82\x7e\x01\x00", 4), 0);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_BINARY, 1, 65536, NULL), 10);
	cr_assert_eq(memcmp(h, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10), 0);
	/* the boundaries of the three forms */
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_BINARY, 1, 125, NULL), 2);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_BINARY, 1, 126, NULL), 4);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_BINARY, 1, 65535, key), 8);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_BINARY, 1, (1ull << 63) - 1, key), 14);
	cr_assert_eq(memcmp(h, "\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x37\xfa\x21\x3d", 14), 0);
}

Test(ws, frame_header_refuses_what_no_peer_may_read)
{
	uint8_t h[14];

	cr_assert_eq(pt_ws_frame_header(h, 3, 1, 0, NULL), -EINVAL);
	cr_assert_eq(pt_ws_frame_header(h, 0xb, 1, 0, NULL), -EINVAL);
	cr_assert_eq(pt_ws_frame_header(h, 0x12, 1, 0, NULL), -EINVAL);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_PING, 0, 1, NULL), -EINVAL);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_CLOSE, 1, 126, NULL), -EINVAL);
	cr_assert_eq(pt_ws_frame_header(h, PT_WS_OP_BINARY, 1, 1ull << 63, NULL), -EINVAL);
}

Test(ws, mask_in_pieces_equals_mask_whole)
{
	static const uint8_t key[4] = { 0x01, 0x80, 0xfe, 0x37 };
	uint8_t src[1000], whole[1000], pieces[1000];

	for (size_t i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i * 7 + 3);
	pt_ws_mask(whole, src, sizeof(src), key, 0);
	for (size_t i = 0; i < sizeof(src); i++)
		cr_assert_eq(whole[i], src[i] ^ key[i % 4], "byte %zu", i);
	for (size_t off = 0, n = 1; off < sizeof(src); off += n, n = n * 3 % 17 + 1) {
		size_t k = n < sizeof(src) - off ? n : sizeof(src) - off;
		pt_ws_mask(pieces + off, src + off, k, key, off);
	}
	cr_assert_eq(memcmp(whole, pieces, sizeof(src)), 0);
	/* in place, then back */
	memcpy(pieces, whole, sizeof(src));
	pt_ws_mask(pieces, pieces, sizeof(src), key, 0);
	cr_assert_eq(memcmp(pieces, src, sizeof(src)), 0);
}

/* --- reader --------------------------------------------------------------- */

/* Everything a reader yields for some input: data bytes, a log of the
 * other events, and how it ended. */
struct rresult {
	uint8_t *data;
	size_t len;
	char log[4096];
	int err;
	uint16_t code;
	const char *why;
};

static void rresult_free(struct rresult *r)
{
	free(r->data);
}

static void logf_(struct rresult *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct rresult *r, const char *fmt, ...)
{
	size_t l = strlen(r->log);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->log + l, sizeof(r->log) - l, fmt, ap);
	va_end(ap);
}

/* Feed in[0..n) to a fresh reader in pieces of the sizes step() gives
 * (0: all at once).  The input is copied: the reader unmasks in place. */
static void feed(struct rresult *res, int server, uint64_t max_frame, int binary_only,
		 const uint8_t *in, size_t n, size_t (*step)(size_t i))
{
	struct pt_ws_reader r;
	struct pt_ws_event ev;
	uint8_t *buf = malloc(n + 1);
	size_t off = 0, i = 0;

	cr_assert_not_null(buf);
	memcpy(buf, in, n);
	memset(res, 0, sizeof(*res));
	res->data = malloc(n + 1);
	pt_ws_reader_init(&r, server);
	r.max_frame = max_frame;
	r.binary_only = binary_only;
	while (off < n) {
		size_t piece = step ? step(i++) : n;
		size_t end = piece < n - off ? off + piece : n, p = off;
		while (p < end) {
			ssize_t k = pt_ws_read(&r, buf + p, end - p, NULL, &ev);
			if (k < 0) {
				res->err = (int)k;
				res->code = r.close_code;
				res->why = r.why;
				/* sticky */
				cr_assert_eq(pt_ws_read(&r, buf + p, end - p, NULL, &ev), k);
				free(buf);
				return;
			}
			cr_assert(k > 0, "no progress");
			cr_assert_leq((size_t)k, end - p);
			p += (size_t)k;
			switch (ev.type) {
			case PT_WS_EV_NONE:
				cr_assert_eq(p, end, "NONE before the end of the input");
				break;
			case PT_WS_EV_DATA:
				cr_assert(ev.len > 0 || ev.end);
				cr_assert(ev.opcode == PT_WS_OP_TEXT ||
					  ev.opcode == PT_WS_OP_BINARY);
				memcpy(res->data + res->len, ev.data, ev.len);
				res->len += ev.len;
				if (ev.end)
					logf_(res, "E%d;", ev.opcode);
				break;
			case PT_WS_EV_PING:
			case PT_WS_EV_PONG:
				logf_(res, "%s:%.*s;", ev.type == PT_WS_EV_PING ? "ping" : "pong",
				      (int)ev.len, ev.data);
				break;
			case PT_WS_EV_CLOSE:
				logf_(res, "close %u:%.*s;", ev.code, (int)ev.len, ev.data);
				break;
			}
		}
		off = end;
	}
	cr_assert(res->len <= n);
	free(buf);
}

static size_t step_one(size_t i)
{
	return 1;
}

static size_t step_odd(size_t i)
{
	return i * 7 % 13 + 1;
}

static size_t step_big(size_t i)
{
	return i % 2 ? 1000 : 3;
}

/* The same result whole, byte at a time and in uneven pieces; returns the
 * whole one. */
static void feed_all_ways(struct rresult *res, int server, uint64_t max_frame, int binary_only,
			  const uint8_t *in, size_t n)
{
	size_t (*steps[])(size_t) = { step_one, step_odd, step_big };

	feed(res, server, max_frame, binary_only, in, n, NULL);
	for (size_t s = 0; s < 3; s++) {
		struct rresult o;
		feed(&o, server, max_frame, binary_only, in, n, steps[s]);
		cr_assert_eq(o.err, res->err, "way %zu: error %d, whole %d", s, o.err, res->err);
		cr_assert_eq(o.code, res->code);
		cr_assert_eq(o.len, res->len, "way %zu: %zu bytes, whole %zu", s, o.len, res->len);
		cr_assert_eq(memcmp(o.data, res->data, o.len), 0);
		cr_assert_str_eq(o.log, res->log);
		rresult_free(&o);
	}
}

#define B(s) (const uint8_t *)(s), sizeof(s) - 1

Test(ws, rfc_example_unmasked_hello)
{
	struct rresult r;

	feed_all_ways(&r, 0, 0, 0, B("\x81\x05\x48\x65\x6c\x6c\x6f"));
	cr_assert_eq(r.err, 0);
	cr_assert_eq(r.len, 5);
	cr_assert_eq(memcmp(r.data, "Hello", 5), 0);
	cr_assert_str_eq(r.log, "E1;");
	rresult_free(&r);
}

Test(ws, rfc_example_masked_hello)
{
	struct rresult r;

	feed_all_ways(&r, 1, 0, 0, B("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"));
	cr_assert_eq(r.err, 0);
	cr_assert_eq(r.len, 5);
	cr_assert_eq(memcmp(r.data, "Hello", 5), 0);
	cr_assert_str_eq(r.log, "E1;");
	rresult_free(&r);
}

Test(ws, rfc_example_fragmented_hel_lo)
{
	struct rresult r;

	feed_all_ways(&r, 0, 0, 0, B("\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f"));
	cr_assert_eq(r.err, 0);
	cr_assert_eq(r.len, 5);
	cr_assert_eq(memcmp(r.data, "Hello", 5), 0);
	cr_assert_str_eq(r.log, "E1;"); /* one message */
	rresult_free(&r);
}

Test(ws, rfc_example_ping_and_masked_pong)
{
	struct rresult r;

	feed_all_ways(&r, 0, 0, 0, B("\x89\x05\x48\x65\x6c\x6c\x6f"));
	cr_assert_eq(r.err, 0);
	cr_assert_eq(r.len, 0);
	cr_assert_str_eq(r.log, "ping:Hello;");
	rresult_free(&r);
	feed_all_ways(&r, 1, 0, 0, B("\x8a\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58"));
	cr_assert_eq(r.err, 0);
	cr_assert_str_eq(r.log, "pong:Hello;");
	rresult_free(&r);
}

static void pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)((i * 2654435761u >> 13) ^ seed);
}

Test(ws, rfc_example_256_bytes_and_64_kib)
{
	static uint8_t in[10 + 65536], want[65536];
	struct rresult r;

	pattern(want, sizeof(want), 5);
	memcpy(in, "\x82\x7e\x01\x00", 4);
	memcpy(in + 4, want, 256);
	feed_all_ways(&r, 0, 0, 0, in, 4 + 256);
	cr_assert_eq(r.err, 0);
	cr_assert_eq(r.len, 256);
	cr_assert_eq(memcmp(r.data, want, 256), 0);
	cr_assert_str_eq(r.log, "E2;");
	rresult_free(&r);

	memcpy(in, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	memcpy(in + 10, want, 65536);
	feed_all_ways(&r, 0, 0, 0, in, sizeof(in));
	cr_assert_eq(r.err, 0);
	cr_assert_eq(r.len, 65536);
	cr_assert_eq(memcmp(r.data, want, 65536), 0);
	cr_assert_str_eq(r.log, "E2;");
	rresult_free(&r);
}

/* Frames made with the header writer (checked above against the RFC). */
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

Test(ws, control_frames_between_fragments_and_empty_frames)
{
	uint8_t in[512];
	size_t n = 0;

	for (int masked = 0; masked < 2; masked++) {
		struct rresult r;
		n = 0;
		n += frame(in + n, PT_WS_OP_BINARY, 0, "ab", 2, masked);
		n += frame(in + n, PT_WS_OP_PING, 1, "p1", 2, masked);
		n += frame(in + n, PT_WS_OP_CONT, 0, "", 0, masked);
		n += frame(in + n, PT_WS_OP_PONG, 1, "", 0, masked);
		n += frame(in + n, PT_WS_OP_CONT, 0, "cd", 2, masked);
		n += frame(in + n, PT_WS_OP_CONT, 1, "", 0, masked);
		n += frame(in + n, PT_WS_OP_TEXT, 1, "", 0, masked);
		n += frame(in + n, PT_WS_OP_TEXT, 1, "ef", 2, masked);
		n += frame(in + n, PT_WS_OP_CLOSE, 1,
			   "\x03\xe8"
			   "bye",
			   5, masked);
		n += frame(in + n, PT_WS_OP_BINARY, 1, "ignored", 7, masked);
		feed_all_ways(&r, masked, 0, 0, in, n);
		cr_assert_eq(r.err, 0, "%s", r.why);
		cr_assert_eq(r.len, 6);
		cr_assert_eq(memcmp(r.data, "abcdef", 6), 0);
		cr_assert_str_eq(r.log, "ping:p1;pong:;E2;E1;E1;close 1000:bye;");
		rresult_free(&r);
	}
}

Test(ws, lengths_in_more_bytes_than_needed_are_read)
{
	struct rresult r;

	feed_all_ways(&r, 0, 0, 0,
		      B("\x82\x7e\x00\x03"
			"abc"
			"\x82\x7f\x00\x00\x00\x00\x00\x00\x00\x02"
			"de"));
	cr_assert_eq(r.err, 0, "%s", r.why);
	cr_assert_eq(r.len, 5);
	cr_assert_eq(memcmp(r.data, "abcde", 5), 0);
	rresult_free(&r);
}

Test(ws, reader_joins_payload_at_the_front_of_the_buffer)
{
	uint8_t buf[256];
	struct pt_ws_reader r;
	struct pt_ws_event ev;
	size_t n = 0, off = 0, w = 0;

	n += frame(buf + n, PT_WS_OP_BINARY, 0, "hello ", 6, 1);
	n += frame(buf + n, PT_WS_OP_PING, 1, "x", 1, 1);
	n += frame(buf + n, PT_WS_OP_CONT, 1, "world", 5, 1);
	n += frame(buf + n, PT_WS_OP_BINARY, 1, "!", 1, 1);
	pt_ws_reader_init(&r, 1);
	while (off < n) {
		ssize_t k = pt_ws_read(&r, buf + off, n - off, buf + w, &ev);
		cr_assert_gt(k, 0);
		off += (size_t)k;
		if (ev.type == PT_WS_EV_DATA) {
			cr_assert_eq(ev.data, buf + w);
			w += ev.len;
		}
	}
	cr_assert_eq(w, 12);
	cr_assert_eq(memcmp(buf, "hello world!", 12), 0);
	cr_assert(pt_ws_reader_idle(&r));
}

struct hostile {
	const char *name;
	const char *bytes;
	size_t len;
	int server;
	uint64_t max_frame;
	int binary_only;
	int err;
	uint16_t code;
	size_t data_before; /* payload bytes yielded before the refusal */
};

#define H(name, bytes, server, max, bin, err, code, before)                         \
	{                                                                           \
		name, bytes, sizeof(bytes) - 1, server, max, bin, err, code, before \
	}

static const struct hostile hostile[] = {
	H("RSV1", "\xc2\x80\0\0\0\0", 1, 0, 0, -EPROTO, 1002, 0),
	H("RSV2", "\xa2\x80\0\0\0\0", 1, 0, 0, -EPROTO, 1002, 0),
	H("RSV3", "\x92\x80\0\0\0\0", 1, 0, 0, -EPROTO, 1002, 0),
	H("opcode 3", "\x83\x80\0\0\0\0", 1, 0, 0, -EPROTO, 1002, 0),
	H("opcode 7", "\x87\x80\0\0\0\0", 1, 0, 0, -EPROTO, 1002, 0),
	H("opcode 0xb", "\x8b\x80\0\0\0\0", 1, 0, 0, -EPROTO, 1002, 0),
	H("opcode 0xf", "\x8f\x80\0\0\0\0", 1, 0, 0, -EPROTO, 1002, 0),
	H("unmasked to a server", "\x82\x01x", 1, 0, 0, -EPROTO, 1002, 0),
	H("masked to a client", "\x82\x81\0\0\0\0x", 0, 0, 0, -EPROTO, 1002, 0),
	H("unmasked ping to a server", "\x89\x00", 1, 0, 0, -EPROTO, 1002, 0),
	H("64-bit length, top bit", "\x82\xff\x80\0\0\0\0\0\0\0\0\0\0\0", 1, 0, 0, -EPROTO, 1002,
	  0),
	H("64-bit length, all bits", "\x82\x7f\xff\xff\xff\xff\xff\xff\xff\xff", 0, 0, 0, -EPROTO,
	  1002, 0),
	H("continuation first", "\x80\x80\0\0\0\0", 1, 0, 0, -EPROTO, 1002, 0),
	H("continuation after a whole message", "\x82\x81\0\0\0\0a\x80\x80\0\0\0\0", 1, 0, 0,
	  -EPROTO, 1002, 1),
	H("new message inside a fragmented one", "\x02\x81\0\0\0\0a\x82\x81\0\0\0\0b", 1, 0, 0,
	  -EPROTO, 1002, 1),
	H("text inside a fragmented binary",
	  "\x02\x01"
	  "a\x81\x01"
	  "b",
	  0, 0, 0, -EPROTO, 1002, 1),
	H("fragmented ping", "\x09\x80\0\0\0\0", 1, 0, 0, -EPROTO, 1002, 0),
	H("fragmented close", "\x08\x00", 0, 0, 0, -EPROTO, 1002, 0),
	H("ping of 126 bytes", "\x89\xfe\x00\x7e", 1, 0, 0, -EPROTO, 1002, 0),
	H("ping with a 16-bit length of 5", "\x89\x7e\x00\x05hello", 0, 0, 0, -EPROTO, 1002, 0),
	H("close of 126 bytes", "\x88\x7e\x00\x7e", 0, 0, 0, -EPROTO, 1002, 0),
	H("close of 1 byte", "\x88\x01\x03", 0, 0, 0, -EPROTO, 1002, 0),
	H("close code 0", "\x88\x02\x00\x00", 0, 0, 0, -EPROTO, 1002, 0),
	H("close code 999", "\x88\x02\x03\xe7", 0, 0, 0, -EPROTO, 1002, 0),
	H("close code 1004", "\x88\x02\x03\xec", 0, 0, 0, -EPROTO, 1002, 0),
	H("close code 1005", "\x88\x02\x03\xed", 0, 0, 0, -EPROTO, 1002, 0),
	H("close code 1006", "\x88\x02\x03\xee", 0, 0, 0, -EPROTO, 1002, 0),
	H("close code 1015", "\x88\x02\x03\xf7", 0, 0, 0, -EPROTO, 1002, 0),
	H("close code 1016", "\x88\x02\x03\xf8", 0, 0, 0, -EPROTO, 1002, 0),
	H("close code 2999", "\x88\x02\x0b\xb7", 0, 0, 0, -EPROTO, 1002, 0),
	H("close code 5000", "\x88\x02\x13\x88", 0, 0, 0, -EPROTO, 1002, 0),
	H("close code 65535", "\x88\x02\xff\xff", 0, 0, 0, -EPROTO, 1002, 0),
	H("close reason 0xff", "\x88\x03\x03\xe8\xff", 0, 0, 0, -EILSEQ, 1007, 0),
	H("close reason overlong NUL", "\x88\x04\x03\xe8\xc0\x80", 0, 0, 0, -EILSEQ, 1007, 0),
	H("close reason surrogate", "\x88\x05\x03\xe8\xed\xa0\x80", 0, 0, 0, -EILSEQ, 1007, 0),
	H("close reason cut short", "\x88\x04\x03\xe8\xe2\x82", 0, 0, 0, -EILSEQ, 1007, 0),
	H("close reason past U+10FFFF", "\x88\x06\x03\xe8\xf4\x90\x80\x80", 0, 0, 0, -EILSEQ, 1007,
	  0),
	H("text where binary only", "\x81\x81\0\0\0\0a", 1, 0, 1, -ENOTSUP, 1003, 0),
	H("fragmented text where binary only",
	  "\x01\x01"
	  "a",
	  0, 0, 1, -ENOTSUP, 1003, 0),
	H("frame over the limit", "\x82\x7e\x04\x01", 0, 1024, 0, -EMSGSIZE, 1009, 0),
	H("2^62 bytes over the limit", "\x82\xff\x40\0\0\0\0\0\0\0\0\0\0\0", 1, 1 << 20, 0,
	  -EMSGSIZE, 1009, 0),
	H("second frame over the limit",
	  "\x82\x02"
	  "ab\x82\x7e\x04\x01",
	  0, 1024, 0, -EMSGSIZE, 1009, 2),
};

Test(ws, hostile_frames_refused_with_their_close_code)
{
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		const struct hostile *h = &hostile[i];
		struct rresult r;
		feed_all_ways(&r, h->server, h->max_frame, h->binary_only,
			      (const uint8_t *)h->bytes, h->len);
		cr_assert_eq(r.err, h->err, "%s: error %d, want %d", h->name, r.err, h->err);
		cr_assert_eq(r.code, h->code, "%s: code %u, want %u", h->name, r.code, h->code);
		cr_assert_not_null(r.why, "%s", h->name);
		cr_assert_eq(r.len, h->data_before, "%s", h->name);
		rresult_free(&r);
	}
}

Test(ws, what_is_allowed_next_to_the_hostile_cases)
{
#define S(s) s, sizeof(s) - 1
	static const struct {
		const char *bytes;
		size_t len;
		const char *log;
	} ok[] = {
		{ S("\x88\x00"), "close 1005:;" },
		{ S("\x88\x02\x03\xe8"), "close 1000:;" },
		{ S("\x88\x02\x03\xeb"), "close 1003:;" },
		{ S("\x88\x02\x03\xef"), "close 1007:;" },
		{ S("\x88\x02\x03\xf6"), "close 1014:;" },
		{ S("\x88\x02\x0b\xb8"), "close 3000:;" },
		{ S("\x88\x02\x13\x87"), "close 4999:;" },
		{ S("\x88\x0c\x03\xe8\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80"),
		  "close 1000:\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80;" },
		{ S("\x89\x7d"
		    "01234567890123456789012345678901234567890123456789"
		    "01234567890123456789012345678901234567890123456789"
		    "0123456789012345678901234"),
		  "ping:01234567890123456789012345678901234567890123456789"
		  "01234567890123456789012345678901234567890123456789"
		  "0123456789012345678901234;" },
		{ S("\x82\x7e\x04\x00"), "" }, /* exactly the limit: header taken */
	};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct rresult r;
		feed_all_ways(&r, 0, 1024, 1, (const uint8_t *)ok[i].bytes, ok[i].len);
		cr_assert_eq(r.err, 0, "case %zu: %s", i, r.why);
		cr_assert_str_eq(r.log, ok[i].log, "case %zu", i);
		rresult_free(&r);
	}
}

Test(ws, huge_length_is_streamed_not_buffered)
{
	/* A frame that claims 2^62 bytes: what comes of it is handed on as it
	 * comes, through a 4 KiB buffer, 64 MiB of it. */
	static const uint8_t hdr[] = { 0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
	struct pt_ws_reader r;
	struct pt_ws_event ev;
	uint8_t buf[4096];
	uint64_t got = 0;

	pt_ws_reader_init(&r, 1);
	memcpy(buf, hdr, sizeof(hdr));
	cr_assert_eq(pt_ws_read(&r, buf, sizeof(hdr), NULL, &ev), (ssize_t)sizeof(hdr));
	cr_assert_eq(ev.type, PT_WS_EV_NONE);
	for (int i = 0; i < 64 * 256; i++) {
		memset(buf, 0, sizeof(buf));
		ssize_t k = pt_ws_read(&r, buf, sizeof(buf), NULL, &ev);
		cr_assert_eq(k, (ssize_t)sizeof(buf));
		cr_assert_eq(ev.type, PT_WS_EV_DATA);
		cr_assert_eq(ev.len, sizeof(buf));
		cr_assert_not(ev.end);
		cr_assert_eq(ev.data[0], 1); /* unmasked: 0 ^ key */
		got += ev.len;
	}
	cr_assert_eq(got, 64u << 20);
	cr_assert_not(pt_ws_reader_idle(&r));
}

Test(ws, endless_empty_fragments_cost_nothing)
{
	/* 100,000 empty continuation frames: no event, no data, no error. */
	uint8_t buf[6 * 1000];
	struct pt_ws_reader r;
	struct pt_ws_event ev;

	pt_ws_reader_init(&r, 1);
	memcpy(buf, "\x02\x80\0\0\0\0", 6);
	cr_assert_eq(pt_ws_read(&r, buf, 6, NULL, &ev), 6);
	cr_assert_eq(ev.type, PT_WS_EV_NONE);
	for (int round = 0; round < 100; round++) {
		for (int i = 0; i < 1000; i++)
			memcpy(buf + 6 * i, "\x00\x80\x11\x22\x33\x44", 6);
		size_t off = 0;
		while (off < sizeof(buf)) {
			ssize_t k = pt_ws_read(&r, buf + off, sizeof(buf) - off, NULL, &ev);
			cr_assert_gt(k, 0);
			cr_assert_eq(ev.type, PT_WS_EV_NONE);
			off += (size_t)k;
		}
	}
	memcpy(buf, "\x80\x81\0\0\0\0z", 7);
	cr_assert_eq(pt_ws_read(&r, buf, 7, NULL, &ev), 7);
	cr_assert_eq(ev.type, PT_WS_EV_DATA);
	cr_assert_eq(ev.len, 1);
	cr_assert(ev.end);
	cr_assert_eq(ev.opcode, PT_WS_OP_BINARY);
	cr_assert(pt_ws_reader_idle(&r));
}

Test(ws, close_payload_builder)
{
	uint8_t out[PT_WS_CONTROL_MAX];
	char reason[PT_WS_REASON_MAX + 2];

	cr_assert_eq(pt_ws_close_payload(out, 1000, NULL), 2);
	cr_assert_eq(memcmp(out, "\x03\xe8", 2), 0);
	cr_assert_eq(pt_ws_close_payload(out, 4000, "ticket refused"), 16);
	cr_assert_eq(memcmp(out, "\x0f\xa0ticket refused", 16), 0);
	memset(reason, 'x', sizeof(reason));
	reason[PT_WS_REASON_MAX] = '\0';
	cr_assert_eq(pt_ws_close_payload(out, 1008, reason), PT_WS_CONTROL_MAX);
	reason[PT_WS_REASON_MAX] = 'x';
	reason[PT_WS_REASON_MAX + 1] = '\0';
	cr_assert_eq(pt_ws_close_payload(out, 1008, reason), -EINVAL);
	cr_assert_eq(pt_ws_close_payload(out, 1005, NULL), -EINVAL);
	cr_assert_eq(pt_ws_close_payload(out, 1006, NULL), -EINVAL);
	cr_assert_eq(pt_ws_close_payload(out, 999, NULL), -EINVAL);
	cr_assert_eq(pt_ws_close_payload(out, 5000, NULL), -EINVAL);
	cr_assert_eq(pt_ws_close_payload(out, 1000, "bad \xff"), -EINVAL);
}
