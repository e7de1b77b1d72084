/*
 * test_qga.c - the guest agent client (session/qga.c) against the real
 * qemu-ga, run on this host over a unix socket, and against hostile agents
 * played by a child process of the test.
 *
 * The real agent runs as root on the host: it is always started with the
 * commands that would act on the host (shutdown, suspend, freeze, passwords)
 * blocked, and a test checks guest-info says so before it sends them.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ifaddrs.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "qga.h"

#define QGA_BLOCKED                                                                    \
	"guest-shutdown,guest-set-user-password,guest-suspend-disk,guest-suspend-ram," \
	"guest-suspend-hybrid,guest-fsfreeze-freeze,guest-fsfreeze-freeze-list"

static char dir[64], sock[96];
static pid_t child = -1;
static struct sd_qga q = { .fd = -1 };
static char err[256];

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-qga.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/qga.sock", dir);
}

/* Under ASan (SAN=address): Criterion's workers end without LeakSanitizer's
 * check at exit, so each test asks for it (suppressions: tests/lsan.supp). */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));

static void cleanup(void)
{
	static const char *files[] = { "qga.sock", "qga.pid", "qga.log", "qga.state", "none" };
	char path[160];

	sd_qga_close(&q);
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	if (__lsan_do_recoverable_leak_check)
		cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "leaks (see above)");
}

/* --- the real agent ------------------------------------------------------- */

static void agent_start(void)
{
	char state[80], pidf[80], logf[80];

	make_dir();
	snprintf(state, sizeof(state), "%s", dir);
	snprintf(pidf, sizeof(pidf), "%s/qga.pid", dir);
	snprintf(logf, sizeof(logf), "%s/qga.log", dir);
	child = fork();
	cr_assert_neq(child, -1);
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the test */
		execl("/usr/sbin/qemu-ga", "qemu-ga", "-m", "unix-listen", "-p", sock, "-t", state,
		      "-f", pidf, "-l", logf, "-b", QGA_BLOCKED, (char *)NULL);
		_exit(127);
	}
	/* Up when its socket takes a connection. */
	for (int i = 0; i < 200; i++) {
		if (sd_qga_open(&q, sock, 100) == 0)
			return;
		usleep(25000);
	}
	cr_assert_fail("qemu-ga did not listen on %s in 5 s", sock);
}

/* guest-info's word on whether cmd is enabled (1, 0), -1 if not listed. */
static int agent_enabled(const char *cmd)
{
	json_t *info = NULL, *c;
	size_t i;
	int on = -1;

	cr_assert_eq(sd_qga_call(&q, "guest-info", NULL, &info, 5000, err, sizeof(err)), 0, "%s",
		     err);
	json_array_foreach(json_object_get(info, "supported_commands"), i, c)
	{
		const char *name = json_string_value(json_object_get(c, "name"));
		if (name && !strcmp(name, cmd))
			on = json_is_true(json_object_get(c, "enabled"));
	}
	json_decref(info);
	return on;
}

TestSuite(qga, .init = agent_start, .fini = cleanup, .timeout = 30);

Test(qga, sync_and_ping)
{
	json_t *r = (json_t *)1;

	cr_assert_eq(sd_qga_sync(&q, 5000), 0);
	cr_assert_eq(sd_qga_call(&q, "guest-ping", NULL, &r, 5000, err, sizeof(err)), 0, "%s", err);
	cr_assert(json_is_object(r) && json_object_size(r) == 0, "ping answers {}");
	json_decref(r);
	/* Again, and a sync between: nothing stale is taken for an answer. */
	cr_assert_eq(sd_qga_sync(&q, 5000), 0);
	cr_assert_eq(sd_qga_sync(&q, 5000), 0);
	cr_assert_eq(sd_qga_call(&q, "guest-ping", NULL, NULL, 5000, err, sizeof(err)), 0);
	cr_assert_eq(q.len, 0, "nothing left over");
}

