/*
 * portico-admin - the console admins use: pools, hosts, sessions, and the
 * nodes' certificates (pki.c).
 *
 *   portico-admin [--broker URL] [--ca FILE] [--json] COMMAND ...
 *
 * Tables for people, --json for scripts; exit 0 done, 1 refused, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cli.h"
#include "portico/audit.h"

static const char usage_text[] =
	"usage: portico-admin [--broker URL] [--ca FILE] [--json] COMMAND\n"
	"  login [USER] | logout\n"
	"  status                                pools, hosts and sessions at a glance\n"
	"  pool list | show NAME | delete NAME | drain NAME | undrain NAME\n"
	"  pool create NAME KEY=VALUE...         keys of a [pool NAME] section\n"
	"  pool set NAME KEY=VALUE...\n"
	"  app publish NAME --command CMD [--users A,B] [--groups G] [--hosts H] [--protocol "
	"vnc|rdp]\n"
	"  host list | drain NAME [--now] | undrain NAME\n"
	"                                        --now: its sessions end at once (logoff)\n"
	"  session list [--pool P] [--user U] [--state S] | disconnect ID | logoff ID\n"
	"  session message ID TEXT               shown to the user at once\n"
	"  audit [--user U] [--event E] [--since 1h|2026-12-06T14:00] [--limit N] [--file PATH]\n"
	"                                        the audit trail: the broker's, or a file's\n"
	"  pki init DIR                          a CA for the nodes' certificates\n"
	"  pki issue DIR --role gateway|host|broker NAME [--san NAME,IP...]\n";

static int usage(void)
{
	fputs(usage_text, stderr);
	return CLI_USAGE;
}

static long long now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Print the answer as JSON (--json) or hand it to `table`. */
static int answer(struct cli *c, int st, json_t *out, void (*table)(json_t *), const char *done)
{
	if (st < 0)
		return CLI_FAIL;
	if (st < 200 || st > 299)
		return cli_refused(c, st, out);
	if (c->json) {
		cli_print_json(out);
	} else if (table) {
		table(out);
	} else if (done) {
		puts(done);
	}
	json_decref(out);
	return CLI_OK;
}

/* The call first, then its answer (C leaves the order in which arguments
 * are evaluated open, so the two cannot be one expression). */
/* A call to the broker, once the command's arguments have been found
 * good: a usage error comes before any question of login (exit 2). */
static int admin_call(struct cli *c, const char *method, const char *path, json_t *body,
		      json_t **out)
{
	*out = NULL;
	if (cli_need_token(c))
		return -1;
	return cli_call(c, method, path, body, out);
}

static int answer_call(struct cli *c, const char *method, const char *path, json_t *body,
		       void (*table)(json_t *), const char *done)
{
	json_t *out = NULL;
	int st = admin_call(c, method, path, body, &out);

	return answer(c, st, out, table, done);
}

static const char *S(json_t *o, const char *k, char *buf, size_t len)
{
	return cli_cell(json_object_get(o, k), buf, len);
}

static void pools_table(json_t *out)
{
	static const char *const h[] = { "NAME",  "KIND",   "PROTOCOL", "DRIVER", "HOSTS",
					 "USERS", "GROUPS", "POLICY",	"DRAINED" };
	struct cli_table *t = cli_table_new(9, h);
	json_t *p, *list = json_object_get(out, "pools");
	size_t i;

	if (!list) /* one pool */
		list = json_pack("[O]", out);
	else
		json_incref(list);
	json_array_foreach(list, i, p)
	{
		char b[9][300];
		const char *row[] = { S(p, "name", b[0], 300),	   S(p, "kind", b[1], 300),
				      S(p, "protocol", b[2], 300), S(p, "driver", b[3], 300),
				      S(p, "hosts", b[4], 300),	   S(p, "users", b[5], 300),
				      S(p, "groups", b[6], 300),   S(p, "policy", b[7], 300),
				      S(p, "drained", b[8], 300) };
		cli_table_add(t, row);
	}
	json_decref(list);
	cli_table_print(t);
}

static void pool_show(json_t *p)
{
	const char *k;
	json_t *v;
	char buf[600];

	json_object_foreach(p, k, v) printf("%-22s %s\n", k, cli_cell(v, buf, sizeof(buf)));
}

