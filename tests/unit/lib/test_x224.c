/* The X.224 Connection Request: what xfreerdp and mstsc send first. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "portico/x224.h"

/* A request as a client builds it: TPKT, CR TPDU, the cookie line (may be
 * ""), RDP_NEG_REQ when protocols >= 0, correlation info when corr. */
static size_t make_cr(uint8_t *b, const char *line, long protocols, int corr)
{
	size_t n = 11, l = strlen(line);

	memcpy(b, "\x03\x00\x00\x00\x00\xe0\x00\x00\x00\x00\x00", 11);
	memcpy(b + n, line, l);
	n += l;
	if (protocols >= 0) {
		uint8_t neg[8] = { 0x01,
				   corr ? 0x08 : 0x00,
				   0x08,
				   0x00,
				   (uint8_t)protocols,
				   (uint8_t)(protocols >> 8),
				   0,
				   0 };
		memcpy(b + n, neg, 8);
		n += 8;
	}
	if (corr) {
		memset(b + n, 0xab, 36);
		b[n] = 0x06;
		b[n + 1] = 0;
		b[n + 2] = 36;
		b[n + 3] = 0;
		n += 36;
	}
	b[2] = (uint8_t)(n >> 8);
	b[3] = (uint8_t)n;
	b[4] = (uint8_t)(n - 5);
	return n;
}

static const char TICKET[] = "Xk2aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789-_ab";

Test(x224, routing_token_and_negotiation, .timeout = 5)
{
	uint8_t b[512];
	struct pt_x224_cr cr;
	char line[100];
	size_t n;

	snprintf(line, sizeof(line), "Cookie: msts=%s\r\n", TICKET);
	n = make_cr(b, line, 3, 0);
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), (ssize_t)n);
	cr_assert_str_eq(cr.token, TICKET);
	cr_assert_str_eq(cr.cookie, "");
	cr_assert(cr.has_neg);
	cr_assert_eq(cr.protocols, 3);
	/* Every shorter prefix asks for more. */
	for (size_t k = 0; k < n; k++)
		cr_assert_eq(pt_x224_parse_cr(b, k, &cr), 0, "prefix of %zu", k);
}

Test(x224, cookie_none_and_correlation, .timeout = 5)
{
	uint8_t b[512];
	struct pt_x224_cr cr;
	size_t n = make_cr(b, "Cookie: mstshash=alice\r\n", 1, 1);

	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), (ssize_t)n);
	cr_assert_str_eq(cr.cookie, "alice");
	cr_assert_str_eq(cr.token, "");
	cr_assert_eq(cr.neg_flags, 0x08);
	n = make_cr(b, "", -1, 0); /* an old client: nothing after the TPDU */
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), (ssize_t)n);
	cr_assert_not(cr.has_neg);
}

Test(x224, rewrite_puts_the_user_in_place_of_the_ticket, .timeout = 5)
{
	uint8_t b[512], out[512];
	struct pt_x224_cr cr, again;
	char line[100];
	size_t n;
	ssize_t m;

	snprintf(line, sizeof(line), "Cookie: msts=%s\r\n", TICKET);
	n = make_cr(b, line, 3, 1);
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), (ssize_t)n);
	m = pt_x224_rewrite_cr(b, &cr, "alice", out, sizeof(out));
	cr_assert_gt(m, 0);
	cr_assert_eq(pt_x224_parse_cr(out, (size_t)m, &again), m);
	cr_assert_str_eq(again.cookie, "alice");
	cr_assert_str_eq(again.token, "");
	cr_assert_eq(again.protocols, 3);
	cr_assert_null(memmem(out, (size_t)m, TICKET, strlen(TICKET)), "the ticket went on");
	cr_assert_arr_eq(out + m - 44, b + n - 44, 44, "negotiation and correlation unchanged");
	m = pt_x224_rewrite_cr(b, &cr, NULL, out, sizeof(out));
	cr_assert_eq(pt_x224_parse_cr(out, (size_t)m, &again), m);
	cr_assert_str_eq(again.cookie, "");
	cr_assert_eq(pt_x224_rewrite_cr(b, &cr, "alice", out, 20), -ENOSPC);
}

Test(x224, hostile_requests_are_refused, .timeout = 5)
{
	uint8_t b[70000], big[300];
	struct pt_x224_cr cr;
	size_t n;

	/* Not TPKT at all: HTTP, a TLS ClientHello. */
	cr_assert_eq(pt_x224_parse_cr((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &cr), -EPROTO);
	cr_assert_eq(pt_x224_parse_cr((const uint8_t *)"\x16\x03\x01\x02\x00", 5, &cr), -EPROTO);
	/* Length lies: TPKT says less than the headers, LI disagrees. */
	n = make_cr(b, "Cookie: mstshash=a\r\n", 1, 0);
	b[3] = 6;
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), -EPROTO);
	n = make_cr(b, "Cookie: mstshash=a\r\n", 1, 0);
	b[4] = (uint8_t)(b[4] + 1);
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), -EPROTO);
	/* Not a CR TPDU (a Data TPDU). */
	n = make_cr(b, "", 1, 0);
	b[5] = 0xf0;
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), -EPROTO);
	/* A cookie line without CRLF, and one longer than kept. */
	n = make_cr(b, "Cookie: mstshash=alice", -1, 0);
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), -EPROTO);
	memset(big, 'a', sizeof(big));
	memcpy(big, "Cookie: msts=", 13);
	memcpy(big + sizeof(big) - 3, "\r\n", 3);
	n = make_cr(b, (const char *)big, 1, 0);
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), -EPROTO);
	/* A control character in the cookie. */
	n = make_cr(b, "Cookie: mstshash=al\x01ice\r\n", 1, 0);
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), -EPROTO);
	/* RDP_NEG_REQ cut short, of another type, or followed by junk. */
	n = make_cr(b, "", 1, 0);
	b[11] = 0x02;
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), -EPROTO);
	n = make_cr(b, "", 1, 0);
	b[13] = 9;
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), -EPROTO);
	n = make_cr(b, "", 1, 0);
	memcpy(b + n, "junk", 4);
	n += 4;
	b[2] = (uint8_t)(n >> 8), b[3] = (uint8_t)n, b[4] = (uint8_t)(n - 5);
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), -EPROTO);
	/* A 64 KiB line in a TPKT that claims it all. */
	memset(b, 'x', sizeof(b));
	n = make_cr(b, "Cookie: msts=", -1, 0);
	n = 0xffff;
	b[2] = 0xff, b[3] = 0xff, b[4] = 0xff;
	cr_assert_eq(pt_x224_parse_cr(b, n, &cr), -EPROTO);
}

Test(x224, refusal, .timeout = 5)
{
	uint8_t out[PT_X224_FAILURE_LEN];

	pt_x224_neg_failure(PT_X224_SSL_NOT_ALLOWED_BY_SERVER, out);
	cr_assert_eq(out[0], 3);
	cr_assert_eq(out[3], PT_X224_FAILURE_LEN);
	cr_assert_eq(out[5], 0xd0, "a Connection Confirm");
	cr_assert_eq(out[11], 0x03, "RDP_NEG_FAILURE");
	cr_assert_eq(out[15], 2);
}
