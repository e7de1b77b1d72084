/*
 * x224.h - the first message of an RDP connection: the X.224 Connection
 * Request inside a TPKT (MS-RDPBCGR 2.2.1.1), and the refusal the gateway
 * answers it with.
 *
 *   TPKT    03 00 LL LL                       (LL: whole length, big endian)
 *   X.224   LI E0 00 00 00 00 00              (LI: length of what follows LI)
 *   then    "Cookie: msts=<token>\r\n"        (a routing token: our ticket)
 *        or "Cookie: mstshash=<name>\r\n"     (a cookie: the user's name)
 *   then    RDP_NEG_REQ  01 FF 08 00 PP PP PP PP   (optional)
 *   then    RDP_NEG_CORRELATION_INFO (36 bytes, type 06; optional)
 */
#ifndef PORTICO_X224_H
#define PORTICO_X224_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PT_X224_TOKEN_MAX 255 /* longest routing token or cookie kept */

struct pt_x224_cr {
	char token[PT_X224_TOKEN_MAX + 1];  /* after "Cookie: msts=", or "" */
	char cookie[PT_X224_TOKEN_MAX + 1]; /* after "Cookie: mstshash=", or "" */
	int has_neg;			    /* an RDP_NEG_REQ follows */
	uint8_t neg_flags;
	uint32_t protocols; /* requestedProtocols (PROTOCOL_SSL 1, HYBRID 2, ...) */
	size_t tail_off;    /* where RDP_NEG_REQ (and what follows) starts */
	size_t len;	    /* the whole request (the TPKT length) */
};

/* Parse the Connection Request at the start of buf.  Returns its length
 * (> 0) with *cr filled, 0 when buf holds only part of it (read more; never
 * more than 64 KiB), or -EPROTO when it is not one: another TPKT version,
 * a length that lies, a TPDU that is not CR, a cookie line without CRLF or
 * longer than PT_X224_TOKEN_MAX, a malformed RDP_NEG_REQ. */
ssize_t pt_x224_parse_cr(const uint8_t *buf, size_t len, struct pt_x224_cr *cr);

/* The same request with its routing token replaced by the cookie
 * "Cookie: mstshash=<name>\r\n" (no cookie when name is NULL or ""), and
 * what followed it unchanged: what the gateway forwards to the backend.
 * Returns the length written, or -ENOSPC. */
ssize_t pt_x224_rewrite_cr(const uint8_t *orig, const struct pt_x224_cr *cr, const char *name,
			   uint8_t *out, size_t outlen);

/* RDP_NEG_FAILURE codes (MS-RDPBCGR 2.2.1.2.2). */
#define PT_X224_SSL_REQUIRED_BY_SERVER	  0x00000001
#define PT_X224_SSL_NOT_ALLOWED_BY_SERVER 0x00000002
#define PT_X224_INCONSISTENT_FLAGS	  0x00000004
#define PT_X224_HYBRID_REQUIRED_BY_SERVER 0x00000005

/* A Connection Confirm carrying RDP_NEG_FAILURE with `code`: how the
 * gateway refuses (the client reports a negotiation failure).  19 bytes. */
#define PT_X224_FAILURE_LEN 19
void pt_x224_neg_failure(uint32_t code, uint8_t out[PT_X224_FAILURE_LEN]);

#endif
