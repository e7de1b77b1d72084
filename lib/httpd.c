/*
 * httpd.c - the HTTPS server of the broker and the session agent; see httpd.h.
 *
 * http-parser does the parsing; this file keeps each request within its
 * limits (URL, header bytes, body, time) and answers what goes wrong with the
 * status a client can act on: 400, 408, 413, 414, 431, 503.
 */
#include "portico/httpd.h"

#include <ctype.h>
#include <errno.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "portico/buf.h"
#include "portico/net.h"
#include "portico/stream.h"
#include "portico/tls.h"

enum conn_state { C_READING, C_HANDLING, C_WRITING, C_LINGERING, C_CLOSING };

/* After an answer that closes the connection, what the client still sends
 * is read and dropped for this long: closing with unread data makes the
 * kernel reset the connection, and the client could lose the answer (a
 * 413 sent while it is still uploading the body). */
#define LINGER_MS 2000

struct conn {
	struct pt_httpd *srv;
	struct pt_stream *s;
	http_parser parser;
	uv_timer_t timer;
	uint64_t id;
	char peer[80];
	enum conn_state state;
	struct pt_http_req *req; /* being read or handled */
	size_t header_bytes;
	size_t url_len;
	char url[PT_HTTP_PATH_MAX * 2];
	char hname[64];
	size_t hname_len;
	char *hvalue; /* the request field the value goes to */
	size_t hvalue_cap, hvalue_len;
	int in_value;
	int err_status; /* a limit was hit: answer this */
	int keepalive;
	char *pending; /* bytes after a complete request */
	size_t pending_len;
	char *wbuf; /* the response being written */
	struct conn *next, **prevp;
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
};

static void conn_close(struct conn *c);
static void conn_feed(struct conn *c, const char *data, size_t len);

static const char *status_text(int status)
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

/* --- timers -------------------------------------------------------------- */

static void on_timeout(uv_timer_t *t)
{
	struct conn *c = t->data;

	if (c->state == C_LINGERING) {
		conn_close(c);
		return;
	}
	if (c->state != C_READING)
		return;
	if (c->req) {
		/* Part of a request came, the rest did not: say so, then close. */
		struct pt_http_req *r = c->req;
		pt_log(PT_LOG_INFO, c->id, "request from %s timed out", c->peer);
		c->keepalive = 0;
		c->state = C_HANDLING;
		pt_http_error(r, 408, "timeout", "the request did not arrive in time");
		return;
	}
	conn_close(c);
}

static void arm(struct conn *c, uint64_t ms)
{
	uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/* --- parser callbacks ------------------------------------------------------ */

/* A client certificate that [tls] ca verified: a gateway or session host
 * (users present none).  The handshake already refused one that failed. */
static void peer_cert(struct conn *c)
{
	struct pt_tls *t = pt_tls_stream_engine(c->s);
	SSL *ssl = t ? pt_tls_ssl(t) : NULL;
	X509 *x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;

	if (!x || SSL_get_verify_result(ssl) != X509_V_OK)
		return;
	c->req->peer_verified = 1;
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, c->req->peer_cn,
				      sizeof(c->req->peer_cn)) < 0)
		snprintf(c->req->peer_cn, sizeof(c->req->peer_cn), "?");
	if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationalUnitName,
				      c->req->peer_ou, sizeof(c->req->peer_ou)) < 0)
		c->req->peer_ou[0] = '\0';
}

static int on_message_begin(http_parser *p)
{
	struct conn *c = p->data;

	c->req = calloc(1, sizeof(*c->req));
	if (!c->req)
		return 1;
	c->req->id = c->id;
	c->req->conn = c;
	c->req->start_ms = uv_now(c->srv->loop);
	snprintf(c->req->peer, sizeof(c->req->peer), "%s", c->peer);
	peer_cert(c);
	c->header_bytes = c->url_len = 0;
	c->hname_len = 0;
	c->hvalue = NULL;
	c->in_value = 0;
	arm(c, c->srv->lim.request_ms);
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (c->url_len + len >= sizeof(c->url)) {
		c->err_status = 414;
		return 1;
	}
	memcpy(c->url + c->url_len, at, len);
	c->url_len += len;
	c->url[c->url_len] = '\0';
	return 0;
}

