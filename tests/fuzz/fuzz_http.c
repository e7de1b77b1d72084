/*
 * fuzz_http - libFuzzer target for the HTTPS server's request reader
 * (lib/httpd_request.c): http-parser driven by the server's own callbacks
 * and limits, fed as a connection of the broker or sessiond feeds it (after
 * TLS): a request taken, answered, then what was sent ahead of it.
 *
 *   make fuzz
 *   build-fuzz/fuzz/fuzz_http -runs=1000000 tests/fuzz/corpus/fuzz_http
 *
 * Whatever the bytes, and besides no crash, leak or undefined behaviour:
 *  - every request taken is within the limits: a known method, a path that
 *    starts with '/' or '*', path, query, Authorization and Content-Type
 *    NUL-terminated within their fields, a body of at most PT_HTTP_BODY_MAX
 *    bytes with a NUL after it;
 *  - an error has a request to answer, with 400, 413, 414, 431 or 503;
 *    bytes that are not HTTP have none; no call takes more bytes than fed;
 *  - cutting the bytes anywhere (at up to 8 places drawn from the input,
 *    and between every two bytes of inputs up to 64 bytes) gives the same
 *    requests and the same end, status included, as feeding them whole:
 *    what a client's TCP segments look like changes nothing;
 *  - all of it twice: as the broker reads (RD Gateway methods off) and as
 *    the gateway's HTTPS front reads (on): an RDG_OUT_DATA or RDG_IN_DATA
 *    request ends at its headers with no body, every header is kept as
 *    name/value pairs that pt_http_header() finds, names in lower case.
 */
#include <http_parser.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "portico/httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What a run saw, in bytes, to compare two runs. */
struct transcript {
	uint8_t *b;
	size_t len, cap;
};

static void put(struct transcript *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2 + 256;
		t->b = realloc(t->b, t->cap);
		if (!t->b)
			abort();
	}
	memcpy(t->b + t->len, p, n);
	t->len += n;
}

static void put_int(struct transcript *t, long v)
{
	put(t, &v, sizeof(v));
}

/* A NUL-terminated field within its array, recorded. */
static void put_field(struct transcript *t, const char *f, size_t cap)
{
	const char *end = memchr(f, '\0', cap);

	if (!end)
		abort();
	put_int(t, end - f);
	put(t, f, (size_t)(end - f));
}

static void check_and_put(struct transcript *t, const struct pt_http_req *r, int keepalive)
{
	if (!strcmp(http_method_str(r->method), "<unknown>"))
		abort();
	if (r->path[0] != '/' && r->path[0] != '*')
		abort();
	if (!r->body || r->body_len > PT_HTTP_BODY_MAX || r->body[r->body_len] != '\0')
		abort();
	put_int(t, 'R');
	put_int(t, r->method);
	put_field(t, r->path, sizeof(r->path));
	put_field(t, r->query, sizeof(r->query));
	put_field(t, r->authorization, sizeof(r->authorization));
	put_field(t, r->content_type, sizeof(r->content_type));
	put_int(t, (long)r->body_len);
	put(t, r->body, r->body_len);
	put_int(t, keepalive);
	put_int(t, r->rdg);
	put_int(t, r->upgrade);
	if (r->rdg && (r->method != HTTP_GET || r->body_len))
		abort();
	/* The header list: pairs of NUL-terminated strings, names in lower
	 * case, each found by its name (the first of that name). */
	for (size_t o = 0; o < r->headers_len;) {
		const char *name = r->headers + o, *value;
		size_t nl = strnlen(name, r->headers_len - o), rest, vl;

		if (o + nl >= r->headers_len)
			abort(); /* a name without its NUL, or without a value */
		value = name + nl + 1;
		rest = r->headers_len - (o + nl + 1);
		vl = strnlen(value, rest);
		if (vl >= rest)
			abort();
		for (size_t i = 0; i < nl; i++)
			if (name[i] >= 'A' && name[i] <= 'Z')
				abort();
		if (!pt_http_header(r, name))
			abort();
		o += nl + 1 + vl + 1;
	}
	put_int(t, (long)r->headers_len);
	if (r->headers_len)
		put(t, r->headers, r->headers_len);
}

