/*
 * rdg_tunnel.c - an RD Gateway tunnel (gateway.h, "the RD Gateway"): the
 * glue between the protocol core (rdg.h, rdg_proto.c) and the sockets,
 * and from the tunnel to the session's backend.  The HTTP side (rdg.c)
 * makes a tunnel over the client's connection(s) and hands them here.
 *
 * A tunnel is a connection of the core (conn.c, proto "rdg") whose client
 * stream is the tunnel itself: a pt_stream that reads the payload of the
 * client's DATA packets and writes the backend's bytes as DATA packets.
 * So once the channel is open, the core's relay carries it like any other
 * session (idle timeout, input reports, connect and disconnect to the
 * broker).  Under it are the client's transports: one WebSocket, or the
 * legacy pair (the OUT connection's TLS for what goes to the client, the
 * IN connection's chunked body for what comes from it).
 *
 * Authentication is the PAA cookie inside the tunnel, a one-time ticket
 * redeemed at the broker; the channel's target must be the backend that
 * ticket was issued for (never an open proxy).
 *
 * Past 600 lines on purpose: the output queue, the input, the core's
 * callbacks and the stream the relay sees are one object's four faces,
 * each reaching into the others' state; the HTTP side is apart (rdg.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway.h"
#include "portico/buf.h"
#include "portico/log.h"
#include "portico/net.h"
#include "portico/ws.h"
#include "rdg.h"

#define OUT_MAX (8u << 20) /* bytes queued for a client that does not read */
#define QMAX	8	   /* chunks of payload waiting for the relay */

struct rdg {
	struct gw_conn conn; /* first: the core's */
	struct pt_stream s;  /* the tunnel as the relay's client side */
	struct gw_rdg_tun tun;
	struct pt_stream *out; /* the client's: where packets go (a WebSocket, or the */
	struct pt_stream *in;  /* OUT connection's TLS) and where they come from */
	int ws;
	char conn_id[72];		     /* RDG-Connection-Id (legacy pairing) */
	struct rdg *wait_next, **wait_prevp; /* waiting for its IN connection */
	/* the IN body: chunked (FreeRDP) or as it comes (mstsc) */
	int chunked;
	struct gw_unchunk unchunk;
	/* output: the write in flight, and what waits for it; the buffer of
	 * the last write is kept for the next queue (the relay's every chunk
	 * passes here) */
	char *flight, *pend;
	size_t pend_len, pend_cap, flight_cap;
	pt_stream_write_cb wcb; /* the relay's write, done when the output drains */
	int end_after_flush;	/* the tunnel ended: close once its output is out */
	/* input: payload waiting for the relay's reads */
	pt_stream_read_cb rcb;
	int reading;
	struct {
		char *chunk;
		size_t n;
	} q[QMAX];
	size_t qn;
	int eof;    /* an end to read once the queue is empty */
	int in_eof; /* the transport ended */
	/* closing the stream: the transports first */
	pt_stream_close_cb close_cb;
	int transports;
	int no_token;	      /* came without a PAA token (NTLM) */
	uv_timer_t keepalive; /* [gateway] rdg_keepalive */
	uint64_t last_out_ms; /* when the client was last sent anything */
	char backend_host[256];
	uint16_t backend_port;
};

static struct rdg *rdg_of_conn(struct gw_conn *c)
{
	return gw_container_of(c, struct rdg, conn);
}

static struct rdg *rdg_of_stream(struct pt_stream *s)
{
	return gw_container_of(s, struct rdg, s);
}

static struct rdg *rdg_of_tun(struct gw_rdg_tun *t)
{
	return gw_container_of(t, struct rdg, tun);
}

static void pump(struct rdg *r);
static void deliver(struct rdg *r);

/* --- output: packets for the client ------------------------------------------------- */

static void drained(struct rdg *r)
{
	pt_stream_write_cb cb = r->wcb;

	if (cb) {
		r->wcb = NULL;
		cb(&r->s, 0);
		return;
	}
	if (r->end_after_flush && !r->conn.relay) {
		r->end_after_flush = 0;
		gw_conn_close(&r->conn, r->tun.why[0] ? r->tun.why : NULL);
	}
}

static void out_flush(struct rdg *r);

/* A write is done: its buffer takes the next queue, unless one is being
 * filled already. */
