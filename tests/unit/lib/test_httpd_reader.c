/* test_httpd_reader.c - the HTTPS server's request reader (httpd.h,
 * lib/httpd_request.c) fed bytes in-process: what a handler gets, the
 * limits and their statuses, keep-alive and requests sent ahead. */
#include <criterion/criterion.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>

#include "portico/httpd.h"

static int begun;

static void on_begin(struct pt_http_req *req, void *owner)
{
	req->id = 42;
	begun++;
}

/* Feed text whole; returns the result, *used the bytes taken. */
static enum pt_http_read feed(struct pt_http_reader *rd, const char *text, size_t len,
			      size_t *used)
{
	return pt_http_reader_feed(rd, text, len, used);
}

static char *repeat(char ch, size_t n)
{
	char *s = malloc(n + 1);

	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

Test(httpd_reader, a_post_with_a_body, .timeout = 10)
{
	static const char req[] = "POST /api/v1/login?x=1&y=a%20b HTTP/1.1\r\n"
				  "Host: broker\r\nContent-Type: application/json\r\n"
				  "Authorization: Bearer tok\r\nContent-Length: 13\r\n\r\n"
				  "{\"a\":\"hello\"}";
	struct pt_http_reader *rd = pt_http_reader_new(on_begin, NULL);
	struct pt_http_req *r;
	char v[16];
	size_t used;

	begun = 0;
	cr_assert_eq(feed(rd, req, sizeof(req) - 1, &used), PT_HTTP_READ_REQUEST);
	cr_assert_eq(used, sizeof(req) - 1);
	cr_assert_eq(begun, 1);
	r = pt_http_reader_take(rd);
	cr_assert_eq(r->id, 42, "the begin callback did not see the request");
	cr_assert_eq(r->method, HTTP_POST);
	cr_assert_str_eq(r->path, "/api/v1/login");
	cr_assert_str_eq(r->query, "x=1&y=a%20b");
	cr_assert_str_eq(r->content_type, "application/json");
	cr_assert_str_eq(r->authorization, "Bearer tok");
	cr_assert_str_eq(pt_http_bearer(r), "tok");
	cr_assert_eq(r->body_len, 13);
	cr_assert_str_eq(r->body, "{\"a\":\"hello\"}");
	cr_assert_eq(pt_http_query(r, "y", v, sizeof(v)), 0);
	cr_assert_str_eq(v, "a b");
	cr_assert_eq(pt_http_query(r, "z", v, sizeof(v)), -ENOENT);
	cr_assert(pt_http_reader_keepalive(rd));
	pt_http_req_free(r);
	pt_http_reader_free(rd);
}

Test(httpd_reader, byte_by_byte_is_the_same, .timeout = 10)
{
	static const char req[] = "PUT /api/v1/admin/pools/x HTTP/1.1\r\nAuthorization: Bea"
				  "rer t\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n"
				  "3\r\nefg\r\n0\r\n\r\n";
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	struct pt_http_req *r;
	size_t used, i;

	for (i = 0; i + 1 < sizeof(req) - 1; i++)
		cr_assert_eq(feed(rd, req + i, 1, &used), PT_HTTP_READ_MORE, "byte %zu", i);
	cr_assert_eq(feed(rd, req + i, 1, &used), PT_HTTP_READ_REQUEST);
	r = pt_http_reader_take(rd);
	cr_assert_eq(r->method, HTTP_PUT);
	cr_assert_str_eq(r->path, "/api/v1/admin/pools/x");
	cr_assert_str_eq(r->authorization, "Bearer t");
	cr_assert_str_eq(r->body, "abcdefg");
	pt_http_req_free(r);
	pt_http_reader_free(rd);
}

/* Two requests in one read: the first is taken, the rest waits for its
 * answer, then makes the second. */
Test(httpd_reader, requests_sent_ahead_come_one_at_a_time, .timeout = 10)
{
	static const char two[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
				  "GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	struct pt_http_req *r;
	size_t used, used2;

	cr_assert_eq(feed(rd, two, sizeof(two) - 1, &used), PT_HTTP_READ_REQUEST);
	cr_assert_eq(used, strlen("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
	r = pt_http_reader_take(rd);
	cr_assert_str_eq(r->path, "/a");
	cr_assert_str_eq(r->body, "", "a request without a body has an empty one");
	cr_assert(pt_http_reader_keepalive(rd));
	pt_http_req_free(r);
	pt_http_reader_next(rd);
	cr_assert_eq(feed(rd, two + used, sizeof(two) - 1 - used, &used2), PT_HTTP_READ_REQUEST);
	cr_assert_eq(used + used2, sizeof(two) - 1);
	r = pt_http_reader_take(rd);
	cr_assert_str_eq(r->path, "/b");
	cr_assert_not(pt_http_reader_keepalive(rd), "Connection: close kept alive");
	pt_http_req_free(r);
	pt_http_reader_free(rd);
}

Test(httpd_reader, http_1_0_closes_unless_asked, .timeout = 10)
{
	static const char a[] = "GET / HTTP/1.0\r\n\r\n";
	static const char b[] = "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	size_t used;

	cr_assert_eq(feed(rd, a, sizeof(a) - 1, &used), PT_HTTP_READ_REQUEST);
	cr_assert_not(pt_http_reader_keepalive(rd));
	pt_http_reader_next(rd); /* frees the request not taken */
	cr_assert_eq(feed(rd, b, sizeof(b) - 1, &used), PT_HTTP_READ_REQUEST);
	cr_assert(pt_http_reader_keepalive(rd));
	pt_http_reader_free(rd);
}

/* feed text in one piece and expect ERROR with status */
static void expect_error(const char *text, size_t len, int status)
{
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	struct pt_http_req *r;
	size_t used;

	cr_assert_eq(feed(rd, text, len, &used), PT_HTTP_READ_ERROR, "%.60s", text);
	cr_assert_eq(pt_http_reader_status(rd), status, "%.60s", text);
	cr_assert_str_neq(pt_http_reader_why(rd), "");
	r = pt_http_reader_take(rd);
	cr_assert_not_null(r, "nothing to answer the error with");
	pt_http_req_free(r);
	pt_http_reader_free(rd);
}

Test(httpd_reader, limits_and_their_statuses, .timeout = 10)
{
	char *big = repeat('a', 3000), *text;
	size_t n = 80000;

	text = malloc(n);
	/* URL */
	snprintf(text, n, "GET /%s HTTP/1.1\r\n\r\n", big);
	expect_error(text, strlen(text), 414);
	/* names and values over 16 KiB, in many small headers (26 bytes each) */
	strcpy(text, "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 700; i++)
		strcat(text, "X-Junk: 0123456789abcdefghij\r\n");
	strcat(text, "\r\n");
	expect_error(text, strlen(text), 431);
	/* one Authorization header longer than its field */
	free(big);
	big = repeat('t', 1100);
	snprintf(text, n, "GET / HTTP/1.1\r\nAuthorization: Bearer %s\r\n\r\n", big);
	expect_error(text, strlen(text), 431);
	/* a body announced over 64 KiB, before any of it */
	snprintf(text, n, "POST / HTTP/1.1\r\nContent-Length: 70000\r\n\r\n");
	expect_error(text, strlen(text), 413);
	/* chunks adding up to more */
	snprintf(text, n, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n");
	size_t l = strlen(text);
	memset(text + l, 'b', 0x10000);
	memcpy(text + l + 0x10000, "\r\n1\r\nc\r\n", 8);
	expect_error(text, l + 0x10000 + 8, 413);
	/* malformed: a bad header line, a bad version, a URL without a path */
	strcpy(text, "GET / HTTP/1.1\r\nNo colon here\r\n\r\n");
	expect_error(text, strlen(text), 400);
	strcpy(text, "GET / HTTP/9.x\r\n\r\n");
	expect_error(text, strlen(text), 400);
	strcpy(text, "GET http://host HTTP/1.1\r\n\r\n");
	expect_error(text, strlen(text), 400);
	/* both Content-Length and chunked: request smuggling */
	strcpy(text, "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
		     "0\r\n\r\n");
	expect_error(text, strlen(text), 400);
	free(text);
	free(big);
}

Test(httpd_reader, just_under_the_limits_is_taken, .timeout = 10)
{
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	char *path = repeat('p', PT_HTTP_PATH_MAX - 2), *body = repeat('b', PT_HTTP_BODY_MAX);
	char *text = malloc(PT_HTTP_BODY_MAX + 4096);
	struct pt_http_req *r;
	size_t used;

	snprintf(text, PT_HTTP_BODY_MAX + 4096, "POST /%s HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s",
		 path, PT_HTTP_BODY_MAX, body);
	cr_assert_eq(feed(rd, text, strlen(text), &used), PT_HTTP_READ_REQUEST);
	r = pt_http_reader_take(rd);
	cr_assert_eq(strlen(r->path), PT_HTTP_PATH_MAX - 1);
	cr_assert_eq(r->body_len, PT_HTTP_BODY_MAX);
	pt_http_req_free(r);
	pt_http_reader_free(rd);
	free(path);
	free(body);
	free(text);
}

Test(httpd_reader, garbage_before_any_request_has_nothing_to_answer, .timeout = 10)
{
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	size_t used;

	cr_assert_eq(feed(rd, "\x16\x03\x01\x02\x00", 5, &used), PT_HTTP_READ_GARBAGE);
	cr_assert_null(pt_http_reader_take(rd));
	pt_http_reader_free(rd);
	/* Blank lines before a request are allowed (RFC 9112, 2.2). */
	rd = pt_http_reader_new(NULL, NULL);
	cr_assert_eq(feed(rd, "\r\n\r\nGET / HTTP/1.1\r\n\r\n", 22, &used), PT_HTTP_READ_REQUEST);
	pt_http_reader_free(rd);
}

Test(httpd_reader, a_request_cut_short_is_busy_until_taken, .timeout = 10)
{
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	struct pt_http_req *r;
	size_t used;

	cr_assert_not(pt_http_reader_busy(rd));
	cr_assert_eq(feed(rd, "POST /x HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", 44, &used),
		     PT_HTTP_READ_MORE);
	cr_assert(pt_http_reader_busy(rd));
	r = pt_http_reader_take(rd); /* what a timeout answers 408 */
	cr_assert_not_null(r);
	cr_assert_not(pt_http_reader_busy(rd));
	pt_http_req_free(r);
	pt_http_reader_free(rd);
	pt_http_reader_free(NULL);
	pt_http_req_free(NULL);
}

/* The status cannot depend on how TCP cut the bytes (found by fuzz_http: a
 * URL over the limit with a byte no URL may hold after 2 KiB got 400 whole
 * and 414 cut in two). */
static int status_cut_at(const char *text, size_t len, size_t cut)
{
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	enum pt_http_read r = PT_HTTP_READ_MORE;
	size_t used;
	int status;

	if (cut > 0 && cut < len)
		r = pt_http_reader_feed(rd, text, cut, &used);
	else
		cut = 0;
	if (r == PT_HTTP_READ_MORE)
		r = pt_http_reader_feed(rd, text + cut, len - cut, &used);
	cr_assert_eq(r, PT_HTTP_READ_ERROR, "cut at %zu", cut);
	status = pt_http_reader_status(rd);
	pt_http_req_free(pt_http_reader_take(rd));
	pt_http_reader_free(rd);
	return status;
}

Test(httpd_reader, the_status_does_not_depend_on_the_cuts, .timeout = 10)
{
	char *u = repeat('u', 2100), text[4096];
	size_t len;

	/* over the URL limit, then malformed: 400 however it arrives */
	len = (size_t)snprintf(text, sizeof(text), "GET /%s\001uu HTTP/1.1\r\n\r\n", u);
	for (size_t cut = 0; cut < len; cut += 7)
		cr_assert_eq(status_cut_at(text, len, cut), 400, "cut at %zu", cut);
	/* over the URL limit and well formed: 414 however it arrives */
	len = (size_t)snprintf(text, sizeof(text), "GET /%s HTTP/1.1\r\n\r\n", u);
	for (size_t cut = 0; cut < len; cut += 7)
		cr_assert_eq(status_cut_at(text, len, cut), 414, "cut at %zu", cut);
	/* a header value over its field, then a malformed header: 400 */
	free(u);
	u = repeat('t', 1100);
	len = (size_t)snprintf(text, sizeof(text),
			       "GET / HTTP/1.1\r\nAuthorization: %s\r\nbad header\r\n\r\n", u);
	for (size_t cut = 0; cut < len; cut += 5)
		cr_assert_eq(status_cut_at(text, len, cut), 400, "cut at %zu", cut);
	free(u);
}

/* Feed text in pieces of `step` bytes until a request is complete;
 * returns the result and in *total the bytes taken in all. */
static enum pt_http_read feed_steps(struct pt_http_reader *rd, const char *text, size_t len,
				    size_t step, size_t *total)
{
	enum pt_http_read res = PT_HTTP_READ_MORE;
	size_t off = 0, used;

	while (off < len && res == PT_HTTP_READ_MORE) {
		size_t n = len - off < step ? len - off : step;
		res = pt_http_reader_feed(rd, text + off, n, &used);
		off += used;
	}
	*total = off;
	return res;
}

Test(httpd_reader, every_header_is_kept_for_lookup, .timeout = 10)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: gw.example\r\n"
				  "Cookie: portico_csrf=abc; portico_session=t\r\n"
				  "X-CSRF-Token: abc\r\nX-Empty:\r\n\r\n";
	for (size_t step = 1; step <= sizeof(req); step += 7) {
		struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
		struct pt_http_req *r;
		size_t used;

		cr_assert_eq(feed_steps(rd, req, sizeof(req) - 1, step, &used),
			     PT_HTTP_READ_REQUEST);
		r = pt_http_reader_take(rd);
		cr_assert_str_eq(pt_http_header(r, "host"), "gw.example");
		cr_assert_str_eq(pt_http_header(r, "COOKIE"),
				 "portico_csrf=abc; portico_session=t");
		cr_assert_str_eq(pt_http_header(r, "x-csrf-token"), "abc");
		cr_assert_str_eq(pt_http_header(r, "x-empty"), "");
		cr_assert_null(pt_http_header(r, "origin"));
		pt_http_req_free(r);
		pt_http_reader_free(rd);
	}
}

Test(httpd_reader, rdg_methods_only_when_asked, .timeout = 10)
{
	static const char in[] = "RDG_IN_DATA /remoteDesktopGateway/ HTTP/1.1\r\n"
				 "Host: gw\r\nRDG-Connection-Id: {1}\r\n"
				 "Content-Length: 1073741824\r\n\r\n"
				 "\x01\x02tunnel bytes";
	static const char out[] = "RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n"
				  "Host: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
	const size_t in_hdr = strstr(in, "\r\n\r\n") + 4 - in;
	const size_t out_hdr = strstr(out, "\r\n\r\n") + 4 - out;

	for (size_t step = 1; step <= sizeof(in); step++) {
		struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
		struct pt_http_req *r;
		size_t used;

		/* Off (the broker's): not HTTP it knows. */
		cr_assert_neq(feed_steps(rd, in, sizeof(in) - 1, step, &used),
			      PT_HTTP_READ_REQUEST);
		pt_http_reader_free(rd);

		rd = pt_http_reader_new(NULL, NULL);
		pt_http_reader_rdg(rd, 1);
		cr_assert_eq(feed_steps(rd, in, sizeof(in) - 1, step, &used),
			     PT_HTTP_READ_REQUEST, "step %zu", step);
		cr_assert_eq(used, in_hdr, "step %zu: the tunnel's bytes were taken", step);
		r = pt_http_reader_take(rd);
		cr_assert_eq(r->rdg, PT_HTTP_RDG_IN);
		cr_assert_eq(r->method, HTTP_GET);
		cr_assert_str_eq(r->path, "/remoteDesktopGateway/");
		cr_assert_str_eq(pt_http_header(r, "rdg-connection-id"), "{1}");
		cr_assert_eq(r->body_len, 0);
		/* HTTP/1.1: the connection may carry another (FreeRDP's first
		 * RDG_IN_DATA is answered, then the tunnel's comes). */
		cr_assert(pt_http_reader_keepalive(rd));
		pt_http_req_free(r);

		/* The next request on another reader: OUT, chunked. */
		pt_http_reader_next(rd);
		cr_assert_eq(feed_steps(rd, out, sizeof(out) - 1, step, &used),
			     PT_HTTP_READ_REQUEST);
		cr_assert_eq(used, out_hdr);
		r = pt_http_reader_take(rd);
		cr_assert_eq(r->rdg, PT_HTTP_RDG_OUT);
		pt_http_req_free(r);
		pt_http_reader_free(rd);
	}
}

Test(httpd_reader, rdg_lookalikes_are_plain_http_or_garbage, .timeout = 10)
{
	static const char get[] = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char *const bad[] = { "RDG_OUT_DAT /x HTTP/1.1\r\n\r\n",
					   "RDG_IN_DATAX /x HTTP/1.1\r\n\r\n",
					   "RDG_OUT_DATA\r\n\r\n", "R\r\n\r\n" };
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	struct pt_http_req *r;
	size_t used;

	pt_http_reader_rdg(rd, 1);
	for (size_t step = 1; step < sizeof(get); step++) {
		pt_http_reader_next(rd);
		cr_assert_eq(feed_steps(rd, get, sizeof(get) - 1, step, &used),
			     PT_HTTP_READ_REQUEST);
		cr_assert_eq(used, sizeof(get) - 1);
		r = pt_http_reader_take(rd);
		cr_assert_eq(r->rdg, 0);
		cr_assert_str_eq(r->path, "/x");
		pt_http_req_free(r);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum pt_http_read res;

		pt_http_reader_next(rd);
		res = feed_steps(rd, bad[i], strlen(bad[i]), 3, &used);
		cr_assert(res == PT_HTTP_READ_ERROR || res == PT_HTTP_READ_GARBAGE, "%s", bad[i]);
		pt_http_req_free(pt_http_reader_take(rd));
	}
	pt_http_reader_free(rd);
}

Test(httpd_reader, an_upgrade_stops_at_the_headers, .timeout = 10)
{
	static const char req[] = "GET /ws/vnc?ticket=abc HTTP/1.1\r\nHost: gw\r\n"
				  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
				  "Sec-WebSocket-Version: 13\r\n\r\n\x82\x85" "frame";
	const size_t hdr = strstr(req, "\r\n\r\n") + 4 - req;
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	struct pt_http_req *r;
	size_t used;

	cr_assert_eq(feed(rd, req, sizeof(req) - 1, &used), PT_HTTP_READ_REQUEST);
	cr_assert_eq(used, hdr, "the WebSocket's first frame was taken as HTTP");
	r = pt_http_reader_take(rd);
	cr_assert(r->upgrade);
	cr_assert_str_eq(r->query, "ticket=abc");
	cr_assert_str_eq(pt_http_header(r, "sec-websocket-key"), "dGhlIHNhbXBsZSBub25jZQ==");
	cr_assert_not(pt_http_reader_keepalive(rd));
	pt_http_req_free(r);
	pt_http_reader_free(rd);
}

Test(httpd_reader, a_trailer_is_no_header, .timeout = 10)
{
	static const char req[] = "POST /api/v1/logout HTTP/1.1\r\nHost: a\r\n"
				  "Transfer-Encoding: chunked\r\nAuthorization: Bearer real\r\n\r\n"
				  "2\r\n{}\r\n0\r\nAuthorization: Bearer forged\r\nX-Late: 1\r\n\r\n";
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	struct pt_http_req *r;
	size_t used;

	cr_assert_eq(feed(rd, req, sizeof(req) - 1, &used), PT_HTTP_READ_REQUEST);
	r = pt_http_reader_take(rd);
	cr_assert_str_eq(r->authorization, "Bearer real");
	cr_assert_str_eq(pt_http_header(r, "authorization"), "Bearer real");
	cr_assert_null(pt_http_header(r, "x-late"));
	cr_assert_str_eq(r->body, "{}");
	pt_http_req_free(r);
	pt_http_reader_free(rd);
}

Test(httpd_reader, a_nul_in_a_header_is_refused, .timeout = 10)
{
	static const char req[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	size_t used;

	cr_assert_eq(feed(rd, req, sizeof(req) - 1, &used), PT_HTTP_READ_ERROR);
	cr_assert_eq(pt_http_reader_status(rd), 400);
	pt_http_req_free(pt_http_reader_take(rd));
	pt_http_reader_free(rd);
}
