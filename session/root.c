/*
 * root.c - portico-sessiond's root side (see session.h).
 *
 * It does one thing: on the network side's request, checked again here
 * (checks.c: the network side may be an attacker's), fork a session
 * monitor (monitor.c) or signal one to stop, and pass back what the
 * monitors report.  It holds no network connection and parses nothing but
 * fixed-size messages (portico/ipc.h).  A malformed message ends the
 * network side; a well-formed request that fails a check is answered
 * FAILED with the reason, and nothing is made, started or handed over.
 * Monitors run in sessions of their own, so a sessiond that stops or
 * restarts leaves the users' sessions running; at start it adopts the
 * monitors it finds in RUN_DIR/state and cleans up after the ones that
 * died.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "portico/log.h"
#include "session.h"

/* Answers the network side has not read yet.  Past this many, the root
 * side reads no more requests until it has caught up: a network side
 * that never reads cannot make root hold more than that (and the
 * monitors' reports, one or two per session). */
#define REP_QUEUE_HIGH 256

struct rsess {
	struct rsess *next;
	int64_t id;
	pid_t monitor;
	int started;   /* STARTED (or RUNNING) reported */
	int reporting; /* waiting for the monitor's first report */
	int spare;     /* a booted VM nobody has yet */
	int64_t from;  /* a spare VM being handed over: its id until its monitor reports */
	/* Our own monitors: their report pipe (their exit comes as SIGCHLD);
	 * adopted ones: a pidfd that becomes readable when they exit.  The
	 * fd is closed only once libuv has let go of the handle. */
	int fd;
	uv_poll_t poll;
	char stop_reason[64]; /* why the network side asked to stop it */
	struct pt_ipc_sess_rep rep;
};

static struct {
	const struct pt_conf *conf;
	uv_loop_t *loop;
	int fd;
	uv_poll_t ipc;
	struct pt_ipc_queue out; /* answers waiting for room on fd */
	uv_signal_t sigchld, sigterm, sigint;
	struct rsess *sessions;
	pid_t net_pid;
	int rc;
} R;

