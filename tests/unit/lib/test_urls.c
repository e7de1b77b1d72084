/* test_urls.c - lib/urls.c, broker URL lists, alone and as [gateway] and
 * [sessiond] broker in a configuration. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portico/conf.h"
#include "portico/urls.h"

/* s must parse into n URLs; returns them. */
static struct pt_urls good(const char *s, size_t n)
{
	struct pt_urls u;
	char err[512] = "";

	cr_assert_eq(pt_urls_parse(s, &u, err, sizeof(err)), 0, "'%s' refused: %s", s, err);
	cr_assert_eq(u.n, n, "'%s': %zu URLs, want %zu", s, u.n, n);
	return u;
}

/* s must be refused with a message that holds what (and what2 unless NULL),
 * on one line. */
static void bad(const char *s, const char *what, const char *what2)
{
	struct pt_urls u;
	char err[512] = "";

	cr_assert_eq(pt_urls_parse(s, &u, err, sizeof(err)), -EINVAL, "'%.200s' taken", s);
	cr_assert_not_null(strstr(err, what), "'%.200s': \"%s\" does not say \"%s\"", s, err, what);
	if (what2)
		cr_assert_not_null(strstr(err, what2), "'%.200s': \"%s\" does not say \"%s\"", s,
				   err, what2);
	cr_assert_null(strchr(err, '\n'), "more than one line: %s", err);
	cr_assert_eq(u.n, 0, "a refused list leaves no URL behind");
}

static void expect_url(const struct pt_url *u, const char *text, const char *host, int port,
		       int is_ip)
{
	cr_assert_eq(u->len, strlen(text), "'%.*s' is not '%s'", (int)u->len, u->s, text);
	cr_assert_eq(memcmp(u->s, text, u->len), 0, "'%.*s' is not '%s'", (int)u->len, u->s, text);
	cr_assert_str_eq(u->host, host);
	cr_assert_eq(u->port, port);
	cr_assert_eq(u->is_ip, is_ip, "%s: is_ip %d", text, u->is_ip);
}

Test(urls, one_url_as_before, .timeout = 10)
{
	struct pt_urls u = good("https://127.0.0.1:8443", 1);

	expect_url(&u.v[0], "https://127.0.0.1:8443", "127.0.0.1", 8443, 1);
	u = good("https://broker.example.org", 1);
	expect_url(&u.v[0], "https://broker.example.org", "broker.example.org", 443, 0);
	u = good("https://[2001:db8::1]", 1);
	expect_url(&u.v[0], "https://[2001:db8::1]", "2001:db8::1", 443, 1);
	u = good("https://[::1]:9443", 1);
	expect_url(&u.v[0], "https://[::1]:9443", "::1", 9443, 1);
	/* a path prefix stays (a broker behind a reverse proxy), as before */
	u = good("https://broker.example.org:8080/base", 1);
	expect_url(&u.v[0], "https://broker.example.org:8080/base", "broker.example.org", 8080, 0);
	u = good("https://b_1.example-2.org:1", 1);
	cr_assert_eq(u.v[0].port, 1);
	u = good("https://b:65535", 1);
	cr_assert_eq(u.v[0].port, 65535);
}

Test(urls, lists_with_blanks_around_commas, .timeout = 10)
{
	struct pt_urls u = good("https://b1:8443, https://b2:8443", 2);

	expect_url(&u.v[0], "https://b1:8443", "b1", 8443, 0);
	expect_url(&u.v[1], "https://b2:8443", "b2", 8443, 0);
	u = good("  https://b1:8443 ,\thttps://[::1]:1 ,https://10.0.0.3/p  ", 3);
	expect_url(&u.v[0], "https://b1:8443", "b1", 8443, 0);
	expect_url(&u.v[1], "https://[::1]:1", "::1", 1, 1);
	expect_url(&u.v[2], "https://10.0.0.3/p", "10.0.0.3", 443, 1);
	u = good("https://a,https://b", 2);
	expect_url(&u.v[1], "https://b", "b", 443, 0);
}

