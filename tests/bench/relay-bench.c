/*
 * relay-bench - the gateway's relay on its own, for tests/bench/relay.sh.
 *
 *   relay-bench -l PORT -b BACKEND_PORT [--cert F --key F] [--plain] [--metrics ADDR]
 *
 * Accepts TLS clients (plain ones with --plain) on 127.0.0.1:PORT and relays
 * each to a plain TCP backend on 127.0.0.1:BACKEND_PORT with libportico's
 * TLS stream and relay, exactly as the gateway does.  Without --cert/--key a
 * self-signed pair is generated in a temporary directory.  With --metrics
 * each relay's bytes are counted into portico_relay_bytes_total{direction}
 * as the gateway counts them (pt_relay_count: an atomic add per chunk), and
 * served on ADDR's /metrics, as with [gateway] metrics_listen (docs/bench.md,
 * "Metrics").
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portico/conf.h"
#include "portico/log.h"
#include "portico/metrics.h"
#include "portico/net.h"
#include "portico/relay.h"
#include "portico/tls.h"

struct bench {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_signal_t sigterm, sigint;
	SSL_CTX *ctx;
	struct sockaddr_storage backend;
	int plain;
	uint64_t next_id;
	uint64_t idle_ms;
	struct pt_series *up, *down; /* --metrics, else NULL */
};

struct conn {
	struct bench *b;
	struct pt_stream *client, *server;
	uv_connect_t creq;
};

static void usage(void)
{
	fprintf(stderr, "usage: relay-bench -l PORT -b BACKEND_PORT [--cert FILE --key FILE] "
			"[--plain] [--idle-timeout MS] [--metrics ADDR] [-v]\n");
	exit(2);
}

static void on_relay_done(struct pt_relay *r, int status)
{
	struct conn *c = pt_relay_data(r);
	const struct pt_relay_stats *st = pt_relay_stats(r);

	if (status && status != UV_ECONNRESET)
		pt_log(PT_LOG_DEBUG, c->client ? c->client->id : 0, "relay ended: %s",
		       uv_strerror(status));
	pt_log(PT_LOG_DEBUG, 0, "closed: up %llu down %llu bytes%s",
	       (unsigned long long)st->bytes_up, (unsigned long long)st->bytes_down,
	       st->spliced ? " (spliced)" : "");
	free(c);
}

static void on_closed_free(struct pt_stream *s)
{
	(void)s;
}

