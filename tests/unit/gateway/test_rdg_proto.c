/*
 * The RD Gateway protocol core (gateway/rdg_proto.c): the packet reader,
 * the parsers and builders, and the server's state machine, driven with
 * the bytes xfreerdp 2.11.7 sent to a gateway on loopback (captured with
 * /log-level:TRACE and a logging server; docs/rdg.md) and with hostile
 * variations of them.  What is asserted is what the client would receive.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdg.h"

/* --- what xfreerdp 2.11.7 sent (/gat:TICKETabc, /v:127.0.0.1:23389) ------ */

static const uint8_t FR_HANDSHAKE[] = { 0x01, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x00,
					0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00 };
static const uint8_t FR_TUNNEL_CREATE[] = { 0x04, 0x00, 0x00, 0x00, 0x26, 0x00, 0x00, 0x00,
					    0x0d, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
					    0x14, 0x00, 0x54, 0x00, 0x49, 0x00, 0x43, 0x00,
					    0x4b, 0x00, 0x45, 0x00, 0x54, 0x00, 0x61, 0x00,
					    0x62, 0x00, 0x63, 0x00, 0x00, 0x00 };
static const uint8_t FR_TUNNEL_AUTH[] = { 0x06, 0x00, 0x00, 0x00, 0x12, 0x00, 0x00, 0x00, 0x00,
					  0x00, 0x06, 0x00, 0x76, 0x00, 0x6d, 0x00, 0x00, 0x00 };
static const uint8_t FR_CHANNEL_CREATE[] = { 0x08, 0x00, 0x00, 0x00, 0x24, 0x00, 0x00, 0x00, 0x01,
					     0x00, 0x5d, 0x5b, 0x03, 0x00, 0x14, 0x00, 0x31, 0x00,
					     0x32, 0x00, 0x37, 0x00, 0x2e, 0x00, 0x30, 0x00, 0x2e,
					     0x00, 0x30, 0x00, 0x2e, 0x00, 0x31, 0x00, 0x00, 0x00 };
/* DATA carrying the X.224 Connection Request. */
static const uint8_t FR_DATA[] = { 0x0a, 0x00, 0x00, 0x00, 0x36, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x03,
				   0x00, 0x00, 0x2c, 0x27, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x43,
				   0x6f, 0x6f, 0x6b, 0x69, 0x65, 0x3a, 0x20, 0x6d, 0x73, 0x74, 0x73,
				   0x68, 0x61, 0x73, 0x68, 0x3d, 0x5c, 0x61, 0x6c, 0x69, 0x63, 0x65,
				   0x0d, 0x0a, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00 };
static const uint8_t FR_KEEPALIVE[] = { 0x0d, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00 };
static const uint8_t FR_CLOSE_RESPONSE[] = { 0x11, 0x00, 0x00, 0x00, 0x0c, 0x00,
					     0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };

/* --- helpers ------------------------------------------------------------- */

static void p16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void p32(uint8_t *p, uint32_t v)
{
	p16(p, (uint16_t)v);
	p16(p + 2, (uint16_t)(v >> 16));
}

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t g32(const uint8_t *p)
{
	return (uint32_t)g16(p) | (uint32_t)g16(p + 2) << 16;
}

/* A packet of `type` around body[0..n). */
static size_t pkt(uint8_t *b, uint16_t type, const uint8_t *body, size_t n)
{
	p16(b, type);
	p16(b + 2, 0);
	p32(b + 4, (uint32_t)(8 + n));
	if (n)
		memmove(b + 8, body, n);
	return 8 + n;
}

/* ASCII s as UTF-16LE, with a terminator when nul; returns bytes. */
static size_t u16s(uint8_t *b, const char *s, int nul)
{
	size_t n = 0;

	for (; *s; s++, n += 2)
		p16(b + n, (uint8_t)*s);
	if (nul) {
		p16(b + n, 0);
		n += 2;
	}
	return n;
}

/* A TUNNEL_CREATE body: caps 0xd, a cookie (UTF-16 bytes as given) when
 * cookie is not NULL. */
static size_t tc_body(uint8_t *b, const uint8_t *cookie, size_t cb)
{
	p32(b, 0x0d);
	p16(b + 4, cookie ? GW_RDG_TUNNEL_PAA_COOKIE : 0);
	p16(b + 6, 0);
	if (!cookie)
		return 8;
	p16(b + 8, (uint16_t)cb);
	memcpy(b + 10, cookie, cb);
	return 10 + cb;
}

/* A CHANNEL_CREATE body for one resource `host`. */
static size_t cc_body(uint8_t *b, const char *host, uint16_t port, uint16_t protocol)
{
	b[0] = 1;
	b[1] = 0;
	p16(b + 2, port);
	p16(b + 4, protocol);
	size_t n = u16s(b + 8, host, 1);
	p16(b + 6, (uint16_t)n);
	return 8 + n;
}

/* --- the reader ---------------------------------------------------------- */

/* The items a whole stream yields, fed in pieces of `step` bytes (0:
 * whole): packets as "type:bodylen" words, DATA payload joined. */
struct items {
	char list[4096];
	uint8_t data[300000];
	size_t datalen;
	int err;
	char why[96];
};

static void read_all(const uint8_t *s, size_t len, size_t step, struct items *out)
{
	struct gw_rdg_reader r;
	struct gw_rdg_item it;
	size_t off = 0, piece, lo;
	ssize_t k;

	memset(out, 0, sizeof(*out));
	gw_rdg_reader_init(&r);
	while (off < len) {
		piece = step ? (len - off < step ? len - off : step) : len - off;
		lo = 0;
		while (lo < piece) {
			k = gw_rdg_read(&r, s + off + lo, piece - lo, &it);
			if (k < 0) {
				out->err = (int)k;
				snprintf(out->why, sizeof(out->why), "%s", r.why);
				return;
			}
			cr_assert(k > 0 || it.kind == GW_RDG_ITEM_NONE);
			lo += (size_t)k;
			if (it.kind == GW_RDG_ITEM_PACKET)
				snprintf(out->list + strlen(out->list),
					 sizeof(out->list) - strlen(out->list), "%x:%zu ", it.type,
					 it.n);
			if (it.kind == GW_RDG_ITEM_DATA) {
				memcpy(out->data + out->datalen, it.p, it.n);
				out->datalen += it.n;
				if (it.last)
					strcat(out->list, "D ");
			}
		}
		off += piece;
	}
}

static size_t fr_stream(uint8_t *b)
{
	size_t n = 0;

	memcpy(b + n, FR_HANDSHAKE, sizeof(FR_HANDSHAKE)), n += sizeof(FR_HANDSHAKE);
	memcpy(b + n, FR_TUNNEL_CREATE, sizeof(FR_TUNNEL_CREATE)), n += sizeof(FR_TUNNEL_CREATE);
	memcpy(b + n, FR_TUNNEL_AUTH, sizeof(FR_TUNNEL_AUTH)), n += sizeof(FR_TUNNEL_AUTH);
	memcpy(b + n, FR_CHANNEL_CREATE, sizeof(FR_CHANNEL_CREATE)), n += sizeof(FR_CHANNEL_CREATE);
	memcpy(b + n, FR_DATA, sizeof(FR_DATA)), n += sizeof(FR_DATA);
	memcpy(b + n, FR_KEEPALIVE, sizeof(FR_KEEPALIVE)), n += sizeof(FR_KEEPALIVE);
	memcpy(b + n, FR_CLOSE_RESPONSE, sizeof(FR_CLOSE_RESPONSE)), n += sizeof(FR_CLOSE_RESPONSE);
	return n;
}

Test(rdg_reader, freerdp_stream_whole_and_in_every_piece_size, .timeout = 10)
{
	static struct items whole, cut;
	uint8_t s[512];
	size_t n = fr_stream(s);

	read_all(s, n, 0, &whole);
	cr_assert_eq(whole.err, 0, "%s", whole.why);
	cr_assert_str_eq(whole.list, "1:6 4:30 6:10 8:28 D d:0 11:4 ");
	cr_assert_eq(whole.datalen, 44);
	cr_assert_eq(memcmp(whole.data, FR_DATA + 10, 44), 0);
	for (size_t step = 1; step <= n; step++) {
		read_all(s, n, step, &cut);
		cr_assert_eq(cut.err, 0, "step %zu: %s", step, cut.why);
		cr_assert_str_eq(cut.list, whole.list, "step %zu", step);
		cr_assert_eq(cut.datalen, 44);
		cr_assert_eq(memcmp(cut.data, whole.data, 44), 0, "step %zu", step);
	}
}

