/*
 * metrics_http.c - the /metrics listener, see include/portico/metrics.h.
 *
 * Plain HTTP for Prometheus on loopback: one request per connection, read
 * with httpd's request reader (its limits on the path, the headers and a
 * body), answered, closed.  A connection has PT_METRICS_HTTP_TIMEOUT_MS from
 * its accept to its close whatever it does (a slowloris, a client that does
 * not read), and a connection past PT_METRICS_HTTP_CONNS is closed as soon
 * as it is accepted, so neither a flood nor a stall reaches the daemon's
 * other work.
 */
#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/httpd.h"
#include "portico/log.h"
#include "portico/metrics.h"
#include "portico/net.h"

struct mconn {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_write_t wr;
	struct pt_metrics_http *h;
	struct mconn *next, **prevp;
	struct pt_http_reader *rd;
	char *out;
	int closing, closes;
	char in[2048];
};

struct pt_metrics_http {
	uv_loop_t *loop;
	uv_tcp_t tcp;
	struct pt_metrics *m;
	struct mconn *conns;
	int nconns;
	int closing, listening;
	uint64_t timeout_ms;
	char addr[128];
};

static void maybe_free_server(struct pt_metrics_http *h)
{
	if (h->closing && !h->listening && !h->conns)
		free(h);
}

static void on_conn_part_closed(uv_handle_t *hd)
{
	struct mconn *c = hd->data;
	struct pt_metrics_http *h = c->h;

	if (--c->closes > 0)
		return;
	pt_http_reader_free(c->rd);
	free(c->out);
	if ((*c->prevp = c->next))
		c->next->prevp = c->prevp;
	h->nconns--;
	free(c);
	maybe_free_server(h);
}

static void conn_close(struct mconn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	c->closes = 2;
	uv_close((uv_handle_t *)&c->timer, on_conn_part_closed);
	uv_close((uv_handle_t *)&c->tcp, on_conn_part_closed);
}

static void on_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static void on_written(uv_write_t *w, int status)
{
	conn_close(w->data);
}

static void answer(struct mconn *c, int status, const char *ctype, const char *body, size_t len,
		   const char *extra)
{
	int n = snprintf(NULL, 0,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n%s\r\n",
			 status, pt_http_status_text(status), ctype, len, extra ? extra : "");
	uv_buf_t buf;

	uv_read_stop((uv_stream_t *)&c->tcp);
	if (n < 0 || !(c->out = malloc((size_t)n + len + 1))) {
		conn_close(c);
		return;
	}
	snprintf(c->out, (size_t)n + 1,
		 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		 "Connection: close\r\n%s\r\n",
		 status, pt_http_status_text(status), ctype, len, extra ? extra : "");
	memcpy(c->out + n, body, len);
	buf = uv_buf_init(c->out, (unsigned)((size_t)n + len));
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
		conn_close(c);
}

static void answer_text(struct mconn *c, int status, const char *text, const char *extra)
{
	answer(c, status, "text/plain; charset=utf-8", text, strlen(text), extra);
}

static void serve(struct mconn *c, struct pt_http_req *req)
{
	char *text;
	size_t len = 0;

	if (strcmp(req->path, "/metrics") != 0) {
		answer_text(c, 404, "not found: the metrics are at /metrics\n", NULL);
	} else if (req->method != HTTP_GET || req->rdg) {
		answer_text(c, 405, "only GET\n", "Allow: GET\r\n");
	} else if (!(text = pt_metrics_render(c->h->m, &len))) {
		answer_text(c, 503, "out of memory\n", NULL);
	} else {
		answer(c, 200, PT_METRICS_CTYPE, text, len, NULL);
		free(text);
	}
	pt_http_req_free(req);
}

static void on_alloc(uv_handle_t *hd, size_t size, uv_buf_t *buf)
{
	struct mconn *c = hd->data;

	*buf = uv_buf_init(c->in, sizeof(c->in));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct mconn *c = s->data;
	size_t used = 0;

	if (nread == 0)
		return;
	if (nread < 0) {
		conn_close(c);
		return;
	}
	switch (pt_http_reader_feed(c->rd, buf->base, (size_t)nread, &used)) {
	case PT_HTTP_READ_MORE:
		return;
	case PT_HTTP_READ_REQUEST:
		serve(c, pt_http_reader_take(c->rd));
		return;
	case PT_HTTP_READ_ERROR:
		pt_http_req_free(pt_http_reader_take(c->rd));
		answer_text(c, pt_http_reader_status(c->rd), pt_http_reader_why(c->rd), NULL);
		return;
	case PT_HTTP_READ_GARBAGE:
		conn_close(c);
		return;
	}
}

static void on_accept(uv_stream_t *server, int status)
{
	struct pt_metrics_http *h = server->data;
	struct mconn *c;

	if (status < 0 || !(c = calloc(1, sizeof(*c))))
		return;
	c->h = h;
	uv_tcp_init(h->loop, &c->tcp);
	uv_timer_init(h->loop, &c->timer);
	c->tcp.data = c->timer.data = c;
	if ((c->next = h->conns))
		c->next->prevp = &c->next;
	c->prevp = &h->conns;
	h->conns = c;
	h->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	if (h->nconns > PT_METRICS_HTTP_CONNS) {
		/* Full: this one goes at once (a scraper retries next interval). */
		conn_close(c);
		return;
	}
	if (!(c->rd = pt_http_reader_new(NULL, NULL)) ||
	    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
		conn_close(c);
		return;
	}
	uv_timer_start(&c->timer, on_timeout, h->timeout_ms, 0);
}

static void on_listener_closed(uv_handle_t *hd)
{
	struct pt_metrics_http *h = hd->data;

	h->listening = 0;
	maybe_free_server(h);
}

struct pt_metrics_http *pt_metrics_http_listen(uv_loop_t *loop, const char *addr,
					       struct pt_metrics *m, char *err, size_t errlen)
{
	struct pt_metrics_http *h = calloc(1, sizeof(*h));
	int rc;

	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->loop = loop;
	h->m = m;
	h->timeout_ms = PT_METRICS_HTTP_TIMEOUT_MS;
	snprintf(h->addr, sizeof(h->addr), "%s", addr);
	uv_tcp_init(loop, &h->tcp);
	h->tcp.data = h;
	h->listening = 1;
	rc = pt_net_listen(&h->tcp, addr, 64, on_accept);
	if (rc < 0) {
		snprintf(err, errlen, "cannot listen for metrics on %s: %s", addr,
			 rc == -EINVAL ? "not an address:port" : uv_strerror(rc));
		h->closing = 1;
		uv_close((uv_handle_t *)&h->tcp, on_listener_closed);
		return NULL;
	}
	return h;
}

void pt_metrics_http_close(struct pt_metrics_http *h)
{
	if (!h || h->closing)
		return;
	h->closing = 1;
	uv_close((uv_handle_t *)&h->tcp, on_listener_closed);
	for (struct mconn *c = h->conns; c; c = c->next)
		conn_close(c);
}

void pt_metrics_http_timeout(struct pt_metrics_http *h, uint64_t ms)
{
	h->timeout_ms = ms ? ms : PT_METRICS_HTTP_TIMEOUT_MS;
}
