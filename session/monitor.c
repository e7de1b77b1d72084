/*
 * monitor.c - one root process per session, its lifecycle (see session.h
 * and monitor.h; spawn.c starts its processes, the drivers say what runs).
 *
 * The monitor checks the request again (checks.c: it trusts nobody, not
 * even the root side that forked it from what the network side sent).
 * For a user's session (xvnc) the order is the one login(1) and display
 * managers use, and it matters: pam_acct_mgmt, initgroups (so the
 * supplementary groups are the user's before any module looks),
 * pam_setcred(ESTABLISH), pam_open_session, pam_getenvlist.  A VM runs as
 * [sessiond] vm_user, with that account's own groups (initgroups), no PAM.
 * Then the session's directory, its secret, the driver's start.  At the
 * end: every process group of the session killed, its files removed,
 * pam_close_session, pam_setcred(DELETE), pam_end.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "monitor.h"

#define KILL_GRACE_MS 3000 /* SIGTERM, then SIGKILL */

/* One row per enum pt_pool_driver; static pools start nothing here
 * (checks.c refuses them). */
static const struct sd_driver *const drivers[] = {
	[PT_DRIVER_XVNC] = &sd_drv_xvnc,
	[PT_DRIVER_QEMU] = &sd_drv_qemu,
	[PT_DRIVER_STATIC] = NULL,
};

/* --- reporting ------------------------------------------------------------- */

int sd_mon_report(struct sd_mon *m, int op, const char *fmt, ...)
{
	struct pt_ipc_sess_rep rep;
	va_list ap;
	ssize_t n;
	int rc = 0;

	memset(&rep, 0, sizeof(rep));
	rep.type = PT_IPC_SESS_REP;
	rep.op = (uint32_t)op;
	/* A spare VM handed to a session reports as that session. */
	rep.id = m->st.id ? m->st.id : m->req->id;
	sd_printable(rep.user, sizeof(rep.user), m->st.id ? m->st.user : m->req->user);
	sd_printable(rep.pool, sizeof(rep.pool), m->req->pool);
	snprintf(rep.backend, sizeof(rep.backend), "%s", m->st.backend);
	snprintf(rep.secret, sizeof(rep.secret), "%s", m->st.secret);
	va_start(ap, fmt);
	vsnprintf(rep.message, sizeof(rep.message), fmt, ap);
	va_end(ap);
	do
		n = write(m->report_fd, &rep, sizeof(rep));
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)sizeof(rep)) {
		/* EPIPE: the root side that forked us is gone (sessiond
		 * restarted); the caller decides what that means. */
		if (errno != EPIPE)
			pt_log_warn("session %lld: cannot report to sessiond",
				    (long long)m->req->id);
		rc = -1;
	}
	explicit_bzero(&rep, sizeof(rep));
	return rc;
}

void sd_mon_log_tail(struct sd_mon *m, char *out, size_t len)
{
	char buf[4096];
	struct stat sb;
	ssize_t n;
	int fd;

	out[0] = '\0';
	/* The user's file: never a link, never a FIFO that would hang us. */
	fd = m->dir_fd < 0 ? -1
			   : openat(m->dir_fd, "session.log",
				    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd == -1)
		return;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return;
	}
	off_t size = sb.st_size;
	n = pread(fd, buf, sizeof(buf) - 1,
		  size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	char *line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	while (*line == ' ' || *line == '\t')
		line++;
	sd_printable(out, len, line);
}

/* --- PAM --------------------------------------------------------------------- */

/* Nobody is there to answer: prompts fail, messages are logged. */
static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *arg)
{
	struct pam_response *r;

	*resp = NULL;
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
		    msg[i]->msg_style == PAM_PROMPT_ECHO_ON)
			return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof(*r));
	if (!r)
		return PAM_BUF_ERR;
	for (int i = 0; i < n; i++)
		if (msg[i]->msg)
			pt_log_info("PAM says: %s", msg[i]->msg);
	*resp = r;
	return PAM_SUCCESS;
}

