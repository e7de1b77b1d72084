/*
 * metrics.c - sessiond's Prometheus metrics (docs/operations.md) and their
 * listener, [sessiond] metrics_listen, in the network side (net.c).
 *
 * Sessions by kind and state are counted at scrape time from the network
 * side's list (sd_net_count), on the loop thread that owns it.  Before
 * sd_metrics_init nothing is counted (tests never call it).
 */
#include <stdio.h>
#include <string.h>

#include "portico/log.h"
#include "portico/metrics.h"
#include "session.h"

static const double start_buckets[] = { 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120 };
static const char *const kinds[SD_KIND_N] = { "desktop", "app", "vm", "unknown" };
static const char *const states[SD_STATE_N] = { "starting", "running", "spare" };
static const char *const results[] = { "ok", "failed", "timeout", "busy" };
#define NRESULTS (sizeof(results) / sizeof(results[0]))

static struct {
	struct pt_metrics *m;
	struct pt_metrics_http *http;
	struct pt_series *starts[SD_KIND_N][NRESULTS];
	struct pt_series *start_s;
} sm;

static void collect_sessions(struct pt_metrics_sink *k, void *arg)
{
	int n[SD_KIND_N][SD_STATE_N] = { { 0 } };

	sd_net_count(n);
	for (int i = 0; i < SD_KIND_N; i++)
		for (int s = 0; s < SD_STATE_N; s++) {
			const char *v[] = { kinds[i], states[s] };

			pt_metrics_emit(k, v, n[i][s]);
		}
}

int sd_metrics_init(const struct pt_conf *conf, uv_loop_t *loop, char *err, size_t errlen)
{
	const char *addr = conf->sessiond.metrics_listen;
	struct pt_metric *starts, *start_s;
	struct pt_metrics *m;

	if (!addr || !*addr)
		return 0;
	if (!(m = pt_metrics_new()) || pt_metrics_standard(m, "sessiond") < 0)
		goto oom;
	starts = pt_metrics_add(m, PT_METRIC_COUNTER, "portico_sessiond_starts_total",
				"Session starts the broker asked of this host, by kind (desktop, "
				"app, vm: the qemu driver) and result (ok, failed, timeout, busy: "
				"the root side's queue was full)",
				"kind,result", NULL, 0);
	start_s = pt_metrics_add(m, PT_METRIC_HISTOGRAM, "portico_sessiond_start_seconds",
				 "Time a session took to start, from the broker's request to the "
				 "session's backend ready, in seconds",
				 NULL, start_buckets,
				 sizeof(start_buckets) / sizeof(start_buckets[0]));
	if (!starts || !start_s ||
	    !pt_metrics_add_collected(
		    m, PT_METRIC_GAUGE, "portico_sessiond_sessions",
		    "Sessions on this host, by kind and state (starting, running, "
		    "spare: a booted VM nobody has yet; kind unknown: adopted "
		    "after a restart)",
		    "kind,state", collect_sessions, NULL))
		goto oom;
	for (int i = 0; i < SD_KIND_N; i++)
		for (size_t r = 0; r < NRESULTS; r++)
			sm.starts[i][r] = pt_metric_with(starts, kinds[i], results[r]);
	sm.start_s = pt_metric_series(start_s, NULL);
	if (!(sm.http = pt_metrics_http_listen(loop, addr, m, err, errlen))) {
		pt_metrics_free(m);
		memset(&sm, 0, sizeof(sm));
		return -1;
	}
	sm.m = m;
	pt_log_info("metrics on http://%s/metrics", addr);
	return 0;
oom:
	pt_metrics_free(m);
	memset(&sm, 0, sizeof(sm));
	snprintf(err, errlen, "metrics: out of memory");
	return -1;
}

void sd_metrics_close(void)
{
	pt_metrics_http_close(sm.http);
	sm.http = NULL;
}

void sd_metrics_start(int kind, const char *result, double seconds)
{
	if (kind < 0 || kind >= SD_KIND_N)
		kind = SD_KIND_UNKNOWN;
	for (size_t r = 0; r < NRESULTS; r++)
		if (!strcmp(result, results[r]))
			pt_series_inc(sm.starts[kind][r]);
	if (seconds >= 0)
		pt_series_observe(sm.start_s, seconds);
}
