/*
 * httpd.c - the HTTPS server of the broker and the session agent; see httpd.h.
 *
 * The connections: TLS, timers, the limits on how many and from whom
 * (httpd.h's top), and the answers.  What a request's bytes mean is
 * httpd_request.c's: it keeps each request within its limits and says which
 * status answers what went wrong: 400, 413, 414, 431; this file adds 408
 * (too slow) and 503.  One file past 600 lines because it is one object's
 * life, from accept to close: the caps, the idle list, the timers and the
 * answer all change the same struct conn.
 */
#include "portico/httpd.h"

#include <errno.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/buf.h"
#include "portico/net.h"
#include "portico/sources.h"
#include "portico/stream.h"
#include "portico/tls.h"

enum conn_state { C_READING, C_HANDLING, C_WRITING, C_LINGERING, C_CLOSING };

/* After an answer that closes the connection, what the client still sends
 * is read and dropped for this long: closing with unread data makes the
 * kernel reset the connection, and the client could lose the answer (a
 * 413 sent while it is still uploading the body). */
#define LINGER_MS 2000

/* Idle keep-alive connections are closed for new ones once fewer than
 * max_conns / RESERVE_DIV slots are free (nginx's ngx_drain_connections
 * does the same with its reusable connections). */
#define RESERVE_DIV 64

struct conn {
	struct pt_httpd *srv;
	struct pt_stream *s;
	struct pt_http_reader *rd;
	uv_timer_t timer;
	uint64_t id;
	char peer[80];	 /* address, without the port */
	char source[64]; /* what per-source caps count it under */
	enum conn_state state;
	struct pt_http_req *req; /* being handled or answered */
	int keepalive;
	int counted;	   /* counted against its source: not authenticated */
	int authenticated; /* a request on it passed the credential check */
	int idle;	   /* in srv->idle[authenticated] */
	uint64_t idle_since;
	char *pending; /* bytes sent after a complete request: */
	size_t pending_off, pending_len; /* ... these, still to read */
	int resuming;	 /* conn_feed() runs on them */
	char *wbuf; /* the response being written */
	struct conn *next, **prevp;  /* every connection */
	struct conn *inext, **iprevp; /* idle ones, oldest first */
};

/* Connections idle between requests, oldest first. */
struct idle_list {
	struct conn *head, **tailp;
};

/* At most one line a second for each kind of refusal: a flood of
 * connections must not flood the log too. */
struct quiet {
	uint64_t next_ms;
	unsigned skipped;
};

struct pt_httpd {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	SSL_CTX *ctx;
	struct pt_httpd_limits lim;
	pt_http_handler handler;
	void *data;
	struct conn *conns;
	int nconns;
	uint64_t next_id;
	struct pt_sources *unauth;  /* connections not authenticated, per source */
	struct idle_list idle[2];   /* [0] not authenticated, [1] authenticated */
	struct quiet full, over, trimmed;
};

/* Set on the thread that runs the servers' loop: pt_http_authenticated()
 * acts at once there, and leaves a flag for pt_http_respond() elsewhere. */
static _Thread_local int loop_thread;

static void conn_close(struct conn *c);
static void conn_feed(struct conn *c, const char *data, size_t len);

const char *pt_http_status_text(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 413:
		return "Content Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 426:
		return "Upgrade Required";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 502:
		return "Bad Gateway";
	case 503:
		return "Service Unavailable";
	default:
		return "Status";
	}
}

/* --- idle connections and caps ---------------------------------------------- */

static void idle_add(struct conn *c)
{
	struct idle_list *l = &c->srv->idle[c->authenticated];

	if (c->idle)
		return;
	c->idle = 1;
	c->idle_since = uv_now(c->srv->loop);
	c->inext = NULL;
	c->iprevp = l->tailp;
	*l->tailp = c;
	l->tailp = &c->inext;
}

static void idle_del(struct conn *c)
{
	struct idle_list *l = &c->srv->idle[c->authenticated];

	if (!c->idle)
		return;
	c->idle = 0;
	*c->iprevp = c->inext;
	if (c->inext)
		c->inext->iprevp = c->iprevp;
	else
		l->tailp = c->iprevp;
}