static const struct pam_conv pam_conv = { conv, NULL };

static void pam_finish(struct sd_mon *m)
{
	int rc = PAM_SUCCESS;

	if (!m->pam)
		return;
	if (m->pam_open)
		rc = pam_close_session(m->pam, 0);
	if (m->pam_cred)
		pam_setcred(m->pam, PAM_DELETE_CRED);
	pam_end(m->pam, rc);
	m->pam = NULL;
}

/* 0, or -1 with the FAILED report sent. */
static int pam_begin(struct sd_mon *m)
{
	const char *svc = m->conf->sessiond.pam_service, *what, *name = m->ck.pw.pw_name;
	int rc;

	rc = pam_start(svc, name, &pam_conv, &m->pam);
	if (rc != PAM_SUCCESS) {
		m->pam = NULL;
		sd_mon_report(m, PT_SESS_FAILED, "PAM service %s cannot start: %s", svc,
			      pam_strerror(NULL, rc));
		return -1;
	}
	what = "the account";
	rc = pam_acct_mgmt(m->pam, PAM_SILENT);
	if (rc == PAM_SUCCESS) {
		what = "the groups";
		rc = initgroups(name, m->ck.pw.pw_gid) == 0 ? PAM_SUCCESS : PAM_SYSTEM_ERR;
	}
	if (rc == PAM_SUCCESS) {
		what = "the credentials";
		rc = pam_setcred(m->pam, PAM_ESTABLISH_CRED | PAM_SILENT);
		m->pam_cred = rc == PAM_SUCCESS;
	}
	if (rc == PAM_SUCCESS) {
		what = "the session";
		rc = pam_open_session(m->pam, PAM_SILENT);
		m->pam_open = rc == PAM_SUCCESS;
	}
	if (rc != PAM_SUCCESS) {
		sd_mon_report(m, PT_SESS_FAILED, "PAM refused %s of %s on %s: %s", what, name,
			      m->conf->sessiond.name, pam_strerror(m->pam, rc));
		pam_finish(m);
		return -1;
	}
	m->pam_env = pam_getenvlist(m->pam);
	return 0;
}

/* No PAM (a VM): the account's own groups all the same, never root's. */
static int set_groups(struct sd_mon *m)
{
	if (initgroups(m->ck.pw.pw_name, m->ck.pw.pw_gid) == 0)
		return 0;
	sd_mon_report(m, PT_SESS_FAILED, "cannot take the groups of %s: %s", m->ck.pw.pw_name,
		      strerror(errno));
	return -1;
}

/* --- the end ------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* SIGUSR2: the root side left a notice for the user in the state
 * directory (root.c, notice(); as a spare VM's .assign), shown by the
 * driver, once. */
static void show_notice(struct sd_mon *m)
{
	char path[600], text[SD_NOTICE_MAX + 1];
	ssize_t n = -1;
	int fd;

	/* st.id: the session's (a spare VM's changes when it is handed out) */
	if (!m->st.id || sd_state_path(m->conf, m->st.id, path, sizeof(path)) ||
	    strlen(path) + 8 >= sizeof(path))
		return;
	strcat(path, ".notice");
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, text, SD_NOTICE_MAX);
		close(fd);
		unlink(path);
	}
	if (n <= 0)
		return;
	text[n] = '\0';
	if (!sd_notice_ok(text))
		return;
	if (!m->drv->notice)
		pt_log_info("session %lld: a notice for %s not shown (a %s session has no display "
			    "for it)",
			    (long long)m->st.id, m->st.user, m->drv->name);
	else if (m->drv->notice(m, text) == 0)
		pt_log_info("session %lld: a notice shown to %s", (long long)m->st.id, m->st.user);
}

static void reap(struct sd_mon *m)
{
	pid_t pid;

	while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
		if (pid == m->display)
			m->display = 0;
		if (pid == m->program)
			m->program = 0;
	}
}

/* SIGTERM to every process of the session, SIGKILL to what remains after
 * the grace period. */
