/* test_metrics.c - the Prometheus registry (metrics.h): the text a scraper
 * reads (HELP, TYPE, samples, a histogram's cumulative buckets), label
 * escaping, malformed names refused, the series cap, counting from many
 * threads at once, and the relay's totals (pt_relay_count). */
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portico/metrics.h"
#include "portico/relay.h"
#include "portico/stream.h"

static char *render(struct pt_metrics *m)
{
	size_t len = 0;
	char *s = pt_metrics_render(m, &len);

	cr_assert_not_null(s);
	cr_assert_eq(strlen(s), len);
	return s;
}

static void assert_has(const char *text, const char *want)
{
	cr_assert_not_null(strstr(text, want), "missing:\n%s\nin:\n%s", want, text);
}

Test(metrics, counter_and_gauge_exposition, .timeout = 10)
{
	struct pt_metrics *m = pt_metrics_new();
	struct pt_metric *c = pt_metrics_add(m, PT_METRIC_COUNTER, "portico_logins_total",
					     "Logins by result", "result", NULL, 0);
	struct pt_metric *g = pt_metrics_add(m, PT_METRIC_GAUGE, "portico_up", "Up", NULL, NULL, 0);
	struct pt_series *ok = pt_metric_with(c, "success"), *bad = pt_metric_with(c, "failure");
	char *s;

	cr_assert(c && g && ok && bad);
	cr_assert_eq(pt_metric_with(c, "success"), ok, "the same values, another series");
	pt_series_inc(ok);
	pt_series_add(ok, 41);
	pt_series_inc(bad);
	pt_series_set(pt_metric_series(g, NULL), 0.25);
	s = render(m);
	cr_assert_str_eq(s, "# HELP portico_logins_total Logins by result\n"
			    "# TYPE portico_logins_total counter\n"
			    "portico_logins_total{result=\"success\"} 42\n"
			    "portico_logins_total{result=\"failure\"} 1\n"
			    "# HELP portico_up Up\n"
			    "# TYPE portico_up gauge\n"
			    "portico_up 0.25\n");
	free(s);
	cr_assert_eq(pt_series_value(ok), 42);
	pt_series_gauge_add(pt_metric_series(g, NULL), -1.5);
	cr_assert_eq(pt_series_value(pt_metric_series(g, NULL)), -1.25);
	pt_metrics_free(m);
}

Test(metrics, a_family_without_series_is_not_shown, .timeout = 10)
{
	struct pt_metrics *m = pt_metrics_new();
	char *s;

	cr_assert_not_null(pt_metrics_add(m, PT_METRIC_COUNTER, "a_total", "A", "x", NULL, 0));
	s = render(m);
	cr_assert_str_eq(s, "");
	free(s);
	pt_metrics_free(m);
}

Test(metrics, histogram_buckets_are_cumulative, .timeout = 10)
{
	static const double b[] = { 0.1, 0.5, 2 };
	struct pt_metrics *m = pt_metrics_new();
	struct pt_metric *h =
		pt_metrics_add(m, PT_METRIC_HISTOGRAM, "portico_pam_seconds", "PAM", NULL, b, 3);
	struct pt_series *s = pt_metric_series(h, NULL);
	char *t;

	cr_assert(h && s);
	pt_series_observe(s, 0.05);
	pt_series_observe(s, 0.1); /* le is "less than or equal" */
	pt_series_observe(s, 0.3);
	pt_series_observe(s, 7);
	t = render(m);
	cr_assert_str_eq(t, "# HELP portico_pam_seconds PAM\n"
			    "# TYPE portico_pam_seconds histogram\n"
			    "portico_pam_seconds_bucket{le=\"0.1\"} 2\n"
			    "portico_pam_seconds_bucket{le=\"0.5\"} 3\n"
			    "portico_pam_seconds_bucket{le=\"2\"} 3\n"
			    "portico_pam_seconds_bucket{le=\"+Inf\"} 4\n"
			    "portico_pam_seconds_sum 7.45\n"
			    "portico_pam_seconds_count 4\n");
	free(t);
	cr_assert_eq(pt_series_value(s), 4);
	pt_metrics_free(m);
}

Test(metrics, histogram_with_labels_puts_le_last, .timeout = 10)
{
	static const double b[] = { 1 };
	struct pt_metrics *m = pt_metrics_new();
	struct pt_metric *h =
		pt_metrics_add(m, PT_METRIC_HISTOGRAM, "x_seconds", "X", "pool", b, 1);
	char *t;

	pt_series_observe(pt_metric_with(h, "p1"), 0.5);
	t = render(m);
	assert_has(t, "x_seconds_bucket{pool=\"p1\",le=\"1\"} 1\n");
	assert_has(t, "x_seconds_bucket{pool=\"p1\",le=\"+Inf\"} 1\n");
	assert_has(t, "x_seconds_sum{pool=\"p1\"} 0.5\n");
	assert_has(t, "x_seconds_count{pool=\"p1\"} 1\n");
	free(t);
	pt_metrics_free(m);
}

