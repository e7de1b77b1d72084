/*
 * session.h - portico-sessiond's parts.
 *
 *   portico-sessiond (root)        root.c: starts and stops sessions on the
 *     │  socketpair, pt_ipc_sess_*  network side's request, adopts running
 *     │                             ones after a restart
 *     ├── network side (user)      net.c: the HTTPS API the broker calls,
 *     │                             register and heartbeat to the broker
 *     └── one monitor per session  monitor.c: PAM session and lifecycle;
 *           (root, setsid)          spawn.c: the session's processes;
 *                                   drv_xvnc.c, drv_qemu.c: what runs
 *
 * The root side trusts nothing the network side sends: every request is
 * checked again by checks.c, in the root process before a monitor is
 * forked and in the monitor before it acts (files.c: what root makes in
 * directories others own, only relative to directory descriptors).
 *
 * A monitor keeps a state file, RUN_DIR/state/ID (root only), so that a
 * restarted sessiond finds the sessions that kept running without it.
 */
#ifndef SESSION_SESSION_H
#define SESSION_SESSION_H

#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <sys/types.h>

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

/* RUN_DIR/state/ID (RUN_DIR/state itself for id 0), made when missing.
 * 0 or -1. */
int sd_state_path(const struct pt_conf *conf, int64_t id, char *buf, size_t len);
/* Write st atomically (0600).  -1 also when a text field holds a control
 * character: nothing the state file holds may break its lines. */
int sd_state_write(const struct pt_conf *conf, const struct sd_state *st);
/* Read one; -1 unless it is a regular file of root's (not a symbolic link)
 * with an id, a safe user name (or none) and a valid pool name. */
int sd_state_read(const char *path, struct sd_state *st);

/* --- checks.c: what the root side and every monitor check ------------------ */

/* What sd_check_req found out: who the session runs as, what it runs. */
struct sd_checked {
	struct passwd pw; /* the user's account, or [sessiond] vm_user's (qemu) */
	char pwbuf[4096];
	char program[PATH_MAX]; /* an xvnc app pool's program, resolved; else "" */
};

/* A notice an admin sends to a session's user (PT_SESS_NOTICE, the
 * command field): 1 to SD_NOTICE_MAX bytes, no control character but a
 * line break.  1 when it is one. */
#define SD_NOTICE_MAX 400
int sd_notice_ok(const char *text);

/* The form of a request, before anything else is looked at: an operation
 * the root side knows (START, STOP, SPARE, NOTICE with a text
 * sd_notice_ok takes), a positive id, a spare VM's id
 * (from PT_SESS_SPARE_BASE) for SPARE and only for it, and SPARE only for
 * the qemu driver.  A request that fails is no request a network side of
 * ours sends: a protocol violation, which ends it.  0, or -EPROTO with a
 * phrase for the log in *why. */
int sd_check_msg(const struct pt_ipc_sess_req *req, const char **why);

/* Check a START or SPARE request whatever the network side checked: kind
 * and driver, the pool's name by the configuration's rule, the user (a
 * safe name; on xvnc an account that exists, is not root and has a uid of
 * at least UID_MIN unless [sessiond] allow_users names it), the geometry,
 * an app's program (an absolute path to a root-owned executable nobody
 * else may change) and a VM's image (below [sessiond] image_dir, no
 * symbolic link followed).  0 with *out filled, or a negative errno with
 * a sentence for people in why. */
int sd_check_req(const struct pt_conf *conf, const struct pt_ipc_sess_req *req,
		 struct sd_checked *out, char *why, size_t len);

/* An app pool's command: words split at blanks (no shell, no quoting),
 * the program first.  At most SD_CMD_WORDS words of at most SD_CMD_WORD
 * bytes each (the IPC field bounds the whole at 1023). */
#define SD_CMD_WORDS 63
#define SD_CMD_WORD  512

/* Split cmd at blanks into argv (SD_CMD_WORDS + 1 slots, NULL after the
 * last word), the words copied into buf (len bytes, at least strlen(cmd) +
 * 1).  The number of words, -E2BIG when there are more than SD_CMD_WORDS
 * (none is dropped silently), -ENAMETOOLONG when buf is too small. */
int sd_command_split(const char *cmd, char *buf, size_t len, char *argv[SD_CMD_WORDS + 1]);

/* A name safe in a state file, a path component and a QEMU option: 1 to
 * 255 bytes, no control character, '/' or ',', not starting with '.' or
 * '-'.  1 when it is. */
int sd_name_safe(const char *name);

/* src for a message or a log line: control characters become '?'. */
void sd_printable(char *dst, size_t len, const char *src);
/* No control character in s: it may go into a state file's line. */
int sd_text_safe(const char *s);