Test(rdg_reader, a_prefix_is_never_a_packet, .timeout = 10)
{
	uint8_t s[512];
	size_t n = fr_stream(s), whole_packets;
	struct gw_rdg_reader r;
	struct gw_rdg_item it;
	ssize_t k;

	/* Cut the stream at every byte: what is complete in the prefix comes
	 * out, nothing more, and the rest completes it. */
	for (size_t cut = 0; cut <= n; cut++) {
		gw_rdg_reader_init(&r);
		whole_packets = 0;
		for (size_t off = 0; off < cut; off += (size_t)k) {
			k = gw_rdg_read(&r, s + off, cut - off, &it);
			cr_assert(k > 0, "cut %zu", cut);
			if (it.kind == GW_RDG_ITEM_PACKET ||
			    (it.kind == GW_RDG_ITEM_DATA && it.last))
				whole_packets++;
		}
		size_t ends[] = { 14, 52, 70, 106, 160, 168, 180 }, expect = 0;
		for (size_t i = 0; i < 7; i++)
			expect += ends[i] <= cut;
		cr_assert_eq(whole_packets, expect, "cut %zu", cut);
		for (size_t off = cut; off < n; off += (size_t)k) {
			k = gw_rdg_read(&r, s + off, n - off, &it);
			cr_assert(k > 0, "rest after %zu", cut);
			if (it.kind == GW_RDG_ITEM_PACKET ||
			    (it.kind == GW_RDG_ITEM_DATA && it.last))
				whole_packets++;
		}
		cr_assert_eq(whole_packets, 7, "cut %zu", cut);
	}
}

/* A header of `type` claiming `len` bytes. */
static int read_header(uint16_t type, uint32_t len, char *why)
{
	struct gw_rdg_reader r;
	struct gw_rdg_item it;
	uint8_t h[8];
	ssize_t k;

	p16(h, type);
	p16(h + 2, 0);
	p32(h + 4, len);
	gw_rdg_reader_init(&r);
	k = gw_rdg_read(&r, h, 8, &it);
	if (why)
		strcpy(why, r.why);
	if (k < 0) {
		/* Refused for good. */
		cr_assert_eq(gw_rdg_read(&r, h, 8, &it), -EPROTO);
		cr_assert_eq(r.type, type);
	}
	return k < 0 ? (int)k : 0;
}

Test(rdg_reader, lengths_outside_each_types_range, .timeout = 5)
{
	static const struct {
		uint16_t type;
		uint32_t min, max;
	} t[] = {
		{ 0x01, 14, 14 },   { 0x02, 18, 18 },	 { 0x03, 10, 4096 }, { 0x04, 16, 4096 },
		{ 0x05, 18, 4096 }, { 0x06, 12, 4096 },	 { 0x07, 16, 4096 }, { 0x08, 14, 4096 },
		{ 0x09, 16, 4096 }, { 0x0a, 10, 65545 }, { 0x0b, 10, 4096 }, { 0x0c, 16, 16 },
		{ 0x0d, 8, 8 },	    { 0x10, 12, 12 },	 { 0x11, 12, 12 },
	};
	char why[96];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		cr_assert_eq(read_header(t[i].type, t[i].min - 1, why), -EPROTO, "type %x",
			     t[i].type);
		cr_assert(strstr(why, "bytes"), "%s", why);
		cr_assert_eq(read_header(t[i].type, t[i].max + 1, NULL), -EPROTO);
		cr_assert_eq(read_header(t[i].type, 0, NULL), -EPROTO);
		cr_assert_eq(read_header(t[i].type, 7, NULL), -EPROTO);
		cr_assert_eq(read_header(t[i].type, 0xffffffffu, NULL), -EPROTO);
		cr_assert_eq(read_header(t[i].type, 0x80000008u, NULL), -EPROTO);
		cr_assert_eq(read_header(t[i].type, t[i].min, NULL), 0);
		cr_assert_eq(read_header(t[i].type, t[i].max, NULL), 0);
	}
}

Test(rdg_reader, types_that_do_not_exist, .timeout = 5)
{
	uint16_t bad[] = { 0x00, 0x0e, 0x0f, 0x12, 0x100, 0x8001, 0xffff };
	char why[96];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(read_header(bad[i], 12, why), -EPROTO);
		cr_assert(strstr(why, "does not exist"), "%s", why);
	}
}

Test(rdg_reader, data_whose_payload_length_lies, .timeout = 5)
{
	uint8_t b[32] = { 0x0a, 0, 0, 0, 20, 0, 0, 0 };
	struct gw_rdg_reader r;
	struct gw_rdg_item it;

	for (uint16_t cb = 0; cb < 40; cb++) {
		if (cb == 10)
			continue;
		p16(b + 8, cb);
		gw_rdg_reader_init(&r);
		cr_assert_eq(gw_rdg_read(&r, b, sizeof(b), &it), -EPROTO, "cbLen %u", cb);
		cr_assert(strstr(r.why, "payload"), "%s", r.why);
	}
	p16(b + 8, 10);
	gw_rdg_reader_init(&r);
	cr_assert_eq(gw_rdg_read(&r, b, 20, &it), 20);
	cr_assert_eq(it.kind, GW_RDG_ITEM_DATA);
	cr_assert_eq(it.n, 10);
	cr_assert(it.last);
	/* An empty DATA packet: one empty, last slice. */
	uint8_t e[10] = { 0x0a, 0, 0, 0, 10, 0, 0, 0, 0, 0 };
	gw_rdg_reader_init(&r);
	cr_assert_eq(gw_rdg_read(&r, e, 10, &it), 10);
	cr_assert_eq(it.kind, GW_RDG_ITEM_DATA);
	cr_assert_eq(it.n, 0);
	cr_assert(it.last);
}

Test(rdg_reader, biggest_packets_pass_and_one_more_byte_does_not, .timeout = 5)
{
	static uint8_t b[GW_RDG_DATA_HDR_LEN + GW_RDG_DATA_MAX];
	static struct items got;

	gw_rdg_data_header(b, GW_RDG_DATA_MAX);
	memset(b + 10, 0x5a, GW_RDG_DATA_MAX);
	read_all(b, sizeof(b), 0, &got);
	cr_assert_eq(got.err, 0, "%s", got.why);
	cr_assert_eq(got.datalen, GW_RDG_DATA_MAX);
	read_all(b, sizeof(b), 4093, &got);
	cr_assert_eq(got.datalen, GW_RDG_DATA_MAX);
	cr_assert_str_eq(got.list, "D ");

	/* A control packet of GW_RDG_CTRL_MAX is read whole; one byte more is
	 * refused before its body is kept. */
	memset(b, 0, GW_RDG_CTRL_MAX);
	pkt(b, GW_RDG_SERVICE_MESSAGE, b + 8, GW_RDG_CTRL_MAX - 8);
	read_all(b, GW_RDG_CTRL_MAX, 0, &got);
	cr_assert_eq(got.err, 0);
	cr_assert_str_eq(got.list, "b:4088 ");
	p32(b + 4, GW_RDG_CTRL_MAX + 1);
	read_all(b, 8, 0, &got);
	cr_assert_eq(got.err, -EPROTO);
}

/* --- parsers ------------------------------------------------------------- */

Test(rdg_parse, freerdp_packets, .timeout = 5)
{
	struct gw_rdg_handshake h;
	struct gw_rdg_tunnel_create tc;
	struct gw_rdg_tunnel_auth ta;
	struct gw_rdg_channel_create cc;

	cr_assert_eq(gw_rdg_parse_handshake(FR_HANDSHAKE + 8, 6, &h), 0);
	cr_assert_eq(h.major, 1);
	cr_assert_eq(h.minor, 0);
	cr_assert_eq(h.ext_auth, GW_RDG_EXT_AUTH_PAA);
	cr_assert_eq(gw_rdg_parse_tunnel_create(FR_TUNNEL_CREATE + 8, 30, &tc), 0);
	cr_assert_eq(tc.caps,
		     GW_RDG_CAP_QUAR_SOH | GW_RDG_CAP_CONSENT_SIGN | GW_RDG_CAP_SERVICE_MSG);
	cr_assert(tc.has_cookie);
	cr_assert_not(tc.has_reauth);
	cr_assert_str_eq(tc.cookie, "TICKETabc");
	cr_assert_eq(gw_rdg_parse_tunnel_auth(FR_TUNNEL_AUTH + 8, 10, &ta), 0);
	cr_assert_str_eq(ta.client_name, "vm");
	cr_assert_eq(gw_rdg_parse_channel_create(FR_CHANNEL_CREATE + 8, 28, &cc), 0);
	cr_assert_eq(cc.resources, 1);
	cr_assert_eq(cc.alternatives, 0);
	cr_assert_eq(cc.port, 23389);
	cr_assert_eq(cc.protocol, 3);
	cr_assert_str_eq(cc.host, "127.0.0.1");
	/* Every shorter body is refused. */
	for (size_t n = 0; n < 30; n++)
		cr_assert_lt(gw_rdg_parse_tunnel_create(FR_TUNNEL_CREATE + 8, n, &tc), 0, "%zu", n);
	for (size_t n = 0; n < 10; n++)
		cr_assert_lt(gw_rdg_parse_tunnel_auth(FR_TUNNEL_AUTH + 8, n, &ta), 0, "%zu", n);
	for (size_t n = 0; n < 28; n++)
		cr_assert_lt(gw_rdg_parse_channel_create(FR_CHANNEL_CREATE + 8, n, &cc), 0, "%zu",
			     n);
	for (size_t n = 0; n < 6; n++)
		cr_assert_eq(gw_rdg_parse_handshake(FR_HANDSHAKE + 8, n, &h), -EPROTO);
	cr_assert_eq(gw_rdg_parse_handshake(FR_HANDSHAKE + 8, 7, &h), -EPROTO);
}

