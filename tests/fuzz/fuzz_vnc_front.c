/*
 * fuzz_vnc_front - the gateway's RFB/VeNCrypt front end (gateway/
 * vnc_proxy.c) fed as a VNC client would feed it: the real state machine
 * of a real connection (gateway/conn.c), in-process, over a stream that
 * records what the gateway writes (gw_harness.h), with the broker
 * answering in-process.
 *
 * Input: byte 0 holds flags, byte 1 the broker's answer, the rest is what
 * the client sends, in chunks of 1 << (flags >> 4 & 7) bytes.
 *   flags & 1   the client's writes complete later, not at once
 *   flags & 2   start after TLS (GW_VNC_AT_PLAIN: the user name and
 *               password next), else at the accept; the TLS handshake
 *               itself is OpenSSL's, reached from here only as far as its
 *               ClientHello (a fuzzer cannot finish one at speed)
 *   flags & 8   offer TLSPlain ([gateway] vnc_anon_tls)
 *   answer % 6  unreachable, 401, 503 with a message, 200 without a
 *               backend, 200 for an RDP session, 200 with a VNC backend
 *               that does not exist (the connect fails)
 *
 * Checked besides no crash, no leak, no undefined behaviour:
 *   - one write at a time per stream, nothing after a close (the recorder);
 *   - the banner "RFB 003.008\n" comes first (from the accept);
 *   - a call to the broker carries exactly the user name, password (or
 *     ticket) the client sent, and the client's address as the gateway saw
 *     it, never the client's say;
 *   - the password never comes back to the client;
 *   - after the gateway closes everything, no connection, pending count or
 *     per-source count is left, and every stream was closed once.
 */
#include <openssl/ssl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_harness.h"
#include "portico/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PEER "192.0.2.1"

static char h_password[600]; /* the last password the broker was asked with */
static struct rec *h_client;
static size_t h_said; /* what the client had been sent when the broker was asked */

static void check_call(const char *path, json_t *body)
{
	const char *addr = json_string_value(json_object_get(body, "client_addr"));
	const char *key = !strcmp(path, "/api/v1/gateway/redeem") ? "ticket" : "password";
	const char *pw = json_string_value(json_object_get(body, key));
	size_t keys = !strcmp(key, "ticket") ? 2 : 3;

	if (strcmp(path, "/api/v1/gateway/redeem") && strcmp(path, "/api/v1/gateway/authorize"))
		abort();
	if (!addr || strcmp(addr, PEER) || !pw || json_object_size(body) != keys)
		abort();
	if (keys == 3) {
		const char *user = json_string_value(json_object_get(body, "username"));
		if (!user || !*user || strlen(user) > 255 || strlen(pw) > 511)
			abort();
	}
	snprintf(h_password, sizeof(h_password), "%s", pw);
	h_said = h_client->outlen;
}

/* Could the password be part of what the gateway says anyway (a reason
 * is letters, spaces and a colon after a header with NUL bytes)? */
static int distinctive(const char *pw)
{
	if (strlen(pw) < 6)
		return 0;
	for (; *pw; pw++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ :.", *pw))
			return 1;
	return 0;
}

static SSL_CTX *server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		abort();
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const answers[6] = {
		NULL,
		"{\"error\":\"login_failed\",\"message\":\"login failed\"}",
		"{\"error\":\"unavailable\",\"message\":\"no session host has room\"}",
		"{\"session_id\":7,\"protocol\":\"vnc\"}",
		"{\"session_id\":7,\"protocol\":\"rdp\",\"backend\":\"127.0.0.1:3389\"}",
		"{\"session_id\":7,\"protocol\":\"vnc\",\"backend\":\"unix:/nonexistent/vnc.sock\","
		"\"secret\":\"s3cr3t\",\"user\":\"alice\"}",
	};
	static const int status[6] = { 0, 401, 503, 200, 200, 200 };
	struct gw *g = h_gateway();
	struct gw_conn *c;
	struct rec *client;
	size_t chunk;
	int flags, answer;

	if (size < 2)
		return 0;
	if (!g->tls) {
		pt_log_init("fuzz", PT_LOG_ERR, 0);
		g->tls = server_ctx();
		h_on_call = check_call;
	}
	flags = data[0];
	answer = data[1] % 6;
	chunk = (size_t)1 << (flags >> 4 & 7);
	data += 2;
	size -= 2;
	h_password[0] = '\0';
	h_said = 0;
	g->anon = flags & 8 ? g->tls : NULL;
	client = h_client = rec_new(g->loop, flags & 1);
	c = gw_conn_open(g, &h_proto, &client->s, PEER, PEER);
	if (!c)
		abort(); /* nothing else is open */
	gw_vnc_enter(c, flags & 2 ? GW_VNC_AT_PLAIN : GW_VNC_AT_START, NULL);
	h_flush();
	for (size_t off = 0; off < size; off += chunk) {
		rec_feed(client, data + off, size - off < chunk ? size - off : chunk);
		h_flush();
	}
	/* The broker's word, then what the loop does with it (a connect that
	 * fails, a refusal written). */
	if (h_ncalls) {
		h_answer(answer ? 0 : -1, status[answer], answers[answer]);
		for (int i = 0; i < 8 && (h_flush() | uv_run(g->loop, UV_RUN_NOWAIT)); i++)
			;
	}
	if (!(flags & 2) && client->outlen && memcmp(client->out, "RFB 003.008\n", 12))
		abort();
	if (distinctive(h_password) && memmem(client->out + h_said, client->outlen - h_said,
					     h_password, strlen(h_password)))
		abort(); /* a password went back to the client */
	h_teardown(PEER);
	return 0;
}
