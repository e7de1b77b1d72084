/*
 * https.c - the gateway's HTTPS front ([gateway] https_listen): one TLS
 * listener that serves, by path, the portal's files (web_root at /,
 * noVNC's at /novnc/), the broker's user routes under /api/v1/
 * (https_api.c), noVNC's WebSocket at /ws/vnc and the RD Gateway at
 * /remoteDesktopGateway/ (docs/gateway.md, "The HTTPS front").
 *
 * A connection is a gw_conn of the core (conn.c), so it is admitted and
 * counted like a VNC or RDP one: it stays pending (max_pending,
 * max_pending_per_addr) until it carries a session, and must send each
 * request within handshake_timeout.  Requests are read with libportico's
 * reader (http-parser) and answered one at a time.
 */
#include <errno.h>
#include <http_parser.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway.h"
#include "portico/buf.h"
#include "portico/log.h"
#include "portico/ticket.h"
#include "portico/tls.h"
#include "portico/ws.h"

/* Bytes read ahead of an answer that a client may have in flight. */
#define IN_MAX (256 * 1024)

/* On every answer.  The portal's pages have no inline script or style,
 * so the policy needs no 'unsafe-inline'; connect-src 'self' covers the
 * wss:// of the same host. */
static const char security_headers[] =
	"Strict-Transport-Security: max-age=31536000\r\n"
	"X-Frame-Options: DENY\r\n"
	"X-Content-Type-Options: nosniff\r\n"
	"Referrer-Policy: no-referrer\r\n"
	"Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "
	"img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; "
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'\r\n";

static struct gw_https *https_of(struct gw_conn *c)
{
	return gw_container_of(c, struct gw_https, c);
}

static void process(struct gw_https *h);
static void on_read(struct pt_stream *s, ssize_t n, char *chunk);

static void https_closed(struct gw_conn *c)
{
	struct gw_https *h = https_of(c);

	pt_http_req_free(h->req);
	pt_http_reader_free(h->rd);
	free(h->in);
	free(h->out);
	free(h);
}

/* The answer went out: the next request, or the end. */
static void answered(struct gw_https *h)
{
	free(h->out);
	h->out = NULL;
	if (h->close_after) {
		gw_conn_close(&h->c, NULL);
		return;
	}
	pt_http_reader_next(h->rd);
	gw_conn_timeout(&h->c, (uint64_t)h->c.g->conf->gateway.handshake_timeout_ms);
	process(h);
	if (!h->c.closing && !h->req && pt_stream_read_start(h->c.client, on_read) != 0)
		gw_conn_close(&h->c, "cannot read");
}

static void on_written(struct pt_stream *s, int status)
{
	struct gw_https *h = https_of(s->data);

	if (status < 0) {
		gw_conn_close(&h->c, NULL);
		return;
	}
	answered(h);
}

void gw_https_respond(struct gw_https *h, int status, const char *ctype, const char *body,
		      size_t len, const char *extra)
{
	struct pt_http_req *r = h->req;
	int head = r && r->method == HTTP_HEAD;
	size_t cap = 512 + sizeof(security_headers) + (extra ? strlen(extra) : 0) + len;
	int n, rc;

	h->req = NULL;
	pt_http_req_free(r);
	if (h->c.closing)
		return;
	if (!(h->out = malloc(cap))) {
		gw_conn_close(&h->c, "out of memory");
		return;
	}
	n = snprintf(h->out, cap, "HTTP/1.1 %d %s\r\n%s%s%s%sContent-Length: %zu\r\n%s\r\n", status,
		     pt_http_status_text(status), security_headers, ctype ? "Content-Type: " : "",
		     ctype ? ctype : "", ctype ? "\r\n" : "", len,
		     h->close_after ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= cap - len) {
		gw_conn_close(&h->c, "answer too long");
		return;
	}
	if (extra) {
		/* Before the blank line that ends the headers. */
		size_t el = strlen(extra);
		memmove(h->out + n - 2 + el, h->out + n - 2, 2);
		memcpy(h->out + n - 2, extra, el);
		n += (int)el;
	}
	if (!head && len)
		memcpy(h->out + n, body, len);
	rc = pt_stream_write(h->c.client, h->out, (size_t)n + (head ? 0 : len), on_written);
	if (rc == PT_STREAM_DONE)
		answered(h);
	else if (rc < 0)
		gw_conn_close(&h->c, NULL);
}

