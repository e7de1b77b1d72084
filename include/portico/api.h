/*
 * api.h - the client side of Portico's HTTPS APIs (the broker's, and the
 * session agent's), shared by the gateway, the session agent, the broker
 * (towards session agents) and the command-line clients.
 *
 * Calls block: daemons make them from libuv's thread pool, never from the
 * loop thread.  Each thread keeps one libcurl handle, so connections to the
 * same server are reused.  JSON in, JSON out (jansson).
 */
#ifndef PORTICO_API_H
#define PORTICO_API_H

#include <jansson.h>
#include <stddef.h>

#include "portico/conf.h"
#include "portico/urls.h"

#define PT_API_BODY_MAX (4 * 1024 * 1024) /* a longer answer is refused */

struct pt_api_conf {
	/* "https://host:port", or a list of them for brokers side by side
	 * ("https://b1:8443, https://b2:8443", portico/urls.h): see
	 * pt_api_call. */
	const char *base;
	const char *ca;	  /* CA file that verifies the server; NULL: system store */
	const char *cert; /* client certificate presented when cert and key exist */
	const char *key;
	const char *bearer; /* sent as "Authorization: Bearer ..."; NULL: none */
	/* cert and key as read by pt_api_conf_load_identity (they win over
	 * the paths): a daemon reads its key as root, then drops root. */
	char *cert_pem, *key_pem;
	size_t cert_len, key_len;
	long timeout_ms;  /* the whole call, every URL tried included; 0: 15 s */
	int insecure;	  /* skip server verification (the CLI's -k only) */
	int log_failover; /* log a line when another URL of base answers */
	/* Non-NULL: the call gives up (as "not answered") once *cancel is
	 * non-zero, seen within a second; a long-poll's way out at a stop. */
	const volatile int *cancel;
};

/* Once per process, before any thread makes a call. */
int pt_api_global_init(void);

/* Fill c from [tls]: CA, client certificate and key. */
void pt_api_conf_tls(struct pt_api_conf *c, const struct pt_tls_conf *tls);

/* Read c->cert and c->key into memory now (before privileges are
 * dropped), so the client certificate is presented although the key file
 * is root's alone.  Nothing when either is unset or absent (the bearer
 * alone then); -errno when one exists but cannot be read. */
int pt_api_conf_load_identity(struct pt_api_conf *c);

struct pt_api_resp {
	int status; /* HTTP status */
	char *body; /* NUL-terminated, malloc'd (free with pt_api_resp_free) */
	size_t len;
	char ctype[128];       /* Content-Type, or "" */
	char disposition[256]; /* Content-Disposition, or "" */
	json_t *json;	 /* the body parsed when it is JSON, else NULL */
};

/* One request.  method "GET", "POST", "PUT", "DELETE"...; path begins with
 * "/"; body (may be NULL) is sent as JSON.  Returns 0 with *r filled (any
 * HTTP status), or -1 with err saying why no answer came ("https://h:p:
 * Connection refused", "...: certificate verify failed", "answer too
 * long").  Free r with pt_api_resp_free either way.
 *
 * Fail-over: the URLs of c->base are tried in turn, from the one that last
 * answered in this process (any thread).  The next one is tried when
 * nothing of the request was sent (no connection, a TLS handshake or
 * certificate failure, a connect timeout), when one answers 503 (it cannot
 * serve now), and, for every method but POST and PATCH, when the request
 * went out and no answer came; a POST that went out unanswered may have
 * been carried out and is sent nowhere else.  A host name with several
 * addresses: libcurl tries the next address when one cannot be reached,
 * and after a 503 each other address is asked in turn.  When none
 * answers, err names each URL (and address) tried and why
 * ("https://b1:8443: ... Connection refused; https://b2:8443: HTTP 503
 * (database unavailable)"); when every one answered 503, the call returns
 * 0 with the last 503 answer. */
int pt_api_call(const struct pt_api_conf *c, const char *method, const char *path, json_t *body,
		struct pt_api_resp *r, char *err, size_t errlen);
void pt_api_resp_free(struct pt_api_resp *r);

/* The header a gateway's shared secret (c->bearer) goes in when it forwards
 * a user's request (pt_api_forward): Authorization is the user's then. */
#define PT_API_GATEWAY_HEADER "Portico-Gateway"

/* A user's request that a gateway forwards (its HTTPS front): what goes
 * with it besides the gateway's own credential. */
struct pt_api_fwd {
	/* "Name: value" lines (NULL: none): the user's Authorization, the
	 * client's address (Forwarded), the body's Content-Type. */
	const char *headers[4];
};

/* pt_api_call for a request the gateway passes on: body (len bytes, may
 * be NULL) sent as it came, fwd's headers added, and the gateway's
 * c->bearer sent in PT_API_GATEWAY_HEADER, not Authorization (its client
 * certificate, when it has one, goes as always).  Same answers and
 * fail-over as pt_api_call. */
int pt_api_forward(const struct pt_api_conf *c, const char *method, const char *path,
		   const char *body, size_t len, const struct pt_api_fwd *fwd,
		   struct pt_api_resp *r, char *err, size_t errlen);

/* The text a person should read for a failed answer: its JSON "message", or
 * "HTTP <status>". */
const char *pt_api_message(const struct pt_api_resp *r, char *buf, size_t len);

#endif
