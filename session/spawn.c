/*
 * spawn.c - a session's processes (see monitor.h).
 *
 * Each child does, in this order: every signal back to its default,
 * setsid, setgid, setuid (and checks that setuid(0) fails), chdir(home),
 * the driver's own files (as the user), a clean environment, every other
 * descriptor closed, exec.  Its supplementary groups are the monitor's,
 * which set them for the account before anything was spawned (initgroups,
 * in PAM's order for user sessions: monitor.c).  libuv's uv_spawn is not
 * used: with SETUID it drops the supplementary groups.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor.h"

extern char **environ;

int sd_kill_pgrp(pid_t pgid, int sig)
{
	/* kill(-1) is every process; -0 is our own group; 1 is init's. */
	if (pgid <= 1)
		return -EINVAL;
	return kill(-pgid, sig) == -1 ? -errno : 0;
}

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
static char **make_env(struct sd_mon *m)
{
	enum { CAP = 96 };
	char **env = calloc(CAP, sizeof(char *));
	const struct passwd *pw = &m->ck.pw;
	size_t n = 0;

	if (!env)
		return NULL;
	env_add(env, &n, CAP, "HOME=%s", pw->pw_dir);
	env_add(env, &n, CAP, "USER=%s", pw->pw_name);
	env_add(env, &n, CAP, "LOGNAME=%s", pw->pw_name);
	env_add(env, &n, CAP, "SHELL=%s", pw->pw_shell && *pw->pw_shell ? pw->pw_shell : "/bin/sh");
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

int sd_write_file(struct sd_mon *m, const char *name, const void *data, size_t len)
{
	int fd, rc = 0;

	fd = openat(m->dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd == -1)
		return -1;
	if (write(fd, data, len) != (ssize_t)len)
		rc = -1;
	if (close(fd) == -1)
		rc = -1;
	return rc;
}

/* In the child, as the user: fd 3 is keep_fd (or closed), 0 is /dev/null,
 * 1 and 2 the session's log.  Never returns. */
static _Noreturn void child(struct sd_mon *m, const char *path, char *const argv[], char **env,
			    int keep_fd, int errfd, sd_prep_cb prep)
{
	const struct passwd *pw = &m->ck.pw;
	int e, k, null, logfd;
	sigset_t all;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < 32; s++)
		signal(s, SIG_DFL);
	if (setsid() == -1 || setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1)
		goto fail;
	if (setuid(0) != -1) { /* must not be able to come back */
		errno = EPERM;
		goto fail;
	}
	if (chdir(pw->pw_dir) == -1 && chdir("/") == -1)
		goto fail;
	if (prep && prep(m))
		goto fail;
	logfd = openat(m->dir_fd, "session.log",
		       O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
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
	if (path)
		execv(path, argv);
	else
		execvp(argv[0], argv);
fail:
	e = errno;
	if (write(errfd, &e, sizeof(e)) < 0)
		_exit(126);
	_exit(127);
}

pid_t sd_spawn(struct sd_mon *m, const char *path, char *const argv[], int keep_fd, sd_prep_cb prep)
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
		child(m, path, argv, env, keep_fd, ep[1], prep);
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

int sd_run_wait(struct sd_mon *m, char *const argv[])
{
	int status;
	pid_t pid = sd_spawn(m, NULL, argv, -1, NULL);

	if (pid < 0)
		return -1;
	while (waitpid(pid, &status, 0) == -1)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int sd_free_port(const char *addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	/* From a place of this monitor's own in the range: VMs that boot
	 * together (spares) bind only once QEMU runs, and would all find the
	 * first free port free. */
	int first = (int)(getpid() % 1000);

	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return -1;
	for (int i = 0; i < 1000; i++) {
		int port = 5910 + (first + i) % 1000;
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
