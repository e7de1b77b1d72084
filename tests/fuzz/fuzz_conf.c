/*
 * fuzz_conf - libFuzzer target for the configuration reader: the INI
 * reader (lib/ini.c) and the whole load of portico.conf from memory
 * (pt_conf_load_buf, lib/conf.c), as a daemon reads its -c FILE.
 *
 *   make fuzz                     builds build-fuzz/fuzz/fuzz_conf (clang)
 *   build-fuzz/fuzz/fuzz_conf -runs=1000000 tests/fuzz/corpus/fuzz_conf
 *
 * Whatever the input, besides no crash, no leak, no read outside it:
 *  - every item the reader hands on is well formed (a key without blanks,
 *    '=' or ':'; values trimmed, without their comment and without control
 *    bytes; a continued line after a key of that name; lines in order);
 *  - the items written back as INI text read back as the same items;
 *  - the load agrees with the reader: a text the reader refuses at line L
 *    is refused at line L or earlier, with one printable line naming the
 *    "file"; loading twice gives the same configuration or the same error;
 *  - every pool that loads passes the admin API's checks and reads back
 *    through it key by key (pt_conf_pool_value / pt_conf_pool_set) to the
 *    same values.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/conf.h"
#include "portico/ini.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                           \
	do {                                                                               \
		if (!(c)) {                                                                \
			fprintf(stderr, "fuzz_conf: %s:%d: %s\n", __FILE__, __LINE__, #c); \
			abort();                                                           \
		}                                                                          \
	} while (0)

/* The items of one reading as text: kind, name and value of each, NUL
 * separated (line numbers kept apart: a text written back has others). */
struct items {
	char *buf;
	size_t len, cap;
	int last_line;
	size_t prev_key; /* offset in buf of the name of the last PT_INI_KEY */
	bool have_key;
};