static void hosts_table(json_t *out)
{
	static const char *const h[] = { "NAME",    "KIND", "ADDRESS",	"SESSIONS",
					 "DRAINED", "LOAD", "LAST SEEN" };
	struct cli_table *t = cli_table_new(7, h);
	json_t *x;
	size_t i;

	json_array_foreach(json_object_get(out, "hosts"), i, x)
	{
		char b[7][300];
		long long seen = json_integer_value(json_object_get(x, "last_seen_ms"));
		snprintf(b[5], 300, "%.2f", json_number_value(json_object_get(x, "load")));
		if (seen)
			cli_ago(now_ms() - seen, b[6], 300);
		else
			snprintf(b[6], 300, "-");
		strncat(b[6], seen ? " ago" : "", 299 - strlen(b[6]));
		const char *row[] = { S(x, "name", b[0], 300),
				      S(x, "kind", b[1], 300),
				      S(x, "address", b[2], 300),
				      S(x, "sessions", b[3], 300),
				      S(x, "drained", b[4], 300),
				      b[5],
				      b[6] };
		cli_table_add(t, row);
	}
	cli_table_print(t);
}

static void sessions_table(json_t *out)
{
	static const char *const h[] = { "ID", "POOL", "USER", "HOST", "STATE", "AGE", "ENDED" };
	struct cli_table *t = cli_table_new(7, h);
	json_t *s;
	size_t i;

	json_array_foreach(json_object_get(out, "sessions"), i, s)
	{
		char b[7][300];
		cli_ago(now_ms() - json_integer_value(json_object_get(s, "created_ms")), b[5], 300);
		const char *row[] = { S(s, "id", b[0], 300),	    S(s, "pool", b[1], 300),
				      S(s, "user", b[2], 300),	    S(s, "host", b[3], 300),
				      S(s, "state", b[4], 300),	    b[5],
				      S(s, "end_reason", b[6], 300) };
		cli_table_add(t, row);
	}
	cli_table_print(t);
}

/* Pool names and ids go into paths: only what a pool name may be. */
static int path_arg(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 127)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("_.-:[]", s[i])))
			return 0;
	return 1;
}

static int cmd_pool(struct cli *c, int argc, char **argv)
{
	char path[300];
	json_t *out = NULL, *body;
	int st;

	if (argc < 2)
		return usage();
	const char *verb = argv[1];
	if (!strcmp(verb, "list") && argc == 2)
		return answer_call(c, "GET", "/admin/pools", NULL, pools_table, NULL);
	if (argc < 3 || !path_arg(argv[2]))
		return usage();
	snprintf(path, sizeof(path), "/admin/pools/%s", argv[2]);
	if (!strcmp(verb, "show") && argc == 3)
		return answer_call(c, "GET", path, NULL, pool_show, NULL);
	if (!strcmp(verb, "delete") && argc == 3)
		return answer_call(c, "DELETE", path, NULL, NULL, "deleted");
	if ((!strcmp(verb, "drain") || !strcmp(verb, "undrain")) && argc == 3) {
		strncat(path, !strcmp(verb, "drain") ? "/drain" : "/undrain",
			sizeof(path) - strlen(path) - 1);
		return answer_call(c, "POST", path, NULL, NULL,
				   !strcmp(verb, "drain")
					   ? "drained: takes reconnects, no new sessions"
					   : "undrained");
	}
	if (strcmp(verb, "create") && strcmp(verb, "set"))
		return usage();
	body = json_object();
	if (!strcmp(verb, "create"))
		json_object_set_new(body, "name", json_string(argv[2]));
	for (int i = 3; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i]) {
			json_decref(body);
			fprintf(stderr, "portico-admin: '%s' is not KEY=VALUE\n", argv[i]);
			return usage();
		}
		char key[64];
		snprintf(key, sizeof(key), "%.*s", (int)(eq - argv[i]), argv[i]);
		json_object_set_new(body, key, json_string(eq + 1));
	}
	st = !strcmp(verb, "create") ? admin_call(c, "POST", "/admin/pools", body, &out)
				     : admin_call(c, "PATCH", path, body, &out);
	json_decref(body);
	return answer(c, st, out, pool_show, NULL);
}

