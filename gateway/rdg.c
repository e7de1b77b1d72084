/*
 * rdg.c - the RD Gateway's HTTP layer on the HTTPS front
 * (/remoteDesktopGateway/): MS-TSGU's two HTTP transports, as FreeRDP 2.11
 * and mstsc speak them (docs/rdg.md), made into a tunnel (rdg_tunnel.c):
 *  - WebSocket: one connection, RDG_OUT_DATA with an Upgrade; the packets
 *    travel in binary frames both ways (lib/ws_*.c);
 *  - legacy HTTP: RDG_OUT_DATA answered 200 and 10 bytes of seed, then the
 *    packets for the client, never an end; the client's packets come on a
 *    second connection, an RDG_IN_DATA request with a chunked body that
 *    never ends (or a Content-Length as long as the tunnel, mstsc's way),
 *    paired with the first by its RDG-Connection-Id and its source.
 *
 * A client with no token (NTLM: xfreerdp without /gat:, mstsc without
 * gatewayaccesstoken) is let through this layer with a challenge that
 * verifies nothing, so that the tunnel can tell it, in words its user
 * reads, to take the .rdp file from the portal; it never reaches a
 * channel.
 */
#include <errno.h>
#include <http_parser.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway.h"
#include "portico/log.h"
#include "portico/ws.h"

#define CHUNK_MAX (1u << 20) /* one chunk of the IN body (one packet, at most 65545) */
#define SEED_LEN  10	     /* what FreeRDP reads after the OUT answer (docs/rdg.md) */

/* The IN body's chunked coding, taken off by hand because the body never
 * ends (http-parser would hold the request open for ever, and a request
 * in our reader is complete at its headers, rdg mode).  A chunk is one
 * packet, at most CHUNK_MAX; extensions are skipped. */
enum { C_SIZE, C_EXT, C_SIZE_LF, C_DATA, C_DATA_CR, C_DATA_LF, C_END };

int gw_unchunk(struct gw_unchunk *r, const char *p, size_t n,
	       int (*out)(void *arg, const char *p, size_t n), void *arg)
{
	while (n) {
		int ch = (unsigned char)*p, v;
		switch (r->state) {
		case C_SIZE:
			if ((v = pt_http_hexval(ch)) >= 0) {
				if (++r->len > 8)
					return -EPROTO;
				r->left = r->left * 16 + (uint64_t)v;
				break;
			}
			if (!r->len || (ch != '\r' && ch != ';'))
				return -EPROTO;
			if (r->left > CHUNK_MAX)
				return -EPROTO;
			r->state = ch == '\r' ? C_SIZE_LF : C_EXT;
			break;
		case C_EXT:
			if (ch == '\r')
				r->state = C_SIZE_LF;
			else if (++r->len > 256)
				return -EPROTO;
			break;
		case C_SIZE_LF:
			if (ch != '\n')
				return -EPROTO;
			r->len = 0;
			if (r->left == 0) {
				r->state = C_END;
				return 1;
			}
			r->state = C_DATA;
			break;
		case C_DATA: {
			size_t k = n < r->left ? n : (size_t)r->left;
			int rc = out(arg, p, k);
			if (rc < 0)
				return rc;
			r->left -= k;
			p += k;
			n -= k;
			if (!r->left)
				r->state = C_DATA_CR;
			continue;
		}
		case C_DATA_CR:
			if (ch != '\r')
				return -EPROTO;
			r->state = C_DATA_LF;
			break;
		case C_DATA_LF:
			if (ch != '\n')
				return -EPROTO;
			r->state = C_SIZE;
			break;
		case C_END:
			return 1;
		}
		p++;
		n--;
	}
	return 0;
}

/* An NTLM CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2) for a client without a
 * token: nothing of its answer is checked (the tunnel will not open for
 * it); its only use is to bring the client to where it can be told what
 * to do.  base64 into out. */