static void flight_done(struct rdg *r)
{
	if (!r->pend) {
		r->pend = r->flight;
		r->pend_cap = r->flight_cap;
		r->pend_len = 0;
	} else {
		free(r->flight);
	}
	r->flight = NULL;
}

static void on_out_written(struct pt_stream *s, int status)
{
	struct rdg *r = s->data;

	flight_done(r);
	if (status < 0) {
		gw_conn_close(&r->conn, NULL);
		return;
	}
	out_flush(r);
}

/* What the core queued goes out, one write at a time. */
static void out_flush(struct rdg *r)
{
	while (!r->flight && r->pend_len && r->out) {
		size_t n = r->pend_len;
		int rc;

		r->flight = r->pend;
		r->flight_cap = r->pend_cap;
		r->pend = NULL;
		r->pend_len = r->pend_cap = 0;
		r->last_out_ms = uv_now(r->conn.g->loop);
		rc = pt_stream_write(r->out, r->flight, n, on_out_written);
		if (rc == 0)
			return;
		flight_done(r);
		if (rc < 0) {
			gw_conn_close(&r->conn, NULL);
			return;
		}
	}
	if (!r->flight && !r->pend_len)
		drained(r);
}

static int queue_out(struct rdg *r, const void *p, size_t n)
{
	if (r->pend_len + n > OUT_MAX)
		return -ENOBUFS;
	if (r->pend_len + n > r->pend_cap) {
		size_t cap = r->pend_cap ? r->pend_cap : 4096;
		char *nb;
		while (cap < r->pend_len + n)
			cap *= 2;
		if (!(nb = realloc(r->pend, cap)))
			return -ENOMEM;
		r->pend = nb;
		r->pend_cap = cap;
	}
	memcpy(r->pend + r->pend_len, p, n);
	r->pend_len += n;
	return 0;
}

/* --- the core's callbacks ----------------------------------------------------------- */

static int op_send(struct gw_rdg_tun *t, const uint8_t *p, size_t n)
{
	return queue_out(rdg_of_tun(t), p, n);
}

/* Payload for the backend: kept for the relay, joined into as few chunks
 * as fit. */
static int op_data(struct gw_rdg_tun *t, const uint8_t *p, size_t n)
{
	struct rdg *r = rdg_of_tun(t);

	while (n) {
		size_t room = r->qn ? PT_CHUNK_SIZE - r->q[r->qn - 1].n : 0, k;
		if (!room) {
			if (r->qn == QMAX || !(r->q[r->qn].chunk = pt_chunk_get()))
				return -ENOBUFS;
			r->q[r->qn++].n = 0;
			room = PT_CHUNK_SIZE;
		}
		k = n < room ? n : room;
		memcpy(r->q[r->qn - 1].chunk + r->q[r->qn - 1].n, p, k);
		r->q[r->qn - 1].n += k;
		p += k;
		n -= k;
	}
	return 0;
}

static void settle(struct rdg *r);

