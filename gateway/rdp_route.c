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
	struct gw_conn conn; /* first: the core's (gateway.h) */
	uint8_t in[CR_MAX];
	size_t inlen;
	uint8_t out[CR_MAX + 300];
	struct pt_x224_cr cr;
};

static struct gw_rdp *rdp_of(struct gw_conn *k)
{
	return gw_container_of(k, struct gw_rdp, conn);
}

/* The core's close callback: nothing points to r any more. */
static void rdp_closed(struct gw_conn *k)
{
	struct gw_rdp *r = rdp_of(k);

	explicit_bzero(r->in, sizeof(r->in)); /* a ticket */
	explicit_bzero(&r->cr, sizeof(r->cr));
	free(r);
}

static void on_refusal_written(struct pt_stream *s, int status)
{
	gw_conn_close(s->data, NULL);
}

/* A negotiation failure the client reports, then close. */
static void refuse(struct gw_rdp *r, const char *why)
{
	struct gw_conn *k = &r->conn;
	int rc;

	pt_log(PT_LOG_INFO, k->id, "rdp %s%s%s: refused: %s", k->peer, k->user[0] ? " user " : "",
	       k->user, why);
	pt_stream_read_stop(k->client);
	pt_x224_neg_failure(PT_X224_SSL_NOT_ALLOWED_BY_SERVER, r->out);
	rc = pt_stream_write(k->client, (const char *)r->out, PT_X224_FAILURE_LEN,
			     on_refusal_written);
	if (rc < 0 || rc == PT_STREAM_DONE)
		gw_conn_close(k, NULL);
}

static void on_cr_forwarded(struct pt_stream *s, int status)
{
	struct gw_conn *k = s->data;

	if (k->closing)
		return;
	if (status < 0) {
		gw_conn_close(k, "cannot send to the backend");
		return;
	}
	gw_conn_relay(k, 0);
}

static void on_backend_connected(uv_connect_t *req, int status)
{
	struct gw_rdp *r = req->data;
	struct gw_conn *k = &r->conn;
	ssize_t n;
	int rc;

	free(req);
	if (k->closing)
		return;
	if (status < 0) {
		char why[320];
		snprintf(why, sizeof(why), "cannot connect to %s: %s", k->backend_addr,
			 uv_strerror(status));
		refuse(r, why);
		return;
	}
	/* The request goes on with the user's name where the ticket was. */
	n = pt_x224_rewrite_cr(r->in, &r->cr, k->user, r->out, sizeof(r->out));
	if (n < 0) {
		refuse(r, "cannot rewrite the connection request");
		return;
	}
	rc = pt_stream_write(k->backend, (const char *)r->out, (size_t)n, on_cr_forwarded);
	if (rc == PT_STREAM_DONE)
		on_cr_forwarded(k->backend, 0);
	else if (rc < 0)
		refuse(r, "cannot send to the backend");
}

static void on_redeemed(void *arg, int rc, struct pt_api_resp *resp, const char *err)
{
	struct gw_rdp *r = rdp_of(arg);
	struct gw_conn *k = &r->conn;
	json_t *j = resp ? resp->json : NULL;
	const char *backend, *user, *proto;
	struct sockaddr_storage ss;
	uv_connect_t *req;

	if (rc) {
		pt_log_warnx("broker unreachable: %s", err);
		gw_metrics_refused("broker_unreachable");
		refuse(r, "the broker is unreachable");
		return;
	}
	if (resp->status != 200) {
		if (resp->status == 401 || resp->status == 403)
			gw_metrics_refused("bad_ticket");
		refuse(r, resp->status == 403 ? "the ticket is not valid" : "the broker refused");
		return;
	}
	backend = json_string_value(json_object_get(j, "backend"));
	user = json_string_value(json_object_get(j, "user"));
	proto = json_string_value(json_object_get(j, "protocol"));
	if (!backend || !user || !proto || strcmp(proto, "rdp") ||
	    strlen(backend) >= sizeof(k->backend_addr) ||
	    pt_net_parse_addr(backend, 3389, &ss) != 0) {
		refuse(r, "the ticket's session has no RDP backend this gateway can reach");
		return;
	}
	snprintf(k->backend_addr, sizeof(k->backend_addr), "%s", backend);
	snprintf(k->user, sizeof(k->user), "%s", user);
	k->session = json_integer_value(json_object_get(j, "session_id"));
	k->backend = pt_plain_new(k->g->loop, UV_TCP);
	req = calloc(1, sizeof(*req));
	if (!k->backend || !req) {
		free(req);
		refuse(r, "out of memory");
		return;
	}
	k->backend->data = k;
	k->backend->id = k->id;
	req->data = r;
	uv_tcp_nodelay((uv_tcp_t *)pt_plain_uv(k->backend), 1);
	if (uv_tcp_connect(req, (uv_tcp_t *)pt_plain_uv(k->backend), (struct sockaddr *)&ss,
			   on_backend_connected) != 0) {
		free(req);
		refuse(r, "cannot connect to the backend");
	}
}

