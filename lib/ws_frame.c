/*
 * ws_frame.c - WebSocket (RFC 6455) handshake key and frame codec, see
 * include/portico/ws.h.  Written by hand: no WebSocket library is among the
 * Debian packages Portico builds with; SHA-1, base64 and randomness come
 * from OpenSSL.
 *
 * The reader never allocates and never waits for a whole frame: payload is
 * handed on as it arrives, so a frame that claims 2^62 bytes costs what its
 * bytes cost, no more.  Each rule is checked at the first byte that can
 * break it, so a peer is refused as early as the bytes allow.
 */
#include "portico/ws.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* --- handshake ------------------------------------------------------------ */

static int is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* base64(SHA-1(key + GUID)) of a key already checked. */
static int accept_of(const char *key, size_t n, char out[29])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char buf[PT_WS_TOKEN_KEY_MAX + sizeof(ws_guid)];
	unsigned int mdlen = 0;

	memcpy(buf, key, n);
	memcpy(buf + n, ws_guid, sizeof(ws_guid) - 1);
	if (EVP_Digest(buf, n + sizeof(ws_guid) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 ||
	    mdlen != 20)
		return -EIO;
	EVP_EncodeBlock((unsigned char *)out, md, 20);
	return 0;
}

int pt_ws_accept(const char *key, char out[29])
{
	unsigned char raw[18];

	if (!key || strnlen(key, 25) != 24 || key[22] != '=' || key[23] != '=')
		return -EINVAL;
	for (int i = 0; i < 22; i++)
		if (!is_b64(key[i]))
			return -EINVAL;
	/* 22 characters and "==" are 16 bytes; EVP_DecodeBlock counts the two
	 * of padding too. */
	if (EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
		return -EINVAL;
	return accept_of(key, 24, out);
}

int pt_ws_accept_token(const char *key, char out[29])
{
	size_t n = key ? strnlen(key, PT_WS_TOKEN_KEY_MAX + 1) : 0;

	if (n == 0 || n > PT_WS_TOKEN_KEY_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (key[i] <= ' ' || key[i] > '~')
			return -EINVAL;
	return accept_of(key, n, out);
}

int pt_ws_make_key(char out[25])
{
	unsigned char raw[16];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -EIO;
	EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
	return 0;
}

int pt_ws_accept_matches(const char *key, const char *accept)
{
	char want[29];

	return accept && pt_ws_accept(key, want) == 0 && strcmp(want, accept) == 0;
}

/* --- close frames ----------------------------------------------------------- */

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing past U+10FFFF. */
static int utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t more;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			more = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			more = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			more = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n - i <= more)
			return 0;
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += more + 1;
	}
	return 1;
}

/* Codes an endpoint may put in a close frame: the RFC's and IANA's
 * (1012-1014 were registered after it), and the ranges for libraries and
 * applications.  1005, 1006 and 1015 only ever describe a closure. */