Test(qga, guest_info_and_unknown_command)
{
	json_t *info;

	cr_assert_eq(sd_qga_call(&q, "guest-info", NULL, &info, 5000, err, sizeof(err)), 0);
	cr_assert(json_is_string(json_object_get(info, "version")));
	json_decref(info);
	cr_assert_eq(sd_qga_call(&q, "guest-no-such", json_pack("{si}", "x", 1), &info, 5000, err,
				 sizeof(err)),
		     -EREMOTEIO);
	cr_assert_null(info);
	cr_assert_str_eq(err, "CommandNotFound: The command guest-no-such has not been found");
	/* The connection goes on. */
	cr_assert_eq(sd_qga_call(&q, "guest-ping", NULL, NULL, 5000, err, sizeof(err)), 0);
}

Test(qga, ipv4_is_one_of_the_hosts)
{
	struct ifaddrs *ifa, *i;
	char got[INET_ADDRSTRLEN], a[INET_ADDRSTRLEN];
	int rc, found = 0, any = 0;

	rc = sd_qga_ipv4(&q, got, sizeof(got), 5000, err, sizeof(err));
	cr_assert_eq(getifaddrs(&ifa), 0);
	for (i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, a, sizeof(a));
		if (!strncmp(a, "127.", 4))
			continue;
		any = 1;
		found |= rc == 0 && !strcmp(a, got);
	}
	freeifaddrs(ifa);
	if (!any) {
		cr_assert_eq(rc, -ENOENT, "no address here, yet %s", got);
		cr_assert_str_eq(err, "the guest has no IPv4 address yet");
	} else {
		cr_assert_eq(rc, 0, "%d %s", rc, err);
		cr_assert(found, "%s is not one of this host's addresses", got);
	}
	cr_assert_eq(sd_qga_ipv4(&q, got, 8, 5000, err, sizeof(err)), any ? -ENOSPC : -ENOENT);
}

