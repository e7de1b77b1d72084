/*
 * metrics.c - the broker's Prometheus metrics, see metrics.h.
 *
 * Counters are set from a call's route and status when its answer is
 * known (one hook in api.c), so no handler counts anything itself.  The
 * gauges of the store (sessions by pool and state, session hosts and their
 * load) would block the loop if a scrape read the store: a snapshot is read
 * on the thread pool every SNAPSHOT_MS instead, and a scrape shows the last
 * one (at most that old).  The snapshot is replaced and read on the loop
 * thread only (after_work, the listener), so it needs no lock.
 */
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "broker.h"
#include "portico/log.h"
#include "portico/metrics.h"

#define SNAPSHOT_MS 5000

static const double pam_buckets[] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
static const double launch_buckets[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60 };
static const char *const login_results[] = { "success", "failure", "throttled", "error",
					     "challenge" };
static const char *const session_states[] = { "starting", "ready", "active", "disconnected" };
static const char *const host_states[] = { "up", "stale", "drained", "static" };

struct snap_pool {
	char name[72];
	int n[4]; /* by session state */
};
struct snap_host {
	char name[128];
	int state; /* index in host_states */
	double load;
	int64_t sessions;
};
struct snapshot {
	struct snap_pool *pools;
	size_t npools;
	struct snap_host *hosts;
	size_t nhosts;
	int ok; /* the store answered */
};

static struct {
	struct brk *b;
	struct pt_metrics *m;
	struct pt_metrics_http *http;
	struct pt_metric *launches, *requests;
	struct pt_series *logins[5] /* login_results */, *redeemed[3], *store_errors, *pam, *launch_s;
	uv_timer_t timer;
	uv_work_t work;
	int working, stopping, timer_on;
	struct snapshot cur, next;
} bm;

static void snapshot_free(struct snapshot *s)
{
	free(s->pools);
	free(s->hosts);
	memset(s, 0, sizeof(*s));
}

static int state_index(int st)
{
	return st >= BRK_STARTING && st <= BRK_DISCONNECTED ? st : -1;
}

/* On the thread pool: the store, blocking. */
static void snapshot_work(uv_work_t *w)
{
	struct brk *b = bm.b;
	struct snapshot *s = &bm.next;
	struct brk_session_filter f = { .state = -2 };
	struct brk_session *ss = NULL;
	struct brk_pool *pools = NULL;
	struct brk_host *hosts = NULL;
	size_t nss = 0, np = 0, nh = 0;
	int64_t stale =
		3 * (b->conf->sessiond.heartbeat_ms > 0 ? b->conf->sessiond.heartbeat_ms : 30000);
	int64_t now = brk_now_ms();

	memset(s, 0, sizeof(*s));
	if (brk_store_pool_list(b->store, &pools, &np) < 0 ||
	    brk_store_session_list(b->store, &f, &ss, &nss) < 0 ||
	    brk_store_host_list(b->store, &hosts, &nh) < 0)
		goto out;
	/* Every pool, with zeros: a pool without sessions still shows. */
	if (np && !(s->pools = calloc(np, sizeof(*s->pools))))
		goto out;
	s->npools = np;
	for (size_t i = 0; i < np; i++)
		snprintf(s->pools[i].name, sizeof(s->pools[i].name), "%s", pools[i].c.name);
	for (size_t i = 0; i < nss; i++) {
		int k = state_index(ss[i].state);

		for (size_t j = 0; k >= 0 && j < np; j++)
			if (!strcmp(s->pools[j].name, ss[i].pool)) {
				s->pools[j].n[k]++;
				break;
			}
	}
	if (nh && !(s->hosts = calloc(nh, sizeof(*s->hosts))))
		goto out;
	s->nhosts = nh;
	for (size_t i = 0; i < nh; i++) {
		struct snap_host *h = &s->hosts[i];

		snprintf(h->name, sizeof(h->name), "%s", hosts[i].name);
		h->state = !hosts[i].sessiond			 ? 3
			   : hosts[i].drained			 ? 2
			   : now - hosts[i].last_seen_ms > stale ? 1
								 : 0;
		h->load = hosts[i].load;
		h->sessions = hosts[i].sessions;
	}
	s->ok = 1;
out:
	if (!s->ok)
		snapshot_free(s);
	brk_pools_free(pools, np);
	free(ss);
	free(hosts);
}

static void on_snapshot_timer(uv_timer_t *t);

static void snapshot_done(uv_work_t *w, int status)
{
	bm.working = 0;
	/* A failed read keeps the last snapshot (its gauges age; the store
	 * errors counter says why). */
	if (status == 0 && bm.next.ok) {
		snapshot_free(&bm.cur);
		bm.cur = bm.next;
		memset(&bm.next, 0, sizeof(bm.next));
	}
	snapshot_free(&bm.next);
}

