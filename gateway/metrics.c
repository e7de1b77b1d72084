/*
 * metrics.c - the gateway's Prometheus metrics (docs/operations.md) and
 * their listener, [gateway] metrics_listen.
 *
 * The counters are process-wide (one gateway per process) and count from
 * the start whether or not anything scrapes them: before gw_metrics_init
 * (the fuzz targets and unit tests never call it) their series are NULL
 * and counting does nothing.  Connections by protocol and state are read
 * at scrape time from the core's list, on the loop thread that owns it
 * (the listener runs on the same loop).
 */
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "portico/log.h"
#include "portico/metrics.h"
#include "portico/relay.h"
#include "portico/stream.h"

static const char *const protos[GW_PROTO_N] = { "vnc", "rdp", "https", "rdg", "ws" };
static const char *const states[] = { "pending", "relaying", "open" };
/* Why a connection was refused: the caps at accept, the handshake timer,
 * and the broker's word. */
static const char *const reasons[] = {
	"max_connections",   "max_pending", "max_pending_per_addr", "out_of_memory",
	"handshake_timeout", "bad_ticket",  "login_failed",	    "broker_unreachable",
	"mfa_required",
};
#define NREASONS (sizeof(reasons) / sizeof(reasons[0]))

static struct {
	struct pt_metrics *m;
	struct pt_series *opened[GW_PROTO_N];
	struct pt_series *bytes[GW_PROTO_N][2]; /* up, down */
	struct pt_series *refused[NREASONS];
} gm;

int gw_metrics_proto(const struct gw_conn *c)
{
	const char *n = c->proto->name;

	/* A browser's WebSocket (/ws/vnc) is a VNC connection whose client,
	 * when the core opens it, is already a WebSocket, not a socket. */
	if (c->proto == &gw_vnc_proto && c->client && !pt_stream_is_plain(c->client))
		return GW_PROTO_WS;
	for (int i = 0; i < GW_PROTO_N; i++)
		if (!strcmp(n, protos[i]))
			return i;
	return GW_PROTO_VNC;
}

void gw_metrics_opened(struct gw_conn *c)
{
	c->mproto = gw_metrics_proto(c);
	pt_series_inc(gm.opened[c->mproto]);
}

void gw_metrics_refused(const char *reason)
{
	for (size_t i = 0; i < NREASONS; i++)
		if (!strcmp(reason, reasons[i])) {
			pt_series_inc(gm.refused[i]);
			return;
		}
}

void gw_metrics_relay(struct gw_conn *c)
{
	if (c->relay)
		pt_relay_count(c->relay, gm.bytes[c->mproto][0], gm.bytes[c->mproto][1]);
}

static void collect_conns(struct pt_metrics_sink *k, void *arg)
{
	const struct gw *g = arg;
	int n[GW_PROTO_N][3] = { { 0 } };

	for (const struct gw_conn *c = g->conns; c; c = c->next)
		n[c->mproto][c->pending ? 0 : c->relay ? 1 : 2]++;
	for (int p = 0; p < GW_PROTO_N; p++)
		for (int s = 0; s < 3; s++) {
			const char *v[] = { protos[p], states[s] };

			pt_metrics_emit(k, v, n[p][s]);
		}
}

static void collect_logins(struct pt_metrics_sink *k, void *arg)
{
	pt_metrics_emit(k, NULL, (double)((const struct gw *)arg)->logins);
}

static void collect_max(struct pt_metrics_sink *k, void *arg)
{
	pt_metrics_emit(k, NULL, (double)((const struct gw *)arg)->max_connections);
}

int gw_metrics_init(struct gw *g, char *err, size_t errlen)
{
	const char *addr = g->conf->gateway.metrics_listen;
	struct pt_metric *opened, *bytes, *refused;
	struct pt_metrics *m;

	if (!addr || !*addr)
		return 0;
	if (!(m = pt_metrics_new()) || pt_metrics_standard(m, "gateway") < 0)
		goto oom;
	opened = pt_metrics_add(m, PT_METRIC_COUNTER, "portico_gateway_connections_opened_total",
				"Connections the gateway admitted, by protocol (not "
				"portico_gateway_connections_total: OpenMetrics reads that as the "
				"gauge's own name)",
				"protocol", NULL, 0);
	bytes = pt_metrics_add(
		m, PT_METRIC_COUNTER, "portico_relay_bytes_total",
		"Bytes relayed between clients and session backends, by protocol and "
		"direction (up: client to backend)",
		"protocol,direction", NULL, 0);
	refused = pt_metrics_add(m, PT_METRIC_COUNTER, "portico_gateway_refused_total",
				 "Connections refused or closed before their session, by reason",
				 "reason", NULL, 0);
	if (!opened || !bytes || !refused ||
	    !pt_metrics_add_collected(m, PT_METRIC_GAUGE, "portico_gateway_connections",
				      "Connections open now, by protocol and state (pending: not "
				      "logged in yet; relaying: joined to a session; open: between "
				      "requests or before the relay)",
				      "protocol,state", collect_conns, g) ||
	    !pt_metrics_add_collected(m, PT_METRIC_GAUGE, "portico_gateway_rdp_login_processes",
				      "RDP login step processes running", NULL, collect_logins,
				      g) ||
	    !pt_metrics_add_collected(m, PT_METRIC_GAUGE, "portico_gateway_max_connections",
				      "max_connections in effect (clamped to the descriptor limit)",
				      NULL, collect_max, g))
		goto oom;
	for (int p = 0; p < GW_PROTO_N; p++) {
		gm.opened[p] = pt_metric_with(opened, protos[p]);
		gm.bytes[p][0] = pt_metric_with(bytes, protos[p], "up");
		gm.bytes[p][1] = pt_metric_with(bytes, protos[p], "down");
	}
	for (size_t i = 0; i < NREASONS; i++)
		gm.refused[i] = pt_metric_with(refused, reasons[i]);
	if (!(g->metrics_http = pt_metrics_http_listen(g->loop, addr, m, err, errlen))) {
		memset(&gm, 0, sizeof(gm));
		pt_metrics_free(m);
		return -1;
	}
	gm.m = m;
	pt_log_info("metrics on http://%s/metrics", addr);
	return 0;
oom:
	pt_metrics_free(m);
	snprintf(err, errlen, "metrics: out of memory");
	return -1;
}

void gw_metrics_close(struct gw *g)
{
	pt_metrics_http_close(g->metrics_http);
	g->metrics_http = NULL;
}