static struct rsess *find(int64_t id)
{
	for (struct rsess *s = R.sessions; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static struct rsess *find_pid(pid_t pid)
{
	for (struct rsess *s = R.sessions; s; s = s->next)
		if (s->monitor == pid)
			return s;
	return NULL;
}

static void on_ipc(uv_poll_t *p, int status, int events);

/* Requests are read while few answers wait; room is watched for while
 * any does. */
static void watch_ipc(void)
{
	int ev = (R.out.len < REP_QUEUE_HIGH ? UV_READABLE : 0) | (R.out.len ? UV_WRITABLE : 0);

	if (uv_is_closing((uv_handle_t *)&R.ipc))
		return;
	uv_poll_start(&R.ipc, ev, on_ipc);
}

/* An answer or a report: sent at once, or kept in order while the
 * network side's socket is full (dropping it would lose a session). */
static void send_rep(const struct pt_ipc_sess_rep *rep)
{
	size_t was = R.out.len;
	int rc = pt_ipc_queue_send(&R.out, R.fd, rep, sizeof(*rep));

	if (rc < 0 && rc != -EPIPE && rc != -ECONNRESET)
		pt_log_warnx("cannot reach the network side: %s", strerror(-rc));
	if (R.out.len != was && (!was || R.out.len == REP_QUEUE_HIGH))
		watch_ipc();
}

static void send_simple(int op, int64_t id, const char *user, const char *pool, const char *msg)
{
	struct pt_ipc_sess_rep rep;

	memset(&rep, 0, sizeof(rep));
	rep.type = PT_IPC_SESS_REP;
	rep.op = (uint32_t)op;
	rep.id = id;
	sd_printable(rep.user, sizeof(rep.user), user ? user : "");
	sd_printable(rep.pool, sizeof(rep.pool), pool ? pool : "");
	snprintf(rep.message, sizeof(rep.message), "%s", msg ? msg : "");
	send_rep(&rep);
}

static void on_poll_closed(uv_handle_t *h)
{
	struct rsess *s = h->data;

	close(s->fd);
	free(s);
}

static void unlink_sess(struct rsess *s)
{
	for (struct rsess **pp = &R.sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
}

static void sess_free(struct rsess *s)
{
	unlink_sess(s);
	explicit_bzero(s->rep.secret, sizeof(s->rep.secret));
	uv_close((uv_handle_t *)&s->poll, on_poll_closed);
}

/* Processes of the session that outlived their monitor (it was killed):
 * every process group the state file names, if its members are still the
 * session user's (a recycled group id is left alone), never root's and
 * never a group <= 1 (sd_kill_pgrp); then the session's directory, by
 * descriptors (its user owns it). */
static void kill_orphans(const struct sd_state *st)
{
	char path[64], name[24];
	int fd;

	for (int i = 0; i < 2 && st->uid != 0; i++) {
		struct stat sb;
		if (st->pgid[i] <= 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%d", (int)st->pgid[i]);
		if (stat(path, &sb) == 0 && sb.st_uid != st->uid)
			continue;
		if (sd_kill_pgrp(st->pgid[i], SIGKILL) == 0)
			pt_log_info("session %lld: killed process group %d left behind",
				    (long long)st->id, (int)st->pgid[i]);
	}
	fd = sd_root_dir(R.conf->sessiond.run_dir, 0755);
	if (fd < 0)
		return;
	int sfd = openat(fd, "sessions", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(fd);
	if (sfd == -1)
		return;
	snprintf(name, sizeof(name), "%lld", (long long)st->id);
	sd_dir_remove(sfd, name);
	close(sfd);
}

static void read_report(struct rsess *s);
static int assign_spare(const struct pt_ipc_sess_req *req);

/* A monitor is gone: report how its session ended, forget it. */
static void monitor_gone(struct rsess *s)
{
	char path[600];
	struct sd_state st;
	const char *why;

	read_report(s);
	sd_state_path(R.conf, s->id, path, sizeof(path));
	if (sd_state_read(path, &st) != 0)
		memset(&st, 0, sizeof(st));
	if (s->started) {
		if (!st.ended[0]) {
			if (st.id)
				kill_orphans(&st);
			why = "session monitor died";
		} else {
			why = s->stop_reason[0] ? s->stop_reason : st.ended;
		}
		send_simple(PT_SESS_ENDED, s->id, s->rep.user, s->rep.pool, why);
	} else if (s->reporting) {
		send_simple(PT_SESS_FAILED, s->id, s->rep.user, s->rep.pool,
			    "the session monitor died while starting");
	}
	unlink(path);
	sess_free(s);
}

/* The monitor's one report (STARTED or FAILED), passed on.  Also called
 * when the monitor has exited, in case its exit was seen before its
 * report was read. */
static void read_report(struct rsess *s)
{
	struct pt_ipc_sess_rep rep;
	ssize_t n;

	if (!s->reporting)
		return;
	do
		n = read(s->fd, &rep, sizeof(rep));
	while (n == -1 && errno == EINTR);
	if (n == -1 && errno == EAGAIN)
		return;
	uv_poll_stop(&s->poll);
	if (n == (ssize_t)sizeof(rep) && rep.type == PT_IPC_SESS_REP && rep.id == s->id &&
	    (rep.op == PT_SESS_STARTED || rep.op == PT_SESS_FAILED)) {
		rep.user[sizeof(rep.user) - 1] = rep.pool[sizeof(rep.pool) - 1] = '\0';
		rep.backend[sizeof(rep.backend) - 1] = rep.secret[sizeof(rep.secret) - 1] = '\0';
		rep.message[sizeof(rep.message) - 1] = '\0';
		if (rep.op == PT_SESS_STARTED) {
			s->started = 1;
			rep.from = s->from; /* a spare VM is now this session */
			s->rep = rep;
		}
		s->from = 0;
		send_rep(&rep);
		s->rep.from = 0;
		s->reporting = 0;
	}
	/* Otherwise (EOF, garbage): monitor_gone reports the failure. */
	explicit_bzero(&rep, sizeof(rep));
}

static void on_report(uv_poll_t *p, int status, int events)
{
	read_report(p->data);
}

static void start(const struct pt_ipc_sess_req *req)
{
	struct rsess *s;
	int rp[2];
	pid_t pid;

	s = calloc(1, sizeof(*s));
	if (!s || pipe2(rp, O_CLOEXEC) == -1) {
		free(s);
		send_simple(PT_SESS_FAILED, req->id, req->user, req->pool,
			    "sessiond is out of resources");
		return;
	}
	/* _Fork: libuv's pthread_atfork handler would make new descriptors
	 * in the monitor, which closes them all anyway. */
	pid = _Fork();
	if (pid == 0) {
		/* The monitor owns nothing of the loop: close it all but its
		 * report pipe and the standard streams. */
		int fd = fcntl(rp[1], F_DUPFD, 100);
		dup2(fd, 3);
		closefrom(4);
		sd_monitor_run(R.conf, req, 3);
	}
	close(rp[1]);
	if (pid == -1) {
		close(rp[0]);
		free(s);
		send_simple(PT_SESS_FAILED, req->id, req->user, req->pool, "cannot fork");
		return;
	}
	s->id = req->id;
	s->monitor = pid;
	s->fd = rp[0];
	s->reporting = 1;
	s->spare = req->op == PT_SESS_SPARE;
	snprintf(s->rep.user, sizeof(s->rep.user), "%s", req->user);
	snprintf(s->rep.pool, sizeof(s->rep.pool), "%s", req->pool);
	fcntl(rp[0], F_SETFL, O_NONBLOCK);
	uv_poll_init(R.loop, &s->poll, rp[0]);
	s->poll.data = s;
	uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_report);
	s->next = R.sessions;
	R.sessions = s;
}

/* A new session of a non-persistent qemu pool takes a booted (ready)
 * spare VM of the pool when there is one: its monitor learns its new id,
 * user and (sso) the user's password from RUN_DIR/state/SPARE.assign
 * (this directory is root's alone) and SIGUSR1, and reports STARTED as
 * the session once the guest has the password, or FAILED.  0 when handed
 * one. */
static int assign_spare(const struct pt_ipc_sess_req *req)
{
	char path[600], tmp[620];
	struct rsess *s;
	size_t pwlen = strlen(req->password);
	int fd;

	if (req->driver != PT_DRIVER_QEMU || req->persistent)
		return -1;
	for (s = R.sessions; s; s = s->next)
		if (s->spare && s->started && !strcmp(s->rep.pool, req->pool))
			break;
	if (!s)
		return -1;
	if (sd_state_path(R.conf, s->id, path, sizeof(path)))
		return -1;
	snprintf(tmp, sizeof(tmp), "%s.assign", path);
	char head[300];
	int hl = snprintf(head, sizeof(head), "%lld\n%s\n", (long long)req->id, req->user);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	int ok = hl > 0 && hl < (int)sizeof(head) && write(fd, head, (size_t)hl) == hl &&
		 (!pwlen || write(fd, req->password, pwlen) == (ssize_t)pwlen);
	if (close(fd) != 0)
		ok = 0;
	if (!ok || kill(s->monitor, SIGUSR1) == -1) {
		unlink(tmp);
		return -1;
	}
	pt_log_info("spare VM %lld of pool %s is now session %lld of %s", (long long)s->id,
		    req->pool, (long long)req->id, req->user);
	/* Its monitor reports (read_report): as the session it becomes. */
	s->from = s->id;
	s->id = s->rep.id = req->id;
	s->spare = 0;
	s->started = 0;
	s->reporting = 1;
	snprintf(s->rep.user, sizeof(s->rep.user), "%s", req->user);
	uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_report);
	return 0;
}

/* A START or SPARE request, checked again whatever the network side
 * checked (checks.c); 0, or -1 when it was answered FAILED. */
static int check(const struct pt_ipc_sess_req *req)
{
	struct sd_checked *ck = malloc(sizeof(*ck));
	char why[256], who[64];
	int rc;

	if (!ck) {
		send_simple(PT_SESS_FAILED, req->id, req->user, req->pool,
			    "sessiond is out of resources");
		return -1;
	}
	rc = sd_check_req(R.conf, req, ck, why, sizeof(why));
	explicit_bzero(ck, sizeof(*ck));
	free(ck);
	if (rc == 0)
		return 0;
	sd_printable(who, sizeof(who), req->user);
	pt_log_warnx("session %lld of %s refused: %s", (long long)req->id, who, why);
	send_simple(PT_SESS_FAILED, req->id, req->user, req->pool, why);
	return -1;
}

static void stop(const struct pt_ipc_sess_req *req)
{
	struct rsess *s = find(req->id);

	if (!s)
		return;
	/* Passed on to the broker as the end's reason: printable only. */
	sd_printable(s->stop_reason, sizeof(s->stop_reason),
		     req->reason[0] ? req->reason : "stopped");
	kill(s->monitor, SIGTERM);
}

/* A notice for the session's user: its text in the run_dir's state
 * directory (root's, 0700: no user can put a link there),
 * <id>.notice, then SIGUSR2 to its monitor, which shows it on the
 * session's display (monitor.c).  The latest replaces one not shown yet. */
static void notice(const struct pt_ipc_sess_req *req)
{
	struct rsess *s = find(req->id);
	char path[600], tmp[620];
	size_t n = strlen(req->command);
	int fd;

	if (!s || s->spare || s->monitor <= 0)
		return;
	if (sd_state_path(R.conf, s->id, path, sizeof(path)) ||
	    strlen(path) + 12 >= sizeof(path))
		return;
	strcat(path, ".notice");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1 || write(fd, req->command, n) != (ssize_t)n || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		pt_log_warn("session %lld: cannot hand a notice to its monitor", (long long)s->id);
		unlink(tmp);
		return;
	}
	kill(s->monitor, SIGUSR2);
}

/* Room on the network side's socket: send what waits. */
static void flush_rep(void)
{
	size_t was = R.out.len;
	int rc = pt_ipc_queue_flush(&R.out, R.fd);

	if (rc == -EPIPE || rc == -ECONNRESET)
		pt_ipc_queue_clear(&R.out); /* nobody to tell; SIGCHLD ends the loop */
	else if (rc < 0 && rc != -EAGAIN)
		pt_log_warnx("cannot reach the network side: %s", strerror(-rc));
	if (R.out.len != was)
		watch_ipc();
}

static void read_req(void)
{
	struct pt_ipc_sess_req req;
	ssize_t n = pt_ipc_recv(R.fd, &req, sizeof(req), PT_IPC_SESS_REQ);
	const char *why = NULL;
	struct rsess *s;

	if (n == -EAGAIN)
		return;
	/* A network side killed (kill -9, a crash) leaves its end closed:
	 * EOF, or ECONNRESET when it left answers unread.  That is no
	 * malformed message, but it is a failure (it only ends on its own
	 * when it fails; a SIGTERM to sessiond stops this side first): exit
	 * 1, so that the service manager (Restart=on-failure) starts
	 * sessiond again and it adopts what runs. */
	if (n == 0 || n == -ECONNRESET || n == -EPIPE) {
		pt_log_warnx("the network side has gone away: stopping for a restart; "
			     "sessions keep running");
		R.rc = 1;
		uv_stop(R.loop);
		return;
	}
	if (n < 0 || sd_check_msg(&req, &why) != 0) {
		pt_log_warnx("malformed message from the network side (%s): stopping it",
			     n == -EPROTO ? pt_ipc_error() : n < 0 ? strerror((int)-n) : why);
		R.rc = 1;
		if (R.net_pid > 0)
			kill(R.net_pid, SIGKILL);
		uv_stop(R.loop);
		return;
	}
	if (req.op == PT_SESS_STOP)
		stop(&req);
	else if (req.op == PT_SESS_NOTICE)
		notice(&req);
	else if ((s = find(req.id)) != NULL) {
		/* Asked again (a retried request): the same answer once known,
		 * and only for the same user and pool (it holds the backend's
		 * secret). */
		if (strcmp(s->rep.user, req.user) || strcmp(s->rep.pool, req.pool))
			send_simple(PT_SESS_FAILED, req.id, req.user, req.pool,
				    "this session id runs here for another user or pool");
		else if (s->started)
			send_rep(&s->rep);
	} else if (check(&req) == 0 && (req.op != PT_SESS_START || assign_spare(&req) != 0))
		start(&req);
	explicit_bzero(&req, sizeof(req));
}

static void on_ipc(uv_poll_t *p, int status, int events)
{
	if (status == 0 && (events & UV_WRITABLE))
		flush_rep();
	if ((status < 0 || (events & UV_READABLE)) && R.out.len < REP_QUEUE_HIGH)
		read_req();
}

static void on_sigchld(uv_signal_t *h, int sig)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct rsess *s = find_pid(pid);
		if (pid == R.net_pid) {
			pt_log_warnx("the network side exited (%s %d)",
				     WIFSIGNALED(status) ? "signal" : "status",
				     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			R.net_pid = 0;
			R.rc = 1;
			uv_stop(R.loop);
		} else if (s) {
			monitor_gone(s);
		}
	}
}

static void on_pidfd(uv_poll_t *p, int status, int events)
{
	uv_poll_stop(p);
	monitor_gone(p->data);
}

static void on_term(uv_signal_t *h, int sig)
{
	pt_log_info("stopping (signal %d); sessions keep running", sig);
	if (R.net_pid > 0)
		kill(R.net_pid, SIGTERM);
	R.rc = 0;
	uv_stop(R.loop);
}

/* A monitor from before a restart, if it still runs and is one: its comm
 * is "pt-session" (monitor.c) and it runs as root, every uid of it (a
 * user's process could name itself pt-session, and the state file could
 * be older than the pid's reuse).  pidfd_open first, then the checks in
 * /proc, then a signal 0 through the pidfd: if the process is still the
 * one the pidfd holds, /proc showed that one and no recycled pid. */
static int adoptable(pid_t pid, int *pidfd)
{
	char path[64], line[256], comm[32] = "";
	int uid_ok = 0;
	FILE *f;

	*pidfd = pid > 1 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (*pidfd < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (f) {
		if (!fgets(comm, sizeof(comm), f))
			comm[0] = '\0';
		fclose(f);
	}
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (f) {
		unsigned r, e, sv, fs;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "Uid: %u %u %u %u", &r, &e, &sv, &fs) == 4) {
				uid_ok = r == 0 && e == 0 && sv == 0 && fs == 0;
				break;
			}
		fclose(f);
	}
	if (strcmp(comm, "pt-session\n") || !uid_ok ||
	    syscall(SYS_pidfd_send_signal, *pidfd, 0, NULL, 0) == -1) {
		close(*pidfd);
		*pidfd = -1;
		return 0;
	}
	return 1;
}

