/* urls.c - lists of broker URLs; see include/portico/urls.h */
#include "portico/urls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* s[0..n) for a message: printable, at most about 80 bytes. */
static const char *quote(char *buf, size_t len, const char *s, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < n && o + 4 < len; i++) {
		unsigned char c = (unsigned char)s[i];
		buf[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	if (i < n) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The port after a colon: 1 to 5 digits, 1..65535. */
static int parse_port(const char *p, const char *end, int *port)
{
	long v = 0;

	if (p == end || end - p > 5)
		return -1;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*port = (int)v;
	return 0;
}

/* One URL, s[0..n), blanks already trimmed.  0, or -1 with why. */
static int check_one(const char *s, size_t n, struct pt_url *o, const char **why)
{
	const char *end = s + n, *a, *auth_end, *h, *he, *colon;
	char tmp[sizeof(o->host)];
	struct in6_addr a6;
	struct in_addr a4;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_blank((char)c)) {
			*why = "has a blank inside (separate URLs with commas)";
			return -1;
		}
		if (c == ';') {
			*why = "has a ';' (separate URLs with commas)";
			return -1;
		}
		if (c < 0x20 || c == 0x7f) {
			*why = "has a control character inside";
			return -1;
		}
		if (c >= 0x80) {
			*why = "is not plain ASCII (write a host name in its xn-- form)";
			return -1;
		}
	}
	/* https only: the daemons authenticate each other over TLS, and a
	 * secret or a user's password sent in the clear is given away. */
	if (n < 8 || memcmp(s, "https://", 8) != 0) {
		*why = "is not https:// (Portico speaks TLS only)";
		return -1;
	}
	a = s + 8;
	for (auth_end = a; auth_end < end && !strchr("/?#", *auth_end); auth_end++)
		;
	if (auth_end == a) {
		*why = "has no host";
		return -1;
	}
	if (memchr(a, '@', (size_t)(auth_end - a))) {
		*why = "carries a user name: a broker URL holds no credentials";
		return -1;
	}
	/* The path is a prefix the API's paths are appended to ("/portico"
	 * behind a reverse proxy); a query or fragment would swallow them. */
	if (memchr(auth_end, '?', (size_t)(end - auth_end)) ||
	    memchr(auth_end, '#', (size_t)(end - auth_end))) {
		*why = "has a query or a fragment (expected https://host[:port][/path])";
		return -1;
	}
	o->port = 443;
	if (*a == '[') {
		h = a + 1;
		he = memchr(h, ']', (size_t)(auth_end - h));
		if (!he) {
			*why = "has an IPv6 address without its closing ']'";
			return -1;
		}
		colon = he + 1 < auth_end ? he + 1 : NULL;
		if (colon && *colon != ':') {
			*why = "has text between ']' and the port";
			return -1;
		}
	} else {
		h = a;
		colon = memchr(a, ':', (size_t)(auth_end - a));
		he = colon ? colon : auth_end;
		if (colon && memchr(colon + 1, ':', (size_t)(auth_end - colon - 1))) {
			*why = "has an IPv6 address without brackets ([2001:db8::1]:8443)";
			return -1;
		}
	}
	if (he == h || (size_t)(he - h) >= sizeof(tmp)) {
		*why = he == h ? "has no host" : "has a host name longer than 255 bytes";
		return -1;
	}
	memcpy(tmp, h, (size_t)(he - h));
	tmp[he - h] = '\0';
	if (colon && parse_port(colon + 1, auth_end, &o->port)) {
		*why = "has a bad port (expected 1 to 65535)";
		return -1;
	}
	if (*a == '[') {
		if (inet_pton(AF_INET6, tmp, &a6) != 1) {
			*why = "has no IPv6 address between its brackets";
			return -1;
		}
		o->is_ip = 1;
	} else {
		if (strspn(tmp,
			   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_") !=
		    strlen(tmp)) {
			*why = "has a host with characters no host name has";
			return -1;
		}
		o->is_ip = inet_pton(AF_INET, tmp, &a4) == 1;
	}
	memcpy(o->host, tmp, sizeof(tmp));
	o->s = s;
	o->len = n;
	return 0;
}

int pt_urls_parse(const char *s, struct pt_urls *u, char *err, size_t errlen)
{
	const char *p, *comma, *a, *b;
	const char *why = NULL;
	size_t len = strlen(s), count = 1, i, j;
	char q[96];

	memset(u, 0, sizeof(*u));
	if (len > PT_URLS_LEN) {
		snprintf(err, errlen, "the list is longer than %d bytes", PT_URLS_LEN);
		return -EINVAL;
	}
	for (p = s; (p = strchr(p, ',')) != NULL; p++)
		count++;
	if (count > PT_URLS_MAX) {
		snprintf(err, errlen, "%zu URLs: at most %d are taken", count, PT_URLS_MAX);
		return -EINVAL;
	}
	for (i = 0, a = s; i < count; i++, a = comma + 1) {
		comma = strchr(a, ',');
		if (!comma)
			comma = s + len;
		b = comma;
		while (a < b && is_blank(*a))
			a++;
		while (b > a && is_blank(b[-1]))
			b--;
		if (a == b) {
			if (count == 1)
				snprintf(err, errlen, "no URL");
			else
				snprintf(err, errlen,
					 "URL %zu of %zu is empty (two commas in a row, or one at "
					 "an end)",
					 i + 1, count);
			return -EINVAL;
		}
		if (check_one(a, (size_t)(b - a), &u->v[i], &why)) {
			if (count == 1)
				snprintf(err, errlen, "'%s' %s",
					 quote(q, sizeof(q), a, (size_t)(b - a)), why);
			else
				snprintf(err, errlen, "URL %zu of %zu, '%s', %s", i + 1, count,
					 quote(q, sizeof(q), a, (size_t)(b - a)), why);
			memset(u, 0, sizeof(*u));
			return -EINVAL;
		}
		for (j = 0; j < i; j++) {
			if (u->v[j].len == u->v[i].len && !memcmp(u->v[j].s, a, u->v[i].len)) {
				snprintf(err, errlen, "URL %zu of %zu, '%s', is listed twice",
					 i + 1, count, quote(q, sizeof(q), a, (size_t)(b - a)));
				memset(u, 0, sizeof(*u));
				return -EINVAL;
			}
		}
	}
	u->n = count;
	return 0;
}
