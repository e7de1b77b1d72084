/*
 * fuzz_vnc_backend - what the gateway reads from a VNC backend (gateway/
 * vnc_proxy.c): its ProtocolVersion, security types, VNC authentication
 * challenge, SecurityResult and ServerInit, then the relay.  The real
 * connection (gateway/conn.c), in-process, from the moment the broker has
 * answered (GW_VNC_AT_BACKEND), over streams that record what the gateway
 * writes to the client and to the backend (gw_harness.h).
 *
 * Input: byte 0 holds flags, the rest is what the backend sends, in chunks
 * of 1 << (flags >> 4 & 7) bytes.
 *   flags & 1   the client's writes complete later, not at once
 *   flags & 2   the backend's writes complete later
 *   flags & 4   the session has a secret (VNC authentication), else none
 *   flags & 8   the client's ClientInit asks for an exclusive session and
 *               comes with early messages (SetEncodings)
 *
 * Checked besides no crash, no leak, no undefined behaviour, against a
 * reference reading of the same bytes:
 *   - the gateway answers the backend "RFB 003.008\n", picks a security
 *     type the backend offered (VNC authentication only with a secret), and
 *     answers a challenge with its DES response for the secret;
 *   - the client hears SecurityResult OK only after the backend's OK, and
 *     then exactly the backend's bytes from ServerInit on, in order;
 *   - the backend hears ClientInit shared=1 whatever the client asked,
 *     then the client's bytes unchanged;
 *   - one write at a time per stream; everything closed and uncounted at
 *     the end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_harness.h"
#include "portico/log.h"
#include "portico/rfb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PEER   "198.51.100.7"
#define SECRET "s3cr3t-0123456789"

/* ClientInit exclusive, then SetEncodings(Raw) before the ServerInit came. */
static const uint8_t early[] = { 0, 2, 0, 0, 1, 0, 0, 0, 0 };

/* What the backend's bytes should have led to (the reference reading).
 * Returns the offset of ServerInit in in, or 0 when the backend's
 * handshake could not lead to one. */
static size_t reference(const uint8_t *in, size_t n, const struct rec *be, int secret)
{
	size_t off;
	uint8_t pick, resp[16];
	int offered = 0;

	if (n < 13 || be->outlen < 13 || memcmp(be->out, "RFB 003.008\n", 12))
		return 0;
	off = 13 + in[12];
	pick = be->out[12];
	for (size_t i = 13; i < off && i < n; i++)
		offered |= in[i] == pick;
	if (!offered || (pick != PT_RFB_SEC_NONE && pick != PT_RFB_SEC_VNC) ||
	    (pick == PT_RFB_SEC_VNC && !secret))
		abort(); /* a type the backend did not offer, or cannot be used */
	if (pick == PT_RFB_SEC_VNC) {
		if (n < off + 16)
			return 0;
		if (be->outlen >= 29) {
			if (pt_rfb_vnc_response(SECRET, in + off, resp) ||
			    memcmp(be->out + 13, resp, 16))
				abort(); /* not the DES response for the secret */
		}
		off += 16;
	}
	if (n < off + 4 || pt_rfb_u32(in + off))
		return 0;
	return off + 4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gw *g = h_gateway();
	struct gw_conn *c;
	struct rec *client, *backend;
	size_t chunk, si, ci, fed = 0;
	int flags, said_clientinit = 0;

	if (size < 1)
		return 0;
	if (!h_closed && !h_ncalls)
		pt_log_init("fuzz", PT_LOG_ERR, 0);
	flags = data[0];
	chunk = (size_t)1 << (flags >> 4 & 7);
	data++;
	size--;
	client = rec_new(g->loop, flags & 1);
	backend = rec_new(g->loop, flags & 2);
	c = gw_conn_open(g, &h_proto, &client->s, PEER, PEER);
	if (!c)
		abort();
	c->backend = &backend->s;
	snprintf(c->backend_addr, sizeof(c->backend_addr), "unix:/run/fuzz.sock");
	c->session = 7;
	if (gw_vnc_enter(c, GW_VNC_AT_BACKEND, flags & 4 ? SECRET : ""))
		abort();
	for (size_t off = 0; off < size; off += chunk) {
		size_t k = size - off < chunk ? size - off : chunk;
		rec_feed(backend, data + off, k);
		fed = off + k;
		h_flush();
		/* The client says its ClientInit once it may. */
		if (client->reading && !said_clientinit) {
			said_clientinit = 1;
			rec_feed(client, flags & 8 ? early : (const uint8_t *)"\1",
				 flags & 8 ? sizeof(early) : 1);
			h_flush();
		}
	}
	for (int i = 0; i < 8 && h_flush(); i++)
		;
	/* The client heard OK only after the backend's OK, then ServerInit
	 * and what followed, unchanged. */
	si = reference(data, fed, backend, flags & 4);
	if (getenv("FUZZ_DEBUG")) {
		fprintf(stderr, "fed %zu si %zu client", fed, si);
		for (size_t i = 0; i < client->outlen; i++)
			fprintf(stderr, " %02x", client->out[i]);
		fprintf(stderr, "\nbackend");
		for (size_t i = 0; i < backend->outlen; i++)
			fprintf(stderr, " %02x", backend->out[i]);
		fprintf(stderr, "\n");
	}
	if (client->outlen >= 4 && !memcmp(client->out, "\0\0\0\0", 4)) {
		if (!si || client->outlen - 4 > fed - si ||
		    memcmp(client->out + 4, data + si, client->outlen - 4))
			abort();
		/* ...and the backend heard shared=1, then the client's bytes. */
		ci = 12 + 1 + (backend->out[12] == PT_RFB_SEC_VNC ? 16 : 0);
		if (backend->outlen > ci &&
		    (backend->out[ci] != 1 ||
		     ((flags & 8) && memcmp(backend->out + ci + 1, early + 1,
					    backend->outlen - ci - 1 < sizeof(early) - 1
						    ? backend->outlen - ci - 1
						    : sizeof(early) - 1))))
			abort();
	}
	h_teardown(PEER);
	return 0;
}
