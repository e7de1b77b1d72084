/*
 * conn.c - the gateway's connection core (gateway.h): what a VNC and an
 * RDP connection have in common, from the accept to the last close
 * callback.  Each protocol embeds a struct gw_conn first in its own and
 * keeps only its handshake; it never calls into the other.
 *
 * Admission: a connection is counted as pending from its accept until its
 * protocol says it has logged in (gw_conn_release), in all (max_pending)
 * and per source (max_pending_per_addr: an IPv4 address or an IPv6 /64,
 * pt_net_peer's "source", so that one host with a /64 of its own cannot
 * take every slot by using a new address for each connection).
 * Connections that have logged in count only against max_connections.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "portico/buf.h"
#include "portico/log.h"
#include "portico/net.h"
#include "portico/relay.h"
#include "portico/sources.h"
#include "portico/stream.h"
#include "portico/ws.h"

/* Freed when the last thing that points to it lets go. */
static void conn_maybe_free(struct gw_conn *c)
{
	if (!c->closing || c->calls || c->client || c->backend || c->relay || !c->timer_closed)
		return; /* the last of them calls again */
	c->proto->closed(c);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct gw_conn *c = h->data;

	c->timer_closed = 1;
	conn_maybe_free(c);
}

static void on_client_closed(struct pt_stream *s)
{
	struct gw_conn *c = s->data;

	c->client = NULL;
	conn_maybe_free(c);
}

static void on_backend_closed(struct pt_stream *s)
{
	struct gw_conn *c = s->data;

	c->backend = NULL;
	conn_maybe_free(c);
}

void gw_conn_release(struct gw_conn *c)
{
	if (!c->pending)
		return;
	c->pending = 0;
	c->g->pending--;
	pt_sources_add(c->g->sources, c->source, -1);
}

