/*
 * httpd.h - the HTTPS server of the broker and the session agent: TLS streams from libportico,
 * requests parsed with http-parser, one request at a time per connection (keep-alive; requests
 * sent ahead are read one after the other, each once the one before is answered), answered by a
 * handler that may take its time (PAM, SQL): it calls pt_http_respond() exactly once, from the
 * loop thread, whenever it is done.  A client that goes away meanwhile costs nothing more than
 * the request's memory until then.
 *
 * Connection limits (docs/security.md, "Limits"):
 *  - max_conns in all.  When a new connection would leave fewer than max_conns / 64 slots free,
 *    the server first closes the connection that has been idle longest between requests
 *    (keep-alive), those that never authenticated before those that did; only when none is idle
 *    and the server is full is the new one refused.  One client holding every slot with idle
 *    keep-alives cannot keep another out.
 *  - max_conns_per_source connections that have not authenticated, per source (an IPv4 address
 *    or an IPv6 /64, pt_net_peer()).  A source at its cap has its own oldest idle unauthenticated
 *    connection closed for the new one, or, with none idle, the new one refused at accept with a
 *    log line.  Other sources are not affected.
 *  - A connection has authenticated once a request on it passed the server's credential check,
 *    which the handler reports with pt_http_authenticated() (a node's certificate or secret, a
 *    user's token; not a login, which presents a password for a token).  It then no longer
 *    counts against its source.
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
	/* Every header as read: "name\0value\0"..., names in lower case
	 * (pt_http_header()). */
	char *headers;
	size_t headers_len, headers_cap;
	int upgrade; /* an Upgrade request (WebSocket): the bytes after it are the new protocol's */
	int rdg;     /* PT_HTTP_RDG_OUT or _IN: an RD Gateway channel (method is HTTP_GET) */
	void *conn;	   /* private */
	int authenticated; /* private: pt_http_authenticated() */
};

typedef void (*pt_http_handler)(struct pt_http_req *req, void *data);

struct pt_httpd_limits {
	uint64_t handshake_ms; /* TLS handshake */
	uint64_t request_ms;   /* from the first byte to the full request */
	uint64_t keepalive_ms; /* idle between requests */
	int max_conns;	       /* connections in all (at least 1) */
	int max_conns_per_source; /* ... not authenticated yet, per source; 0: no cap */
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

/* The request passed the server's credential check: its connection has
 * authenticated and no longer counts against its source's cap (see the
 * top of this file).  Call it before pt_http_respond(), from the loop
 * thread or from the thread that owns the request then (the flag is read
 * when the answer goes out). */
void pt_http_authenticated(struct pt_http_req *req);

/* True when the request's bearer is `secret` (compared in constant time; a
 * NULL or empty secret matches nothing).  Which secret means which role is
 * the daemon's to say (docs/security.md). */
int pt_http_bearer_is(const struct pt_http_req *req, const char *secret);

/* The bearer token of the request, or NULL. */
const char *pt_http_bearer(const struct pt_http_req *req);

/* The reason phrase of an HTTP status ("Not Found"), "Status" for one
 * this server never sends. */
const char *pt_http_status_text(int status);

/* The value of a hexadecimal digit, or -1. */
int pt_http_hexval(int ch);

/* The value of the first header called name (any case), or NULL. */
const char *pt_http_header(const struct pt_http_req *req, const char *name);

/* The value of query parameter `name` (URL-decoded) into buf; 0 or -ENOENT. */
int pt_http_query(const struct pt_http_req *req, const char *name, char *buf, size_t len);

/* --- the request reader alone: for httpd.c, tests and fuzzing ------------- */

/* What lib/httpd.c does with a connection's bytes, without a socket, a
 * loop or a timer: http-parser driven by httpd's callbacks, which keep
 * each request within PT_HTTP_PATH_MAX (path and query), PT_HTTP_HEADERS_MAX
 * and PT_HTTP_BODY_MAX.  tests/fuzz/fuzz_http.c feeds it hostile bytes. */
struct pt_http_reader;

enum pt_http_read {
	PT_HTTP_READ_MORE,    /* every byte taken, no request complete yet */
	PT_HTTP_READ_REQUEST, /* a request is complete: pt_http_reader_take() */
	PT_HTTP_READ_ERROR,   /* malformed or over a limit: answer the begun request
			       * (pt_http_reader_take()) with pt_http_reader_status(),
			       * then close */
	PT_HTTP_READ_GARBAGE, /* not HTTP, before any request began: close, no answer */
};

/* begin (may be NULL) is called when a request's first byte arrives, with
 * the fresh request, for the owner to fill in id, peer and start_ms. */
typedef void (*pt_http_begin_cb)(struct pt_http_req *req, void *owner);
/* NULL when out of memory. */
struct pt_http_reader *pt_http_reader_new(pt_http_begin_cb begin, void *owner);
/* NULL-safe; frees a request begun and not taken. */
void pt_http_reader_free(struct pt_http_reader *rd);
/* Parse len bytes; *used gets how many were taken: after a complete
 * request, the rest belongs to the next one (fed again after
 * pt_http_reader_next()).  After ERROR or GARBAGE, feed nothing more. */
enum pt_http_read pt_http_reader_feed(struct pt_http_reader *rd, const char *data, size_t len,
				      size_t *used);
/* The request begun (complete or not; NULL if none), now the caller's:
 * free it with pt_http_req_free() or answer it. */
struct pt_http_req *pt_http_reader_take(struct pt_http_reader *rd);
/* True when a request has begun and is not taken yet. */
int pt_http_reader_busy(const struct pt_http_reader *rd);
/* After ERROR: the status to answer (400, 413, 414, 431, 503). */
int pt_http_reader_status(const struct pt_http_reader *rd);
/* After ERROR or GARBAGE: what was wrong, for the log. */
const char *pt_http_reader_why(const struct pt_http_reader *rd);
/* After REQUEST: whether the connection may carry another request. */
int pt_http_reader_keepalive(const struct pt_http_reader *rd);
/* Ready for the next request on the same connection. */
void pt_http_reader_next(struct pt_http_reader *rd);
/* The RD Gateway's methods (MS-TSGU), which http-parser does not know. */
#define PT_HTTP_RDG_OUT 1 /* RDG_OUT_DATA */
#define PT_HTTP_RDG_IN	2 /* RDG_IN_DATA */
/* Take RDG_OUT_DATA and RDG_IN_DATA requests (off by default): such a
 * request is complete at the end of its headers (req->rdg set, method
 * HTTP_GET), whatever body it announces, and the bytes after it are the
 * tunnel's. */
void pt_http_reader_rdg(struct pt_http_reader *rd, int on);
/* Free a request nobody will answer (NULL-safe). */
void pt_http_req_free(struct pt_http_req *req);

#endif