static int cmd_app(struct cli *c, int argc, char **argv)
{
	json_t *body, *out;
	int st, driver_given = 0;

	if (argc < 3 || strcmp(argv[1], "publish") || !path_arg(argv[2]))
		return usage();
	body = json_pack("{s:s,s:s,s:s}", "name", argv[2], "kind", "app", "driver", "xvnc");
	for (int i = 3; i < argc; i++) {
		const char *k = argv[i];
		if (i + 1 >= argc || strncmp(k, "--", 2))
			return json_decref(body), usage();
		if (!strcmp(k, "--command") || !strcmp(k, "--users") || !strcmp(k, "--groups") ||
		    !strcmp(k, "--hosts") || !strcmp(k, "--protocol") || !strcmp(k, "--driver")) {
			driver_given |= !strcmp(k, "--driver");
			json_object_set_new(body, k + 2, json_string(argv[++i]));
		} else
			return json_decref(body), usage();
	}
	if (!json_object_get(body, "command")) {
		json_decref(body);
		fprintf(stderr, "portico-admin: app publish needs --command\n");
		return usage();
	}
	/* Session hosts serve VNC: an RDP application lives on existing xrdp
	 * or RDS hosts (--hosts host:port), a static pool. */
	if (!strcmp(json_string_value(json_object_get(body, "protocol")) ?: "", "rdp") &&
	    !driver_given)
		json_object_set_new(body, "driver", json_string("static"));
	st = admin_call(c, "POST", "/admin/pools", body, &out);
	json_decref(body);
	return answer(c, st, out, pool_show, NULL);
}

static int cmd_host(struct cli *c, int argc, char **argv)
{
	char path[300];

	if (argc == 2 && !strcmp(argv[1], "list"))
		return answer_call(c, "GET", "/admin/hosts", NULL, hosts_table, NULL);
	int now = argc == 4 && !strcmp(argv[1], "drain") && !strcmp(argv[3], "--now");

	if ((argc != 3 && !now) || (strcmp(argv[1], "drain") && strcmp(argv[1], "undrain")) ||
	    !path_arg(argv[2]))
		return usage();
	snprintf(path, sizeof(path), "/admin/hosts/%s/%s%s", argv[2], argv[1], now ? "?now=1" : "");
	return answer_call(c, "POST", path, NULL, NULL,
			   now ? "drained: its sessions ended, their viewers closed"
			   : !strcmp(argv[1], "drain") ? "drained: takes reconnects, no new sessions"
						       : "undrained");
}

static int cmd_session(struct cli *c, int argc, char **argv)
{
	char path[600], q[400] = "";

	if (argc >= 2 && !strcmp(argv[1], "list")) {
		for (int i = 2; i < argc; i++) {
			const char *k = argv[i];
			if (i + 1 >= argc || !path_arg(argv[i + 1]) ||
			    (strcmp(k, "--pool") && strcmp(k, "--user") && strcmp(k, "--state")))
				return usage();
			snprintf(q + strlen(q), sizeof(q) - strlen(q), "%s%s=%s", q[0] ? "&" : "?",
				 k + 2, argv[++i]);
		}
		snprintf(path, sizeof(path), "/admin/sessions%s", q);
		return answer_call(c, "GET", path, NULL, sessions_table, NULL);
	}
	if (argc == 4 && !strcmp(argv[1], "message") && argv[2][0] &&
	    strspn(argv[2], "0123456789") == strlen(argv[2]) && strlen(argv[2]) <= 18) {
		json_t *body = json_pack("{s:s}", "text", argv[3]);
		int st;

		if (!body) { /* not UTF-8 */
			fprintf(stderr, "portico-admin: the message must be UTF-8 text\n");
			return CLI_USAGE;
		}
		snprintf(path, sizeof(path), "/admin/sessions/%s/message", argv[2]);
		st = answer_call(c, "POST", path, body, NULL, "message sent");
		json_decref(body);
		return st;
	}
	if (argc != 3 || (strcmp(argv[1], "disconnect") && strcmp(argv[1], "logoff")) ||
	    strspn(argv[2], "0123456789") != strlen(argv[2]) || strlen(argv[2]) > 18 || !argv[2][0])
		return usage();
	snprintf(path, sizeof(path), "/admin/sessions/%s/%s", argv[2], argv[1]);
	return answer_call(c, "POST", path, NULL, NULL,
			   !strcmp(argv[1], "logoff") ? "logged off" : "disconnected");
}

