/* log.c - see include/portico/log.h */
#include "portico/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char log_role[32] = "portico";
static enum pt_log_level log_max = PT_LOG_INFO;
static int log_syslog;

static const char *const level_names[] = { "error", "warning", "info", "debug" };
static const int level_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void pt_log_init(const char *role, enum pt_log_level level, int use_syslog)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
	log_max = level;
	if (use_syslog && !log_syslog)
		openlog(log_role, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = use_syslog;
}

enum pt_log_level pt_log_level(void)
{
	return log_max;
}

/* The line is built in one buffer and written with one write(2) so that lines
 * from several threads or processes sharing stderr never interleave. */
static void log_emit(enum pt_log_level level, uint64_t conn, const char *suffix, const char *fmt,
		     va_list ap)
{
	char line[2048], msg[1800];
	struct timespec ts;
	struct tm tm;
	int n;

	if (level > log_max)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Control characters from peers must not forge log lines. */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line),
		     "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d]: %s: ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts.tv_nsec / 1000000, log_role, (int)getpid(), level_names[level]);
	if (conn)
		n += snprintf(line + n, sizeof(line) - n, "conn %llu: ", (unsigned long long)conn);
	n += snprintf(line + n, sizeof(line) - n, "%s%s%s\n", msg, suffix ? ": " : "",
		      suffix ? suffix : "");
	if (n >= (int)sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	(void)!write(STDERR_FILENO, line, n);
	if (log_syslog) {
		if (conn)
			syslog(level_prio[level], "conn %llu: %s%s%s", (unsigned long long)conn,
			       msg, suffix ? ": " : "", suffix ? suffix : "");
		else
			syslog(level_prio[level], "%s%s%s", msg, suffix ? ": " : "",
			       suffix ? suffix : "");
	}
}

void pt_vlog(enum pt_log_level level, uint64_t conn, const char *fmt, va_list ap)
{
	log_emit(level, conn, NULL, fmt, ap);
}

void pt_log(enum pt_log_level level, uint64_t conn, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, conn, NULL, fmt, ap);
	va_end(ap);
}

#define LOG_FN(name, level, with_errno)                                           \
	void name(const char *fmt, ...)                                           \
	{                                                                         \
		int saved = errno;                                                \
		va_list ap;                                                       \
		va_start(ap, fmt);                                                \
		log_emit(level, 0, with_errno ? strerror(saved) : NULL, fmt, ap); \
		va_end(ap);                                                       \
		errno = saved;                                                    \
	}

LOG_FN(pt_log_warn, PT_LOG_WARNING, 1)
LOG_FN(pt_log_warnx, PT_LOG_WARNING, 0)
LOG_FN(pt_log_info, PT_LOG_INFO, 0)
LOG_FN(pt_log_debug, PT_LOG_DEBUG, 0)

void pt_fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit(PT_LOG_ERR, 0, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void pt_fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(PT_LOG_ERR, 0, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
