/* x224.c - see include/portico/x224.h.  Written by hand: FreeRDP parses
 * this message only inside its own server, and the passthrough path must
 * read it without terminating the client's TLS. */
#include "portico/x224.h"

#include <errno.h>
#include <string.h>

#define TPKT_HEADER 4
#define X224_FIXED  7 /* LI, code, DST-REF, SRC-REF, class */

/* "Cookie: <key>" then the value up to CRLF, at p[0..n). */
static int cookie(const uint8_t *p, size_t n, const char *key, char *out, size_t *used)
{
	size_t k = strlen(key);

	if (n < k || memcmp(p, key, k))
		return 0;
	for (size_t i = k; i + 1 < n; i++) {
		if (p[i] == '\r' && p[i + 1] == '\n') {
			size_t v = i - k;
			if (v > PT_X224_TOKEN_MAX)
				return -1;
			for (size_t j = k; j < i; j++)
				if (p[j] < 0x20 || p[j] == 0x7f)
					return -1;
			memcpy(out, p + k, v);
			out[v] = '\0';
			*used = i + 2;
			return 1;
		}
	}
	return -1; /* no CRLF before the end of the TPDU */
}

ssize_t pt_x224_parse_cr(const uint8_t *buf, size_t len, struct pt_x224_cr *cr)
{
	size_t total, li, off, used = 0;
	int rc;

	memset(cr, 0, sizeof(*cr));
	if (len >= 1 && buf[0] != 3)
		return -EPROTO;
	if (len < TPKT_HEADER)
		return 0;
	total = (size_t)buf[2] << 8 | buf[3];
	if (buf[1] != 0 || total < TPKT_HEADER + X224_FIXED)
		return -EPROTO;
	if (len < TPKT_HEADER + 1)
		return 0;
	li = buf[4];
	/* LI counts the TPDU header after itself: all of the request. */
	if (li + 1 != total - TPKT_HEADER || li < X224_FIXED - 1)
		return -EPROTO;
	if (len < total)
		return 0;
	if ((buf[5] & 0xf0) != 0xe0) /* CR */
		return -EPROTO;
	off = TPKT_HEADER + X224_FIXED;
	rc = cookie(buf + off, total - off, "Cookie: msts=", cr->token, &used);
	if (rc == 0)
		rc = cookie(buf + off, total - off, "Cookie: mstshash=", cr->cookie, &used);
	if (rc < 0)
		return -EPROTO;
	off += used;
	cr->tail_off = off;
	if (off < total) {
		/* RDP_NEG_REQ: type 1, flags, length 8 (little endian). */
		if (total - off < 8 || buf[off] != 0x01 || buf[off + 2] != 8 || buf[off + 3] != 0)
			return -EPROTO;
		cr->has_neg = 1;
		cr->neg_flags = buf[off + 1];
		cr->protocols = (uint32_t)buf[off + 4] | (uint32_t)buf[off + 5] << 8 |
				(uint32_t)buf[off + 6] << 16 | (uint32_t)buf[off + 7] << 24;
		off += 8;
		/* RDP_NEG_CORRELATION_INFO: type 6, length 36. */
		if (off < total && (total - off != 36 || buf[off] != 0x06 || buf[off + 2] != 36))
			return -EPROTO;
	}
	cr->len = total;
	return (ssize_t)total;
}

ssize_t pt_x224_rewrite_cr(const uint8_t *orig, const struct pt_x224_cr *cr, const char *name,
			   uint8_t *out, size_t outlen)
{
	size_t tail = cr->len - cr->tail_off, c = 0, total;
	static const char pre[] = "Cookie: mstshash=";

	if (name && *name)
		c = sizeof(pre) - 1 + strlen(name) + 2;
	total = TPKT_HEADER + X224_FIXED + c + tail;
	if (total > outlen || total > 0xffff)
		return -ENOSPC;
	memcpy(out, orig, TPKT_HEADER + X224_FIXED);
	out[2] = (uint8_t)(total >> 8);
	out[3] = (uint8_t)total;
	out[4] = (uint8_t)(total - TPKT_HEADER - 1);
	if (c) {
		memcpy(out + TPKT_HEADER + X224_FIXED, pre, sizeof(pre) - 1);
		memcpy(out + TPKT_HEADER + X224_FIXED + sizeof(pre) - 1, name, strlen(name));
		memcpy(out + TPKT_HEADER + X224_FIXED + c - 2, "\r\n", 2);
	}
	memcpy(out + TPKT_HEADER + X224_FIXED + c, orig + cr->tail_off, tail);
	return (ssize_t)total;
}

void pt_x224_neg_failure(uint32_t code, uint8_t out[PT_X224_FAILURE_LEN])
{
	static const uint8_t head[] = { 0x03, 0x00, 0x00, 19,	  /* TPKT */
					14,   0xd0, 0x00, 0x00,	  /* LI, CC, DST-REF */
					0x12, 0x34, 0x00,	  /* SRC-REF, class */
					0x03, 0x00, 0x08, 0x00 }; /* RDP_NEG_FAILURE, len 8 */

	memcpy(out, head, sizeof(head));
	out[15] = (uint8_t)code;
	out[16] = (uint8_t)(code >> 8);
	out[17] = (uint8_t)(code >> 16);
	out[18] = (uint8_t)(code >> 24);
}
