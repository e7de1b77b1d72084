/* audit_read.c - an audit trail read back (see include/portico/audit.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "portico/audit.h"
#include "portico/conf.h"

int pt_audit_since(struct pt_audit_filter *f, const char *arg)
{
	int64_t ms;
	time_t t;
	struct tm tm;
	size_t n = strlen(arg);

	if (pt_conf_parse_duration(arg, &ms) == 0 && ms > 0) {
		t = time(NULL) - (time_t)(ms / 1000);
		gmtime_r(&t, &tm);
		strftime(f->since, sizeof(f->since), "%Y-%m-%dT%H:%M:%S", &tm);
		return 0;
	}
	/* YYYY-MM-DD[THH[:MM[:SS]]]: compared as text with "ts", which is
	 * written in the same form, in UTC. */
	static const char form[] = "dddd-dd-ddTdd:dd:dd";
	if (n < 10 || n > sizeof(form) - 1)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (form[i] == 'd' ? !isdigit((unsigned char)arg[i]) : arg[i] != form[i])
			return -1;
	if (n != 10 && n != 13 && n != 16 && n != 19)
		return -1;
	memcpy(f->since, arg, n + 1);
	return 0;
}

static int wanted(const struct pt_audit_filter *f, json_t *r)
{
	const char *ts = json_string_value(json_object_get(r, "ts"));
	const char *ev = json_string_value(json_object_get(r, "event"));
	const char *u = json_string_value(json_object_get(r, "user"));
	const char *a = json_string_value(json_object_get(r, "admin"));

	if (f->since[0] && (!ts || strcmp(ts, f->since) < 0))
		return 0;
	if (f->event && (!ev || strcmp(ev, f->event)))
		return 0;
	if (f->user && !((u && !strcmp(u, f->user)) || (a && !strcmp(a, f->user))))
		return 0;
	return 1;
}

/* The newest records seen so far: a ring of limit slots. */
struct ring {
	json_t **v;
	size_t limit, n, head; /* head: the oldest, once full */
};

static void ring_put(struct ring *r, json_t *rec)
{
	if (r->n < r->limit) {
		r->v[r->n++] = rec;
		return;
	}
	json_decref(r->v[r->head]);
	r->v[r->head] = rec;
	r->head = (r->head + 1) % r->limit;
}

/* One file's records into the ring. */
static int read_one(FILE *fp, const struct pt_audit_filter *f, struct ring *ring, size_t *skipped)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, fp)) > 0) {
		json_t *r = json_loadb(line, (size_t)n, JSON_DISABLE_EOF_CHECK, NULL);
		if (!json_is_object(r)) {
			json_decref(r);
			(*skipped)++;
			continue;
		}
		if (wanted(f, r))
			ring_put(ring, r);
		else
			json_decref(r);
	}
	free(line);
	return ferror(fp) ? -1 : 0;
}

static int read_file(const char *path, int optional, const struct pt_audit_filter *f,
		     struct ring *ring, size_t *skipped, char *err, size_t errlen)
{
	FILE *fp = fopen(path, "re");
	int rc;

	if (!fp) {
		if (optional && errno == ENOENT)
			return 0;
		snprintf(err, errlen, "cannot read the audit log %s: %s", path, strerror(errno));
		return -1;
	}
	rc = read_one(fp, f, ring, skipped);
	fclose(fp);
	if (rc)
		snprintf(err, errlen, "cannot read the audit log %s: %s", path, strerror(errno));
	return rc;
}

int pt_audit_read(const char *path, const struct pt_audit_filter *f, json_t *out, size_t *skipped,
		  char *err, size_t errlen)
{
	struct ring ring = { 0 };
	char old[4096];
	int rc = 0;

	*skipped = 0;
	ring.limit = f->limit && f->limit < PT_AUDIT_READ_MAX ? f->limit : PT_AUDIT_READ_MAX;
	if (!(ring.v = calloc(ring.limit, sizeof(*ring.v)))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* The last rotation's first (logrotate's "delaycompress" keeps it
	 * plain): "--since 1h" just after a rotation still sees the hour. */
	if (snprintf(old, sizeof(old), "%s.1", path) < (int)sizeof(old))
		rc = read_file(old, 1, f, &ring, skipped, err, errlen);
	if (rc == 0)
		rc = read_file(path, 0, f, &ring, skipped, err, errlen);
	for (size_t i = 0; i < ring.n; i++) {
		json_t *r = ring.v[(ring.head + i) % ring.n];
		if (rc == 0)
			json_array_append(out, r);
		json_decref(r);
	}
	free(ring.v);
	return rc;
}
