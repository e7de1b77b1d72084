/*
 * control.c - what the broker says must happen to a session's connection at
 * once (docs/api.md, "Gateways": GET /gateway/control): a long-poll, always
 * one under way while the gateway runs, for the control rows after the last
 * one seen.  A disconnect, logoff, timeout or drain closes the session's
 * connection (VNC, RDP, browser or RD Gateway) with the reason logged; a
 * message goes to a browser's desktop page as a WebSocket text frame, which
 * the portal shows (other viewers have no channel for it: logged).
 *
 * The call runs on the thread pool like every broker call (counted in
 * g->works); at a stop it is cancelled (pt_api_conf.cancel) so that stopping
 * does not wait out the broker's wait.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "portico/log.h"
#include "portico/ws.h"

#define WAIT_S	   25
#define RETRY_MS   1000
#define TIMEOUT_MS ((WAIT_S + 15) * 1000L)

struct poll {
	uv_work_t work;
	struct gw *g;
	struct pt_api_resp resp;
	char path[96];
	int rc;
	char err[2048];
};

static void poll_start(struct gw *g);

static void poll_work(uv_work_t *w)
{
	struct poll *p = w->data;
	struct pt_api_conf conf = p->g->api;

	conf.timeout_ms = TIMEOUT_MS;
	conf.cancel = &p->g->control.cancel;
	p->rc = pt_api_call(&conf, "GET", p->path, NULL, &p->resp, p->err, sizeof(p->err));
}

/* What the row asks of one connection of its session. */
static void apply(struct gw_conn *c, const char *action, const char *text)
{
	struct pt_stream *ws = !c->client_ws ? NULL : c->relay ? c->ws_relayed : c->client;
	char msg[PT_WS_TEXT_MAX + 1], reason[PT_WS_REASON_MAX + 1];
	json_t *doc;
	size_t n;
	char *s;
	int rc;

	if (!strcmp(action, "message")) {
		rc = -ENOTSUP;
		if (ws) {
			doc = json_pack("{s:s,s:s}", "portico", "message", "text", text);
			s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
			rc = s && strlen(s) < sizeof(msg) ? pt_ws_stream_send_text(ws, s) : -ENOMEM;
			free(s);
			json_decref(doc);
		}
		pt_log(PT_LOG_INFO, c->id, "%s %s user %s: session %lld: message %s", c->proto->name,
		       c->peer, c->user, (long long)c->session,
		       rc == 0		  ? "sent to the browser"
		       : rc == -ENOTSUP ? "not sent to this viewer (it has no channel for it; a "
					  "session host draws it on the desktop itself)"
					: "not sent (the connection is closing)");
		return;
	}
	/* At most PT_WS_REASON_MAX bytes, not cut inside a UTF-8 sequence. */
	snprintf(reason, sizeof(reason), "%s", text);
	n = strlen(reason);
	while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
		n--;
	reason[n] = '\0';
	/* A browser hears why in the close frame (the portal shows it). */
	if (c->client_ws && c->relay && ws)
		pt_ws_stream_queue_close(ws, GW_WS_CLOSE_ENDED, reason);
	else if (c->client_ws) {
		c->ws_close_code = GW_WS_CLOSE_ENDED;
		snprintf(c->ws_close_reason, sizeof(c->ws_close_reason), "%s", reason);
	}
	snprintf(msg, sizeof(msg), "session %lld: %s (%s)", (long long)c->session, action, text);
	gw_conn_close(c, msg);
}

void gw_control_apply(struct gw *g, json_t *rows)
{
	size_t i;
	json_t *r;

	json_array_foreach(rows, i, r)
	{
		json_t *id = json_object_get(r, "session_id");
		const char *action = json_string_value(json_object_get(r, "action"));
		const char *text = json_string_value(json_object_get(r, "text"));
		struct gw_conn *c, *next;

		if (!json_is_integer(id) || !action || !text)
			continue;
		for (c = g->conns; c; c = next) {
			next = c->next; /* apply may close c, which unlinks it */
			if (!c->login_step && c->session == json_integer_value(id) && !c->closing)
				apply(c, action, text);
		}
	}
}

static void on_retry(uv_timer_t *t)
{
	poll_start(t->data);
}

static void poll_done(uv_work_t *w, int status)
{
	struct poll *p = w->data;
	struct gw *g = p->g;
	json_t *next = json_object_get(p->resp.json, "next");
	json_t *rows = json_object_get(p->resp.json, "control");
	char msg[200];
	int ok = p->rc == 0 && p->resp.status == 200 && json_is_integer(next) &&
		 json_is_array(rows);

	g->works--;
	g->control.running = 0;
	if (ok) {
		if (g->control.failing)
			pt_log_info("control: the broker answers again");
		g->control.failing = 0;
		/* The first answer (after=-1) only says where "now" is. */
		if (g->control.after >= 0)
			gw_control_apply(g, rows);
		g->control.after = json_integer_value(next);
	} else if (!g->stopping && !g->control.failing) {
		/* Said once, not on every retry; a disconnect then waits for
		 * the next input report (input_report) instead. */
		g->control.failing = 1;
		if (p->rc)
			pt_log_warnx("control: cannot reach the broker: %s", p->err);
		else
			pt_log_warnx("control: the broker answered %d: %s", p->resp.status,
				     pt_api_message(&p->resp, msg, sizeof(msg)));
	}
	pt_api_resp_free(&p->resp);
	free(p);
	if (g->stopping)
		return;
	if (ok)
		poll_start(g);
	else
		uv_timer_start(&g->control.retry, on_retry, RETRY_MS, 0);
}

static void poll_start(struct gw *g)
{
	struct poll *p;

	if (g->stopping || g->control.running)
		return;
	if (!(p = calloc(1, sizeof(*p)))) {
		uv_timer_start(&g->control.retry, on_retry, RETRY_MS, 0);
		return;
	}
	p->g = g;
	p->work.data = p;
	/* After a failure, an answer at once: the broker is back (said in the
	 * log) without waiting for its wait to end. */
	snprintf(p->path, sizeof(p->path), "/api/v1/gateway/control?after=%lld&wait=%d",
		 (long long)g->control.after, g->control.failing ? 0 : WAIT_S);
	if (uv_queue_work(g->loop, &p->work, poll_work, poll_done) != 0) {
		free(p);
		uv_timer_start(&g->control.retry, on_retry, RETRY_MS, 0);
		return;
	}
	g->works++;
	g->control.running = 1;
}

void gw_control_start(struct gw *g)
{
	g->control.after = -1;
	uv_timer_init(g->loop, &g->control.retry);
	g->control.retry.data = g;
	g->control.started = 1;
	poll_start(g);
}

void gw_control_stop(struct gw *g)
{
	if (!g->control.started)
		return;
	g->control.started = 0;
	g->control.cancel = 1;
	uv_close((uv_handle_t *)&g->control.retry, NULL);
}
