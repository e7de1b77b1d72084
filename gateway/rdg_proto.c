/*
 * rdg_proto.c - see rdg.h.
 *
 * Past 600 lines on purpose: the packet reader, the parsers, the builders
 * and the state machine share one size table and one set of string rules,
 * and none of them is used without the others; the glue that puts them on
 * sockets lives elsewhere.
 */
#include "rdg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* --- little endian ------------------------------------------------------ */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

/* --- names -------------------------------------------------------------- */

static const struct {
	uint32_t code;
	const char *name;
} rdg_status_names[] = {
	{ 0, "S_OK" },
	{ E_PROXY_INTERNALERROR, "E_PROXY_INTERNALERROR" },
	{ E_PROXY_RAP_ACCESSDENIED, "E_PROXY_RAP_ACCESSDENIED" },
	{ E_PROXY_NAP_ACCESSDENIED, "E_PROXY_NAP_ACCESSDENIED" },
	{ E_PROXY_TS_CONNECTFAILED, "E_PROXY_TS_CONNECTFAILED" },
	{ E_PROXY_ALREADYDISCONNECTED, "E_PROXY_ALREADYDISCONNECTED" },
	{ E_PROXY_CAPABILITYMISMATCH, "E_PROXY_CAPABILITYMISMATCH" },
	{ E_PROXY_QUARANTINE_ACCESSDENIED, "E_PROXY_QUARANTINE_ACCESSDENIED" },
	{ E_PROXY_NOCERTAVAILABLE, "E_PROXY_NOCERTAVAILABLE" },
	{ E_PROXY_COOKIE_BADPACKET, "E_PROXY_COOKIE_BADPACKET" },
	{ E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED,
	  "E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED" },
	{ E_PROXY_UNSUPPORTED_AUTHENTICATION_METHOD, "E_PROXY_UNSUPPORTED_AUTHENTICATION_METHOD" },
	{ E_PROXY_MAXCONNECTIONSREACHED, "E_PROXY_MAXCONNECTIONSREACHED" },
	{ E_PROXY_NOTSUPPORTED, "E_PROXY_NOTSUPPORTED" },
	{ E_PROXY_SESSIONTIMEOUT, "E_PROXY_SESSIONTIMEOUT" },
	{ E_PROXY_CONNECTIONABORTED, "E_PROXY_CONNECTIONABORTED" },
};

const char *gw_rdg_status_name(uint32_t code)
{
	for (size_t i = 0; i < sizeof(rdg_status_names) / sizeof(rdg_status_names[0]); i++)
		if (rdg_status_names[i].code == code ||
		    (code && GW_RDG_HRESULT(rdg_status_names[i].code) == code))
			return rdg_status_names[i].name;
	return "unknown";
}

/* --- the size table ----------------------------------------------------- */

/* What a packet of each type may measure, header included.  A new packet
 * type is one more row here; a type without a row does not exist. */
static const struct rdg_size {
	uint16_t type;
	const char *name;
	uint32_t min, max;
} rdg_sizes[] = {
	{ GW_RDG_HANDSHAKE_REQUEST, "HANDSHAKE_REQUEST", 14, 14 },
	{ GW_RDG_HANDSHAKE_RESPONSE, "HANDSHAKE_RESPONSE", 18, 18 },
	{ GW_RDG_EXTENDED_AUTH_MSG, "EXTENDED_AUTH_MSG", 10, GW_RDG_CTRL_MAX },
	{ GW_RDG_TUNNEL_CREATE, "TUNNEL_CREATE", 16, GW_RDG_CTRL_MAX },
	{ GW_RDG_TUNNEL_RESPONSE, "TUNNEL_RESPONSE", 18, GW_RDG_CTRL_MAX },
	{ GW_RDG_TUNNEL_AUTH, "TUNNEL_AUTH", 12, GW_RDG_CTRL_MAX },
	{ GW_RDG_TUNNEL_AUTH_RESPONSE, "TUNNEL_AUTH_RESPONSE", 16, GW_RDG_CTRL_MAX },
	{ GW_RDG_CHANNEL_CREATE, "CHANNEL_CREATE", 14, GW_RDG_CTRL_MAX },
	{ GW_RDG_CHANNEL_RESPONSE, "CHANNEL_RESPONSE", 16, GW_RDG_CTRL_MAX },
	{ GW_RDG_DATA, "DATA", GW_RDG_DATA_HDR_LEN, GW_RDG_DATA_HDR_LEN + GW_RDG_DATA_MAX },
	{ GW_RDG_SERVICE_MESSAGE, "SERVICE_MESSAGE", 10, GW_RDG_CTRL_MAX },
	{ GW_RDG_REAUTH_MESSAGE, "REAUTH_MESSAGE", 16, 16 },
	{ GW_RDG_KEEPALIVE, "KEEPALIVE", 8, 8 },
	{ GW_RDG_CLOSE_CHANNEL, "CLOSE_CHANNEL", 12, 12 },
	{ GW_RDG_CLOSE_CHANNEL_RESPONSE, "CLOSE_CHANNEL_RESPONSE", 12, 12 },
};

