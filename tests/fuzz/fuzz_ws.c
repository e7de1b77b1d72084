/*
 * fuzz_ws - libFuzzer target for the WebSocket frame reader (lib/ws_frame.c):
 * what every browser (noVNC) and RD Gateway client sends the gateway's
 * HTTPS front once the handshake is done.
 *
 *   make fuzz
 *   build-fuzz/fuzz/fuzz_ws -runs=1000000 tests/fuzz/corpus/fuzz_ws
 *
 * Byte 0 of an input picks the side (server: frames must be masked; client:
 * unmasked), binary-only, a frame limit, and the mode; byte 1 seeds the cuts.
 *
 * Raw mode: the rest is fed to the reader as it is.  Whatever the bytes,
 * besides no crash, leak or undefined behaviour:
 *  - a call takes at least one byte and no more than it was given, and says
 *    NONE only having taken them all; no payload byte is yielded that was
 *    not fed, and none outside the bytes given (or where asked to go);
 *  - data is text or binary (binary only when asked), a data event is empty
 *    only at a message's end; control payloads fit 125 bytes; a close code
 *    is one an endpoint may send (or 1005 with nothing), its reason UTF-8
 *    (checked here again, by a second reading);
 *  - an error gives the close code that goes with it (1002 -EPROTO, 1003
 *    -ENOTSUP, 1007 -EILSEQ, 1009 -EMSGSIZE) and a reason, and stays;
 *  - the bytes fed whole, one at a time (inputs up to 4 KiB), cut at places
 *    drawn from byte 1, and whole with the payload gathered at the front of
 *    the buffer (as ws_stream.c does) give the same data, the same events
 *    and the same end.
 *
 * Frames mode: the rest describes frames (data fragments of up to 76,500
 * bytes, pings, pongs, ends of messages, a close) that the target writes
 * with pt_ws_frame_header and pt_ws_mask, masked or not as the side wants;
 * read back every way above, they give exactly what was written and no
 * error.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portico/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FRAME_LIMIT  300	/* the limit when byte 0 asks for one */
#define BYTEWISE_MAX 4096	/* one byte at a time up to this size */
#define BUILT_MAX    (1u << 20) /* frames mode: bytes written at most */

#define check(x)                 \
	do {                     \
		if (!(x))        \
			abort(); \
	} while (0)

/* What a run saw: data joined into one record per stretch between other
 * events (so that where the bytes were cut does not show), control frames,
 * and the end. */
struct rec {
	int type; /* PT_WS_EV_DATA, _PING, _PONG, _CLOSE, or 'X' (an error), 'Z' (the end) */
	long a;	  /* DATA: the opcode once ended; CLOSE: the code; X: the error; Z: idle */
	long b;	  /* DATA: ended; X: the close code */
	uint8_t *p;
	size_t n, cap;
};

struct transcript {
	struct rec *r;
	size_t n, cap;
};

static struct rec *add(struct transcript *t, int type)
{
	if (t->n == t->cap) {
		t->cap = t->cap * 2 + 8;
		t->r = realloc(t->r, t->cap * sizeof(*t->r));
		check(t->r);
	}
	memset(&t->r[t->n], 0, sizeof(t->r[0]));
	t->r[t->n].type = type;
	return &t->r[t->n++];
}

static void add_bytes(struct rec *r, const uint8_t *p, size_t n)
{
	if (r->n + n > r->cap) {
		r->cap = (r->n + n) * 2 + 16;
		r->p = realloc(r->p, r->cap);
		check(r->p);
	}
	if (n)
		memcpy(r->p + r->n, p, n);
	r->n += n;
}

static void add_data(struct transcript *t, const uint8_t *p, size_t n, int end, int opcode)
{
	struct rec *r = t->n ? &t->r[t->n - 1] : NULL;

	if (!r || r->type != PT_WS_EV_DATA || r->b)
		r = add(t, PT_WS_EV_DATA);
	add_bytes(r, p, n);
	if (end) {
		r->b = 1;
		r->a = opcode;
	}
}

static void add_other(struct transcript *t, int type, long a, long b, const uint8_t *p, size_t n)
{
	struct rec *r = add(t, type);

	r->a = a;
	r->b = b;
	add_bytes(r, p, n);
}

static int same(const struct transcript *x, const struct transcript *y)
{
	if (x->n != y->n)
		return 0;
	for (size_t i = 0; i < x->n; i++) {
		const struct rec *a = &x->r[i], *b = &y->r[i];
		if (a->type != b->type || a->a != b->a || a->b != b->b || a->n != b->n ||
		    (a->n && memcmp(a->p, b->p, a->n)))
			return 0;
	}
	return 1;
}

static void transcript_free(struct transcript *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->r[i].p);
	free(t->r);
	memset(t, 0, sizeof(*t));
}

/* UTF-8 read a second way: each code point decoded by the lead byte's
 * table, then compared with the ranges RFC 3629 allows. */
