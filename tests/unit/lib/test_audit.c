/* test_audit.c - the audit trail: what a record looks like, the file's
 * mode, a reopen after a rotation, and reading it back with filters. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "portico/audit.h"

static char dir[64], path[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/portico-audit-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/audit.log", dir);
}

static void teardown(void)
{
	char cmd[200];

	pt_audit_close();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(audit, .init = setup, .fini = teardown);

static json_t *read_all(const char *p, const struct pt_audit_filter *f, size_t *skipped)
{
	char err[300];
	json_t *a = json_array();

	cr_assert_eq(pt_audit_read(p, f, a, skipped, err, sizeof(err)), 0, "%s", err);
	return a;
}

Test(audit, records_are_lines_of_json_in_a_0600_file)
{
	char err[300];
	struct stat st;
	size_t skipped;

	cr_assert_eq(pt_audit_enabled(), 0);
	pt_audit(json_pack("{s:s}", "event", "nowhere")); /* no trail: dropped */
	cr_assert_eq(pt_audit_open(path, "broker", err, sizeof(err)), 0, "%s", err);
	cr_assert(pt_audit_enabled());
	pt_audit(json_pack("{s:s,s:s}", "event", "login", "user", "a\nb\"c"));
	pt_audit(NULL);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	struct pt_audit_filter f = { 0 };
	json_t *a = read_all(path, &f, &skipped);
	cr_assert_eq(json_array_size(a), 1);
	json_t *r = json_array_get(a, 0);
	cr_assert_str_eq(json_string_value(json_object_get(r, "user")), "a\nb\"c");
	cr_assert_str_eq(json_string_value(json_object_get(r, "daemon")), "broker");
	const char *ts = json_string_value(json_object_get(r, "ts"));
	cr_assert(ts && strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z', "ts %s", ts);
	json_decref(a);
	/* One line per record: the newline inside a value is escaped. */
	FILE *fp = fopen(path, "r");
	char line[512];
	int lines = 0;
	while (fgets(line, sizeof(line), fp))
		lines++;
	fclose(fp);
	cr_assert_eq(lines, 1);
}

Test(audit, a_file_others_may_read_is_refused)
{
	char err[300];
	int fd = open(path, O_CREAT | O_WRONLY, 0644);

	cr_assert_geq(fd, 0);
	fchmod(fd, 0644);
	close(fd);
	cr_assert_eq(pt_audit_open(path, "broker", err, sizeof(err)), -1);
	cr_assert(strstr(err, "mode 0600"), "%s", err);
	cr_assert_eq(pt_audit_enabled(), 0);
	cr_assert_eq(symlink(path, "/tmp/portico-audit-link-test"), 0);
	chmod(path, 0600);
	cr_assert_eq(pt_audit_open("/tmp/portico-audit-link-test", "broker", err, sizeof(err)), -1,
		     "a symbolic link was followed");
	unlink("/tmp/portico-audit-link-test");
}

Test(audit, reopened_after_a_rotation_and_both_read_back)
{
	char err[300], old[160];
	size_t skipped;

	cr_assert_eq(pt_audit_open(path, "gateway", err, sizeof(err)), 0, "%s", err);
	pt_audit(json_pack("{s:s,s:s}", "event", "connect", "user", "alice"));
	snprintf(old, sizeof(old), "%s.1", path);
	cr_assert_eq(rename(path, old), 0);
	pt_audit(json_pack("{s:s,s:s}", "event", "connect", "user", "bob")); /* still the old */
	cr_assert_eq(pt_audit_reopen(err, sizeof(err)), 0, "%s", err);
	pt_audit(json_pack("{s:s,s:s}", "event", "disconnect", "user", "alice"));
	struct pt_audit_filter f = { 0 };
	json_t *a = read_all(path, &f, &skipped);
	cr_assert_eq(json_array_size(a), 3, "the rotated file is read first");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 1), "user")), "bob");
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 2), "event")),
			 "disconnect");
	json_decref(a);
}

Test(audit, filters_limits_and_bad_lines)
{
	FILE *fp = fopen(path, "w");
	size_t skipped;

	fputs("{\"ts\":\"2026-12-06T10:00:00.000Z\",\"event\":\"login\",\"user\":\"alice\"}\n"
	      "not json\n"
	      "[1,2]\n"
	      "{\"ts\":\"2026-12-06T11:00:00.000Z\",\"event\":\"admin\",\"admin\":\"alice\"}\n"
	      "{\"ts\":\"2026-12-06T12:00:00.000Z\",\"event\":\"login\",\"user\":\"bob\"}\n"
	      "{\"ts\":\"2026-12-06T13:00:00.000Z\",\"event\":\"login\",\"user\":\"alice\"}",
	      fp);
	fclose(fp);
	struct pt_audit_filter f = { .user = "alice" };
	json_t *a = read_all(path, &f, &skipped);
	cr_assert_eq(json_array_size(a), 3, "user matches user and admin");
	cr_assert_eq(skipped, 2);
	json_decref(a);
	f = (struct pt_audit_filter){ .event = "login", .limit = 2 };
	a = read_all(path, &f, &skipped);
	cr_assert_eq(json_array_size(a), 2);
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(a, 0), "user")), "bob",
			 "the newest, oldest first");
	json_decref(a);
	f = (struct pt_audit_filter){ 0 };
	cr_assert_eq(pt_audit_since(&f, "2026-12-06T11"), 0);
	a = read_all(path, &f, &skipped);
	cr_assert_eq(json_array_size(a), 3);
	json_decref(a);
	char err[300];
	json_t *b = json_array();
	cr_assert_eq(pt_audit_read("/nonexistent/audit.log", &f, b, &skipped, err, sizeof(err)), -1);
	cr_assert(strstr(err, "cannot read the audit log"), "%s", err);
	json_decref(b);
}

Test(audit, since_takes_durations_and_utc_times_only)
{
	struct pt_audit_filter f = { 0 };
	static const char *const good[] = { "30m", "1h", "7d", "2026-12-06", "2026-12-06T14",
					    "2026-12-06T14:00", "2026-12-06T14:00:59" };
	static const char *const bad[] = { "",		  "yesterday",	      "2026-12",
					   "2026-12-06T",	  "2026-12-06T1",     "2026-12-06 14:00",
					   "2026-12-06T14:00:5", "2026-12-06T14:00:00Z", "-1h",
					   "2026-12-06T14:00:00.000" };

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_assert_eq(pt_audit_since(&f, good[i]), 0, "%s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(pt_audit_since(&f, bad[i]), -1, "%s", bad[i]);
	cr_assert_eq(pt_audit_since(&f, "1h"), 0);
	cr_assert_eq(strlen(f.since), 19);
}
