/*
 * fuzz_rdg - libFuzzer target for the RD Gateway core (gateway/rdg_proto.c):
 * the packet reader and the server's state machine, fed what a client
 * sends inside the tunnel (the RDG_IN_DATA body without its chunked coding,
 * or the payloads of WebSocket frames), with a glue that answers the
 * cookie and the channel as the input's first byte says.
 *
 *   make fuzz
 *   build-fuzz/fuzz/fuzz_rdg -runs=1000000 tests/fuzz/corpus/fuzz_rdg
 *
 * Input: byte 0 chooses the glue's answers (bits 0-1: cookie accepted,
 * refused, refused with a message, or answered only after the feed; bit 2:
 * channel refused; bit 3: the backend sends data and the gateway closes
 * after the feed); byte 1 the size of the pieces the rest is cut into.
 * Whatever the bytes, and besides no crash, leak or undefined behaviour:
 *  - what the client is sent reads back as whole server packets (the
 *    reader takes all of it, types a server sends, nothing left half);
 *  - the glue is asked about the cookie at most once, and about a channel
 *    at most once, only after accepting the cookie, never for a tunnel
 *    refused (with or without a message); no payload reaches the backend
 *    unless the channel was opened, and what reaches it is counted;
 *  - once ended the tunnel takes nothing more (-EPIPE);
 *  - the bytes fed whole and fed in pieces give the same bytes to the
 *    client, the same questions, the same payload and the same end
 *    (when the glue answers at once: an answer given between reads makes
 *    a request sent ahead of it out of order, as it should).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What one run saw. */
struct run {
	struct gw_rdg_tun t;
	int mode;
	uint8_t *out;
	size_t outlen, outcap;
	uint8_t *payload;
	size_t paylen, paycap;
	int auths, opens, auth_answer;
	uint32_t auth_status;
	char cookie[GW_RDG_COOKIE_MAX + 1];
	char host[GW_RDG_HOST_MAX + 1];
	uint16_t port;
};

static void append(uint8_t **b, size_t *len, size_t *cap, const uint8_t *p, size_t n)
{
	if (*len + n > *cap) {
		*cap = (*len + n) * 2 + 256;
		*b = realloc(*b, *cap);
		if (!*b)
			abort();
	}
	memcpy(*b + *len, p, n);
	*len += n;
}

static int f_send(struct gw_rdg_tun *t, const uint8_t *p, size_t n)
{
	struct run *r = t->data;

	append(&r->out, &r->outlen, &r->outcap, p, n);
	return 0;
}

static void f_authenticate(struct gw_rdg_tun *t, const char *cookie)
{
	struct run *r = t->data;

	if (t->state != GW_RDG_S_AUTHENTICATE || r->auths++ || r->opens)
		abort();
	if (cookie && (strlen(cookie) == 0 || strlen(cookie) > GW_RDG_COOKIE_MAX))
		abort();
	strcpy(r->cookie, cookie ? cookie : "(none)");
	switch (r->mode & 3) {
	case 0:
		r->auth_status = 0;
		break;
	case 1:
		r->auth_status = E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED;
		break;
	case 2:
		r->auth_status = E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED;
		if (gw_rdg_tun_authenticated(t, r->auth_status,
					     "Take the .rdp file from the portal.") < 0)
			abort();
		r->auth_answer = 1;
		return;
	case 3:
		r->auth_status = 0;
		return; /* answered after the feed */
	}
	if (gw_rdg_tun_authenticated(t, r->auth_status, NULL) < 0)
		abort();
	r->auth_answer = 1;
}

static void f_open(struct gw_rdg_tun *t, const char *host, uint16_t port)
{
	struct run *r = t->data;

	/* Only for a tunnel whose cookie this glue accepted. */
	if (t->state != GW_RDG_S_OPENING || r->opens++ || r->auths != 1 || r->auth_status ||
	    !r->auth_answer || t->refuse_status)
		abort();
	if (!host[0] || strlen(host) > GW_RDG_HOST_MAX || port == 0)
		abort();
	strcpy(r->host, host);
	r->port = port;
	if (gw_rdg_tun_opened(t, r->mode & 4 ? E_PROXY_RAP_ACCESSDENIED : 0) < 0)
		abort();
}

static int f_data(struct gw_rdg_tun *t, const uint8_t *p, size_t n)
{
	struct run *r = t->data;

	if (t->state != GW_RDG_S_OPEN || r->opens != 1 || (r->mode & 4) || n == 0)
		abort();
	append(&r->payload, &r->paylen, &r->paycap, p, n);
	return 0;
}

static const struct gw_rdg_ops f_ops = { f_send, f_authenticate, f_open, f_data };