/* 1 when a line may be logged now; q->skipped says how many were not. */
static int may_log(struct pt_httpd *srv, struct quiet *q)
{
	uint64_t now = uv_now(srv->loop);

	if (q->next_ms && now < q->next_ms) {
		q->skipped++;
		return 0;
	}
	q->next_ms = now + 1000;
	return 1;
}

static const char *skipped(struct quiet *q, char *buf, size_t len)
{
	buf[0] = '\0';
	if (q->skipped)
		snprintf(buf, len, " (and %u more not logged)", q->skipped);
	q->skipped = 0;
	return buf;
}

/* Close the connection idle longest to make room: one of `source` that has
 * not authenticated, or with source NULL anybody's, those that have not
 * authenticated first.  1 when one was closed. */
static int trim_idle(struct pt_httpd *srv, const char *source)
{
	struct conn *c = srv->idle[0].head;
	char more[48];

	if (source) {
		while (c && strcmp(c->source, source))
			c = c->inext;
	} else if (!c) {
		c = srv->idle[1].head;
	}
	if (!c)
		return 0;
	if (may_log(srv, &srv->trimmed))
		pt_log(PT_LOG_INFO, c->id,
		       "%s: closing a keep-alive connection idle for %llu ms to make room "
		       "(%s)%s",
		       c->peer, (unsigned long long)(uv_now(srv->loop) - c->idle_since),
		       source ? "its source is at its cap" : "the server is near its cap",
		       skipped(&srv->trimmed, more, sizeof(more)));
	conn_close(c);
	return 1;
}

/* A request on c passed the server's credential check. */
static void conn_authenticated(struct conn *c)
{
	int idle = c->idle;

	if (c->authenticated)
		return;
	idle_del(c); /* (never idle while a request is handled, but the lists must hold) */
	c->authenticated = 1;
	if (idle)
		idle_add(c);
	if (c->counted) {
		pt_sources_add(c->srv->unauth, c->source, -1);
		c->counted = 0;
	}
}

void pt_http_authenticated(struct pt_http_req *req)
{
	req->authenticated = 1;
	/* On another thread the connection is the loop's business: the flag
	 * is read when the answer goes out. */
	if (loop_thread && req->conn)
		conn_authenticated(req->conn);
}

/* --- timers -------------------------------------------------------------- */

static void answer_now(struct conn *c, struct pt_http_req *r)
{
	c->req = r;
	r->conn = c;
	pt_stream_read_stop(c->s);
	uv_timer_stop(&c->timer);
	c->state = C_HANDLING;
}

static void on_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->state == C_LINGERING) {
		conn_close(c);
		return;
	}
	if (c->state != C_READING)
		return;
	if (pt_http_reader_busy(c->rd)) {
		/* Part of a request came, the rest did not: say so, then close. */
		pt_log(PT_LOG_INFO, c->id, "request from %s timed out", c->peer);
		c->keepalive = 0;
		answer_now(c, pt_http_reader_take(c->rd));
		pt_http_error(c->req, 408, "timeout", "the request did not arrive in time");
		return;
	}
	conn_close(c);
}

static void arm(struct conn *c, uint64_t ms)
{
	uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/* A client certificate that [tls] ca verified: a gateway or session host
 * (users present none).  The handshake already refused one that failed. */
static void peer_cert(struct conn *c, struct pt_http_req *r)
{
	struct pt_tls *t = pt_tls_stream_engine(c->s);
	SSL *ssl = t ? pt_tls_ssl(t) : NULL;
	X509 *x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;

	if (!x || SSL_get_verify_result(ssl) != X509_V_OK)
		return;
	r->peer_verified = 1;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, r->peer_cn,
				      sizeof(r->peer_cn)) < 0)
		snprintf(r->peer_cn, sizeof(r->peer_cn), "?");
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationalUnitName,
				      r->peer_ou, sizeof(r->peer_ou)) < 0)
		r->peer_ou[0] = '\0';
}

/* A request's first byte: it is no longer idle and has request_ms. */
static void on_begin(struct pt_http_req *r, void *owner)
{
	struct conn *c = owner;

	r->id = c->id;
	r->start_ms = uv_now(c->srv->loop);
	snprintf(r->peer, sizeof(r->peer), "%s", c->peer);
	peer_cert(c, r);
	idle_del(c);
	arm(c, c->srv->lim.request_ms);
}

