/*
 * metrics.c - the registry and the text exposition, see include/portico/metrics.h.
 *
 * Values: a counter is an _Atomic uint64_t; a gauge and a histogram's sum
 * are doubles kept as their bits in an _Atomic uint64_t (C11 has no atomic
 * add for doubles: a compare-and-swap loop, relaxed).  A histogram keeps a
 * count per bucket (not cumulative: one add per observation) and renders
 * the running sums; its _count is the sum of every bucket's, so that a
 * render never shows a count apart from its +Inf bucket.  Relaxed order is
 * enough: each value is read and written whole, and a scrape taken between
 * two updates of different series is as good as one taken a moment later.
 */
#include "portico/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct pt_series {
	struct pt_series *next;
	const struct pt_metric *f;
	char *labels;	    /* rendered: a="x",b="y" (escaped), "" for none */
	char **values;	    /* as given, to find the series again */
	_Atomic uint64_t v; /* a counter's count, a gauge's bits, a histogram's sum's bits */
	_Atomic uint64_t buckets[]; /* a histogram's: nbuckets + 1 (the last: +Inf) */
};

struct pt_metric {
	struct pt_metric *next;
	struct pt_metrics *m;
	enum pt_metric_type type;
	char *name, *help;
	char *label_names[PT_METRICS_LABELS_MAX];
	int nlabels;
	double bounds[PT_METRICS_BUCKETS_MAX];
	size_t nbuckets;
	struct pt_series *series, **tail;
	size_t nseries;
	pt_metrics_collect_cb collect;
	void *arg;
};

struct pt_metrics {
	pthread_mutex_t mu;
	struct pt_metric *families, **tail;
};

/* A growing string; oom once anything failed. */
struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

struct pt_metrics_sink {
	struct pt_metric *f;
	struct sbuf *out;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(p = realloc(b->p, cap))) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

/* A double as Prometheus reads it, in the fewest digits that read back the
 * same (0.1, not 0.10000000000000001). */