static void on_redeemed(void *arg, int rc, struct pt_api_resp *resp, const char *err)
{
	struct rdg *r = rdg_of_conn(arg);
	json_t *j = resp ? resp->json : NULL;
	const char *backend, *user, *colon;
	char msg[300];
	uint32_t st = 0;
	const char *say = NULL;

	if (rc) {
		pt_log_warnx("broker unreachable: %s", err);
		gw_metrics_refused("broker_unreachable");
		st = E_PROXY_INTERNALERROR;
		say = "The service is unavailable: try again later.";
	} else if (resp->status == 401 || resp->status == 403) {
		st = E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED;
		gw_metrics_refused("bad_ticket");
		say = "Your access token was refused (unknown, used or expired): open the "
		      "desktop's .rdp file again from the Portico portal, or run 'portico connect "
		      "NAME' again.";
	} else if (resp->status != 200) {
		st = E_PROXY_INTERNALERROR;
		say = pt_api_message(resp, msg, sizeof(msg));
	}
	backend = json_string_value(json_object_get(j, "backend"));
	user = json_string_value(json_object_get(j, "user"));
	colon = backend ? strrchr(backend, ':') : NULL;
	if (!st && (!backend || !colon || colon - backend >= (long)sizeof(r->backend_host) ||
		    !json_is_integer(json_object_get(j, "session_id")) ||
		    strcmp(json_string_value(json_object_get(j, "protocol")) ?: "", "rdp"))) {
		st = E_PROXY_INTERNALERROR;
		say = "This ticket is not for an RDP desktop.";
	}
	if (st) {
		pt_log(PT_LOG_INFO, r->conn.id, "rdg %s: refused: %s", r->conn.peer, say);
		gw_rdg_tun_authenticated(&r->tun, st, say);
		settle(r);
		return;
	}
	snprintf(r->conn.backend_addr, sizeof(r->conn.backend_addr), "%s", backend);
	/* host:port, [v6]:port */
	snprintf(r->backend_host, sizeof(r->backend_host), "%.*s", (int)(colon - backend), backend);
	if (r->backend_host[0] == '[') {
		size_t n = strlen(r->backend_host);
		memmove(r->backend_host, r->backend_host + 1, n);
		if (n >= 2 && r->backend_host[n - 2] == ']')
			r->backend_host[n - 2] = '\0';
	}
	r->backend_port = (uint16_t)atoi(colon + 1);
	if (user)
		snprintf(r->conn.user, sizeof(r->conn.user), "%s", user);
	r->conn.session = json_integer_value(json_object_get(j, "session_id"));
	gw_rdg_tun_authenticated(&r->tun, 0, NULL);
	settle(r);
}

static void op_authenticate(struct gw_rdg_tun *t, const char *cookie)
{
	struct rdg *r = rdg_of_tun(t);
	json_t *body;

	if (!cookie || r->no_token) {
		pt_log(PT_LOG_INFO, r->conn.id,
		       "rdg %s: a client without a token: told to take "
		       "the .rdp file",
		       r->conn.peer);
		gw_rdg_tun_authenticated(t, E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED,
					 GW_RDG_NO_TOKEN_MESSAGE);
		return;
	}
	snprintf(r->conn.user, sizeof(r->conn.user), "ticket");
	body = json_pack("{s:s,s:s}", "ticket", cookie, "client_addr", r->conn.peer);
	if (gw_conn_call(&r->conn, "/api/v1/gateway/redeem", body, on_redeemed) != 0)
		gw_rdg_tun_authenticated(t, E_PROXY_INTERNALERROR,
					 "The service is unavailable: try again later.");
}

static void on_backend_connected(uv_connect_t *req, int status)
{
	struct rdg *r = req->data;

	free(req);
	if (r->conn.closing)
		return;
	if (status < 0) {
		pt_log(PT_LOG_INFO, r->conn.id, "rdg %s user %s: cannot connect to %s: %s",
		       r->conn.peer, r->conn.user, r->conn.backend_addr, uv_strerror(status));
		gw_rdg_tun_opened(&r->tun, E_PROXY_TS_CONNECTFAILED);
		settle(r);
		return;
	}
	gw_rdg_tun_opened(&r->tun, 0);
	out_flush(r);
	if (r->conn.closing || gw_rdg_tun_done(&r->tun)) {
		settle(r);
		return;
	}
	/* The relay reads the tunnel from here on (read_start below). */
	pt_stream_read_stop(r->in);
	gw_conn_relay(&r->conn, 0);
}

