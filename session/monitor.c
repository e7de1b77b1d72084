/*
 * monitor.c - one root process per session (see session.h).
 *
 * The order is the one login(1) and display managers use, and it matters:
 * pam_acct_mgmt, initgroups (so the supplementary groups are the user's
 * before any module looks), pam_setcred(ESTABLISH), pam_open_session,
 * pam_getenvlist; then each child does setsid, setgid, setuid (and checks
 * that setuid(0) fails), chdir(home), a clean environment, every other
 * descriptor closed, exec.  libuv's uv_spawn is not used: with SETUID it
 * drops the supplementary groups.  At the end: every process group of the
 * session killed, its files removed, pam_close_session, pam_setcred(DELETE),
 * pam_end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pwd.h>
#include <security/pam_appl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "portico/log.h"
#include "portico/rfb.h"
#include "session.h"

extern char **environ;

#define DISPLAY_WAIT_MS 15000 /* Xvnc up and listening */
#define KILL_GRACE_MS	3000  /* SIGTERM, then SIGKILL */

struct mon {
	const struct pt_conf *conf;
	const struct pt_ipc_sess_req *req;
	int report_fd;
	struct passwd pw;
	char pwbuf[4096];
	pam_handle_t *pam;
	int pam_open, pam_cred;
	char **pam_env;
	char dir[512]; /* RUN_DIR/sessions/ID, the user's */
	struct sd_state st;
	pid_t display, program;
	int display_no;
	char overlay[600]; /* qemu: the VM's disk */
	int keep_overlay;  /* persistent pools keep one per user */
};

/* --- reporting ------------------------------------------------------------- */

static void report(struct mon *m, int op, const char *fmt, ...) PT_PRINTF(3, 4);