/* Parse a TUNNEL_CREATE whose cookie field holds cb bytes of c. */
static int parse_cookie(const uint8_t *c, size_t cb, struct gw_rdg_tunnel_create *tc)
{
	static uint8_t b[8192];

	return gw_rdg_parse_tunnel_create(b, tc_body(b, c, cb), tc);
}

Test(rdg_parse, cookies, .timeout = 5)
{
	static struct gw_rdg_tunnel_create tc;
	static uint8_t c[4096];
	size_t n;

	/* No cookie field (an NTLM client): none. */
	cr_assert_eq(parse_cookie(NULL, 0, &tc), 0);
	cr_assert_not(tc.has_cookie);
	/* Zero-length and terminator-only cookies: present, empty. */
	cr_assert_eq(parse_cookie(c, 0, &tc), 0);
	cr_assert(tc.has_cookie);
	cr_assert_str_eq(tc.cookie, "");
	memset(c, 0, 2);
	cr_assert_eq(parse_cookie(c, 2, &tc), 0);
	cr_assert_str_eq(tc.cookie, "");
	/* Without a terminator, as another client might send it. */
	n = u16s(c, "Xk2a-_b", 0);
	cr_assert_eq(parse_cookie(c, n, &tc), 0);
	cr_assert_str_eq(tc.cookie, "Xk2a-_b");
	/* Odd length. */
	n = u16s(c, "abc", 1);
	cr_assert_eq(parse_cookie(c, n - 1, &tc), -EILSEQ);
	cr_assert_str_eq(tc.cookie, "");
	/* A NUL inside: what follows it must not vanish from a comparison. */
	n = u16s(c, "abcd", 1);
	p16(c + 2, 0);
	cr_assert_eq(parse_cookie(c, n, &tc), -EILSEQ);
	/* Two terminators: the first is inside. */
	n = u16s(c, "ab", 1);
	p16(c + n, 0);
	cr_assert_eq(parse_cookie(c, n + 2, &tc), -EILSEQ);
	/* Control characters (forged log lines). */
	n = u16s(c, "ab\ncd", 1);
	cr_assert_eq(parse_cookie(c, n, &tc), -EILSEQ);
	n = u16s(c, "ab", 0);
	p16(c + n, 0x85), n += 2;
	cr_assert_eq(parse_cookie(c, n, &tc), -EILSEQ);
	/* Non-ASCII: é, and U+1F600 as a surrogate pair. */
	p16(c, 0xe9);
	p16(c + 2, 0xd83d);
	p16(c + 4, 0xde00);
	cr_assert_eq(parse_cookie(c, 6, &tc), 0);
	cr_assert_str_eq(tc.cookie, "\xc3\xa9\xf0\x9f\x98\x80");
	/* Lone surrogates, at the end and in the middle, and reversed. */
	p16(c, 'a');
	p16(c + 2, 0xd83d);
	cr_assert_eq(parse_cookie(c, 4, &tc), -EILSEQ);
	p16(c + 4, 'b');
	cr_assert_eq(parse_cookie(c, 6, &tc), -EILSEQ);
	p16(c + 2, 0xde00);
	cr_assert_eq(parse_cookie(c, 6, &tc), -EILSEQ);
	p16(c + 2, 0xde00);
	p16(c + 4, 0xd83d);
	cr_assert_eq(parse_cookie(c, 6, &tc), -EILSEQ);
	/* High surrogate then the terminator. */
	p16(c + 2, 0xd83d);
	p16(c + 4, 0);
	cr_assert_eq(parse_cookie(c, 6, &tc), -EILSEQ);
	/* The longest cookie kept, and one byte more (ASCII and 3-byte). */
	memset(c, 0, sizeof(c));
	for (n = 0; n < GW_RDG_COOKIE_MAX; n++)
		p16(c + 2 * n, 'a' + n % 26);
	cr_assert_eq(parse_cookie(c, 2 * n, &tc), 0);
	cr_assert_eq(strlen(tc.cookie), GW_RDG_COOKIE_MAX);
	p16(c + 2 * n, 'z');
	cr_assert_eq(parse_cookie(c, 2 * n + 2, &tc), -ENAMETOOLONG);
	for (n = 0; n < 342; n++)
		p16(c + 2 * n, 0x20ac); /* €: 3 bytes, 342 * 3 = 1026 */
	cr_assert_eq(parse_cookie(c, 2 * n, &tc), -ENAMETOOLONG);
	cr_assert_eq(parse_cookie(c, 2 * 341, &tc), 0);
}

Test(rdg_parse, tunnel_create_lengths_that_lie, .timeout = 5)
{
	uint8_t b[64], c[16];
	struct gw_rdg_tunnel_create tc;
	size_t cb = u16s(c, "abc", 1), n = tc_body(b, c, cb);

	cr_assert_eq(gw_rdg_parse_tunnel_create(b, n, &tc), 0);
	/* A cookie length past the packet, and short of it (bytes left). */
	p16(b + 8, (uint16_t)(cb + 2));
	cr_assert_eq(gw_rdg_parse_tunnel_create(b, n, &tc), -EPROTO);
	p16(b + 8, 0xffff);
	cr_assert_eq(gw_rdg_parse_tunnel_create(b, n, &tc), -EPROTO);
	p16(b + 8, (uint16_t)(cb - 2));
	cr_assert_eq(gw_rdg_parse_tunnel_create(b, n, &tc), -EPROTO);
	p16(b + 8, (uint16_t)cb);
	/* A byte after the cookie. */
	cr_assert_eq(gw_rdg_parse_tunnel_create(b, n + 1, &tc), -EPROTO);
	/* A field flag nobody knows. */
	p16(b + 4, GW_RDG_TUNNEL_PAA_COOKIE | 0x4);
	cr_assert_eq(gw_rdg_parse_tunnel_create(b, n, &tc), -EPROTO);
	/* No cookie flag but a cookie: bytes left over. */
	p16(b + 4, 0);
	cr_assert_eq(gw_rdg_parse_tunnel_create(b, n, &tc), -EPROTO);
	/* Reauthentication context, then the cookie. */
	p16(b + 4, GW_RDG_TUNNEL_PAA_COOKIE | GW_RDG_TUNNEL_REAUTH);
	memmove(b + 16, b + 8, n - 8);
	p32(b + 8, 0x11223344);
	p32(b + 12, 0x55667788);
	cr_assert_eq(gw_rdg_parse_tunnel_create(b, n + 8, &tc), 0);
	cr_assert(tc.has_reauth);
	cr_assert_eq(tc.reauth_context, 0x5566778811223344ull);
	cr_assert_str_eq(tc.cookie, "abc");
	cr_assert_eq(gw_rdg_parse_tunnel_create(b, 15, &tc), -EPROTO);
}

Test(rdg_parse, tunnel_auth, .timeout = 5)
{
	uint8_t b[600];
	struct gw_rdg_tunnel_auth ta;
	size_t n;

	p16(b, 0);
	n = u16s(b + 4, "DESKTOP-1", 1);
	p16(b + 2, (uint16_t)n);
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 4 + n, &ta), 0);
	cr_assert_str_eq(ta.client_name, "DESKTOP-1");
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 5 + n, &ta), -EPROTO);
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 3 + n, &ta), -EPROTO);
	p16(b + 2, (uint16_t)(n - 1));
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 3 + n, &ta), -EILSEQ);
	p16(b + 2, (uint16_t)n);
	/* An empty name is a name. */
	p16(b + 2, 0);
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 4, &ta), 0);
	cr_assert_str_eq(ta.client_name, "");
	/* A statement of health after the name is stepped over, if it fits. */
	p16(b, GW_RDG_TUNNEL_AUTH_SOH);
	p16(b + 2, (uint16_t)n);
	p16(b + 4 + n, 3);
	memcpy(b + 6 + n, "xyz", 3);
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 9 + n, &ta), 0);
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 8 + n, &ta), -EPROTO);
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 10 + n, &ta), -EPROTO);
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 5 + n, &ta), -EPROTO);
	p16(b, 0x2);
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 9 + n, &ta), -EPROTO);
	/* 255 bytes of name, and 256. */
	p16(b, 0);
	for (n = 0; n < 256; n++)
		p16(b + 4 + 2 * n, 'n');
	p16(b + 2, 510);
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 514, &ta), 0);
	p16(b + 2, 512);
	cr_assert_eq(gw_rdg_parse_tunnel_auth(b, 516, &ta), -ENAMETOOLONG);
}