/* The target the client names must be the one its ticket was for. */
static void op_open(struct gw_rdg_tun *t, const char *host, uint16_t port)
{
	struct rdg *r = rdg_of_tun(t);
	struct sockaddr_storage ss;
	uv_connect_t *req;
	char name[GW_RDG_HOST_MAX + 1], *colon;

	/* mstsc may write the port into the name too (docs/rdg.md): the same
	 * port there is the same target. */
	snprintf(name, sizeof(name), "%s", host);
	if ((colon = strrchr(name, ':')) && strchr(name, ':') == colon &&
	    strtoul(colon + 1, NULL, 10) == port &&
	    strspn(colon + 1, "0123456789") == strlen(colon + 1))
		*colon = '\0';
	if (port != r->backend_port || strcasecmp(name, r->backend_host)) {
		pt_log_warnx("rdg %s user %s: a channel to %s:%u refused: the ticket is for %s",
			     r->conn.peer, r->conn.user, host, port, r->conn.backend_addr);
		gw_rdg_tun_opened(t, E_PROXY_RAP_ACCESSDENIED);
		return;
	}
	if (pt_net_parse_addr(r->conn.backend_addr, 3389, &ss) != 0 ||
	    !(req = calloc(1, sizeof(*req))) ||
	    !(r->conn.backend = pt_plain_new(r->conn.g->loop, UV_TCP))) {
		pt_log_warnx("rdg %s user %s: cannot connect to %s (not a numeric address, or "
			     "out of memory)",
			     r->conn.peer, r->conn.user, r->conn.backend_addr);
		gw_rdg_tun_opened(t, E_PROXY_TS_CONNECTFAILED);
		return;
	}
	r->conn.backend->data = &r->conn;
	r->conn.backend->id = r->conn.id;
	req->data = r;
	uv_tcp_nodelay((uv_tcp_t *)pt_plain_uv(r->conn.backend), 1);
	if (uv_tcp_connect(req, (uv_tcp_t *)pt_plain_uv(r->conn.backend), (struct sockaddr *)&ss,
			   on_backend_connected) < 0) {
		free(req);
		gw_rdg_tun_opened(t, E_PROXY_TS_CONNECTFAILED);
	}
}

static const struct gw_rdg_ops ops = {
	.send = op_send,
	.authenticate = op_authenticate,
	.open = op_open,
	.data = op_data,
};

/* After every call into the core: its output goes, and its end is acted on. */
static void settle(struct rdg *r)
{
	if (gw_rdg_tun_done(&r->tun)) {
		if (r->conn.relay)
			r->eof = 1; /* the relay reads the end, then closes */
		else
			r->end_after_flush = 1;
	}
	out_flush(r);
	if (r->conn.relay)
		deliver(r);
}

/* --- input: the client's packets ---------------------------------------------------- */

static int feed(struct rdg *r, const char *p, size_t n)
{
	int rc = gw_rdg_tun_feed(&r->tun, (const uint8_t *)p, n);

	if (rc < 0 && rc != -EPIPE && !gw_rdg_tun_done(&r->tun))
		gw_rdg_tun_close(&r->tun, E_PROXY_INTERNALERROR);
	return rc;
}

static int feed_cb(void *arg, const char *p, size_t n)
{
	return feed(arg, p, n);
}

static void take_in(struct rdg *r, const char *p, size_t n)
{
	int rc = r->chunked ? gw_unchunk(&r->unchunk, p, n, feed_cb, r) : feed(r, p, n);

	if (rc == -EPROTO && r->chunked && !r->tun.why[0])
		snprintf(r->tun.why, sizeof(r->tun.why), "a malformed chunk on RDG_IN_DATA");
	if (rc == 1 || (rc < 0 && !gw_rdg_tun_done(&r->tun)))
		gw_rdg_tun_close(&r->tun, rc == 1 ? 0 : E_PROXY_INTERNALERROR);
	settle(r);
}

static void on_in_read(struct pt_stream *s, ssize_t n, char *chunk)
{
	struct rdg *r = s->data;

	if (n < 0) {
		r->in_eof = 1;
		pt_stream_read_stop(s);
		if (r->conn.relay) {
			r->eof = 1;
			deliver(r);
		} else {
			gw_conn_close(&r->conn, r->tun.why[0] ? r->tun.why : "the client left");
		}
		return;
	}
	take_in(r, chunk, (size_t)n);
	pt_chunk_put(chunk);
	pump(r);
}

/* Read the client while nothing waits for the relay. */
static void pump(struct rdg *r)
{
	if (!r->in || r->in_eof || r->conn.closing)
		return;
	if (r->qn || (r->conn.relay && !r->reading))
		pt_stream_read_stop(r->in);
	else if (pt_stream_read_start(r->in, on_in_read) < 0)
		gw_conn_close(&r->conn, "cannot read");
}

/* Payload to the relay, while it reads. */
static void deliver(struct rdg *r)
{
	while (r->reading && r->rcb && r->qn) {
		char *chunk = r->q[0].chunk;
		size_t n = r->q[0].n;

		memmove(&r->q[0], &r->q[1], (r->qn - 1) * sizeof(r->q[0]));
		r->qn--;
		r->rcb(&r->s, (ssize_t)n, chunk);
	}
	if (r->reading && r->rcb && !r->qn && r->eof) {
		r->eof = 0;
		r->rcb(&r->s, UV_EOF, NULL);
		return;
	}
	pump(r);
}

