/* audit.c - see include/portico/audit.h */
#include "portico/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "portico/log.h"

static pthread_mutex_t audit_mu = PTHREAD_MUTEX_INITIALIZER;
static int audit_fd = -1;
static char *audit_path;
static char audit_daemon[32];
static int audit_failing;

static int open_trail(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open the audit log %s: %s", path, strerror(errno));
		return -1;
	}
	/* Who did what from where is for its owner alone: a file others may
	 * read (made by hand, or by another program) is refused, not used. */
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "the audit log %s is not a regular file of mode 0600 (chmod 600 it)", path);
		close(fd);
		return -1;
	}
	return fd;
}

int pt_audit_open(const char *path, const char *daemon, char *err, size_t errlen)
{
	int fd = open_trail(path, err, errlen);
	char *p;

	if (fd < 0)
		return -1;
	if (!(p = strdup(path))) {
		close(fd);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	pthread_mutex_lock(&audit_mu);
	if (audit_fd >= 0)
		close(audit_fd);
	free(audit_path);
	audit_fd = fd;
	audit_path = p;
	snprintf(audit_daemon, sizeof(audit_daemon), "%s", daemon);
	audit_failing = 0;
	pthread_mutex_unlock(&audit_mu);
	return 0;
}

int pt_audit_reopen(char *err, size_t errlen)
{
	int fd, old;

	pthread_mutex_lock(&audit_mu);
	if (!audit_path) {
		pthread_mutex_unlock(&audit_mu);
		return 0;
	}
	fd = open_trail(audit_path, err, errlen);
	if (fd >= 0) {
		old = audit_fd;
		audit_fd = fd;
		audit_failing = 0;
		if (old >= 0)
			close(old);
	}
	pthread_mutex_unlock(&audit_mu);
	return fd < 0 ? -1 : 0;
}

int pt_audit_enabled(void)
{
	return audit_path != NULL;
}

void pt_audit(json_t *rec)
{
	char ts[64];
	struct timespec now;
	struct tm tm;
	json_t *line;
	char *text;
	size_t n;
	ssize_t w;

	if (!rec)
		return;
	if (!audit_path) {
		json_decref(rec);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 now.tv_nsec / 1000000);
	/* ts and daemon first: a person reading the file sees when and who. */
	line = json_pack("{s:s,s:s}", "ts", ts, "daemon", audit_daemon);
	if (line)
		json_object_update_missing(line, rec);
	json_decref(rec);
	/* One line: jansson escapes every control character in strings. */
	text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(line);
	if (!text) {
		pt_log_warnx("audit: a record was lost (out of memory)");
		return;
	}
	n = strlen(text);
	text[n] = '\n'; /* json_dumps's NUL: the line's end, written with it */
	pthread_mutex_lock(&audit_mu);
	w = write(audit_fd, text, n + 1);
	if (w != (ssize_t)(n + 1) && !audit_failing) {
		audit_failing = 1;
		pt_log_warnx("audit: cannot write to %s: %s (records are lost until it works)",
			     audit_path, w < 0 ? strerror(errno) : "short write");
	} else if (w == (ssize_t)(n + 1) && audit_failing) {
		audit_failing = 0;
		pt_log_info("audit: %s is written again", audit_path);
	}
	pthread_mutex_unlock(&audit_mu);
	free(text);
}

void pt_audit_close(void)
{
	pthread_mutex_lock(&audit_mu);
	if (audit_fd >= 0)
		close(audit_fd);
	audit_fd = -1;
	free(audit_path);
	audit_path = NULL;
	pthread_mutex_unlock(&audit_mu);
}

void pt_audit_hup(void)
{
	char err[600];

	if (!pt_audit_enabled())
		return;
	if (pt_audit_reopen(err, sizeof(err)))
		pt_log_warnx("audit: %s; still writing to the file open before", err);
	else
		pt_log_info("audit: reopened %s", audit_path);
}