/* What a record is about, in a few words, for the table's last column. */
static void audit_detail(json_t *r, char *buf, size_t len)
{
	static const char *const keys[] = { "pool",   "session", "host",   "backend", "protocol",
					    "action", "reason",	 "gateway", "via",    "status" };
	size_t o = 0;
	char v[300];

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && o < len; i++) {
		json_t *x = json_object_get(r, keys[i]);
		if (!x || (json_is_string(x) && !*json_string_value(x)) ||
		    (!strcmp(keys[i], "status") && json_integer_value(x) == 200))
			continue;
		int n = snprintf(buf + o, len - o, "%s%s=%s", o ? " " : "", keys[i],
				 cli_cell(x, v, sizeof(v)));
		o += n > 0 ? (size_t)n : 0;
	}
}

static void audit_table(json_t *out)
{
	static const char *const h[] = { "TIME", "EVENT", "RESULT", "USER", "ADDRESS", "DETAIL" };
	struct cli_table *t = cli_table_new(6, h);
	char b[5][300], d[1200];
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(out, "records"), i, r)
	{
		const char *user = json_string_value(json_object_get(r, "user"));
		audit_detail(r, d, sizeof(d));
		const char *row[] = { S(r, "ts", b[0], 300), S(r, "event", b[1], 300),
				      S(r, "result", b[2], 300),
				      user ? S(r, "user", b[3], 300) : S(r, "admin", b[3], 300),
				      S(r, "addr", b[4], 300), d };
		cli_table_add(t, row);
	}
	cli_table_print(t);
}

/* audit [--user U] [--event E] [--since S] [--limit N] [--file PATH]: the
 * broker's trail through its API, or a trail file read here (a gateway's,
 * or a broker's copy). */
static int cmd_audit(struct cli *c, int argc, char **argv)
{
	struct pt_audit_filter f = { 0 };
	const char *file = NULL;
	char q[1200] = "", path[1300], err[600], *end;
	size_t skipped;
	json_t *out;

	for (int i = 1; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v || strncmp(k, "--", 2))
			return usage();
		i++;
		if (!strcmp(k, "--file")) {
			file = v;
			continue;
		}
		if (!strcmp(k, "--user"))
			f.user = v;
		else if (!strcmp(k, "--event"))
			f.event = v;
		else if (!strcmp(k, "--since")) {
			if (pt_audit_since(&f, v)) {
				fprintf(stderr, "portico-admin: --since: a duration (30m, 1h, 7d) "
						"or a UTC time (2026-12-06T14:00)\n");
				return CLI_USAGE;
			}
		} else if (!strcmp(k, "--limit")) {
			unsigned long long n = strtoull(v, &end, 10);
			if (!*v || *end || n == 0 || n > PT_AUDIT_READ_MAX) {
				fprintf(stderr, "portico-admin: --limit: 1 to %d\n", PT_AUDIT_READ_MAX);
				return CLI_USAGE;
			}
			f.limit = (size_t)n;
		} else
			return usage();
		if (!path_arg(v))
			return usage();
		snprintf(q + strlen(q), sizeof(q) - strlen(q), "%s%s=%s", q[0] ? "&" : "?", k + 2,
			 v);
	}
	if (!file) {
		snprintf(path, sizeof(path), "/admin/audit%s", q);
		return answer_call(c, "GET", path, NULL, audit_table, NULL);
	}
	out = json_pack("{s:[]}", "records");
	if (!out || pt_audit_read(file, &f, json_object_get(out, "records"), &skipped, err,
				  sizeof(err))) {
		fprintf(stderr, "portico-admin: %s\n", out ? err : "out of memory");
		json_decref(out);
		return CLI_FAIL;
	}
	if (skipped)
		fprintf(stderr, "portico-admin: %zu line%s of %s %s not a record\n", skipped,
			skipped == 1 ? "" : "s", file, skipped == 1 ? "is" : "are");
	return answer(c, 200, out, audit_table, NULL);
}