static void on_backend(uv_connect_t *req, int status)
{
	struct conn *c = req->data;
	struct bench *b = c->b;
	struct pt_stream *front = c->client;
	struct pt_relay *r;

	if (status < 0) {
		pt_log(PT_LOG_WARNING, c->client->id, "backend: %s", uv_strerror(status));
		pt_stream_close(c->client, on_closed_free);
		pt_stream_close(c->server, on_closed_free);
		free(c);
		return;
	}
	uv_tcp_nodelay((uv_tcp_t *)pt_plain_uv(c->server), 1);
	if (!b->plain) {
		front = pt_tls_stream_new(c->client, b->ctx, 1, NULL);
		if (!front) {
			pt_stream_close(c->client, on_closed_free);
			pt_stream_close(c->server, on_closed_free);
			free(c);
			return;
		}
	}
	c->client = front;
	if (!(r = pt_relay_start(b->loop, front, c->server, b->idle_ms, on_relay_done, c))) {
		pt_stream_close(front, on_closed_free);
		pt_stream_close(c->server, on_closed_free);
		free(c);
		return;
	}
	if (b->up)
		pt_relay_count(r, b->up, b->down);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct bench *b = server->data;
	struct conn *c;
	int rc;

	if (status < 0) {
		pt_log_warnx("accept: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	c->b = b;
	c->client = pt_plain_new(b->loop, UV_TCP);
	c->server = pt_plain_new(b->loop, UV_TCP);
	if (!c->client || !c->server)
		goto fail;
	c->client->id = c->server->id = ++b->next_id;
	if (uv_accept(server, pt_plain_uv(c->client)) != 0)
		goto fail;
	uv_tcp_nodelay((uv_tcp_t *)pt_plain_uv(c->client), 1);
	c->creq.data = c;
	rc = uv_tcp_connect(&c->creq, (uv_tcp_t *)pt_plain_uv(c->server),
			    (const struct sockaddr *)&b->backend, on_backend);
	if (rc == 0)
		return;
	pt_log_warnx("connect: %s", uv_strerror(rc));
fail:
	if (c->client)
		pt_stream_close(c->client, on_closed_free);
	if (c->server)
		pt_stream_close(c->server, on_closed_free);
	free(c);
}

static void on_signal(uv_signal_t *s, int signum)
{
	(void)signum;
	uv_stop(s->loop);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "cert", required_argument, NULL, 'C' },
		{ "key", required_argument, NULL, 'K' },
		{ "plain", no_argument, NULL, 'P' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "metrics", required_argument, NULL, 'M' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench b = { 0 };
	struct pt_conf *conf = pt_conf_defaults();
	char tmpdir[] = "/tmp/relay-bench-XXXXXX", certp[64], keyp[64], addr[64], err[512];
	const char *cert = NULL, *key = NULL, *metrics = NULL;
	int port = 0, bport = 0, opt, rc;
	int64_t v;

	while ((opt = getopt_long(argc, argv, "l:b:v", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (pt_conf_parse_int(optarg, 1, 65535, &v))
				usage();
			port = (int)v;
			break;
		case 'b':
			if (pt_conf_parse_int(optarg, 1, 65535, &v))
				usage();
			bport = (int)v;
			break;
		case 'C':
			cert = optarg;
			break;
		case 'K':
			key = optarg;
			break;
		case 'P':
			b.plain = 1;
			break;
		case 'I':
			if (pt_conf_parse_int(optarg, 0, INT64_MAX, &v))
				usage();
			b.idle_ms = (uint64_t)v;
			break;
		case 'M':
			metrics = optarg;
			break;
		case 'v':
			pt_log_init("relay-bench", PT_LOG_DEBUG, 0);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || !port || !bport || !conf || (!cert) != (!key))
		usage();
	if (pt_log_level() != PT_LOG_DEBUG)
		pt_log_init("relay-bench", PT_LOG_INFO, 0);
	signal(SIGPIPE, SIG_IGN);

	if (!b.plain) {
		struct pt_tls_conf tc = conf->tls;
		if (!cert) {
			if (!mkdtemp(tmpdir))
				pt_fatal("mkdtemp");
			snprintf(certp, sizeof(certp), "%s/cert.pem", tmpdir);
			snprintf(keyp, sizeof(keyp), "%s/key.pem", tmpdir);
			cert = certp;
			key = keyp;
		}
		tc.cert = (char *)cert;
		tc.key = (char *)key;
		tc.ca = NULL;
		b.ctx = pt_tls_server_ctx(&tc, err, sizeof(err));
		if (!b.ctx)
			pt_fatalx("%s", err);
		if (cert == certp) {
			unlink(certp);
			unlink(keyp);
			rmdir(tmpdir);
		}
	}
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", bport);
	pt_net_parse_addr(addr, -1, &b.backend);

	b.loop = uv_default_loop();
	uv_tcp_init(b.loop, &b.listener);
	b.listener.data = &b;
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	rc = pt_net_listen(&b.listener, addr, 4096, on_connection);
	if (rc)
		pt_fatalx("listen on %s: %s", addr, uv_strerror(rc));
	if (metrics) {
		struct pt_metrics *m = pt_metrics_new();
		struct pt_metric *f = pt_metrics_add(m, PT_METRIC_COUNTER, "portico_relay_bytes_total",
						     "Bytes relayed", "direction", NULL, 0);

		b.up = pt_metric_with(f, "up");
		b.down = pt_metric_with(f, "down");
		if (!b.up || !b.down || pt_metrics_standard(m, "relay-bench") < 0)
			pt_fatalx("metrics: out of memory");
		if (!pt_metrics_http_listen(b.loop, metrics, m, err, sizeof(err)))
			pt_fatalx("%s", err);
	}
	uv_signal_init(b.loop, &b.sigterm);
	uv_signal_start(&b.sigterm, on_signal, SIGTERM);
	uv_signal_init(b.loop, &b.sigint);
	uv_signal_start(&b.sigint, on_signal, SIGINT);
	pt_log_info("relaying %s 127.0.0.1:%d -> 127.0.0.1:%d", b.plain ? "plain" : "TLS", port,
		    bport);
	uv_run(b.loop, UV_RUN_DEFAULT);
	pt_log_info("stopped");
	SSL_CTX_free(b.ctx);
	pt_conf_free(conf);
	return 0;
}