static int utf8_again(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l;
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		l = s[i] >= 0xf0 ? 4 : s[i] >= 0xe0 ? 3 : s[i] >= 0xc0 ? 2 : 0;
		if (l == 0 || s[i] >= 0xf8 || i + l > n)
			return 0;
		cp = s[i] & (0x7f >> l);
		for (size_t k = 1; k < l; k++) {
			if (s[i + k] >> 6 != 2)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((l == 2 && cp < 0x80) || (l == 3 && cp < 0x800) || (l == 4 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >> 11) == 0x1b)
			return 0;
		i += l;
	}
	return 1;
}

static int code_ok(unsigned c)
{
	return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1014) || (c >= 3000 && c <= 4999);
}

struct opts {
	int server, binary_only;
	uint64_t max_frame;
	unsigned seed;
};

enum way { WHOLE, BYTEWISE, CUTS, GATHER };

static unsigned next_rand(unsigned *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 16;
}

/* Feed in[0..n) one way; record what came in t.  Returns the payload
 * bytes yielded. */
static size_t run(const struct opts *o, enum way way, const uint8_t *in, size_t n,
		  struct transcript *t)
{
	struct pt_ws_reader r;
	struct pt_ws_event ev;
	uint8_t *buf = malloc(n ? n : 1);
	size_t off = 0, w = 0, total = 0;
	unsigned rs = o->seed | 1;
	int closed = 0;

	check(buf);
	if (n)
		memcpy(buf, in, n);
	pt_ws_reader_init(&r, o->server);
	r.max_frame = o->max_frame;
	r.binary_only = o->binary_only;
	while (off < n) {
		size_t piece = n - off;
		if (way == BYTEWISE)
			piece = 1;
		else if (way == CUTS)
			piece = next_rand(&rs) % 67 + 1;
		if (piece > n - off)
			piece = n - off;
		size_t end = off + piece;
		while (off < end) {
			uint8_t *dst = way == GATHER ? buf + w : NULL;
			ssize_t k = pt_ws_read(&r, buf + off, end - off, dst, &ev);
			if (k < 0) {
				int want = k == -EPROTO	    ? 1002
					   : k == -ENOTSUP  ? 1003
					   : k == -EILSEQ   ? 1007
					   : k == -EMSGSIZE ? 1009
							    : 0;
				check(want && r.close_code == want && r.why);
				check(!closed);
				check(pt_ws_read(&r, buf + off, end - off, dst, &ev) == k);
				add_other(t, 'X', (long)k, r.close_code, NULL, 0);
				free(buf);
				return total;
			}
			check(k > 0 && (size_t)k <= end - off);
			check(ev.type != PT_WS_EV_NONE || (size_t)k == end - off);
			if (closed)
				check(ev.type == PT_WS_EV_NONE && (size_t)k == end - off);
			switch (ev.type) {
			case PT_WS_EV_NONE:
				break;
			case PT_WS_EV_DATA:
				check(ev.len > 0 || ev.end);
				check(ev.len <= (size_t)k);
				check(ev.opcode == PT_WS_OP_BINARY ||
				      (ev.opcode == PT_WS_OP_TEXT && !o->binary_only));
				if (way == GATHER)
					check(ev.data == buf + w);
				else
					check(ev.data >= buf + off &&
					      ev.data + ev.len <= buf + off + k);
				add_data(t, ev.data, ev.len, ev.end, ev.opcode);
				w += ev.len;
				total += ev.len;
				break;
			case PT_WS_EV_PING:
			case PT_WS_EV_PONG:
				check(ev.len <= PT_WS_CONTROL_MAX);
				add_other(t, ev.type, 0, 0, ev.data, ev.len);
				break;
			case PT_WS_EV_CLOSE:
				check(ev.len <= PT_WS_REASON_MAX);
				check(code_ok(ev.code) ||
				      (ev.code == PT_WS_CLOSE_NO_STATUS && !ev.len));
				check(utf8_again(ev.data, ev.len));
				add_other(t, PT_WS_EV_CLOSE, ev.code, 0, ev.data, ev.len);
				closed = 1;
				break;
			}
			off += (size_t)k;
		}
	}
	add_other(t, 'Z', pt_ws_reader_idle(&r), 0, NULL, 0);
	check(total <= n);
	free(buf);
	return total;
}

/* Every way gives what the whole feeding gave (returned in whole). */
static void compare_ways(const struct opts *o, const uint8_t *in, size_t n,
			 struct transcript *whole)
{
	enum way ways[] = { BYTEWISE, CUTS, GATHER };

	run(o, WHOLE, in, n, whole);
	for (size_t i = 0; i < 3; i++) {
		struct transcript t = { 0 };
		if (ways[i] == BYTEWISE && n > BYTEWISE_MAX)
			continue;
		run(o, ways[i], in, n, &t);
		check(same(whole, &t));
		transcript_free(&t);
	}
}