Test(qga, exec_exit_codes)
{
	char *t[] = { "/bin/true", NULL }, *f[] = { "/bin/false", NULL };
	char *sh[] = { "/bin/sh", "-c", "exit 7", NULL };
	int status = -1;

	cr_assert_eq(sd_qga_exec(&q, t, &status, 5000, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, 0);
	cr_assert_eq(sd_qga_exec(&q, f, &status, 5000, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, 1);
	cr_assert_eq(sd_qga_exec(&q, sh, &status, 5000, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, 7, "arguments reach the program");
}

Test(qga, exec_killed_by_a_signal)
{
	char *sh[] = { "/bin/sh", "-c", "kill -9 $$", NULL };
	int status = -1;

	cr_assert_eq(sd_qga_exec(&q, sh, &status, 5000, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(status, 128 + 9);
}

Test(qga, exec_timeout_holds)
{
	char *s[] = { "/bin/sleep", "5", NULL };
	int status = -1;
	long t0 = now_ms(), took;

	cr_assert_eq(sd_qga_exec(&q, s, &status, 500, err, sizeof(err)), -ETIMEDOUT);
	took = now_ms() - t0;
	cr_assert(took >= 350 && took < 900, "took %ld ms", took);
	cr_assert_str_eq(err, "the program did not end in time");
	cr_assert_eq(status, -1);
	cr_assert_eq(sd_qga_call(&q, "guest-ping", NULL, NULL, 5000, err, sizeof(err)), 0);
}

Test(qga, exec_of_nothing_says_why)
{
	char *n[] = { "/nonexistent/portico-qga-test", NULL };
	char *none[] = { NULL };
	int status = -1;

	cr_assert_eq(sd_qga_exec(&q, n, &status, 5000, err, sizeof(err)), -EREMOTEIO);
	cr_assert(strstr(err, "/nonexistent/portico-qga-test"), "%s", err);
	cr_assert(strstr(err, "No such file or directory"), "%s", err);
	cr_assert_eq(sd_qga_exec(&q, none, &status, 5000, err, sizeof(err)), -EINVAL);
	cr_assert_eq(sd_qga_exec(&q, NULL, &status, 5000, err, sizeof(err)), -EINVAL);
}

Test(qga, blocked_password_and_shutdown_answer_errors)
{
	/* Safety first: these must be the agent's blocked ones. */
	if (agent_enabled("guest-shutdown") != 0 || agent_enabled("guest-set-user-password") != 0)
		cr_assert_fail("qemu-ga runs without its block list: not sending these");
	cr_assert_eq(
		sd_qga_set_password(&q, "portico-qga-nobody", "s3cret\"\n", 5000, err, sizeof(err)),
		-EREMOTEIO);
	cr_assert_str_eq(err, "CommandNotFound: Command guest-set-user-password has been disabled");
	cr_assert_eq(sd_qga_shutdown(&q, 2000, err, sizeof(err)), -EREMOTEIO);
	cr_assert_str_eq(err, "CommandNotFound: Command guest-shutdown has been disabled");
	cr_assert_eq(sd_qga_call(&q, "guest-ping", NULL, NULL, 5000, err, sizeof(err)), 0);
	cr_assert_eq(sd_qga_set_password(&q, "bad\xff", "x", 5000, err, sizeof(err)), -EINVAL);
}

Test(qga, open_refusals)
{
	struct sd_qga o;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char path[96], lng[200];
	int fd;

	snprintf(path, sizeof(path), "%s/none", dir);
	cr_assert_eq(sd_qga_open(&o, path, 200), -ENOENT);
	cr_assert_eq(o.fd, -1);
	/* A socket file nobody listens on: QEMU gone. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(sd_qga_open(&o, path, 200), -ECONNREFUSED);
	close(fd);
	memset(lng, 'a', sizeof(lng) - 1);
	lng[sizeof(lng) - 1] = '\0';
	cr_assert_eq(sd_qga_open(&o, lng, 200), -ENAMETOOLONG);
	sd_qga_close(&o);
	sd_qga_close(&o); /* twice is fine */
}

/* --- hostile agents ------------------------------------------------------- */

/* What the fake agent does with each command it reads (0xFF bytes dropped,
 * one JSON line each); cmd is "" for a line that is not a command. */
typedef void (*fake_cb)(int fd, const char *cmd, json_t *args);

static void put(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			_exit(0); /* the client went away */
		s += w;
		n -= (size_t)w;
	}
}

static void say(int fd, const char *s)
{
	put(fd, s, strlen(s));
}

static void fake_serve(int lfd, fake_cb cb)
{
	char buf[8192], line[8192];
	size_t ll = 0;
	ssize_t n;
	int fd = accept(lfd, NULL, NULL);

	if (fd == -1)
		_exit(1);
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		for (ssize_t i = 0; i < n; i++) {
			if ((unsigned char)buf[i] == 0xff)
				continue;
			if (buf[i] != '\n') {
				if (ll < sizeof(line) - 1)
					line[ll++] = buf[i];
				continue;
			}
			json_t *o = json_loadb(line, ll, 0, NULL);
			const char *cmd = json_string_value(json_object_get(o, "execute"));
			cb(fd, cmd ? cmd : "", json_object_get(o, "arguments"));
			json_decref(o);
			ll = 0;
		}
	}
	_exit(0);
}

/* A listener at sock served by a child running cb; q connected to it. */
static void fake_start(fake_cb cb)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd;

	make_dir();
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	child = fork();
	cr_assert_neq(child, -1);
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fake_serve(lfd, cb);
	}
	close(lfd);
	cr_assert_eq(sd_qga_open(&q, sock, 2000), 0);
}

/* Answers a sync properly, and everything else as the test says. */
static void sync_ok(int fd, const char *cmd, json_t *args)
{
	char a[64];

	snprintf(a, sizeof(a), "\xff{\"return\": %lld}\n",
		 (long long)json_integer_value(json_object_get(args, "id")));
	say(fd, a);
}

static void garbage(int fd, const char *cmd, json_t *args)
{
	say(fd, "hello, I am not JSON\n");
}

Test(qga_hostile, garbage_is_eproto, .fini = cleanup, .timeout = 10)
{
	fake_start(garbage);
	cr_assert_eq(sd_qga_call(&q, "guest-ping", NULL, NULL, 2000, err, sizeof(err)), -EPROTO);
	cr_assert_str_eq(err, "the guest agent's answer is not a JSON object");
	cr_assert_eq(sd_qga_sync(&q, 500), -ETIMEDOUT, "no 0xFF ever");
}

static void not_answers(int fd, const char *cmd, json_t *args)
{
	if (!strcmp(cmd, "a"))
		say(fd, "[1, 2]\n");
	else if (!strcmp(cmd, "b"))
		say(fd, "{\"foo\": 1}\n");
	else if (!strcmp(cmd, "c"))
		say(fd, "{\"error\": \"flat\"}\n");
	else if (!strcmp(cmd, "d"))
		say(fd, "{\"return\": 1} {\"return\": 2}\n");
	else if (!strcmp(cmd, "e"))
		put(fd, "{\"return\": \"a\0b\"}\n", 18);
	else if (!strcmp(cmd, "f"))
		say(fd, "{\"return\": \"\xc3\x28\"}\n"); /* not UTF-8 */
	else
		sync_ok(fd, cmd, args);
}

Test(qga_hostile, json_that_is_no_answer_is_eproto, .fini = cleanup, .timeout = 10)
{
	static const char *cmds[] = { "a", "b", "c", "d", "e", "f" };
	json_t *r;

	fake_start(not_answers);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		cr_assert_eq(sd_qga_call(&q, cmds[i], NULL, &r, 2000, err, sizeof(err)), -EPROTO,
			     "command %s", cmds[i]);
		cr_assert_null(r);
	}
}

