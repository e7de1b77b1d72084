/*
 * portico-gateway - carries VNC and RDP streams between clients and
 * their sessions.
 *
 *   portico-gateway [-c FILE] [-v] [-t]
 *
 * Never runs as root: started as root, it loads its key and binds its
 * ports, then becomes [gateway] user for good.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "gateway.h"
#include "portico/daemon.h"
#include "portico/audit.h"
#include "portico/log.h"
#include "portico/priv.h"
#include "portico/sources.h"
#include "portico/tls.h"

/* Stopping: no new connection, every open one closed (relays, RDP login
 * steps, handshakes); the loop then runs until the last of them is gone
 * and the last job on the thread pool (a disconnect reported to the
 * broker, a login process starting) has ended, and only then does main
 * free what they read. */
/* SIGHUP: the audit trail opened again, after logrotate moved it. */
static void on_hup(uv_signal_t *s, int signum)
{
	pt_audit_hup();
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct gw *g = s->data;

	if (g->stopping) {
		pt_log_info("already stopping (signal %d): waiting for %d job%s", signum,
			    g->works, g->works == 1 ? "" : "s");
		return;
	}
	g->stopping = 1;
	pt_log_info("stopping (signal %d)", signum);
	gw_metrics_close(g);
	gw_control_stop(g);
	gw_conn_close_all(g);
}

/* TLSPlain: anonymous Diffie-Hellman in TLS 1.2 (TLS 1.3 has none). */
static SSL_CTX *anon_ctx(char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, "aNULL:!eNULL@SECLEVEL=0") != 1) {
		snprintf(err, errlen, "cannot set up anonymous TLS");
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
	return ctx;
}

static void started_done(void *arg, int rc, struct pt_api_resp *resp, const char *err)
{
	char msg[200];

	(void)arg;
	if (rc)
		pt_log_warnx("cannot tell the broker this gateway started: %s", err);
	else if (resp->status != 200)
		pt_log_warnx("the broker refused this gateway's start: %s",
			     pt_api_message(resp, msg, sizeof(msg)));
}