static void on_snapshot_timer(uv_timer_t *t)
{
	if (bm.working || bm.stopping)
		return;
	bm.working = 1;
	bm.work.data = NULL;
	if (uv_queue_work(bm.b->loop, &bm.work, snapshot_work, snapshot_done) != 0)
		bm.working = 0;
}

static void collect_sessions(struct pt_metrics_sink *k, void *arg)
{
	for (size_t i = 0; i < bm.cur.npools; i++)
		for (int s = 0; s < 4; s++) {
			const char *v[] = { bm.cur.pools[i].name, session_states[s] };

			pt_metrics_emit(k, v, bm.cur.pools[i].n[s]);
		}
}

static void collect_hosts(struct pt_metrics_sink *k, void *arg)
{
	int n[4] = { 0 };

	for (size_t i = 0; i < bm.cur.nhosts; i++)
		n[bm.cur.hosts[i].state]++;
	for (int s = 0; s < 4; s++) {
		const char *v[] = { host_states[s] };

		pt_metrics_emit(k, v, n[s]);
	}
}

static void collect_load(struct pt_metrics_sink *k, void *arg)
{
	for (size_t i = 0; i < bm.cur.nhosts; i++) {
		const char *v[] = { bm.cur.hosts[i].name };

		if (bm.cur.hosts[i].state != 3) /* a static backend reports no load */
			pt_metrics_emit(k, v, bm.cur.hosts[i].load);
	}
}

static void collect_host_sessions(struct pt_metrics_sink *k, void *arg)
{
	for (size_t i = 0; i < bm.cur.nhosts; i++) {
		const char *v[] = { bm.cur.hosts[i].name };

		pt_metrics_emit(k, v, (double)bm.cur.hosts[i].sessions);
	}
}

static void collect_age(struct pt_metrics_sink *k, void *arg)
{
	(void)arg;
	pt_metrics_emit(k, NULL, bm.cur.ok ? 1 : 0);
}

int brk_metrics_init(struct brk *b, char *err, size_t errlen)
{
	const char *addr = b->conf->broker.metrics_listen;
	struct pt_metric *logins, *redeemed, *errors, *pam, *launch_s;
	struct pt_metrics *m;

	if (!addr || !*addr)
		return 0;
	bm.b = b;
	if (!(m = pt_metrics_new()) || pt_metrics_standard(m, "broker") < 0)
		goto oom;
	logins =
		pt_metrics_add(m, PT_METRIC_COUNTER, "portico_logins_total",
			       "Sign-ins (POST /login and the gateway's VNC/RDP login step), by "
			       "result: success, failure (a wrong password, an unknown user), "
			       "throttled (too many failures), error (the broker could not decide), "
			       "challenge (PAM asks for more: a second factor, judged with the password)",
			       "result", NULL, 0);
	bm.launches = pt_metrics_add(m, PT_METRIC_COUNTER, "portico_launches_total",
				     "Launches (a session assigned or reconnected, a ticket made), "
				     "by pool and result",
				     "pool,result", NULL, 0);
	redeemed = pt_metrics_add(m, PT_METRIC_COUNTER, "portico_tickets_redeemed_total",
				  "Tickets gateways redeemed, by result (ok, refused, error)",
				  "result", NULL, 0);
	errors = pt_metrics_add(m, PT_METRIC_COUNTER, "portico_store_errors_total",
				"Store calls that failed (database error, unreachable, disk "
				"full, locked)",
				NULL, NULL, 0);
	pam = pt_metrics_add(m, PT_METRIC_HISTOGRAM, "portico_pam_seconds",
			     "Time one PAM conversation took, in seconds", NULL, pam_buckets,
			     sizeof(pam_buckets) / sizeof(pam_buckets[0]));
	launch_s = pt_metrics_add(m, PT_METRIC_HISTOGRAM, "portico_launch_seconds",
				  "Time a successful launch took from its request to its answer "
				  "(a session started on a host included), in seconds",
				  NULL, launch_buckets,
				  sizeof(launch_buckets) / sizeof(launch_buckets[0]));
	bm.requests =
		pt_metrics_add(m, PT_METRIC_COUNTER, "portico_broker_requests_total",
			       "API requests answered, by route (its pattern) and HTTP status",
			       "route,status", NULL, 0);
	if (!logins || !bm.launches || !redeemed || !errors || !pam || !launch_s || !bm.requests ||
	    !pt_metrics_add_collected(m, PT_METRIC_GAUGE, "portico_sessions",
				      "Live sessions by pool and state, from the store (read every "
				      "5 s)",
				      "pool,state", collect_sessions, NULL) ||
	    !pt_metrics_add_collected(
		    m, PT_METRIC_GAUGE, "portico_session_hosts",
		    "Session hosts by state: up (heartbeats arrive), stale (none "
		    "for 3 heartbeat intervals), drained, static (a fixed backend)",
		    "state", collect_hosts, NULL) ||
	    !pt_metrics_add_collected(m, PT_METRIC_GAUGE, "portico_session_host_load",
				      "A session host's 1-minute load average, from its heartbeats",
				      "host", collect_load, NULL) ||
	    !pt_metrics_add_collected(m, PT_METRIC_GAUGE, "portico_session_host_sessions",
				      "Live sessions on a session host, from the store", "host",
				      collect_host_sessions, NULL) ||
	    !pt_metrics_add_collected(m, PT_METRIC_GAUGE, "portico_store_snapshot_ok",
				      "1 once the store's gauges have been read, 0 before", NULL,
				      collect_age, NULL))
		goto oom;
	for (size_t i = 0; i < sizeof(login_results) / sizeof(login_results[0]); i++)
		bm.logins[i] = pt_metric_with(logins, login_results[i]);
	bm.redeemed[0] = pt_metric_with(redeemed, "ok");
	bm.redeemed[1] = pt_metric_with(redeemed, "refused");
	bm.redeemed[2] = pt_metric_with(redeemed, "error");
	bm.store_errors = pt_metric_series(errors, NULL);
	bm.pam = pt_metric_series(pam, NULL);
	bm.launch_s = pt_metric_series(launch_s, NULL);
	if (!(bm.http = pt_metrics_http_listen(b->loop, addr, m, err, errlen))) {
		pt_metrics_free(m);
		memset(&bm, 0, sizeof(bm));
		return -1;
	}
	bm.m = m;
	uv_timer_init(b->loop, &bm.timer);
	uv_timer_start(&bm.timer, on_snapshot_timer, 0, SNAPSHOT_MS);
	bm.timer_on = 1;
	pt_log_info("metrics on http://%s/metrics", addr);
	return 0;
oom:
	pt_metrics_free(m);
	memset(&bm, 0, sizeof(bm));
	snprintf(err, errlen, "metrics: out of memory");
	return -1;
}