static const struct rdg_size *rdg_size(uint16_t type)
{
	for (size_t i = 0; i < sizeof(rdg_sizes) / sizeof(rdg_sizes[0]); i++)
		if (rdg_sizes[i].type == type)
			return &rdg_sizes[i];
	return NULL;
}

static const char *rdg_type_name(uint16_t type)
{
	const struct rdg_size *s = rdg_size(type);

	return s ? s->name : "unknown packet";
}

/* --- the reader --------------------------------------------------------- */

void gw_rdg_reader_init(struct gw_rdg_reader *r)
{
	memset(r, 0, sizeof(*r));
}

__attribute__((format(printf, 2, 3))) static ssize_t rdg_bad(struct gw_rdg_reader *r,
							     const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	r->failed = 1;
	return -EPROTO;
}

static size_t rdg_min(size_t a, size_t b)
{
	return a < b ? a : b;
}

ssize_t gw_rdg_read(struct gw_rdg_reader *r, const uint8_t *in, size_t len, struct gw_rdg_item *it)
{
	const struct rdg_size *sz;
	size_t off = 0, k;
	uint16_t n;

	memset(it, 0, sizeof(*it));
	if (r->failed)
		return -EPROTO;
	if (r->done) {
		r->got = 0;
		r->type = 0;
		r->len = 0;
		r->done = 0;
	}
	while (off < len) {
		if (r->got < GW_RDG_HDR_LEN) {
			k = rdg_min(GW_RDG_HDR_LEN - r->got, len - off);
			memcpy(r->hdr + r->got, in + off, k);
			r->got += k;
			off += k;
			if (r->got < GW_RDG_HDR_LEN)
				continue;
			r->type = get16(r->hdr);
			r->len = get32(r->hdr + 4);
			sz = rdg_size(r->type);
			if (!sz)
				return rdg_bad(r, "packet type 0x%04x does not exist", r->type);
			if (r->len < sz->min || r->len > sz->max)
				return rdg_bad(r, "%s of %u bytes (%u to %u)", sz->name, r->len,
					       sz->min, sz->max);
			if (r->len == GW_RDG_HDR_LEN) {
				r->done = 1;
				it->kind = GW_RDG_ITEM_PACKET;
				it->type = r->type;
				it->p = r->body;
				return (ssize_t)off;
			}
			continue;
		}
		if (r->type == GW_RDG_DATA) {
			if (r->got < GW_RDG_DATA_HDR_LEN) {
				k = rdg_min(GW_RDG_DATA_HDR_LEN - r->got, len - off);
				memcpy(r->hdr + r->got, in + off, k);
				r->got += k;
				off += k;
				if (r->got < GW_RDG_DATA_HDR_LEN)
					continue;
				n = get16(r->hdr + GW_RDG_HDR_LEN);
				if (GW_RDG_DATA_HDR_LEN + (uint32_t)n != r->len)
					return rdg_bad(r,
						       "DATA of %u bytes with %u bytes of payload",
						       r->len, n);
				if (n == 0) {
					r->done = 1;
					it->kind = GW_RDG_ITEM_DATA;
					it->type = GW_RDG_DATA;
					it->p = in + off;
					it->last = 1;
					return (ssize_t)off;
				}
				continue;
			}
			/* Payload goes out as it comes, straight from the
			 * caller's buffer: the data path copies nothing here. */
			k = rdg_min(r->len - r->got, len - off);
			it->kind = GW_RDG_ITEM_DATA;
			it->type = GW_RDG_DATA;
			it->p = in + off;
			it->n = k;
			r->got += k;
			off += k;
			it->last = r->got == r->len;
			r->done = it->last;
			return (ssize_t)off;
		}
		k = rdg_min(r->len - r->got, len - off);
		memcpy(r->body + (r->got - GW_RDG_HDR_LEN), in + off, k);
		r->got += k;
		off += k;
		if (r->got == r->len) {
			r->done = 1;
			it->kind = GW_RDG_ITEM_PACKET;
			it->type = r->type;
			it->p = r->body;
			it->n = r->len - GW_RDG_HDR_LEN;
			return (ssize_t)off;
		}
	}
	return (ssize_t)off;
}

/* --- strings ------------------------------------------------------------ */

/* A character a string of this protocol may not hold: NUL (it would cut
 * the string short further on), C0 and C1 controls and DEL (they would
 * forge log lines).  newline_ok lets a message keep its line breaks. */
static int rdg_bad_char(uint32_t c, int newline_ok)
{
	if (newline_ok && (c == '\n' || c == '\t'))
		return 0;
	return c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0);
}

/* UTF-16LE in[0..n) to NUL-terminated UTF-8 in out[0..max].  One NUL at
 * the very end is the client's terminator and is dropped. */