static void report(struct mon *m, int op, const char *fmt, ...)
{
	struct pt_ipc_sess_rep rep;
	va_list ap;

	memset(&rep, 0, sizeof(rep));
	rep.type = PT_IPC_SESS_REP;
	rep.op = (uint32_t)op;
	rep.id = m->req->id;
	snprintf(rep.user, sizeof(rep.user), "%s", m->req->user);
	snprintf(rep.pool, sizeof(rep.pool), "%s", m->req->pool);
	snprintf(rep.backend, sizeof(rep.backend), "%s", m->st.backend);
	snprintf(rep.secret, sizeof(rep.secret), "%s", m->st.secret);
	va_start(ap, fmt);
	vsnprintf(rep.message, sizeof(rep.message), fmt, ap);
	va_end(ap);
	/* The root side may be gone (restarted): it reads the state file then. */
	if (write(m->report_fd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep) && errno != EPIPE)
		pt_log_warn("session %lld: cannot report to sessiond", (long long)m->req->id);
	explicit_bzero(&rep, sizeof(rep));
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

static void pam_finish(struct mon *m)
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
static int pam_begin(struct mon *m)
{
	const char *svc = m->conf->sessiond.pam_service, *what;
	int rc;

	rc = pam_start(svc, m->pw.pw_name, &pam_conv, &m->pam);
	if (rc != PAM_SUCCESS) {
		m->pam = NULL;
		report(m, PT_SESS_FAILED, "PAM service %s cannot start: %s", svc,
		       pam_strerror(NULL, rc));
		return -1;
	}
	what = "the account";
	rc = pam_acct_mgmt(m->pam, PAM_SILENT);
	if (rc == PAM_SUCCESS) {
		what = "the groups";
		rc = initgroups(m->pw.pw_name, m->pw.pw_gid) == 0 ? PAM_SUCCESS : PAM_SYSTEM_ERR;
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
		report(m, PT_SESS_FAILED, "PAM refused %s of %s on %s: %s", what, m->pw.pw_name,
		       m->conf->sessiond.name, pam_strerror(m->pam, rc));
		pam_finish(m);
		return -1;
	}
	m->pam_env = pam_getenvlist(m->pam);
	return 0;
}

/* --- children ------------------------------------------------------------------ */

static int env_add(char **env, size_t *n, size_t cap, const char *fmt, ...) PT_PRINTF(4, 5);

static int env_add(char **env, size_t *n, size_t cap, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (*n + 1 >= cap)
		return -1;
	va_start(ap, fmt);
	rc = vasprintf(&env[*n], fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	env[++*n] = NULL;
	return 0;
}

/* The session's environment: a fixed few, then what PAM set (pam_env,
 * pam_systemd's XDG_RUNTIME_DIR...), never anything of sessiond's. */
static char **make_env(struct mon *m)
{
	enum { CAP = 96 };
	char **env = calloc(CAP, sizeof(char *));
	size_t n = 0;

	if (!env)
		return NULL;
	env_add(env, &n, CAP, "HOME=%s", m->pw.pw_dir);
	env_add(env, &n, CAP, "USER=%s", m->pw.pw_name);
	env_add(env, &n, CAP, "LOGNAME=%s", m->pw.pw_name);
	env_add(env, &n, CAP, "SHELL=%s",
		m->pw.pw_shell && *m->pw.pw_shell ? m->pw.pw_shell : "/bin/sh");
	env_add(env, &n, CAP, "PATH=/usr/local/bin:/usr/bin:/bin");
	if (m->display_no >= 0) {
		env_add(env, &n, CAP, "DISPLAY=:%d", m->display_no);
		env_add(env, &n, CAP, "XAUTHORITY=%s/Xauthority", m->dir);
	}
	env_add(env, &n, CAP, "PORTICO_SESSION=%lld", (long long)m->req->id);
	for (size_t i = 0; m->pam_env && m->pam_env[i]; i++) {
		const char *e = m->pam_env[i];
		size_t k = strcspn(e, "=");
		int dup = 0;
		for (size_t j = 0; j < n && !dup; j++)
			dup = !strncmp(env[j], e, k + 1);
		if (!dup)
			env_add(env, &n, CAP, "%s", e);
	}
	return env;
}

static void env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

typedef int (*prep_fn)(struct mon *m);

/* In the child, as the user: fd 3 is keep_fd (or closed), 0 is /dev/null,
 * 1 and 2 the session's log.  Never returns. */
static _Noreturn void child(struct mon *m, char *const argv[], char **env, int keep_fd, int errfd,
			    prep_fn prep)
{
	int e, k, null, logfd;
	char path[600];

	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < 32; s++)
		signal(s, SIG_DFL);
	if (setsid() == -1 || setgid(m->pw.pw_gid) == -1 || setuid(m->pw.pw_uid) == -1)
		goto fail;
	if (setuid(0) != -1) { /* must not be able to come back */
		errno = EPERM;
		goto fail;
	}
	if (chdir(m->pw.pw_dir) == -1 && chdir("/") == -1)
		goto fail;
	if (prep && prep(m))
		goto fail;
	snprintf(path, sizeof(path), "%s/session.log", m->dir);
	logfd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null == -1)
		goto fail;
	/* Out of the way of 0..4 first, then into place. */
	k = keep_fd >= 0 ? fcntl(keep_fd, F_DUPFD_CLOEXEC, 100) : -1;
	e = fcntl(errfd, F_DUPFD_CLOEXEC, 100);
	if (e == -1 || dup2(null, 0) == -1 || dup2(logfd >= 0 ? logfd : null, 1) == -1 ||
	    dup2(logfd >= 0 ? logfd : null, 2) == -1 || (k >= 0 && dup2(k, 3) == -1) ||
	    dup3(e, 4, O_CLOEXEC) == -1)
		goto fail;
	errfd = 4;
	closefrom(5);
	if (k < 0)
		close(3);
	environ = env;
	execvp(argv[0], argv);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

/* Start argv as the user.  The pid, or -errno when it could not be
 * started (the exec's own errno: ENOENT for a missing program). */
static pid_t spawn(struct mon *m, char *const argv[], int keep_fd, prep_fn prep)
{
	char **env = make_env(m);
	int ep[2], e = 0;
	pid_t pid;
	ssize_t n;

	if (!env || pipe2(ep, O_CLOEXEC) == -1) {
		env_free(env);
		return -errno;
	}
	/* _Fork: no pthread_atfork handlers.  libuv's (inherited from the
	 * root side) would close descriptors by number in the child, and
	 * those numbers are ours now. */
	pid = _Fork();
	if (pid == 0)
		child(m, argv, env, keep_fd, ep[1], prep);
	close(ep[1]);
	env_free(env);
	if (pid == -1) {
		e = errno;
		close(ep[0]);
		return -e;
	}
	do
		n = read(ep[0], &e, sizeof(e));
	while (n == -1 && errno == EINTR);
	close(ep[0]);
	if (n == (ssize_t)sizeof(e)) {
		waitpid(pid, NULL, 0);
		return -(e ? e : EIO);
	}
	return pid;
}

/* --- the display (Xvnc) ------------------------------------------------------------ */

static int write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[600];
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (write(fd, data, len) != (ssize_t)len)
		rc = -1;
	if (close(fd) == -1)
		rc = -1;
	return rc;
}