void brk_metrics_stop(struct brk *b)
{
	if (!bm.m)
		return;
	bm.stopping = 1;
	pt_metrics_http_close(bm.http);
	bm.http = NULL;
	if (bm.timer_on)
		uv_close((uv_handle_t *)&bm.timer, NULL);
	bm.timer_on = 0;
	while (bm.working)
		uv_run(b->loop, UV_RUN_ONCE);
}

static const char *launch_result(int status)
{
	switch (status) {
	case 200:
		return "ok";
	case 401:
	case 403:
		return "denied";
	case 404:
		return "not_found";
	case 409:
		return "conflict"; /* the user's session limit, several pools, ended */
	case 502:
		return "host_refused";
	case 503:
		return "unavailable"; /* no capacity, host unreachable, busy */
	default:
		return status < 500 ? "bad_request" : "error";
	}
}

void brk_metrics_call_done(const struct brk_call *c)
{
	const char *path;
	int status = c->status ? c->status : 500;
	char st[8];

	if (!bm.m || !c->route)
		return;
	path = c->route->path;
	snprintf(st, sizeof(st), "%d", status);
	pt_series_inc(pt_metric_with(bm.requests, path, st));
	if (!strcmp(path, "/login") || !strcmp(path, "/gateway/authorize")) {
		const char *code = json_string_value(json_object_get(c->out, "error"));
		int k = status == 200				? 0
			: code && !strcmp(code, "challenge")	? 4
			: status == 401 || status == 403	? 1
			: status == 429				? 2
								: 3;
		pt_series_inc(bm.logins[k]);
	} else if (!strcmp(path, "/gateway/redeem")) {
		pt_series_inc(bm.redeemed[status == 200 ? 0 : status < 500 ? 1 : 2]);
	} else if (!strncmp(path, "/resources/:name/launch", 23)) {
		/* A name no pool has is counted apart, not as a series of its
		 * own (a user could make any number of them). */
		pt_series_inc(pt_metric_with(bm.launches, status == 404 ? "" : c->name,
					     launch_result(status)));
		if (status == 200 && c->req)
			brk_metrics_launch_seconds((double)(uv_now(c->b->loop) - c->req->start_ms) /
						   1000.0);
	}
}

void brk_metrics_pam_seconds(double s)
{
	pt_series_observe(bm.pam, s);
}

void brk_metrics_launch_seconds(double s)
{
	pt_series_observe(bm.launch_s, s);
}

void brk_metrics_store_error(void)
{
	pt_series_inc(bm.store_errors);
}