/* What the client was sent must read as whole packets of a server. */
static void check_output(const struct run *r)
{
	struct gw_rdg_reader rd;
	struct gw_rdg_item it;
	ssize_t k;

	gw_rdg_reader_init(&rd);
	for (size_t off = 0; off < r->outlen; off += (size_t)k) {
		k = gw_rdg_read(&rd, r->out + off, r->outlen - off, &it);
		if (k <= 0)
			abort();
		if (it.kind != GW_RDG_ITEM_PACKET)
			continue;
		switch (it.type) {
		case GW_RDG_HANDSHAKE_RESPONSE:
		case GW_RDG_TUNNEL_RESPONSE:
		case GW_RDG_TUNNEL_AUTH_RESPONSE:
		case GW_RDG_CHANNEL_RESPONSE:
		case GW_RDG_SERVICE_MESSAGE:
		case GW_RDG_KEEPALIVE:
		case GW_RDG_CLOSE_CHANNEL:
		case GW_RDG_CLOSE_CHANNEL_RESPONSE:
			break;
		default:
			abort();
		}
	}
	if (r->outlen && !rd.done)
		abort(); /* half a packet */
}

static void run_one(struct run *r, int mode, const uint8_t *in, size_t n, size_t piece)
{
	static const uint8_t backend[100000];
	size_t off, k;
	int rc = 0;

	memset(r, 0, sizeof(*r));
	r->mode = mode;
	gw_rdg_tun_init(&r->t, &f_ops, r);
	/* As the glue does: no more feeding once the tunnel is over. */
	for (off = 0; off < n && rc == 0 && !gw_rdg_tun_done(&r->t); off += k) {
		k = piece && n - off > piece ? piece : n - off;
		rc = gw_rdg_tun_feed(&r->t, in + off, k);
		if (rc == 0 && (mode & 3) == 3 && r->t.state == GW_RDG_S_AUTHENTICATE) {
			/* The broker's answer arrives between two reads. */
			if (gw_rdg_tun_authenticated(&r->t, 0, NULL) < 0)
				abort();
			r->auth_answer = 1;
		}
	}
	if (rc == 0 && off < n && !gw_rdg_tun_done(&r->t))
		abort();
	if (gw_rdg_tun_done(&r->t)) {
		if (gw_rdg_tun_feed(&r->t, in, n ? 1 : 0) != -EPIPE)
			abort();
		if (gw_rdg_tun_keepalive(&r->t) != -ENOTCONN)
			abort();
	}
	if (rc != 0 && (rc != -EPROTO || !gw_rdg_tun_done(&r->t)))
		abort();
	if (r->t.bytes_in != r->paylen)
		abort();
	if (r->paylen && !r->opens)
		abort();
	if (mode & 8) {
		int open = r->t.state == GW_RDG_S_OPEN;
		size_t before = r->outlen;

		rc = gw_rdg_tun_send_data(&r->t, backend, sizeof(backend));
		if (open != (rc == 0 && r->outlen > before))
			abort();
		gw_rdg_tun_keepalive(&r->t);
		gw_rdg_tun_close(&r->t, mode & 16 ? E_PROXY_ALREADYDISCONNECTED : 0);
	}
	check_output(r);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->payload);
}

/* Equal byte strings (either may be NULL when empty). */
static int same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, cut;
	size_t piece;
	int mode;

	if (size < 2)
		return 0;
	mode = data[0];
	piece = data[1] % 64 + 1;
	data += 2;
	size -= 2;

	run_one(&whole, mode, data, size, 0);
	run_one(&cut, mode, data, size, piece);
	/* Answered after a read, the cookie's fate depends on where the reads
	 * fall (a request sent ahead of the answer breaks the protocol), so
	 * only the answers given at once must not care. */
	if ((mode & 3) != 3 && (!same(whole.out, whole.outlen, cut.out, cut.outlen) ||
				!same(whole.payload, whole.paylen, cut.payload, cut.paylen) ||
				whole.auths != cut.auths || whole.opens != cut.opens ||
				strcmp(whole.cookie, cut.cookie) || strcmp(whole.host, cut.host) ||
				whole.port != cut.port || whole.t.state != cut.t.state ||
				whole.t.status != cut.t.status))
		abort();
	run_free(&whole);
	run_free(&cut);

	/* The parsers alone, on the same bytes as a body. */
	struct gw_rdg_tunnel_create tc;
	struct gw_rdg_tunnel_auth ta;
	struct gw_rdg_channel_create cc;
	struct gw_rdg_handshake hs;
	uint32_t st;
	if (gw_rdg_parse_tunnel_create(data, size, &tc) == 0 && tc.has_cookie &&
	    strlen(tc.cookie) > GW_RDG_COOKIE_MAX)
		abort();
	if (gw_rdg_parse_tunnel_auth(data, size, &ta) == 0 &&
	    strlen(ta.client_name) > GW_RDG_NAME_MAX)
		abort();
	if (gw_rdg_parse_channel_create(data, size, &cc) == 0 &&
	    (strlen(cc.host) > GW_RDG_HOST_MAX || cc.resources == 0))
		abort();
	gw_rdg_parse_handshake(data, size, &hs);
	gw_rdg_parse_close(data, size, &st);
	return 0;
}