static int close_code_sendable(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

int pt_ws_close_payload(uint8_t out[PT_WS_CONTROL_MAX], uint16_t code, const char *reason)
{
	size_t n = reason ? strnlen(reason, PT_WS_REASON_MAX + 1) : 0;

	if (!close_code_sendable(code) || n > PT_WS_REASON_MAX ||
	    !utf8_valid((const uint8_t *)reason, n))
		return -EINVAL;
	out[0] = code >> 8;
	out[1] = code & 0xff;
	if (n)
		memcpy(out + 2, reason, n);
	return (int)(2 + n);
}

/* --- frames ------------------------------------------------------------------ */

static int opcode_known(int op)
{
	return op == PT_WS_OP_CONT || op == PT_WS_OP_TEXT || op == PT_WS_OP_BINARY ||
	       op == PT_WS_OP_CLOSE || op == PT_WS_OP_PING || op == PT_WS_OP_PONG;
}

int pt_ws_frame_header(uint8_t hdr[14], int opcode, int fin, uint64_t len, const uint8_t *mask)
{
	uint8_t m = mask ? 0x80 : 0;
	int n;

	if (!opcode_known(opcode) || len >> 63)
		return -EINVAL;
	if ((opcode & 0x8) && (!fin || len > PT_WS_CONTROL_MAX))
		return -EINVAL;
	hdr[0] = (fin ? 0x80 : 0) | opcode;
	if (len < 126) {
		hdr[1] = m | (uint8_t)len;
		n = 2;
	} else if (len <= 0xffff) {
		hdr[1] = m | 126;
		hdr[2] = len >> 8;
		hdr[3] = len & 0xff;
		n = 4;
	} else {
		hdr[1] = m | 127;
		for (int i = 0; i < 8; i++)
			hdr[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		memcpy(hdr + n, mask, 4);
		n += 4;
	}
	return n;
}

void pt_ws_mask(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4], uint64_t pos)
{
	uint8_t m[8];
	uint64_t m64, v;
	size_t i = 0;

	for (int k = 0; k < 8; k++)
		m[k] = mask[(pos + k) & 3];
	memcpy(&m64, m, 8);
	/* Eight bytes at a time; dst at or before src reads each word before
	 * anything is written over it. */
	for (; i + 8 <= len; i += 8) {
		memcpy(&v, src + i, 8);
		v ^= m64;
		memcpy(dst + i, &v, 8);
	}
	for (; i < len; i++)
		dst[i] = src[i] ^ m[i & 7];
}

/* --- reader -------------------------------------------------------------- */

void pt_ws_reader_init(struct pt_ws_reader *r, int server)
{
	memset(r, 0, sizeof(*r));
	r->server = server ? 1 : 0;
	r->hneed = 2;
}

int pt_ws_reader_idle(const struct pt_ws_reader *r)
{
	return r->hlen == 0 && r->msg_opcode == 0;
}

static ssize_t refuse(struct pt_ws_reader *r, int err, uint16_t code, const char *why)
{
	r->err = err;
	r->close_code = code;
	r->why = why;
	return err;
}

/* The first byte: FIN, RSV, opcode. */
static ssize_t check_byte0(struct pt_ws_reader *r, uint8_t b)
{
	int op = b & 0x0f, fin = b >> 7;

	if (b & 0x70)
		return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL,
			      "RSV bit set (no extension was negotiated)");
	if (!opcode_known(op))
		return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL, "unknown opcode");
	if ((op & 0x8) && !fin)
		return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL, "fragmented control frame");
	if (op == PT_WS_OP_CONT && !r->msg_opcode)
		return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL,
			      "continuation frame with no message open");
	if ((op == PT_WS_OP_TEXT || op == PT_WS_OP_BINARY) && r->msg_opcode)
		return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL,
			      "new message before the fragmented one ended");
	if (op == PT_WS_OP_TEXT && r->binary_only)
		return refuse(r, -ENOTSUP, PT_WS_CLOSE_UNSUPPORTED,
			      "text message where only binary is accepted");
	r->opcode = op;
	r->fin = fin;
	return 0;
}

/* The second byte: MASK and the 7-bit length. */
static ssize_t check_byte1(struct pt_ws_reader *r, uint8_t b)
{
	int masked = b >> 7, len7 = b & 0x7f;

	if (r->server && !masked)
		return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL, "unmasked frame from a client");
	if (!r->server && masked)
		return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL, "masked frame from a server");
	/* A control frame has 125 bytes at most, so only the 7-bit length. */
	if ((r->opcode & 0x8) && len7 > PT_WS_CONTROL_MAX)
		return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL,
			      "control frame longer than 125 bytes");
	r->masked = masked;
	r->hneed = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0);
	return 0;
}

/* Where the length ends: after byte 2, 4 or 10. */
static int length_end(const struct pt_ws_reader *r)
{
	int len7 = r->hdr[1] & 0x7f;

	return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
}

/* The length is in (the masking key may follow). */
static ssize_t check_length(struct pt_ws_reader *r)
{
	int len7 = r->hdr[1] & 0x7f;
	uint64_t len = len7;

	if (len7 == 126) {
		len = (uint64_t)r->hdr[2] << 8 | r->hdr[3];
	} else if (len7 == 127) {
		len = 0;
		for (int i = 0; i < 8; i++)
			len = len << 8 | r->hdr[2 + i];
	}
	if (!(r->opcode & 0x8) && r->max_frame && len > r->max_frame)
		return refuse(r, -EMSGSIZE, PT_WS_CLOSE_TOO_BIG,
			      "data frame longer than the limit");
	r->left = len;
	return 0;
}

/* The whole header is in. */
static void begin_payload(struct pt_ws_reader *r)
{
	if (r->masked)
		memcpy(r->mask, r->hdr + length_end(r), 4);
	if (r->opcode == PT_WS_OP_TEXT || r->opcode == PT_WS_OP_BINARY)
		r->msg_opcode = r->opcode;
	r->pos = 0;
	r->ctl_len = 0;
}