Test(urls, sixteen_taken_seventeen_refused, .timeout = 10)
{
	char s[2048];
	size_t o = 0;
	struct pt_urls u;

	for (int i = 1; i <= 16; i++)
		o += (size_t)snprintf(s + o, sizeof(s) - o, "%shttps://b%d:8443", i > 1 ? ", " : "",
				      i);
	u = good(s, 16);
	expect_url(&u.v[15], "https://b16:8443", "b16", 8443, 0);
	snprintf(s + o, sizeof(s) - o, ", https://b17:8443");
	bad(s, "17 URLs", "at most 16");
	/* commas alone count too */
	bad(",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,", "at most 16", NULL);
}

Test(urls, empty_elements, .timeout = 10)
{
	bad("", "no URL", NULL);
	bad("   \t ", "no URL", NULL);
	bad(",", "URL 1 of 2 is empty", NULL);
	bad("https://b1:8443,", "URL 2 of 2 is empty", NULL);
	bad(", https://b1:8443", "URL 1 of 2 is empty", NULL);
	bad("https://b1:8443, ,https://b2:8443", "URL 2 of 3 is empty", NULL);
	bad("https://b1:8443,,https://b2:8443", "URL 2 of 3 is empty", "two commas");
}

Test(urls, each_element_checked_and_named, .timeout = 10)
{
	bad("http://b1:8443", "'http://b1:8443' is not https://", NULL);
	bad("https://b1:8443, http://b2:8443", "URL 2 of 2, 'http://b2:8443', is not https://",
	    NULL);
	bad("https://b1:8443, ftp://x, https://b3", "URL 2 of 3, 'ftp://x'", "https://");
	bad("HTTPS://b1", "is not https://", NULL);
	bad("b1:8443", "is not https://", NULL);
	bad("https://", "has no host", NULL);
	bad("https:///path", "has no host", NULL);
	bad("https://:8443", "has no host", NULL);
	bad("https://b1:", "bad port", NULL);
	bad("https://b1:0", "bad port", NULL);
	bad("https://b1:65536", "bad port", NULL);
	bad("https://b1:99999/", "bad port", NULL);
	bad("https://b1:0008443", "bad port", NULL);
	bad("https://b1:84a3", "bad port", NULL);
	bad("https://b1:-1", "bad port", NULL);
	bad("https://b1:8443:1", "IPv6 address without brackets", NULL);
	bad("https://2001:db8::1", "IPv6 address without brackets", NULL);
	bad("https://[2001:db8::1", "closing ']'", NULL);
	bad("https://[2001:db8::1]x:1", "between ']' and the port", NULL);
	bad("https://[b1.example.org]:1", "no IPv6 address", NULL);
	bad("https://[]:1", "has no host", NULL);
	bad("https://user:pw@b1:8443", "user name", NULL);
	bad("https://b1:8443?x=1", "query or a fragment", NULL);
	bad("https://b1:8443/api#top", "query or a fragment", NULL);
	bad("https://b1:8443/a?b", "query or a fragment", NULL);
	bad("https://b1!:8443", "characters no host name has", NULL);
	bad("https://b1%2e:8443", "characters no host name has", NULL);
	bad("https://b1:8443, https://b1:8443", "URL 2 of 2, 'https://b1:8443', is listed twice",
	    NULL);
}

Test(urls, blanks_and_commas_mixed, .timeout = 10)
{
	/* a forgotten comma */
	bad("https://b1:8443 https://b2:8443", "has a blank inside", "commas");
	bad("https://b1:8443, https://b2 :8443, https://b3", "URL 2 of 3", "blank inside");
	bad("https://b1:8443;https://b2:8443", "has a ';'", "commas");
	bad("https://b1:8443\n, https://b2", "control character", NULL);
	bad("https://b1:8443,\r\nhttps://b2", "URL 2 of 2", "control character");
	bad("https://b\x7f", "control character", NULL);
	bad("https://bröker:8443", "plain ASCII", "xn--");
	/* a comma inside what was meant as one URL */
	bad("https://b1:8443/a,b", "URL 2 of 2, 'b'", "not https://");
}