static int cmd_status(struct cli *c, int argc, char **argv)
{
	json_t *pools, *hosts, *sess, *p, *s;
	size_t i, j;
	int st;

	if (argc != 1)
		return usage();
	if ((st = admin_call(c, "GET", "/admin/pools", NULL, &pools)) != 200)
		return st < 0 ? CLI_FAIL : cli_refused(c, st, pools);
	if ((st = admin_call(c, "GET", "/admin/hosts", NULL, &hosts)) != 200) {
		json_decref(pools);
		return st < 0 ? CLI_FAIL : cli_refused(c, st, hosts);
	}
	if ((st = admin_call(c, "GET", "/admin/sessions?state=live", NULL, &sess)) != 200) {
		json_decref(pools);
		json_decref(hosts);
		return st < 0 ? CLI_FAIL : cli_refused(c, st, sess);
	}
	if (c->json) {
		json_t *all = json_pack("{s:O,s:O,s:O}", "pools", json_object_get(pools, "pools"),
					"hosts", json_object_get(hosts, "hosts"), "sessions",
					json_object_get(sess, "sessions"));
		cli_print_json(all);
		json_decref(all);
	} else {
		static const char *const h[] = { "POOL", "DRIVER", "IN USE", "CAPACITY",
						 "DRAINED" };
		struct cli_table *t = cli_table_new(5, h);
		json_array_foreach(json_object_get(pools, "pools"), i, p)
		{
			long long used = 0, cap;
			char b[5][80];
			const char *name = json_string_value(json_object_get(p, "name"));
			json_array_foreach(json_object_get(sess, "sessions"), j, s)
			{
				used += name &&
					!strcmp(name, json_string_value(json_object_get(s, "pool"))
							      ?: "");
			}
			cap = json_integer_value(json_object_get(p, "max_sessions_per_host")) *
			      (long long)json_array_size(json_object_get(p, "hosts"));
			snprintf(b[2], 80, "%lld", used);
			snprintf(b[3], 80, "%lld", cap);
			const char *row[] = { S(p, "name", b[0], 80), S(p, "driver", b[1], 80),
					      b[2], b[3], S(p, "drained", b[4], 80) };
			cli_table_add(t, row);
		}
		cli_table_print(t);
		putchar('\n');
		hosts_table(hosts);
		static const char *const states[] = { "starting", "ready", "active",
						      "disconnected" };
		printf("\nsessions:");
		for (int k = 0; k < 4; k++) {
			int n = 0;
			json_array_foreach(json_object_get(sess, "sessions"), j, s)
			{
				n += !strcmp(json_string_value(json_object_get(s, "state")) ?: "",
					     states[k]);
			}
			printf(" %s %d", states[k], n);
		}
		putchar('\n');
	}
	json_decref(pools);
	json_decref(hosts);
	json_decref(sess);
	return CLI_OK;
}

int main(int argc, char **argv)
{
	struct cli c;
	int first = cli_init(&c, "portico-admin", argc, argv), n;
	char **a;

	if (first < 0 || first >= argc)
		return usage();
	a = argv + first;
	n = argc - first;
	if (!strcmp(a[0], "--help") || !strcmp(a[0], "help")) {
		fputs(usage_text, stdout);
		return CLI_OK;
	}
	if (!strcmp(a[0], "login"))
		return cli_login(&c, n, a, usage);
	if (!strcmp(a[0], "pki"))
		return cli_pki(n, a);
	if (!strcmp(a[0], "logout")) {
		json_t *out;
		if (n != 1)
			return usage();
		if (c.token[0] && c.broker[0] && cli_call(&c, "POST", "/logout", NULL, &out) >= 0)
			json_decref(out);
		cli_forget_token(&c);
		puts("logged out");
		return CLI_OK;
	}
	if (!strcmp(a[0], "audit"))
		return cmd_audit(&c, n, a);
	if (strcmp(a[0], "status") && strcmp(a[0], "pool") && strcmp(a[0], "app") &&
	    strcmp(a[0], "host") && strcmp(a[0], "session")) {
		fprintf(stderr, "portico-admin: unknown command '%s'\n", a[0]);
		return usage();
	}
	if (!strcmp(a[0], "status"))
		return cmd_status(&c, n, a);
	if (!strcmp(a[0], "pool"))
		return cmd_pool(&c, n, a);
	if (!strcmp(a[0], "app"))
		return cmd_app(&c, n, a);
	if (!strcmp(a[0], "host"))
		return cmd_host(&c, n, a);
	return cmd_session(&c, n, a);
}
