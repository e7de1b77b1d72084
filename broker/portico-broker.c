/*
 * portico-broker - authenticates users and assigns them sessions.
 *
 *   portico-broker [-c FILE] [-v] [-t]
 *
 * Two processes (the OpenSMTPD/OpenSSH privilege separation): the parent
 * stays root and does PAM only (authd.c: no network, no libuv, no OpenSSL),
 * answering fixed-size messages over a socketpair; the child drops to
 * [broker] user and does everything else.  Either one's death ends both.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "authd.h"
#include "broker.h"
#include "control.h"
#include "hostq.h"
#include "metrics.h"
#include "portico/api.h"
#include "portico/audit.h"
#include "portico/daemon.h"
#include "portico/log.h"
#include "portico/priv.h"
#include "portico/privsep.h"
#include "portico/tls.h"

#define SWEEP_MS 1000

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill(child_pid, sig);
}

/* The root parent: PAM until the network side goes away. */
static _Noreturn void run_authd(int fd, pid_t child, const char *service)
{
	struct sigaction sa = { .sa_handler = forward_signal };
	int status = 0, rc;

	child_pid = child;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* the audit trail reopened (logrotate) */
	signal(SIGPIPE, SIG_IGN);
	/* Pinned: a compromised network side cannot ask root for another
	 * service (one with pam_rootok would let anybody in). */
	brk_authd_prepare(service);
	rc = brk_authd_run_service(fd, service);
	if (rc != 0) {
		pt_log_warnx("stopping the network side after a malformed message");
		kill(child, SIGKILL);
	}
	close(fd);
	while (waitpid(child, &status, 0) == -1 && errno == EINTR)
		;
	if (rc != 0)
		exit(1);
	if (WIFSIGNALED(status)) {
		pt_log_warnx("the network side died of signal %d", WTERMSIG(status));
		exit(1);
	}
	exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

static struct brk broker;

/* SIGHUP: the audit trail opened again, after logrotate moved it. */
static void on_hup(uv_signal_t *s, int signum)
{
	pt_audit_hup();
}

static void on_signal(uv_signal_t *s, int signum)
{
	pt_log_info("stopping (signal %d)", signum);
	uv_stop(s->loop);
}

static void close_cb(uv_handle_t *h)
{
	(void)h;
}

/* After the loop: no new request; the ones in flight (on the thread pool,
 * waiting for PAM or a failed login's delay, a start on a session host)
 * and a sweep get to their end before the store and configuration they
 * read are freed.  Starts waiting for a host are answered at once; running
 * ones take [broker] start_timeout at most. */
static void stop(struct brk *b, uv_signal_t *sigterm, uv_signal_t *sigint)
{
	int calls = b->calls, busy = brk_hostq_busy(b->hostq), told;

	pt_httpd_close(b->http);
	brk_metrics_stop(b);
	uv_close((uv_handle_t *)&b->sweep, close_cb);
	uv_close((uv_handle_t *)sigterm, close_cb);
	uv_close((uv_handle_t *)sigint, close_cb);
	told = brk_hostq_stop(b->hostq);
	brk_longpoll_stop(b->longpoll);
	if (calls || busy || b->sweeping)
		pt_log_info("waiting for %d request%s, %d call%s to session hosts (%d of them "
			    "waiting: not made)%s",
			    calls, calls == 1 ? "" : "s", busy, busy == 1 ? "" : "s", told,
			    b->sweeping ? " and a sweep" : "");
	while (b->calls > 0 || b->sweeping || brk_hostq_busy(b->hostq) > 0 ||
	       brk_longpoll_busy(b->longpoll))
		uv_run(b->loop, UV_RUN_ONCE);
	brk_longpoll_free(b->longpoll);
	brk_hostq_free(b->hostq);
	brk_auth_free(b->auth);
	uv_run(b->loop, UV_RUN_NOWAIT); /* the closes */
	brk_throttle_free(b->throttle);
	brk_store_close(b->store);
	pt_conf_free((struct pt_conf *)b->conf);
}

int main(int argc, char **argv)
{
	int test_only = 0, ipc;
	struct pt_conf *conf;
	char err[1024];
	pid_t pid;

	conf = pt_daemon_start(argc, argv, "broker", &test_only);
	if (test_only)
		pt_daemon_test_ok(conf);
	if (!conf->tls.ca && (!conf->broker.gateway_secret || !conf->broker.host_secret ||
			      !conf->broker.broker_secret))
		pt_log_warnx("[tls] ca is not set and not every one of [broker] gateway_secret, "
			     "host_secret and broker_secret is: the nodes without one cannot "
			     "authenticate (docs/security.md)");
	if (geteuid() != 0)
		pt_log_warnx("not started as root: PAM modules that need root (pam_unix) will "
			     "refuse every login");

	/* TLS before the privileges go: the key may be readable by root only,
	 * and a first start writes a self-signed pair. */
	struct pt_tls_conf tls;
	pt_conf_tls_of(conf, PT_NODE_BROKER, &tls);
	SSL_CTX *ctx = pt_tls_server_ctx(&tls, err, sizeof(err));
	if (!ctx)
		pt_fatalx("%s", err);

	pid = pt_privsep_fork(&ipc);
	if (pid < 0) {
		errno = (int)-pid;
		pt_fatal("cannot start the network side");
	}
	if (pid > 0) {
		char service[64];
		SSL_CTX_free(ctx);
		snprintf(service, sizeof(service), "%s", conf->broker.pam_service);
		pt_conf_free(conf);
		run_authd(ipc, pid, service);
	}
	pt_log_init("broker", pt_log_level(), 0);
	/* Its credential towards session hosts, read while root may. */
	pt_api_conf_tls(&broker.host_api, &tls);
	broker.host_api.bearer = conf->broker.broker_secret;
	if (pt_api_conf_load_identity(&broker.host_api))
		pt_fatal("cannot read %s or %s", tls.cert, tls.key);
	/* One descriptor per HTTPS connection; the headroom holds the store,
	 * the calls to session hosts (one per pool thread), the PAM socket,
	 * the log and libuv's own. */
	conf->broker.max_connections =
		pt_daemon_nofile(1, 128, conf->broker.max_connections, "[broker] max_connections");
	pt_drop_privileges(conf->broker.user, "[broker] user");
	/* As the user it runs as: the one that reopens it after a rotation. */
	if (conf->broker.audit_log && *conf->broker.audit_log &&
	    pt_audit_open(conf->broker.audit_log, "broker", err, sizeof(err)))
		pt_fatalx("%s ([broker] audit_log)", err);
	pt_privsep_rearm(); /* the PAM process's death ends this side too */
	signal(SIGPIPE, SIG_IGN);
	/* Jobs block on SQL and NSS (an LDAP group look-up may take a while):
	 * more threads than libuv's default 4.  Calls to session hosts have
	 * threads of their own (hostq.h). */
	setenv("UV_THREADPOOL_SIZE", "32", 0);
	if (pt_api_global_init())
		pt_fatalx("cannot initialise libcurl");

	struct brk *b = &broker;
	b->conf = conf;
	b->loop = uv_default_loop();
	b->store = brk_store_open(conf->broker.store, err, sizeof(err));
	if (!b->store)
		pt_fatalx("%s", err);
	if (brk_load_pools(b))
		pt_fatalx("cannot load the pools into the store");
	b->throttle = brk_throttle_new(65536, (int)conf->broker.login_attempts,
				       conf->broker.login_window_ms);
	b->auth = brk_auth_new(b->loop, ipc, (int)conf->broker.max_logins,
			       (int)conf->broker.max_login_queue);
	b->hostq = brk_hostq_new(b->loop, (int)conf->broker.max_starts_per_host,
				 (int)conf->broker.max_start_queue);
	b->longpoll = brk_longpoll_new(b);
	if (!b->throttle || !b->auth || !b->hostq || !b->longpoll)
		pt_fatalx("out of memory");
	struct pt_httpd_limits lim = {
		.handshake_ms = 10000,
		.request_ms = 10000,
		.keepalive_ms = 30000,
		.max_conns = (int)conf->broker.max_connections,
		.max_conns_per_source = (int)conf->broker.max_connections_per_source,
	};
	b->http = pt_httpd_listen(b->loop, ctx, conf->broker.listen, &lim, brk_api_handle, b);
	if (!b->http)
		pt_fatalx("cannot listen on %s", conf->broker.listen);
	brk_sweep_start(b, SWEEP_MS);
	if (brk_metrics_init(b, err, sizeof(err)))
		pt_fatalx("[broker] metrics_listen: %s", err);

	uv_signal_t sigterm, sigint, sighup;
	uv_signal_init(b->loop, &sighup);
	sighup.data = b;
	uv_signal_start(&sighup, on_hup, SIGHUP);
	uv_signal_init(b->loop, &sigterm);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_init(b->loop, &sigint);
	uv_signal_start(&sigint, on_signal, SIGINT);
	pt_log_info("listening on %s (store %s)", conf->broker.listen, conf->broker.store);
	uv_run(b->loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&sighup, NULL);
	stop(b, &sigterm, &sigint);
	SSL_CTX_free(ctx); /* its connections are closed: the last reference */
	pt_log_info("stopped");
	pt_audit_close();
	return 0;
}
