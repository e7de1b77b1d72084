/* test_conf.c - lib/conf.c against real files. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "portico/conf.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

#define TMP_TEMPLATE "/tmp/portico-conf-XXXXXX"

/* Write len bytes into a fresh file under /tmp, named in path. */
static void write_tmp(char path[static sizeof(TMP_TEMPLATE)], const void *data, size_t len)
{
	const char *p = data;
	int fd;

	memcpy(path, TMP_TEMPLATE, sizeof(TMP_TEMPLATE));
	fd = mkstemp(path);
	cr_assert_neq(fd, -1, "mkstemp: %s", strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		cr_assert_gt(n, 0, "write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
	cr_assert_eq(close(fd), 0);
}

static void write_str(char path[static sizeof(TMP_TEMPLATE)], const char *text)
{
	write_tmp(path, text, strlen(text));
}

/* Load text from a file that is gone again when this returns. */
static struct pt_conf *load_str(const char *text, char *err, size_t errlen)
{
	char path[sizeof(TMP_TEMPLATE)];
	struct pt_conf *conf;

	write_str(path, text);
	conf = pt_conf_load(path, err, errlen);
	unlink(path);
	return conf;
}

/* The file must fail at `line` with a message naming `what` (and `what2`
 * unless NULL), in the form "PATH:LINE: ...". */
static void expect_error(const char *text, int line, const char *what, const char *what2)
{
	char err[512], prefix[128], path[sizeof(TMP_TEMPLATE)];
	struct pt_conf *conf;

	write_str(path, text);
	conf = pt_conf_load(path, err, sizeof(err));
	unlink(path);
	if (conf) {
		pt_conf_free(conf);
		cr_assert_fail("loaded although line %d is wrong", line);
	}
	snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
	cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0, "want prefix \"%s\", got \"%s\"",
		     prefix, err);
	cr_assert_not_null(strstr(err, what), "\"%s\" does not name \"%s\"", err, what);
	if (what2)
		cr_assert_not_null(strstr(err, what2), "\"%s\" does not name \"%s\"", err, what2);
	cr_assert_null(strchr(err, '\n'), "more than one line: \"%s\"", err);
}

static void expect_list(const struct pt_strlist *l, size_t n, const char *const *want)
{
	cr_assert_eq(l->n, n, "list has %zu items, want %zu", l->n, n);
	cr_assert_not_null(l->v);
	for (size_t i = 0; i < n; i++)
		cr_assert_str_eq(l->v[i], want[i]);
	cr_assert_null(l->v[n]);
}

static void expect_defaults(const struct pt_conf *c)
{
	char host[256];

	cr_assert_str_eq(c->tls.cert, "/etc/portico/tls/server.pem");
	cr_assert_str_eq(c->tls.key, "/etc/portico/tls/server.key");
	cr_assert_null(c->tls.ca);
	cr_assert_str_eq(c->tls.ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20");
	cr_assert_str_eq(
		c->tls.ciphersuites,
		"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");

	cr_assert_str_eq(c->broker.listen, "127.0.0.1:8443");
	cr_assert_str_eq(c->broker.store, "sqlite:/var/lib/portico/portico.db");
	cr_assert_str_eq(c->broker.pam_service, "portico");
	cr_assert_str_eq(c->broker.user, "portico-broker");
	cr_assert_str_eq(c->broker.admin_group, "portico-admin");
	cr_assert_null(c->broker.gateway_secret);
	cr_assert_eq(c->broker.token_ttl_ms, 8 * HOUR);
	cr_assert_eq(c->broker.ticket_ttl_ms, 60 * SEC);
	cr_assert_eq(c->broker.fail_delay_ms, 2 * SEC);

	cr_assert_str_eq(c->gateway.broker, "https://127.0.0.1:8443");
	cr_assert_str_eq(c->gateway.rdp_listen, "0.0.0.0:3389");
	cr_assert_str_eq(c->gateway.vnc_listen, "0.0.0.0:5900");
	cr_assert_str_eq(c->gateway.public_host, "localhost");
	cr_assert_str_eq(c->gateway.user, "portico-gateway");
	cr_assert_eq(c->gateway.idle_timeout_ms, 0);
	cr_assert_eq(c->gateway.handshake_timeout_ms, 30 * SEC);
	cr_assert_eq(c->gateway.max_connections, 10000);
	cr_assert_eq(c->gateway.vnc_anon_tls, 0);

	cr_assert_str_eq(c->sessiond.broker, "https://127.0.0.1:8443");
	cr_assert_str_eq(c->sessiond.listen, "127.0.0.1:8444");
	cr_assert_str_eq(c->sessiond.user, "portico-sessiond");
	cr_assert_str_eq(c->sessiond.gateway_user, "portico-gateway");
	cr_assert_str_eq(c->sessiond.vm_user, "portico-vm");
	cr_assert_eq(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	cr_assert_str_eq(c->sessiond.name, host[0] ? host : "localhost");

	cr_assert_eq(c->npools, 0);
}

static void expect_pool_defaults(const struct pt_pool_conf *p)
{
	cr_assert_eq(p->kind, PT_POOL_DESKTOP);
	cr_assert_eq(p->protocol, PT_PROTO_VNC);
	cr_assert_eq(p->driver, PT_DRIVER_XVNC);
	expect_list(&p->hosts, 0, NULL);
	expect_list(&p->users, 0, NULL);
	expect_list(&p->groups, 0, NULL);
	cr_assert_eq(p->policy, PT_POLICY_LEAST_LOADED);
	cr_assert_null(p->command);
	cr_assert_null(p->image);
	cr_assert_str_eq(p->geometry, "1280x800");
	cr_assert_eq(p->max_sessions_per_host, 50);
	cr_assert_eq(p->max_sessions_per_user, 1);
	cr_assert_eq(p->min_spare, 0);
	cr_assert_eq(p->max_vms, 10);
	cr_assert_eq(p->idle_timeout_ms, 0);
	cr_assert_eq(p->disconnect_timeout_ms, HOUR);
	cr_assert_eq(p->max_duration_ms, 0);
	cr_assert_eq(p->sso, 0);
}

/* ---- value parsers ---- */

Test(conf_parse, duration, .timeout = 10)
{
	int64_t ms = -1;

	cr_assert_eq(pt_conf_parse_duration("250ms", &ms), 0);
	cr_assert_eq(ms, 250);
	cr_assert_eq(pt_conf_parse_duration("60s", &ms), 0);
	cr_assert_eq(ms, 60 * SEC);
	cr_assert_eq(pt_conf_parse_duration("5m", &ms), 0);
	cr_assert_eq(ms, 5 * MIN);
	cr_assert_eq(pt_conf_parse_duration("8h", &ms), 0);
	cr_assert_eq(ms, 8 * HOUR);
	cr_assert_eq(pt_conf_parse_duration("2d", &ms), 0);
	cr_assert_eq(ms, 2 * DAY);
	cr_assert_eq(pt_conf_parse_duration("90", &ms), 0);
	cr_assert_eq(ms, 90 * SEC);
	cr_assert_eq(pt_conf_parse_duration("0", &ms), 0);
	cr_assert_eq(ms, 0);
	cr_assert_eq(pt_conf_parse_duration("007s", &ms), 0);
	cr_assert_eq(ms, 7 * SEC);

	ms = 42;
	const char *bad[] = { "",    "s",    "ms",  "-1s",   "+1s", "1.5s", "1 s", " 1s",
			      "1s ", "1sec", "10S", "1h30m", "1y",  "0x10", "1e3", "abc" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(pt_conf_parse_duration(bad[i], &ms), -EINVAL, "'%s' accepted", bad[i]);
	cr_assert_eq(pt_conf_parse_duration(NULL, &ms), -EINVAL);
	cr_assert_eq(ms, 42, "a refused value was stored");

	cr_assert_eq(pt_conf_parse_duration("99999999999999999999", &ms), -ERANGE);
	cr_assert_eq(pt_conf_parse_duration("9223372036854775807d", &ms), -ERANGE);
	cr_assert_eq(pt_conf_parse_duration("9223372036854775807ms", &ms), 0);
	cr_assert_eq(ms, INT64_MAX);
}

Test(conf_parse, bool, .timeout = 10)
{
	const char *yes[] = { "yes", "YES", "True", "on", "ON", "1" };
	const char *no[] = { "no", "No", "FALSE", "off", "Off", "0" };
	const char *bad[] = { "", "y", "n", "2", "yes ", " no", "enabled", "00" };
	int b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = 0;
		cr_assert_eq(pt_conf_parse_bool(yes[i], &b), 0, "'%s'", yes[i]);
		cr_assert_eq(b, 1, "'%s'", yes[i]);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = 1;
		cr_assert_eq(pt_conf_parse_bool(no[i], &b), 0, "'%s'", no[i]);
		cr_assert_eq(b, 0, "'%s'", no[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(pt_conf_parse_bool(bad[i], &b), -EINVAL, "'%s' accepted", bad[i]);
	cr_assert_eq(pt_conf_parse_bool(NULL, &b), -EINVAL);
}

Test(conf_parse, int, .timeout = 10)
{
	int64_t v = 0;

	cr_assert_eq(pt_conf_parse_int("0", 0, 10, &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(pt_conf_parse_int("10", 0, 10, &v), 0);
	cr_assert_eq(v, 10);
	cr_assert_eq(pt_conf_parse_int("-5", -10, 10, &v), 0);
	cr_assert_eq(v, -5);
	cr_assert_eq(pt_conf_parse_int("9223372036854775807", 0, INT64_MAX, &v), 0);
	cr_assert_eq(v, INT64_MAX);

	v = 42;
	const char *bad[] = { "", "-", "12a", "1 ", " 1", "+1", "0x10", "1.0", "1e3", "--1", "a" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(pt_conf_parse_int(bad[i], INT64_MIN, INT64_MAX, &v), -EINVAL,
			     "'%s' accepted", bad[i]);
	cr_assert_eq(pt_conf_parse_int(NULL, 0, 1, &v), -EINVAL);
	cr_assert_eq(pt_conf_parse_int("11", 0, 10, &v), -ERANGE);
	cr_assert_eq(pt_conf_parse_int("-1", 0, 10, &v), -ERANGE);
	cr_assert_eq(pt_conf_parse_int("9223372036854775808", INT64_MIN, INT64_MAX, &v), -ERANGE);
	cr_assert_eq(pt_conf_parse_int("-99999999999999999999", INT64_MIN, INT64_MAX, &v), -ERANGE);
	cr_assert_eq(v, 42, "a refused value was stored");
}

/* ---- defaults ---- */

Test(conf, defaults, .timeout = 10)
{
	struct pt_conf *c = pt_conf_defaults();

	cr_assert_not_null(c);
	expect_defaults(c);
	cr_assert_null(c->path);
	cr_assert_null(pt_conf_pool(c, "office"));
	pt_conf_free(c);
	pt_conf_free(NULL);
}

Test(conf, empty_file_is_defaults, .timeout = 10)
{
	char err[256] = "untouched", path[sizeof(TMP_TEMPLATE)];
	struct pt_conf *c;

	write_str(path, "");
	c = pt_conf_load(path, err, sizeof(err));
	unlink(path);
	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(err, "");
	cr_assert_str_eq(c->path, path);
	expect_defaults(c);
	pt_conf_free(c);
}

Test(conf, comments_and_blank_sections_are_defaults, .timeout = 10)
{
	char err[256];
	struct pt_conf *c = load_str("; comment\n# another\n\n   \n[tls]\n[broker]\n; x = y\n"
				     "[gateway]\n[sessiond]\n",
				     err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	expect_defaults(c);
	pt_conf_free(c);
}

/* ---- every key, every type ---- */

Test(conf, every_key, .timeout = 10)
{
	char err[512];
	struct pt_conf *c;

	static const char good[] = "[tls]\n"
				   "cert = /srv/tls/cert.pem\n"
				   "key = /srv/tls/key.pem\n"
				   "ca = /srv/tls/ca.pem\n"
				   "ciphers = ECDHE+AESGCM\n"
				   "ciphersuites = TLS_AES_256_GCM_SHA384\n"
				   "[broker]\n"
				   "listen = [::1]:9443\n"
				   "store = postgresql://portico@db/portico\n"
				   "pam_service = login\n"
				   "user = nobody\n"
				   "admin_group = wheel\n"
				   "gateway_secret = s3cr3t;with;semicolons\n"
				   "token_ttl = 1d\n"
				   "ticket_ttl = 30\n"
				   "fail_delay = 500ms\n"
				   "[gateway]\n"
				   "broker = https://broker.example.org:8080/base\n"
				   "rdp_listen = 192.0.2.1:13389\n"
				   "vnc_listen =\n"
				   "public_host = gw.example.org\n"
				   "user = gw\n"
				   "idle_timeout = 5m\n"
				   "handshake_timeout = 1s\n"
				   "max_connections = 1000000\n"
				   "vnc_anon_tls = On\n"
				   "[sessiond]\n"
				   "broker = https://[2001:db8::1]\n"
				   "listen = 0.0.0.0:18444\n"
				   "name = node-7\n"
				   "[pool p]\n"
				   "kind = app\n"
				   "protocol = rdp\n"
				   "driver = static\n"
				   "hosts = a:1, b:65535\n"
				   "users = alice\n"
				   "groups = staff, ops\n"
				   "policy = round-robin\n"
				   "command = /usr/bin/xterm -e top\n"
				   "image = /img/x.qcow2\n"
				   "geometry = 64x8192\n"
				   "max_sessions_per_host = 100000\n"
				   "max_sessions_per_user = 1000\n"
				   "min_spare = 1000\n"
				   "max_vms = 0\n"
				   "idle_timeout = 30d\n"
				   "disconnect_timeout = 0\n"
				   "max_duration = 365d\n"
				   "sso = true\n";
	c = load_str(good, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);

	cr_assert_str_eq(c->tls.cert, "/srv/tls/cert.pem");
	cr_assert_str_eq(c->tls.key, "/srv/tls/key.pem");
	cr_assert_str_eq(c->tls.ca, "/srv/tls/ca.pem");
	cr_assert_str_eq(c->tls.ciphers, "ECDHE+AESGCM");
	cr_assert_str_eq(c->tls.ciphersuites, "TLS_AES_256_GCM_SHA384");

	cr_assert_str_eq(c->broker.listen, "[::1]:9443");
	cr_assert_str_eq(c->broker.store, "postgresql://portico@db/portico");
	cr_assert_str_eq(c->broker.pam_service, "login");
	cr_assert_str_eq(c->broker.user, "nobody");
	cr_assert_str_eq(c->broker.admin_group, "wheel");
	/* ';' without a blank before it is not a comment */
	cr_assert_str_eq(c->broker.gateway_secret, "s3cr3t;with;semicolons");
	cr_assert_eq(c->broker.token_ttl_ms, DAY);
	cr_assert_eq(c->broker.ticket_ttl_ms, 30 * SEC);
	cr_assert_eq(c->broker.fail_delay_ms, 500);

	cr_assert_str_eq(c->gateway.broker, "https://broker.example.org:8080/base");
	cr_assert_str_eq(c->gateway.rdp_listen, "192.0.2.1:13389");
	cr_assert_null(c->gateway.vnc_listen, "empty vnc_listen must turn it off");
	cr_assert_str_eq(c->gateway.public_host, "gw.example.org");
	cr_assert_str_eq(c->gateway.user, "gw");
	cr_assert_eq(c->gateway.idle_timeout_ms, 5 * MIN);
	cr_assert_eq(c->gateway.handshake_timeout_ms, SEC);
	cr_assert_eq(c->gateway.max_connections, 1000000);
	cr_assert_eq(c->gateway.vnc_anon_tls, 1);

	cr_assert_str_eq(c->sessiond.broker, "https://[2001:db8::1]");
	cr_assert_str_eq(c->sessiond.listen, "0.0.0.0:18444");
	cr_assert_str_eq(c->sessiond.name, "node-7");

	cr_assert_eq(c->npools, 1);
	const struct pt_pool_conf *p = pt_conf_pool(c, "p");
	cr_assert_eq(p, &c->pools[0]);
	cr_assert_str_eq(p->name, "p");
	cr_assert_eq(p->line, 31);
	cr_assert_eq(p->kind, PT_POOL_APP);
	cr_assert_eq(p->protocol, PT_PROTO_RDP);
	cr_assert_eq(p->driver, PT_DRIVER_STATIC);
	expect_list(&p->hosts, 2, (const char *[]){ "a:1", "b:65535" });
	expect_list(&p->users, 1, (const char *[]){ "alice" });
	expect_list(&p->groups, 2, (const char *[]){ "staff", "ops" });
	cr_assert_eq(p->policy, PT_POLICY_ROUND_ROBIN);
	cr_assert_str_eq(p->command, "/usr/bin/xterm -e top");
	cr_assert_str_eq(p->image, "/img/x.qcow2");
	cr_assert_str_eq(p->geometry, "64x8192");
	cr_assert_eq(p->max_sessions_per_host, 100000);
	cr_assert_eq(p->max_sessions_per_user, 1000);
	cr_assert_eq(p->min_spare, 1000);
	cr_assert_eq(p->max_vms, 0);
	cr_assert_eq(p->idle_timeout_ms, 30 * DAY);
	cr_assert_eq(p->disconnect_timeout_ms, 0);
	cr_assert_eq(p->max_duration_ms, 365 * DAY);
	cr_assert_eq(p->sso, 1);
	pt_conf_free(c);
}

Test(conf, enum_values, .timeout = 10)
{
	char err[512];
	struct pt_conf *c = load_str("[pool a]\npolicy = persistent\ndriver = qemu\nimage = /i\n"
				     "[pool b]\nkind = desktop\nprotocol = vnc\ndriver = xvnc\n"
				     "policy = least-loaded\n",
				     err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->pools[0].policy, PT_POLICY_PERSISTENT);
	cr_assert_eq(c->pools[0].driver, PT_DRIVER_QEMU);
	cr_assert_str_eq(c->pools[0].image, "/i");
	expect_pool_defaults(&c->pools[1]);
	pt_conf_free(c);
}

Test(conf, pool_defaults, .timeout = 10)
{
	char err[256];
	struct pt_conf *c = load_str("[pool office]\n", err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->npools, 1);
	cr_assert_str_eq(c->pools[0].name, "office");
	cr_assert_eq(c->pools[0].line, 1);
	expect_pool_defaults(&c->pools[0]);
	pt_conf_free(c);
}

Test(conf, empty_values, .timeout = 10)
{
	char err[512];
	struct pt_conf *c = load_str("[tls]\nca =\n[broker]\ngateway_secret =   \n"
				     "[gateway]\nrdp_listen =\nvnc_listen = ; off\n"
				     "[pool x]\ncommand =\nimage =\nusers =\n",
				     err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_null(c->tls.ca);
	cr_assert_null(c->broker.gateway_secret);
	cr_assert_null(c->gateway.rdp_listen);
	cr_assert_null(c->gateway.vnc_listen);
	cr_assert_null(c->pools[0].command);
	cr_assert_null(c->pools[0].image);
	expect_list(&c->pools[0].users, 0, NULL);
	pt_conf_free(c);

	/* keys with a default cannot be emptied */
	expect_error("[tls]\ncert =\n", 2, "'cert'", "empty");
	expect_error("[broker]\n\nstore =\n", 3, "'store'", "empty");
	expect_error("[sessiond]\nname =\n", 2, "'name'", "empty");
	expect_error("[broker]\nlisten =\n", 2, "'listen'", "host:port");
	expect_error("[gateway]\nbroker =\n", 2, "'broker'", "URL");
	expect_error("[gateway]\nmax_connections =\n", 2, "'max_connections'", "integer");
	expect_error("[gateway]\nvnc_anon_tls =\n", 2, "'vnc_anon_tls'", "yes or no");
	expect_error("[broker]\ntoken_ttl =\n", 2, "'token_ttl'", "duration");
	expect_error("[pool a]\nkind =\n", 2, "'kind'", "desktop or app");
	expect_error("[pool a]\ngeometry =\n", 2, "'geometry'", "WIDTHxHEIGHT");
}

Test(conf, inline_comments_and_crlf_and_bom, .timeout = 10)
{
	char err[256];
	struct pt_conf *c = load_str("\xEF\xBB\xBF[gateway] ; the gateway\r\n"
				     "public_host = gw.example.org ; dialled by clients\r\n"
				     "user=gw\r\n"
				     "max_connections\t=\t7\r\n",
				     err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->gateway.public_host, "gw.example.org");
	cr_assert_str_eq(c->gateway.user, "gw");
	cr_assert_eq(c->gateway.max_connections, 7);
	pt_conf_free(c);
}

Test(conf, repeated_section_merges, .timeout = 10)
{
	char err[256];
	struct pt_conf *c =
		load_str("[tls]\ncert = /a\n[broker]\n[tls]\nkey = /b\n", err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->tls.cert, "/a");
	cr_assert_str_eq(c->tls.key, "/b");
	pt_conf_free(c);

	expect_error("[tls]\ncert = /a\n[broker]\n[tls]\ncert = /b\n", 5, "duplicate key 'cert'",
		     "line 2");
}

/* ---- lists and continuation lines ---- */

Test(conf, lists, .timeout = 10)
{
	char err[256];
	struct pt_conf *c = load_str("[pool a]\n"
				     "users = , alice ,, bob ,\t, \n"
				     "groups = staff\n"
				     "hosts = ,,,\n",
				     err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	expect_list(&c->pools[0].users, 2, (const char *[]){ "alice", "bob" });
	expect_list(&c->pools[0].groups, 1, (const char *[]){ "staff" });
	expect_list(&c->pools[0].hosts, 0, NULL);
	pt_conf_free(c);
}

Test(conf, list_continuation, .timeout = 10)
{
	char err[256];
	struct pt_conf *c = load_str("[pool a]\n"
				     "users = alice,\n"
				     "    bob, carol   ; the night shift\n"
				     "  ; an indented comment does not end the list\n"
				     "\n"
				     "\tdave,\n"
				     "  ,\n"
				     "\t eve\n"
				     "groups =\n"
				     "  staff\n"
				     "  ops\n"
				     "hosts = h1:5900\n"
				     "\th2:5900\n"
				     "[pool b]\n"
				     "users = zed\n",
				     err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	expect_list(&c->pools[0].users, 5,
		    (const char *[]){ "alice", "bob", "carol", "dave", "eve" });
	expect_list(&c->pools[0].groups, 2, (const char *[]){ "staff", "ops" });
	expect_list(&c->pools[0].hosts, 2, (const char *[]){ "h1:5900", "h2:5900" });
	expect_list(&c->pools[1].users, 1, (const char *[]){ "zed" });
	pt_conf_free(c);
}

Test(conf, long_list, .timeout = 10)
{
	size_t cap = 64 * 1024, len = 0;
	char *text = malloc(cap), err[256];
	struct pt_conf *c;

	len += snprintf(text + len, cap - len, "[pool a]\nusers = u0\n");
	for (int i = 1; i < 3000; i++)
		len += snprintf(text + len, cap - len, "  u%d, \n", i);
	cr_assert_lt(len, cap);
	c = load_str(text, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->pools[0].users.n, 3000);
	cr_assert_str_eq(c->pools[0].users.v[2999], "u2999");
	cr_assert_null(c->pools[0].users.v[3000]);
	pt_conf_free(c);
	free(text);
}

Test(conf, continuation_errors, .timeout = 10)
{
	/* only lists continue */
	expect_error("[broker]\nticket_ttl = 60s\n  30s\n", 3, "'ticket_ttl'", "only list keys");
	expect_error("[pool a]\ncommand = /usr/bin/xterm\n  -fn fixed\n", 3, "'command'",
		     "only list keys");
	/* an indented key or header after a list would vanish into the list */
	expect_error("[pool a]\nusers = alice\n  groups = staff\n", 3, "'users'", "indentation");
	expect_error("[pool a]\nusers = alice\n  [pool b]\n", 3, "'users'", "indentation");
	/* a continuation is not a duplicate key */
	expect_error("[pool a]\nusers = alice\n  bob\nusers = carol\n", 4, "duplicate key 'users'",
		     "line 2");
}

Test(conf, indented_line_without_previous_key, .timeout = 10)
{
	char err[256];
	struct pt_conf *c =
		load_str("[gateway]\n  user = gw\n[pool a]\n   users = x\n", err, sizeof(err));

	/* right after a header an indented line is an ordinary key */
	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->gateway.user, "gw");
	expect_list(&c->pools[0].users, 1, (const char *[]){ "x" });
	pt_conf_free(c);
}

/* ---- pools ---- */

Test(conf, pools_in_file_order, .timeout = 10)
{
	char err[256];
	struct pt_conf *c = load_str("[pool zeta]\n[broker]\n[pool alpha]\nusers = a\n"
				     "[pool m.i-d_1]\nusers = m\n",
				     err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->npools, 3);
	cr_assert_str_eq(c->pools[0].name, "zeta");
	cr_assert_str_eq(c->pools[1].name, "alpha");
	cr_assert_str_eq(c->pools[2].name, "m.i-d_1");
	cr_assert_eq(c->pools[0].line, 1);
	cr_assert_eq(c->pools[1].line, 3);
	cr_assert_eq(c->pools[2].line, 5);
	cr_assert_eq(pt_conf_pool(c, "alpha"), &c->pools[1]);
	cr_assert_eq(pt_conf_pool(c, "m.i-d_1"), &c->pools[2]);
	cr_assert_str_eq(pt_conf_pool(c, "m.i-d_1")->users.v[0], "m");
	cr_assert_null(pt_conf_pool(c, "Alpha"));
	cr_assert_null(pt_conf_pool(c, "alph"));
	cr_assert_null(pt_conf_pool(c, ""));
	cr_assert_null(pt_conf_pool(c, NULL));
	cr_assert_null(pt_conf_pool(NULL, "alpha"));
	pt_conf_free(c);
}

/* libinih kept only 49 bytes of a section name; the reader must not. */
Test(conf, long_pool_names, .timeout = 10)
{
	char n1[65], n2[65], text[512], err[256];
	struct pt_conf *c;

	memset(n1, 'a', 64);
	n1[64] = '\0';
	memcpy(n2, n1, sizeof(n1));
	n2[63] = 'b';
	snprintf(text, sizeof(text), "[pool %s]\nusers = one\n[pool %s]\nusers = two\n", n1, n2);
	c = load_str(text, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->npools, 2);
	cr_assert_str_eq(c->pools[0].name, n1);
	cr_assert_str_eq(pt_conf_pool(c, n2)->users.v[0], "two");
	pt_conf_free(c);

	snprintf(text, sizeof(text), "[pool %s]\n[pool %s]\n", n1, n1);
	expect_error(text, 2, "duplicate pool", "first at line 1");
	snprintf(text, sizeof(text), "[broker]\n[pool %sx]\n", n1);
	expect_error(text, 2, "bad pool name", "64");
}

/* ---- each kind of bad file ---- */

Test(conf_errors, missing_file, .timeout = 10)
{
	char err[256];
	struct pt_conf *c =
		pt_conf_load("/tmp/portico-conf-does-not-exist/x.conf", err, sizeof(err));

	cr_assert_null(c);
	cr_assert_str_eq(
		err,
		"/tmp/portico-conf-does-not-exist/x.conf: cannot open: No such file or directory");
	/* no err buffer is fine too */
	cr_assert_null(pt_conf_load("/tmp/portico-conf-does-not-exist/x.conf", NULL, 0));
}

Test(conf_errors, directory, .timeout = 10)
{
	char err[256];
	struct pt_conf *c = pt_conf_load("/tmp", err, sizeof(err));

	cr_assert_null(c);
	cr_assert_str_eq(err, "/tmp: cannot read: Is a directory");
}

Test(conf_errors, syntax, .timeout = 10)
{
	expect_error("[broker]\nlisten 127.0.0.1:8443\n", 2, "syntax error", "key = value");
	expect_error("[broker]\n\n\njust words\n", 4, "syntax error", NULL);
	expect_error("[broker]\nlisten: 127.0.0.1:8443\n", 2, "syntax error", NULL);
	expect_error("[broker]\npam service = login\n", 2, "syntax error", NULL);
	expect_error("[broker]\nuser ; = x\n", 2, "syntax error", NULL);
	expect_error("[broker\nuser = x\n", 1, "syntax error", "']'");
	expect_error("[tls]\n[broker] junk\n", 2, "syntax error", "']'");
}

Test(conf_errors, unknown_section, .timeout = 10)
{
	expect_error("[tls]\n\n[foo]\n", 3, "unknown section [foo]", NULL);
	expect_error("[TLS]\n", 1, "unknown section [TLS]", NULL);
	expect_error("[ tls ]\n", 1, "unknown section [ tls ]", NULL);
	expect_error("[poolx]\n", 1, "unknown section [poolx]", NULL);
	expect_error("[]\n", 1, "unknown section []", NULL);
}

Test(conf_errors, bad_pool_name, .timeout = 10)
{
	expect_error("[broker]\n[pool]\n", 2, "[pool]", "name");
	expect_error("[pool ]\n", 1, "[pool]", "name");
	expect_error("[pool  office]\n", 1, "bad pool name ' office'", NULL);
	expect_error("[pool of/fice]\n", 1, "bad pool name 'of/fice'", NULL);
	expect_error("[pool a b]\n", 1, "bad pool name 'a b'", NULL);
}

Test(conf_errors, unknown_key, .timeout = 10)
{
	expect_error("[tls]\ncert = /x\nbar = 1\n", 3, "unknown key 'bar' in [tls]", NULL);
	expect_error("[broker]\nLISTEN = 127.0.0.1:1\n", 2, "unknown key 'LISTEN' in [broker]",
		     NULL);
	/* a key of another section */
	expect_error("[gateway]\nticket_ttl = 60s\n", 2, "unknown key 'ticket_ttl' in [gateway]",
		     NULL);
	expect_error("[pool office]\nkind = desktop\nkinds = app\n", 3,
		     "unknown key 'kinds' in [pool office]", NULL);
	expect_error("[tls]\n= x\n", 2, "unknown key ''", NULL);
}

Test(conf_errors, key_before_section, .timeout = 10)
{
	expect_error("; header\n\nlisten = 127.0.0.1:1\n[broker]\n", 3, "'listen'",
		     "outside any section");
}

Test(conf_errors, bad_number, .timeout = 10)
{
	expect_error("[gateway]\nmax_connections = 10k\n", 2,
		     "bad value '10k' for 'max_connections': expected an integer from 1 to 1000000",
		     NULL);
	expect_error("[pool a]\nmax_vms = -\n", 2, "'max_vms'", "integer");
	expect_error("[pool a]\nmin_spare = 1.5\n", 2, "'min_spare'", "integer");
	expect_error("[gateway]\nmax_connections = 99999999999999999999999\n", 2,
		     "'max_connections' = 99999999999999999999999 is out of range (1..1000000)",
		     NULL);
}

Test(conf_errors, bad_bool, .timeout = 10)
{
	expect_error("[gateway]\nvnc_anon_tls = maybe\n", 2,
		     "bad value 'maybe' for 'vnc_anon_tls': expected yes or no", NULL);
	expect_error("[pool a]\nsso = y\n", 2, "'sso'", "yes or no");
}

Test(conf_errors, bad_duration, .timeout = 10)
{
	expect_error("[broker]\nfail_delay = x\n", 2,
		     "bad value 'x' for 'fail_delay': expected a duration such as 2s or 500ms",
		     NULL);
	expect_error("[broker]\nfail_delay = 2 s\n", 2, "'2 s'", "'fail_delay'");
	expect_error("[pool a]\nidle_timeout = 1h30m\n", 2, "'idle_timeout'", "duration");
}

Test(conf_errors, out_of_range, .timeout = 10)
{
	expect_error("[broker]\nticket_ttl = 2h\n", 2, "'ticket_ttl' = 2h is out of range (5s..1h)",
		     NULL);
	expect_error("[broker]\nticket_ttl = 4999ms\n", 2, "'ticket_ttl'", "(5s..1h)");
	expect_error("[broker]\nfail_delay = 31s\n", 2, "'fail_delay'", "(0..30s)");
	expect_error("[broker]\ntoken_ttl = 59s\n", 2, "'token_ttl'", "(1m..30d)");
	/* More PAM conversations than the privileged side runs (128). */
	expect_error("[broker]\nmax_logins = 129\n", 2, "'max_logins' = 129", "(1..128)");
	expect_error("[broker]\nmax_logins = 0\n", 2, "'max_logins' = 0", "(1..128)");
	expect_error("[broker]\nmax_login_queue = -1\n", 2, "'max_login_queue'", "(0..100000)");
	expect_error("[gateway]\nhandshake_timeout = 0\n", 2, "'handshake_timeout'", "(1s..10m)");
	expect_error("[gateway]\nidle_timeout = 31d\n", 2, "'idle_timeout'", "(0..30d)");
	expect_error("[gateway]\nmax_connections = 0\n", 2, "'max_connections' = 0",
		     "(1..1000000)");
	expect_error("[pool a]\nmax_sessions_per_host = 100001\n", 2, "'max_sessions_per_host'",
		     "(1..100000)");
	expect_error("[pool a]\nmax_sessions_per_user = 0\n", 2, "'max_sessions_per_user'",
		     "(1..1000)");
	expect_error("[pool a]\nmin_spare = 1001\n", 2, "'min_spare'", "(0..1000)");
	expect_error("[pool a]\nmax_vms = 10001\n", 2, "'max_vms'", "(0..10000)");
	expect_error("[pool a]\ndisconnect_timeout = 31d\n", 2, "'disconnect_timeout'", "(0..30d)");
	expect_error("[pool a]\nmax_duration = 366d\n", 2, "'max_duration'", "(0..365d)");
	expect_error("[pool a]\ngeometry = 63x800\n", 2, "'geometry' = 63x800", "64..8192");
	expect_error("[pool a]\ngeometry = 1280x8193\n", 2, "'geometry'", "64..8192");
	expect_error("[pool a]\ngeometry = 99999999999999999999x800\n", 2, "'geometry'",
		     "out of range");
}

Test(conf_errors, bad_enum, .timeout = 10)
{
	expect_error("[pool a]\nkind = Desktop\n", 2, "bad value 'Desktop' for 'kind'",
		     "desktop or app");
	expect_error("[pool a]\nprotocol = spice\n", 2, "'protocol'", "vnc, rdp or console");
	expect_error("[pool a]\ndriver = docker\n", 2, "'driver'", "xvnc, qemu or static");
	expect_error("[pool a]\npolicy = random\n", 2, "'policy'",
		     "least-loaded, round-robin or persistent");
}

Test(conf_errors, bad_address_url_geometry, .timeout = 10)
{
	expect_error("[broker]\nlisten = 127.0.0.1\n", 2, "bad value '127.0.0.1' for 'listen'",
		     "host:port");
	expect_error("[broker]\nlisten = 127.0.0.1:0\n", 2, "'listen'", "host:port");
	expect_error("[broker]\nlisten = 127.0.0.1:65536\n", 2, "'listen'", "host:port");
	expect_error("[gateway]\nrdp_listen = ::1:3389\n", 2, "'rdp_listen'", "turn it off");
	expect_error("[sessiond]\nlisten = :8444\n", 2, "'listen'", "host:port");
	expect_error("[gateway]\nbroker = ftp://x\n", 2,
		     "bad value for 'broker': 'ftp://x' is not https://", "URL");
	expect_error("[gateway]\nbroker = https://\n", 2, "'broker'", "URL");
	expect_error("[gateway]\nbroker = 127.0.0.1:8443\n", 2, "'broker'", "https://");
	/* The daemons authenticate each other over TLS: no plain http. */
	expect_error("[gateway]\nbroker = http://127.0.0.1:8443\n", 2, "'broker'", "https://");
	expect_error("[sessiond]\naddress = http://host1:8444\n", 2, "'address'", "https://");
	expect_error("[sessiond]\nbroker = https://host:99999/\n", 2, "'broker'", "URL");
	expect_error("[sessiond]\nbroker = HTTPS://host\n", 2, "'broker'", "URL");
	expect_error("[pool a]\ngeometry = 1280*800\n", 2, "'geometry'", "WIDTHxHEIGHT");
	expect_error("[pool a]\ngeometry = 1280x\n", 2, "'geometry'", "WIDTHxHEIGHT");
	expect_error("[pool a]\ngeometry = x800\n", 2, "'geometry'", "WIDTHxHEIGHT");
	expect_error("[pool a]\ngeometry = 1280x800x2\n", 2, "'geometry'", "WIDTHxHEIGHT");
	expect_error("[pool a]\ngeometry = 1280X800\n", 2, "'geometry'", "WIDTHxHEIGHT");
}

Test(conf_errors, duplicate_key, .timeout = 10)
{
	expect_error("[broker]\nlisten = 127.0.0.1:1\nuser = x\nlisten = 127.0.0.1:2\n", 4,
		     "duplicate key 'listen' in [broker]", "first at line 2");
	expect_error("[pool office]\nusers = a\n\nusers = b\n", 4,
		     "duplicate key 'users' in [pool office]", "first at line 2");
	/* the same key in two pools or two sections is no duplicate */
	char err[256];
	struct pt_conf *c =
		load_str("[pool a]\nusers = x\n[pool b]\nusers = y\n"
			 "[gateway]\nbroker = https://a\n[sessiond]\nbroker = https://b\n",
			 err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	pt_conf_free(c);
}

Test(conf_errors, duplicate_pool, .timeout = 10)
{
	expect_error("[pool office]\nusers = a\n[pool other]\n[pool office]\n", 4,
		     "duplicate pool 'office'", "first at line 1");
}

/* Text of `total` bytes: "[gateway]\n" and one "public_host = 000..."
 * line of `n` bytes ending in `eol`, then `tail`. */
static char *long_value_text(size_t n, const char *eol, const char *tail)
{
	size_t cap = n + 64 + strlen(tail), len;
	char *text = malloc(cap);

	cr_assert_not_null(text);
	len = (size_t)snprintf(text, cap, "[gateway]\npublic_host = ");
	cr_assert_gt(n, len - 10);
	memset(text + len, '0', n - (len - 10));
	len += n - (len - 10);
	snprintf(text + len, cap - len, "%s%s", eol, tail);
	return text;
}

/* libinih cut lines at 199 bytes; the reader takes any line up to
 * PT_INI_LINE_MAX (64 KiB) and refuses a longer one at its line. */
Test(conf_errors, long_lines, .timeout = 10)
{
	static const size_t ok[] = { 198, 199, 300, 10 * 1024, 65536 };
	char err[256];
	struct pt_conf *c;
	char *text;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		for (int crlf = 0; crlf < 2; crlf++) {
			text = long_value_text(ok[i], crlf ? "\r\n" : "\n", "user = x\n");
			c = load_str(text, err, sizeof(err));
			free(text);
			cr_assert_not_null(c, "%zu bytes: %s", ok[i], err);
			cr_assert_eq(strlen(c->gateway.public_host), ok[i] - 14);
			cr_assert_str_eq(c->gateway.user, "x", "the line was split");
			pt_conf_free(c);
		}
	}

	/* one more is refused, not split in two */
	text = long_value_text(65537, "\n", "user = x\n");
	expect_error(text, 2, "line is longer than 65536 bytes", NULL);
	free(text);
	text = long_value_text(65537, "\r\n", "");
	expect_error(text, 2, "line is longer than 65536 bytes", NULL);
	free(text);

	/* a long comment as well, and as the last line without '\n' */
	text = malloc(70000);
	cr_assert_not_null(text);
	memcpy(text, "[gateway]\n;", 11);
	memset(text + 11, 'c', 70000 - 11 - 1);
	text[70000 - 1] = '\0';
	expect_error(text, 2, "line is longer than 65536 bytes", NULL);
	free(text);
}

/* A list of one 10 KiB line and one continued over lines of 1 KiB each. */
Test(conf, long_list_lines, .timeout = 10)
{
	size_t cap = 64 * 1024, len = 0;
	char *text = malloc(cap), err[256];
	struct pt_conf *c;

	cr_assert_not_null(text);
	len += (size_t)snprintf(text + len, cap - len, "[pool a]\nusers = ");
	for (int i = 0; i < 1000; i++) /* "u0001, " ... 7 bytes each */
		len += (size_t)snprintf(text + len, cap - len, "u%04d, ", i);
	len += (size_t)snprintf(text + len, cap - len, "\ngroups = g\n");
	for (int l = 0; l < 5; l++) {
		len += (size_t)snprintf(text + len, cap - len, "\t");
		for (int i = 0; i < 128; i++) /* 8 bytes each */
			len += (size_t)snprintf(text + len, cap - len, "g%d_%03d, ", l, i);
		len += (size_t)snprintf(text + len, cap - len, " ; line %d\n", l);
	}
	cr_assert_lt(len, cap);
	c = load_str(text, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->pools[0].users.n, 1000);
	cr_assert_str_eq(c->pools[0].users.v[999], "u0999");
	cr_assert_eq(c->pools[0].groups.n, 1 + 5 * 128);
	cr_assert_str_eq(c->pools[0].groups.v[0], "g");
	cr_assert_str_eq(c->pools[0].groups.v[640], "g4_127");
	pt_conf_free(c);
	free(text);
}

/* A value in a message is quoted: no tab or other control byte reaches the
 * operator's terminal (fuzz_conf found a tab from a RemoteApp command). */
Test(conf_errors, remoteapp_message_is_printable, .timeout = 10)
{
	char err[512];
	struct pt_conf *c =
		load_str("[pool win]\nkind = app\ncommand = ||\tcalc\n", err, sizeof(err));

	cr_assert_null(c);
	cr_assert_not_null(strstr(err, ":1: pool 'win'"), "%s", err);
	cr_assert_not_null(strstr(err, "RemoteApp"), "%s", err);
	for (const char *e = err; *e; e++)
		cr_assert_geq((unsigned char)*e, 0x20, "control byte 0x%02x in \"%s\"",
			      (unsigned char)*e, err);
}

Test(conf_errors, app_pool_without_command, .timeout = 10)
{
	expect_error("[broker]\n\n[pool editor]\nkind = app\nusers = a\n[pool b]\n", 3,
		     "pool 'editor'", "'command'");
}

Test(conf_errors, static_pool_hosts, .timeout = 10)
{
	expect_error("[pool ok]\ndriver = static\nhosts = a:1\n[pool win]\ndriver = static\n"
		     "hosts = 192.0.2.1:3389, winhost\n",
		     4, "pool 'win'", "'winhost'");
	expect_error("[pool win]\nprotocol = rdp\ndriver = static\n", 1, "pool 'win'", "'hosts'");
}

Test(conf_errors, qemu_pool_without_image, .timeout = 10)
{
	expect_error("[pool vdi]\ndriver = qemu\nhosts = h\n", 1, "pool 'vdi'", "'image'");
}

Test(conf_errors, first_error_wins, .timeout = 10)
{
	/* a syntax error before a bad value, a bad value before a pool check */
	expect_error("[pool a]\nkind = app\nnonsense\n[broker]\nticket_ttl = 2h\n", 3,
		     "syntax error", NULL);
	expect_error("[pool a]\nkind = app\n[broker]\nticket_ttl = 2h\n", 4, "'ticket_ttl'", NULL);
}

Test(conf_errors, small_err_buffer, .timeout = 10)
{
	char err[8];
	struct pt_conf *c = load_str("[foo]\n", err, sizeof(err));

	cr_assert_null(c);
	cr_assert_eq(strlen(err), sizeof(err) - 1);
}

/* ---- hostile input ---- */

Test(conf_hostile, one_megabyte_line, .timeout = 10)
{
	size_t len = 1024 * 1024;
	char *text = malloc(len), err[256], path[sizeof(TMP_TEMPLATE)];
	struct pt_conf *c;

	cr_assert_not_null(text);
	memcpy(text, "[tls]\ncert = ", 13);
	memset(text + 13, 'A', len - 13);
	write_tmp(path, text, len);
	free(text);
	c = pt_conf_load(path, err, sizeof(err));
	unlink(path);
	cr_assert_null(c);
	cr_assert_not_null(strstr(err, ":2: line is longer than 65536 bytes"), "%s", err);
}

Test(conf_hostile, nul_bytes, .timeout = 10)
{
	size_t len = 64 * 1024;
	static const char sneaky[] = "[broker]\nuser = root\0portico\n";
	char *zeros = calloc(1, len), err[256], path[sizeof(TMP_TEMPLATE)];
	struct pt_conf *c;

	cr_assert_not_null(zeros);
	write_tmp(path, zeros, len);
	free(zeros);
	c = pt_conf_load(path, err, sizeof(err));
	unlink(path);
	cr_assert_null(c);
	cr_assert_not_null(strstr(err, ":1: line contains a NUL byte"), "%s", err);

	/* a NUL hidden after a valid-looking value */
	write_tmp(path, sneaky, sizeof(sneaky) - 1);
	c = pt_conf_load(path, err, sizeof(err));
	unlink(path);
	cr_assert_null(c);
	cr_assert_not_null(strstr(err, ":2: line contains a NUL byte"), "%s", err);
}

/* The last line needs no '\n'; a file cut short in a header or a list is
 * read as far as it goes. */
Test(conf, no_newline_at_end, .timeout = 10)
{
	char err[256];
	struct pt_conf *c = load_str("[gateway]\nuser = gw", err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->gateway.user, "gw");
	pt_conf_free(c);
	c = load_str("[gateway]\r\nuser = gw\r", err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->gateway.user, "gw");
	pt_conf_free(c);
	c = load_str("[pool a]\nusers = alice,\n  bob", err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	expect_list(&c->pools[0].users, 2, (const char *[]){ "alice", "bob" });
	pt_conf_free(c);

	expect_error("[gateway]\nuser = gw\n[pool a", 3, "syntax error", "']'");
	expect_error("[gateway]\nuser", 2, "syntax error", "key = value");
}

Test(conf_hostile, not_utf8, .timeout = 10)
{
	char err[256];
	struct pt_conf *c = load_str("; caf\xe9 (Latin-1 in a comment is no harm)\n"
				     "[gateway]\npublic_host = b\xc3\xbcro.example\n",
				     err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->gateway.public_host, "b\xc3\xbcro.example");
	pt_conf_free(c);

	expect_error("[gateway]\npublic_host = b\xfcro\n", 2, "not UTF-8", "0xfc");
	expect_error("[gateway]\nuser = \xc0\xaf\n", 2, "not UTF-8", NULL);
	expect_error("[pool caf\xe9]\n", 1, "not UTF-8", NULL);
	/* U+009B is CSI to a terminal that takes 8-bit controls */
	expect_error("[broker]\nuser = x\xc2\x9b"
		     "2J\n",
		     2, "control character U+009B", NULL);
}

Test(conf_hostile, larger_than_16_mib, .timeout = 10)
{
	char err[256], path[sizeof(TMP_TEMPLATE)], want[300];
	struct pt_conf *c;

	write_str(path, "[gateway]\n");
	cr_assert_eq(truncate(path, 16 * 1024 * 1024 + 1), 0);
	c = pt_conf_load(path, err, sizeof(err));
	unlink(path);
	cr_assert_null(c);
	snprintf(want, sizeof(want), "%s: larger than 16777216 bytes", path);
	cr_assert_str_eq(err, want);
}

/* pt_conf_load_buf: the same reading as a file, named as told. */
Test(conf, load_from_memory, .timeout = 10)
{
	static const char text[] = "[gateway]\nuser = gw\n[pool a]\nusers = x,\n y\n";
	char err[256];
	struct pt_conf *c = pt_conf_load_buf("text", text, sizeof(text) - 1, err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_null(c->path);
	cr_assert_str_eq(c->gateway.user, "gw");
	expect_list(&c->pools[0].users, 2, (const char *[]){ "x", "y" });
	pt_conf_free(c);

	c = pt_conf_load_buf("inline.conf", "[tls]\nbar = 1\n", 14, err, sizeof(err));
	cr_assert_null(c);
	cr_assert_str_eq(err, "inline.conf:2: unknown key 'bar' in [tls]");
	/* the length is what counts, not a NUL */
	c = pt_conf_load_buf("nul", "[tls]\n\0", 7, err, sizeof(err));
	cr_assert_null(c);
	cr_assert_str_eq(err, "nul:2: line contains a NUL byte (not a text file?)");
	c = pt_conf_load_buf(NULL, "", 0, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	expect_defaults(c);
	pt_conf_free(c);
}

Test(conf_hostile, control_characters, .timeout = 10)
{
	expect_error("[broker]\nuser = port\033[2Jico\n", 2, "control character 0x1b", NULL);
	expect_error("[broker]\nuser = a\rb\n", 2, "control character 0x0d", NULL);
	expect_error("[broker]\n\x7f\n", 2, "control character 0x7f", NULL);
}

/* Random bytes, random lines built from INI punctuation: never a crash,
 * and a refusal always comes with a message. */
Test(conf_hostile, garbage, .timeout = 10)
{
	static const char alphabet[] = "[]=:;# \t\n,-xp0ol";
	unsigned seed = 12345;
	char buf[4096], err[512], path[sizeof(TMP_TEMPLATE)];

	for (int round = 0; round < 300; round++) {
		size_t len = 1 + (size_t)(rand_r(&seed) % sizeof(buf));
		for (size_t i = 0; i < len; i++) {
			int r = rand_r(&seed);
			buf[i] = (round % 2) ? (char)(r & 0xff)
					     : alphabet[r % (sizeof(alphabet) - 1)];
		}
		write_tmp(path, buf, len);
		err[0] = '\0';
		struct pt_conf *c = pt_conf_load(path, err, sizeof(err));
		bool loaded = c != NULL;
		unlink(path);
		pt_conf_free(c);
		if (!loaded) {
			cr_assert_gt(strlen(err), strlen(path) + 2, "round %d: no message", round);
			cr_assert_eq(strncmp(err, path, strlen(path)), 0, "round %d: %s", round,
				     err);
			cr_assert_null(strchr(err, '\n'), "round %d: %s", round, err);
			for (const char *e = err; *e; e++)
				cr_assert_geq((unsigned char)*e, 0x20,
					      "round %d: control byte in %s", round, err);
		}
	}
}

Test(conf_hostile, ten_thousand_pools, .timeout = 10)
{
	size_t cap = 1024 * 1024, len = 0;
	char *text = malloc(cap), err[256], name[32];
	struct pt_conf *c;

	for (int i = 0; i < 10000; i++)
		len += snprintf(text + len, cap - len, "[pool p%d]\nusers = u%d\n", i, i);
	cr_assert_lt(len, cap);
	c = load_str(text, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(c->npools, 10000);
	for (int i = 0; i < 10000; i += 999) {
		snprintf(name, sizeof(name), "p%d", i);
		const struct pt_pool_conf *p = pt_conf_pool(c, name);
		cr_assert_not_null(p, "%s", name);
		cr_assert_eq(p, &c->pools[i]);
		cr_assert_eq(p->line, 2 * i + 1);
		cr_assert_eq(p->users.n, 1);
	}
	pt_conf_free(c);

	/* and a duplicate at the very end is still found */
	len += snprintf(text + len, cap - len, "[pool p4242]\n");
	expect_error(text, 20001, "duplicate pool 'p4242'", "first at line 8485");
	free(text);
}

/* ---- the sample configuration ---- */

Test(conf, sample_file_loads, .timeout = 10)
{
	char err[512];
	struct pt_conf *c = pt_conf_load("etc/portico.conf", err, sizeof(err));
	const struct pt_pool_conf *p;

	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->path, "etc/portico.conf");
	/* the sample spells out the defaults */
	cr_assert_str_eq(c->tls.cert, "/etc/portico/tls/server.pem");
	cr_assert_null(c->tls.ca);
	cr_assert_str_eq(c->broker.listen, "127.0.0.1:8443");
	cr_assert_null(c->broker.gateway_secret);
	cr_assert_eq(c->broker.ticket_ttl_ms, 60 * SEC);
	cr_assert_eq(c->broker.token_ttl_ms, 8 * HOUR);
	cr_assert_str_eq(c->gateway.rdp_listen, "0.0.0.0:3389");
	cr_assert_eq(c->gateway.max_connections, 10000);
	cr_assert_str_eq(c->sessiond.listen, "127.0.0.1:8444");

	cr_assert_eq(c->npools, 4);
	p = pt_conf_pool(c, "office");
	cr_assert_eq(p, &c->pools[0]);
	expect_list(&p->hosts, 2, (const char *[]){ "host1", "host2" });
	expect_list(&p->users, 2, (const char *[]){ "alice", "bob" });
	cr_assert_eq(p->disconnect_timeout_ms, HOUR);
	p = pt_conf_pool(c, "xterm");
	cr_assert_eq(p->kind, PT_POOL_APP);
	cr_assert_str_eq(p->command, "/usr/bin/xterm");
	p = pt_conf_pool(c, "windows");
	cr_assert_eq(p->driver, PT_DRIVER_STATIC);
	cr_assert_eq(p->protocol, PT_PROTO_RDP);
	cr_assert_eq(p->hosts.n, 2);
	cr_assert_eq(p->sso, 1);
	p = pt_conf_pool(c, "vdi");
	cr_assert_eq(p->driver, PT_DRIVER_QEMU);
	cr_assert_eq(p->policy, PT_POLICY_PERSISTENT);
	cr_assert_eq(p->min_spare, 2);
	cr_assert_str_eq(p->geometry, "1920x1080");
	pt_conf_free(c);
}

/* Every key of the tables in lib/conf.c must be documented in the sample,
 * in its own section, as a live "key =" line or a commented-out "; key ="
 * one.  The keys are read from the tables' GKEY/PKEY rows so that a key
 * added there without documentation fails here. */
struct doc_key {
	char section[16];
	char key[48];
	bool found;
};

/* Copy the quoted string at s into out; return what follows it. */
static const char *take_quoted(const char *s, char *out, size_t len)
{
	const char *e;

	cr_assert_eq(*s, '"');
	e = strchr(s + 1, '"');
	cr_assert_not_null(e);
	cr_assert_lt((size_t)(e - s - 1), len);
	memcpy(out, s + 1, e - s - 1);
	out[e - s - 1] = '\0';
	return e + 1;
}

static size_t table_keys(struct doc_key *keys, size_t max)
{
	FILE *f = fopen("lib/conf.c", "r");
	char line[512];
	const char *s;
	size_t n = 0;

	cr_assert_not_null(f, "run the tests from the repository root");
	while (fgets(line, sizeof(line), f)) {
		if ((s = strstr(line, "GKEY(\""))) {
			cr_assert_lt(n, max);
			s = take_quoted(s + 5, keys[n].section, sizeof(keys[n].section));
			s += strspn(s, ", ");
			take_quoted(s, keys[n].key, sizeof(keys[n].key));
			keys[n++].found = false;
		} else if ((s = strstr(line, "PKEY(\""))) {
			cr_assert_lt(n, max);
			strcpy(keys[n].section, "pool");
			take_quoted(s + 5, keys[n].key, sizeof(keys[n].key));
			keys[n++].found = false;
		}
	}
	fclose(f);
	return n;
}

Test(conf, sample_documents_every_key, .timeout = 10)
{
	struct doc_key keys[128];
	size_t n = table_keys(keys, 128), klen;
	char line[512], section[64] = "";
	FILE *f = fopen("etc/portico.conf", "r");

	/* 26 global keys and 18 pool keys today; more may come */
	cr_assert_geq(n, 44, "only %zu table rows found in lib/conf.c", n);
	cr_assert_not_null(f, "run the tests from the repository root");
	while (fgets(line, sizeof(line), f)) {
		const char *s = line + strspn(line, " \t");
		if (*s == '[') {
			klen = strcspn(s + 1, "]");
			cr_assert_lt(klen, sizeof(section));
			memcpy(section, s + 1, klen);
			section[klen] = '\0';
			if (!strncmp(section, "pool ", 5))
				section[4] = '\0';
			continue;
		}
		if (*s == ';')
			s += 1 + strspn(s + 1, " ");
		klen = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
		if (klen == 0 || strncmp(s + klen, " = ", 3) != 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (!strcmp(keys[i].section, section) && strlen(keys[i].key) == klen &&
			    !strncmp(keys[i].key, s, klen))
				keys[i].found = true;
	}
	fclose(f);
	for (size_t i = 0; i < n; i++)
		cr_assert(keys[i].found, "[%s] %s is not documented in etc/portico.conf",
			  keys[i].section, keys[i].key);
}

/* --- pools outside a file (the admin API) ------------------------------- */

Test(conf_pool_api, set_check_and_read_back_like_the_file, .timeout = 10)
{
	struct pt_pool_conf pc;
	char err[512], buf[256];
	const char *key;
	int kind, seen = 0;

	cr_assert_eq(pt_conf_pool_init(&pc, "calc"), 0);
	cr_assert_eq(pc.max_sessions_per_host, 50);
	cr_assert_eq(pt_conf_pool_set(&pc, "kind", "app", err, sizeof(err)), 0);
	cr_assert_eq(pt_conf_pool_check(&pc, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "needs 'command'") != NULL, "got '%s'", err);
	cr_assert_eq(pt_conf_pool_set(&pc, "command", "||calc", err, sizeof(err)), 0);
	cr_assert_eq(pt_conf_pool_check(&pc, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "RemoteApp") && strstr(err, "protocol = rdp"), "got '%s'", err);
	cr_assert_eq(pt_conf_pool_set(&pc, "protocol", "rdp", err, sizeof(err)), 0);
	cr_assert_eq(pt_conf_pool_check(&pc, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pt_conf_pool_set(&pc, "protocol", "vnc", err, sizeof(err)), 0);
	cr_assert_eq(pt_conf_pool_set(&pc, "command", "/usr/bin/galculator", err, sizeof(err)), 0);
	cr_assert_eq(pt_conf_pool_set(&pc, "users", "alice, bob", err, sizeof(err)), 0);
	cr_assert_eq(pt_conf_pool_set(&pc, "idle_timeout", "90m", err, sizeof(err)), 0);
	cr_assert_eq(pt_conf_pool_check(&pc, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(pt_conf_pool_set(&pc, "max_sessions_per_user", "lots", err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "max_sessions_per_user") != NULL, "got '%s'", err);
	cr_assert_eq(pt_conf_pool_set(&pc, "ticket_ttl", "5s", err, sizeof(err)), -ENOENT);
	cr_assert_eq(pt_conf_pool_set(&pc, "geometry", "10x10", err, sizeof(err)), -ERANGE);

	for (size_t i = 0; (kind = pt_conf_pool_value(&pc, i, &key, buf, sizeof(buf))) > 0; i++) {
		if (!strcmp(key, "idle_timeout")) {
			cr_assert_eq(kind, PT_CONF_VALUE_TEXT);
			cr_assert_str_eq(buf, "90m");
			seen++;
		} else if (!strcmp(key, "users")) {
			cr_assert_eq(kind, PT_CONF_VALUE_LIST);
			const struct pt_strlist *l = pt_conf_pool_list(&pc, key);
			cr_assert_eq(l->n, 2);
			cr_assert_str_eq(l->v[1], "bob");
			seen++;
		} else if (!strcmp(key, "image")) {
			cr_assert_eq(kind, PT_CONF_VALUE_UNSET);
			seen++;
		} else if (!strcmp(key, "sso")) {
			cr_assert_eq(kind, PT_CONF_VALUE_BOOL);
			cr_assert_str_eq(buf, "no");
			seen++;
		}
	}
	cr_assert_eq(seen, 4);
	pt_conf_pool_clear(&pc);
}

Test(conf_pool_api, names, .timeout = 10)
{
	cr_assert(pt_conf_pool_name_valid("office-2.b_c"));
	cr_assert_not(pt_conf_pool_name_valid(""));
	cr_assert_not(pt_conf_pool_name_valid("."));
	cr_assert_not(pt_conf_pool_name_valid(".."));
	cr_assert_not(pt_conf_pool_name_valid("a/b"));
	cr_assert_not(pt_conf_pool_name_valid("a%2Fb"));
	cr_assert_not(pt_conf_pool_name_valid(
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

Test(conf_pool_api, dotdot_pool_in_a_file_is_refused, .timeout = 10)
{
	char err[512];
	struct pt_conf *c = load_str("[pool ..]\n", err, sizeof(err));

	cr_assert_null(c);
	cr_assert(strstr(err, ":1: bad pool name") != NULL, "got '%s'", err);
}

/* The trust model's keys: one secret per role, node names, per-daemon
 * certificates, the session host's own limits. */
Test(conf, trust_keys, .timeout = 10)
{
	char err[256];
	struct pt_conf *c = load_str("[broker]\n"
				     "gateway_secret = gateway-secret-0123456789\n"
				     "host_secret = host-secret-0123456789\n"
				     "broker_secret = broker-secret-0123456789\n"
				     "gateways = gw1, gw2\n"
				     "cert = /b.pem\nkey = /b.key\n"
				     "[gateway]\ncert = /g.pem\nkey = /g.key\n"
				     "[sessiond]\nbroker_name = broker.example.org\n"
				     "image_dir = /srv/images\nallow_users = kiosk\n"
				     "cert = /h.pem\nkey = /h.key\n",
				     err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->broker.host_secret, "host-secret-0123456789");
	cr_assert_str_eq(c->broker.broker_secret, "broker-secret-0123456789");
	expect_list(&c->broker.gateways, 2, (const char *[]){ "gw1", "gw2" });
	cr_assert_str_eq(c->broker.cert, "/b.pem");
	cr_assert_str_eq(c->gateway.key, "/g.key");
	cr_assert_str_eq(c->sessiond.broker_name, "broker.example.org");
	cr_assert_str_eq(c->sessiond.image_dir, "/srv/images");
	expect_list(&c->sessiond.allow_users, 1, (const char *[]){ "kiosk" });
	cr_assert_str_eq(c->sessiond.cert, "/h.pem");
	pt_conf_free(c);

	c = pt_conf_defaults();
	cr_assert_str_eq(c->sessiond.image_dir, "/var/lib/portico/images");
	cr_assert_null(c->sessiond.broker_name);
	cr_assert_null(c->broker.host_secret);
	cr_assert_null(c->broker.cert);
	pt_conf_free(c);
}

Test(conf_errors, short_secret, .timeout = 10)
{
	expect_error("[broker]\nhost_secret = short\n", 2, "'host_secret'", "16 characters");
	expect_error("[broker]\nbroker_secret = 0123456789abcde\n", 2, "'broker_secret'",
		     "16 characters");
}

Test(conf_errors, same_secret_for_two_roles, .timeout = 10)
{
	char err[512];
	struct pt_conf *c = load_str("[broker]\n"
				     "gateway_secret = the-same-secret-0123\n"
				     "host_secret = the-same-secret-0123\n",
				     err, sizeof(err));

	cr_assert_null(c, "one secret for two roles was taken");
	cr_assert_not_null(strstr(err, "gateway_secret and host_secret"), "%s", err);
	cr_assert_null(strstr(err, "the-same-secret"), "the secret is echoed: %s", err);
}

/* Each daemon keeps only the secrets of its own role and direction. */
Test(conf, drop_secrets, .timeout = 10)
{
	static const char text[] = "[broker]\n"
				   "gateway_secret = gateway-secret-0123456789\n"
				   "host_secret = host-secret-0123456789\n"
				   "broker_secret = broker-secret-0123456789\n";
	char err[256];
	struct pt_conf *c = load_str(text, err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	pt_conf_keep_secrets(c, PT_SECRET_GATEWAY);
	cr_assert_str_eq(c->broker.gateway_secret, "gateway-secret-0123456789");
	cr_assert_null(c->broker.host_secret);
	cr_assert_null(c->broker.broker_secret);
	pt_conf_free(c);

	c = load_str(text, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	pt_conf_keep_secrets(c, PT_SECRET_HOST | PT_SECRET_BROKER);
	cr_assert_null(c->broker.gateway_secret);
	cr_assert_str_eq(c->broker.host_secret, "host-secret-0123456789");
	cr_assert_str_eq(c->broker.broker_secret, "broker-secret-0123456789");
	pt_conf_free(c);

	c = load_str(text, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	pt_conf_keep_secrets(c, PT_SECRET_GATEWAY | PT_SECRET_HOST | PT_SECRET_BROKER);
	cr_assert_not_null(c->broker.gateway_secret);
	cr_assert_not_null(c->broker.host_secret);
	cr_assert_not_null(c->broker.broker_secret);
	pt_conf_keep_secrets(c, 0);
	cr_assert_null(c->broker.gateway_secret);
	cr_assert_null(c->broker.host_secret);
	cr_assert_null(c->broker.broker_secret);
	pt_conf_free(c);
}

/* --- VM pools: the guest's own protocol --------------------------------- */

Test(conf_vm, a_qemu_pool_without_a_protocol_is_the_console, .timeout = 10)
{
	char err[512];
	struct pt_conf *c =
		load_str("[pool old]\ndriver = qemu\nimage = /i/a.qcow2\n"
			 "[pool vdi]\ndriver = qemu\nimage = /i/a.qcow2\nprotocol = rdp\n"
			 "guest_port = 3390\nboot_timeout = 90s\n"
			 "[pool gvnc]\ndriver = qemu\nimage = /i/a.qcow2\nprotocol = vnc\n"
			 "[pool x]\n",
			 err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_eq(pt_conf_pool(c, "old")->protocol, PT_PROTO_CONSOLE);
	cr_assert_eq(pt_conf_pool(c, "vdi")->protocol, PT_PROTO_RDP);
	cr_assert_eq(pt_conf_pool_guest_port(pt_conf_pool(c, "vdi")), 3390);
	cr_assert_eq(pt_conf_pool(c, "vdi")->boot_timeout_ms, 90000);
	cr_assert_eq(pt_conf_pool(c, "gvnc")->protocol, PT_PROTO_VNC);
	cr_assert_eq(pt_conf_pool_guest_port(pt_conf_pool(c, "gvnc")), 5900);
	cr_assert_eq(pt_conf_pool(c, "old")->boot_timeout_ms, 300000);
	/* not a VM: vnc stays vnc */
	cr_assert_eq(pt_conf_pool(c, "x")->protocol, PT_PROTO_VNC);
	pt_conf_free(c);
}

Test(conf_vm, bad_guest_keys_are_refused, .timeout = 10)
{
	expect_error("[pool a]\nprotocol = console\n", 1, "console", "driver = qemu");
	expect_error("[pool a]\ndriver = qemu\nimage = /i\nguest_port = 65536\n", 4, "guest_port",
		     "65535");
	expect_error("[pool a]\ndriver = qemu\nimage = /i\nguest_port = -1\n", 4, "guest_port",
		     NULL);
	expect_error("[pool a]\ndriver = qemu\nimage = /i\nboot_timeout = 5s\n", 4, "boot_timeout",
		     NULL);
	expect_error("[pool a]\ndriver = qemu\nimage = /i\nboot_timeout = 2h\n", 4, "boot_timeout",
		     NULL);
	expect_error("[pool a]\ndriver = qemu\nimage = /i\nboot_timeout = soon\n", 4,
		     "boot_timeout", NULL);
}

Test(conf_vm, the_api_resolves_the_default_and_keeps_it, .timeout = 10)
{
	struct pt_pool_conf pc, back;
	char err[512], buf[256];
	const char *key;
	int kind;

	cr_assert_eq(pt_conf_pool_init(&pc, "vdi"), 0);
	cr_assert_eq(pt_conf_pool_set(&pc, "driver", "qemu", err, sizeof(err)), 0);
	cr_assert_eq(pt_conf_pool_set(&pc, "image", "/i/a.qcow2", err, sizeof(err)), 0);
	pt_conf_pool_resolve(&pc);
	cr_assert_eq(pc.protocol, PT_PROTO_CONSOLE);
	/* read back and set again (the store's round trip): still the console */
	cr_assert_eq(pt_conf_pool_init(&back, "vdi"), 0);
	for (size_t i = 0; (kind = pt_conf_pool_value(&pc, i, &key, buf, sizeof(buf))) > 0; i++)
		if (kind != PT_CONF_VALUE_LIST && kind != PT_CONF_VALUE_UNSET)
			cr_assert_eq(pt_conf_pool_set(&back, key, buf, err, sizeof(err)), 0, "%s",
				     err);
	pt_conf_pool_resolve(&back);
	cr_assert_eq(back.protocol, PT_PROTO_CONSOLE);
	/* an xvnc pool made a console is refused */
	cr_assert_eq(pt_conf_pool_set(&back, "driver", "xvnc", err, sizeof(err)), 0);
	cr_assert_eq(pt_conf_pool_check(&back, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "console") != NULL, "got '%s'", err);
	pt_conf_pool_clear(&pc);
	pt_conf_pool_clear(&back);
}
