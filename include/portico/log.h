/*
 * log.h - one line per event on stderr (and syslog when asked).
 *
 * Every line carries the process role ("gateway", "broker", ...) and, for
 * events that concern one connection, its id:
 *
 *   2026-11-23T22:11:29.123Z gateway[812]: warning: conn 17: backend refused
 *
 * The *_warn/_crit variants append strerror(errno); the *x variants do not
 * (the OpenBSD log.c convention).  pt_fatal* exit the process and are meant
 * for start-up only: a per-connection error closes that connection instead.
 */
#ifndef PORTICO_LOG_H
#define PORTICO_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum pt_log_level {
	PT_LOG_ERR = 0,
	PT_LOG_WARNING,
	PT_LOG_INFO,
	PT_LOG_DEBUG,
};

#define PT_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Set the role name, the most verbose level written, and whether lines also
 * go to syslog (LOG_DAEMON).  Before this is called the role is "portico" and
 * the level PT_LOG_INFO. */
void pt_log_init(const char *role, enum pt_log_level level, int use_syslog);

/* The current level; callers may skip building expensive arguments. */
enum pt_log_level pt_log_level(void);

/* Write one line at `level` about connection `conn` (0: none). */
void pt_log(enum pt_log_level level, uint64_t conn, const char *fmt, ...) PT_PRINTF(3, 4);
void pt_vlog(enum pt_log_level level, uint64_t conn, const char *fmt, va_list ap) PT_PRINTF(3, 0);

/* Convenience forms without a connection id. */
void pt_log_warn(const char *fmt, ...) PT_PRINTF(1, 2); /* + ": " strerror(errno) */
void pt_log_warnx(const char *fmt, ...) PT_PRINTF(1, 2);
void pt_log_info(const char *fmt, ...) PT_PRINTF(1, 2);
void pt_log_debug(const char *fmt, ...) PT_PRINTF(1, 2);

/* Log at PT_LOG_ERR and exit(1).  Start-up and IPC violations only. */
_Noreturn void pt_fatal(const char *fmt, ...) PT_PRINTF(1, 2); /* + strerror */
_Noreturn void pt_fatalx(const char *fmt, ...) PT_PRINTF(1, 2);

#endif