static void endless(int fd, const char *cmd, json_t *args)
{
	char a[4096];

	memset(a, 'a', sizeof(a));
	for (;;)
		put(fd, a, sizeof(a));
}

Test(qga_hostile, endless_line_is_eproto, .fini = cleanup, .timeout = 10)
{
	long t0 = now_ms();

	fake_start(endless);
	cr_assert_eq(sd_qga_call(&q, "guest-ping", NULL, NULL, 5000, err, sizeof(err)), -EPROTO);
	cr_assert_str_eq(err, "the guest agent's answer is longer than 65536 bytes");
	cr_assert_lt(now_ms() - t0, 2000, "refused at the cap, not at the deadline");
	cr_assert_lt(q.len, (size_t)SD_QGA_MAX);
}

/* An answer of exactly n bytes before its "\n". */
static void sized(int fd, const char *cmd, json_t *args)
{
	size_t n = (size_t)atoi(cmd);
	char *a;

	if (!n)
		return sync_ok(fd, cmd, args);
	a = malloc(n + 1);
	memset(a, 'x', n);
	memcpy(a, "{\"return\": \"", 12);
	memcpy(a + n - 2, "\"}", 2);
	a[n] = '\n';
	put(fd, a, n + 1);
	free(a);
}

Test(qga_hostile, answer_cap_is_exact, .fini = cleanup, .timeout = 10)
{
	char cmd[16];
	json_t *r;

	fake_start(sized);
	snprintf(cmd, sizeof(cmd), "%d", SD_QGA_MAX - 1);
	cr_assert_eq(sd_qga_call(&q, cmd, NULL, &r, 2000, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(strlen(json_string_value(r)), (size_t)SD_QGA_MAX - 1 - 14);
	json_decref(r);
	snprintf(cmd, sizeof(cmd), "%d", SD_QGA_MAX);
	cr_assert_eq(sd_qga_call(&q, cmd, NULL, &r, 2000, err, sizeof(err)), -EPROTO);
	cr_assert_null(r);
	/* The rest of that answer is skipped by the sync that follows. */
	cr_assert_eq(sd_qga_call(&q, "100", NULL, &r, 2000, err, sizeof(err)), 0, "%s", err);
	json_decref(r);
}

static void ff_junk(int fd, const char *cmd, json_t *args)
{
	say(fd, "\xff\xff\xffjunk\n");
}

Test(qga_hostile, ff_then_junk_is_eproto, .fini = cleanup, .timeout = 10)
{
	fake_start(ff_junk);
	cr_assert_eq(sd_qga_sync(&q, 2000), -EPROTO);
}

static void wrong_id(int fd, const char *cmd, json_t *args)
{
	static const char a[] = "\xff{\"return\": 1}\n{\"return\": 2}\n";
	static char many[64 * 1024];
	size_t n = 0;

	for (; n + sizeof(a) - 1 <= sizeof(many); n += sizeof(a) - 1)
		memcpy(many + n, a, sizeof(a) - 1);
	say(fd, "junk before\n");
	for (;;) /* faster than the client reads: never empty to a poll */
		put(fd, many, n);
}

Test(qga_hostile, wrong_sync_id_forever_times_out, .fini = cleanup, .timeout = 10)
{
	long t0 = now_ms(), took;

	fake_start(wrong_id);
	t0 = now_ms();
	cr_assert_eq(sd_qga_sync(&q, 500), -ETIMEDOUT);
	took = now_ms() - t0;
	cr_assert(took >= 490 && took < 800, "took %ld ms", took);
}

static void silent(int fd, const char *cmd, json_t *args)
{
}

Test(qga_hostile, silence_times_out_on_time, .fini = cleanup, .timeout = 10)
{
	long t0, took;

	fake_start(silent);
	t0 = now_ms();
	cr_assert_eq(sd_qga_call(&q, "guest-ping", NULL, NULL, 300, err, sizeof(err)), -ETIMEDOUT);
	took = now_ms() - t0;
	cr_assert(took >= 290 && took < 600, "took %ld ms", took);
	cr_assert_str_eq(err, "the guest agent did not answer in time");
	t0 = now_ms();
	cr_assert_eq(sd_qga_sync(&q, 300), -ETIMEDOUT);
	took = now_ms() - t0;
	cr_assert(took >= 290 && took < 600, "took %ld ms", took);
	/* An obeyed shutdown is silence. */
	cr_assert_eq(sd_qga_shutdown(&q, 300, err, sizeof(err)), -ETIMEDOUT,
		     "the stale stream's sync comes first");
}

Test(qga_hostile, silence_after_shutdown_is_obeyed, .fini = cleanup, .timeout = 10)
{
	long t0;

	fake_start(silent);
	t0 = now_ms();
	cr_assert_eq(sd_qga_shutdown(&q, 300, err, sizeof(err)), 0);
	cr_assert_geq(now_ms() - t0, 290);
}

static void closes(int fd, const char *cmd, json_t *args)
{
	if (!strcmp(cmd, "guest-shutdown"))
		_exit(0);
	say(fd, "{\"return\": {\"pi");
	_exit(0);
}

Test(qga_hostile, close_mid_answer, .fini = cleanup, .timeout = 10)
{
	json_t *r;

	fake_start(closes);
	cr_assert_eq(sd_qga_call(&q, "guest-exec", NULL, &r, 2000, err, sizeof(err)), -ECONNRESET);
	cr_assert_null(r);
	cr_assert_str_eq(err, "the guest agent closed the connection");
	/* Writing to it now: an error, and no SIGPIPE kills the test. */
	cr_assert_lt(sd_qga_call(&q, "guest-ping", NULL, NULL, 500, err, sizeof(err)), 0);
}

Test(qga_hostile, close_after_shutdown_is_obeyed, .fini = cleanup, .timeout = 10)
{
	fake_start(closes);
	cr_assert_eq(sd_qga_shutdown(&q, 2000, err, sizeof(err)), 0);
}

static void control_error(int fd, const char *cmd, json_t *args)
{
	say(fd, "{\"error\": {\"class\": \"Generic\\u001bError\", "
		"\"desc\": \"bad\\nthing\\u0007\\u009b[2J\\u007f\\u00e9\"}}\n");
}

Test(qga_hostile, error_text_is_made_printable, .fini = cleanup, .timeout = 10)
{
	char small[12];

	fake_start(control_error);
	cr_assert_eq(sd_qga_call(&q, "x", NULL, NULL, 2000, err, sizeof(err)), -EREMOTEIO);
	cr_assert_str_eq(err, "Generic?Error: bad?thing???[2J?\xc3\xa9");
	cr_assert_eq(sd_qga_set_password(&q, "u", "p", 2000, small, sizeof(small)), -EREMOTEIO);
	cr_assert_str_eq(small, "Generic?Err");
	cr_assert_eq(sd_qga_shutdown(&q, 2000, err, sizeof(err)), -EREMOTEIO);
	cr_assert_str_eq(err, "Generic?Error: bad?thing???[2J?\xc3\xa9");
	cr_assert_eq(sd_qga_call(&q, "x", NULL, NULL, 2000, NULL, 0), -EREMOTEIO, "no err: fine");
}

/* A first answer that comes late, after its call gave up. */
static void late(int fd, const char *cmd, json_t *args)
{
	if (!strcmp(cmd, "slow")) {
		usleep(300000);
		say(fd, "{\"return\": \"old\"}\n");
	} else if (!strcmp(cmd, "guest-sync-delimited"))
		sync_ok(fd, cmd, args);
	else
		say(fd, "{\"return\": \"new\"}\n");
}

Test(qga_hostile, late_answer_is_not_taken_for_the_next, .fini = cleanup, .timeout = 10)
{
	json_t *r;

	fake_start(late);
	cr_assert_eq(sd_qga_call(&q, "slow", NULL, &r, 100, err, sizeof(err)), -ETIMEDOUT);
	cr_assert_eq(sd_qga_call(&q, "fast", NULL, &r, 2000, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(json_string_value(r), "new");
	json_decref(r);
}

/* guest-exec's answers as a hostile guest gives them. */
static void exec_fake(int fd, const char *cmd, json_t *args)
{
	json_int_t pid = json_integer_value(json_object_get(args, "pid"));

	if (!strcmp(cmd, "guest-exec")) {
		const char *path = json_string_value(json_object_get(args, "path"));
		say(fd, !strcmp(path, "/nopid")	 ? "{\"return\": {\"pid\": \"7\"}}\n"
			: !strcmp(path, "/sig")	 ? "{\"return\": {\"pid\": 1}}\n"
			: !strcmp(path, "/huge") ? "{\"return\": {\"pid\": 2}}\n"
						 : "{\"return\": {\"pid\": 3}}\n");
	} else if (pid == 1)
		say(fd, "{\"return\": {\"exited\": true, \"signal\": 15}}\n");
	else if (pid == 2)
		say(fd, "{\"return\": {\"exited\": true, \"exitcode\": 99999999999}}\n");
	else
		say(fd, "{\"return\": {\"exited\": true}}\n");
}

Test(qga_hostile, exec_answers_checked, .fini = cleanup, .timeout = 10)
{
	char *sig[] = { "/sig", NULL }, *nopid[] = { "/nopid", NULL };
	char *huge[] = { "/huge", NULL }, *none[] = { "/none", NULL };
	int status = -1;

	fake_start(exec_fake);
	cr_assert_eq(sd_qga_exec(&q, sig, &status, 2000, err, sizeof(err)), 0);
	cr_assert_eq(status, 128 + 15);
	status = -1;
	cr_assert_eq(sd_qga_exec(&q, nopid, &status, 2000, err, sizeof(err)), -EPROTO);
	cr_assert_eq(sd_qga_exec(&q, huge, &status, 2000, err, sizeof(err)), -EPROTO);
	cr_assert_eq(sd_qga_exec(&q, none, &status, 2000, err, sizeof(err)), -EPROTO);
	cr_assert_eq(status, -1);
}

static void interfaces(int fd, const char *cmd, json_t *args)
{
	static int calls;

	if (calls++ == 0)
		say(fd, "{\"return\": [{\"name\": \"lo\", \"ip-addresses\": [{\"ip-address-type\": "
			"\"ipv4\", \"ip-address\": \"127.0.0.1\"}]}, 42, {\"ip-addresses\": 7}, "
			"{\"ip-addresses\": [{\"ip-address-type\": \"ipv4\", \"ip-address\": "
			"\"1.2.3\"}, {\"ip-address-type\": \"ipv4\", \"ip-address\": \"10.0.0.5 "
			"\"}, {\"ip-address-type\": \"ipv6\", \"ip-address\": \"192.0.2.1\"}, "
			"{\"ip-address-type\": \"ipv4\", \"ip-address\": \"0.0.0.0\"}, "
			"{\"ip-address-type\": \"ipv4\", \"ip-address\": \"999.0.0.1\"}, "
			"{\"ip-address-type\": \"ipv4\", \"ip-address\": \"192.0.2.7\"}]}]}\n");
	else if (calls == 2)
		say(fd, "{\"return\": {\"not\": \"a list\"}}\n");
	else
		say(fd, "{\"return\": [{\"name\": \"lo\", \"ip-addresses\": [{\"ip-address-type\": "
			"\"ipv4\", \"ip-address\": \"127.5.0.1\"}]}]}\n");
}

Test(qga_hostile, ipv4_skips_what_is_no_address, .fini = cleanup, .timeout = 10)
{
	char out[INET_ADDRSTRLEN];

	fake_start(interfaces);
	cr_assert_eq(sd_qga_ipv4(&q, out, sizeof(out), 2000, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(out, "192.0.2.7");
	cr_assert_eq(sd_qga_ipv4(&q, out, sizeof(out), 2000, err, sizeof(err)), -ENOENT);
	cr_assert_eq(sd_qga_ipv4(&q, out, sizeof(out), 2000, err, sizeof(err)), -ENOENT);
}

/* --- the parser alone ----------------------------------------------------- */

Test(qga_parse, answers, .fini = cleanup, .timeout = 10)
{
	json_t *r;

	cr_assert_eq(sd_qga_parse("{\"return\": 5}", 13, &r, err, sizeof(err)), 0);
	cr_assert_eq(json_integer_value(r), 5);
	json_decref(r);
	cr_assert_eq(sd_qga_parse("{\"return\": null}", 16, &r, err, sizeof(err)), 0);
	cr_assert(json_is_null(r));
	json_decref(r);
	cr_assert_eq(sd_qga_parse("{\"error\": {}}", 13, &r, err, sizeof(err)), -EREMOTEIO);
	cr_assert_str_eq(err, "?: ?");
	cr_assert_null(r);
	cr_assert_eq(sd_qga_parse("", 0, &r, err, sizeof(err)), -EPROTO);
	cr_assert_eq(sd_qga_parse("{\"return\": 5", 12, &r, err, sizeof(err)), -EPROTO);
	cr_assert_eq(sd_qga_parse("\"return\"", 8, NULL, NULL, 0), -EPROTO);
	cr_assert_eq(sd_qga_parse("{\"error\": {\"class\": \"\xc2\"}}", 25, &r, err, sizeof(err)),
		     -EPROTO, "not UTF-8");
}
