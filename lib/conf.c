/* conf.c - see include/portico/conf.h
 *
 * lib/ini.c reads the text into sections, key = value lines and continued
 * lines (with their line numbers); this file knows the keys: one table of
 * them, the value types, the checks across keys and pools.  Loading stops
 * at the first error.  It stays one file although long: the table, the
 * value types and the messages about them change together, and the admin
 * API sets pools through the same rows.
 */
#include "portico/conf.h"
#include "portico/ini.h"
#include "portico/net.h"
#include "portico/urls.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum conf_type {
	CONF_STRING,
	CONF_INT,      /* int64_t within [min, max] */
	CONF_BOOL,     /* int */
	CONF_DURATION, /* int64_t milliseconds within [min, max] */
	CONF_ENUM,     /* int, index into names */
	CONF_LIST,     /* struct pt_strlist */
	CONF_ADDRESS,  /* char *, host:port */
	CONF_URL,      /* char *, https:// (daemons talk TLS to each other only) */
	CONF_URLS,     /* char *, 1 to PT_URLS_MAX https:// URLs (portico/urls.h) */
	CONF_GEOMETRY, /* char *, WIDTHxHEIGHT, each side within [min, max] */
};

#define CONF_OPTIONAL 0x01 /* an empty value unsets the key (NULL) */
#define CONF_SECRET   0x02 /* never echoed in messages, wiped when freed */
#define CONF_HOSTNAME 0x04 /* the default is this host's name */

struct conf_key {
	const char *section; /* NULL in the pool table */
	const char *key;
	enum conf_type type;
	size_t offset; /* into struct pt_conf or struct pt_pool_conf */
	int64_t min, max;
	const char *def;	  /* in the file's own syntax; NULL: unset */
	const char *const *names; /* CONF_ENUM: value -> name, NULL-terminated */
	int flags;
};

#define SEC_MS	1000LL
#define MIN_MS	(60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS	(24 * HOUR_MS)

static const char *const kind_names[] = {
	[PT_POOL_DESKTOP] = "desktop",
	[PT_POOL_APP] = "app",
	NULL,
};
static const char *const protocol_names[] = {
	[PT_PROTO_VNC] = "vnc",
	[PT_PROTO_RDP] = "rdp",
	[PT_PROTO_CONSOLE] = "console",
	NULL,
};
static const char *const driver_names[] = {
	[PT_DRIVER_XVNC] = "xvnc",
	[PT_DRIVER_QEMU] = "qemu",
	[PT_DRIVER_STATIC] = "static",
	NULL,
};
static const char *const policy_names[] = {
	[PT_POLICY_LEAST_LOADED] = "least-loaded",
	[PT_POLICY_ROUND_ROBIN] = "round-robin",
	[PT_POLICY_PERSISTENT] = "persistent",
	NULL,
};

/* section, key, type, field, min, max, default, enum names, flags */
#define GKEY(s, k, t, f, lo, hi, d, e, fl)                             \
	{                                                              \
		s, k, t, offsetof(struct pt_conf, f), lo, hi, d, e, fl \
	}
#define PKEY(k, t, f, lo, hi, d, e, fl)                                        \
	{                                                                      \
		NULL, k, t, offsetof(struct pt_pool_conf, f), lo, hi, d, e, fl \
	}

/* Every key of [tls], [broker], [gateway] and [sessiond].  Keep
 * etc/portico.conf in step with this table. */