void gw_https_error(struct gw_https *h, int status, const char *code, const char *msg,
		    const char *extra)
{
	json_t *doc = json_pack("{s:s,s:s}", "error", code, "message", msg);
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	if (!text) {
		h->close_after = 1;
		gw_https_respond(h, 503, "text/plain", "out of memory\n", 14, NULL);
		return;
	}
	gw_https_respond(h, status, "application/json", text, strlen(text),
			 extra ? extra : "Cache-Control: no-store\r\n");
	free(text);
}

int gw_https_cookie(const struct pt_http_req *r, const char *name, char *buf, size_t len)
{
	const char *p = pt_http_header(r, "cookie");
	size_t nl = strlen(name);

	while (p && *p) {
		size_t vl;

		p += strspn(p, " \t");
		vl = strcspn(p, ";");
		if (vl > nl && !strncmp(p, name, nl) && p[nl] == '=') {
			if (vl - nl - 1 >= len)
				return -ENOENT;
			memcpy(buf, p + nl + 1, vl - nl - 1);
			buf[vl - nl - 1] = '\0';
			return 0;
		}
		p += vl;
		if (*p == ';')
			p++;
	}
	return -ENOENT;
}

/* A short answer in plain text. */
void gw_https_text(struct gw_https *h, int status, const char *msg, const char *extra)
{
	gw_https_respond(h, status, "text/plain; charset=utf-8", msg, strlen(msg), extra);
}

/* --- the portal's files ---------------------------------------------------- */

