/*
 * httpd.h - the HTTPS server of the broker and the session agent: TLS streams from libportico,
 * requests parsed with http-parser, one request at a time per connection (keep-alive, no
 * pipelining), answered by a handler that may take its time (PAM, SQL): it calls pt_http_respond()
 * exactly once, from the loop thread, whenever it is done.  A client that goes away meanwhile costs
 * nothing more than the request's memory until then.
 */
#ifndef PORTICO_HTTPD_H
#define PORTICO_HTTPD_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "portico/log.h"

#define PT_HTTP_PATH_MAX    1024
#define PT_HTTP_HEADERS_MAX (16 * 1024) /* all header bytes of a request */
#define PT_HTTP_BODY_MAX    (64 * 1024)

struct pt_httpd;

struct pt_http_req {
	uint64_t id;		      /* connection id for log lines */
	int method;		      /* enum http_method */
	char path[PT_HTTP_PATH_MAX];  /* decoded? no: raw path, without the query */
	char query[PT_HTTP_PATH_MAX]; /* raw, without '?' */
	char authorization[1024];     /* the Authorization header, or "" */
	char content_type[128];
	char peer[80];	   /* client address, without port */
	int peer_verified; /* presented a certificate that [tls] ca verified */
	char peer_cn[128]; /* its subject's common name: the node's name */
	char peer_ou[64];  /* its organizational unit: the role portico-admin pki gave, or "" */
	char *body;	   /* NUL-terminated, body_len bytes */
	size_t body_len;
	uint64_t start_ms; /* uv_now when the request began */
	void *conn;	   /* private */
};

typedef void (*pt_http_handler)(struct pt_http_req *req, void *data);

struct pt_httpd_limits {
	uint64_t handshake_ms; /* TLS handshake */
	uint64_t request_ms;   /* from the first byte to the full request */
	uint64_t keepalive_ms; /* idle between requests */
	int max_conns;
};

/* Listen on addr ("host:port") with TLS.  NULL with a log line on failure. */
struct pt_httpd *pt_httpd_listen(uv_loop_t *loop, SSL_CTX *ctx, const char *addr,
				 const struct pt_httpd_limits *lim, pt_http_handler handler,
				 void *data);
/* Stop accepting and close every connection. */
void pt_httpd_close(struct pt_httpd *srv);

/* Answer the request (exactly once).  extra_headers: "Name: value\r\n"... or
 * NULL.  The request is freed here. */
void pt_http_respond(struct pt_http_req *req, int status, const char *content_type,
		     const char *body, size_t len, const char *extra_headers);
/* Answer with a JSON document (taken, decref'd here). */
void pt_http_json(struct pt_http_req *req, int status, json_t *doc);
/* Answer {"error": code, "message": text}. */
void pt_http_error(struct pt_http_req *req, int status, const char *code, const char *fmt, ...)
	PT_PRINTF(4, 5);

/* True when the request's bearer is `secret` (compared in constant time; a
 * NULL or empty secret matches nothing).  Which secret means which role is
 * the daemon's to say (docs/security.md). */
int pt_http_bearer_is(const struct pt_http_req *req, const char *secret);

/* The bearer token of the request, or NULL. */
const char *pt_http_bearer(const struct pt_http_req *req);

/* The value of query parameter `name` (URL-decoded) into buf; 0 or -ENOENT. */
int pt_http_query(const struct pt_http_req *req, const char *name, char *buf, size_t len);

#endif