static unsigned char xcookie[16];

/* As the user, before exec'ing Xvnc: its password file and the X
 * authority file that it and the session's programs share. */
static int prep_display(struct mon *m)
{
	unsigned char obf[8], xa[64], *p = xa;
	static const char proto[] = "MIT-MAGIC-COOKIE-1";

	if (pt_rfb_vnc_obfuscate(m->st.secret, obf) || write_file(m->dir, "passwd", obf, 8))
		return -1;
	/* One entry, FamilyWild with no address and no display number: it
	 * matches this display whatever number Xvnc picks. */
	*p++ = 0xff, *p++ = 0xff;
	*p++ = 0, *p++ = 0;
	*p++ = 0, *p++ = 0;
	*p++ = 0, *p++ = sizeof(proto) - 1;
	memcpy(p, proto, sizeof(proto) - 1);
	p += sizeof(proto) - 1;
	*p++ = 0, *p++ = sizeof(xcookie);
	memcpy(p, xcookie, sizeof(xcookie));
	p += sizeof(xcookie);
	return write_file(m->dir, "Xauthority", xa, (size_t)(p - xa));
}

/* A free TCP port on addr for a console, from 5910 up. */
static int free_port(const char *addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return -1;
	for (int port = 5910; port < 6910; port++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
		sin.sin_port = htons((uint16_t)port);
		ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		if (fd >= 0)
			close(fd);
		if (ok)
			return port;
	}
	return -1;
}

/* Wait for Xvnc to write its display number on fd; -1 on timeout or if it
 * exits first. */
static int read_display(int fd)
{
	char buf[32];
	size_t got = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };

	while (got < sizeof(buf) - 1) {
		int rc = poll(&p, 1, DISPLAY_WAIT_MS);
		if (rc == -1 && errno == EINTR)
			continue;
		if (rc != 1)
			return -1;
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
		if (memchr(buf, '\n', got))
			break;
	}
	buf[got] = '\0';
	return atoi(buf);
}

/* The last non-empty line of the session's log: why its display failed,
 * in Xvnc's words (the log goes with the session directory). */
