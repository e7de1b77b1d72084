/*
 * session.h - portico-sessiond's parts.
 *
 *   portico-sessiond (root)        root.c: starts and stops sessions on the
 *     │  socketpair, pt_ipc_sess_*  network side's request, adopts running
 *     │                             ones after a restart
 *     ├── network side (user)      net.c: the HTTPS API the broker calls,
 *     │                             register and heartbeat to the broker
 *     └── one monitor per session  monitor.c: PAM session, the user's Xvnc
 *           (root, setsid)          and program (or a VM), cleanup at the end
 *
 * A monitor keeps a state file, RUN_DIR/state/ID (root only), so that a
 * restarted sessiond finds the sessions that kept running without it.
 */
#ifndef SESSION_SESSION_H
#define SESSION_SESSION_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "portico/conf.h"
#include "portico/ipc.h"

/* What a monitor records about its session (RUN_DIR/state/ID). */
struct sd_state {
	int64_t id;
	pid_t monitor;
	uid_t uid;
	pid_t pgid[2]; /* process groups of the display and the program, 0: none */
	int kind, driver;
	char user[256];
	char pool[72];
	char backend[256];
	char secret[64];
	char ended[64]; /* why it ended, once it has */
};

int sd_state_path(const struct pt_conf *conf, int64_t id, char *buf, size_t len);
int sd_state_write(const struct pt_conf *conf, const struct sd_state *st);
int sd_state_read(const char *path, struct sd_state *st);

/* monitor.c: run session req in this (forked, root) process; report
 * STARTED or FAILED on report_fd, keep the session until it ends or
 * SIGTERM comes, clean up, write why into the state file, exit. */
_Noreturn void sd_monitor_run(const struct pt_conf *conf, const struct pt_ipc_sess_req *req,
			      int report_fd);

/* root.c: the root side's loop, until the network side goes away. */
int sd_root_run(const struct pt_conf *conf, int ipc_fd, pid_t net_pid);

/* net.c: the network side's loop, as [sessiond] user. */
int sd_net_run(const struct pt_conf *conf, int ipc_fd, void *server_ctx);

/* net.c: read this host's credential towards the broker (as root, before
 * the network side drops privileges). */
int sd_net_load_identity(const struct pt_conf *conf);

#endif