static int rdg_utf16_to_utf8(const uint8_t *in, size_t n, char *out, size_t max)
{
	size_t i, o = 0, w;
	uint32_t c, d;

	out[0] = '\0';
	if (n % 2)
		return -EILSEQ;
	if (n >= 2 && get16(in + n - 2) == 0)
		n -= 2;
	for (i = 0; i < n; i += 2) {
		c = get16(in + i);
		if (c >= 0xd800 && c <= 0xdbff) {
			if (i + 4 > n)
				return -EILSEQ;
			d = get16(in + i + 2);
			if (d < 0xdc00 || d > 0xdfff)
				return -EILSEQ;
			c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
			i += 2;
		} else if (c >= 0xdc00 && c <= 0xdfff) {
			return -EILSEQ;
		}
		if (rdg_bad_char(c, 0))
			return -EILSEQ;
		w = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
		if (o + w > max) {
			out[0] = '\0';
			return -ENAMETOOLONG;
		}
		switch (w) {
		case 1:
			out[o] = (char)c;
			break;
		case 2:
			out[o] = (char)(0xc0 | c >> 6);
			out[o + 1] = (char)(0x80 | (c & 0x3f));
			break;
		case 3:
			out[o] = (char)(0xe0 | c >> 12);
			out[o + 1] = (char)(0x80 | (c >> 6 & 0x3f));
			out[o + 2] = (char)(0x80 | (c & 0x3f));
			break;
		default:
			out[o] = (char)(0xf0 | c >> 18);
			out[o + 1] = (char)(0x80 | (c >> 12 & 0x3f));
			out[o + 2] = (char)(0x80 | (c >> 6 & 0x3f));
			out[o + 3] = (char)(0x80 | (c & 0x3f));
			break;
		}
		o += w;
	}
	out[o] = '\0';
	return 0;
}

/* One character of NUL-terminated UTF-8 at s: its code point and length,
 * or 0 when it is not well-formed (overlong, a surrogate, past U+10FFFF,
 * cut short). */