static void kill_all(struct sd_mon *m)
{
	int64_t until = mono_ms() + KILL_GRACE_MS;

	for (int i = 0; i < 2; i++)
		sd_kill_pgrp(m->st.pgid[i], SIGTERM);
	while (mono_ms() < until) {
		reap(m);
		int alive = 0;
		for (int i = 0; i < 2; i++)
			if (sd_kill_pgrp(m->st.pgid[i], 0) == 0)
				alive = 1;
		if (!alive)
			break;
		usleep(20000);
	}
	for (int i = 0; i < 2; i++)
		sd_kill_pgrp(m->st.pgid[i], SIGKILL);
	reap(m);
}

static void remove_dir(struct sd_mon *m)
{
	char name[24];
	int rc;

	if (m->sessions_fd < 0)
		return;
	snprintf(name, sizeof(name), "%lld", (long long)m->req->id);
	rc = sd_dir_remove(m->sessions_fd, name);
	if (rc && rc != -ENOENT)
		pt_log_warnx("session %lld: cannot remove %s: %s", (long long)m->req->id, m->dir,
			     strerror(-rc));
}

/* A monitor is a fork of sessiond: it leaves without running sessiond's
 * exit handlers (a preloaded library's destructor would remove files the
 * root side still uses). */
static _Noreturn void mon_exit(int rc)
{
	_exit(rc);
}

static _Noreturn void finish(struct sd_mon *m, const char *why, int rc)
{
	if (m->drv && m->drv->stop)
		m->drv->stop(m);
	kill_all(m);
	if (m->dir_fd >= 0)
		close(m->dir_fd);
	m->dir_fd = -1;
	remove_dir(m);
	if (m->drv->cleanup)
		m->drv->cleanup(m);
	pam_finish(m);
	if (m->st.id) {
		snprintf(m->st.ended, sizeof(m->st.ended), "%s", why);
		sd_state_write(m->conf, &m->st);
	}
	pt_log_info("session %lld of %s ended: %s", (long long)(m->st.id ? m->st.id : m->req->id),
		    m->st.id ? m->st.user : m->req->user, why);
	explicit_bzero(&m->st.secret, sizeof(m->st.secret));
	mon_exit(rc);
}

/* --- the start ----------------------------------------------------------------------- */

/* RUN_DIR/sessions/ID, made by root and handed to the session's account
 * (its display writes its socket there); others may pass through to the
 * socket, which only the gateway's user may open.  By descriptors only:
 * the user owns it the moment it is handed over. */