/* --- the connection --------------------------------------------------------- */

static void on_read(struct pt_stream *s, ssize_t nread, char *chunk);

/* Parse len bytes; stop at the end of a request and keep the rest. */
/* Parse len bytes (a chunk read, or what is pending); stop at the end of
 * a request, keep the rest and hand the request to the handler. */
static void conn_feed(struct conn *c, const char *data, size_t len)
{
	enum pt_http_read res;
	size_t used;
	int status;

	res = pt_http_reader_feed(c->rd, data, len, &used);
	if (c->resuming) {
		/* data is pending's: what the reader took is gone from it. */
		c->pending_off += used;
		c->pending_len = res == PT_HTTP_READ_REQUEST ? c->pending_len - used : 0;
	}
	switch (res) {
	case PT_HTTP_READ_MORE:
		return;
	case PT_HTTP_READ_REQUEST:
		c->keepalive = pt_http_reader_keepalive(c->rd);
		if (used < len && !c->resuming) {
			/* Sent ahead of its answer: read once this one is
			 * answered.  Without the memory, this is the last. */
			c->pending = malloc(len - used);
			if (c->pending) {
				memcpy(c->pending, data + used, len - used);
				c->pending_off = 0;
				c->pending_len = len - used;
			} else {
				c->keepalive = 0;
			}
		}
		answer_now(c, pt_http_reader_take(c->rd));
		c->srv->handler(c->req, c->srv->data);
		return;
	case PT_HTTP_READ_GARBAGE:
		/* Nothing that began a request: nothing to answer. */
		pt_log(PT_LOG_INFO, c->id, "%s: not HTTP (%s)", c->peer, pt_http_reader_why(c->rd));
		conn_close(c);
		return;
	case PT_HTTP_READ_ERROR:
		status = pt_http_reader_status(c->rd);
		pt_log(PT_LOG_INFO, c->id, "%s: bad request: %d (%s)", c->peer, status,
		       pt_http_reader_why(c->rd));
		c->keepalive = 0;
		answer_now(c, pt_http_reader_take(c->rd));
		if (status == 503)
			pt_http_error(c->req, 503, "busy", "out of memory");
		else
			pt_http_error(c->req, status, status == 400 ? "bad_request" : "too_large",
				      "%s",
				      status == 413   ? "request body too large"
				      : status == 414 ? "URL too long"
				      : status == 431 ? "request headers too large"
						      : "malformed HTTP request");
		return;
	}
}

static void on_read(struct pt_stream *s, ssize_t nread, char *chunk)
{
	struct conn *c = s->data;

	if (nread < 0) {
		if (nread != UV_EOF && nread != UV_ECONNRESET) {
			struct pt_tls *t = pt_tls_stream_engine(s);
			pt_log(PT_LOG_INFO, c->id, "%s: %s", c->peer,
			       t ? pt_tls_last_error(t) : uv_strerror((int)nread));
		}
		conn_close(c);
		return;
	}
	conn_feed(c, chunk, (size_t)nread);
	pt_chunk_put(chunk);
}

static void free_owner(uv_handle_t *h)
{
	free(h->data);
}

static void on_closed(struct pt_stream *s)
{
	struct conn *c = s->data;

	uv_close((uv_handle_t *)&c->timer, free_owner);
}

static void conn_close(struct conn *c)
{
	if (c->state == C_CLOSING)
		return;
	if (c->req) {
		/* Being handled: the handler still owns it and answers into
		 * nothing. */
		c->req->conn = NULL;
		c->req = NULL;
	}
	c->state = C_CLOSING;
	uv_timer_stop(&c->timer);
	idle_del(c);
	if (c->counted) {
		pt_sources_add(c->srv->unauth, c->source, -1);
		c->counted = 0;
	}
	pt_http_reader_free(c->rd);
	c->rd = NULL;
	free(c->pending);
	c->pending = NULL;
	c->pending_len = 0;
	free(c->wbuf);
	c->wbuf = NULL;
	if (c->next)
		c->next->prevp = c->prevp;
	*c->prevp = c->next;
	c->srv->nconns--;
	pt_stream_close(c->s, on_closed);
}