static size_t rdg_utf8_char(const unsigned char *s, uint32_t *cp)
{
	size_t w, i;
	uint32_t c;

	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		w = 2, c = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		w = 3, c = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		w = 4, c = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < w; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((w == 3 && c < 0x800) || (w == 4 && (c < 0x10000 || c > 0x10ffff)) ||
	    (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return w;
}

/* --- parsers ------------------------------------------------------------ */

int gw_rdg_parse_handshake(const uint8_t *b, size_t n, struct gw_rdg_handshake *h)
{
	memset(h, 0, sizeof(*h));
	if (n != 6)
		return -EPROTO;
	h->major = b[0];
	h->minor = b[1];
	h->client_version = get16(b + 2);
	h->ext_auth = get16(b + 4);
	return 0;
}

int gw_rdg_parse_tunnel_create(const uint8_t *b, size_t n, struct gw_rdg_tunnel_create *t)
{
	size_t off = 8, cb;

	memset(t, 0, sizeof(*t));
	if (n < 8)
		return -EPROTO;
	t->caps = get32(b);
	t->fields = get16(b + 4);
	/* Optional fields follow in flag order; a flag this code does not
	 * know means a field it cannot step over. */
	if (t->fields & ~(GW_RDG_TUNNEL_PAA_COOKIE | GW_RDG_TUNNEL_REAUTH))
		return -EPROTO;
	if (t->fields & GW_RDG_TUNNEL_REAUTH) {
		if (n - off < 8)
			return -EPROTO;
		t->has_reauth = 1;
		t->reauth_context = (uint64_t)get32(b + off) | (uint64_t)get32(b + off + 4) << 32;
		off += 8;
	}
	if (t->fields & GW_RDG_TUNNEL_PAA_COOKIE) {
		if (n - off < 2)
			return -EPROTO;
		cb = get16(b + off);
		off += 2;
		if (n - off < cb)
			return -EPROTO;
		t->has_cookie = 1;
		int rc = rdg_utf16_to_utf8(b + off, cb, t->cookie, GW_RDG_COOKIE_MAX);
		if (rc < 0)
			return rc;
		off += cb;
	}
	return off == n ? 0 : -EPROTO;
}

int gw_rdg_parse_tunnel_auth(const uint8_t *b, size_t n, struct gw_rdg_tunnel_auth *a)
{
	size_t off = 4, cb;
	int rc;

	memset(a, 0, sizeof(*a));
	if (n < 4)
		return -EPROTO;
	a->fields = get16(b);
	if (a->fields & ~GW_RDG_TUNNEL_AUTH_SOH)
		return -EPROTO;
	cb = get16(b + 2);
	if (n - off < cb)
		return -EPROTO;
	rc = rdg_utf16_to_utf8(b + off, cb, a->client_name, GW_RDG_NAME_MAX);
	if (rc < 0)
		return rc;
	off += cb;
	/* A statement of health: never asked for (no QUAR_SOH capability is
	 * offered), stepped over when a client sends one anyway. */
	if (a->fields & GW_RDG_TUNNEL_AUTH_SOH) {
		if (n - off < 2)
			return -EPROTO;
		cb = get16(b + off);
		off += 2;
		if (n - off < cb)
			return -EPROTO;
		off += cb;
	}
	return off == n ? 0 : -EPROTO;
}

int gw_rdg_parse_channel_create(const uint8_t *b, size_t n, struct gw_rdg_channel_create *c)
{
	char scratch[GW_RDG_HOST_MAX + 1];
	size_t off = 6, cb;
	unsigned i, count;
	int rc;

	memset(c, 0, sizeof(*c));
	if (n < 6)
		return -EPROTO;
	c->resources = b[0];
	c->alternatives = b[1];
	c->port = get16(b + 2);
	c->protocol = get16(b + 4);
	if (c->resources == 0)
		return -EPROTO;
	count = (unsigned)c->resources + c->alternatives;
	for (i = 0; i < count; i++) {
		if (n - off < 2)
			return -EPROTO;
		cb = get16(b + off);
		off += 2;
		if (n - off < cb)
			return -EPROTO;
		rc = rdg_utf16_to_utf8(b + off, cb, i == 0 ? c->host : scratch, GW_RDG_HOST_MAX);
		if (rc < 0)
			return rc;
		off += cb;
	}
	return off == n ? 0 : -EPROTO;
}

int gw_rdg_parse_close(const uint8_t *b, size_t n, uint32_t *status)
{
	*status = 0;
	if (n != 4)
		return -EPROTO;
	*status = get32(b);
	return 0;
}

/* --- builders ----------------------------------------------------------- */

static size_t rdg_hdr(uint8_t *out, uint16_t type, size_t len)
{
	put16(out, type);
	put16(out + 2, 0);
	put32(out + 4, (uint32_t)len);
	return GW_RDG_HDR_LEN;
}

size_t gw_rdg_build_handshake_response(uint8_t *out, uint32_t status, uint16_t ext_auth)
{
	rdg_hdr(out, GW_RDG_HANDSHAKE_RESPONSE, GW_RDG_HANDSHAKE_RESPONSE_LEN);
	put32(out + 8, status);
	out[12] = 1; /* versionMajor */
	out[13] = 0; /* versionMinor */
	put16(out + 14, 0);
	put16(out + 16, ext_auth);
	return GW_RDG_HANDSHAKE_RESPONSE_LEN;
}

size_t gw_rdg_build_tunnel_response(uint8_t *out, uint32_t status, uint32_t tunnel_id,
				    uint32_t caps)
{
	size_t len = status ? 18 : GW_RDG_TUNNEL_RESPONSE_MAX;

	rdg_hdr(out, GW_RDG_TUNNEL_RESPONSE, len);
	put16(out + 8, 1); /* serverVersion */
	put32(out + 10, status);
	put16(out + 14, status ? 0 : GW_RDG_TRESP_TUNNEL_ID | GW_RDG_TRESP_CAPS);
	put16(out + 16, 0);
	if (!status) {
		put32(out + 18, tunnel_id);
		put32(out + 22, caps);
	}
	return len;
}

size_t gw_rdg_build_auth_response(uint8_t *out, uint32_t status, uint32_t redir_flags,
				  uint32_t idle_minutes)
{
	size_t len = status ? 16 : GW_RDG_AUTH_RESPONSE_MAX;

	rdg_hdr(out, GW_RDG_TUNNEL_AUTH_RESPONSE, len);
	put32(out + 8, status);
	put16(out + 12, status ? 0 : GW_RDG_ARESP_REDIR_FLAGS | GW_RDG_ARESP_IDLE_TIMEOUT);
	put16(out + 14, 0);
	if (!status) {
		put32(out + 16, redir_flags);
		put32(out + 20, idle_minutes);
	}
	return len;
}

size_t gw_rdg_build_channel_response(uint8_t *out, uint32_t status, uint32_t channel_id)
{
	size_t len = status ? 16 : GW_RDG_CHANNEL_RESPONSE_MAX;

	rdg_hdr(out, GW_RDG_CHANNEL_RESPONSE, len);
	put32(out + 8, status);
	put16(out + 12, status ? 0 : GW_RDG_CRESP_CHANNEL_ID);
	put16(out + 14, 0);
	if (!status)
		put32(out + 16, channel_id);
	return len;
}

size_t gw_rdg_build_keepalive(uint8_t *out)
{
	return rdg_hdr(out, GW_RDG_KEEPALIVE, GW_RDG_KEEPALIVE_LEN);
}

size_t gw_rdg_build_close(uint8_t *out, uint32_t status)
{
	rdg_hdr(out, GW_RDG_CLOSE_CHANNEL, GW_RDG_CLOSE_LEN);
	put32(out + 8, status);
	return GW_RDG_CLOSE_LEN;
}

size_t gw_rdg_build_close_response(uint8_t *out, uint32_t status)
{
	rdg_hdr(out, GW_RDG_CLOSE_CHANNEL_RESPONSE, GW_RDG_CLOSE_LEN);
	put32(out + 8, status);
	return GW_RDG_CLOSE_LEN;
}

ssize_t gw_rdg_build_service_message(uint8_t *out, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t o = GW_RDG_HDR_LEN + 2, w;
	uint32_t c;

	if (strlen(text) > GW_RDG_MESSAGE_MAX)
		return -ENAMETOOLONG;
	while (*s) {
		w = rdg_utf8_char(s, &c);
		if (!w || rdg_bad_char(c, 1))
			return -EILSEQ;
		s += w;
		if (c >= 0x10000) {
			c -= 0x10000;
			put16(out + o, (uint16_t)(0xd800 | c >> 10));
			put16(out + o + 2, (uint16_t)(0xdc00 | (c & 0x3ff)));
			o += 4;
		} else {
			put16(out + o, (uint16_t)c);
			o += 2;
		}
	}
	/* With its terminator, as clients write their own strings. */
	put16(out + o, 0);
	o += 2;
	put16(out + GW_RDG_HDR_LEN, (uint16_t)(o - GW_RDG_HDR_LEN - 2));
	rdg_hdr(out, GW_RDG_SERVICE_MESSAGE, o);
	return (ssize_t)o;
}

void gw_rdg_data_header(uint8_t hdr[GW_RDG_DATA_HDR_LEN], size_t n)
{
	rdg_hdr(hdr, GW_RDG_DATA, GW_RDG_DATA_HDR_LEN + n);
	put16(hdr + GW_RDG_HDR_LEN, (uint16_t)n);
}

/* --- the state machine -------------------------------------------------- */

static const char *const rdg_state_names[] = {
	[GW_RDG_S_HANDSHAKE] = "handshake",
	[GW_RDG_S_TUNNEL] = "tunnel create",
	[GW_RDG_S_AUTHENTICATE] = "authenticating",
	[GW_RDG_S_TUNNEL_AUTH] = "tunnel auth",
	[GW_RDG_S_CHANNEL] = "channel create",
	[GW_RDG_S_OPENING] = "opening",
	[GW_RDG_S_OPEN] = "open",
	[GW_RDG_S_CLOSING] = "closing",
	[GW_RDG_S_ENDED] = "ended",
};

void gw_rdg_tun_init(struct gw_rdg_tun *t, const struct gw_rdg_ops *ops, void *data)
{
	memset(t, 0, sizeof(*t));
	t->ops = ops;
	t->data = data;
	t->state = GW_RDG_S_HANDSHAKE;
	t->tunnel_id = 1;
	t->redir_flags = GW_RDG_REDIR_ENABLE_ALL;
}

__attribute__((format(printf, 3, 4))) static void rdg_end(struct gw_rdg_tun *t, uint32_t status,
							  const char *fmt, ...)
{
	va_list ap;

	if (t->state == GW_RDG_S_ENDED)
		return;
	t->state = GW_RDG_S_ENDED;
	t->status = status;
	va_start(ap, fmt);
	vsnprintf(t->why, sizeof(t->why), fmt, ap);
	va_end(ap);
}

static int rdg_send(struct gw_rdg_tun *t, const uint8_t *p, size_t n)
{
	int rc = t->ops->send(t, p, n);

	if (rc < 0)
		rdg_end(t, E_PROXY_INTERNALERROR, "sending to the client failed (%d)", rc);
	return rc < 0 ? rc : 0;
}

/* The response a request is answered with, or 0 for a packet that has
 * none. */
static uint16_t rdg_response_type(uint16_t type)
{
	switch (type) {
	case GW_RDG_HANDSHAKE_REQUEST:
		return GW_RDG_HANDSHAKE_RESPONSE;
	case GW_RDG_TUNNEL_CREATE:
		return GW_RDG_TUNNEL_RESPONSE;
	case GW_RDG_TUNNEL_AUTH:
		return GW_RDG_TUNNEL_AUTH_RESPONSE;
	case GW_RDG_CHANNEL_CREATE:
		return GW_RDG_CHANNEL_RESPONSE;
	default:
		return 0;
	}
}

/* Response `type` carrying a failure (no optional fields). */
static int rdg_answer_error(struct gw_rdg_tun *t, uint16_t type, uint32_t status)
{
	uint8_t out[GW_RDG_TUNNEL_RESPONSE_MAX];
	size_t n;

	status = GW_RDG_HRESULT(status);
	switch (type) {
	case GW_RDG_HANDSHAKE_RESPONSE:
		n = gw_rdg_build_handshake_response(out, status, 0);
		break;
	case GW_RDG_TUNNEL_RESPONSE:
		n = gw_rdg_build_tunnel_response(out, status, 0, 0);
		break;
	case GW_RDG_TUNNEL_AUTH_RESPONSE:
		n = gw_rdg_build_auth_response(out, status, 0, 0);
		break;
	case GW_RDG_CHANNEL_RESPONSE:
		n = gw_rdg_build_channel_response(out, status, 0);
		break;
	default:
		return 0;
	}
	return rdg_send(t, out, n);
}

/*
 * A packet that breaks the protocol ends the tunnel.  In the data phase
 * the client hears CLOSE_CHANNEL; before it, a request hears its own
 * response with `status` (what a client waiting for that response shows);
 * anything else hears nothing, as no client sends it.
 */
__attribute__((format(printf, 4, 5))) static int
rdg_violation(struct gw_rdg_tun *t, uint16_t type, uint32_t status, const char *fmt, ...)
{
	uint8_t out[GW_RDG_CLOSE_LEN];
	char why[sizeof(t->why)];
	va_list ap;
	int rc = 0;

	if (t->state == GW_RDG_S_ENDED)
		return -EPROTO;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (t->state == GW_RDG_S_OPEN)
		rc = rdg_send(t, out, gw_rdg_build_close(out, GW_RDG_HRESULT(status)));
	else if (t->state != GW_RDG_S_CLOSING)
		rc = rdg_answer_error(t, rdg_response_type(type), status);
	rdg_end(t, GW_RDG_HRESULT(status), "%s", why);
	return rc < 0 ? rc : -EPROTO;
}

static int rdg_out_of_order(struct gw_rdg_tun *t, uint16_t type)
{
	return rdg_violation(t, type, E_PROXY_INTERNALERROR, "%s while %s", rdg_type_name(type),
			     rdg_state_names[t->state]);
}

static int rdg_handshake(struct gw_rdg_tun *t, const uint8_t *b, size_t n)
{
	uint8_t out[GW_RDG_HANDSHAKE_RESPONSE_LEN];
	struct gw_rdg_handshake h;
	int rc;

	if (t->state != GW_RDG_S_HANDSHAKE)
		return rdg_out_of_order(t, GW_RDG_HANDSHAKE_REQUEST);
	if (gw_rdg_parse_handshake(b, n, &h) < 0)
		return rdg_violation(t, GW_RDG_HANDSHAKE_REQUEST, E_PROXY_INTERNALERROR,
				     "malformed HANDSHAKE_REQUEST");
	if (h.major != 1)
		return rdg_violation(t, GW_RDG_HANDSHAKE_REQUEST, E_PROXY_CAPABILITYMISMATCH,
				     "protocol version %u.%u", h.major, h.minor);
	t->ext_auth = h.ext_auth;
	/* PAA is the one method here.  A client that did not offer it (NTLM,
	 * smart card) hears none, goes on, and is refused at TUNNEL_CREATE,
	 * where the glue can tell it why. */
	rc = rdg_send(t, out,
		      gw_rdg_build_handshake_response(out, 0, h.ext_auth & GW_RDG_EXT_AUTH_PAA));
	if (rc < 0)
		return rc;
	t->state = GW_RDG_S_TUNNEL;
	return 0;
}

static int rdg_tunnel_create(struct gw_rdg_tun *t, const uint8_t *b, size_t n)
{
	struct gw_rdg_tunnel_create tc;
	int rc;

	if (t->state != GW_RDG_S_TUNNEL)
		return rdg_out_of_order(t, GW_RDG_TUNNEL_CREATE);
	rc = gw_rdg_parse_tunnel_create(b, n, &tc);
	/* The cookie is a one-time ticket: no copy outlives this call. */
	explicit_bzero(t->rd.body, sizeof(t->rd.body));
	if (rc < 0) {
		explicit_bzero(&tc, sizeof(tc));
		return rdg_violation(t, GW_RDG_TUNNEL_CREATE, E_PROXY_COOKIE_BADPACKET,
				     "malformed TUNNEL_CREATE (%s)", strerror(-rc));
	}
	if (tc.has_reauth) {
		explicit_bzero(&tc, sizeof(tc));
		return rdg_violation(t, GW_RDG_TUNNEL_CREATE, E_PROXY_CAPABILITYMISMATCH,
				     "TUNNEL_CREATE reauthenticates, which was not offered");
	}
	if (tc.has_cookie && !tc.cookie[0])
		return rdg_violation(t, GW_RDG_TUNNEL_CREATE, E_PROXY_COOKIE_BADPACKET,
				     "an empty PAA cookie");
	t->client_caps = tc.caps;
	t->state = GW_RDG_S_AUTHENTICATE;
	t->ops->authenticate(t, tc.has_cookie ? tc.cookie : NULL);
	explicit_bzero(&tc, sizeof(tc));
	return 0;
}

int gw_rdg_tun_authenticated(struct gw_rdg_tun *t, uint32_t status, const char *message)
{
	uint8_t out[GW_RDG_SERVICE_MESSAGE_MAX];
	ssize_t m;
	int rc;

	if (t->state != GW_RDG_S_AUTHENTICATE)
		return -EINVAL;
	if (status && message) {
		/* Checked now, so that a message the client could not be sent
		 * becomes a plain refusal rather than a tunnel that says ok. */
		m = gw_rdg_build_service_message(out, message);
		if (m < 0) {
			rc = gw_rdg_tun_authenticated(t, status, NULL);
			return rc < 0 ? rc : (int)m;
		}
		t->refuse_status = GW_RDG_HRESULT(status);
		snprintf(t->refuse_message, sizeof(t->refuse_message), "%s", message);
		status = 0;
	}
	if (status) {
		rc = rdg_send(t, out,
			      gw_rdg_build_tunnel_response(out, GW_RDG_HRESULT(status), 0, 0));
		rdg_end(t, GW_RDG_HRESULT(status), "PAA cookie refused (%s)",
			gw_rdg_status_name(status));
		return rc;
	}
	rc = rdg_send(t, out,
		      gw_rdg_build_tunnel_response(
			      out, 0, t->tunnel_id,
			      GW_RDG_CAP_IDLE_TIMEOUT | (t->client_caps & GW_RDG_CAP_SERVICE_MSG)));
	if (rc < 0)
		return rc;
	t->state = GW_RDG_S_TUNNEL_AUTH;
	return 0;
}

static int rdg_tunnel_auth(struct gw_rdg_tun *t, const uint8_t *b, size_t n)
{
	uint8_t out[GW_RDG_AUTH_RESPONSE_MAX];
	struct gw_rdg_tunnel_auth ta;
	int rc;

	if (t->state != GW_RDG_S_TUNNEL_AUTH)
		return rdg_out_of_order(t, GW_RDG_TUNNEL_AUTH);
	rc = gw_rdg_parse_tunnel_auth(b, n, &ta);
	if (rc < 0)
		return rdg_violation(t, GW_RDG_TUNNEL_AUTH, E_PROXY_INTERNALERROR,
				     "malformed TUNNEL_AUTH (%s)", strerror(-rc));
	memcpy(t->client_name, ta.client_name, sizeof(t->client_name));
	rc = rdg_send(t, out, gw_rdg_build_auth_response(out, 0, t->redir_flags, t->idle_minutes));
	if (rc < 0)
		return rc;
	t->state = GW_RDG_S_CHANNEL;
	return 0;
}

/* The refusal told by a message: the channel "opens", the client hears
 * why, and the channel closes; nothing was connected. */
static int rdg_refuse_with_message(struct gw_rdg_tun *t)
{
	uint8_t out[GW_RDG_SERVICE_MESSAGE_MAX];
	ssize_t m;
	int rc;

	rc = rdg_send(t, out, gw_rdg_build_channel_response(out, 0, 1));
	if (rc < 0)
		return rc;
	m = gw_rdg_build_service_message(out, t->refuse_message);
	if (m > 0 && (rc = rdg_send(t, out, (size_t)m)) < 0)
		return rc;
	rc = rdg_send(t, out, gw_rdg_build_close(out, t->refuse_status));
	if (rc < 0)
		return rc;
	t->state = GW_RDG_S_CLOSING;
	t->status = t->refuse_status;
	return 0;
}

static int rdg_channel_create(struct gw_rdg_tun *t, const uint8_t *b, size_t n)
{
	struct gw_rdg_channel_create cc;
	int rc;

	if (t->state != GW_RDG_S_CHANNEL)
		return rdg_out_of_order(t, GW_RDG_CHANNEL_CREATE);
	rc = gw_rdg_parse_channel_create(b, n, &cc);
	if (rc == -EPROTO)
		return rdg_violation(t, GW_RDG_CHANNEL_CREATE, E_PROXY_INTERNALERROR,
				     "malformed CHANNEL_CREATE");
	/* A name that is not a host name cannot be the ticket's backend. */
	if (rc < 0)
		return rdg_violation(t, GW_RDG_CHANNEL_CREATE, E_PROXY_RAP_ACCESSDENIED,
				     "CHANNEL_CREATE names no host (%s)", strerror(-rc));
	if (cc.protocol != GW_RDG_PROTOCOL_RDP || cc.port == 0 || !cc.host[0])
		return rdg_violation(t, GW_RDG_CHANNEL_CREATE, E_PROXY_RAP_ACCESSDENIED,
				     "CHANNEL_CREATE for protocol %u, port %u, host \"%s\"",
				     cc.protocol, cc.port, cc.host);
	if (t->refuse_status)
		return rdg_refuse_with_message(t);
	t->state = GW_RDG_S_OPENING;
	t->ops->open(t, cc.host, cc.port);
	return 0;
}

int gw_rdg_tun_opened(struct gw_rdg_tun *t, uint32_t status)
{
	uint8_t out[GW_RDG_CHANNEL_RESPONSE_MAX];
	int rc;

	if (t->state != GW_RDG_S_OPENING)
		return -EINVAL;
	if (status) {
		rc = rdg_send(t, out,
			      gw_rdg_build_channel_response(out, GW_RDG_HRESULT(status), 0));
		rdg_end(t, GW_RDG_HRESULT(status), "channel refused (%s)",
			gw_rdg_status_name(status));
		return rc;
	}
	rc = rdg_send(t, out, gw_rdg_build_channel_response(out, 0, 1));
	if (rc < 0)
		return rc;
	t->state = GW_RDG_S_OPEN;
	return 0;
}

static int rdg_close_channel(struct gw_rdg_tun *t, const uint8_t *b, size_t n)
{
	uint8_t out[GW_RDG_CLOSE_LEN];
	uint32_t status;
	int rc;

	if (t->state != GW_RDG_S_OPEN && t->state != GW_RDG_S_CLOSING)
		return rdg_out_of_order(t, GW_RDG_CLOSE_CHANNEL);
	gw_rdg_parse_close(b, n, &status); /* the size table made n 4 */
	rc = rdg_send(t, out, gw_rdg_build_close_response(out, 0));
	rdg_end(t, t->state == GW_RDG_S_CLOSING ? t->status : status, "closed by the client (%s)",
		gw_rdg_status_name(status));
	return rc;
}

static int rdg_packet(struct gw_rdg_tun *t, uint16_t type, const uint8_t *b, size_t n)
{
	switch (type) {
	case GW_RDG_HANDSHAKE_REQUEST:
		return rdg_handshake(t, b, n);
	case GW_RDG_TUNNEL_CREATE:
		return rdg_tunnel_create(t, b, n);
	case GW_RDG_TUNNEL_AUTH:
		return rdg_tunnel_auth(t, b, n);
	case GW_RDG_CHANNEL_CREATE:
		return rdg_channel_create(t, b, n);
	case GW_RDG_KEEPALIVE:
		/* Activity, not a question: answering it would start a
		 * ping-pong with a client that answers ours. */
		if (t->state == GW_RDG_S_HANDSHAKE)
			return rdg_out_of_order(t, type);
		return 0;
	case GW_RDG_CLOSE_CHANNEL:
		return rdg_close_channel(t, b, n);
	case GW_RDG_CLOSE_CHANNEL_RESPONSE:
		if (t->state != GW_RDG_S_CLOSING)
			return rdg_out_of_order(t, type);
		rdg_end(t, t->status, "closed (%s)", gw_rdg_status_name(t->status));
		return 0;
	default:
		return rdg_violation(t, type, E_PROXY_INTERNALERROR, "%s from a client",
				     rdg_type_name(type));
	}
}

static int rdg_data(struct gw_rdg_tun *t, const uint8_t *p, size_t n)
{
	int rc;

	if (t->state == GW_RDG_S_CLOSING)
		return 0; /* in flight when we closed, or a refused tunnel's */
	if (t->state != GW_RDG_S_OPEN)
		return rdg_out_of_order(t, GW_RDG_DATA);
	if (n == 0)
		return 0;
	t->bytes_in += n;
	rc = t->ops->data(t, p, n);
	if (rc < 0)
		rdg_end(t, E_PROXY_INTERNALERROR, "the backend took no data (%d)", rc);
	return rc < 0 ? rc : 0;
}

int gw_rdg_tun_feed(struct gw_rdg_tun *t, const uint8_t *p, size_t n)
{
	struct gw_rdg_item it;
	ssize_t k;
	int rc;

	if (t->state == GW_RDG_S_ENDED)
		return -EPIPE;
	while (n > 0) {
		k = gw_rdg_read(&t->rd, p, n, &it);
		if (k < 0)
			return rdg_violation(t, t->rd.type,
					     t->rd.type == GW_RDG_TUNNEL_CREATE
						     ? E_PROXY_COOKIE_BADPACKET
						     : E_PROXY_INTERNALERROR,
					     "%s", t->rd.why);
		p += k;
		n -= (size_t)k;
		if (it.kind == GW_RDG_ITEM_PACKET)
			rc = rdg_packet(t, it.type, it.p, it.n);
		else if (it.kind == GW_RDG_ITEM_DATA)
			rc = rdg_data(t, it.p, it.n);
		else
			rc = 0;
		if (rc < 0)
			return rc;
		if (t->state == GW_RDG_S_ENDED)
			return 0;
	}
	return 0;
}

int gw_rdg_tun_send_data(struct gw_rdg_tun *t, const uint8_t *p, size_t n)
{
	uint8_t hdr[GW_RDG_DATA_HDR_LEN];
	size_t k;
	int rc;

	if (t->state == GW_RDG_S_CLOSING)
		return 0;
	if (t->state != GW_RDG_S_OPEN)
		return -ENOTCONN;
	while (n > 0) {
		k = rdg_min(n, GW_RDG_DATA_MAX);
		gw_rdg_data_header(hdr, k);
		if ((rc = rdg_send(t, hdr, sizeof(hdr))) < 0 || (rc = rdg_send(t, p, k)) < 0)
			return rc;
		t->bytes_out += k;
		p += k;
		n -= k;
	}
	return 0;
}

int gw_rdg_tun_keepalive(struct gw_rdg_tun *t)
{
	uint8_t out[GW_RDG_KEEPALIVE_LEN];

	if (t->state == GW_RDG_S_HANDSHAKE || t->state == GW_RDG_S_ENDED)
		return -ENOTCONN;
	return rdg_send(t, out, gw_rdg_build_keepalive(out));
}

int gw_rdg_tun_close(struct gw_rdg_tun *t, uint32_t status)
{
	uint8_t out[GW_RDG_CLOSE_LEN];
	uint32_t err = GW_RDG_HRESULT(status ? status : E_PROXY_INTERNALERROR);
	int rc = 0;

	switch (t->state) {
	case GW_RDG_S_OPEN:
		rc = rdg_send(t, out, gw_rdg_build_close(out, status ? GW_RDG_HRESULT(status) : 0));
		if (rc < 0)
			return rc;
		t->state = GW_RDG_S_CLOSING;
		t->status = status ? GW_RDG_HRESULT(status) : 0;
		return 0;
	case GW_RDG_S_AUTHENTICATE:
		rc = rdg_answer_error(t, GW_RDG_TUNNEL_RESPONSE, err);
		break;
	case GW_RDG_S_OPENING:
		rc = rdg_answer_error(t, GW_RDG_CHANNEL_RESPONSE, err);
		break;
	case GW_RDG_S_ENDED:
		return 0;
	default:
		break;
	}
	rdg_end(t, status ? GW_RDG_HRESULT(status) : t->status, "closed by the gateway (%s)",
		gw_rdg_status_name(status));
	return rc;
}