/* The path percent-decoded; -1 for a bad escape or a NUL. */
static int decode_path(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in; in++) {
		int ch = (unsigned char)*in;
		if (ch == '%') {
			int hi = pt_http_hexval(in[1]), lo = hi < 0 ? -1 : pt_http_hexval(in[2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return -1;
			ch = hi << 4 | lo;
			in += 2;
		}
		if (o + 1 >= len)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return 0;
}

/* A page gets the CSRF cookie the portal's script sends back as
 * X-CSRF-Token (https_api.c), unless the browser has one. */
static void csrf_cookie(const struct pt_http_req *r, char *extra, size_t len)
{
	unsigned char rnd[16];
	char have[80], hex[33];

	if (gw_https_cookie(r, "portico_csrf", have, sizeof(have)) == 0 && strlen(have) == 32)
		return;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return;
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	snprintf(extra + strlen(extra), len - strlen(extra),
		 "Set-Cookie: portico_csrf=%s; Path=/; Secure; SameSite=Strict\r\n", hex);
}

static void serve_file(struct gw_https *h)
{
	struct pt_http_req *r = h->req;
	char path[PT_HTTP_PATH_MAX + 16], extra[256] = "Cache-Control: no-cache\r\n";
	const struct gw_file *f;
	size_t n;

	if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
		gw_https_text(h, 405, "method not allowed\n", "Allow: GET, HEAD\r\n");
		return;
	}
	if (decode_path(r->path, path, sizeof(path) - 16)) {
		gw_https_text(h, 400, "bad path\n", NULL);
		return;
	}
	n = strlen(path);
	if (path[n - 1] == '/')
		snprintf(path + n, sizeof(path) - n, "index.html");
	f = gw_files_find(&h->c.g->files, path);
	if (!f) {
		gw_https_text(h, 404, "not found\n", NULL);
		return;
	}
	if (!strncmp(f->ctype, "text/html", 9))
		csrf_cookie(r, extra, sizeof(extra));
	gw_https_respond(h, 200, f->ctype, f->data, f->len, extra);
}

/* --- requests ----------------------------------------------------------------- */

static int path_is(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

/* A token in a comma-separated header value (Connection: keep-alive, Upgrade). */
static int has_token(const char *v, const char *token)
{
	size_t n = strlen(token);

	while (v && *v) {
		v += strspn(v, " \t,");
		size_t len = strcspn(v, ",");
		size_t t = len;
		while (t && (v[t - 1] == ' ' || v[t - 1] == '\t'))
			t--;
		if (t == n && !strncasecmp(v, token, n))
			return 1;
		v += len;
	}
	return 0;
}

/* The WebSocket's 101 went out: the connection becomes a VNC one (the
 * core's gw_vnc_proto) over the WebSocket, with the ticket to redeem. */
struct pt_stream *gw_https_take_ws(struct gw_https *h)
{
	struct pt_stream *inner = gw_conn_take_client(&h->c);
	struct pt_stream *ws = inner ? pt_ws_stream_new(inner, 1, h->in, h->in_len) : NULL;

	if (!ws) {
		if (inner)
			pt_stream_close(inner, NULL);
		gw_conn_close(&h->c, "out of memory");
		return NULL;
	}
	/* Binary frames: noVNC's RFB (its largest client message is small) and
	 * RD Gateway packets (at most 65545 bytes). */
	pt_ws_stream_limits(ws, 1 << 20, 1);
	return ws;
}

static void ws_vnc_switch(struct gw_https *h)
{
	struct gw *g = h->c.g;
	struct pt_stream *ws;
	struct gw_conn *v;
	char ticket[64] = "", peer[sizeof(h->c.peer)], source[sizeof(h->c.source)];

	pt_http_query(h->req, "ticket", ticket, sizeof(ticket));
	snprintf(peer, sizeof(peer), "%s", h->c.peer);
	snprintf(source, sizeof(source), "%s", h->c.source);
	if (!(ws = gw_https_take_ws(h)))
		return;
	gw_conn_close(&h->c, NULL); /* no longer pending as an HTTPS connection */
	if ((v = gw_conn_open(g, &gw_vnc_proto, ws, peer, source)) &&
	    gw_vnc_enter(v, GW_VNC_AT_WS, ticket) < 0)
		gw_conn_close(v, "bad ticket");
	explicit_bzero(ticket, sizeof(ticket));
}

static void on_101_written(struct pt_stream *s, int status)
{
	struct gw_https *h = https_of(s->data);
	void (*then)(struct gw_https *) = h->then;

	free(h->out);
	h->out = NULL;
	if (status < 0 || h->c.closing) {
		gw_conn_close(&h->c, NULL);
		return;
	}
	then(h);
}

void gw_https_switch(struct gw_https *h, const char *accept, void (*then)(struct gw_https *h))
{
	int n, rc;

	h->close_after = 1;
	n = asprintf(&h->out,
		     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
		     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
		     accept, security_headers);
	if (n < 0) {
		h->out = NULL;
		gw_conn_close(&h->c, "out of memory");
		return;
	}
	h->then = then;
	rc = pt_stream_write(h->c.client, h->out, (size_t)n, on_101_written);
	if (rc == PT_STREAM_DONE) {
		free(h->out);
		h->out = NULL;
		then(h);
	} else if (rc < 0) {
		gw_conn_close(&h->c, NULL);
	}
}

int gw_https_is_upgrade(const struct pt_http_req *r)
{
	return has_token(pt_http_header(r, "upgrade"), "websocket") &&
	       has_token(pt_http_header(r, "connection"), "upgrade");
}

/* GET /ws/vnc?ticket=T with an Upgrade to WebSocket (RFC 6455 4.2). */
static void ws_vnc(struct gw_https *h)
{
	struct pt_http_req *r = h->req;
	const char *key = pt_http_header(r, "sec-websocket-key");
	const char *origin = pt_http_header(r, "origin"), *host = pt_http_header(r, "host");
	const char *ver = pt_http_header(r, "sec-websocket-version");
	char accept[29], ticket[64];

	h->close_after = 1; /* whatever is answered, the connection is not HTTP's after it */
	if (r->method != HTTP_GET || !r->upgrade || !gw_https_is_upgrade(r) || !key ||
	    pt_ws_accept(key, accept)) {
		gw_https_text(h, 400, "a WebSocket handshake is expected here\n", NULL);
		return;
	}
	if (!ver || strcmp(ver, "13")) {
		gw_https_text(h, 426, "WebSocket version 13 is expected\n",
			      "Sec-WebSocket-Version: 13\r\n");
		return;
	}
	/* A page of another site may open a WebSocket here with the user's
	 * cookies: only this origin's (the ticket is needed anyway). */
	if (origin && (!host || strncmp(origin, "https://", 8) || strcmp(origin + 8, host))) {
		pt_log(PT_LOG_INFO, h->c.id,
		       "https %s: /ws/vnc from another origin (%.100s): refused", h->c.peer,
		       origin);
		gw_https_text(h, 403, "this WebSocket is for the portal's own pages\n", NULL);
		return;
	}
	if (pt_http_query(r, "ticket", ticket, sizeof(ticket)) || !pt_ticket_valid(ticket)) {
		gw_https_text(h, 400, "no ticket: open the desktop from the portal\n", NULL);
		return;
	}
	explicit_bzero(ticket, sizeof(ticket));
	gw_https_switch(h, accept, ws_vnc_switch);
}

static void dispatch(struct gw_https *h)
{
	struct pt_http_req *r = h->req;

	h->browser = pt_http_header(r, "origin") || pt_http_header(r, "cookie");
	if (!pt_http_reader_keepalive(h->rd))
		h->close_after = 1;
	if (path_is(r->path, "/api/v1")) {
		gw_https_api(h);
		return;
	}
	if (!strcmp(r->path, "/ws/vnc")) {
		ws_vnc(h);
		return;
	}
	if (path_is(r->path, "/remoteDesktopGateway")) {
		gw_https_rdg(h);
		return;
	}
	if (r->upgrade || r->rdg) {
		/* Not a path that takes another protocol: answered, then closed
		 * (the bytes after it are not HTTP). */
		h->close_after = 1;
		gw_https_text(h, 404, "not found\n", NULL);
		return;
	}
	serve_file(h);
}

static void bad_request(struct gw_https *h)
{
	int status = pt_http_reader_status(h->rd);
	char msg[128];
	int n;

	pt_log(PT_LOG_INFO, h->c.id, "https %s: bad request: %d (%s)", h->c.peer, status,
	       pt_http_reader_why(h->rd));
	h->req = pt_http_reader_take(h->rd);
	h->close_after = 1;
	n = snprintf(msg, sizeof(msg), "%s\n", pt_http_reader_why(h->rd));
	gw_https_respond(h, status, "text/plain; charset=utf-8", msg, (size_t)n, NULL);
}

/* Feed what was read to the reader, up to one complete request. */
static void process(struct gw_https *h)
{
	size_t used;

	while (!h->c.closing && !h->req && !h->out && h->in_len) {
		enum pt_http_read res = pt_http_reader_feed(h->rd, h->in, h->in_len, &used);

		memmove(h->in, h->in + used, h->in_len - used);
		h->in_len -= used;
		switch (res) {
		case PT_HTTP_READ_MORE:
			break;
		case PT_HTTP_READ_REQUEST:
			h->req = pt_http_reader_take(h->rd);
			pt_stream_read_stop(h->c.client);
			dispatch(h);
			return;
		case PT_HTTP_READ_GARBAGE:
			gw_conn_close(&h->c, "not HTTP");
			return;
		case PT_HTTP_READ_ERROR:
			pt_stream_read_stop(h->c.client);
			bad_request(h);
			return;
		}
	}
}

static void on_read(struct pt_stream *s, ssize_t n, char *chunk)
{
	struct gw_https *h = https_of(s->data);
	char *nb;

	if (n < 0) {
		struct pt_tls *t = pt_tls_stream_engine(s);
		gw_conn_close(&h->c, n == UV_EOF || n == UV_ECONNRESET ? NULL
				     : t			       ? pt_tls_last_error(t)
								       : uv_strerror((int)n));
		return;
	}
	if (h->in_len + (size_t)n > IN_MAX || !(nb = realloc(h->in, h->in_len + (size_t)n))) {
		pt_chunk_put(chunk);
		gw_conn_close(&h->c, "too much sent ahead of the answers");
		return;
	}
	h->in = nb;
	memcpy(h->in + h->in_len, chunk, (size_t)n);
	h->in_len += (size_t)n;
	pt_chunk_put(chunk);
	process(h);
}

/* A request's first byte. */
static void on_begin(struct pt_http_req *r, void *owner)
{
	struct gw_https *h = owner;

	r->id = h->c.id;
	r->start_ms = uv_now(h->c.g->loop);
	snprintf(r->peer, sizeof(r->peer), "%s", h->c.peer);
}

static void https_start(struct gw_conn *c)
{
	struct gw_https *h = https_of(c);
	struct pt_stream *t;

	if (!(h->rd = pt_http_reader_new(on_begin, h)) ||
	    !(t = pt_tls_stream_new(c->client, c->g->https_tls, 1, NULL))) {
		gw_conn_close(c, "out of memory");
		return;
	}
	pt_http_reader_rdg(h->rd, 1);
	t->data = c;
	t->id = c->id;
	c->client = t;
	if (pt_stream_read_start(t, on_read) != 0)
		gw_conn_close(c, "cannot read");
}

const struct gw_conn_proto gw_https_proto = {
	.name = "https",
	.size = sizeof(struct gw_https),
	.start = https_start,
	.closed = https_closed,
};

int gw_https_listen(struct gw *g)
{
	return gw_conn_listen(g, &g->https, g->conf->gateway.https_listen, &gw_https_proto);
}