static const struct conf_key conf_keys[] = {
	GKEY("tls", "cert", CONF_STRING, tls.cert, 0, 0, "/etc/portico/tls/server.pem", NULL, 0),
	GKEY("tls", "key", CONF_STRING, tls.key, 0, 0, "/etc/portico/tls/server.key", NULL, 0),
	GKEY("tls", "ca", CONF_STRING, tls.ca, 0, 0, NULL, NULL, CONF_OPTIONAL),
	GKEY("tls", "ciphers", CONF_STRING, tls.ciphers, 0, 0, "ECDHE+AESGCM:ECDHE+CHACHA20", NULL,
	     0),
	GKEY("tls", "ciphersuites", CONF_STRING, tls.ciphersuites, 0, 0,
	     "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", NULL, 0),

	GKEY("broker", "listen", CONF_ADDRESS, broker.listen, 0, 0, "127.0.0.1:8443", NULL, 0),
	GKEY("broker", "store", CONF_STRING, broker.store, 0, 0,
	     "sqlite:/var/lib/portico/portico.db", NULL, 0),
	GKEY("broker", "pam_service", CONF_STRING, broker.pam_service, 0, 0, "portico", NULL, 0),
	GKEY("broker", "user", CONF_STRING, broker.user, 0, 0, "portico-broker", NULL, 0),
	GKEY("broker", "admin_group", CONF_STRING, broker.admin_group, 0, 0, "portico-admin", NULL,
	     0),
	GKEY("broker", "gateway_secret", CONF_STRING, broker.gateway_secret, 0, 0, NULL, NULL,
	     CONF_OPTIONAL | CONF_SECRET),
	GKEY("broker", "host_secret", CONF_STRING, broker.host_secret, 0, 0, NULL, NULL,
	     CONF_OPTIONAL | CONF_SECRET),
	GKEY("broker", "broker_secret", CONF_STRING, broker.broker_secret, 0, 0, NULL, NULL,
	     CONF_OPTIONAL | CONF_SECRET),
	GKEY("broker", "gateways", CONF_LIST, broker.gateways, 0, 0, "", NULL, 0),
	GKEY("broker", "cert", CONF_STRING, broker.cert, 0, 0, NULL, NULL, CONF_OPTIONAL),
	GKEY("broker", "key", CONF_STRING, broker.key, 0, 0, NULL, NULL, CONF_OPTIONAL),
	GKEY("broker", "token_ttl", CONF_DURATION, broker.token_ttl_ms, MIN_MS, 30 * DAY_MS, "8h",
	     NULL, 0),
	GKEY("broker", "ticket_ttl", CONF_DURATION, broker.ticket_ttl_ms, 5 * SEC_MS, HOUR_MS,
	     "60s", NULL, 0),
	GKEY("broker", "fail_delay", CONF_DURATION, broker.fail_delay_ms, 0, 30 * SEC_MS, "2s",
	     NULL, 0),
	GKEY("broker", "login_attempts", CONF_INT, broker.login_attempts, 1, 1000, "10", NULL, 0),
	GKEY("broker", "login_window", CONF_DURATION, broker.login_window_ms, SEC_MS, DAY_MS, "15m",
	     NULL, 0),
	GKEY("broker", "max_logins", CONF_INT, broker.max_logins, 1, 128, "64", NULL, 0),
	GKEY("broker", "max_login_queue", CONF_INT, broker.max_login_queue, 0, 100000, "1024", NULL,
	     0),
	GKEY("broker", "max_starts_per_host", CONF_INT, broker.max_starts_per_host, 1, 256, "4",
	     NULL, 0),
	GKEY("broker", "max_start_queue", CONF_INT, broker.max_start_queue, 0, 100000, "32", NULL,
	     0),
	GKEY("broker", "start_timeout", CONF_DURATION, broker.start_timeout_ms, SEC_MS, HOUR_MS,
	     "90s", NULL, 0),
	GKEY("broker", "max_connections", CONF_INT, broker.max_connections, 1, 1000000, "4096",
	     NULL, 0),
	GKEY("broker", "max_connections_per_source", CONF_INT, broker.max_connections_per_source, 1,
	     1000000, "256", NULL, 0),
	GKEY("broker", "metrics_listen", CONF_ADDRESS, broker.metrics_listen, 0, 0, NULL, NULL,
	     CONF_OPTIONAL),
	GKEY("broker", "audit_log", CONF_STRING, broker.audit_log, 0, 0, NULL, NULL, CONF_OPTIONAL),

	GKEY("gateway", "broker", CONF_URLS, gateway.broker, 0, 0, "https://127.0.0.1:8443", NULL,
	     0),
	GKEY("gateway", "rdp_listen", CONF_ADDRESS, gateway.rdp_listen, 0, 0, "0.0.0.0:3389", NULL,
	     CONF_OPTIONAL),
	GKEY("gateway", "vnc_listen", CONF_ADDRESS, gateway.vnc_listen, 0, 0, "0.0.0.0:5900", NULL,
	     CONF_OPTIONAL),
	GKEY("gateway", "https_listen", CONF_ADDRESS, gateway.https_listen, 0, 0, "0.0.0.0:443",
	     NULL, CONF_OPTIONAL),
	GKEY("gateway", "web_root", CONF_STRING, gateway.web_root, 0, 0, PT_DATADIR "/portico/web",
	     NULL, 0),
	GKEY("gateway", "novnc_root", CONF_STRING, gateway.novnc_root, 0, 0, "/usr/share/novnc",
	     NULL, 0),
	GKEY("gateway", "rdg", CONF_BOOL, gateway.rdg, 0, 0, "yes", NULL, 0),
	GKEY("gateway", "rdg_keepalive", CONF_DURATION, gateway.rdg_keepalive_ms, 0, HOUR_MS, "30s",
	     NULL, 0),
	GKEY("gateway", "public_host", CONF_STRING, gateway.public_host, 0, 0, "localhost", NULL,
	     0),
	GKEY("gateway", "user", CONF_STRING, gateway.user, 0, 0, "portico-gateway", NULL, 0),
	GKEY("gateway", "idle_timeout", CONF_DURATION, gateway.idle_timeout_ms, 0, 30 * DAY_MS, "0",
	     NULL, 0),
	GKEY("gateway", "handshake_timeout", CONF_DURATION, gateway.handshake_timeout_ms, SEC_MS,
	     10 * MIN_MS, "30s", NULL, 0),
	GKEY("gateway", "max_connections", CONF_INT, gateway.max_connections, 1, 1000000, "10000",
	     NULL, 0),
	GKEY("gateway", "vnc_anon_tls", CONF_BOOL, gateway.vnc_anon_tls, 0, 0, "no", NULL, 0),
	GKEY("gateway", "input_report", CONF_DURATION, gateway.input_report_ms, 100, 10 * MIN_MS,
	     "30s", NULL, 0),
	GKEY("gateway", "max_pending", CONF_INT, gateway.max_pending, 1, 1000000, "1000", NULL, 0),
	GKEY("gateway", "max_pending_per_addr", CONF_INT, gateway.max_pending_per_addr, 1, 1000000,
	     "20", NULL, 0),
	GKEY("gateway", "cert", CONF_STRING, gateway.cert, 0, 0, NULL, NULL, CONF_OPTIONAL),
	GKEY("gateway", "key", CONF_STRING, gateway.key, 0, 0, NULL, NULL, CONF_OPTIONAL),
	GKEY("gateway", "rdp_max_logins", CONF_INT, gateway.rdp_max_logins, 1, 100000, "100", NULL,
	     0),
	GKEY("gateway", "metrics_listen", CONF_ADDRESS, gateway.metrics_listen, 0, 0, NULL, NULL,
	     CONF_OPTIONAL),
	GKEY("gateway", "audit_log", CONF_STRING, gateway.audit_log, 0, 0, NULL, NULL,
	     CONF_OPTIONAL),

	GKEY("sessiond", "broker", CONF_URLS, sessiond.broker, 0, 0, "https://127.0.0.1:8443", NULL,
	     0),
	GKEY("sessiond", "listen", CONF_ADDRESS, sessiond.listen, 0, 0, "127.0.0.1:8444", NULL, 0),
	GKEY("sessiond", "name", CONF_STRING, sessiond.name, 0, 0, NULL, NULL, CONF_HOSTNAME),
	GKEY("sessiond", "address", CONF_URL, sessiond.address, 0, 0, NULL, NULL, CONF_OPTIONAL),
	GKEY("sessiond", "user", CONF_STRING, sessiond.user, 0, 0, "portico-sessiond", NULL, 0),
	GKEY("sessiond", "run_dir", CONF_STRING, sessiond.run_dir, 0, 0, "/run/portico", NULL, 0),
	GKEY("sessiond", "state_dir", CONF_STRING, sessiond.state_dir, 0, 0, "/var/lib/portico",
	     NULL, 0),
	GKEY("sessiond", "pam_service", CONF_STRING, sessiond.pam_service, 0, 0, "portico-session",
	     NULL, 0),
	GKEY("sessiond", "xsession", CONF_STRING, sessiond.xsession, 0, 0, "/etc/portico/xsession",
	     NULL, 0),
	GKEY("sessiond", "vnc_listen", CONF_STRING, sessiond.vnc_listen, 0, 0, "unix", NULL, 0),
	GKEY("sessiond", "gateway_user", CONF_STRING, sessiond.gateway_user, 0, 0,
	     "portico-gateway", NULL, 0),
	GKEY("sessiond", "heartbeat", CONF_DURATION, sessiond.heartbeat_ms, 100, MIN_MS, "5s", NULL,
	     0),
	GKEY("sessiond", "xvnc", CONF_STRING, sessiond.xvnc, 0, 0, "/usr/bin/Xvnc", NULL, 0),
	GKEY("sessiond", "qemu", CONF_STRING, sessiond.qemu, 0, 0, "/usr/bin/qemu-system-x86_64",
	     NULL, 0),
	GKEY("sessiond", "vm_memory", CONF_INT, sessiond.vm_memory_mb, 64, 1048576, "1024", NULL,
	     0),
	GKEY("sessiond", "vm_user", CONF_STRING, sessiond.vm_user, 0, 0, "portico-vm", NULL, 0),
	GKEY("sessiond", "vm_accel", CONF_STRING, sessiond.vm_accel, 0, 0, "kvm:tcg", NULL, 0),
	GKEY("sessiond", "broker_name", CONF_STRING, sessiond.broker_name, 0, 0, NULL, NULL,
	     CONF_OPTIONAL),
	GKEY("sessiond", "image_dir", CONF_STRING, sessiond.image_dir, 0, 0,
	     "/var/lib/portico/images", NULL, 0),
	GKEY("sessiond", "allow_users", CONF_LIST, sessiond.allow_users, 0, 0, "", NULL, 0),
	GKEY("sessiond", "cert", CONF_STRING, sessiond.cert, 0, 0, NULL, NULL, CONF_OPTIONAL),
	GKEY("sessiond", "key", CONF_STRING, sessiond.key, 0, 0, NULL, NULL, CONF_OPTIONAL),
	GKEY("sessiond", "max_connections", CONF_INT, sessiond.max_connections, 1, 1000000, "256",
	     NULL, 0),
	GKEY("sessiond", "max_connections_per_source", CONF_INT,
	     sessiond.max_connections_per_source, 1, 1000000, "64", NULL, 0),
	GKEY("sessiond", "metrics_listen", CONF_ADDRESS, sessiond.metrics_listen, 0, 0, NULL, NULL,
	     CONF_OPTIONAL),
};