/* --- the tunnel as a stream (the relay's client side) ------------------------------- */

static int s_read_start(struct pt_stream *s, pt_stream_read_cb cb)
{
	struct rdg *r = rdg_of_stream(s);

	r->rcb = cb;
	r->reading = 1;
	deliver(r);
	return 0;
}

static int s_read_stop(struct pt_stream *s)
{
	struct rdg *r = rdg_of_stream(s);

	r->reading = 0;
	if (r->in && !r->in_eof)
		pt_stream_read_stop(r->in);
	return 0;
}

static int s_write(struct pt_stream *s, const char *data, size_t len, pt_stream_write_cb cb)
{
	struct rdg *r = rdg_of_stream(s);
	int rc = gw_rdg_tun_send_data(&r->tun, (const uint8_t *)data, len);

	if (rc < 0)
		return rc == -ENOTCONN ? UV_EPIPE : rc;
	out_flush(r);
	if (!r->flight && !r->pend_len)
		return PT_STREAM_DONE;
	r->wcb = cb;
	return 0;
}

/* The backend ended: the channel is closed (CLOSE_CHANNEL); the client's
 * side ends when it answers or leaves. */
static int s_shutdown(struct pt_stream *s)
{
	struct rdg *r = rdg_of_stream(s);

	gw_rdg_tun_close(&r->tun, 0);
	settle(r);
	/* FreeRDP answers CLOSE_CHANNEL and stays: the tunnel is over. */
	r->eof = 1;
	deliver(r);
	return 0;
}

static void part_closed(struct rdg *r)
{
	if (--r->transports == 0 && r->close_cb)
		r->close_cb(&r->s);
}

static void on_transport_closed(struct pt_stream *t)
{
	part_closed(t->data);
}

static void on_keepalive_closed(uv_handle_t *h)
{
	part_closed(h->data);
}

static void s_close(struct pt_stream *s, pt_stream_close_cb cb)
{
	struct rdg *r = rdg_of_stream(s);
	struct pt_stream *in = r->in != r->out ? r->in : NULL, *out = r->out;

	r->close_cb = cb;
	r->reading = 0;
	r->rcb = NULL;
	r->wcb = NULL; /* the relay that wrote is gone */
	r->in = r->out = NULL;
	r->transports = (in != NULL) + (out != NULL) + 1;
	uv_close((uv_handle_t *)&r->keepalive, on_keepalive_closed);
	if (in)
		pt_stream_close(in, on_transport_closed);
	if (out &&
	    (!r->ws || pt_ws_stream_close_with(out, PT_WS_CLOSE_NORMAL, NULL, on_transport_closed)))
		pt_stream_close(out, on_transport_closed);
}

static int s_fileno(struct pt_stream *s)
{
	return -ENOTSUP;
}

static const struct pt_stream_ops tunnel_ops = {
	.name = "rdg",
	.read_start = s_read_start,
	.read_stop = s_read_stop,
	.write = s_write,
	.shutdown = s_shutdown,
	.close = s_close,
	.fileno = s_fileno,
};

/* --- the connection ------------------------------------------------------------------ */

static void wait_del(struct rdg *r)
{
	if (!r->wait_prevp)
		return;
	if ((*r->wait_prevp = r->wait_next))
		r->wait_next->wait_prevp = r->wait_prevp;
	r->wait_prevp = NULL;
}

static void rdg_closed(struct gw_conn *c)
{
	struct rdg *r = rdg_of_conn(c);

	wait_del(r);
	for (size_t i = 0; i < r->qn; i++)
		pt_chunk_put(r->q[i].chunk);
	free(r->flight);
	free(r->pend);
	explicit_bzero(&r->tun, sizeof(r->tun));
	free(r);
}

static void rdg_start(struct gw_conn *c)
{
	(void)c; /* opened by the HTTPS front, never by a listener */
}

static const struct gw_conn_proto rdg_proto = {
	.name = "rdg",
	.size = sizeof(struct rdg),
	.start = rdg_start,
	.closed = rdg_closed,
};