Test(metrics, label_values_and_help_are_escaped, .timeout = 10)
{
	struct pt_metrics *m = pt_metrics_new();
	struct pt_metric *c = pt_metrics_add(m, PT_METRIC_COUNTER, "l_total",
					     "back\\slash and\nnewline \"kept\"", "pool", NULL, 0);
	char out[64], *t;

	pt_series_inc(pt_metric_with(c, "a\"b\\c\nd}e,f=g"));
	t = render(m);
	assert_has(t, "# HELP l_total back\\\\slash and\\nnewline \"kept\"\n");
	assert_has(t, "l_total{pool=\"a\\\"b\\\\c\\nd}e,f=g\"} 1\n");
	cr_assert_null(strstr(t, "d}e,f=g\"} 1\nl_total"), "a raw newline in the output");
	free(t);
	cr_assert_eq(pt_metrics_escape("a\"b\\c\n", out, sizeof(out)), 9);
	cr_assert_str_eq(out, "a\\\"b\\\\c\\n");
	cr_assert_eq(pt_metrics_escape("\"\"", out, 4), -ENOSPC);
	cr_assert_eq(pt_metrics_escape("", out, 1), 0);
	pt_metrics_free(m);
}

Test(metrics, malformed_names_and_families_are_refused, .timeout = 10)
{
	static const double up[] = { 1, 2 }, down[] = { 2, 1 };
	struct pt_metrics *m = pt_metrics_new();

	cr_assert_null(pt_metrics_add(m, PT_METRIC_COUNTER, "", "", NULL, NULL, 0));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_COUNTER, "1abc", "", NULL, NULL, 0));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_COUNTER, "a-b", "", NULL, NULL, 0));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_COUNTER, "a b", "", NULL, NULL, 0));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_COUNTER, "ok", "", "bad-label", NULL, 0));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_COUNTER, "ok", "", "__reserved", NULL, 0));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_COUNTER, "ok", "", "a,b,c,d,e", NULL, 0));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_HISTOGRAM, "h", "", "le", up, 2));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_HISTOGRAM, "h", "", NULL, down, 2));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_HISTOGRAM, "h", "", NULL, NULL, 0));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_COUNTER, "c", "", NULL, up, 2));
	cr_assert_not_null(pt_metrics_add(m, PT_METRIC_COUNTER, "ns:ok_total", "", "a,b", NULL, 0));
	cr_assert_null(pt_metrics_add(m, PT_METRIC_GAUGE, "ns:ok_total", "", NULL, NULL, 0),
		       "a second family of the same name");
	pt_metrics_free(m);
}

Test(metrics, a_family_holds_a_bounded_number_of_series, .timeout = 10)
{
	struct pt_metrics *m = pt_metrics_new();
	struct pt_metric *c = pt_metrics_add(m, PT_METRIC_COUNTER, "p_total", "", "pool", NULL, 0);
	char name[32];

	for (int i = 0; i < PT_METRICS_SERIES_MAX; i++) {
		snprintf(name, sizeof(name), "pool%d", i);
		cr_assert_not_null(pt_metric_with(c, name));
	}
	cr_assert_null(pt_metric_with(c, "one-more"));
	cr_assert_not_null(pt_metric_with(c, "pool7"), "an existing series is still found");
	pt_series_inc(NULL); /* what a caller does with the NULL: nothing */
	pt_series_observe(NULL, 1);
	pt_series_set(NULL, 1);
	pt_metrics_free(m);
}

static void collect(struct pt_metrics_sink *k, void *arg)
{
	const char *v1[] = { "p\"1", "ready" }, *v2[] = { "p2", "active" };

	(*(int *)arg)++;
	pt_metrics_emit(k, v1, 3);
	pt_metrics_emit(k, v2, 0.5);
}

Test(metrics, a_collected_family_is_asked_at_each_render, .timeout = 10)
{
	struct pt_metrics *m = pt_metrics_new();
	int calls = 0;
	struct pt_metric *f = pt_metrics_add_collected(m, PT_METRIC_GAUGE, "portico_sessions",
						       "Sessions", "pool,state", collect, &calls);
	char *t;

	cr_assert_not_null(f);
	cr_assert_null(pt_metric_with(f, "x", "y"), "a collected family has no series of its own");
	t = render(m);
	cr_assert_str_eq(t, "# HELP portico_sessions Sessions\n"
			    "# TYPE portico_sessions gauge\n"
			    "portico_sessions{pool=\"p\\\"1\",state=\"ready\"} 3\n"
			    "portico_sessions{pool=\"p2\",state=\"active\"} 0.5\n");
	free(t);
	free(render(m));
	cr_assert_eq(calls, 2);
	pt_metrics_free(m);
}