/* No ticket: hand the client to a login process, through a socket pair
 * that the core relays to the client until the process is done. */
static void start_login(struct gw_rdp *r)
{
	struct gw_conn *k = &r->conn;
	struct pt_stream *pair;
	int fd, rc;

	rc = gw_rdp_login_start(k->g, k->id, k->peer, r->in, r->inlen,
				k->g->conf->gateway.handshake_timeout_ms, &fd);
	if (rc) {
		char why[128];
		snprintf(why, sizeof(why), "%s%s",
			 rc == -EAGAIN ? "too many logins under way (rdp_max_logins)"
				       : "cannot start the login step: ",
			 rc == -EAGAIN ? "" : uv_strerror(rc));
		refuse(r, why);
		return;
	}
	pair = pt_plain_new(k->g->loop, UV_NAMED_PIPE);
	if (!pair || uv_pipe_open((uv_pipe_t *)pt_plain_uv(pair), fd) != 0) {
		if (pair)
			pt_stream_close(pair, NULL);
		close(fd);
		gw_conn_close(k, "cannot start the login step");
		return;
	}
	pair->data = k;
	pair->id = k->id;
	k->backend = pair;
	gw_conn_relay(k, 1);
}

static void on_client_read(struct pt_stream *s, ssize_t n, char *chunk)
{
	struct gw_rdp *r = rdp_of(s->data);
	struct gw_conn *k = &r->conn;
	ssize_t got;

	if (n <= 0) {
		gw_conn_close(k, n == UV_EOF ? "the client left before its request"
					     : "read failed");
		return;
	}
	if (r->inlen + (size_t)n > sizeof(r->in)) {
		pt_chunk_put(chunk);
		gw_conn_close(k, "a connection request longer than any client sends");
		return;
	}
	memcpy(r->in + r->inlen, chunk, (size_t)n);
	r->inlen += (size_t)n;
	pt_chunk_put(chunk);
	got = pt_x224_parse_cr(r->in, r->inlen, &r->cr);
	if (got == 0)
		return;
	if (got < 0) {
		gw_conn_close(k, "not an RDP connection request");
		return;
	}
	if ((size_t)got != r->inlen) {
		/* A client waits for the confirm before it sends more. */
		gw_conn_close(k, "data after the connection request");
		return;
	}
	pt_stream_read_stop(k->client);
	if (!r->cr.token[0]) {
		start_login(r);
		return;
	}
	if (!pt_ticket_valid(r->cr.token)) {
		refuse(r, "the routing token is not a ticket");
		return;
	}
	if (gw_conn_call(k, "/api/v1/gateway/redeem",
			 json_pack("{s:s,s:s}", "ticket", r->cr.token, "client_addr", k->peer),
			 on_redeemed) != 0)
		refuse(r, "cannot reach the broker");
}

static void rdp_start(struct gw_conn *k)
{
	if (pt_stream_read_start(k->client, on_client_read) < 0)
		gw_conn_close(k, "read failed");
}

static const struct gw_conn_proto rdp_proto = {
	.name = "rdp",
	.size = sizeof(struct gw_rdp),
	.start = rdp_start,
	.closed = rdp_closed,
};

int gw_rdp_listen(struct gw *g)
{
	int rc = gw_conn_listen(g, &g->rdp, g->conf->gateway.rdp_listen, &rdp_proto);

	if (rc < 0)
		return rc;
	pt_log_info("RDP on %s (tickets: passthrough; others: login, then redirection)",
		    g->conf->gateway.rdp_listen);
	return 0;
}