static int count_header(struct conn *c, size_t len)
{
	c->header_bytes += len;
	if (c->header_bytes > PT_HTTP_HEADERS_MAX) {
		c->err_status = 431;
		return 1;
	}
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;

	if (count_header(c, len))
		return 1;
	if (c->in_value) {
		c->in_value = 0;
		c->hname_len = 0;
	}
	if (c->hname_len + len < sizeof(c->hname)) {
		memcpy(c->hname + c->hname_len, at, len);
		c->hname_len += len;
	} else {
		c->hname_len = sizeof(c->hname); /* too long to be one we want */
	}
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct pt_http_req *r = c->req;

	if (count_header(c, len))
		return 1;
	if (!c->in_value) {
		c->in_value = 1;
		c->hvalue = NULL;
		c->hvalue_len = 0;
		if (c->hname_len < sizeof(c->hname)) {
			c->hname[c->hname_len] = '\0';
			if (!strcasecmp(c->hname, "authorization")) {
				c->hvalue = r->authorization;
				c->hvalue_cap = sizeof(r->authorization);
			} else if (!strcasecmp(c->hname, "content-type")) {
				c->hvalue = r->content_type;
				c->hvalue_cap = sizeof(r->content_type);
			}
		}
	}
	if (c->hvalue) {
		if (c->hvalue_len + len >= c->hvalue_cap) {
			c->err_status = 431;
			return 1;
		}
		memcpy(c->hvalue + c->hvalue_len, at, len);
		c->hvalue_len += len;
		c->hvalue[c->hvalue_len] = '\0';
	}
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct conn *c = p->data;
	struct pt_http_req *r = c->req;
	struct http_parser_url u;

	if (p->content_length != ULLONG_MAX && p->content_length > PT_HTTP_BODY_MAX) {
		c->err_status = 413;
		return -1; /* 1 would mean "no body" to http-parser */
	}
	http_parser_url_init(&u);
	if (http_parser_parse_url(c->url, c->url_len, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_PATH))) {
		c->err_status = 400;
		return -1;
	}
	snprintf(r->path, sizeof(r->path), "%.*s", (int)u.field_data[UF_PATH].len,
		 c->url + u.field_data[UF_PATH].off);
	if (u.field_set & (1 << UF_QUERY))
		snprintf(r->query, sizeof(r->query), "%.*s", (int)u.field_data[UF_QUERY].len,
			 c->url + u.field_data[UF_QUERY].off);
	r->method = p->method;
	c->keepalive = http_should_keep_alive(p);
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct conn *c = p->data;
	struct pt_http_req *r = c->req;
	char *nb;

	if (r->body_len + len > PT_HTTP_BODY_MAX) {
		c->err_status = 413;
		return 1;
	}
	nb = realloc(r->body, r->body_len + len + 1);
	if (!nb) {
		c->err_status = 503;
		return 1;
	}
	r->body = nb;
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct conn *c = p->data;

	/* One request at a time: stop here, answer, then go on with what
	 * else arrived. */
	c->keepalive = http_should_keep_alive(p);
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* --- the connection --------------------------------------------------------- */

static void on_read(struct pt_stream *s, ssize_t nread, char *chunk);

static void dispatch(struct conn *c)
{
	struct pt_http_req *r = c->req;

	uv_timer_stop(&c->timer);
	pt_stream_read_stop(c->s);
	c->state = C_HANDLING;
	if (!r->body) {
		r->body = strdup("");
		if (!r->body) {
			pt_http_error(r, 503, "busy", "out of memory");
			return;
		}
	}
	c->srv->handler(r, c->srv->data);
}

/* Parse len bytes; stop at the end of a request and keep the rest. */
static void conn_feed(struct conn *c, const char *data, size_t len)
{
	size_t n;
	enum http_errno e;

	if (len == 0)
		return;
	n = http_parser_execute(&c->parser, &settings, data, len);
	e = HTTP_PARSER_ERRNO(&c->parser);
	if (e == HPE_PAUSED) {
		http_parser_pause(&c->parser, 0);
		if (n < len) {
			c->pending = malloc(len - n);
			if (c->pending) {
				memcpy(c->pending, data + n, len - n);
				c->pending_len = len - n;
			}
		}
		dispatch(c);
		return;
	}
	if (e != HPE_OK) {
		int status = c->err_status ? c->err_status : 400;
		c->keepalive = 0;
		if (!c->req) {
			/* Garbage before any request line: nothing to answer. */
			pt_log(PT_LOG_INFO, c->id, "%s: not HTTP (%s)", c->peer,
			       http_errno_name(e));
			conn_close(c);
			return;
		}
		pt_log(PT_LOG_INFO, c->id, "%s: bad request: %d (%s)", c->peer, status,
		       c->err_status ? "limit" : http_errno_description(e));
		pt_stream_read_stop(c->s);
		uv_timer_stop(&c->timer);
		c->state = C_HANDLING;
		pt_http_error(c->req, status, status == 400 ? "bad_request" : "too_large", "%s",
			      status == 413   ? "request body too large"
			      : status == 414 ? "URL too long"
			      : status == 431 ? "request headers too large"
					      : "malformed HTTP request");
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
		if (c->state == C_HANDLING)
			c->req->conn = NULL; /* the handler still owns it */
		else {
			free(c->req->body);
			free(c->req);
		}
		c->req = NULL;
	}
	c->state = C_CLOSING;
	uv_timer_stop(&c->timer);
	free(c->pending);
	c->pending = NULL;
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
	c->err_status = 0;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	arm(c, c->srv->lim.keepalive_ms);
	if (c->pending) {
		char *p = c->pending;
		size_t n = c->pending_len;
		c->pending = NULL;
		c->pending_len = 0;
		conn_feed(c, p, n);
		free(p);
		if (c->state != C_READING)
			return;
	}
	if (pt_stream_read_start(c->s, on_read) < 0)
		conn_close(c);
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

	free(req->body);
	if (!c) {
		free(req);
		return;
	}
	c->req = NULL;
	free(req);
	n = snprintf(NULL, 0, "HTTP/1.1 %d %s\r\n", status, status_text(status));
	size_t hlen = (size_t)n + 256 + (extra_headers ? strlen(extra_headers) : 0);
	c->wbuf = malloc(hlen + len);
	if (!c->wbuf) {
		conn_close(c);
		return;
	}
	n = snprintf(c->wbuf, hlen,
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		     "Cache-Control: no-store\r\nConnection: %s\r\n%s\r\n",
		     status, status_text(status), content_type ? content_type : "text/plain", len,
		     c->keepalive ? "keep-alive" : "close", extra_headers ? extra_headers : "");
	memcpy(c->wbuf + n, body, len);
	c->state = C_WRITING;
	rc = pt_stream_write(c->s, c->wbuf, (size_t)n + len, on_written);
	if (rc == PT_STREAM_DONE)
		after_response(c);
	else if (rc < 0)
		conn_close(c);
}