static int ntlm_challenge(char *out, size_t len)
{
	static const char name[] = "P\0O\0R\0T\0I\0C\0O\0";
	uint8_t m[256], *p = m, info[128], *q = info;
	uint64_t ft = ((uint64_t)time(NULL) + 11644473600ull) * 10000000ull;
	const uint32_t flags = 0x1 | 0x4 | 0x200 | 0x8000 | 0x10000 | 0x80000 | 0x800000 |
			       0x2000000 | 0x20000000 | 0x40000000 | 0x80000000u;
	const uint16_t nl = sizeof(name) - 1;
	uint16_t il;

#define PUT16(x, v) ((x)[0] = (uint8_t)(v), (x)[1] = (uint8_t)((v) >> 8), (x) += 2)
#define PUT32(x, v) (PUT16(x, (v)&0xffff), PUT16(x, (v) >> 16))
	/* AV pairs: NetBIOS domain and computer names, a timestamp, the end. */
	PUT16(q, 2), PUT16(q, nl), memcpy(q, name, nl), q += nl;
	PUT16(q, 1), PUT16(q, nl), memcpy(q, name, nl), q += nl;
	PUT16(q, 7), PUT16(q, 8), PUT32(q, (uint32_t)ft), PUT32(q, (uint32_t)(ft >> 32));
	PUT16(q, 0), PUT16(q, 0);
	il = (uint16_t)(q - info);
	memcpy(p, "NTLMSSP\0", 8), p += 8;
	PUT32(p, 2);
	PUT16(p, nl), PUT16(p, nl), PUT32(p, 56);
	PUT32(p, flags);
	if (RAND_bytes(p, 8) != 1)
		return -1;
	p += 8;
	memset(p, 0, 8), p += 8;
	PUT16(p, il), PUT16(p, il), PUT32(p, 56 + nl);
	memcpy(p, "\x0a\x00\x63\x45\x00\x00\x00\x0f", 8), p += 8; /* version 10.0.17763 */
	memcpy(p, name, nl), p += nl;
	memcpy(p, info, il), p += il;
#undef PUT32
#undef PUT16
	if (len < 4 * (((size_t)(p - m) + 2) / 3) + 1)
		return -1;
	EVP_EncodeBlock((unsigned char *)out, m, (int)(p - m));
	return 0;
}

/* The NTLM message type in "Authorization: NTLM <base64>", or 0. */
static int ntlm_type(const struct pt_http_req *r)
{
	const char *a = r->authorization;
	unsigned char raw[16];

	if (strncasecmp(a, "NTLM ", 5) || strlen(a + 5) < 16)
		return 0;
	if (EVP_DecodeBlock(raw, (const unsigned char *)a + 5, 16) != 12 ||
	    memcmp(raw, "NTLMSSP", 8))
		return 0;
	return raw[8];
}

static void ws_tunnel_as(struct gw_https *h, int no_token)
{
	struct pt_stream *ws = gw_https_take_ws(h);
	struct rdg *r;

	if (ws && (r = gw_rdg_tunnel_new(h, ws, 1)))
		gw_rdg_tunnel_start(r, no_token);
}

static void ws_tunnel(struct gw_https *h)
{
	ws_tunnel_as(h, 0);
}

static void ws_tunnel_no_token(struct gw_https *h)
{
	ws_tunnel_as(h, 1);
}

/* RDG_OUT_DATA answered: the tunnel's output goes on this connection. */
static void legacy_out(struct gw_https *h, const char *id, int no_token)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\n\r\n";
	uint8_t first[sizeof(ok) - 1 + SEED_LEN];
	struct pt_stream *tls;
	struct rdg *r;

	if (h->in_len) {
		h->close_after = 1;
		gw_https_text(h, 400, "RDG_OUT_DATA carries no body\n", NULL);
		return;
	}
	/* 200, then the seed MS-TSGU 3.3.5.1 asks for (FreeRDP reads 10). */
	memcpy(first, ok, sizeof(ok) - 1);
	RAND_bytes(first + sizeof(ok) - 1, SEED_LEN);
	tls = gw_conn_take_client(&h->c);
	if (tls && (r = gw_rdg_tunnel_new(h, tls, 0)))
		gw_rdg_tunnel_wait(r, id, no_token, first, sizeof(first));
}

/* RDG_IN_DATA with the tunnel's body: its connection joins the tunnel. */
static void legacy_in(struct gw_https *h, struct rdg *r, int chunked)
{
	struct pt_stream *tls = gw_conn_take_client(&h->c);
	char *pre = h->in;
	size_t pre_len = h->in_len;

	h->in = NULL;
	h->in_len = 0;
	gw_conn_close(&h->c, NULL);
	if (tls)
		gw_rdg_tunnel_join(r, tls, chunked, pre, pre_len);
	free(pre);
}