Test(metrics, standard_families, .timeout = 10)
{
	struct pt_metrics *m = pt_metrics_new();
	char *t;

	cr_assert_eq(pt_metrics_standard(m, "gateway"), 0);
	t = render(m);
	assert_has(t, "portico_build_info{version=\"" PT_VERSION "\",daemon=\"gateway\"} 1\n");
	assert_has(t, "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1");
	free(t);
	pt_metrics_free(m);
}

static struct pt_series *shared_counter, *shared_hist;

static void *count_many(void *arg)
{
	for (int i = 0; i < 100000; i++) {
		pt_series_inc(shared_counter);
		pt_series_observe(shared_hist, 1);
	}
	return arg;
}

Test(metrics, counting_from_many_threads_loses_nothing, .timeout = 30)
{
	static const double b[] = { 0.5, 2 };
	struct pt_metrics *m = pt_metrics_new();
	pthread_t t[4];
	char *text;

	shared_counter = pt_metric_series(
		pt_metrics_add(m, PT_METRIC_COUNTER, "n_total", "", NULL, NULL, 0), NULL);
	shared_hist = pt_metric_series(
		pt_metrics_add(m, PT_METRIC_HISTOGRAM, "h_seconds", "", NULL, b, 2), NULL);
	for (int i = 0; i < 4; i++)
		pthread_create(&t[i], NULL, count_many, NULL);
	for (int i = 0; i < 4; i++) {
		free(render(m)); /* renders while they count */
		pthread_join(t[i], NULL);
	}
	text = render(m);
	assert_has(text, "n_total 400000\n");
	assert_has(text, "h_seconds_bucket{le=\"2\"} 400000\n");
	assert_has(text, "h_seconds_sum 400000\n");
	assert_has(text, "h_seconds_count 400000\n");
	free(text);
	pt_metrics_free(m);
}

/* --- the relay's totals (pt_relay_count) ---------------------------------- */

/* A connected pair of loopback TCP sockets: *a the connecting end, *b the
 * accepted one. */
static void tcp_pair(int *a, int *b)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int l = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(l >= 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&sin, &len), 0);
	*a = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(*a, (struct sockaddr *)&sin, sizeof(sin)), 0);
	*b = accept(l, NULL, NULL);
	cr_assert(*b >= 0);
	close(l);
}

static struct pt_stream *stream_of(uv_loop_t *loop, int fd)
{
	struct pt_stream *s = pt_plain_new(loop, UV_TCP);

	cr_assert_not_null(s);
	cr_assert_eq(uv_tcp_open((uv_tcp_t *)pt_plain_uv(s), fd), 0);
	return s;
}

static int relay_ended;

static void on_counted_relay_done(struct pt_relay *r, int status)
{
	relay_ended = 1;
}

/* Send n bytes into from, run the loop until they come out of to. */
static void move(uv_loop_t *loop, int from, int to, size_t n)
{
	static char buf[65536];
	size_t got = 0;

	memset(buf, 'x', sizeof(buf));
	cr_assert(n <= sizeof(buf));
	cr_assert_eq(write(from, buf, n), (ssize_t)n);
	for (int i = 0; got < n && i < 100000; i++) {
		ssize_t k;

		uv_run(loop, UV_RUN_NOWAIT);
		k = recv(to, buf, sizeof(buf), MSG_DONTWAIT);
		if (k > 0)
			got += (size_t)k;
	}
	cr_assert_eq(got, n, "%zu of %zu bytes through the relay", got, n);
}

Test(metrics, a_relay_adds_its_bytes_to_the_totals_as_they_move, .timeout = 30)
{
	struct pt_metrics *m = pt_metrics_new();
	struct pt_metric *f = pt_metrics_add(m, PT_METRIC_COUNTER, "b_total", "", "direction",
					     NULL, 0);
	struct pt_series *up = pt_metric_with(f, "up"), *down = pt_metric_with(f, "down");
	int client, front, back, server;
	uv_loop_t loop;
	struct pt_relay *r;

	uv_loop_init(&loop);
	tcp_pair(&client, &front);
	tcp_pair(&back, &server);
	r = pt_relay_start(&loop, stream_of(&loop, front), stream_of(&loop, back), 0,
			   on_counted_relay_done, NULL);
	cr_assert_not_null(r);
	cr_assert(pt_relay_stats(r)->spliced, "two plain sockets take the splice path");
	move(&loop, client, server, 1000);
	/* Counted from here on; what moved before is added at once. */
	pt_relay_count(r, up, down);
	cr_assert_eq(pt_series_value(up), 1000);
	cr_assert_eq(pt_series_value(down), 0);
	move(&loop, client, server, 50000);
	move(&loop, server, client, 30000);
	cr_assert_eq(pt_series_value(up), 51000, "while the relay runs");
	cr_assert_eq(pt_series_value(down), 30000);
	close(client);
	close(server);
	for (int i = 0; !relay_ended && i < 100000; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	cr_assert(relay_ended);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_assert_eq(uv_loop_close(&loop), 0);
	cr_assert_eq(pt_series_value(up), 51000);
	pt_metrics_free(m);
}