static void log_tail(struct mon *m, char *out, size_t len)
{
	char path[600], buf[4096];
	ssize_t n;
	int fd;

	out[0] = '\0';
	snprintf(path, sizeof(path), "%s/session.log", m->dir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1)
		return;
	off_t size = lseek(fd, 0, SEEK_END);
	lseek(fd, size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
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
	size_t k = strnlen(line, len - 1);
	memcpy(out, line, k);
	out[k] = '\0';
	for (char *c = out; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
}

static int start_display(struct mon *m)
{
	const struct pt_sessiond_conf *sc = &m->conf->sessiond;
	char fdarg[8] = "3", geometry[24], sock[600], port[16], desktop[200];
	char passwd[600], xauth[600];
	char *argv[48];
	int pfd[2], n = 0, tcp = strcmp(sc->vnc_listen, "unix") != 0;
	pid_t pid;

	snprintf(geometry, sizeof(geometry), "%s",
		 m->req->geometry[0] ? m->req->geometry : "1280x800");
	snprintf(desktop, sizeof(desktop), "%.64s (%.120s)", m->req->pool, m->req->user);
	snprintf(sock, sizeof(sock), "%s/vnc.sock", m->dir);
	snprintf(passwd, sizeof(passwd), "%s/passwd", m->dir);
	snprintf(xauth, sizeof(xauth), "%s/Xauthority", m->dir);
	argv[n++] = sc->xvnc;
	argv[n++] = "-displayfd";
	argv[n++] = fdarg;
	argv[n++] = "-geometry";
	argv[n++] = geometry;
	argv[n++] = "-depth";
	argv[n++] = "24";
	argv[n++] = "-desktop";
	argv[n++] = desktop;
	argv[n++] = "-SecurityTypes";
	argv[n++] = "VncAuth";
	argv[n++] = "-PasswordFile";
	argv[n++] = passwd;
	argv[n++] = "-auth";
	argv[n++] = xauth;
	/* Many users reach Xvnc from the gateway's one address. */
	argv[n++] = "-BlacklistThreshold";
	argv[n++] = "1000000";
	/* A TigerVNC viewer asking for exclusive access must not drop
	 * others (the gateway sends shared=1 too). */
	argv[n++] = "-AlwaysShared";
	argv[n++] = "-nolisten";
	argv[n++] = "tcp";
	if (tcp) {
		int p = free_port(sc->vnc_listen);
		if (p < 0) {
			report(m, PT_SESS_FAILED, "no free port for a display on %s",
			       sc->vnc_listen);
			return -1;
		}
		snprintf(port, sizeof(port), "%d", p);
		argv[n++] = "-interface";
		argv[n++] = sc->vnc_listen;
		argv[n++] = "-rfbport";
		argv[n++] = port;
		snprintf(m->st.backend, sizeof(m->st.backend), "%s:%d", sc->vnc_listen, p);
	} else {
		argv[n++] = "-rfbunixpath";
		argv[n++] = sock;
		argv[n++] = "-rfbunixmode";
		argv[n++] = "0600";
		argv[n++] = "-rfbport";
		argv[n++] = "-1";
		snprintf(m->st.backend, sizeof(m->st.backend), "unix:%.240s", sock);
	}
	/* An application session ends with its program: Xvnc ends at the
	 * server reset that the last X client's exit causes. */
	if (m->req->kind == PT_POOL_APP)
		argv[n++] = "-terminate";
	argv[n] = NULL;

	if (pipe2(pfd, O_CLOEXEC) == -1)
		return -1;
	pid = spawn(m, argv, pfd[1], prep_display);
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		report(m, PT_SESS_FAILED, "%s cannot run: %s", sc->xvnc, strerror((int)-pid));
		return -1;
	}
	m->display = pid;
	m->st.pgid[0] = pid;
	m->display_no = read_display(pfd[0]);
	close(pfd[0]);
	if (m->display_no < 0) {
		char why[160];
		log_tail(m, why, sizeof(why));
		pt_log_warnx("session %lld: %s did not start: %s", (long long)m->req->id, sc->xvnc,
			     why);
		report(m, PT_SESS_FAILED, "the display server did not start: %s", why);
		return -1;
	}
	/* Only the gateway may open the console socket. */
	if (!tcp) {
		struct passwd *gw = getpwnam(sc->gateway_user);
		if (!gw ||
		    fchownat(AT_FDCWD, sock, gw->pw_uid, gw->pw_gid, AT_SYMLINK_NOFOLLOW) == -1) {
			report(m, PT_SESS_FAILED, "cannot hand the display socket to user %s",
			       sc->gateway_user);
			return -1;
		}
	}
	return 0;
}

/* The pool's command split at blanks (no shell). */
static int split_command(const char *cmd, char *buf, size_t len, char *argv[], int max)
{
	int n = 0;

	snprintf(buf, len, "%s", cmd);
	for (char *sv, *t = strtok_r(buf, " \t", &sv); t && n < max - 1;
	     t = strtok_r(NULL, " \t", &sv))
		argv[n++] = t;
	argv[n] = NULL;
	return n;
}

static int start_program(struct mon *m)
{
	char buf[1100], *argv[64];
	const char *what =
		m->req->kind == PT_POOL_APP ? m->req->command : m->conf->sessiond.xsession;
	pid_t pid;

	if (!*what || split_command(what, buf, sizeof(buf), argv, 64) == 0) {
		report(m, PT_SESS_FAILED, "the pool names no program to run");
		return -1;
	}
	pid = spawn(m, argv, -1, NULL);
	if (pid < 0) {
		report(m, PT_SESS_FAILED, "%s: %s", argv[0],
		       -pid == ENOENT ? "no such program" : strerror((int)-pid));
		return -1;
	}
	m->program = pid;
	m->st.pgid[1] = pid;
	return 0;
}

/* --- the end ------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reap(struct mon *m)
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
static void kill_all(struct mon *m)
{
	int64_t until = mono_ms() + KILL_GRACE_MS;

	for (int i = 0; i < 2; i++)
		if (m->st.pgid[i] > 0)
			kill(-m->st.pgid[i], SIGTERM);
	while (mono_ms() < until) {
		reap(m);
		int alive = 0;
		for (int i = 0; i < 2; i++)
			if (m->st.pgid[i] > 0 && kill(-m->st.pgid[i], 0) == 0)
				alive = 1;
		if (!alive)
			break;
		usleep(20000);
	}
	for (int i = 0; i < 2; i++)
		if (m->st.pgid[i] > 0)
			kill(-m->st.pgid[i], SIGKILL);
	reap(m);
}

static void remove_dir(struct mon *m)
{
	static const char *const files[] = { "vnc.sock", "passwd", "Xauthority", "session.log" };
	char path[600];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", m->dir, files[i]);
		unlink(path);
	}
	if (rmdir(m->dir) == -1 && errno != ENOENT)
		pt_log_warn("session %lld: cannot remove %s", (long long)m->req->id, m->dir);
}

/* A monitor is a fork of sessiond: it leaves without running sessiond's
 * exit handlers (a preloaded library's destructor would remove files the
 * root side still uses). */
static _Noreturn void mon_exit(int rc)
{
	_exit(rc);
}

static _Noreturn void finish(struct mon *m, const char *why, int rc)
{
	kill_all(m);
	remove_dir(m);
	if (m->overlay[0] && !m->keep_overlay && unlink(m->overlay) == -1 && errno != ENOENT)
		pt_log_warn("session %lld: cannot remove %s", (long long)m->req->id, m->overlay);
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

/* --- desktop VMs (QEMU) --------------------------------------------------------------- */

/* Run argv as m->pw to its end; 0 when it exits 0. */
static int run_wait(struct mon *m, char *const argv[])
{
	int status;
	pid_t pid = spawn(m, argv, -1, NULL);

	if (pid < 0)
		return -1;
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A directory of the VM user's: STATE_DIR/vms/POOL. */
static int vm_dir(struct mon *m, char *out, size_t len)
{
	char d[520];

	snprintf(d, sizeof(d), "%.400s/vms", m->conf->sessiond.state_dir);
	if ((mkdir(m->conf->sessiond.state_dir, 0755) == -1 && errno != EEXIST) ||
	    (mkdir(d, 0755) == -1 && errno != EEXIST))
		return -1;
	snprintf(out, len, "%s/%.72s", d, m->req->pool);
	if (mkdir(out, 0700) == -1 && errno != EEXIST)
		return -1;
	return chown(out, m->pw.pw_uid, m->pw.pw_gid);
}

/* The VM's disk: a copy-on-write overlay of the pool's golden image, one
 * per session, or one per user that outlives the session (persistent). */
static int make_overlay(struct mon *m)
{
	const char *image = m->req->image;
	char dir[600], why[160];
	char *argv[] = { "qemu-img",	"create", "-q",	   "-f",       "qcow2", "-b",
			 (char *)image, "-F",	  "qcow2", m->overlay, NULL };
	int fd;

	if (!image[0]) {
		report(m, PT_SESS_FAILED, "the pool names no image");
		return -1;
	}
	/* As root, before anything runs: a missing image is the admin's to
	 * fix, and says so. */
	fd = open(image, O_RDONLY | O_CLOEXEC);
	if (fd == -1) {
		report(m, PT_SESS_FAILED, "image %s cannot be read: %s", image, strerror(errno));
		return -1;
	}
	close(fd);
	if (vm_dir(m, dir, sizeof(dir))) {
		report(m, PT_SESS_FAILED, "cannot make %s: %s", dir, strerror(errno));
		return -1;
	}
	if (m->req->persistent) {
		snprintf(m->overlay, sizeof(m->overlay), "%.500s/user-%.64s.qcow2", dir,
			 m->req->user);
		m->keep_overlay = 1;
		if (access(m->overlay, F_OK) == 0) {
			pt_log_info("session %lld: %s's own disk %s", (long long)m->req->id,
				    m->req->user, m->overlay);
			return 0;
		}
	} else {
		snprintf(m->overlay, sizeof(m->overlay), "%.500s/%lld.qcow2", dir,
			 (long long)m->req->id);
	}
	if (run_wait(m, argv)) {
		log_tail(m, why, sizeof(why));
		report(m, PT_SESS_FAILED, "image %s is not a usable disk image: %s", image, why);
		m->keep_overlay = 0;
		return -1;
	}
	return 0;
}

static int prep_vm(struct mon *m)
{
	return write_file(m->dir, "passwd", m->st.secret, strlen(m->st.secret));
}

static int start_vm(struct mon *m)
{
	const struct pt_sessiond_conf *sc = &m->conf->sessiond;
	char mem[24], drive[700], secret[640], vnc[700], name[200], sock[600];
	char *argv[40];
	int n = 0, tcp = strcmp(sc->vnc_listen, "unix") != 0;
	pid_t pid;

	if (make_overlay(m))
		return -1;
	snprintf(mem, sizeof(mem), "%lld", (long long)sc->vm_memory_mb);
	snprintf(drive, sizeof(drive), "file=%s,if=virtio,format=qcow2", m->overlay);
	snprintf(secret, sizeof(secret), "secret,id=vncpw,file=%.580s/passwd", m->dir);
	snprintf(sock, sizeof(sock), "%.580s/vnc.sock", m->dir);
	snprintf(name, sizeof(name), "%.64s (%.120s)", m->req->pool,
		 m->req->user[0] ? m->req->user : "spare");
	if (tcp) {
		int p = free_port(sc->vnc_listen);
		if (p < 0) {
			report(m, PT_SESS_FAILED, "no free port for a console on %s",
			       sc->vnc_listen);
			return -1;
		}
		snprintf(vnc, sizeof(vnc), "%s:%d,password-secret=vncpw", sc->vnc_listen, p - 5900);
		snprintf(m->st.backend, sizeof(m->st.backend), "%s:%d", sc->vnc_listen, p);
	} else {
		snprintf(vnc, sizeof(vnc), "unix:%s,password-secret=vncpw", sock);
		snprintf(m->st.backend, sizeof(m->st.backend), "unix:%.240s", sock);
	}
	argv[n++] = sc->qemu;
	argv[n++] = "-accel";
	argv[n++] = sc->vm_accel;
	argv[n++] = "-m";
	argv[n++] = mem;
	argv[n++] = "-nodefaults";
	argv[n++] = "-no-user-config";
	argv[n++] = "-vga";
	argv[n++] = "std";
	argv[n++] = "-display";
	argv[n++] = "none";
	argv[n++] = "-drive";
	argv[n++] = drive;
	argv[n++] = "-nic";
	argv[n++] = "user,model=virtio-net-pci";
	argv[n++] = "-object";
	argv[n++] = secret;
	argv[n++] = "-vnc";
	argv[n++] = vnc;
	argv[n++] = "-name";
	argv[n++] = name;
	argv[n] = NULL;
	pid = spawn(m, argv, -1, prep_vm);
	if (pid < 0) {
		report(m, PT_SESS_FAILED, "%s cannot run: %s", sc->qemu, strerror((int)-pid));
		return -1;
	}
	m->display = m->program = pid;
	m->st.pgid[0] = pid;
	/* Up when its console listens. */
	for (int i = 0; i < DISPLAY_WAIT_MS / 20; i++) {
		struct stat sb;
		if (tcp ? i > 5 : stat(sock, &sb) == 0)
			break;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			char why[160];
			m->display = m->program = 0;
			log_tail(m, why, sizeof(why));
			report(m, PT_SESS_FAILED, "the VM did not start: %s", why);
			return -1;
		}
		usleep(20000);
	}
	if (!tcp) {
		struct passwd *gw = getpwnam(sc->gateway_user);
		if (!gw ||
		    fchownat(AT_FDCWD, sock, gw->pw_uid, gw->pw_gid, AT_SYMLINK_NOFOLLOW) == -1) {
			report(m, PT_SESS_FAILED, "the VM's console did not come up");
			return -1;
		}
	}
	return 0;
}

/* A spare VM handed to a session: the root side wrote its new id and
 * user to RUN_DIR/state/SPARE.assign. */
static void take_assignment(struct mon *m)
{
	char path[600], apath[620], old[600], line[300];
	long long id = 0;
	FILE *f;

	if (sd_state_path(m->conf, m->st.id, old, sizeof(old)))
		return;
	snprintf(apath, sizeof(apath), "%s.assign", old);
	f = fopen(apath, "re");
	if (!f)
		return;
	if (fgets(line, sizeof(line), f))
		id = atoll(line);
	if (id <= 0 || id >= PT_SESS_SPARE_BASE || !fgets(line, sizeof(line), f)) {
		fclose(f);
		unlink(apath);
		return;
	}
	fclose(f);
	unlink(apath);
	line[strcspn(line, "\n")] = '\0';
	snprintf(m->st.user, sizeof(m->st.user), "%.255s", line);
	m->st.id = id;
	if (sd_state_path(m->conf, id, path, sizeof(path)) == 0 &&
	    sd_state_write(m->conf, &m->st) == 0)
		unlink(old);
	pt_log_info("spare VM is now session %lld of %s", id, m->st.user);
}

/* --- the monitor --------------------------------------------------------------------- */

static int make_dir(struct mon *m)
{
	char parent[512];

	snprintf(parent, sizeof(parent), "%s/sessions", m->conf->sessiond.run_dir);
	if (mkdir(parent, 0711) == -1 && errno != EEXIST)
		return -1;
	snprintf(m->dir, sizeof(m->dir), "%.480s/%lld", parent, (long long)m->req->id);
	/* Left by a session that died with its monitor: start clean. */
	remove_dir(m);
	if (mkdir(m->dir, 0700) == -1)
		return -1;
	/* The user's (Xvnc writes its socket here); others may pass through
	 * to the socket, which only the gateway's user may open. */
	if (chown(m->dir, m->pw.pw_uid, m->pw.pw_gid) == -1 || chmod(m->dir, 0711) == -1)
		return -1;
	return 0;
}

static void new_secret(char out[9])
{
	static const char abc[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char r[8];

	if (RAND_bytes(r, sizeof(r)) != 1)
		pt_fatalx("no randomness for a session secret");
	for (int i = 0; i < 8; i++)
		out[i] = abc[r[i] & 63];
	out[8] = '\0';
}

_Noreturn void sd_monitor_run(const struct pt_conf *conf, const struct pt_ipc_sess_req *req,
			      int report_fd)
{
	static struct mon mon;
	struct mon *m = &mon;
	struct passwd *res = NULL;
	sigset_t set;

	m->conf = conf;
	m->req = req;
	m->report_fd = report_fd;
	m->display_no = -1;
	prctl(PR_SET_NAME, "pt-session", 0, 0, 0);
	setsid(); /* out of sessiond's process group: it may restart */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);

	if (req->driver == PT_DRIVER_QEMU) {
		/* A VM belongs to no host account: it runs as [sessiond]
		 * vm_user, and the user logs in to the guest. */
		if (getpwnam_r(conf->sessiond.vm_user, &m->pw, m->pwbuf, sizeof(m->pwbuf), &res) !=
			    0 ||
		    !res || m->pw.pw_uid == 0) {
			report(m, PT_SESS_FAILED, "[sessiond] vm_user %s does not exist or is root",
			       conf->sessiond.vm_user);
			mon_exit(1);
		}
	} else if (getpwnam_r(req->user, &m->pw, m->pwbuf, sizeof(m->pwbuf), &res) != 0 || !res) {
		report(m, PT_SESS_FAILED, "user %s does not exist on %s", req->user,
		       conf->sessiond.name);
		mon_exit(1);
	}
	if (m->pw.pw_uid == 0) {
		report(m, PT_SESS_FAILED, "sessions never run as root");
		mon_exit(1);
	}
	if (req->driver == PT_DRIVER_STATIC) {
		report(m, PT_SESS_FAILED, "static pools have nothing to start");
		mon_exit(1);
	}
	if (req->driver == PT_DRIVER_XVNC && pam_begin(m))
		mon_exit(1);
	if (make_dir(m)) {
		report(m, PT_SESS_FAILED, "cannot make the session directory %s: %s", m->dir,
		       strerror(errno));
		finish(m, "start failed", 1);
	}
	new_secret(m->st.secret);
	if (RAND_bytes(xcookie, sizeof(xcookie)) != 1)
		pt_fatalx("no randomness for an X cookie");
	if (req->driver == PT_DRIVER_QEMU ? start_vm(m) : (start_display(m) || start_program(m)))
		finish(m, "start failed", 1);

	m->st.id = req->id;
	m->st.monitor = getpid();
	m->st.uid = m->pw.pw_uid;
	m->st.kind = req->kind;
	m->st.driver = req->driver;
	snprintf(m->st.user, sizeof(m->st.user), "%s", req->user);
	snprintf(m->st.pool, sizeof(m->st.pool), "%s", req->pool);
	if (sd_state_write(conf, &m->st)) {
		report(m, PT_SESS_FAILED, "cannot write the session's state in %s",
		       conf->sessiond.run_dir);
		m->st.id = 0;
		finish(m, "start failed", 1);
	}
	pt_log_info("session %lld of %s: display :%d at %s, program %d", (long long)req->id,
		    req->user, m->display_no, m->st.backend, (int)m->program);
	report(m, PT_SESS_STARTED, "started");

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig == -1)
			continue;
		if (sig == SIGUSR1) {
			take_assignment(m);
			continue;
		}
		if (sig != SIGCHLD)
			finish(m, "stopped", 0);
		reap(m);
		if (req->driver == PT_DRIVER_QEMU && !m->program)
			finish(m, "the VM powered off", 0);
		if (!m->program)
			finish(m, req->kind == PT_POOL_APP ? "application exited" : "logged out",
			       0);
		if (!m->display)
			finish(m, "display server exited", 0);
	}
}
