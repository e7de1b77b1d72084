/*
 * rdp_route.c - the gateway's RDP path with a ticket: passthrough.
 *
 * The first message of an RDP connection (the X.224 Connection Request,
 * portico/x224.h) carries the ticket as a routing token ("Cookie:
 * msts=<ticket>", from the .rdp file's loadbalanceinfo or xfreerdp's
 * /load-balance-info).  The gateway redeems it, connects to the session's
 * backend, forwards the request with the ticket replaced by the user's
 * name, and from then on only relays bytes (the splice path: both sides
 * are plain sockets).  TLS and NLA run end to end between the client and
 * the desktop: the gateway never sees the session in clear.
 *
 * A request without a ticket (a client pointed at the gateway with a user
 * name and password) goes to the login step (rdp_login.c), which answers
 * with a Server Redirection that brings the client back here with a ticket.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway.h"
#include "portico/buf.h"
#include "portico/log.h"
#include "portico/net.h"
#include "portico/relay.h"
#include "portico/ticket.h"
#include "portico/x224.h"

#define CR_MAX 4096 /* a Connection Request is a few dozen bytes */

struct gw_rdp {
	struct gw *g;
	struct gw_rdp *next, **prevp; /* g->rdp_conns: the pending ones */
	int pending;		      /* not logged in yet */
	uint64_t id;
	char peer[64];
	struct pt_stream *client, *backend;
	uv_timer_t timer;
	uint8_t in[CR_MAX];
	size_t inlen;
	uint8_t out[CR_MAX + 300];
	struct pt_x224_cr cr;
	int busy, timer_closed, done;
	int64_t session;
	char user[256];
	char backend_addr[256];
	struct pt_relay *relay;
};

/* Logged in, or gone: no longer counted against max_pending (in all and
 * per address), and out of the list that the per-address count walks. */
static void unpend(struct gw_rdp *r)
{
	if (!r->pending)
		return;
	r->pending = 0;
	r->g->pending--;
	if ((*r->prevp = r->next))
		r->next->prevp = r->prevp;
}

static void rdp_free(struct gw_rdp *r)
{
	if (r->busy || r->client || r->backend || r->relay || !r->timer_closed)
		return;
	explicit_bzero(r->in, sizeof(r->in));
	free(r);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct gw_rdp *r = h->data;

	r->timer_closed = 1;
	rdp_free(r);
}

static void on_client_closed(struct pt_stream *s)
{
	struct gw_rdp *r = s->data;

	r->client = NULL;
	rdp_free(r);
}

static void on_backend_closed(struct pt_stream *s)
{
	struct gw_rdp *r = s->data;

	r->backend = NULL;
	rdp_free(r);
}