void gw_conn_close(struct gw_conn *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = 1;
	if (why) /* the relay's end reports it (relay_done) */
		snprintf(c->end_reason, sizeof(c->end_reason), "%s", why);
	if (why)
		pt_log(PT_LOG_INFO, c->id, "%s %s%s%s: %s", c->proto->name, c->peer,
		       c->user[0] ? " user " : "", c->user, why);
	gw_conn_release(c);
	if ((*c->prevp = c->next))
		c->next->prevp = c->prevp;
	c->g->nconns--;
	uv_timer_stop(&c->timer);
	/* The relay's end (relay_done) reports the disconnect and lets go. */
	if (c->relay)
		pt_relay_stop(c->relay);
	/* A WebSocket client hears why in the close frame (noVNC shows it). */
	if (c->client &&
	    (!c->ws_close_code || pt_ws_stream_close_with(c->client, c->ws_close_code,
							  c->ws_close_reason, on_client_closed)))
		pt_stream_close(c->client, on_client_closed);
	if (c->backend)
		pt_stream_close(c->backend, on_backend_closed);
	uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

struct pt_stream *gw_conn_take_client(struct gw_conn *c)
{
	struct pt_stream *s = c->client;

	c->client = NULL;
	return s;
}

void gw_conn_close_all(struct gw *g)
{
	if (g->vnc.tcp.loop) /* listening */
		uv_close((uv_handle_t *)&g->vnc.tcp, NULL);
	if (g->rdp.tcp.loop)
		uv_close((uv_handle_t *)&g->rdp.tcp, NULL);
	if (g->https.tcp.loop)
		uv_close((uv_handle_t *)&g->https.tcp, NULL);
	while (g->conns)
		gw_conn_close(g->conns, "the gateway is stopping");
}

static void on_handshake_timeout(uv_timer_t *t)
{
	gw_metrics_refused("handshake_timeout");
	gw_conn_close(t->data, "handshake timed out");
}

/* --- the broker -------------------------------------------------------------------- */

static void on_call_done(void *arg, int rc, struct pt_api_resp *resp, const char *err)
{
	struct gw_conn *c = arg;
	gw_call_cb cb = c->call_cb;

	c->calls--;
	c->call_cb = NULL;
	if (c->closing) {
		conn_maybe_free(c);
		return;
	}
	/* The client's clock runs again (gw_conn_call stopped it). */
	uv_timer_start(&c->timer, on_handshake_timeout,
		       (uint64_t)c->g->conf->gateway.handshake_timeout_ms, 0);
	cb(c, rc, resp, err);
}

/* One call at a time: a protocol asks, then waits.  path NULL: forward f. */
static int conn_ask(struct gw_conn *c, const char *path, json_t *body, struct gw_fwd *f,
		    gw_call_cb cb)
{
	int rc;

	if (c->calls) {
		json_decref(body);
		gw_fwd_free(f);
		return -1;
	}
	c->call_cb = cb;
	c->calls++;
	/* handshake_timeout is the client's time: the broker's (a session
	 * starting, 30 s at most: the API client's timeout) is not counted. */
	uv_timer_stop(&c->timer);
	rc = path ? gw_call(c->g, path, body, on_call_done, c) : gw_forward(c->g, f, on_call_done, c);
	if (rc != 0) {
		c->calls--;
		c->call_cb = NULL;
		return -1;
	}
	return 0;
}

int gw_conn_call(struct gw_conn *c, const char *path, json_t *body, gw_call_cb cb)
{
	return conn_ask(c, path, body, NULL, cb);
}

int gw_conn_forward(struct gw_conn *c, struct gw_fwd *f, gw_call_cb cb)
{
	return conn_ask(c, NULL, NULL, f, cb);
}

void gw_conn_timeout(struct gw_conn *c, uint64_t ms)
{
	uv_timer_start(&c->timer, on_handshake_timeout, ms, 0);
}

/* --- the relay ---------------------------------------------------------------------- */

static void report_input(struct gw_conn *c, const struct pt_relay_stats *st)
{
	if (!st->last_up_ms || st->last_up_ms == c->reported_up_ms)
		return;
	c->reported_up_ms = st->last_up_ms;
	gw_event(c->g, c->session, "input",
		 gw_now_ms() - (int64_t)(uv_now(c->g->loop) - st->last_up_ms), 0, 0);
}

/* Input reports for the pools' idle timeout: the last client-to-server byte. */
static void on_report_timer(uv_timer_t *t)
{
	struct gw_conn *c = t->data;

	if (c->relay)
		report_input(c, pt_relay_stats(c->relay));
}

static void relay_done(struct pt_relay *r, int status)
{
	struct gw_conn *c = pt_relay_data(r);
	const struct pt_relay_stats *st = pt_relay_stats(r);

	/* Reported whoever ended it, the gateway's stop included: stopping
	 * waits for these calls (portico-gateway.c). */
	if (!c->login_step) {
		pt_log(PT_LOG_INFO, c->id,
		       "%s %s user %s: session %lld disconnected (%s), %llu up, %llu down%s",
		       c->proto->name, c->peer, c->user, (long long)c->session,
		       status == 0 ? "closed" : uv_strerror(status),
		       (unsigned long long)st->bytes_up, (unsigned long long)st->bytes_down,
		       st->spliced ? ", spliced" : "");
		report_input(c, st);
		gw_event(c->g, c->session, "disconnect", gw_now_ms(), st->bytes_up,
			 st->bytes_down);
		gw_audit_conn(c, "disconnect",
			      c->end_reason[0] ? c->end_reason
			      : status == 0	 ? "closed"
						 : uv_strerror(status),
			      st);
	}
	c->relay = NULL;
	gw_conn_close(c, NULL);
	conn_maybe_free(c);
}

int gw_conn_relay(struct gw_conn *c, int login_step)
{
	uint64_t idle = login_step ? 0 : (uint64_t)c->g->conf->gateway.idle_timeout_ms;
	uint64_t every = (uint64_t)c->g->conf->gateway.input_report_ms;

	pt_stream_read_stop(c->client);
	pt_stream_read_stop(c->backend);
	c->login_step = login_step;
	c->relay = pt_relay_start(c->g->loop, c->client, c->backend, idle, relay_done, c);
	if (!c->relay) {
		gw_conn_close(c, "out of memory");
		return -ENOMEM;
	}
	c->ws_relayed = c->client_ws ? c->client : NULL;
	c->client = c->backend = NULL; /* the relay's now */
	gw_metrics_relay(c);
	if (login_step)
		return 0; /* the handshake timer still runs: the login step has that long */
	gw_conn_release(c);
	pt_log(PT_LOG_INFO, c->id, "%s %s user %s: connected to session %lld at %s",
	       c->proto->name, c->peer, c->user, (long long)c->session, c->backend_addr);
	gw_event(c->g, c->session, "connect", gw_now_ms(), 0, 0);
	gw_audit_conn(c, "connect", NULL, NULL);
	uv_timer_start(&c->timer, on_report_timer, every, every);
	return 0;
}

/* --- admission ----------------------------------------------------------------------- */

struct gw_conn *gw_conn_open(struct gw *g, const struct gw_conn_proto *proto,
			     struct pt_stream *client, const char *peer, const char *source)
{
	const struct pt_gateway_conf *gc = &g->conf->gateway;
	const char *full = g->nconns >= g->max_connections ? "max_connections"
			   : g->pending >= gc->max_pending ? "max_pending"
			   : pt_sources_get(g->sources, source) >= gc->max_pending_per_addr
				   ? "max_pending_per_addr"
				   : NULL;
	struct gw_conn *c = full ? NULL : calloc(1, proto->size);

	if (!c || pt_sources_add(g->sources, source, 1) < 0) {
		/* Closed at once, unanswered: a client retries later. */
		pt_log_warnx("%s %s: too many connections (%s): refused", proto->name, peer,
			     full ? full : "out of memory");
		gw_metrics_refused(full ? full : "out_of_memory");
		free(c);
		if (client)
			pt_stream_close(client, NULL);
		return NULL;
	}
	c->proto = proto;
	c->g = g;
	c->id = ++g->next_id;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	snprintf(c->source, sizeof(c->source), "%s", source);
	c->client = client;
	if (client) {
		client->data = c;
		client->id = c->id;
	}
	gw_metrics_opened(c);
	c->pending = 1;
	g->pending++;
	g->nconns++;
	if ((c->next = g->conns))
		c->next->prevp = &c->next;
	c->prevp = &g->conns;
	g->conns = c;
	uv_timer_init(g->loop, &c->timer);
	c->timer.data = c;
	uv_timer_start(&c->timer, on_handshake_timeout, (uint64_t)gc->handshake_timeout_ms, 0);
	return c;
}

static void on_accept(uv_stream_t *server, int status)
{
	struct gw_listener *l = server->data;
	struct pt_stream *plain;
	struct gw_conn *c;
	char addr[64] = "", source[64] = "";

	if (status < 0) {
		/* EMFILE, ENFILE, ENOMEM: the connection waits in the backlog. */
		pt_log_warnx("%s: cannot accept: %s", l->proto->name, uv_strerror(status));
		return;
	}
	if (!(plain = pt_plain_new(l->g->loop, UV_TCP)))
		return;
	/* Interactive traffic: no Nagle delay on either side. */
	if (uv_accept(server, pt_plain_uv(plain)) != 0 ||
	    uv_tcp_nodelay((uv_tcp_t *)pt_plain_uv(plain), 1) != 0) {
		pt_stream_close(plain, NULL);
		return;
	}
	pt_net_peer((uv_tcp_t *)pt_plain_uv(plain), addr, sizeof(addr), source, sizeof(source));
	if ((c = gw_conn_open(l->g, l->proto, plain, addr, source)))
		l->proto->start(c);
}

int gw_conn_listen(struct gw *g, struct gw_listener *l, const char *addr,
		   const struct gw_conn_proto *proto)
{
	if (!g->sources && !(g->sources = pt_sources_new()))
		return -ENOMEM;
	if (!g->max_connections)
		g->max_connections = g->conf->gateway.max_connections;
	l->g = g;
	l->proto = proto;
	uv_tcp_init(g->loop, &l->tcp);
	l->tcp.data = l;
	return pt_net_listen(&l->tcp, addr, 511, on_accept);
}