static void on_linger_read(struct pt_stream *s, ssize_t nread, char *chunk)
{
	struct conn *c = s->data;

	pt_chunk_put(chunk);
	if (nread < 0)
		conn_close(c);
}

/* Read the requests sent ahead, one after the other, in a loop rather than
 * by recursion: a handler may answer at once (a 404), and one read may
 * hold thousands of requests.  Then read the socket again. */
static void conn_resume(struct conn *c)
{
	while (c->state == C_READING && c->pending_len > 0) {
		c->resuming = 1;
		conn_feed(c, c->pending + c->pending_off, c->pending_len);
		c->resuming = 0;
	}
	if (c->pending_len == 0) {
		free(c->pending);
		c->pending = NULL;
	}
	if (c->state == C_READING && pt_stream_read_start(c->s, on_read) < 0)
		conn_close(c);
}

static void after_response(struct conn *c)
{
	free(c->wbuf);
	c->wbuf = NULL;
	if (!c->keepalive) {
		pt_stream_shutdown(c->s);
		c->state = C_LINGERING;
		arm(c, LINGER_MS);
		if (pt_stream_read_start(c->s, on_linger_read) < 0)
			conn_close(c);
		return;
	}
	c->state = C_READING;
	pt_http_reader_next(c->rd);
	arm(c, c->srv->lim.keepalive_ms);
	/* Idle until a request begins (which takes it off the list). */
	idle_add(c);
	if (!c->resuming) /* else conn_resume's loop goes on */
		conn_resume(c);
}

static void on_written(struct pt_stream *s, int status)
{
	struct conn *c = s->data;

	if (status < 0) {
		conn_close(c);
		return;
	}
	after_response(c);
}

void pt_http_respond(struct pt_http_req *req, int status, const char *content_type,
		     const char *body, size_t len, const char *extra_headers)
{
	struct conn *c = req->conn;
	int n, rc;

	if (c && req->authenticated)
		conn_authenticated(c);
	pt_http_req_free(req);
	if (!c)
		return;
	c->req = NULL;
	n = snprintf(NULL, 0, "HTTP/1.1 %d %s\r\n", status, pt_http_status_text(status));
	size_t hlen = (size_t)n + 256 + (extra_headers ? strlen(extra_headers) : 0);
	c->wbuf = malloc(hlen + len);
	if (!c->wbuf) {
		conn_close(c);
		return;
	}
	n = snprintf(c->wbuf, hlen,
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nConnection: %s\r\n%s\r\n",
		     status, pt_http_status_text(status), content_type ? content_type : "text/plain", len,
		     c->keepalive ? "keep-alive" : "close", extra_headers ? extra_headers : "");
	memcpy(c->wbuf + n, body, len);
	c->state = C_WRITING;
	rc = pt_stream_write(c->s, c->wbuf, (size_t)n + len, on_written);
	if (rc == PT_STREAM_DONE)
		after_response(c);
	else if (rc < 0)
		conn_close(c);
}

void pt_http_json(struct pt_http_req *req, int status, json_t *doc)
{
	char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	if (!s) {
		static const char oom[] = "{\"error\":\"internal\",\"message\":\"out of memory\"}";
		pt_http_respond(req, 500, "application/json", oom, sizeof(oom) - 1, NULL);
		return;
	}
	pt_http_respond(req, status, "application/json", s, strlen(s), NULL);
	free(s);
}

void pt_http_error(struct pt_http_req *req, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pt_http_json(req, status, json_pack("{s:s, s:s}", "error", code, "message", msg));
}

/* Whether a new connection from `source` may come in, making room for it
 * where idle keep-alive connections allow (httpd.h's top says the rules). */