static int make_dir(struct sd_mon *m)
{
	char name[24];
	struct stat sb;
	int run;

	snprintf(m->dir, sizeof(m->dir), "%.480s/sessions/%lld", m->conf->sessiond.run_dir,
		 (long long)m->req->id);
	snprintf(name, sizeof(name), "%lld", (long long)m->req->id);
	run = sd_root_dir(m->conf->sessiond.run_dir, 0755);
	if (run < 0) {
		errno = -run;
		return -1;
	}
	m->sessions_fd = sd_dir_at(run, "sessions", 0711);
	close(run);
	if (m->sessions_fd < 0) {
		errno = -m->sessions_fd;
		m->sessions_fd = -1;
		return -1;
	}
	if (fstat(m->sessions_fd, &sb) == -1 || sb.st_uid != 0 ||
	    (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		errno = EPERM;
		return -1;
	}
	/* Left by a session that died with its monitor: start clean. */
	sd_dir_remove(m->sessions_fd, name);
	if (mkdirat(m->sessions_fd, name, 0700) == -1)
		return -1;
	m->dir_fd = openat(m->sessions_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (m->dir_fd == -1)
		return -1;
	if (fchown(m->dir_fd, m->ck.pw.pw_uid, m->ck.pw.pw_gid) == -1 ||
	    fchmod(m->dir_fd, 0711) == -1)
		return -1;
	return 0;
}

/* getrandom(2): the root side links no TLS library for its randomness. */
static int random_bytes(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = getrandom(p, len, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The session's VNC password (VNC authentication uses 8 characters). */
static int new_secret(char out[9])
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char r[8];

	if (random_bytes(r, sizeof(r)))
		return -1;
	for (int i = 0; i < 8; i++)
		out[i] = abc[r[i] & 63];
	out[8] = '\0';
	explicit_bzero(r, sizeof(r));
	return 0;
}

_Noreturn void sd_monitor_run(const struct pt_conf *conf, const struct pt_ipc_sess_req *req,
			      int report_fd)
{
	static struct sd_mon mon;
	struct sd_mon *m = &mon;
	char why[256];
	sigset_t set;

	m->conf = conf;
	m->req = req;
	m->report_fd = report_fd;
	m->display_no = -1;
	m->sessions_fd = m->dir_fd = m->vm_fd = -1;
	prctl(PR_SET_NAME, "pt-session", 0, 0, 0);
	setsid(); /* out of sessiond's process group: it may restart */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (sd_check_req(conf, req, &m->ck, why, sizeof(why))) {
		sd_mon_report(m, PT_SESS_FAILED, "%s", why);
		mon_exit(1);
	}
	m->drv = drivers[req->driver];
	if (!m->drv) {
		sd_mon_report(m, PT_SESS_FAILED, "static pools have nothing to start");
		mon_exit(1);
	}
	if (m->drv->pam ? pam_begin(m) : set_groups(m))
		mon_exit(1);
	if (make_dir(m)) {
		sd_mon_report(m, PT_SESS_FAILED, "cannot make the session directory %s: %s", m->dir,
			      strerror(errno));
		finish(m, "start failed", 1);
	}
	if (new_secret(m->st.secret) || random_bytes(m->xcookie, sizeof(m->xcookie))) {
		sd_mon_report(m, PT_SESS_FAILED, "no randomness for the session's secrets");
		finish(m, "start failed", 1);
	}
	if (m->drv->start(m))
		finish(m, "start failed", 1);

	m->st.id = req->id;
	m->st.monitor = getpid();
	m->st.uid = m->ck.pw.pw_uid;
	m->st.kind = req->kind;
	m->st.driver = req->driver;
	snprintf(m->st.user, sizeof(m->st.user), "%s", req->user);
	snprintf(m->st.pool, sizeof(m->st.pool), "%s", req->pool);
	if (sd_state_write(conf, &m->st)) {
		sd_mon_report(m, PT_SESS_FAILED, "cannot write the session's state in %s",
			      conf->sessiond.run_dir);
		m->st.id = 0;
		finish(m, "start failed", 1);
	}
	pt_log_info("session %lld of %s: display :%d at %s, program %d", (long long)req->id,
		    req->user, m->display_no, m->st.backend, (int)m->program);
	/* Nobody to tell: the root side that forked us died while we
	 * started, and the one that replaced it may have looked for state
	 * files before ours was written; then nobody would ever stop this
	 * session.  The broker learns of no start and ends it (its call
	 * failed), so end it here too, state file and all.  (A root side
	 * that did adopt it in between sees its monitor exit and reports
	 * the end.) */
	if (sd_mon_report(m, PT_SESS_STARTED, "started")) {
		char path[600];
		if (sd_state_path(conf, m->st.id, path, sizeof(path)) == 0)
			unlink(path);
		m->st.id = 0; /* no state to leave: nobody will read it */
		finish(m, "sessiond went away while it started", 1);
	}

	for (;;) {
		siginfo_t si;
		const char *end;
		int sig = sigwaitinfo(&set, &si);
		if (sig == -1)
			continue;
		if (sig == SIGUSR1) {
			if (m->drv->assign && m->drv->assign(m))
				finish(m, "could not be handed to its user", 1);
			continue;
		}
		if (sig == SIGUSR2) {
			show_notice(m);
			continue;
		}
		if (sig != SIGCHLD)
			finish(m, "stopped", 0);
		reap(m);
		end = m->drv->ended(m);
		if (end)
			finish(m, end, 0);
	}
}
