/*
 * portico-sessiond - the agent on each session host.
 *
 *   portico-sessiond [-c FILE] [-v] [-t]
 *
 * Starts as root and splits (the OpenSSH privilege separation): the parent
 * stays root and only starts and stops sessions on checked, fixed-size
 * requests (root.c, monitor.c); the child drops to [sessiond] user and
 * talks HTTPS to the broker (net.c).  Stopping sessiond leaves the users'
 * sessions running: a restarted one adopts them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "portico/daemon.h"
#include "portico/log.h"
#include "portico/priv.h"
#include "portico/privsep.h"
#include "portico/tls.h"
#include "session.h"

/* run_dir/sessions/ID/vnc.sock must fit a unix socket address (108). */
#define RUN_DIR_MAX 64

int main(int argc, char **argv)
{
	int test_only = 0, fd, status = 0, rc;
	struct pt_conf *conf;
	char err[1024];
	SSL_CTX *ctx;
	struct pt_tls_conf tls;
	pid_t pid;

	conf = pt_daemon_start(argc, argv, "sessiond", &test_only);
	pt_conf_keep_secrets(conf, PT_SECRET_HOST | PT_SECRET_BROKER);
	if (strlen(conf->sessiond.run_dir) > RUN_DIR_MAX || conf->sessiond.run_dir[0] != '/')
		pt_fatalx("%s: [sessiond] run_dir must be an absolute path of at most %d bytes "
			  "(unix socket paths are short)",
			  conf->path, RUN_DIR_MAX);
	if (test_only)
		pt_daemon_test_ok(conf);
	if (geteuid() != 0)
		pt_fatalx("portico-sessiond must start as root: it starts sessions as their users");
	if (!conf->tls.ca && (!conf->broker.broker_secret || !conf->broker.host_secret))
		pt_log_warnx("[tls] ca is not set and [broker] broker_secret or host_secret is "
			     "not either: the broker cannot authenticate to this agent, or this "
			     "agent to the broker (docs/security.md)");
	umask(022);
	if (mkdir(conf->sessiond.run_dir, 0755) == -1 && errno != EEXIST)
		pt_fatal("cannot make %s", conf->sessiond.run_dir);
	/* TLS before the split: the key may be root's alone. */
	pt_conf_tls_of(conf, PT_NODE_SESSIOND, &tls);
	ctx = pt_tls_server_ctx(&tls, err, sizeof(err));
	if (!ctx)
		pt_fatalx("%s", err);
	pid = pt_privsep_fork(&fd);
	if (pid < 0) {
		errno = (int)-pid;
		pt_fatal("cannot start the network side");
	}
	if (pid == 0) {
		/* Its credential, and only the hash of the broker's secret
		 * (net.c): one host's network side cannot call another. */
		if (sd_net_load_identity(conf))
			pt_fatal("cannot read this host's certificate or key");
		pt_conf_keep_secrets(conf, PT_SECRET_HOST);
		/* One descriptor per HTTPS connection; the headroom holds the
		 * calls to the broker (one per pool thread), the root side's
		 * socket, the log and libuv's own. */
		conf->sessiond.max_connections =
			pt_daemon_nofile(1, 64, conf->sessiond.max_connections,
					 "[sessiond] max_connections");
		pt_drop_privileges(conf->sessiond.user, "[sessiond] user");
		/* The root side's death ends this side too (the change of
		 * user cleared the parent-death signal). */
		pt_privsep_rearm();
		signal(SIGPIPE, SIG_IGN);
		/* Calls to the broker block on the thread pool. */
		setenv("UV_THREADPOOL_SIZE", "8", 0);
		/* sd_net_run returns once its calls to the broker have ended
		 * (they read the configuration and the TLS state). */
		rc = sd_net_run(conf, fd, ctx);
		SSL_CTX_free(ctx);
		pt_conf_free(conf);
		exit(rc);
	}
	SSL_CTX_free(ctx);
	/* The root side and its monitors (which run PAM's modules) need no
	 * secret. */
	pt_conf_keep_secrets(conf, 0);
	rc = sd_root_run(conf, fd, pid);
	close(fd);
	kill(pid, SIGTERM);
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	pt_log_info("stopped");
	pt_conf_free(conf);
	return rc;
}