/* xorshift32: the cuts are drawn from the input, so a run repeats. */
static uint32_t next(uint32_t *r)
{
	*r ^= *r << 13;
	*r ^= *r >> 17;
	*r ^= *r << 5;
	return *r;
}

/* Feed data the way httpd.c does, in pieces: whole (mode 0), one byte at a
 * time (mode 1), or cut at up to 8 places drawn from rnd (mode 2); record
 * what came out. */
static void run(const uint8_t *data, size_t size, int mode, uint32_t rnd, int rdg,
		struct transcript *t)
{
	struct pt_http_reader *rd = pt_http_reader_new(NULL, NULL);
	size_t off = 0, cuts[9], ncuts = 0, c = 0;

	if (!rd)
		abort();
	pt_http_reader_rdg(rd, rdg);
	if (mode == 2 && size > 1) {
		ncuts = 1 + next(&rnd) % 8;
		for (size_t i = 0; i < ncuts; i++)
			cuts[i] = 1 + next(&rnd) % (size - 1);
		/* sorted, for the pieces between them */
		for (size_t i = 1; i < ncuts; i++)
			for (size_t j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
				size_t x = cuts[j];
				cuts[j] = cuts[j - 1];
				cuts[j - 1] = x;
			}
	}
	while (off < size) {
		size_t n = size - off;
		if (mode == 1)
			n = 1;
		else if (mode == 2) {
			while (c < ncuts && cuts[c] <= off)
				c++;
			if (c < ncuts)
				n = cuts[c] - off;
		}
		const char *p = (const char *)data + off;
		off += n;
		while (n > 0) {
			size_t used;
			enum pt_http_read res = pt_http_reader_feed(rd, p, n, &used);
			struct pt_http_req *r;
			int status;

			if (used > n)
				abort();
			switch (res) {
			case PT_HTTP_READ_MORE:
				if (used != n)
					abort();
				n = 0;
				break;
			case PT_HTTP_READ_REQUEST:
				r = pt_http_reader_take(rd);
				if (!r || pt_http_reader_busy(rd))
					abort();
				check_and_put(t, r, pt_http_reader_keepalive(rd));
				pt_http_req_free(r);
				if (!pt_http_reader_keepalive(rd))
					goto end; /* the server answers and closes */
				pt_http_reader_next(rd);
				p += used;
				n -= used;
				break;
			case PT_HTTP_READ_ERROR:
				status = pt_http_reader_status(rd);
				if (status != 400 && status != 413 && status != 414 && status != 431 &&
				    status != 503)
					abort();
				r = pt_http_reader_take(rd);
				if (!r || !pt_http_reader_why(rd)[0])
					abort();
				pt_http_req_free(r);
				put_int(t, 'E');
				put_int(t, status);
				goto end;
			case PT_HTTP_READ_GARBAGE:
				if (pt_http_reader_busy(rd))
					abort();
				put_int(t, 'G');
				goto end;
			default:
				abort();
			}
		}
	}
	/* The bytes ran out: a request begun waits (a timeout answers it). */
	put_int(t, pt_http_reader_busy(rd) ? 'W' : 'I');
end:
	pt_http_reader_free(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transcript whole = { 0 }, cut = { 0 };
	uint32_t seed = 2166136261u;

	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	for (int rdg = 0; rdg <= 1; rdg++) {
		whole.len = cut.len = 0;
		run(data, size, 0, 0, rdg, &whole);
		run(data, size, 2, seed | 1, rdg, &cut);
		if (whole.len != cut.len || memcmp(whole.b, cut.b, whole.len))
			abort();
		/* Byte by byte too, where it costs little. */
		if (size <= 64) {
			cut.len = 0;
			run(data, size, 1, 0, rdg, &cut);
			if (whole.len != cut.len || memcmp(whole.b, cut.b, whole.len))
				abort();
		}
	}
	free(whole.b);
	free(cut.b);
	return 0;
}