static void items_add(struct items *it, const char *s, size_t n)
{
	if (it->len + n + 1 > it->cap) {
		size_t cap = it->cap ? it->cap : 4096;
		while (cap < it->len + n + 1)
			cap *= 2;
		CHECK((it->buf = realloc(it->buf, cap)) != NULL);
		it->cap = cap;
	}
	memcpy(it->buf + it->len, s, n);
	it->buf[it->len + n] = '\0';
	it->len += n + 1;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Text of an item: no byte below 0x20 but tab, no DEL. */
static void check_text(const char *s)
{
	for (; *s; s++)
		CHECK(((unsigned char)*s >= 0x20 || *s == '\t') && *s != 0x7f);
}

/* A value: trimmed, and no inline comment left in it. */
static void check_value(const char *v)
{
	size_t n = strlen(v);

	check_text(v);
	CHECK(n == 0 || (!blank(v[0]) && !blank(v[n - 1])));
	for (size_t i = 1; i < n; i++)
		CHECK(!(v[i] == ';' && blank(v[i - 1])));
}

static int items_cb(void *arg, const struct pt_ini_item *item)
{
	struct items *it = arg;
	char kind = (char)('0' + item->kind);

	CHECK(item->line >= 1 && item->line > it->last_line);
	it->last_line = item->line;
	check_text(item->name);
	switch (item->kind) {
	case PT_INI_SECTION:
		CHECK(!strchr(item->name, ']') && item->value[0] == '\0');
		it->have_key = false;
		break;
	case PT_INI_KEY:
		CHECK(strcspn(item->name, " \t=:") == strlen(item->name));
		CHECK(item->name[0] != ';' && item->name[0] != '#' && item->name[0] != '[');
		check_value(item->value);
		CHECK(strlen(item->name) <= PT_INI_LINE_MAX);
		it->prev_key = it->len + 2; /* past the kind and its NUL */
		it->have_key = true;
		break;
	case PT_INI_MORE:
		check_value(item->value);
		CHECK(item->value[0] && item->value[0] != '[' && item->value[0] != ';' &&
		      item->value[0] != '#' && !strchr(item->value, '='));
		CHECK(it->have_key && !strcmp(item->name, it->buf + it->prev_key));
		break;
	default:
		CHECK(!"unknown kind");
	}
	items_add(it, &kind, 1);
	items_add(it, item->name, strlen(item->name));
	items_add(it, item->value, strlen(item->value));
	return 0;
}

static int read_items(const char *text, size_t len, struct items *it, struct pt_ini_error *err)
{
	memset(it, 0, sizeof(*it));
	return pt_ini_parse(text, len, items_cb, it, err);
}

/* The items written back as INI text: "[name]", "key=value" and " value"
 * lines, each no longer than the line it came from.  A first blank line
 * keeps a key that starts with U+FEFF from passing for a byte order mark. */
static char *items_text(const struct items *it, size_t *len)
{
	char *out = malloc(it->len * 2 + 2), *o = out;
	const char *p = it->buf, *end = it->buf ? it->buf + it->len : NULL;

	CHECK(out != NULL);
	*o++ = '\n';
	while (p < end) {
		char kind = p[0] - '0';
		const char *name = p + 2, *value = name + strlen(name) + 1;
		size_t nl = strlen(name), vl = strlen(value);

		if (kind == PT_INI_SECTION) {
			*o++ = '[';
			memcpy(o, name, nl), o += nl;
			*o++ = ']';
		} else if (kind == PT_INI_KEY) {
			memcpy(o, name, nl), o += nl;
			*o++ = '=';
			memcpy(o, value, vl), o += vl;
		} else {
			*o++ = ' ';
			memcpy(o, value, vl), o += vl;
		}
		*o++ = '\n';
		p = value + vl + 1;
	}
	*len = (size_t)(o - out);
	return out;
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static bool same_list(const struct pt_strlist *a, const struct pt_strlist *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return a->v && b->v && !a->v[a->n] && !b->v[b->n];
}

/* Every key of a pool, compared through the admin API's view of it. */
static bool same_pool(const struct pt_pool_conf *a, const struct pt_pool_conf *b)
{
	char va[512], vb[512];
	const char *ka, *kb;
	int ta, tb;

	if (strcmp(a->name, b->name))
		return false;
	for (size_t i = 0;; i++) {
		ta = pt_conf_pool_value(a, i, &ka, va, sizeof(va));
		tb = pt_conf_pool_value(b, i, &kb, vb, sizeof(vb));
		if (ta != tb)
			return false;
		if (ta < 0)
			return true;
		if (strcmp(ka, kb))
			return false;
		if (ta == PT_CONF_VALUE_LIST) {
			if (!same_list(pt_conf_pool_list(a, ka), pt_conf_pool_list(b, kb)))
				return false;
		} else if (ta != PT_CONF_VALUE_UNSET && strcmp(va, vb)) {
			return false;
		}
	}
}

/* The keys known when this was written; the pools in full. */
static bool same_conf(const struct pt_conf *a, const struct pt_conf *b)
{
#define S(f) same_str(a->f, b->f)
#define I(f) (a->f == b->f)
#define L(f) same_list(&a->f, &b->f)
	if (!(S(tls.cert) && S(tls.key) && S(tls.ca) && S(tls.ciphers) && S(tls.ciphersuites)))
		return false;
	if (!(S(broker.listen) && S(broker.store) && S(broker.pam_service) && S(broker.user) &&
	      S(broker.admin_group) && S(broker.gateway_secret) && S(broker.host_secret) &&
	      S(broker.broker_secret) && L(broker.gateways) && S(broker.cert) && S(broker.key) &&
	      I(broker.token_ttl_ms) && I(broker.ticket_ttl_ms) && I(broker.fail_delay_ms) &&
	      I(broker.login_attempts) && I(broker.login_window_ms)))
		return false;
	if (!(S(gateway.broker) && S(gateway.rdp_listen) && S(gateway.vnc_listen) &&
	      S(gateway.public_host) && S(gateway.user) && I(gateway.idle_timeout_ms) &&
	      I(gateway.handshake_timeout_ms) && I(gateway.max_connections) &&
	      I(gateway.vnc_anon_tls) && I(gateway.input_report_ms) && I(gateway.max_pending) &&
	      I(gateway.max_pending_per_addr) && I(gateway.rdp_max_logins) && S(gateway.cert) &&
	      S(gateway.key)))
		return false;
	if (!(S(sessiond.broker) && S(sessiond.listen) && S(sessiond.name) && S(sessiond.address) &&
	      S(sessiond.user) && S(sessiond.run_dir) && S(sessiond.state_dir) &&
	      S(sessiond.pam_service) && S(sessiond.xsession) && S(sessiond.vnc_listen) &&
	      S(sessiond.gateway_user) && I(sessiond.heartbeat_ms) && S(sessiond.xvnc) &&
	      S(sessiond.qemu) && I(sessiond.vm_memory_mb) && S(sessiond.vm_user) &&
	      S(sessiond.vm_accel) && S(sessiond.broker_name) && S(sessiond.image_dir) &&
	      L(sessiond.allow_users) && S(sessiond.cert) && S(sessiond.key)))
		return false;
#undef S
#undef I
#undef L
	if (a->npools != b->npools)
		return false;
	for (size_t i = 0; i < a->npools; i++)
		if (!same_pool(&a->pools[i], &b->pools[i]) || a->pools[i].line != b->pools[i].line)
			return false;
	return true;
}

/* A pool that loaded passes the admin API's checks and is rebuilt from
 * its values as text, key by key, into the same pool. */
static void check_pool_round_trip(const struct pt_pool_conf *pc)
{
	struct pt_pool_conf copy;
	char err[512], buf[512], joined[8192];
	const char *key;
	int type;

	CHECK(pt_conf_pool_name_valid(pc->name));
	CHECK(pt_conf_pool_check(pc, err, sizeof(err)) == 0);
	CHECK(pt_conf_pool_init(&copy, pc->name) == 0);
	for (size_t i = 0; (type = pt_conf_pool_value(pc, i, &key, buf, sizeof(buf))) > 0; i++) {
		const char *text = buf;

		if (type == PT_CONF_VALUE_UNSET) {
			text = "";
		} else if (type == PT_CONF_VALUE_LIST) {
			const struct pt_strlist *l = pt_conf_pool_list(pc, key);
			size_t o = 0;

			CHECK(l != NULL);
			joined[0] = '\0';
			for (size_t k = 0; k < l->n && o < sizeof(joined); k++) {
				CHECK(l->v[k][0] && !strchr(l->v[k], ','));
				check_value(l->v[k]);
				o += (size_t)snprintf(joined + o, sizeof(joined) - o, "%s%s",
						      k ? ", " : "", l->v[k]);
			}
			if (o >= sizeof(joined))
				goto out; /* too long to rebuild here; nothing wrong */
			text = joined;
		} else if (strlen(buf) == sizeof(buf) - 1) {
			goto out; /* cut by buf: cannot be set back whole */
		}
		CHECK(pt_conf_pool_set(&copy, key, text, err, sizeof(err)) == 0);
	}
	CHECK(type == -ENOENT);
	CHECK(same_pool(pc, &copy));
	CHECK(pt_conf_pool_check(&copy, err, sizeof(err)) == 0);
out:
	pt_conf_pool_clear(&copy);
}

/* One line, "fuzz:LINE: ..." or "fuzz: ...", printable; its line. */
static int check_message(const char *err)
{
	long line = 0;
	char *end;

	CHECK(!strncmp(err, "fuzz:", 5) && strlen(err) > 7);
	for (const char *e = err; *e; e++)
		CHECK((unsigned char)*e >= 0x20 && *e != 0x7f);
	if (err[5] != ' ') {
		line = strtol(err + 5, &end, 10);
		CHECK(end > err + 5 && *end == ':' && line >= 1);
	}
	return (int)line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	struct items a, c;
	struct pt_ini_error ea, ec;
	struct pt_conf *ca, *cb;
	char erra[512], errb[512], *back;
	size_t blen;
	int ra, rc;

	/* the reader, then its items written back and read again (the load
	 * below reads twice more, and must agree) */
	ra = read_items(text, size, &a, &ea);
	CHECK(ra == 0 || ra == -EINVAL || ra == -EFBIG);
	CHECK((ra == 0) == (ea.msg[0] == '\0'));
	if (ra)
		CHECK(ea.line >= 1 || ra == -EFBIG);
	back = items_text(&a, &blen);
	rc = read_items(back, blen, &c, &ec);
	CHECK(rc == 0);
	CHECK(c.len == a.len && (a.len == 0 || !memcmp(a.buf, c.buf, a.len)));
	free(back);
	free(a.buf);
	free(c.buf);

	/* the whole load, twice */
	ca = pt_conf_load_buf("fuzz", data, size, erra, sizeof(erra));
	cb = pt_conf_load_buf("fuzz", data, size, errb, sizeof(errb));
	CHECK(!ca == !cb);
	if (!ca) {
		int line = check_message(erra);

		CHECK(!strcmp(erra, errb));
		/* refused by the reader: at that line or before */
		if (ra)
			CHECK(line <= ea.line);
		return 0;
	}
	CHECK(ra == 0 && erra[0] == '\0' && errb[0] == '\0');
	CHECK(ca->path == NULL);
	CHECK(same_conf(ca, cb));
	for (size_t i = 0; i < ca->npools; i++) {
		CHECK(pt_conf_pool(ca, ca->pools[i].name) == &ca->pools[i]);
		check_pool_round_trip(&ca->pools[i]);
	}
	pt_conf_free(ca);
	pt_conf_free(cb);
	return 0;
}