/* --- frames mode ------------------------------------------------------------ */

struct builder {
	uint8_t *out;
	size_t len, cap;
	const struct opts *o;
	uint8_t key[4];
};

static int emit(struct builder *b, int op, int fin, const uint8_t *p, size_t n)
{
	uint8_t hdr[14];
	int h = pt_ws_frame_header(hdr, op, fin, n, b->o->server ? b->key : NULL);

	check(h >= 2);
	if (b->len + (size_t)h + n > b->cap)
		return -1;
	memcpy(b->out + b->len, hdr, (size_t)h);
	if (b->o->server)
		pt_ws_mask(b->out + b->len + h, p, n, b->key, 0);
	else if (n)
		memcpy(b->out + b->len + h, p, n);
	b->len += (size_t)h + n;
	/* the next frame gets another key */
	for (int i = 0; i < 4; i++)
		b->key[i] = (uint8_t)(b->key[i] * 31 + 7 + i);
	return 0;
}

/* Each two bytes (op, l) then l bytes (l * 300 with op bit 2) make a frame:
 * op & 3 is a fragment (0), a ping (1), a pong (2) or a message's last
 * fragment (3); bits 3 and 4 pick text or binary for a new message.  Bytes
 * past the input come from a generator. */
static void frames_mode(const struct opts *o, const uint8_t *d, size_t n)
{
	static const uint16_t codes[] = { 1000, 1001, 1002, 1003, 1007, 1008, 1009,
					  1010, 1011, 1012, 1013, 1014, 3000, 4999 };
	struct builder b = { .o = o, .key = { 0x12, 0x34, 0x56, 0x78 } };
	static uint8_t payload[255 * 300], out[BUILT_MAX];
	struct transcript want = { 0 }, got = { 0 };
	size_t i = 0;
	int open = 0, msg_op = PT_WS_OP_BINARY;
	unsigned rs = o->seed | 1;

	b.cap = sizeof(out);
	b.out = out;
	while (i + 2 <= n) {
		uint8_t op = d[i], l = d[i + 1];
		size_t len = op & 4 ? (size_t)l * 300 : l;
		int kind = op & 3, fin = kind == 3;
		i += 2;
		for (size_t k = 0; k < len; k++)
			payload[k] = i + k < n ? d[i + k] : (uint8_t)next_rand(&rs);
		i += len < n - i ? len : n - i;
		if (kind == 1 || kind == 2) {
			len %= PT_WS_CONTROL_MAX + 1;
			if (emit(&b, kind == 1 ? PT_WS_OP_PING : PT_WS_OP_PONG, 1, payload, len))
				break;
			add_other(&want, kind == 1 ? PT_WS_EV_PING : PT_WS_EV_PONG, 0, 0, payload,
				  len);
			continue;
		}
		if (!open)
			msg_op = o->binary_only || (op & 8) ? PT_WS_OP_BINARY : PT_WS_OP_TEXT;
		if (emit(&b, open ? PT_WS_OP_CONT : msg_op, fin, payload, len))
			break;
		/* an empty fragment that does not end its message yields nothing */
		if (len || fin)
			add_data(&want, payload, len, fin, msg_op);
		open = !fin;
	}
	/* Sometimes a close, with a reason of the input's printable bytes. */
	if (n && (d[0] & 0x40)) {
		uint8_t body[PT_WS_CONTROL_MAX];
		char reason[24];
		size_t rl = 0;
		for (size_t k = 0; k < n && rl < sizeof(reason) - 1; k++)
			if (d[k] >= 0x20 && d[k] < 0x7f)
				reason[rl++] = (char)d[k];
		reason[rl] = '\0';
		uint16_t code = codes[o->seed % (sizeof(codes) / sizeof(codes[0]))];
		int bl = pt_ws_close_payload(body, code, reason);
		check(bl == (int)(2 + rl));
		if (emit(&b, PT_WS_OP_CLOSE, 1, body, (size_t)bl) == 0)
			add_other(&want, PT_WS_EV_CLOSE, code, 0, (const uint8_t *)reason, rl);
	}
	add_other(&want, 'Z', !open, 0, NULL, 0);
	compare_ways(o, b.out, b.len, &got);
	check(same(&want, &got));
	transcript_free(&want);
	transcript_free(&got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct opts o;
	struct transcript t = { 0 };

	if (size < 2)
		return 0;
	o.server = data[0] & 1;
	o.binary_only = (data[0] >> 1) & 1;
	o.max_frame = data[0] & 4 ? FRAME_LIMIT : 0;
	o.seed = data[1];
	if (data[0] & 0x80) {
		o.max_frame = 0;
		frames_mode(&o, data + 2, size - 2);
		return 0;
	}
	compare_ways(&o, data + 2, size - 2, &t);
	transcript_free(&t);
	return 0;
}