static void end_frame(struct pt_ws_reader *r)
{
	if (!(r->opcode & 0x8) && r->fin)
		r->msg_opcode = 0;
	r->hlen = 0;
	r->hneed = 2;
}

/* A whole control frame is in r->ctl. */
static ssize_t control_event(struct pt_ws_reader *r, struct pt_ws_event *ev)
{
	ev->data = r->ctl;
	ev->len = r->ctl_len;
	if (r->opcode == PT_WS_OP_PING) {
		ev->type = PT_WS_EV_PING;
		return 0;
	}
	if (r->opcode == PT_WS_OP_PONG) {
		ev->type = PT_WS_EV_PONG;
		return 0;
	}
	ev->code = PT_WS_CLOSE_NO_STATUS;
	if (r->ctl_len == 1)
		return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL,
			      "close frame with a 1-byte payload");
	if (r->ctl_len >= 2) {
		ev->code = (uint16_t)(r->ctl[0] << 8 | r->ctl[1]);
		if (!close_code_sendable(ev->code))
			return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL,
				      "close code no endpoint may send");
		if (!utf8_valid(r->ctl + 2, r->ctl_len - 2u))
			return refuse(r, -EILSEQ, PT_WS_CLOSE_BAD_DATA,
				      "close reason that is not UTF-8");
		ev->data = r->ctl + 2;
		ev->len = r->ctl_len - 2u;
	}
	ev->type = PT_WS_EV_CLOSE;
	r->closed = 1;
	return 0;
}

/* One step: header bytes, then what is there of the payload. */
static ssize_t read_step(struct pt_ws_reader *r, uint8_t *buf, size_t len, uint8_t *dst,
			 struct pt_ws_event *ev)
{
	size_t off = 0, k;
	ssize_t rc;

	if (r->hlen < r->hneed) {
		while (r->hlen < r->hneed && off < len) {
			uint8_t b = buf[off++];
			r->hdr[r->hlen++] = b;
			if (r->hlen == 1 && (rc = check_byte0(r, b)) < 0)
				return rc;
			if (r->hlen == 2 && (rc = check_byte1(r, b)) < 0)
				return rc;
			if (r->hlen == 3 && (r->hdr[1] & 0x7f) == 127 && (b & 0x80))
				return refuse(r, -EPROTO, PT_WS_CLOSE_PROTOCOL,
					      "64-bit length with its top bit set");
			if (r->hlen >= 2 && r->hlen == length_end(r) && (rc = check_length(r)) < 0)
				return rc;
		}
		if (r->hlen < r->hneed)
			return (ssize_t)off;
		begin_payload(r);
	}
	k = len - off < r->left ? len - off : (size_t)r->left;
	if (r->opcode & 0x8) {
		if (r->masked)
			pt_ws_mask(r->ctl + r->ctl_len, buf + off, k, r->mask, r->pos);
		else
			memcpy(r->ctl + r->ctl_len, buf + off, k);
		r->ctl_len += k;
		r->pos += k;
		r->left -= k;
		off += k;
		if (r->left > 0)
			return (ssize_t)off;
		end_frame(r);
		if ((rc = control_event(r, ev)) < 0)
			return rc;
		return (ssize_t)off;
	}
	if (!dst)
		dst = buf + off;
	if (r->masked)
		pt_ws_mask(dst, buf + off, k, r->mask, r->pos);
	else if (dst != buf + off)
		memmove(dst, buf + off, k);
	r->pos += k;
	r->left -= k;
	off += k;
	if (k > 0 || (r->left == 0 && r->fin)) {
		ev->type = PT_WS_EV_DATA;
		ev->opcode = r->msg_opcode;
		ev->data = dst;
		ev->len = k;
		ev->end = r->left == 0 && r->fin;
	}
	if (r->left == 0)
		end_frame(r);
	return (ssize_t)off;
}

ssize_t pt_ws_read(struct pt_ws_reader *r, uint8_t *buf, size_t len, uint8_t *dst,
		   struct pt_ws_event *ev)
{
	size_t off = 0;
	ssize_t k;

	memset(ev, 0, sizeof(*ev));
	if (r->err)
		return r->err;
	/* Frames that yield nothing (empty fragments) do not end the call. */
	do {
		if (r->closed)
			return (ssize_t)len;
		k = read_step(r, buf + off, len - off, dst, ev);
		if (k < 0)
			return k;
		off += (size_t)k;
	} while (ev->type == PT_WS_EV_NONE && off < len);
	return (ssize_t)off;
}
