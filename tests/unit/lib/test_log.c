/* test_log.c - what a log line looks like. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portico/log.h"

/* Run fn with stderr captured; return what it wrote (caller frees). */
static char *capture(void (*fn)(void))
{
	char path[] = "/tmp/portico-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	char *out = calloc(1, 1 << 20);
	ssize_t n;

	cr_assert_neq(fd, -1);
	unlink(path);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, out, (1 << 20) - 1);
	cr_assert_geq(n, 0);
	close(fd);
	return out;
}

static void one_conn_line(void)
{
	pt_log_init("gateway", PT_LOG_INFO, 0);
	pt_log(PT_LOG_WARNING, 17, "backend %s refused", "10.0.0.5:5901");
}

Test(log, line_has_role_pid_level_and_connection, .timeout = 10)
{
	char *out = capture(one_conn_line), expect[128];

	snprintf(expect, sizeof(expect),
		 " gateway[%d]: warning: conn 17: backend 10.0.0.5:5901 refused\n", (int)getpid());
	cr_assert(strstr(out, expect) != NULL, "got '%s'", out);
	/* ISO 8601 UTC timestamp first: 2026-11-23T22:11:29.123Z */
	cr_assert_eq(out[4], '-');
	cr_assert_eq(out[10], 'T');
	cr_assert_eq(out[23], 'Z');
	cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "more than one line");
	free(out);
}

static void levels(void)
{
	pt_log_init("broker", PT_LOG_INFO, 0);
	pt_log_debug("hidden at info");
	pt_log_info("shown");
	pt_log_init("broker", PT_LOG_DEBUG, 0);
	pt_log_debug("now shown");
}

Test(log, level_filters_debug, .timeout = 10)
{
	char *out = capture(levels);

	cr_assert_null(strstr(out, "hidden"));
	cr_assert_not_null(strstr(out, "info: shown"));
	cr_assert_not_null(strstr(out, "debug: now shown"));
	free(out);
}

static void hostile(void)
{
	static char big[100000];

	pt_log_init("gateway", PT_LOG_INFO, 0);
	/* A user name from a peer must not forge a second log line. */
	pt_log_warnx("auth failure user=%s", "eve\nfake: info: admin logged in\r\x1b[2J");
	memset(big, 'A', sizeof(big) - 1);
	pt_log_warnx("user=%s", big);
}

Test(log, peer_text_cannot_forge_lines_and_long_lines_stay_one, .timeout = 10)
{
	char *out = capture(hostile);
	int lines = 0;

	for (char *p = out; *p; p++)
		lines += *p == '\n';
	cr_assert_eq(lines, 2, "got %d lines: %s", lines, out);
	cr_assert_not_null(strstr(out, "user=eve?fake: info: admin logged in??[2J\n"), "got '%s'",
			   out);
	free(out);
}

static void with_errno(void)
{
	pt_log_init("sessiond", PT_LOG_INFO, 0);
	errno = ENOENT;
	pt_log_warn("open %s", "/etc/portico/xsession");
}

Test(log, warn_appends_strerror_and_keeps_errno, .timeout = 10)
{
	char *out = capture(with_errno);

	cr_assert_not_null(
		strstr(out, "warning: open /etc/portico/xsession: No such file or directory\n"),
		"got '%s'", out);
	cr_assert_eq(errno, ENOENT);
	free(out);
}

Test(log, fatalx_exits_non_zero, .exit_code = 1, .timeout = 10)
{
	pt_log_init("broker", PT_LOG_INFO, 0);
	pt_fatalx("bad configuration");
}