/* Every key of a [pool NAME] section. */
static const struct conf_key pool_keys[] = {
	PKEY("kind", CONF_ENUM, kind, 0, 0, "desktop", kind_names, 0),
	PKEY("protocol", CONF_ENUM, protocol, 0, 0, "vnc", protocol_names, 0),
	PKEY("driver", CONF_ENUM, driver, 0, 0, "xvnc", driver_names, 0),
	PKEY("hosts", CONF_LIST, hosts, 0, 0, "", NULL, 0),
	PKEY("users", CONF_LIST, users, 0, 0, "", NULL, 0),
	PKEY("groups", CONF_LIST, groups, 0, 0, "", NULL, 0),
	PKEY("policy", CONF_ENUM, policy, 0, 0, "least-loaded", policy_names, 0),
	PKEY("command", CONF_STRING, command, 0, 0, NULL, NULL, CONF_OPTIONAL),
	PKEY("image", CONF_STRING, image, 0, 0, NULL, NULL, CONF_OPTIONAL),
	PKEY("geometry", CONF_GEOMETRY, geometry, 64, 8192, "1280x800", NULL, 0),
	PKEY("max_sessions_per_host", CONF_INT, max_sessions_per_host, 1, 100000, "50", NULL, 0),
	PKEY("max_sessions_per_user", CONF_INT, max_sessions_per_user, 1, 1000, "1", NULL, 0),
	PKEY("min_spare", CONF_INT, min_spare, 0, 1000, "0", NULL, 0),
	PKEY("max_vms", CONF_INT, max_vms, 0, 10000, "10", NULL, 0),
	PKEY("idle_timeout", CONF_DURATION, idle_timeout_ms, 0, 30 * DAY_MS, "0", NULL, 0),
	PKEY("disconnect_timeout", CONF_DURATION, disconnect_timeout_ms, 0, 30 * DAY_MS, "1h", NULL,
	     0),
	PKEY("max_duration", CONF_DURATION, max_duration_ms, 0, 365 * DAY_MS, "0", NULL, 0),
	PKEY("sso", CONF_BOOL, sso, 0, 0, "no", NULL, 0),
	PKEY("guest_port", CONF_INT, guest_port, 0, 65535, "0", NULL, 0),
	PKEY("boot_timeout", CONF_DURATION, boot_timeout_ms, 10 * SEC_MS, HOUR_MS, "5m", NULL, 0),
};

#define NKEYS	   (sizeof(conf_keys) / sizeof(conf_keys[0]))
#define NPOOL_KEYS (sizeof(pool_keys) / sizeof(pool_keys[0]))

#define POOL_NAME_MAX	64
#define POOL_NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"

enum conf_section { SEC_NONE, SEC_GLOBAL, SEC_POOL };

/* State of one load. */
struct conf_parse {
	const char *path; /* for messages */
	struct pt_conf *conf;
	char *err;
	size_t errlen;
	bool failed; /* first error wins: later ones are dropped */

	int lineno; /* of the item being read */
	enum conf_section sec;
	const char *section;	     /* SEC_GLOBAL: "tls", ... */
	size_t pool;		     /* SEC_POOL: index into conf->pools */
	const struct conf_key *prev; /* key of the last key = value line */
	void *prev_base;	     /* the structure that key lives in */

	int seen[NKEYS]; /* line of each global key, 0: not yet */
	int *pool_seen;	 /* NPOOL_KEYS lines per pool */
	size_t pool_cap;
	size_t *hash;	 /* pool index + 1 by name; 0: empty slot */
	size_t hash_cap; /* a power of two */
};