Test(rdg_parse, channel_create, .timeout = 5)
{
	static uint8_t b[8192];
	struct gw_rdg_channel_create cc;
	size_t n = cc_body(b, "desk1.example.org", 3389, 3), m;

	cr_assert_eq(gw_rdg_parse_channel_create(b, n, &cc), 0);
	cr_assert_str_eq(cc.host, "desk1.example.org");
	cr_assert_eq(gw_rdg_parse_channel_create(b, n + 1, &cc), -EPROTO);
	/* No resource at all. */
	b[0] = 0;
	cr_assert_eq(gw_rdg_parse_channel_create(b, n, &cc), -EPROTO);
	/* Counts that cannot fit. */
	b[0] = 255;
	b[1] = 255;
	cr_assert_eq(gw_rdg_parse_channel_create(b, n, &cc), -EPROTO);
	b[0] = 2;
	b[1] = 0;
	cr_assert_eq(gw_rdg_parse_channel_create(b, n, &cc), -EPROTO);
	/* Alternatives are read, checked and dropped: the first resource is
	 * the target. */
	b[0] = 1;
	b[1] = 2;
	m = u16s(b + n + 2, "other", 1);
	p16(b + n, (uint16_t)m);
	n += 2 + m;
	m = u16s(b + n + 2, "third", 0);
	p16(b + n, (uint16_t)m);
	n += 2 + m;
	cr_assert_eq(gw_rdg_parse_channel_create(b, n, &cc), 0);
	cr_assert_str_eq(cc.host, "desk1.example.org");
	cr_assert_eq(cc.alternatives, 2);
	/* A bad alternative spoils the packet. */
	p16(b + n - 2, 0xdc00);
	cr_assert_eq(gw_rdg_parse_channel_create(b, n, &cc), -EILSEQ);
	/* 255 resources and 255 alternatives, all empty: 4 + 510 * 2 bytes. */
	memset(b, 0, sizeof(b));
	b[0] = 255;
	b[1] = 255;
	p16(b + 2, 3389);
	p16(b + 4, 3);
	cr_assert_eq(gw_rdg_parse_channel_create(b, 6 + 510 * 2, &cc), 0);
	cr_assert_eq(gw_rdg_parse_channel_create(b, 6 + 510 * 2 - 1, &cc), -EPROTO);
	cr_assert_eq(gw_rdg_parse_channel_create(b, 6 + 510 * 2 + 2, &cc), -EPROTO);
	/* Host names: odd, too long, with a NUL inside. */
	n = cc_body(b, "desk1", 3389, 3);
	cr_assert_eq(gw_rdg_parse_channel_create(b, n - 1, &cc), -EPROTO);
	p16(b + 6, (uint16_t)(g16(b + 6) - 1));
	cr_assert_eq(gw_rdg_parse_channel_create(b, n - 1, &cc), -EILSEQ);
	n = cc_body(b, "desk1", 3389, 3);
	p16(b + 10, 0);
	cr_assert_eq(gw_rdg_parse_channel_create(b, n, &cc), -EILSEQ);
	char longname[300];
	memset(longname, 'h', 256);
	longname[256] = '\0';
	n = cc_body(b, longname, 3389, 3);
	cr_assert_eq(gw_rdg_parse_channel_create(b, n, &cc), -ENAMETOOLONG);
	longname[255] = '\0';
	n = cc_body(b, longname, 3389, 3);
	cr_assert_eq(gw_rdg_parse_channel_create(b, n, &cc), 0);
}

Test(rdg_parse, close, .timeout = 5)
{
	uint8_t b[5] = { 0xdf, 0x59, 0x07, 0x80, 0 };
	uint32_t st;

	cr_assert_eq(gw_rdg_parse_close(b, 4, &st), 0);
	cr_assert_eq(st, E_PROXY_ALREADYDISCONNECTED);
	cr_assert_eq(gw_rdg_parse_close(b, 3, &st), -EPROTO);
	cr_assert_eq(gw_rdg_parse_close(b, 5, &st), -EPROTO);
}

/* --- builders ------------------------------------------------------------ */

static void assert_bytes(const uint8_t *got, size_t n, const char *hex)
{
	char s[1024] = "";

	for (size_t i = 0; i < n; i++)
		snprintf(s + strlen(s), sizeof(s) - strlen(s), "%s%02x", i ? " " : "", got[i]);
	cr_assert_str_eq(s, hex);
}

Test(rdg_build, exact_bytes, .timeout = 5)
{
	uint8_t b[GW_RDG_SERVICE_MESSAGE_MAX];
	size_t n;

	n = gw_rdg_build_handshake_response(b, 0, GW_RDG_EXT_AUTH_PAA);
	assert_bytes(b, n, "02 00 00 00 12 00 00 00 00 00 00 00 01 00 00 00 02 00");
	n = gw_rdg_build_tunnel_response(b, 0, 7, 0x0a);
	assert_bytes(
		b, n,
		"05 00 00 00 1a 00 00 00 01 00 00 00 00 00 03 00 00 00 07 00 00 00 0a 00 00 00");
	n = gw_rdg_build_tunnel_response(b, E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED, 7, 0x0a);
	assert_bytes(b, n, "05 00 00 00 12 00 00 00 01 00 f8 59 07 80 00 00 00 00");
	n = gw_rdg_build_auth_response(b, 0, GW_RDG_REDIR_ENABLE_ALL, 30);
	assert_bytes(b, n,
		     "07 00 00 00 18 00 00 00 00 00 00 00 03 00 00 00 00 00 00 80 1e 00 00 00");
	n = gw_rdg_build_auth_response(b, E_PROXY_INTERNALERROR, 1, 1);
	assert_bytes(b, n, "07 00 00 00 10 00 00 00 d8 59 07 80 00 00 00 00");
	n = gw_rdg_build_channel_response(b, 0, 1);
	assert_bytes(b, n, "09 00 00 00 14 00 00 00 00 00 00 00 01 00 00 00 01 00 00 00");
	n = gw_rdg_build_channel_response(b, E_PROXY_RAP_ACCESSDENIED, 1);
	assert_bytes(b, n, "09 00 00 00 10 00 00 00 da 59 07 80 00 00 00 00");
	n = gw_rdg_build_keepalive(b);
	assert_bytes(b, n, "0d 00 00 00 08 00 00 00");
	n = gw_rdg_build_close(b, E_PROXY_ALREADYDISCONNECTED);
	assert_bytes(b, n, "10 00 00 00 0c 00 00 00 df 59 07 80");
	n = gw_rdg_build_close_response(b, 0);
	assert_bytes(b, n, "11 00 00 00 0c 00 00 00 00 00 00 00");
	gw_rdg_data_header(b, 44);
	assert_bytes(b, 10, "0a 00 00 00 36 00 00 00 2c 00");
	/* cbLen counts the terminator, as the clients' own strings do. */
	cr_assert_eq(gw_rdg_build_service_message(b, "Hi \xc3\xa9\xf0\x9f\x98\x80"), 24);
	assert_bytes(b, 24,
		     "0b 00 00 00 18 00 00 00 0e 00 48 00 69 00 20 00 e9 00 3d d8 00 de 00 00");
}