static void fmt_double(double v, char *out, size_t n)
{
	if (isnan(v)) {
		snprintf(out, n, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(out, n, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

static double bits_double(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static uint64_t double_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

int pt_metrics_escape(const char *v, char *out, size_t n)
{
	size_t o = 0;

	for (; *v; v++) {
		const char *rep = *v == '\\'   ? "\\\\"
				  : *v == '"'  ? "\\\""
				  : *v == '\n' ? "\\n"
					       : NULL;
		size_t k = rep ? 2 : 1;

		if (o + k + 1 > n)
			return -ENOSPC;
		if (rep)
			memcpy(out + o, rep, 2);
		else
			out[o] = *v;
		o += k;
	}
	if (o + 1 > n)
		return -ENOSPC;
	out[o] = '\0';
	return (int)o;
}

/* a="x",b="y" for f's label names and these values; NULL without memory. */
static char *render_labels(const struct pt_metric *f, const char *const *values)
{
	struct sbuf b = { 0 };

	sb_put(&b, "", 0);
	for (int i = 0; i < f->nlabels; i++) {
		const char *v = values[i] ? values[i] : "";

		if (i)
			sb_put(&b, ",", 1);
		sb_str(&b, f->label_names[i]);
		sb_put(&b, "=\"", 2);
		for (; *v; v++) {
			if (*v == '\\')
				sb_put(&b, "\\\\", 2);
			else if (*v == '"')
				sb_put(&b, "\\\"", 2);
			else if (*v == '\n')
				sb_put(&b, "\\n", 2);
			else
				sb_put(&b, v, 1);
		}
		sb_put(&b, "\"", 1);
	}
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

static int name_ok(const char *s, int metric)
{
	if (!s || !*s)
		return 0;
	for (const char *p = s; *p; p++) {
		int alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			    (metric && *p == ':');

		if (!alpha && !(p > s && *p >= '0' && *p <= '9'))
			return 0;
	}
	/* Names beginning with __ are Prometheus's own. */
	return metric || strncmp(s, "__", 2) != 0;
}

struct pt_metrics *pt_metrics_new(void)
{
	struct pt_metrics *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	pthread_mutex_init(&m->mu, NULL);
	m->tail = &m->families;
	return m;
}

static void series_free(struct pt_series *s, int nvalues)
{
	for (int i = 0; s->values && i < nvalues; i++)
		free(s->values[i]);
	free(s->values);
	free(s->labels);
	free(s);
}

static void family_free(struct pt_metric *f)
{
	struct pt_series *s, *next;

	for (s = f->series; s; s = next) {
		next = s->next;
		series_free(s, f->nlabels);
	}
	for (int i = 0; i < f->nlabels; i++)
		free(f->label_names[i]);
	free(f->name);
	free(f->help);
	free(f);
}

void pt_metrics_free(struct pt_metrics *m)
{
	struct pt_metric *f, *next;

	if (!m)
		return;
	for (f = m->families; f; f = next) {
		next = f->next;
		family_free(f);
	}
	pthread_mutex_destroy(&m->mu);
	free(m);
}

static struct pt_metric *family_new(struct pt_metrics *m, enum pt_metric_type type,
				    const char *name, const char *help, const char *labels,
				    const double *buckets, size_t n)
{
	struct pt_metric *f, *g;
	const char *p = labels;

	if (!m || !name_ok(name, 1) || n > PT_METRICS_BUCKETS_MAX ||
	    (type == PT_METRIC_HISTOGRAM) != (n > 0))
		return NULL;
	for (size_t i = 1; i < n; i++)
		if (!(buckets[i] > buckets[i - 1]))
			return NULL;
	if (!(f = calloc(1, sizeof(*f))))
		return NULL;
	f->type = type;
	f->m = m;
	f->tail = &f->series;
	f->name = strdup(name);
	f->help = strdup(help ? help : "");
	if (!f->name || !f->help)
		goto fail;
	while (p && *p) {
		size_t k = strcspn(p, ",");

		if (f->nlabels == PT_METRICS_LABELS_MAX ||
		    !(f->label_names[f->nlabels] = strndup(p, k)))
			goto fail;
		if (!name_ok(f->label_names[f->nlabels++], 0) ||
		    (type == PT_METRIC_HISTOGRAM && !strcmp(f->label_names[f->nlabels - 1], "le")))
			goto fail;
		p += k;
		if (*p == ',')
			p++;
	}
	if (n) /* buckets is NULL for the other types */
		memcpy(f->bounds, buckets, n * sizeof(double));
	f->nbuckets = n;
	pthread_mutex_lock(&m->mu);
	for (g = m->families; g; g = g->next)
		if (!strcmp(g->name, name))
			break;
	if (!g) {
		*m->tail = f;
		m->tail = &f->next;
	}
	pthread_mutex_unlock(&m->mu);
	if (g)
		goto fail;
	return f;
fail:
	family_free(f);
	return NULL;
}

struct pt_metric *pt_metrics_add(struct pt_metrics *m, enum pt_metric_type type, const char *name,
				 const char *help, const char *labels, const double *buckets,
				 size_t n)
{
	return family_new(m, type, name, help, labels, buckets, n);
}

struct pt_metric *pt_metrics_add_collected(struct pt_metrics *m, enum pt_metric_type type,
					   const char *name, const char *help, const char *labels,
					   pt_metrics_collect_cb cb, void *arg)
{
	struct pt_metric *f;

	if (type == PT_METRIC_HISTOGRAM || !cb)
		return NULL;
	if (!(f = family_new(m, type, name, help, labels, NULL, 0)))
		return NULL;
	/* Set before any render can see it: renders read it under the mutex. */
	pthread_mutex_lock(&m->mu);
	f->collect = cb;
	f->arg = arg;
	pthread_mutex_unlock(&m->mu);
	return f;
}

struct pt_series *pt_metric_series(struct pt_metric *f, const char *const *values)
{
	struct pt_series *s = NULL;
	size_t extra;

	if (!f || f->collect)
		return NULL;
	pthread_mutex_lock(&f->m->mu);
	for (s = f->series; s; s = s->next) {
		int i;

		for (i = 0; i < f->nlabels; i++)
			if (strcmp(s->values[i], values[i] ? values[i] : ""))
				break;
		if (i == f->nlabels)
			goto out;
	}
	if (f->nseries >= PT_METRICS_SERIES_MAX)
		goto out; /* s is NULL */
	extra = f->type == PT_METRIC_HISTOGRAM ? (f->nbuckets + 1) * sizeof(_Atomic uint64_t) : 0;
	if (!(s = calloc(1, sizeof(*s) + extra)))
		goto out;
	if (!(s->labels = render_labels(f, values)) ||
	    !(s->values = calloc((size_t)f->nlabels + 1, sizeof(char *))))
		goto fail;
	for (int i = 0; i < f->nlabels; i++)
		if (!(s->values[i] = strdup(values[i] ? values[i] : "")))
			goto fail;
	s->f = f;
	if (f->type != PT_METRIC_COUNTER)
		atomic_store_explicit(&s->v, double_bits(0.0), memory_order_relaxed);
	*f->tail = s;
	f->tail = &s->next;
	f->nseries++;
	goto out;
fail:
	series_free(s, f->nlabels);
	s = NULL;
out:
	pthread_mutex_unlock(&f->m->mu);
	return s;
}

struct pt_series *pt_metric_with(struct pt_metric *f, ...)
{
	const char *v[PT_METRICS_LABELS_MAX] = { NULL };
	va_list ap;

	if (!f)
		return NULL;
	va_start(ap, f);
	for (int i = 0; i < f->nlabels; i++)
		v[i] = va_arg(ap, const char *);
	va_end(ap);
	return pt_metric_series(f, v);
}

void pt_series_inc(struct pt_series *s)
{
	if (s)
		atomic_fetch_add_explicit(&s->v, 1, memory_order_relaxed);
}

void pt_series_add(struct pt_series *s, uint64_t n)
{
	if (s)
		atomic_fetch_add_explicit(&s->v, n, memory_order_relaxed);
}

void pt_series_set(struct pt_series *s, double v)
{
	if (s)
		atomic_store_explicit(&s->v, double_bits(v), memory_order_relaxed);
}

static void add_double(_Atomic uint64_t *a, double d)
{
	uint64_t old = atomic_load_explicit(a, memory_order_relaxed);

	while (!atomic_compare_exchange_weak_explicit(a, &old, double_bits(bits_double(old) + d),
						      memory_order_relaxed, memory_order_relaxed))
		;
}

void pt_series_gauge_add(struct pt_series *s, double d)
{
	if (s)
		add_double(&s->v, d);
}

void pt_series_observe(struct pt_series *s, double v)
{
	size_t i = 0;

	if (!s || s->f->type != PT_METRIC_HISTOGRAM || isnan(v))
		return;
	while (i < s->f->nbuckets && v > s->f->bounds[i])
		i++;
	atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
	add_double(&s->v, v);
}

static uint64_t hist_count(const struct pt_series *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i <= s->f->nbuckets; i++)
		n += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
	return n;
}

double pt_series_value(const struct pt_series *s)
{
	uint64_t v;

	if (!s)
		return 0;
	if (s->f->type == PT_METRIC_HISTOGRAM)
		return (double)hist_count(s);
	v = atomic_load_explicit(&s->v, memory_order_relaxed);
	return s->f->type == PT_METRIC_COUNTER ? (double)v : bits_double(v);
}

/* --- exposition ------------------------------------------------------------ */

static void put_help(struct sbuf *b, const struct pt_metric *f)
{
	static const char *const types[] = { "counter", "gauge", "histogram" };

	sb_str(b, "# HELP ");
	sb_str(b, f->name);
	sb_put(b, " ", 1);
	/* In HELP, \ and newline are escaped (not "). */
	for (const char *p = f->help; *p; p++) {
		if (*p == '\\')
			sb_put(b, "\\\\", 2);
		else if (*p == '\n')
			sb_put(b, "\\n", 2);
		else
			sb_put(b, p, 1);
	}
	sb_str(b, "\n# TYPE ");
	sb_str(b, f->name);
	sb_put(b, " ", 1);
	sb_str(b, types[f->type]);
	sb_put(b, "\n", 1);
}

/* name{labels[,extra]} value */
static void put_sample(struct sbuf *b, const char *name, const char *suffix, const char *labels,
		       const char *extra, const char *value)
{
	sb_str(b, name);
	sb_str(b, suffix);
	if (labels[0] || extra) {
		sb_put(b, "{", 1);
		sb_str(b, labels);
		if (labels[0] && extra)
			sb_put(b, ",", 1);
		if (extra)
			sb_str(b, extra);
		sb_put(b, "}", 1);
	}
	sb_put(b, " ", 1);
	sb_str(b, value);
	sb_put(b, "\n", 1);
}

static void put_series(struct sbuf *b, const struct pt_metric *f, const struct pt_series *s)
{
	char num[64], le[80];
	uint64_t v = atomic_load_explicit(&s->v, memory_order_relaxed), cum = 0;

	switch (f->type) {
	case PT_METRIC_COUNTER:
		snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
		put_sample(b, f->name, "", s->labels, NULL, num);
		break;
	case PT_METRIC_GAUGE:
		fmt_double(bits_double(v), num, sizeof(num));
		put_sample(b, f->name, "", s->labels, NULL, num);
		break;
	case PT_METRIC_HISTOGRAM:
		for (size_t i = 0; i <= f->nbuckets; i++) {
			cum += atomic_load_explicit(&s->buckets[i], memory_order_relaxed);
			if (i < f->nbuckets)
				fmt_double(f->bounds[i], num, sizeof(num));
			else
				snprintf(num, sizeof(num), "+Inf");
			snprintf(le, sizeof(le), "le=\"%s\"", num);
			snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
			put_sample(b, f->name, "_bucket", s->labels, le, num);
		}
		fmt_double(bits_double(v), num, sizeof(num));
		put_sample(b, f->name, "_sum", s->labels, NULL, num);
		snprintf(num, sizeof(num), "%llu", (unsigned long long)cum);
		put_sample(b, f->name, "_count", s->labels, NULL, num);
		break;
	}
}

void pt_metrics_emit(struct pt_metrics_sink *k, const char *const *values, double v)
{
	char num[64], *labels = render_labels(k->f, values);

	if (!labels) {
		k->out->oom = 1;
		return;
	}
	if (k->f->type == PT_METRIC_COUNTER && v >= 0 && v < 1e19 && v == floor(v))
		snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	else
		fmt_double(v, num, sizeof(num));
	put_sample(k->out, k->f->name, "", labels, NULL, num);
	free(labels);
}

char *pt_metrics_render(struct pt_metrics *m, size_t *len)
{
	struct sbuf b = { 0 };

	sb_put(&b, "", 0);
	pthread_mutex_lock(&m->mu);
	for (const struct pt_metric *f = m->families; f; f = f->next) {
		/* A family without a series says nothing: no HELP for no sample. */
		if (!f->collect && !f->series)
			continue;
		put_help(&b, f);
		if (f->collect) {
			struct pt_metrics_sink k = { .f = (struct pt_metric *)f, .out = &b };

			f->collect(&k, f->arg);
			continue;
		}
		for (const struct pt_series *s = f->series; s; s = s->next)
			put_series(&b, f, s);
	}
	pthread_mutex_unlock(&m->mu);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}

int pt_metrics_standard(struct pt_metrics *m, const char *daemon)
{
	struct pt_metric *info, *start;
	struct timespec ts;

	info = pt_metrics_add(m, PT_METRIC_GAUGE, "portico_build_info",
			      "Portico's version and which daemon this is (always 1)",
			      "version,daemon", NULL, 0);
	start = pt_metrics_add(m, PT_METRIC_GAUGE, "process_start_time_seconds",
			       "Start time of the process since the epoch, in seconds", NULL, NULL,
			       0);
	if (!info || !start)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &ts);
	pt_series_set(pt_metric_with(info, PT_VERSION, daemon), 1);
	pt_series_set(pt_metric_series(start, NULL), (double)ts.tv_sec + ts.tv_nsec / 1e9);
	return 0;
}