const char *pt_http_bearer(const struct pt_http_req *req)
{
	const char *a = req->authorization;

	if (strncasecmp(a, "Bearer ", 7))
		return NULL;
	a += 7;
	while (*a == ' ')
		a++;
	return *a ? a : NULL;
}

int pt_http_bearer_is(const struct pt_http_req *req, const char *secret)
{
	const char *tok = pt_http_bearer(req);
	size_t n;

	if (!tok || !secret || !*secret)
		return 0;
	n = strlen(secret);
	return strlen(tok) == n && CRYPTO_memcmp(tok, secret, n) == 0;
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

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

int pt_http_query(const struct pt_http_req *req, const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);
	const char *p = req->query;

	while (*p) {
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t)(end - p) : strlen(p);
		if (plen > nl && !strncmp(p, name, nl) && p[nl] == '=') {
			size_t o = 0;
			for (const char *q = p + nl + 1; q < p + plen && o + 1 < len; q++) {
				if (*q == '%' && q + 2 < p + plen + 1 && hexval(q[1]) >= 0 &&
				    hexval(q[2]) >= 0) {
					buf[o++] = (char)(hexval(q[1]) << 4 | hexval(q[2]));
					q += 2;
				} else {
					buf[o++] = *q == '+' ? ' ' : *q;
				}
			}
			buf[o] = '\0';
			return 0;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return -ENOENT;
}

static void on_connection(uv_stream_t *server, int status)
{
	struct pt_httpd *srv = server->data;
	struct pt_stream *plain, *tls;
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
	if (srv->nconns >= srv->lim.max_conns) {
		pt_log_warnx("too many connections (%d): refusing one", srv->nconns);
		pt_stream_close(plain, NULL);
		return;
	}
	c = calloc(1, sizeof(*c));
	tls = c ? pt_tls_stream_new(plain, srv->ctx, 1, NULL) : NULL;
	if (!tls) {
		free(c);
		pt_stream_close(plain, NULL);
		return;
	}
	c->srv = srv;
	c->s = tls;
	c->id = ++srv->next_id;
	tls->id = c->id;
	tls->data = c;
	/* The address without the port: throttling and ticket binding work
	 * per address. */
	pt_net_peer((uv_tcp_t *)pt_plain_uv(plain), c->peer, sizeof(c->peer), NULL, 0);
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
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

struct pt_httpd *pt_httpd_listen(uv_loop_t *loop, SSL_CTX *ctx, const char *addr,
				 const struct pt_httpd_limits *lim, pt_http_handler handler,
				 void *data)
{
	struct pt_httpd *srv = calloc(1, sizeof(*srv));
	int rc;

	if (!srv)
		return NULL;
	srv->loop = loop;
	srv->ctx = ctx;
	srv->lim = *lim;
	srv->handler = handler;
	srv->data = data;
	uv_tcp_init(loop, &srv->tcp);
	srv->tcp.data = srv;
	rc = pt_net_listen(&srv->tcp, addr, 511, on_connection);
	if (rc) {
		pt_log_warnx("listen on %s: %s", addr,
			     rc == -EINVAL ? "bad address" : uv_strerror(rc));
		uv_close((uv_handle_t *)&srv->tcp, free_owner);
		return NULL;
	}
	return srv;
}

void pt_httpd_close(struct pt_httpd *srv)
{
	while (srv->conns)
		conn_close(srv->conns);
	uv_close((uv_handle_t *)&srv->tcp, free_owner);
}