static int admit(struct pt_httpd *srv, const char *peer, const char *source)
{
	int max = srv->lim.max_conns, per = srv->lim.max_conns_per_source;
	char more[48];

	if (per > 0 && pt_sources_get(srv->unauth, source) >= per && !trim_idle(srv, source)) {
		if (may_log(srv, &srv->over))
			pt_log_warnx("%s: %d connections not authenticated from %s already (the "
				     "cap per source): refused%s",
				     peer, per, source, skipped(&srv->over, more, sizeof(more)));
		return 0;
	}
	if (srv->nconns >= max - max / RESERVE_DIV)
		trim_idle(srv, NULL);
	if (srv->nconns >= max) {
		if (may_log(srv, &srv->full))
			pt_log_warnx("%s: %d connections open, none idle (the cap): refused%s",
				     peer, srv->nconns, skipped(&srv->full, more, sizeof(more)));
		return 0;
	}
	return 1;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct pt_httpd *srv = server->data;
	struct pt_stream *plain, *tls;
	char peer[80], source[64];
	struct conn *c;

	if (status < 0)
		return;
	plain = pt_plain_new(srv->loop, UV_TCP);
	if (!plain)
		return;
	if (uv_accept(server, pt_plain_uv(plain)) != 0) {
		pt_stream_close(plain, NULL);
		return;
	}
	/* The address without the port: throttling and ticket binding work
	 * per address, caps per source. */
	pt_net_peer((uv_tcp_t *)pt_plain_uv(plain), peer, sizeof(peer), source, sizeof(source));
	if (!admit(srv, peer, source)) {
		pt_stream_close(plain, NULL);
		return;
	}
	c = calloc(1, sizeof(*c));
	tls = c ? pt_tls_stream_new(plain, srv->ctx, 1, NULL) : NULL;
	if (!tls || !(c->rd = pt_http_reader_new(on_begin, c)) ||
	    pt_sources_add(srv->unauth, source, 1) < 0) {
		if (c)
			pt_http_reader_free(c->rd);
		free(c);
		if (tls)
			pt_stream_close(tls, NULL);
		else
			pt_stream_close(plain, NULL);
		return;
	}
	c->counted = 1;
	c->srv = srv;
	c->s = tls;
	c->id = ++srv->next_id;
	tls->id = c->id;
	tls->data = c;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	snprintf(c->source, sizeof(c->source), "%s", source);
	uv_timer_init(srv->loop, &c->timer);
	c->timer.data = c;
	c->next = srv->conns;
	if (c->next)
		c->next->prevp = &c->next;
	c->prevp = &srv->conns;
	srv->conns = c;
	srv->nconns++;
	arm(c, srv->lim.handshake_ms + srv->lim.request_ms);
	if (pt_stream_read_start(tls, on_read) < 0)
		conn_close(c);
}

static void free_server(uv_handle_t *h)
{
	struct pt_httpd *srv = h->data;

	pt_sources_free(srv->unauth);
	free(srv);
}

struct pt_httpd *pt_httpd_listen(uv_loop_t *loop, SSL_CTX *ctx, const char *addr,
				 const struct pt_httpd_limits *lim, pt_http_handler handler,
				 void *data)
{
	struct pt_httpd *srv = calloc(1, sizeof(*srv));
	int rc;

	if (!srv || !(srv->unauth = pt_sources_new())) {
		pt_log_warnx("listen on %s: out of memory", addr);
		free(srv);
		return NULL;
	}
	loop_thread = 1;
	srv->loop = loop;
	srv->ctx = ctx;
	srv->lim = *lim;
	if (srv->lim.max_conns < 1)
		srv->lim.max_conns = 1;
	srv->handler = handler;
	srv->data = data;
	srv->idle[0].tailp = &srv->idle[0].head;
	srv->idle[1].tailp = &srv->idle[1].head;
	uv_tcp_init(loop, &srv->tcp);
	srv->tcp.data = srv;
	rc = pt_net_listen(&srv->tcp, addr, 511, on_connection);
	if (rc) {
		pt_log_warnx("listen on %s: %s", addr,
			     rc == -EINVAL ? "bad address" : uv_strerror(rc));
		uv_close((uv_handle_t *)&srv->tcp, free_server);
		return NULL;
	}
	return srv;
}

void pt_httpd_close(struct pt_httpd *srv)
{
	while (srv->conns)
		conn_close(srv->conns);
	uv_close((uv_handle_t *)&srv->tcp, free_server);
}