void gw_https_rdg(struct gw_https *h)
{
	struct pt_http_req *r = h->req;
	const char *id = pt_http_header(r, "rdg-connection-id");
	const char *key = pt_http_header(r, "sec-websocket-key");
	const char *scheme = pt_http_header(r, "rdg-auth-scheme");
	const char *te = pt_http_header(r, "transfer-encoding");
	const char *cl = pt_http_header(r, "content-length");
	char accept[29], extra[1024], chal[700];
	struct rdg *t;
	int nt = ntlm_type(r);

	pt_log(PT_LOG_DEBUG, h->c.id, "rdg %s: %s %s (connection %s, auth %s%s, %s)", h->c.peer,
	       r->rdg == PT_HTTP_RDG_IN ? "RDG_IN_DATA"
	       : r->rdg			? "RDG_OUT_DATA"
					: "GET",
	       r->path, id ? id : "-", scheme ? scheme : "-", nt ? " NTLM" : "",
	       te   ? te
	       : cl ? cl
		    : "no body");

	if (!r->rdg || strcmp(r->path, "/remoteDesktopGateway/")) {
		h->close_after = 1;
		gw_https_text(h, 404,
			      "RD Gateway clients use RDG_OUT_DATA and RDG_IN_DATA on "
			      "/remoteDesktopGateway/\n",
			      NULL);
		return;
	}
	if (!id || !*id || strlen(id) >= GW_RDG_CONN_ID_MAX ||
	    strspn(id, "{}-0123456789abcdefABCDEF") != strlen(id)) {
		h->close_after = 1;
		gw_https_text(h, 400, "RDG-Connection-Id is missing or malformed\n", NULL);
		return;
	}
	/* No token: NTLM's first message gets a challenge that verifies nothing
	 * (see the top of this file); its last goes on like a token's, to be
	 * told in the tunnel. */
	if (nt == 1) {
		if (ntlm_challenge(chal, sizeof(chal))) {
			h->close_after = 1;
			gw_https_text(h, 503, "out of memory\n", NULL);
			return;
		}
		snprintf(extra, sizeof(extra), "WWW-Authenticate: NTLM %s\r\n", chal);
		gw_https_text(h, 401, "", extra);
		return;
	}
	if (!(scheme && !strcasecmp(scheme, "PAA")) && nt != 3) {
		pt_log(PT_LOG_INFO, h->c.id, "rdg %s: no token and no NTLM: refused", h->c.peer);
		h->close_after = 1;
		gw_https_text(h, 401, GW_RDG_NO_TOKEN_MESSAGE "\n", NULL);
		return;
	}
	if (r->rdg == PT_HTTP_RDG_OUT && gw_https_is_upgrade(r)) {
		/* FreeRDP's key is 15 characters, not RFC 6455's 24 (docs/rdg.md). */
		if (!key || pt_ws_accept_token(key, accept)) {
			h->close_after = 1;
			gw_https_text(h, 400, "a WebSocket handshake is expected\n", NULL);
			return;
		}
		gw_https_switch(h, accept, nt == 3 ? ws_tunnel_no_token : ws_tunnel);
		return;
	}
	if (r->rdg == PT_HTTP_RDG_OUT) {
		legacy_out(h, id, nt == 3);
		return;
	}
	/* RDG_IN_DATA: its OUT connection must be waiting, from the same source. */
	if (!(t = gw_rdg_tunnel_waiting(h->c.g, id, h->c.source))) {
		pt_log(PT_LOG_INFO, h->c.id, "rdg %s: RDG_IN_DATA for no tunnel waiting: refused",
		       h->c.peer);
		h->close_after = 1;
		gw_https_text(h, 404,
			      "no RDG_OUT_DATA connection waits for this RDG-Connection-Id\n",
			      NULL);
		return;
	}
	if (te && !strcasecmp(te, "chunked")) {
		legacy_in(h, t, 1);
		return;
	}
	if (cl && strspn(cl, "0123456789") == strlen(cl) && strtoull(cl, NULL, 10) > 0) {
		legacy_in(h, t, 0); /* mstsc: a Content-Length as long as the tunnel */
		return;
	}
	/* FreeRDP's first RDG_IN_DATA: answered; its chunked one follows. */
	gw_https_text(h, 200, "", NULL);
}