int main(int argc, char **argv)
{
	int test_only = 0, rc;
	struct pt_conf *conf;
	static struct gw gw;
	struct gw *g = &gw;
	struct pt_tls_conf tls;
	char err[1024];

	/* The RDP login step's process (rdp_login.c), started by the gateway. */
	if (argc == 2 && !strcmp(argv[1], "--rdp-login"))
		gw_rdp_login_main();
	conf = pt_daemon_start(argc, argv, "gateway", &test_only);
	pt_conf_keep_secrets(conf, PT_SECRET_GATEWAY);
	if (test_only)
		pt_daemon_test_ok(conf);
	int vnc = conf->gateway.vnc_listen && *conf->gateway.vnc_listen;
	int rdp = conf->gateway.rdp_listen && *conf->gateway.rdp_listen;
	int https = conf->gateway.https_listen && *conf->gateway.https_listen;
	if (!vnc && !rdp && !https)
		pt_fatalx("%s: [gateway] vnc_listen, rdp_listen and https_listen are all empty: "
			  "nothing to serve",
			  conf->path);
	if (!conf->broker.gateway_secret && !conf->tls.ca)
		pt_log_warnx("neither [broker] gateway_secret nor [tls] ca is set: the broker "
			     "will not take this gateway's calls");
	signal(SIGPIPE, SIG_IGN);
	g->conf = conf;
	g->loop = uv_default_loop();
	pt_conf_tls_of(conf, PT_NODE_GATEWAY, &tls);
	g->tls = pt_tls_server_ctx(&tls, err, sizeof(err));
	if (!g->tls)
		pt_fatalx("%s", err);
	if (conf->gateway.vnc_anon_tls && !(g->anon = anon_ctx(err, sizeof(err))))
		pt_fatalx("%s", err);
	g->api.base = conf->gateway.broker;
	pt_api_conf_tls(&g->api, &tls);
	g->api.bearer = conf->broker.gateway_secret;
	if (pt_api_conf_load_identity(&g->api))
		pt_fatal("cannot read %s or %s", tls.cert, tls.key);
	g->api.timeout_ms = 30000;
	g->api.log_failover = 1;
	if (vnc && (rc = gw_vnc_listen(g)) < 0)
		pt_fatalx("cannot listen on %s: %s", conf->gateway.vnc_listen, uv_strerror(rc));
	if (rdp && gw_rdp_login_init(g, err, sizeof(err)))
		pt_fatalx("%s", err);
	if (rdp && (rc = gw_rdp_listen(g)) < 0)
		pt_fatalx("cannot listen on %s: %s", conf->gateway.rdp_listen, uv_strerror(rc));
	if (https) {
		/* Browsers and RD Gateway clients see [tls] cert, the public
		 * one (made self-signed when absent), and present none. */
		struct pt_tls_conf pub = conf->tls;
		const char *cn = conf->gateway.public_host && *conf->gateway.public_host
					 ? conf->gateway.public_host
					 : "localhost";
		struct stat sb;
		pub.ca = NULL;
		/* Made for public_host, the name clients dial, when neither
		 * file exists (as the RDP login step does). */
		if (pub.cert && pub.key && stat(pub.cert, &sb) < 0 && errno == ENOENT &&
		    stat(pub.key, &sb) < 0 && errno == ENOENT) {
			if (pt_tls_make_self_signed(pub.cert, pub.key, cn, err, sizeof(err)))
				pt_fatalx("%s", err);
			pt_log_info("generated a self-signed ECDSA P-256 certificate for %s in %s (key "
				    "%s) for browsers and RDP clients; they will not trust it until "
				    "you install your own or hand them this one",
				    cn, pub.cert, pub.key);
		}
		if (!(g->https_tls = pt_tls_server_ctx(&pub, err, sizeof(err))))
			pt_fatalx("%s", err);
		/* Read as root, before dropping it (web_files.c says why). */
		if (gw_files_load(&g->files, conf->gateway.web_root, "", err, sizeof(err)))
			pt_fatalx("[gateway] web_root: %s", err);
		/* Without noVNC the rest of the front still serves. */
		if (gw_files_load(&g->files, conf->gateway.novnc_root, "/novnc", err, sizeof(err)))
			pt_log_warnx("[gateway] novnc_root: %s: VNC desktops will not open in "
				     "browsers (install Debian's novnc, or set novnc_root)",
				     err);
		pt_log_info("https: serving %zu files (%zu KiB) from %s and %s", g->files.n,
			    g->files.bytes >> 10, conf->gateway.web_root, conf->gateway.novnc_root);
		if ((rc = gw_https_listen(g)) < 0)
			pt_fatalx("cannot listen on %s: %s", conf->gateway.https_listen,
				  uv_strerror(rc));
	}
	if (gw_metrics_init(g, err, sizeof(err)))
		pt_fatalx("[gateway] metrics_listen: %s", err);
	/* As root, before dropping it: what the descriptors allow. */
	g->max_connections =
		pt_daemon_nofile(GW_FDS_PER_CONN,
				 GW_FDS_HEADROOM +
					 (rdp ? GW_FDS_PER_LOGIN * (int)conf->gateway.rdp_max_logins
					      : 0),
				 conf->gateway.max_connections, "max_connections");
	pt_drop_privileges(conf->gateway.user, "[gateway] user");
	/* As the user it runs as: the one that reopens it after a rotation. */
	if (conf->gateway.audit_log && *conf->gateway.audit_log &&
	    pt_audit_open(conf->gateway.audit_log, "gateway", err, sizeof(err)))
		pt_fatalx("%s ([gateway] audit_log)", err);
	/* Its login processes run as the same user: none of them may trace
	 * it or read its memory (its key, gateway_secret), even where it was
	 * started unprivileged and kept the dumpable flag. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		pt_fatal("prctl(PR_SET_DUMPABLE)");
	setenv("UV_THREADPOOL_SIZE", "16", 0);
	if (pt_api_global_init())
		pt_fatalx("cannot initialise libcurl");

	uv_signal_t sigterm, sigint, sighup;
	uv_signal_init(g->loop, &sighup);
	sighup.data = g;
	uv_signal_start(&sighup, on_hup, SIGHUP);
	uv_unref((uv_handle_t *)&sighup);
	uv_signal_init(g->loop, &sigterm);
	sigterm.data = g;
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_init(g->loop, &sigint);
	sigint.data = g;
	uv_signal_start(&sigint, on_signal, SIGINT);
	/* The signals alone do not keep the loop running: it ends once the
	 * listeners, every connection, every login process and every job are
	 * gone (on_signal). */
	uv_unref((uv_handle_t *)&sigterm);
	uv_unref((uv_handle_t *)&sigint);
	pt_log_info("broker %s", conf->gateway.broker);
	/* Relays a previous run held died with it (kill -9, a crash) without a
	 * "disconnect": the broker marks the sessions it last saw connected
	 * through this gateway before now as disconnected (docs/api.md). */
	if (gw_call(g, "/api/v1/gateway/events",
		    json_pack("{s:s,s:I}", "event", "started", "at_ms", (json_int_t)gw_now_ms()),
		    started_done, NULL))
		pt_log_warnx("cannot tell the broker this gateway started (out of memory)");
	gw_control_start(g);
	uv_run(g->loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&sigterm, NULL);
	uv_close((uv_handle_t *)&sigint, NULL);
	uv_close((uv_handle_t *)&sighup, NULL);
	uv_run(g->loop, UV_RUN_DEFAULT);
	if (g->works || g->conns || uv_loop_close(g->loop) != 0)
		pt_fatalx("stopping left work behind (%d jobs, connections: %s)", g->works,
			  g->conns ? "some" : "none");
	pt_sources_free(g->sources);
	SSL_CTX_free(g->tls);
	SSL_CTX_free(g->anon);
	SSL_CTX_free(g->https_tls);
	gw_files_free(&g->files);
	free(g->rdp_cert_pem);
	if (g->rdp_key_pem)
		explicit_bzero(g->rdp_key_pem, strlen(g->rdp_key_pem));
	free(g->rdp_key_pem);
	pt_log_info("stopped");
	pt_audit_close();
	pt_conf_free(conf);
	return 0;
}