/* A keepalive down an open tunnel the client has heard nothing from for a
 * while (MS-TSGU's KEEPALIVE; clients answer it): NATs and proxies on the
 * way keep a quiet session's connections.  Not while the tunnel is being
 * set up: each request there has its answer. */
static void on_keepalive(uv_timer_t *tm)
{
	struct rdg *r = tm->data;
	uint64_t every = (uint64_t)r->conn.g->conf->gateway.rdg_keepalive_ms;

	if (r->conn.closing || !r->out || r->flight || r->pend_len ||
	    r->tun.state != GW_RDG_S_OPEN || uv_now(r->conn.g->loop) - r->last_out_ms < every)
		return;
	if (gw_rdg_tun_keepalive(&r->tun) == 0)
		out_flush(r);
}

/* A tunnel over out (and in, the same for a WebSocket), from h's client,
 * whose connection ends here.  NULL when refused (a line logged). */
struct rdg *gw_rdg_tunnel_new(struct gw_https *h, struct pt_stream *out, int ws)
{
	struct gw *g = h->c.g;
	char peer[sizeof(h->c.peer)], source[sizeof(h->c.source)];
	struct gw_conn *c;
	struct rdg *r;

	snprintf(peer, sizeof(peer), "%s", h->c.peer);
	snprintf(source, sizeof(source), "%s", h->c.source);
	gw_conn_close(&h->c, NULL); /* no longer pending as an HTTPS connection */
	/* The core's admission: it counts as pending until the relay runs. */
	c = gw_conn_open(g, &rdg_proto, NULL, peer, source);
	if (!c) {
		pt_stream_close(out, NULL);
		return NULL;
	}
	r = rdg_of_conn(c);
	r->s.ops = &tunnel_ops;
	r->s.loop = g->loop;
	r->s.id = c->id;
	r->s.data = c;
	c->client = &r->s;
	r->out = out;
	r->in = ws ? out : NULL;
	r->ws = ws;
	out->data = r;
	out->id = c->id;
	gw_rdg_tun_init(&r->tun, &ops, r);
	uv_timer_init(g->loop, &r->keepalive);
	r->keepalive.data = r;
	r->last_out_ms = uv_now(g->loop);
	if (g->conf->gateway.rdg_keepalive_ms > 0)
		uv_timer_start(&r->keepalive, on_keepalive,
			       (uint64_t)g->conf->gateway.rdg_keepalive_ms / 2 + 1,
			       (uint64_t)g->conf->gateway.rdg_keepalive_ms / 2 + 1);
	/* Said in its TUNNEL_AUTH_RESPONSE; the relay ends it. */
	r->tun.idle_minutes = (uint32_t)(g->conf->gateway.idle_timeout_ms / 60000);
	return r;
}

void gw_rdg_tunnel_start(struct rdg *r, int no_token)
{
	r->no_token = no_token;
	pump(r);
}

int gw_rdg_tunnel_wait(struct rdg *r, const char *id, int no_token, const void *first, size_t n)
{
	struct gw *g = r->conn.g;

	snprintf(r->conn_id, sizeof(r->conn_id), "%s", id);
	r->no_token = no_token;
	if ((r->wait_next = g->rdg_waiting))
		r->wait_next->wait_prevp = &r->wait_next;
	r->wait_prevp = &g->rdg_waiting;
	g->rdg_waiting = r;
	if (queue_out(r, first, n)) {
		gw_conn_close(&r->conn, "out of memory");
		return -ENOMEM;
	}
	out_flush(r);
	return 0;
}

struct rdg *gw_rdg_tunnel_waiting(struct gw *g, const char *id, const char *source)
{
	if (strlen(id) >= sizeof(((struct rdg *)0)->conn_id))
		return NULL;
	for (struct rdg *r = g->rdg_waiting; r; r = r->wait_next)
		if (!r->conn.closing && !strcmp(r->conn_id, id) && !strcmp(r->conn.source, source))
			return r;
	return NULL;
}

void gw_rdg_tunnel_join(struct rdg *r, struct pt_stream *in, int chunked, const char *pre, size_t n)
{
	wait_del(r);
	r->in = in;
	r->chunked = chunked;
	in->data = r;
	in->id = r->conn.id;
	if (n)
		take_in(r, pre, n);
	pump(r);
}