Test(rdg_build, service_messages_that_cannot_be_sent, .timeout = 5)
{
	static uint8_t b[GW_RDG_SERVICE_MESSAGE_MAX];
	static char text[GW_RDG_MESSAGE_MAX + 2];
	const char *bad[] = {
		"\xc3",		"a\xc3z",	    "\xc0\xaf",		"\xe0\x80\xaf",
		"\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff",
		"a\x01",	"bell\a",	    "esc\x1b[2J",	"\xc2\x85",
		"del\x7f",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(gw_rdg_build_service_message(b, bad[i]), -EILSEQ, "%zu", i);
	cr_assert_gt(gw_rdg_build_service_message(b, "line one\nline two\tok"), 0);
	memset(text, 'm', GW_RDG_MESSAGE_MAX);
	text[GW_RDG_MESSAGE_MAX] = '\0';
	cr_assert_eq(gw_rdg_build_service_message(b, text), GW_RDG_SERVICE_MESSAGE_MAX);
	text[GW_RDG_MESSAGE_MAX] = 'm';
	text[GW_RDG_MESSAGE_MAX + 1] = '\0';
	cr_assert_eq(gw_rdg_build_service_message(b, text), -ENAMETOOLONG);
}

Test(rdg_build, everything_built_reads_back, .timeout = 5)
{
	static uint8_t s[8192];
	static struct items got;
	size_t n = 0;
	ssize_t m;

	n += gw_rdg_build_handshake_response(s + n, 0, 2);
	n += gw_rdg_build_tunnel_response(s + n, 0, 1, 2);
	n += gw_rdg_build_tunnel_response(s + n, E_PROXY_INTERNALERROR, 1, 2);
	n += gw_rdg_build_auth_response(s + n, 0, 0, 0);
	n += gw_rdg_build_auth_response(s + n, E_PROXY_INTERNALERROR, 0, 0);
	n += gw_rdg_build_channel_response(s + n, 0, 1);
	n += gw_rdg_build_channel_response(s + n, E_PROXY_INTERNALERROR, 1);
	m = gw_rdg_build_service_message(s + n, "x");
	cr_assert_gt(m, 0);
	n += (size_t)m;
	n += gw_rdg_build_keepalive(s + n);
	n += gw_rdg_build_close(s + n, 0);
	n += gw_rdg_build_close_response(s + n, 0);
	gw_rdg_data_header(s + n, 3);
	memcpy(s + n + 10, "abc", 3);
	n += 13;
	read_all(s, n, 1, &got);
	cr_assert_eq(got.err, 0, "%s", got.why);
	cr_assert_str_eq(got.list, "2:10 5:18 5:10 7:16 7:8 9:12 9:8 b:6 d:0 10:4 11:4 D ");
	cr_assert_eq(got.datalen, 3);
}

Test(rdg_build, status_names_and_hresults, .timeout = 5)
{
	cr_assert_str_eq(gw_rdg_status_name(E_PROXY_RAP_ACCESSDENIED), "E_PROXY_RAP_ACCESSDENIED");
	cr_assert_str_eq(gw_rdg_status_name(0x800759E6u), "E_PROXY_MAXCONNECTIONSREACHED");
	cr_assert_str_eq(gw_rdg_status_name(E_PROXY_NOTSUPPORTED), "E_PROXY_NOTSUPPORTED");
	cr_assert_str_eq(gw_rdg_status_name(0), "S_OK");
	cr_assert_str_eq(gw_rdg_status_name(0x12345678u), "unknown");
	cr_assert_eq(GW_RDG_HRESULT(E_PROXY_NOTSUPPORTED), 0x800759E8u);
	cr_assert_eq(GW_RDG_HRESULT(E_PROXY_RAP_ACCESSDENIED), E_PROXY_RAP_ACCESSDENIED);
	cr_assert_eq(GW_RDG_HRESULT(E_PROXY_CONNECTIONABORTED), 0x800704D4u);
}

/* --- the state machine --------------------------------------------------- */

/* The glue, as a test plays it: records what the client would receive and
 * what the gateway is asked to do; answers at once when told to. */
struct glue {
	struct gw_rdg_tun t;
	uint8_t out[400000];
	size_t outlen;
	int send_fail_at; /* fail the n-th send (1-based); 0: never */
	int sends;
	int auths, opens;
	int cookie_null;
	char cookie[GW_RDG_COOKIE_MAX + 1];
	char host[GW_RDG_HOST_MAX + 1];
	uint16_t port;
	uint8_t data[300000];
	size_t datalen;
	int data_fail;
	int answer_auth; /* answer authenticate at once with auth_status/auth_msg */
	uint32_t auth_status;
	const char *auth_msg;
	int answer_open; /* answer open at once with open_status */
	uint32_t open_status;
};

static int g_send(struct gw_rdg_tun *t, const uint8_t *p, size_t n)
{
	struct glue *g = t->data;

	if (++g->sends == g->send_fail_at)
		return -EPIPE;
	cr_assert_leq(g->outlen + n, sizeof(g->out));
	memcpy(g->out + g->outlen, p, n);
	g->outlen += n;
	return 0;
}

static void g_authenticate(struct gw_rdg_tun *t, const char *cookie)
{
	struct glue *g = t->data;

	cr_assert_eq(t->state, GW_RDG_S_AUTHENTICATE);
	g->auths++;
	g->cookie_null = cookie == NULL;
	snprintf(g->cookie, sizeof(g->cookie), "%s", cookie ? cookie : "");
	if (g->answer_auth)
		cr_assert_eq(gw_rdg_tun_authenticated(t, g->auth_status, g->auth_msg), 0);
}

static void g_open(struct gw_rdg_tun *t, const char *host, uint16_t port)
{
	struct glue *g = t->data;

	cr_assert_eq(t->state, GW_RDG_S_OPENING);
	g->opens++;
	snprintf(g->host, sizeof(g->host), "%s", host);
	g->port = port;
	if (g->answer_open)
		cr_assert_eq(gw_rdg_tun_opened(t, g->open_status), 0);
}

static int g_data(struct gw_rdg_tun *t, const uint8_t *p, size_t n)
{
	struct glue *g = t->data;

	cr_assert_eq(t->state, GW_RDG_S_OPEN);
	if (g->data_fail)
		return -ENOBUFS;
	memcpy(g->data + g->datalen, p, n);
	g->datalen += n;
	return 0;
}

static const struct gw_rdg_ops glue_ops = { g_send, g_authenticate, g_open, g_data };

static struct glue *glue_new(void)
{
	struct glue *g = calloc(1, sizeof(*g));

	cr_assert_not_null(g);
	gw_rdg_tun_init(&g->t, &glue_ops, g);
	g->answer_auth = g->answer_open = 1;
	return g;
}

/* Feed bytes in pieces of step (0: whole); the first non-zero result. */
static int feed(struct glue *g, const uint8_t *p, size_t n, size_t step)
{
	int rc;

	if (!step)
		return gw_rdg_tun_feed(&g->t, p, n);
	for (size_t off = 0; off < n; off += step) {
		rc = gw_rdg_tun_feed(&g->t, p + off, n - off < step ? n - off : step);
		if (rc)
			return rc;
	}
	return 0;
}

#define FEED(g, a) feed((g), (a), sizeof(a), 0)

/* What the client received, as "TYPE:status" words (status: the 4 bytes
 * after the header, for packets that carry one), D for a DATA packet. */
static void sent(struct glue *g, char *s, size_t len)
{
	struct gw_rdg_reader r;
	struct gw_rdg_item it;
	ssize_t k;

	s[0] = '\0';
	gw_rdg_reader_init(&r);
	for (size_t off = 0; off < g->outlen; off += (size_t)k) {
		k = gw_rdg_read(&r, g->out + off, g->outlen - off, &it);
		cr_assert_gt(k, 0, "the client would not read this: %s", r.why);
		if (it.kind == GW_RDG_ITEM_DATA) {
			if (it.last)
				snprintf(s + strlen(s), len - strlen(s), "D ");
			continue;
		}
		if (it.kind != GW_RDG_ITEM_PACKET)
			continue;
		switch (it.type) {
		case GW_RDG_TUNNEL_RESPONSE:
			snprintf(s + strlen(s), len - strlen(s), "%x:%x ", it.type, g32(it.p + 2));
			break;
		case GW_RDG_HANDSHAKE_RESPONSE:
		case GW_RDG_TUNNEL_AUTH_RESPONSE:
		case GW_RDG_CHANNEL_RESPONSE:
		case GW_RDG_CLOSE_CHANNEL:
		case GW_RDG_CLOSE_CHANNEL_RESPONSE:
			snprintf(s + strlen(s), len - strlen(s), "%x:%x ", it.type, g32(it.p));
			break;
		default:
			snprintf(s + strlen(s), len - strlen(s), "%x ", it.type);
		}
	}
}

#define ASSERT_SENT(g, expect)                                  \
	do {                                                    \
		char s_[2048];                                  \
		sent((g), s_, sizeof(s_));                      \
		cr_assert_str_eq(s_, (expect), "sent: %s", s_); \
	} while (0)

static size_t fr_setup(uint8_t *b)
{
	size_t n = 0;

	memcpy(b + n, FR_HANDSHAKE, sizeof(FR_HANDSHAKE)), n += sizeof(FR_HANDSHAKE);
	memcpy(b + n, FR_TUNNEL_CREATE, sizeof(FR_TUNNEL_CREATE)), n += sizeof(FR_TUNNEL_CREATE);
	memcpy(b + n, FR_TUNNEL_AUTH, sizeof(FR_TUNNEL_AUTH)), n += sizeof(FR_TUNNEL_AUTH);
	memcpy(b + n, FR_CHANNEL_CREATE, sizeof(FR_CHANNEL_CREATE)), n += sizeof(FR_CHANNEL_CREATE);
	return n;
}

/* An open tunnel, as xfreerdp opens one. */
static struct glue *open_tunnel(void)
{
	uint8_t s[256];
	struct glue *g = glue_new();

	cr_assert_eq(feed(g, s, fr_setup(s), 0), 0);
	cr_assert_eq(g->t.state, GW_RDG_S_OPEN);
	g->outlen = 0;
	return g;
}

Test(rdg_tun, freerdp_opens_a_tunnel_whole_and_byte_at_a_time, .timeout = 10)
{
	uint8_t s[512];
	size_t n = fr_setup(s);

	memcpy(s + n, FR_DATA, sizeof(FR_DATA));
	n += sizeof(FR_DATA);
	memcpy(s + n, FR_KEEPALIVE, sizeof(FR_KEEPALIVE));
	n += sizeof(FR_KEEPALIVE);
	for (size_t step = 0; step <= 3; step++) {
		struct glue *g = glue_new();

		cr_assert_eq(feed(g, s, n, step), 0, "step %zu", step);
		/* What FreeRDP reads: handshake ok with PAA, tunnel ok with its
		 * id and caps, auth ok, channel ok with channel id 1. */
		ASSERT_SENT(g, "2:0 5:0 7:0 9:0 ");
		cr_assert_eq(memcmp(g->out,
				    "\x02\x00\x00\x00\x12\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00"
				    "\x00\x02\x00",
				    18),
			     0);
		/* TUNNEL_RESPONSE: tunnel id 1, IDLE_TIMEOUT | SERVICE_MSG (the
		 * client offered SERVICE_MSG). */
		cr_assert_eq(g32(g->out + 18 + 18), 1);
		cr_assert_eq(g32(g->out + 18 + 22),
			     GW_RDG_CAP_IDLE_TIMEOUT | GW_RDG_CAP_SERVICE_MSG);
		cr_assert_eq(g->auths, 1);
		cr_assert_not(g->cookie_null);
		cr_assert_str_eq(g->cookie, "TICKETabc");
		cr_assert_eq(g->opens, 1);
		cr_assert_str_eq(g->host, "127.0.0.1");
		cr_assert_eq(g->port, 23389);
		cr_assert_str_eq(g->t.client_name, "vm");
		cr_assert_eq(g->datalen, 44);
		cr_assert_eq(memcmp(g->data, FR_DATA + 10, 44), 0);
		cr_assert_eq(g->t.bytes_in, 44);
		cr_assert_eq(g->t.state, GW_RDG_S_OPEN);
		/* The cookie left nothing behind in the reader. */
		cr_assert_null(
			memmem(g->t.rd.body, sizeof(g->t.rd.body), FR_TUNNEL_CREATE + 18, 18));
		free(g);
	}
}

Test(rdg_tun, answers_given_later, .timeout = 5)
{
	struct glue *g = glue_new();

	g->answer_auth = g->answer_open = 0;
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, FR_TUNNEL_CREATE), 0);
	cr_assert_eq(g->t.state, GW_RDG_S_AUTHENTICATE);
	ASSERT_SENT(g, "2:0 ");
	/* A keepalive while the broker thinks is fine and unanswered. */
	cr_assert_eq(FEED(g, FR_KEEPALIVE), 0);
	ASSERT_SENT(g, "2:0 ");
	cr_assert_eq(gw_rdg_tun_opened(&g->t, 0), -EINVAL);
	cr_assert_eq(gw_rdg_tun_authenticated(&g->t, 0, NULL), 0);
	cr_assert_eq(gw_rdg_tun_authenticated(&g->t, 0, NULL), -EINVAL);
	cr_assert_eq(FEED(g, FR_TUNNEL_AUTH), 0);
	cr_assert_eq(FEED(g, FR_CHANNEL_CREATE), 0);
	cr_assert_eq(g->t.state, GW_RDG_S_OPENING);
	ASSERT_SENT(g, "2:0 5:0 7:0 ");
	/* No data before the channel's answer. */
	cr_assert_eq(gw_rdg_tun_send_data(&g->t, (const uint8_t *)"x", 1), -ENOTCONN);
	cr_assert_eq(gw_rdg_tun_opened(&g->t, 0), 0);
	cr_assert_eq(gw_rdg_tun_opened(&g->t, 0), -EINVAL);
	ASSERT_SENT(g, "2:0 5:0 7:0 9:0 ");
	cr_assert_eq(g->t.state, GW_RDG_S_OPEN);
	free(g);
}

