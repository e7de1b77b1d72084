/*
 * metrics.h - a small Prometheus registry and its /metrics listener.
 *
 * Written here because Debian packages no Prometheus client library for C
 * (prometheus-client-c is not in Debian 12); what a daemon needs of one is
 * small: counters, gauges and histograms with a fixed set of label names
 * each, and the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * A family (struct pt_metric) has a name, a help text, a type and its label
 * names; a series (struct pt_series) is one set of label values and holds
 * the value.  Updating a series is one relaxed atomic operation (a gauge's
 * or a histogram's sum: a compare-and-swap on the double's bits): no lock,
 * nothing allocated, so the relay's data path counts for free.  Making a
 * series (pt_metric_series) and rendering take the registry's mutex; a
 * family holds at most PT_METRICS_SERIES_MAX series (label values that come
 * from outside cannot grow it without end): past that, pt_metric_series
 * returns NULL, and every update of a NULL series does nothing.  Series live
 * as long as the registry: keep the pointers.
 *
 * A family that is only known at scrape time (sessions in the store, the
 * connections open now) is a collected one: its callback emits its samples
 * while the registry renders.
 */
#ifndef PORTICO_METRICS_H
#define PORTICO_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Portico's version, as portico_build_info shows it. */
#define PT_VERSION "0.16"

#define PT_METRICS_SERIES_MAX  256 /* series per family */
#define PT_METRICS_LABELS_MAX  4   /* label names per family */
#define PT_METRICS_BUCKETS_MAX 24  /* a histogram's buckets, +Inf not counted */

/* The content type of the exposition. */
#define PT_METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"

enum pt_metric_type {
	PT_METRIC_COUNTER,
	PT_METRIC_GAUGE,
	PT_METRIC_HISTOGRAM,
};

struct pt_metrics;
struct pt_metric;
struct pt_series;
struct pt_metrics_sink;

/* NULL when out of memory. */
struct pt_metrics *pt_metrics_new(void);
/* NULL-safe.  No series may be used after. */
void pt_metrics_free(struct pt_metrics *m);

/* A family: name [a-zA-Z_:][a-zA-Z0-9_:]*, help (one line, escaped as the
 * format says), labels the label names separated by commas ("pool,result";
 * NULL or "" for none).  buckets: a histogram's upper bounds, increasing
 * (+Inf is added), n of them; NULL and 0 for the other types.  NULL when a
 * name is malformed, a family of that name exists, or out of memory. */
struct pt_metric *pt_metrics_add(struct pt_metrics *m, enum pt_metric_type type, const char *name,
				 const char *help, const char *labels, const double *buckets,
				 size_t n);

/* Emits a collected family's samples: one pt_metrics_emit per series. */
typedef void (*pt_metrics_collect_cb)(struct pt_metrics_sink *k, void *arg);
/* A counter or gauge family whose samples cb emits at each render (on the
 * rendering thread, under the registry's mutex: cb must not call into the
 * registry but through k).  NULL as pt_metrics_add. */
struct pt_metric *pt_metrics_add_collected(struct pt_metrics *m, enum pt_metric_type type,
					   const char *name, const char *help, const char *labels,
					   pt_metrics_collect_cb cb, void *arg);
/* One sample of a collected family: values as many as its labels (escaped
 * here), v its value. */
void pt_metrics_emit(struct pt_metrics_sink *k, const char *const *values, double v);

/* The series of f with these label values (as many as f has labels; NULL
 * for a family without), made if new.  NULL when f already has
 * PT_METRICS_SERIES_MAX series, when f is NULL or collected, or out of
 * memory. */
struct pt_series *pt_metric_series(struct pt_metric *f, const char *const *values);
/* The same with the values as arguments: pt_metric_with(f, "pool1", "ok"). */
struct pt_series *pt_metric_with(struct pt_metric *f, ...);

/* Counters (a NULL series: nothing). */
void pt_series_inc(struct pt_series *s);
void pt_series_add(struct pt_series *s, uint64_t n);
/* Gauges. */
void pt_series_set(struct pt_series *s, double v);
void pt_series_gauge_add(struct pt_series *s, double d);
/* Histograms: count v in its bucket, its sum and its count. */
void pt_series_observe(struct pt_series *s, double v);
/* The value now (a histogram's: its count), for tests and logs. */
double pt_series_value(const struct pt_series *s);

/* Every family in the text format, a malloc'd NUL-terminated string (*len
 * its length); NULL when out of memory. */
char *pt_metrics_render(struct pt_metrics *m, size_t *len);

/* The families every daemon has: portico_build_info{version,daemon} (1)
 * and process_start_time_seconds (now).  0 or -ENOMEM. */
int pt_metrics_standard(struct pt_metrics *m, const char *daemon);

/* Escape a label value as the format wants (\ " and newline) into out:
 * the length written, or -ENOSPC when out (size n) is too small.  For tests. */
int pt_metrics_escape(const char *v, char *out, size_t n);

/* --- the listener (metrics_http.c) -------------------------------------- */

/*
 * Plain HTTP on a loopback address: GET /metrics answers the registry's
 * text; another path is 404, another method 405.  One request per
 * connection (answered with Connection: close), read with httpd's reader
 * (pt_http_reader: its size limits), within PT_METRICS_HTTP_TIMEOUT_MS from
 * the accept to the last byte written (a slow client is closed), and at most
 * PT_METRICS_HTTP_CONNS at once (one more is accepted and closed at once).
 */
#define PT_METRICS_HTTP_TIMEOUT_MS 10000
#define PT_METRICS_HTTP_CONNS	   16

struct pt_metrics_http;

/* Listen on addr ("host:port").  NULL with err set (the address, and why it
 * cannot be bound). */
struct pt_metrics_http *pt_metrics_http_listen(uv_loop_t *loop, const char *addr,
					       struct pt_metrics *m, char *err, size_t errlen);
/* Stop listening and close every connection (NULL-safe); the memory goes
 * with the last close callback, so run the loop once after. */
void pt_metrics_http_close(struct pt_metrics_http *h);
/* The timeout, for tests (ms; 0: the default). */
void pt_metrics_http_timeout(struct pt_metrics_http *h, uint64_t ms);

#endif