Test(urls, over_long, .timeout = 10)
{
	char *s = malloc(10 * 1024 + 1), host[300];

	cr_assert_not_null(s);
	/* 10 KiB: refused as a whole, quickly, before any URL is looked at */
	memset(s, 'a', 10 * 1024);
	s[10 * 1024] = '\0';
	memcpy(s, "https://", 8);
	bad(s, "longer than 4096 bytes", NULL);
	/* just at the limit: 4096 bytes is taken when every URL is good */
	memset(s, 'a', 4096);
	s[4096] = '\0';
	memcpy(s, "https://", 8);
	bad(s, "host name longer than 255 bytes", NULL);
	/* a host name of 255 bytes is taken, 256 is not */
	memset(host, 'h', 255);
	host[255] = '\0';
	snprintf(s, 4097, "https://%s:1", host);
	good(s, 1);
	snprintf(s, 4097, "https://%sh:1", host);
	bad(s, "longer than 255 bytes", NULL);
	/* the message quotes a long URL cut short, on one line */
	snprintf(s, 4097, "https://b1, http://%s", host);
	{
		struct pt_urls u;
		char err[512];
		cr_assert_eq(pt_urls_parse(s, &u, err, sizeof(err)), -EINVAL);
		cr_assert_lt(strlen(err), 200, "%s", err);
		cr_assert_not_null(strstr(err, "...'"), "%s", err);
	}
	/* a small error buffer is no overflow */
	{
		struct pt_urls u;
		char err[8];
		cr_assert_eq(pt_urls_parse("http://x", &u, err, sizeof(err)), -EINVAL);
		cr_assert_eq(strlen(err), 7);
	}
	free(s);
}

/* --- the same lists as [gateway] broker and [sessiond] broker ------------- */

static struct pt_conf *load(const char *text, char *err, size_t errlen)
{
	return pt_conf_load_buf("t.conf", text, strlen(text), err, errlen);
}

Test(urls_conf, lists_load, .timeout = 10)
{
	char err[512];
	struct pt_conf *c = load("[gateway]\nbroker = https://b1:8443, https://b2:8443\n"
				 "[sessiond]\nbroker = https://b1:8443,https://b2:8443\n",
				 err, sizeof(err));

	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->gateway.broker, "https://b1:8443, https://b2:8443");
	cr_assert_str_eq(c->sessiond.broker, "https://b1:8443,https://b2:8443");
	pt_conf_free(c);
	/* one URL as before, and the default */
	c = load("[gateway]\nbroker = https://broker.example.org:8080/base\n", err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	cr_assert_str_eq(c->gateway.broker, "https://broker.example.org:8080/base");
	cr_assert_str_eq(c->sessiond.broker, "https://127.0.0.1:8443");
	pt_conf_free(c);
}

static void conf_bad(const char *text, const char *what, const char *what2)
{
	char err[1024];
	struct pt_conf *c = load(text, err, sizeof(err));

	if (c) {
		pt_conf_free(c);
		cr_assert_fail("'%.200s' loaded", text);
	}
	cr_assert_eq(strncmp(err, "t.conf:2: bad value for 'broker': ", 34), 0, "%s", err);
	cr_assert_not_null(strstr(err, what), "\"%s\" does not say \"%s\"", err, what);
	if (what2)
		cr_assert_not_null(strstr(err, what2), "\"%s\" does not say \"%s\"", err, what2);
	cr_assert_not_null(strstr(err, "expected 1 to 16 https:// URLs"), "%s", err);
	cr_assert_null(strchr(err, '\n'), "%s", err);
}

Test(urls_conf, bad_lists_name_the_url, .timeout = 10)
{
	char *s = malloc(12000);

	conf_bad("[gateway]\nbroker = https://b1:8443, http://b2:8443\n",
		 "URL 2 of 2, 'http://b2:8443', is not https://", NULL);
	conf_bad("[sessiond]\nbroker = https://b1:8443,,https://b2\n", "URL 2 of 3 is empty", NULL);
	conf_bad("[sessiond]\nbroker = https://b1:8443, https://b2/x?y\n", "URL 2 of 2", "query");
	conf_bad("[gateway]\nbroker =\n", "no URL", NULL);
	conf_bad("[gateway]\nbroker = ,\n", "URL 1 of 2 is empty", NULL);
	cr_assert_not_null(s);
	strcpy(s, "[gateway]\nbroker = https://b");
	memset(s + strlen(s), 'x', 10240);
	strcpy(s + 28 + 10240, "\n");
	conf_bad(s, "longer than 4096 bytes", NULL);
	strcpy(s, "[gateway]\nbroker = ");
	for (int i = 0; i < 17; i++)
		sprintf(s + strlen(s), "%shttps://b%d", i ? "," : "", i);
	strcat(s, "\n");
	conf_bad(s, "17 URLs", NULL);
	free(s);
}