static void rdp_close(struct gw_rdp *r, const char *why)
{
	if (r->done)
		return;
	r->done = 1;
	if (why)
		pt_log(PT_LOG_INFO, r->id, "rdp %s%s%s: %s", r->peer, r->user[0] ? " user " : "",
		       r->user, why);
	unpend(r);
	r->g->nconns--;
	uv_timer_stop(&r->timer);
	if (r->client)
		pt_stream_close(r->client, on_client_closed);
	if (r->backend)
		pt_stream_close(r->backend, on_backend_closed);
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

static void on_refusal_written(struct pt_stream *s, int status)
{
	rdp_close(s->data, NULL);
}

/* A negotiation failure the client reports, then close. */
static void refuse(struct gw_rdp *r, const char *why)
{
	int rc;

	pt_log(PT_LOG_INFO, r->id, "rdp %s%s%s: refused: %s", r->peer, r->user[0] ? " user " : "",
	       r->user, why);
	pt_stream_read_stop(r->client);
	pt_x224_neg_failure(PT_X224_SSL_NOT_ALLOWED_BY_SERVER, r->out);
	rc = pt_stream_write(r->client, (const char *)r->out, PT_X224_FAILURE_LEN,
			     on_refusal_written);
	if (rc != 0 && rc != 1)
		rdp_close(r, NULL);
	else if (rc == PT_STREAM_DONE)
		rdp_close(r, NULL);
}

static void relay_done(struct pt_relay *rl, int status)
{
	struct gw_rdp *r = pt_relay_data(rl);
	const struct pt_relay_stats *st = pt_relay_stats(rl);

	pt_log(PT_LOG_INFO, r->id,
	       "rdp %s user %s: session %lld disconnected (%s), %llu up, %llu down%s", r->peer,
	       r->user, (long long)r->session, status == 0 ? "closed" : uv_strerror(status),
	       (unsigned long long)st->bytes_up, (unsigned long long)st->bytes_down,
	       st->spliced ? ", spliced" : "");
	gw_event(r->g, r->session, "disconnect", gw_now_ms(), st->bytes_up, st->bytes_down);
	r->relay = NULL;
	r->done = 1;
	r->g->nconns--;
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

static void on_input_report(uv_timer_t *t)
{
	struct gw_rdp *r = t->data;
	const struct pt_relay_stats *st = r->relay ? pt_relay_stats(r->relay) : NULL;

	if (st && st->last_up_ms)
		gw_event(r->g, r->session, "input",
			 gw_now_ms() - (int64_t)(uv_now(r->g->loop) - st->last_up_ms), 0, 0);
}

static void on_cr_forwarded(struct pt_stream *s, int status)
{
	struct gw_rdp *r = s->data;

	if (status < 0 || r->done) {
		rdp_close(r, "cannot send to the backend");
		return;
	}
	pt_stream_read_stop(r->client);
	r->relay = pt_relay_start(r->g->loop, r->client, r->backend,
				  (uint64_t)r->g->conf->gateway.idle_timeout_ms, relay_done, r);
	if (!r->relay) {
		rdp_close(r, "out of memory");
		return;
	}
	r->client = r->backend = NULL;
	unpend(r); /* logged in; still a connection */
	pt_log(PT_LOG_INFO, r->id, "rdp %s user %s: connected to session %lld at %s", r->peer,
	       r->user, (long long)r->session, r->backend_addr);
	gw_event(r->g, r->session, "connect", gw_now_ms(), 0, 0);
	uv_timer_start(&r->timer, on_input_report, (uint64_t)r->g->conf->gateway.input_report_ms,
		       (uint64_t)r->g->conf->gateway.input_report_ms);
}

static void on_backend_connected(uv_connect_t *req, int status)
{
	struct gw_rdp *r = req->data;
	ssize_t n;
	int rc;

	free(req);
	if (r->done)
		return;
	if (status < 0) {
		char why[320];
		snprintf(why, sizeof(why), "cannot connect to %s: %s", r->backend_addr,
			 uv_strerror(status));
		refuse(r, why);
		return;
	}
	/* The request goes on with the user's name where the ticket was. */
	n = pt_x224_rewrite_cr(r->in, &r->cr, r->user, r->out, sizeof(r->out));
	if (n < 0) {
		refuse(r, "cannot rewrite the connection request");
		return;
	}
	rc = pt_stream_write(r->backend, (const char *)r->out, (size_t)n, on_cr_forwarded);
	if (rc == PT_STREAM_DONE)
		on_cr_forwarded(r->backend, 0);
	else if (rc < 0)
		refuse(r, "cannot send to the backend");
}

static void on_redeemed(void *arg, int rc, struct pt_api_resp *resp, const char *err)
{
	struct gw_rdp *r = arg;
	json_t *j = resp ? resp->json : NULL;
	const char *backend, *user, *proto;
	struct sockaddr_storage ss;
	uv_connect_t *req;

	r->busy = 0;
	if (r->done) {
		rdp_free(r);
		return;
	}
	if (rc) {
		refuse(r, err);
		return;
	}
	if (resp->status != 200) {
		refuse(r, resp->status == 403 ? "the ticket is not valid" : "the broker refused");
		return;
	}
	backend = json_string_value(json_object_get(j, "backend"));
	user = json_string_value(json_object_get(j, "user"));
	proto = json_string_value(json_object_get(j, "protocol"));
	if (!backend || !user || !proto || strcmp(proto, "rdp") ||
	    strlen(backend) >= sizeof(r->backend_addr) ||
	    pt_net_parse_addr(backend, 3389, &ss) != 0) {
		refuse(r, "the ticket's session has no RDP backend this gateway can reach");
		return;
	}
	snprintf(r->backend_addr, sizeof(r->backend_addr), "%s", backend);
	snprintf(r->user, sizeof(r->user), "%s", user);
	r->session = json_integer_value(json_object_get(j, "session_id"));
	r->backend = pt_plain_new(r->g->loop, UV_TCP);
	req = calloc(1, sizeof(*req));
	if (!r->backend || !req) {
		free(req);
		refuse(r, "out of memory");
		return;
	}
	r->backend->data = r;
	r->backend->id = r->id;
	req->data = r;
	uv_tcp_nodelay((uv_tcp_t *)pt_plain_uv(r->backend), 1);
	if (uv_tcp_connect(req, (uv_tcp_t *)pt_plain_uv(r->backend), (struct sockaddr *)&ss,
			   on_backend_connected) != 0) {
		free(req);
		refuse(r, "cannot connect to the backend");
	}
}

/* The login step is over (the client went, with a redirection or a
 * refusal, or the handshake timeout stopped it). */
static void login_relay_done(struct pt_relay *rl, int status)
{
	struct gw_rdp *r = pt_relay_data(rl);

	r->relay = NULL;
	rdp_close(r, NULL);
}

/* No ticket: hand the client to a login process, through a socket pair. */
static void start_login(struct gw_rdp *r)
{
	struct pt_stream *pair;
	int fd, rc;

	rc = gw_rdp_login_start(r->g, r->id, r->peer, r->in, r->inlen,
				r->g->conf->gateway.handshake_timeout_ms, &fd);
	if (rc) {
		char why[128];
		snprintf(why, sizeof(why), "%s%s",
			 rc == -EAGAIN ? "too many logins under way (rdp_max_logins)"
				       : "cannot start the login step: ",
			 rc == -EAGAIN ? "" : uv_strerror(rc));
		refuse(r, why);
		return;
	}
	pair = pt_plain_new(r->g->loop, UV_NAMED_PIPE);
	if (!pair || uv_pipe_open((uv_pipe_t *)pt_plain_uv(pair), fd) != 0) {
		if (pair)
			pt_stream_close(pair, NULL);
		close(fd);
		rdp_close(r, "cannot start the login step");
		return;
	}
	pair->id = r->id;
	r->relay = pt_relay_start(r->g->loop, r->client, pair, 0, login_relay_done, r);
	if (!r->relay) {
		pt_stream_close(pair, NULL);
		rdp_close(r, "out of memory");
		return;
	}
	r->client = NULL;
}

static void on_client_read(struct pt_stream *s, ssize_t n, char *chunk)
{
	struct gw_rdp *r = s->data;
	ssize_t got;

	if (n <= 0) {
		rdp_close(r, n == UV_EOF ? "the client left before its request" : "read failed");
		return;
	}
	if (r->inlen + (size_t)n > sizeof(r->in)) {
		pt_chunk_put(chunk);
		rdp_close(r, "a connection request longer than any client sends");
		return;
	}
	memcpy(r->in + r->inlen, chunk, (size_t)n);
	r->inlen += (size_t)n;
	pt_chunk_put(chunk);
	got = pt_x224_parse_cr(r->in, r->inlen, &r->cr);
	if (got == 0)
		return;
	if (got < 0) {
		rdp_close(r, "not an RDP connection request");
		return;
	}
	if ((size_t)got != r->inlen) {
		/* A client waits for the confirm before it sends more. */
		rdp_close(r, "data after the connection request");
		return;
	}
	pt_stream_read_stop(r->client);
	if (!r->cr.token[0]) {
		start_login(r);
		return;
	}
	if (!pt_ticket_valid(r->cr.token)) {
		refuse(r, "the routing token is not a ticket");
		return;
	}
	r->busy = 1;
	if (gw_call(r->g, "/api/v1/gateway/redeem",
		    json_pack("{s:s,s:s}", "ticket", r->cr.token, "client_addr", r->peer),
		    on_redeemed, r) != 0) {
		r->busy = 0;
		refuse(r, "cannot reach the broker");
	}
}

static void on_handshake_timeout(uv_timer_t *t)
{
	struct gw_rdp *r = t->data;

	if (r->relay) /* the login step */
		pt_relay_stop(r->relay);
	else
		rdp_close(r, "no connection request in time");
}

int gw_rdp_pending_from(struct gw *g, const char *peer)
{
	int n = 0;

	for (struct gw_rdp *r = g->rdp_conns; r; r = r->next)
		n += !strcmp(r->peer, peer);
	return n;
}

static void on_accept(uv_stream_t *server, int status)
{
	struct gw *g = server->data;
	struct pt_stream *plain;
	struct gw_rdp *r;
	char addr[80] = "";

	if (status < 0 || !(plain = pt_plain_new(g->loop, UV_TCP)))
		return;
	/* Interactive traffic: no Nagle delay on either side. */
	if (uv_accept(server, pt_plain_uv(plain)) != 0 ||
	    uv_tcp_nodelay((uv_tcp_t *)pt_plain_uv(plain), 1) != 0) {
		pt_stream_close(plain, NULL);
		return;
	}
	pt_net_peer((uv_tcp_t *)pt_plain_uv(plain), addr, sizeof(addr), NULL, 0);
	if (g->nconns >= g->conf->gateway.max_connections ||
	    g->pending >= g->conf->gateway.max_pending ||
	    gw_pending_from(g, addr) >= g->conf->gateway.max_pending_per_addr) {
		pt_log_warnx("rdp %s: too many connections: refused", addr);
		pt_stream_close(plain, NULL);
		return;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		pt_stream_close(plain, NULL);
		return;
	}
	r->g = g;
	r->id = ++g->next_id;
	snprintf(r->peer, sizeof(r->peer), "%s", addr);
	r->client = plain;
	plain->data = r;
	plain->id = r->id;
	r->pending = 1;
	if ((r->next = g->rdp_conns))
		r->next->prevp = &r->next;
	g->rdp_conns = r;
	r->prevp = &g->rdp_conns;
	g->pending++;
	g->nconns++;
	uv_timer_init(g->loop, &r->timer);
	r->timer.data = r;
	uv_timer_start(&r->timer, on_handshake_timeout,
		       (uint64_t)g->conf->gateway.handshake_timeout_ms, 0);
	if (pt_stream_read_start(plain, on_client_read) < 0)
		rdp_close(r, "read failed");
}

int gw_rdp_listen(struct gw *g)
{
	int rc;

	uv_tcp_init(g->loop, &g->rdp);
	g->rdp.data = g;
	rc = pt_net_listen(&g->rdp, g->conf->gateway.rdp_listen, 511, on_accept);
	if (rc < 0)
		return rc;
	pt_log_info("RDP on %s (tickets: passthrough; others: login, then redirection)",
		    g->conf->gateway.rdp_listen);
	return 0;
}