static void conf_fail(struct conf_parse *p, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void conf_fail(struct conf_parse *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return;
	p->failed = true;
	if (!p->err || p->errlen == 0)
		return;
	if (line > 0)
		n = snprintf(p->err, p->errlen, "%s:%d: ", p->path, line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->path);
	if (n < 0 || (size_t)n >= p->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
}

/* Copy n bytes of s for a message: control bytes become '?' so that a
 * binary file cannot write escape sequences to the operator's terminal,
 * and long strings are cut. */
static const char *conf_quote(char *buf, size_t len, const char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 4 < len; i++) {
		unsigned char c = s[i];
		buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (i < n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static const char *conf_q(char *buf, size_t len, const char *s)
{
	return conf_quote(buf, len, s, strlen(s));
}

static void fmt_duration(char *buf, size_t len, int64_t ms)
{
	if (ms == 0)
		snprintf(buf, len, "0");
	else if (ms % DAY_MS == 0)
		snprintf(buf, len, "%lldd", (long long)(ms / DAY_MS));
	else if (ms % HOUR_MS == 0)
		snprintf(buf, len, "%lldh", (long long)(ms / HOUR_MS));
	else if (ms % MIN_MS == 0)
		snprintf(buf, len, "%lldm", (long long)(ms / MIN_MS));
	else if (ms % SEC_MS == 0)
		snprintf(buf, len, "%llds", (long long)(ms / SEC_MS));
	else
		snprintf(buf, len, "%lldms", (long long)ms);
}

int pt_conf_parse_duration(const char *s, int64_t *ms)
{
	static const struct {
		const char *unit;
		int64_t ms;
	} units[] = {
		{ "", SEC_MS },	 { "ms", 1 },	   { "s", SEC_MS },
		{ "m", MIN_MS }, { "h", HOUR_MS }, { "d", DAY_MS },
	};
	int64_t v = 0;
	bool overflow = false;
	size_t i;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		int d = *s - '0';
		if (v > (INT64_MAX - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(s, units[i].unit))
			break;
	if (i == sizeof(units) / sizeof(units[0]))
		return -EINVAL;
	if (overflow || v > INT64_MAX / units[i].ms)
		return -ERANGE;
	*ms = v * units[i].ms;
	return 0;
}

int pt_conf_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	if (!s)
		return -EINVAL;
	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

int pt_conf_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	const char *d;
	char *end;
	long long v;

	if (!s)
		return -EINVAL;
	/* strtoll alone would take leading blanks, '+' and an empty string */
	d = (*s == '-') ? s + 1 : s;
	if (!isdigit((unsigned char)*d))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

/* Lists keep room for a power of two of slots (at least 4) so that long
 * continued lists do not realloc per item; v[n] is always NULL. */
static size_t list_cap(size_t slots)
{
	size_t c = 4;

	while (c < slots)
		c *= 2;
	return c;
}

static void list_free(struct pt_strlist *l)
{
	size_t i;

	if (l->v) {
		for (i = 0; i < l->n; i++)
			free(l->v[i]);
		free(l->v);
	}
	l->v = NULL;
	l->n = 0;
}

static int list_push(struct pt_strlist *l, const char *s, size_t n)
{
	char **v;
	char *item;

	if (!l->v || list_cap(l->n + 2) != list_cap(l->n + 1)) {
		v = realloc(l->v, list_cap(l->n + 2) * sizeof(*v));
		if (!v)
			return -ENOMEM;
		if (!l->v)
			v[0] = NULL;
		l->v = v;
	}
	if (!s)
		return 0;
	if (!(item = strndup(s, n)))
		return -ENOMEM;
	l->v[l->n++] = item;
	l->v[l->n] = NULL;
	return 0;
}

/* Append the items of the first n bytes of s, split at commas, blanks
 * trimmed, empty items dropped. */
static int list_add(struct pt_strlist *l, const char *s, size_t n)
{
	const char *end = s + n, *a, *b, *comma;
	int rc;

	if ((rc = list_push(l, NULL, 0)))
		return rc;
	for (a = s; a <= end; a = comma + 1) {
		comma = memchr(a, ',', end - a);
		if (!comma)
			comma = end;
		b = comma;
		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		if (b > a && (rc = list_push(l, a, b - a)))
			return rc;
	}
	return 0;
}

static int check_address(const char *s)
{
	char host[256];
	int port;

	return pt_net_split_hostport(s, -1, host, sizeof(host), &port) ? -EINVAL : 0;
}

static int check_url(const char *s)
{
	char auth[300], host[256];
	const char *a, *p;
	size_t n;
	int port, defport;

	for (p = s; *p; p++)
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p))
			return -EINVAL;
	/* https only: the daemons authenticate each other over TLS, and a
	 * secret or a user's session sent in the clear is given away. */
	if (!strncmp(s, "https://", 8)) {
		a = s + 8;
		defport = 443;
	} else {
		return -EINVAL;
	}
	n = strcspn(a, "/?#");
	if (n == 0 || n >= sizeof(auth))
		return -EINVAL;
	memcpy(auth, a, n);
	auth[n] = '\0';
	return pt_net_split_hostport(auth, defport, host, sizeof(host), &port) ? -EINVAL : 0;
}

static int check_urls(const char *s)
{
	struct pt_urls u;
	char err[8];

	return pt_urls_parse(s, &u, err, sizeof(err));
}

/* One side of a geometry: digits only, clamped so that huge numbers come
 * out as out of range rather than as overflow. */
static int geometry_side(const char *s, size_t n, int64_t *v)
{
	size_t i;

	if (n == 0)
		return -EINVAL;
	*v = 0;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		if (*v < 1000000000)
			*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

static int check_geometry(const struct conf_key *k, const char *s)
{
	const char *x = strchr(s, 'x');
	int64_t w, h;

	if (!x || geometry_side(s, x - s, &w) || geometry_side(x + 1, strlen(x + 1), &h))
		return -EINVAL;
	if (w < k->min || w > k->max || h < k->min || h > k->max)
		return -ERANGE;
	return 0;
}

static void str_free(const struct conf_key *k, char **sp)
{
	if (*sp && (k->flags & CONF_SECRET))
		explicit_bzero(*sp, strlen(*sp));
	free(*sp);
	*sp = NULL;
}

/* Set key k of the structure at base from its text form.  append: a
 * continuation line of a list.  Returns 0, -EINVAL for a malformed value,
 * -ERANGE for one out of bounds, -ENOMEM. */
static int conf_set(const struct conf_key *k, void *base, const char *val, bool append)
{
	void *field = (char *)base + k->offset;
	struct pt_strlist list = { NULL, 0 };
	int64_t v;
	char *dup;
	int rc, b, i;

	switch (k->type) {
	case CONF_LIST:
		if (append)
			return list_add(field, val, strlen(val));
		if ((rc = list_add(&list, val, strlen(val)))) {
			list_free(&list);
			return rc;
		}
		list_free(field);
		*(struct pt_strlist *)field = list;
		return 0;
	case CONF_INT:
		if ((rc = pt_conf_parse_int(val, k->min, k->max, &v)))
			return rc;
		*(int64_t *)field = v;
		return 0;
	case CONF_DURATION:
		if ((rc = pt_conf_parse_duration(val, &v)))
			return rc;
		if (v < k->min || v > k->max)
			return -ERANGE;
		*(int64_t *)field = v;
		return 0;
	case CONF_BOOL:
		if ((rc = pt_conf_parse_bool(val, &b)))
			return rc;
		*(int *)field = b;
		return 0;
	case CONF_ENUM:
		for (i = 0; k->names[i]; i++) {
			if (!strcmp(val, k->names[i])) {
				*(int *)field = i;
				return 0;
			}
		}
		return -EINVAL;
	case CONF_STRING:
	case CONF_ADDRESS:
	case CONF_URL:
	case CONF_URLS:
	case CONF_GEOMETRY:
		break;
	}

	if (*val == '\0') {
		if (!(k->flags & CONF_OPTIONAL))
			return -EINVAL;
		str_free(k, field);
		return 0;
	}
	if (k->type == CONF_ADDRESS && (rc = check_address(val)))
		return rc;
	if (k->type == CONF_URL && (rc = check_url(val)))
		return rc;
	if (k->type == CONF_URLS && (rc = check_urls(val)))
		return rc;
	/* A shared secret short enough to guess is no credential. */
	if ((k->flags & CONF_SECRET) && strlen(val) < PT_CONF_SECRET_MIN)
		return -EINVAL;
	if (k->type == CONF_GEOMETRY && (rc = check_geometry(k, val)))
		return rc;
	if (!(dup = strdup(val)))
		return -ENOMEM;
	str_free(k, field);
	*(char **)field = dup;
	return 0;
}

static void conf_free_keys(const struct conf_key *tab, size_t n, void *base)
{
	size_t i;

	for (i = 0; i < n; i++) {
		void *field = (char *)base + tab[i].offset;
		switch (tab[i].type) {
		case CONF_STRING:
		case CONF_ADDRESS:
		case CONF_URL:
		case CONF_URLS:
		case CONF_GEOMETRY:
			str_free(&tab[i], field);
			break;
		case CONF_LIST:
			list_free(field);
			break;
		default:
			break;
		}
	}
}

static int conf_set_defaults(const struct conf_key *tab, size_t n, void *base)
{
	char host[HOST_NAME_MAX + 1];
	const char *def;
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		def = tab[i].def;
		if (tab[i].flags & CONF_HOSTNAME) {
			/* POSIX leaves truncation unterminated */
			if (gethostname(host, sizeof(host)) == -1)
				host[0] = '\0';
			host[sizeof(host) - 1] = '\0';
			def = host[0] ? host : "localhost";
		}
		if (def && (rc = conf_set(&tab[i], base, def, false)))
			return rc;
	}
	return 0;
}

struct pt_conf *pt_conf_defaults(void)
{
	struct pt_conf *conf;

	if (!(conf = calloc(1, sizeof(*conf))))
		return NULL;
	if (conf_set_defaults(conf_keys, NKEYS, conf)) {
		pt_conf_free(conf);
		return NULL;
	}
	return conf;
}

void pt_conf_free(struct pt_conf *conf)
{
	size_t i;

	if (!conf)
		return;
	for (i = 0; i < conf->npools; i++) {
		conf_free_keys(pool_keys, NPOOL_KEYS, &conf->pools[i]);
		free(conf->pools[i].name);
	}
	free(conf->pools);
	conf_free_keys(conf_keys, NKEYS, conf);
	free(conf->path);
	free(conf);
}

const struct pt_pool_conf *pt_conf_pool(const struct pt_conf *conf, const char *name)
{
	size_t i;

	if (!conf || !name)
		return NULL;
	for (i = 0; i < conf->npools; i++)
		if (!strcmp(conf->pools[i].name, name))
			return &conf->pools[i];
	return NULL;
}

/* "[tls]" or "[pool office]", for messages. */
static const char *conf_section_name(struct conf_parse *p, char *buf, size_t len)
{
	char q[POOL_NAME_MAX + 8];

	if (p->sec == SEC_POOL)
		snprintf(buf, len, "[pool %s]", conf_q(q, sizeof(q), p->conf->pools[p->pool].name));
	else
		snprintf(buf, len, "[%s]", p->section);
	return buf;
}

/* The message for a value conf_set refused, without file and line. */
static void value_error_text(const struct conf_key *k, const char *val, int rc, char *msg,
			     size_t msglen)
{
	char want[160], lo[32], hi[32], q[80];
	size_t i, o;

	if (rc == -ENOMEM) {
		snprintf(msg, msglen, "out of memory");
		return;
	}
	if (rc == -ERANGE) {
		if (k->type == CONF_DURATION) {
			fmt_duration(lo, sizeof(lo), k->min);
			fmt_duration(hi, sizeof(hi), k->max);
		} else {
			snprintf(lo, sizeof(lo), "%lld", (long long)k->min);
			snprintf(hi, sizeof(hi), "%lld", (long long)k->max);
		}
		snprintf(msg, msglen, "'%s' = %s is out of range (%s..%s%s)", k->key,
			 conf_q(q, sizeof(q), val), lo, hi,
			 k->type == CONF_GEOMETRY ? " for width and height" : "");
		return;
	}

	switch (k->type) {
	case CONF_INT:
		snprintf(want, sizeof(want), "an integer from %lld to %lld", (long long)k->min,
			 (long long)k->max);
		break;
	case CONF_BOOL:
		snprintf(want, sizeof(want), "yes or no (or true/false, on/off, 1/0)");
		break;
	case CONF_DURATION:
		snprintf(want, sizeof(want), "a duration such as 2s or 500ms");
		break;
	case CONF_ENUM:
		for (i = 0, o = 0; k->names[i] && o < sizeof(want); i++)
			o += snprintf(want + o, sizeof(want) - o, "%s%s",
				      i == 0		? ""
				      : k->names[i + 1] ? ", "
							: " or ",
				      k->names[i]);
		break;
	case CONF_ADDRESS:
		snprintf(want, sizeof(want), "host:port such as %s%s", k->def,
			 (k->flags & CONF_OPTIONAL) ? ", or nothing to turn it off" : "");
		break;
	case CONF_URL:
		snprintf(want, sizeof(want),
			 "an https:// URL such as %s (daemons speak TLS to each other)", k->def);
		break;
	case CONF_GEOMETRY:
		snprintf(want, sizeof(want), "WIDTHxHEIGHT such as %s", k->def);
		break;
	case CONF_STRING:
		if (k->flags & CONF_SECRET) {
			snprintf(want, sizeof(want), "a secret of at least %d characters",
				 PT_CONF_SECRET_MIN);
			break;
		}
		/* fall through */
	case CONF_LIST:
	default:
		snprintf(want, sizeof(want), "a value");
		break;
	}
	if (k->type == CONF_URLS) {
		/* the parser's words name the URL at fault in a list */
		struct pt_urls u;
		char why[300];
		pt_urls_parse(val, &u, why, sizeof(why));
		snprintf(msg, msglen,
			 "bad value for '%s': %s; expected 1 to %d https:// URLs separated by "
			 "commas, such as %s",
			 k->key, why, PT_URLS_MAX, k->def);
	} else if (*val == '\0' && k->type == CONF_STRING)
		snprintf(msg, msglen, "empty value for '%s': it cannot be unset", k->key);
	else if (k->flags & CONF_SECRET)
		snprintf(msg, msglen, "bad value for '%s': expected %s", k->key, want);
	else
		snprintf(msg, msglen, "bad value '%s' for '%s': expected %s",
			 conf_q(q, sizeof(q), val), k->key, want);
}

static void conf_value_error(struct conf_parse *p, const struct conf_key *k, const char *val,
			     int rc)
{
	char msg[512];

	value_error_text(k, val, rc, msg, sizeof(msg));
	conf_fail(p, p->lineno, "%s", msg);
}

/* A pool key was given: the defaults that depend on it (protocol) are
 * no longer the pool's to choose (pt_conf_pool_resolve). */
static void mark_given(const struct conf_key *k, void *pool)
{
	if (k->offset == offsetof(struct pt_pool_conf, protocol))
		((struct pt_pool_conf *)pool)->protocol_set = 1;
}

/* A key = value line. */
static int conf_assign(struct conf_parse *p, const char *name, const char *value)
{
	const struct conf_key *tab, *k = NULL;
	char sec[POOL_NAME_MAX + 16], q[80];
	size_t i, n;
	void *base;
	int *seen, rc;

	if (p->sec == SEC_NONE) {
		conf_fail(p, p->lineno,
			  "key '%s' is outside any section (expected [tls], [broker], [gateway], "
			  "[sessiond] or [pool NAME] first)",
			  conf_q(q, sizeof(q), name));
		return -EINVAL;
	}
	if (p->sec == SEC_POOL) {
		tab = pool_keys;
		n = NPOOL_KEYS;
		base = &p->conf->pools[p->pool];
		seen = &p->pool_seen[p->pool * NPOOL_KEYS];
	} else {
		tab = conf_keys;
		n = NKEYS;
		base = p->conf;
		seen = p->seen;
	}
	for (i = 0; i < n; i++) {
		if ((!tab[i].section || !strcmp(tab[i].section, p->section)) &&
		    !strcmp(tab[i].key, name)) {
			k = &tab[i];
			break;
		}
	}
	if (!k) {
		conf_fail(p, p->lineno, "unknown key '%s' in %s", conf_q(q, sizeof(q), name),
			  conf_section_name(p, sec, sizeof(sec)));
		return -EINVAL;
	}
	if (seen[i]) {
		conf_fail(p, p->lineno, "duplicate key '%s' in %s (first at line %d)", k->key,
			  conf_section_name(p, sec, sizeof(sec)), seen[i]);
		return -EINVAL;
	}
	seen[i] = p->lineno;
	p->prev = k;
	p->prev_base = base;

	if ((rc = conf_set(k, base, value, false))) {
		conf_value_error(p, k, value, rc);
		return -EINVAL;
	}
	if (tab == pool_keys)
		mark_given(k, base);
	return 0;
}

/* An indented line going on with the key above (lib/ini.c has refused
 * indented headers and keys, and stripped the comment). */
static int conf_continue(struct conf_parse *p, const char *value)
{
	const struct conf_key *k = p->prev;
	int rc;

	if (k->type != CONF_LIST) {
		conf_fail(p, p->lineno,
			  "'%s' takes a single line: only list keys continue on indented lines",
			  k->key);
		return -EINVAL;
	}
	/* prev_base stays valid: only a new [pool] moves conf->pools, and a
	 * section header ends continuation */
	if ((rc = list_add((struct pt_strlist *)((char *)p->prev_base + k->offset), value,
			   strlen(value)))) {
		conf_fail(p, p->lineno, "out of memory");
		return rc;
	}
	return 0;
}

static uint64_t pool_hash(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* The slot holding `name`, or the empty slot where it would go. */
static size_t *pool_slot(struct conf_parse *p, const char *name)
{
	size_t i = pool_hash(name) & (p->hash_cap - 1);

	while (p->hash[i] && strcmp(p->conf->pools[p->hash[i] - 1].name, name))
		i = (i + 1) & (p->hash_cap - 1);
	return &p->hash[i];
}

/* Make room for one more pool in conf->pools, pool_seen and the hash. */
static int pool_reserve(struct conf_parse *p)
{
	struct pt_conf *conf = p->conf;
	size_t cap, i, *hash, *old = p->hash, oldcap = p->hash_cap;
	void *v;

	if (conf->npools == p->pool_cap) {
		cap = p->pool_cap ? p->pool_cap * 2 : 8;
		if (!(v = reallocarray(conf->pools, cap, sizeof(*conf->pools))))
			return -ENOMEM;
		conf->pools = v;
		if (!(v = reallocarray(p->pool_seen, cap * NPOOL_KEYS, sizeof(int))))
			return -ENOMEM;
		p->pool_seen = v;
		p->pool_cap = cap;
	}
	/* linear probing stays short below half full */
	if ((conf->npools + 1) * 2 > p->hash_cap) {
		cap = p->hash_cap ? p->hash_cap * 2 : 64;
		if (!(hash = calloc(cap, sizeof(*hash))))
			return -ENOMEM;
		p->hash = hash;
		p->hash_cap = cap;
		for (i = 0; i < oldcap; i++)
			if (old[i])
				*pool_slot(p, conf->pools[old[i] - 1].name) = old[i];
		free(old);
	}
	return 0;
}

static int conf_pool_begin(struct conf_parse *p, const char *s, size_t n)
{
	char name[POOL_NAME_MAX + 1], q[80];
	struct pt_pool_conf *pc;
	size_t *slot;

	if (n == 0) {
		conf_fail(p, p->lineno, "[pool] needs a name, such as [pool office]");
		return -EINVAL;
	}
	if (n <= POOL_NAME_MAX) {
		memcpy(name, s, n);
		name[n] = '\0';
	}
	if (n > POOL_NAME_MAX || !pt_conf_pool_name_valid(name)) {
		conf_fail(p, p->lineno,
			  "bad pool name '%s': expected 1 to %d letters, digits, '_', '.' or '-' "
			  "(not . or ..)",
			  conf_quote(q, sizeof(q), s, n), POOL_NAME_MAX);
		return -EINVAL;
	}

	if (pool_reserve(p))
		goto nomem;
	slot = pool_slot(p, name);
	if (*slot) {
		conf_fail(p, p->lineno, "duplicate pool '%s' (first at line %d)", name,
			  p->conf->pools[*slot - 1].line);
		return -EINVAL;
	}
	pc = &p->conf->pools[p->conf->npools];
	memset(pc, 0, sizeof(*pc));
	memset(&p->pool_seen[p->conf->npools * NPOOL_KEYS], 0, NPOOL_KEYS * sizeof(int));
	/* counted before it is filled so that pt_conf_free sees it */
	p->conf->npools++;
	pc->line = p->lineno;
	if (!(pc->name = strdup(name)) || conf_set_defaults(pool_keys, NPOOL_KEYS, pc))
		goto nomem;
	*slot = p->conf->npools;
	p->sec = SEC_POOL;
	p->pool = p->conf->npools - 1;
	return 0;
nomem:
	conf_fail(p, p->lineno, "out of memory");
	return -ENOMEM;
}

/* A "[name]" line. */
static int conf_section(struct conf_parse *p, const char *name)
{
	static const char *const globals[] = { "tls", "broker", "gateway", "sessiond" };
	size_t i, n = strlen(name);
	char q[80];

	p->prev = NULL;
	p->prev_base = NULL;
	for (i = 0; i < sizeof(globals) / sizeof(globals[0]); i++) {
		if (strlen(globals[i]) == n && !memcmp(name, globals[i], n)) {
			/* a section may appear more than once; its keys may not */
			p->sec = SEC_GLOBAL;
			p->section = globals[i];
			return 0;
		}
	}
	if (n == 4 && !memcmp(name, "pool", 4))
		return conf_pool_begin(p, name + 4, 0);
	if (n >= 5 && !memcmp(name, "pool ", 5))
		return conf_pool_begin(p, name + 5, n - 5);
	conf_fail(p, p->lineno,
		  "unknown section [%s] (expected [tls], [broker], [gateway], [sessiond] or [pool "
		  "NAME])",
		  conf_quote(q, sizeof(q), name, n));
	return -EINVAL;
}

/* One item from lib/ini.c; non-zero stops the reading. */
static int conf_item(void *arg, const struct pt_ini_item *it)
{
	struct conf_parse *p = arg;

	p->lineno = it->line;
	switch (it->kind) {
	case PT_INI_SECTION:
		return conf_section(p, it->name);
	case PT_INI_KEY:
		return conf_assign(p, it->name, it->value);
	case PT_INI_MORE:
		/* the reader only continues a key that conf_assign took */
		if (!p->prev) {
			conf_fail(p, p->lineno, "continuation line without a key");
			return -EINVAL;
		}
		return conf_continue(p, it->value);
	}
	conf_fail(p, p->lineno, "unknown item from the INI reader");
	return -EINVAL;
}

/* Checks that concern a pool as a whole, reported at its header. */
/* What is wrong with a pool as a whole, without file and line. */
static int pool_problem(const struct pt_pool_conf *pc, char *msg, size_t len)
{
	char q[80];
	size_t i;

	if (pc->kind == PT_POOL_APP && !pc->command) {
		snprintf(msg, len, "pool '%s': kind = app needs 'command' (the program to run)",
			 pc->name);
		return -EINVAL;
	}
	if (pc->kind == PT_POOL_APP && !strncmp(pc->command, "||", 2) &&
	    pc->protocol != PT_PROTO_RDP) {
		snprintf(msg, len,
			 "pool '%s': command '%s' names a RemoteApp of a Windows RDS host: "
			 "it needs protocol = rdp",
			 pc->name, conf_quote(q, 44, pc->command, strlen(pc->command)));
		return -EINVAL;
	}
	if (pc->protocol == PT_PROTO_CONSOLE && pc->driver != PT_DRIVER_QEMU) {
		snprintf(msg, len,
			 "pool '%s': protocol = console is a VM's own screen: it needs driver = "
			 "qemu",
			 pc->name);
		return -EINVAL;
	}
	if (pc->driver == PT_DRIVER_QEMU && !pc->image) {
		snprintf(msg, len, "pool '%s': driver = qemu needs 'image' (the golden image)",
			 pc->name);
		return -EINVAL;
	}
	if (pc->driver == PT_DRIVER_STATIC) {
		if (pc->hosts.n == 0) {
			snprintf(msg, len,
				 "pool '%s': driver = static needs 'hosts' (host:port backends)",
				 pc->name);
			return -EINVAL;
		}
		for (i = 0; i < pc->hosts.n; i++) {
			if (check_address(pc->hosts.v[i])) {
				snprintf(msg, len,
					 "pool '%s': 'hosts' entry '%s' is not host:port, which "
					 "driver = static needs",
					 pc->name, conf_q(q, sizeof(q), pc->hosts.v[i]));
				return -EINVAL;
			}
		}
	}
	return 0;
}

static int conf_check_pool(struct conf_parse *p, const struct pt_pool_conf *pc)
{
	char msg[512];
	int rc = pool_problem(pc, msg, sizeof(msg));

	if (rc)
		conf_fail(p, pc->line, "%s", msg);
	return rc;
}

/* --- pools outside a file (the admin API) --------------------------------- */

int pt_conf_pool_name_valid(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n <= 64 && strspn(name, POOL_NAME_CHARS) == n && strcmp(name, ".") &&
	       strcmp(name, "..");
}

int pt_conf_pool_init(struct pt_pool_conf *pc, const char *name)
{
	memset(pc, 0, sizeof(*pc));
	pc->name = strdup(name);
	if (!pc->name || conf_set_defaults(pool_keys, NPOOL_KEYS, pc)) {
		pt_conf_pool_clear(pc);
		return -ENOMEM;
	}
	return 0;
}

void pt_conf_pool_clear(struct pt_pool_conf *pc)
{
	conf_free_keys(pool_keys, NPOOL_KEYS, pc);
	free(pc->name);
	memset(pc, 0, sizeof(*pc));
}

int pt_conf_pool_set(struct pt_pool_conf *pc, const char *key, const char *value, char *err,
		     size_t errlen)
{
	for (size_t i = 0; i < NPOOL_KEYS; i++) {
		if (strcmp(pool_keys[i].key, key))
			continue;
		int rc = conf_set(&pool_keys[i], pc, value, false);
		if (rc)
			value_error_text(&pool_keys[i], value, rc, err, errlen);
		else
			mark_given(&pool_keys[i], pc);
		return rc;
	}
	snprintf(err, errlen, "unknown pool key '%s'", key);
	return -ENOENT;
}

const struct pt_strlist *pt_conf_pool_list(const struct pt_pool_conf *pc, const char *key)
{
	for (size_t i = 0; i < NPOOL_KEYS; i++)
		if (pool_keys[i].type == CONF_LIST && !strcmp(pool_keys[i].key, key))
			return (const struct pt_strlist *)((const char *)pc + pool_keys[i].offset);
	return NULL;
}

void pt_conf_pool_resolve(struct pt_pool_conf *pc)
{
	if (!pc->protocol_set && pc->driver == PT_DRIVER_QEMU)
		pc->protocol = PT_PROTO_CONSOLE;
	pc->protocol_set = 1;
}

int pt_conf_pool_guest_port(const struct pt_pool_conf *pc)
{
	if (pc->guest_port > 0)
		return (int)pc->guest_port;
	return pc->protocol == PT_PROTO_RDP ? 3389 : 5900;
}

int pt_conf_pool_check(const struct pt_pool_conf *pc, char *err, size_t errlen)
{
	return pool_problem(pc, err, errlen);
}

int pt_conf_pool_value(const struct pt_pool_conf *pc, size_t i, const char **key, char *buf,
		       size_t len)
{
	const struct conf_key *k;
	const void *field;

	if (i >= NPOOL_KEYS)
		return -ENOENT;
	k = &pool_keys[i];
	field = (const char *)pc + k->offset;
	*key = k->key;
	switch (k->type) {
	case CONF_LIST:
		return PT_CONF_VALUE_LIST;
	case CONF_INT:
		snprintf(buf, len, "%lld", (long long)*(const int64_t *)field);
		return PT_CONF_VALUE_NUMBER;
	case CONF_BOOL:
		snprintf(buf, len, "%s", *(const int *)field ? "yes" : "no");
		return PT_CONF_VALUE_BOOL;
	case CONF_DURATION:
		fmt_duration(buf, len, *(const int64_t *)field);
		return PT_CONF_VALUE_TEXT;
	case CONF_ENUM:
		snprintf(buf, len, "%s", k->names[*(const int *)field]);
		return PT_CONF_VALUE_TEXT;
	default: {
		const char *v = *(char *const *)field;
		if (!v)
			return PT_CONF_VALUE_UNSET;
		snprintf(buf, len, "%s", v);
		return PT_CONF_VALUE_TEXT;
	}
	}
}

void pt_conf_tls_of(const struct pt_conf *conf, int node, struct pt_tls_conf *out)
{
	char *cert = node == PT_NODE_BROKER    ? conf->broker.cert
		     : node == PT_NODE_GATEWAY ? conf->gateway.cert
					       : conf->sessiond.cert;
	char *key = node == PT_NODE_BROKER    ? conf->broker.key
		    : node == PT_NODE_GATEWAY ? conf->gateway.key
					      : conf->sessiond.key;

	*out = conf->tls;
	if (cert)
		out->cert = cert;
	if (key)
		out->key = key;
}

void pt_conf_keep_secrets(struct pt_conf *conf, int keep)
{
	struct pt_broker_conf *b = &conf->broker;
	char **field[3] = { &b->gateway_secret, &b->host_secret, &b->broker_secret };
	static const int bit[3] = { PT_SECRET_GATEWAY, PT_SECRET_HOST, PT_SECRET_BROKER };

	for (int i = 0; i < 3; i++) {
		if ((keep & bit[i]) || !*field[i])
			continue;
		explicit_bzero(*field[i], strlen(*field[i]));
		free(*field[i]);
		*field[i] = NULL;
	}
}

/* A credential carries one role: the three shared secrets must differ, or
 * a gateway's secret would open the session hosts' routes too. */
static int conf_check_secrets(struct conf_parse *p)
{
	const struct pt_broker_conf *b = &p->conf->broker;
	const char *v[] = { b->gateway_secret, b->host_secret, b->broker_secret };
	static const char *const n[] = { "gateway_secret", "host_secret", "broker_secret" };

	for (int i = 0; i < 3; i++)
		for (int k = i + 1; k < 3; k++)
			if (v[i] && v[k] && !strcmp(v[i], v[k])) {
				conf_fail(p, 0,
					  "[broker] %s and %s are the same: a credential carries "
					  "one role, so each must differ",
					  n[i], n[k]);
				return -1;
			}
	return 0;
}

/* Load a file (text NULL) or len bytes of text, named `name` in messages. */
static struct pt_conf *conf_load(const char *name, bool file, const char *text, size_t len,
				 char *err, size_t errlen)
{
	struct pt_ini_error ierr;
	struct conf_parse p;
	struct pt_conf *conf = NULL;
	size_t i;
	int rc;

	memset(&p, 0, sizeof(p));
	p.path = name;
	p.err = err;
	p.errlen = errlen;
	if (err && errlen)
		err[0] = '\0';

	if (!(conf = pt_conf_defaults()) || (file && !(conf->path = strdup(name)))) {
		conf_fail(&p, 0, "out of memory");
		goto fail;
	}
	p.conf = conf;
	if (file)
		rc = pt_ini_parse_file(name, conf_item, &p, &ierr);
	else
		rc = pt_ini_parse(text, len, conf_item, &p, &ierr);
	/* the reader's own refusals; conf_item's are recorded already */
	if (rc && ierr.msg[0])
		conf_fail(&p, ierr.line, "%s", ierr.msg);
	else if (rc) /* a net: conf_item records its refusals before this */
		conf_fail(&p, p.lineno, "cannot read: %s", strerror(rc < 0 ? -rc : EINVAL));
	if (rc || p.failed)
		goto fail;
	for (i = 0; i < conf->npools; i++) {
		pt_conf_pool_resolve(&conf->pools[i]);
		if (conf_check_pool(&p, &conf->pools[i]))
			goto fail;
	}
	if (conf_check_secrets(&p))
		goto fail;

	free(p.pool_seen);
	free(p.hash);
	return conf;

fail:
	free(p.pool_seen);
	free(p.hash);
	pt_conf_free(conf);
	return NULL;
}

struct pt_conf *pt_conf_load(const char *path, char *err, size_t errlen)
{
	return conf_load(path ? path : PT_CONF_DEFAULT_PATH, true, NULL, 0, err, errlen);
}

struct pt_conf *pt_conf_load_buf(const char *name, const void *text, size_t len, char *err,
				 size_t errlen)
{
	return conf_load(name ? name : "(text)", false, text, len, err, errlen);
}