Test(rdg_tun, a_request_before_the_answer_ends_it, .timeout = 5)
{
	struct glue *g = glue_new();

	g->answer_auth = 0;
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, FR_TUNNEL_CREATE), 0);
	/* TUNNEL_AUTH before TUNNEL_RESPONSE. */
	cr_assert_eq(FEED(g, FR_TUNNEL_AUTH), -EPROTO);
	ASSERT_SENT(g, "2:0 7:800759d8 ");
	cr_assert(gw_rdg_tun_done(&g->t));
	cr_assert_eq(g->t.status, E_PROXY_INTERNALERROR);
	cr_assert(strstr(g->t.why, "TUNNEL_AUTH while authenticating"), "%s", g->t.why);
	/* The broker's answer comes late: nothing happens. */
	cr_assert_eq(gw_rdg_tun_authenticated(&g->t, 0, NULL), -EINVAL);
	ASSERT_SENT(g, "2:0 7:800759d8 ");
	cr_assert_eq(FEED(g, FR_CHANNEL_CREATE), -EPIPE);
	cr_assert_eq(g->opens, 0);
	free(g);
}

Test(rdg_tun, cookie_refused, .timeout = 5)
{
	struct glue *g = glue_new();

	g->auth_status = E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED;
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, FR_TUNNEL_CREATE), 0);
	ASSERT_SENT(g, "2:0 5:800759f8 ");
	/* Without optional fields: 18 bytes. */
	cr_assert_eq(g->outlen, 18 + 18);
	cr_assert(gw_rdg_tun_done(&g->t));
	cr_assert_eq(g->t.status, E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED);
	cr_assert_eq(FEED(g, FR_TUNNEL_AUTH), -EPIPE);
	cr_assert_eq(gw_rdg_tun_keepalive(&g->t), -ENOTCONN);
	cr_assert_eq(g->opens, 0);
	free(g);
}

Test(rdg_tun, a_code_clients_would_take_for_success_is_sent_as_a_failure, .timeout = 5)
{
	struct glue *g = glue_new();

	g->auth_status = E_PROXY_MAXCONNECTIONSREACHED;
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, FR_TUNNEL_CREATE), 0);
	ASSERT_SENT(g, "2:0 5:800759e6 ");
	free(g);
}

/* The service message the client received, as UTF-8 (ASCII here). */
static void message_sent(struct glue *g, char *text, size_t len)
{
	struct gw_rdg_reader r;
	struct gw_rdg_item it;
	ssize_t k;

	text[0] = '\0';
	gw_rdg_reader_init(&r);
	for (size_t off = 0; off < g->outlen; off += (size_t)k) {
		k = gw_rdg_read(&r, g->out + off, g->outlen - off, &it);
		cr_assert_gt(k, 0);
		if (it.kind == GW_RDG_ITEM_PACKET && it.type == GW_RDG_SERVICE_MESSAGE) {
			size_t cb = g16(it.p), i;
			cr_assert_eq(cb + 2, it.n);
			for (i = 0; i + 2 < cb && i / 2 + 1 < len; i += 2)
				text[i / 2] = (char)g16(it.p + 2 + i);
			text[i / 2] = '\0';
			cr_assert_eq(g16(it.p + cb), 0, "terminated");
		}
	}
}

Test(rdg_tun, refused_with_a_message, .timeout = 5)
{
	const char *msg = "No ticket: open the .rdp file from the Portico portal, or run "
			  "`portico connect NAME`.";
	uint8_t s[256];
	char text[256];
	struct glue *g = glue_new();

	g->auth_status = E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED;
	g->auth_msg = msg;
	cr_assert_eq(feed(g, s, fr_setup(s), 1), 0);
	/* The client is told ok up to its channel, then hears why and that
	 * the channel closes; nothing was ever opened. */
	ASSERT_SENT(g, "2:0 5:0 7:0 9:0 b 10:800759f8 ");
	message_sent(g, text, sizeof(text));
	cr_assert_str_eq(text, msg);
	cr_assert_eq(g->opens, 0);
	cr_assert_eq(g->t.state, GW_RDG_S_CLOSING);
	/* Its X.224 request reaches nobody. */
	cr_assert_eq(FEED(g, FR_DATA), 0);
	cr_assert_eq(g->datalen, 0);
	cr_assert_eq(g->t.bytes_in, 0);
	cr_assert_eq(gw_rdg_tun_send_data(&g->t, (const uint8_t *)"x", 1), 0);
	ASSERT_SENT(g, "2:0 5:0 7:0 9:0 b 10:800759f8 ");
	cr_assert_eq(FEED(g, FR_CLOSE_RESPONSE), 0);
	cr_assert(gw_rdg_tun_done(&g->t));
	cr_assert_eq(g->t.status, E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED);
	free(g);
}

Test(rdg_tun, a_message_that_cannot_be_sent_is_a_plain_refusal, .timeout = 5)
{
	struct glue *g = glue_new();

	g->answer_auth = 0;
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, FR_TUNNEL_CREATE), 0);
	cr_assert_eq(gw_rdg_tun_authenticated(&g->t, E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED,
					      "bad\x1b[31m"),
		     -EILSEQ);
	ASSERT_SENT(g, "2:0 5:800759f8 ");
	cr_assert(gw_rdg_tun_done(&g->t));
	free(g);
}

Test(rdg_tun, a_client_without_a_cookie, .timeout = 5)
{
	/* What xfreerdp sends without /gat: (after NTLM over HTTP). */
	uint8_t hs[14], tc[16], b[16];
	struct glue *g = glue_new();

	memcpy(hs, FR_HANDSHAKE, 14);
	p16(hs + 12, GW_RDG_EXT_AUTH_NONE);
	pkt(tc, GW_RDG_TUNNEL_CREATE, b, tc_body(b, NULL, 0));
	g->auth_status = E_PROXY_UNSUPPORTED_AUTHENTICATION_METHOD;
	cr_assert_eq(FEED(g, hs), 0);
	cr_assert_eq(FEED(g, tc), 0);
	/* It hears no PAA in the handshake, and the glue hears no cookie. */
	cr_assert_eq(g16(g->out + 16), 0);
	cr_assert_eq(g->auths, 1);
	cr_assert(g->cookie_null);
	ASSERT_SENT(g, "2:0 5:800759f9 ");
	free(g);
}