static void adopt_all(void)
{
	char dir[600], path[900];
	struct dirent *e;
	DIR *d;

	if (sd_state_path(R.conf, 0, dir, sizeof(dir)) || !(d = opendir(dir))) {
		send_simple(PT_SESS_ADOPTED, 0, NULL, NULL, NULL);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		struct sd_state st;
		struct rsess *s;
		int pidfd;
		if (e->d_name[0] == '.' || strchr(e->d_name, '.'))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (sd_state_read(path, &st) != 0) {
			unlink(path);
			continue;
		}
		if (st.ended[0] || !adoptable(st.monitor, &pidfd)) {
			/* It ended while we were away, or its monitor died. */
			if (!st.ended[0])
				kill_orphans(&st);
			pt_log_info("session %lld of %s ended while sessiond was away: %s",
				    (long long)st.id, st.user,
				    st.ended[0] ? st.ended : "session monitor died");
			send_simple(PT_SESS_ENDED, st.id, st.user, st.pool,
				    st.ended[0] ? st.ended : "session monitor died");
			unlink(path);
			continue;
		}
		s = calloc(1, sizeof(*s));
		if (!s) {
			close(pidfd);
			continue;
		}
		s->id = st.id;
		s->monitor = st.monitor;
		s->started = 1;
		s->spare = st.id >= PT_SESS_SPARE_BASE;
		s->fd = pidfd;
		s->rep.type = PT_IPC_SESS_REP;
		s->rep.op = PT_SESS_RUNNING;
		s->rep.id = st.id;
		snprintf(s->rep.user, sizeof(s->rep.user), "%s", st.user);
		snprintf(s->rep.pool, sizeof(s->rep.pool), "%s", st.pool);
		snprintf(s->rep.backend, sizeof(s->rep.backend), "%s", st.backend);
		snprintf(s->rep.secret, sizeof(s->rep.secret), "%s", st.secret);
		uv_poll_init(R.loop, &s->poll, pidfd);
		s->poll.data = s;
		uv_poll_start(&s->poll, UV_READABLE, on_pidfd);
		s->next = R.sessions;
		R.sessions = s;
		pt_log_info("session %lld of %s adopted (monitor %d, %s)", (long long)st.id,
			    st.user, (int)st.monitor, st.backend);
		send_rep(&s->rep);
		s->rep.op = PT_SESS_STARTED;
		explicit_bzero(&st, sizeof(st));
	}
	closedir(d);
	/* After every RUNNING and ENDED above, in order: the network side
	 * reports to the broker only once this has come (however slow this
	 * side was to get here), never an empty list for a full host. */
	send_simple(PT_SESS_ADOPTED, 0, NULL, NULL, NULL);
}

int sd_root_run(const struct pt_conf *conf, int ipc_fd, pid_t net_pid)
{
	R.conf = conf;
	R.loop = uv_default_loop();
	R.fd = ipc_fd;
	R.net_pid = net_pid;
	signal(SIGPIPE, SIG_IGN);
	fcntl(ipc_fd, F_SETFL, O_NONBLOCK);
	pt_ipc_queue_init(&R.out, 0);
	uv_signal_init(R.loop, &R.sigchld);
	uv_signal_start(&R.sigchld, on_sigchld, SIGCHLD);
	uv_signal_init(R.loop, &R.sigterm);
	uv_signal_start(&R.sigterm, on_term, SIGTERM);
	uv_signal_init(R.loop, &R.sigint);
	uv_signal_start(&R.sigint, on_term, SIGINT);
	uv_poll_init(R.loop, &R.ipc, ipc_fd);
	adopt_all();
	watch_ipc();
	uv_run(R.loop, UV_RUN_DEFAULT);
	pt_ipc_queue_clear(&R.out);
	return R.rc;
}
