/*
 * audit.h - the audit trail ([broker] audit_log, [gateway] audit_log): one
 * JSON object per line, for "who connected to what, when, from where" after
 * the fact (docs/operations.md, "Audit trail").
 *
 *   {"ts":"2026-12-06T14:20:00.123Z","daemon":"broker","event":"login",...}
 *
 * The file is opened 0600 for appending; each record goes out with one
 * write(2), whole, whatever thread writes it (O_APPEND: records of several
 * threads never interleave).  pt_audit_reopen (SIGHUP, logrotate's
 * postrotate) opens the path again and lets the old file go.  One trail per
 * process, like the log.  Never a password, an answer to PAM or a ticket:
 * callers pass only what this header's records name.
 */
#ifndef PORTICO_AUDIT_H
#define PORTICO_AUDIT_H

#include <jansson.h>
#include <stddef.h>

/* Open path (created 0600; an existing file others may read is refused)
 * for daemon's records.  0, or -1 with err set. */
int pt_audit_open(const char *path, const char *daemon, char *err, size_t errlen);
/* Open the same path again (after a rotation): 0, or -1 with err set and
 * the old file still written. */
int pt_audit_reopen(char *err, size_t errlen);
/* SIGHUP's handler in each daemon: pt_audit_reopen, its outcome logged
 * (nothing when no trail is open). */
void pt_audit_hup(void);
/* Whether a trail is open: callers skip building records otherwise. */
int pt_audit_enabled(void);
/* Write rec (taken: its reference is released) with "ts" and "daemon"
 * first.  A failed write is logged, once until one succeeds again. */
void pt_audit(json_t *rec);
void pt_audit_close(void);

/* --- reading a trail back (portico-admin audit, GET /admin/audit) ---------- */

struct pt_audit_filter {
	const char *user;  /* records whose "user" or "admin" is this; NULL: all */
	const char *event; /* records of this "event"; NULL: all */
	char since[32];	   /* records with "ts" at or after this (ISO 8601, UTC); "": all */
	size_t limit;	   /* at most this many, the newest; 0: PT_AUDIT_READ_MAX */
};
#define PT_AUDIT_READ_MAX 10000

/* Set f->since from "1h" (a duration back from now, as the configuration
 * writes them) or "2026-12-06T14:00" (a UTC time, as far as given): 0, or
 * -1 when it is neither. */
int pt_audit_since(struct pt_audit_filter *f, const char *arg);
/* The records of path (and of path.1 before it, the last rotation's, when
 * it is there) that f lets through, oldest first, appended to out: 0, or -1
 * with err set (the file cannot be read).  Lines that are not JSON objects
 * are skipped and counted in *skipped. */
int pt_audit_read(const char *path, const struct pt_audit_filter *f, json_t *out, size_t *skipped,
		  char *err, size_t errlen);

#endif