Test(rdg_tun, malformed_tunnel_create, .timeout = 5)
{
	uint8_t p[64], b[64], c[16];
	size_t cb;
	struct {
		const char *what;
		size_t n;
	} cases[4];
	struct glue *g;

	/* Zero-length cookie, odd-length cookie, a lying length, and a
	 * packetLength past GW_RDG_CTRL_MAX: TUNNEL_RESPONSE says
	 * E_PROXY_COOKIE_BADPACKET; the glue never sees a cookie. */
	for (int i = 0; i < 4; i++) {
		g = glue_new();
		cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
		cb = u16s(c, "abc", 1);
		if (i == 0)
			cb = 0;
		cases[i].n = pkt(p, GW_RDG_TUNNEL_CREATE, b, tc_body(b, c, cb));
		if (i == 1) {
			p32(p + 4, g32(p + 4) - 1);
			p16(p + 16, (uint16_t)(cb - 1));
			cases[i].n--;
		}
		if (i == 2)
			p16(p + 16, 200);
		if (i == 3)
			p32(p + 4, GW_RDG_CTRL_MAX + 1);
		cr_assert_eq(feed(g, p, cases[i].n, 0), -EPROTO, "case %d", i);
		ASSERT_SENT(g, "2:0 5:800759f7 ");
		cr_assert_eq(g->auths, 0, "case %d", i);
		cr_assert(gw_rdg_tun_done(&g->t));
		free(g);
	}
}

Test(rdg_tun, wrong_order, .timeout = 5)
{
	uint8_t s[256];
	struct glue *g;

	/* Each packet first, before the handshake. */
	const struct {
		const uint8_t *p;
		size_t n;
		const char *sent;
	} first[] = {
		{ FR_TUNNEL_CREATE, sizeof(FR_TUNNEL_CREATE), "5:800759d8 " },
		{ FR_TUNNEL_AUTH, sizeof(FR_TUNNEL_AUTH), "7:800759d8 " },
		{ FR_CHANNEL_CREATE, sizeof(FR_CHANNEL_CREATE), "9:800759d8 " },
		{ FR_DATA, sizeof(FR_DATA), "" },
		{ FR_KEEPALIVE, sizeof(FR_KEEPALIVE), "" },
		{ FR_CLOSE_RESPONSE, sizeof(FR_CLOSE_RESPONSE), "" },
	};
	for (size_t i = 0; i < sizeof(first) / sizeof(first[0]); i++) {
		g = glue_new();
		cr_assert_eq(feed(g, first[i].p, first[i].n, 0), -EPROTO, "%zu", i);
		ASSERT_SENT(g, first[i].sent);
		cr_assert(gw_rdg_tun_done(&g->t));
		cr_assert_eq(g->auths + g->opens, 0);
		cr_assert_eq(g->datalen, 0);
		free(g);
	}

	/* CHANNEL_CREATE right after the handshake: no open. */
	g = glue_new();
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, FR_CHANNEL_CREATE), -EPROTO);
	ASSERT_SENT(g, "2:0 9:800759d8 ");
	cr_assert_eq(g->opens, 0);
	free(g);

	/* CHANNEL_CREATE after the tunnel, before TUNNEL_AUTH. */
	g = glue_new();
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, FR_TUNNEL_CREATE), 0);
	cr_assert_eq(FEED(g, FR_CHANNEL_CREATE), -EPROTO);
	ASSERT_SENT(g, "2:0 5:0 9:800759d8 ");
	cr_assert_eq(g->opens, 0);
	free(g);

	/* A second TUNNEL_CREATE: the cookie is not asked about twice. */
	g = glue_new();
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, FR_TUNNEL_CREATE), 0);
	cr_assert_eq(FEED(g, FR_TUNNEL_CREATE), -EPROTO);
	ASSERT_SENT(g, "2:0 5:0 5:800759d8 ");
	cr_assert_eq(g->auths, 1);
	free(g);

	/* A second HANDSHAKE_REQUEST. */
	g = glue_new();
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, FR_HANDSHAKE), -EPROTO);
	ASSERT_SENT(g, "2:0 2:800759d8 ");
	free(g);

	/* DATA after TUNNEL_AUTH, before the channel. */
	g = glue_new();
	size_t n = fr_setup(s) - sizeof(FR_CHANNEL_CREATE);
	cr_assert_eq(feed(g, s, n, 0), 0);
	cr_assert_eq(FEED(g, FR_DATA), -EPROTO);
	ASSERT_SENT(g, "2:0 5:0 7:0 ");
	cr_assert_eq(g->datalen, 0);
	free(g);

	/* In the data phase, any request closes the channel. */
	const uint8_t *again[] = { FR_HANDSHAKE, FR_TUNNEL_CREATE, FR_TUNNEL_AUTH,
				   FR_CHANNEL_CREATE };
	const size_t again_n[] = { sizeof(FR_HANDSHAKE), sizeof(FR_TUNNEL_CREATE),
				   sizeof(FR_TUNNEL_AUTH), sizeof(FR_CHANNEL_CREATE) };
	for (size_t i = 0; i < 4; i++) {
		g = open_tunnel();
		cr_assert_eq(feed(g, again[i], again_n[i], 0), -EPROTO);
		ASSERT_SENT(g, "10:800759d8 ");
		cr_assert_eq(g->opens, 1);
		cr_assert_eq(g->auths, 1);
		free(g);
	}
}

Test(rdg_tun, packets_only_a_server_sends, .timeout = 5)
{
	uint8_t p[64], b[64];
	uint16_t types[] = { GW_RDG_HANDSHAKE_RESPONSE,	  GW_RDG_TUNNEL_RESPONSE,
			     GW_RDG_TUNNEL_AUTH_RESPONSE, GW_RDG_CHANNEL_RESPONSE,
			     GW_RDG_SERVICE_MESSAGE,	  GW_RDG_REAUTH_MESSAGE,
			     GW_RDG_EXTENDED_AUTH_MSG };
	size_t lens[] = { 10, 18, 16, 12, 2, 8, 2 };

	memset(b, 0, sizeof(b));
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct glue *g = open_tunnel();

		cr_assert_eq(feed(g, p, pkt(p, types[i], b, lens[i]), 0), -EPROTO, "%x", types[i]);
		ASSERT_SENT(g, "10:800759d8 ");
		cr_assert(strstr(g->t.why, "from a client"), "%s", g->t.why);
		free(g);
	}
	/* And a type that does not exist, mid-data. */
	struct glue *g = open_tunnel();
	cr_assert_eq(feed(g, p, pkt(p, 0x77, b, 4), 0), -EPROTO);
	ASSERT_SENT(g, "10:800759d8 ");
	free(g);
}

Test(rdg_tun, handshake_version_and_length, .timeout = 5)
{
	uint8_t hs[14];
	struct glue *g = glue_new();

	memcpy(hs, FR_HANDSHAKE, 14);
	hs[8] = 2;
	cr_assert_eq(FEED(g, hs), -EPROTO);
	ASSERT_SENT(g, "2:800759e9 ");
	free(g);

	/* A handshake one byte long: its length is checked before its body. */
	g = glue_new();
	memcpy(hs, FR_HANDSHAKE, 14);
	p32(hs + 4, 15);
	cr_assert_eq(FEED(g, hs), -EPROTO);
	ASSERT_SENT(g, "2:800759d8 ");
	free(g);
}

Test(rdg_tun, channel_create_checks, .timeout = 5)
{
	uint8_t s[256], p[700], b[700];
	size_t n = fr_setup(s) - sizeof(FR_CHANNEL_CREATE);
	const struct {
		const char *host;
		uint16_t port, protocol;
		const char *sent;
	} cases[] = {
		{ "desk1", 3389, 4, "9:800759da " },
		{ "desk1", 0, 3, "9:800759da " },
		{ "", 3389, 3, "9:800759da " },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct glue *g = glue_new();

		cr_assert_eq(feed(g, s, n, 0), 0);
		g->outlen = 0;
		cr_assert_eq(feed(g, p,
				  pkt(p, GW_RDG_CHANNEL_CREATE, b,
				      cc_body(b, cases[i].host, cases[i].port, cases[i].protocol)),
				  0),
			     -EPROTO, "%zu", i);
		ASSERT_SENT(g, cases[i].sent);
		cr_assert_eq(g->opens, 0);
		free(g);
	}
	/* Counts that lie, and a host that is no string. */
	struct glue *g = glue_new();
	cr_assert_eq(feed(g, s, n, 0), 0);
	g->outlen = 0;
	size_t m = cc_body(b, "desk1", 3389, 3);
	b[1] = 200;
	cr_assert_eq(feed(g, p, pkt(p, GW_RDG_CHANNEL_CREATE, b, m), 0), -EPROTO);
	ASSERT_SENT(g, "9:800759d8 ");
	free(g);
	g = glue_new();
	cr_assert_eq(feed(g, s, n, 0), 0);
	g->outlen = 0;
	m = cc_body(b, "desk1", 3389, 3);
	p16(b + 10, 0xdfff);
	cr_assert_eq(feed(g, p, pkt(p, GW_RDG_CHANNEL_CREATE, b, m), 0), -EPROTO);
	ASSERT_SENT(g, "9:800759da ");
	free(g);
}