/* UID_MIN of /etc/login.defs; 1000 when it is unset or unreadable. */
uid_t sd_uid_min(void);
/* UID_MAX of /etc/login.defs; 60000 when it is unset or unreadable. */
uid_t sd_uid_max(void);

/* --- files.c: root in directories others own ------------------------------- */

/* Make `name` below the directory at (mkdirat, mode; an existing one is
 * fine) and open it (O_DIRECTORY | O_NOFOLLOW).  The fd or -errno. */
int sd_dir_at(int at, const char *name, mode_t mode);
/* Open `path` as a directory of root's that nobody else may write in
 * (made with mode when missing).  The fd or -errno (-EPERM: owned by
 * another user or writable by group or others). */
int sd_root_dir(const char *path, mode_t mode);
/* Remove directory `name` below at: its files first (unlinkat, which never
 * follows a link), then itself.  0 or -errno (-ENOENT when it is gone). */
int sd_dir_remove(int at, const char *name);
/* Hand the socket `name` below dirfd to uid:gid, if it is a socket of
 * owner's (fstat on an O_PATH descriptor, then fchownat on that same
 * descriptor: no name is looked up twice).  0 or -errno (-EPERM: not a
 * socket of owner's). */
int sd_hand_socket(int dirfd, const char *name, uid_t owner, uid_t uid, gid_t gid);

/* --- spawn.c ---------------------------------------------------------------- */

/* kill(-pgid, sig), refused (-EINVAL) for a process group <= 1: never
 * every process, never init's.  0 or -errno. */
int sd_kill_pgrp(pid_t pgid, int sig);

/* monitor.c: run session req in this (forked, root) process; check it
 * again (sd_check_req), report STARTED or FAILED on report_fd, keep the
 * session until it ends or SIGTERM comes, clean up, write why into the
 * state file, exit. */
_Noreturn void sd_monitor_run(const struct pt_conf *conf, const struct pt_ipc_sess_req *req,
			      int report_fd);

/* root.c: the root side's loop, until the network side goes away. */
int sd_root_run(const struct pt_conf *conf, int ipc_fd, pid_t net_pid);

/* net.c: the network side's loop, as [sessiond] user. */
int sd_net_run(const struct pt_conf *conf, int ipc_fd, void *server_ctx);

/* net.c: read this host's credential towards the broker (as root, before
 * the network side drops privileges). */
int sd_net_load_identity(const struct pt_conf *conf);

/* --- metrics.c: [sessiond] metrics_listen (docs/operations.md) ------------- */

/* Labels of portico_sessiond_sessions and _starts_total. */
enum { SD_KIND_DESKTOP, SD_KIND_APP, SD_KIND_VM, SD_KIND_UNKNOWN, SD_KIND_N };
enum { SD_STATE_STARTING, SD_STATE_RUNNING, SD_STATE_SPARE, SD_STATE_N };
struct uv_loop_s;
/* The registry and its listener (nothing when metrics_listen is unset):
 * 0, or -1 with err set (the address cannot be bound). */
int sd_metrics_init(const struct pt_conf *conf, struct uv_loop_s *loop, char *err, size_t errlen);
/* Stop listening (the network side is stopping). */
void sd_metrics_close(void);
/* A start ended: kind SD_KIND_*, result "ok", "failed", "timeout" or
 * "busy"; seconds it took (negative: not timed). */
void sd_metrics_start(int kind, const char *result, double seconds);
/* The sessions the network side knows, by kind and state (net.c). */
void sd_net_count(int n[SD_KIND_N][SD_STATE_N]);

/* net.c, for tests and fuzzing only (tests/fuzz/fuzz_sessiond_api.c): the
 * network side without its loop, listener, timers or broker.  Init takes
 * the configuration, a loop that is never run and the network side's end
 * of a socketpair (the test plays the root side at the other end).
 * sd_net_test_request hands a request to the API's handler as if read from
 * a connection (with req->conn NULL its answer is dropped, as for a client
 * that went away); sd_net_test_answer reads one answer of the root side
 * as the network side does; sd_net_test_check is 0 when every session it
 * knows has a positive id of its own (none listed twice); reset answers
 * what waits and forgets every session (their number is returned). */
struct uv_loop_s; /* uv_loop_t, without libuv's header here */
int sd_net_test_init(const struct pt_conf *conf, struct uv_loop_s *loop, int ipc_fd);
struct pt_http_req;
void sd_net_test_request(struct pt_http_req *req);
void sd_net_test_answer(void);
int sd_net_test_check(void);
size_t sd_net_test_reset(void);

#endif