Test(rdg_tun, channel_refused, .timeout = 5)
{
	uint8_t s[256];
	struct glue *g = glue_new();

	g->open_status = E_PROXY_RAP_ACCESSDENIED;
	cr_assert_eq(feed(g, s, fr_setup(s), 0), 0);
	ASSERT_SENT(g, "2:0 5:0 7:0 9:800759da ");
	cr_assert_eq(g->opens, 1);
	cr_assert(gw_rdg_tun_done(&g->t));
	cr_assert_eq(g->t.status, E_PROXY_RAP_ACCESSDENIED);
	cr_assert_eq(FEED(g, FR_DATA), -EPIPE);
	cr_assert_eq(g->datalen, 0);
	cr_assert_eq(gw_rdg_tun_send_data(&g->t, (const uint8_t *)"x", 1), -ENOTCONN);
	free(g);
}

Test(rdg_tun, data_both_ways, .timeout = 10)
{
	static uint8_t big[200000];
	static struct items got;
	struct glue *g = open_tunnel();

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
	cr_assert_eq(gw_rdg_tun_send_data(&g->t, big, sizeof(big)), 0);
	ASSERT_SENT(g, "D D D D ");
	read_all(g->out, g->outlen, 0, &got);
	cr_assert_eq(got.datalen, sizeof(big));
	cr_assert_eq(memcmp(got.data, big, sizeof(big)), 0);
	cr_assert_eq(g->t.bytes_out, sizeof(big));
	cr_assert_eq(g32(g->out + 4), 10 + 65535);
	cr_assert_eq(gw_rdg_tun_send_data(&g->t, big, 0), 0);

	/* The client's DATA packets, of every size, cut anywhere. */
	static uint8_t in[300000];
	size_t n = 0, total = 0;
	for (size_t k = 1; k <= GW_RDG_DATA_MAX && total + k <= 150000;
	     k = k * 3 + 1 > GW_RDG_DATA_MAX ? GW_RDG_DATA_MAX : k * 3 + 1) {
		gw_rdg_data_header(in + n, k);
		memcpy(in + n + 10, big + total, k);
		n += 10 + k;
		total += k;
	}
	g->datalen = 0;
	cr_assert_eq(feed(g, in, n, 777), 0);
	cr_assert_eq(g->datalen, total);
	cr_assert_eq(memcmp(g->data, big, total), 0);
	free(g);
}

Test(rdg_tun, keepalives, .timeout = 5)
{
	struct glue *g = glue_new();

	cr_assert_eq(gw_rdg_tun_keepalive(&g->t), -ENOTCONN);
	free(g);
	g = open_tunnel();
	cr_assert_eq(gw_rdg_tun_keepalive(&g->t), 0);
	ASSERT_SENT(g, "d ");
	/* The client's answer is not answered. */
	cr_assert_eq(FEED(g, FR_KEEPALIVE), 0);
	ASSERT_SENT(g, "d ");
	/* A keepalive with a body is not one. */
	uint8_t k[9] = { 0x0d, 0, 0, 0, 9, 0, 0, 0, 0 };
	cr_assert_eq(FEED(g, k), -EPROTO);
	ASSERT_SENT(g, "d 10:800759d8 ");
	free(g);
}

Test(rdg_tun, closed_by_the_client, .timeout = 5)
{
	uint8_t c[12] = { 0x10, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0 };
	struct glue *g = open_tunnel();

	cr_assert_eq(FEED(g, c), 0);
	ASSERT_SENT(g, "11:0 ");
	cr_assert(gw_rdg_tun_done(&g->t));
	cr_assert_eq(g->t.status, 0);
	cr_assert_eq(gw_rdg_tun_send_data(&g->t, c, 1), -ENOTCONN);
	free(g);

	/* Before the channel: nothing to close. */
	g = glue_new();
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, c), -EPROTO);
	ASSERT_SENT(g, "2:0 ");
	free(g);
}

Test(rdg_tun, closed_by_the_gateway, .timeout = 5)
{
	struct glue *g = open_tunnel();

	cr_assert_eq(gw_rdg_tun_close(&g->t, E_PROXY_ALREADYDISCONNECTED), 0);
	ASSERT_SENT(g, "10:800759df ");
	cr_assert_eq(g->t.state, GW_RDG_S_CLOSING);
	/* Data in flight both ways is dropped. */
	cr_assert_eq(FEED(g, FR_DATA), 0);
	cr_assert_eq(g->datalen, 0);
	cr_assert_eq(gw_rdg_tun_send_data(&g->t, FR_DATA, 4), 0);
	ASSERT_SENT(g, "10:800759df ");
	/* FreeRDP's answer ends it. */
	cr_assert_eq(FEED(g, FR_CLOSE_RESPONSE), 0);
	cr_assert(gw_rdg_tun_done(&g->t));
	cr_assert_eq(g->t.status, E_PROXY_ALREADYDISCONNECTED);
	free(g);

	/* The backend ended: status 0. */
	g = open_tunnel();
	cr_assert_eq(gw_rdg_tun_close(&g->t, 0), 0);
	ASSERT_SENT(g, "10:0 ");
	cr_assert_eq(gw_rdg_tun_close(&g->t, 0), 0);
	cr_assert(gw_rdg_tun_done(&g->t));
	free(g);

	/* While the glue thinks: the pending request hears the status. */
	g = glue_new();
	g->answer_auth = 0;
	cr_assert_eq(FEED(g, FR_HANDSHAKE), 0);
	cr_assert_eq(FEED(g, FR_TUNNEL_CREATE), 0);
	cr_assert_eq(gw_rdg_tun_close(&g->t, E_PROXY_ALREADYDISCONNECTED), 0);
	ASSERT_SENT(g, "2:0 5:800759df ");
	cr_assert_eq(gw_rdg_tun_authenticated(&g->t, 0, NULL), -EINVAL);
	free(g);

	g = glue_new();
	g->answer_open = 0;
	uint8_t s[256];
	cr_assert_eq(feed(g, s, fr_setup(s), 0), 0);
	cr_assert_eq(gw_rdg_tun_close(&g->t, 0), 0);
	ASSERT_SENT(g, "2:0 5:0 7:0 9:800759d8 ");
	cr_assert_eq(gw_rdg_tun_opened(&g->t, 0), -EINVAL);
	free(g);
}

Test(rdg_tun, callbacks_that_fail, .timeout = 5)
{
	struct glue *g = glue_new();

	g->send_fail_at = 1;
	cr_assert_eq(FEED(g, FR_HANDSHAKE), -EPIPE);
	cr_assert(gw_rdg_tun_done(&g->t));
	cr_assert_eq(g->outlen, 0);
	free(g);

	g = open_tunnel();
	g->data_fail = 1;
	cr_assert_eq(FEED(g, FR_DATA), -ENOBUFS);
	cr_assert(gw_rdg_tun_done(&g->t));
	free(g);

	/* A send that fails halfway through a DATA packet (after its header). */
	g = open_tunnel();
	g->send_fail_at = g->sends + 2;
	cr_assert_eq(gw_rdg_tun_send_data(&g->t, FR_DATA, 8), -EPIPE);
	cr_assert(gw_rdg_tun_done(&g->t));
	free(g);
}

Test(rdg_tun, a_whole_session_fed_in_any_pieces_gives_the_same, .timeout = 20)
{
	static uint8_t s[4096];
	size_t n = fr_setup(s);
	uint8_t c[12] = { 0x10, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0 };

	for (int i = 0; i < 20; i++) {
		memcpy(s + n, FR_DATA, sizeof(FR_DATA));
		n += sizeof(FR_DATA);
		memcpy(s + n, FR_KEEPALIVE, sizeof(FR_KEEPALIVE));
		n += sizeof(FR_KEEPALIVE);
	}
	memcpy(s + n, c, sizeof(c));
	n += sizeof(c);
	struct glue *whole = glue_new();
	cr_assert_eq(feed(whole, s, n, 0), 0);
	ASSERT_SENT(whole, "2:0 5:0 7:0 9:0 11:0 ");
	cr_assert_eq(whole->datalen, 20 * 44);
	for (size_t step = 1; step < 64; step++) {
		struct glue *g = glue_new();

		cr_assert_eq(feed(g, s, n, step), 0, "step %zu", step);
		cr_assert_eq(g->outlen, whole->outlen);
		cr_assert_eq(memcmp(g->out, whole->out, g->outlen), 0, "step %zu", step);
		cr_assert_eq(g->datalen, whole->datalen);
		cr_assert_eq(memcmp(g->data, whole->data, g->datalen), 0);
		cr_assert(gw_rdg_tun_done(&g->t));
		free(g);
	}
	free(whole);
}
