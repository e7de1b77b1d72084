/*
 * httpd_request.c - the requests of the HTTPS server (httpd.h): the reader
 * (bytes in, requests out) and what handlers ask of a request (its bearer,
 * its query's parameters).  In the reader, http-parser does the parsing;
 * these callbacks keep each request within its limits (URL, header bytes,
 * body) and say which status answers what went wrong: 400, 413, 414, 431
 * (503 when memory runs out).
 *
 * Apart from httpd.c, which owns the socket, the timers and the answers, so
 * that tests and tests/fuzz/fuzz_http.c drive exactly what a connection
 * runs, in-process.
 */
#include <ctype.h>
#include <errno.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "portico/httpd.h"

struct pt_http_reader {
	http_parser parser;
	pt_http_begin_cb begin;
	void *owner;
	struct pt_http_req *req; /* begun, not taken */
	size_t header_bytes;
	size_t url_len;
	char url[PT_HTTP_PATH_MAX * 2];
	char hname[64];
	size_t hname_len;
	char *hvalue; /* the request field the value goes to */
	size_t hvalue_cap, hvalue_len;
	int in_value;
	int hdr_open;	  /* a header's value is being kept in req->headers */
	int trailers;	  /* the headers are over: what comes now is a chunked body's trailer */
	int rdg_ok;	  /* pt_http_reader_rdg(): RDG_OUT_DATA and RDG_IN_DATA */
	int at_start;	  /* no byte of this request fed to http-parser yet */
	int rdg;	  /* the method read at the start (PT_HTTP_RDG_*), or 0 */
	char pre[16];	  /* the request's first bytes, while they may be an RDG method */
	size_t pre_len;
	int err_status;	  /* a limit was hit: answer this */
	int parser_errno; /* enum http_errno of the error */
	int keepalive;
};

static int on_message_begin(http_parser *p)
{
	struct pt_http_reader *rd = p->data;

	rd->req = calloc(1, sizeof(*rd->req));
	if (!rd->req)
		return 1;
	rd->header_bytes = rd->url_len = 0;
	rd->url[0] = '\0';
	rd->hname_len = 0;
	rd->hvalue = NULL;
	rd->in_value = 0;
	rd->hdr_open = 0;
	rd->trailers = 0;
	rd->req->rdg = rd->rdg;
	if (rd->begin)
		rd->begin(rd->req, rd->owner);
	return 0;
}

/*
 * A URL or headers over their limits are not refused at once but when the
 * headers end (on_headers_complete), and a malformed request found before
 * that gets 400 instead: http-parser hands a URL or a header to its
 * callback when the token ends or the read does, so an immediate refusal
 * would answer 414 or 400 to the same bytes depending on how TCP cut them.
 * http-parser stops a request line and headers at 80 KiB by itself
 * (HPE_HEADER_OVERFLOW, answered 431), so the wait is bounded.
 */
static void over(struct pt_http_reader *rd, int status)
{
	if (!rd->err_status)
		rd->err_status = status;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct pt_http_reader *rd = p->data;

	if (rd->err_status)
		return 0;
	if (rd->url_len + len >= sizeof(rd->url)) {
		over(rd, 414);
		return 0;
	}
	memcpy(rd->url + rd->url_len, at, len);
	rd->url_len += len;
	rd->url[rd->url_len] = '\0';
	return 0;
}

/* 1 once the request is over a limit: nothing more of it is kept. */
static int count_header(struct pt_http_reader *rd, size_t len)
{
	rd->header_bytes += len;
	if (rd->header_bytes > PT_HTTP_HEADERS_MAX)
		over(rd, 431);
	return rd->err_status != 0;
}

/* Append len bytes to the request's header list (count_header bounds it). */
static int keep(struct pt_http_reader *rd, const char *at, size_t len)
{
	struct pt_http_req *r = rd->req;
	char *nb;

	if (r->headers_len + len + 1 > r->headers_cap) {
		size_t cap = r->headers_cap ? r->headers_cap : 512;
		while (cap < r->headers_len + len + 1)
			cap *= 2;
		if (!(nb = realloc(r->headers, cap))) {
			over(rd, 503);
			return -1;
		}
		r->headers = nb;
		r->headers_cap = cap;
	}
	memcpy(r->headers + r->headers_len, at, len);
	r->headers_len += len;
	r->headers[r->headers_len] = '\0';
	return 0;
}

/* The value kept so far ends: a NUL after it. */
static void keep_end(struct pt_http_reader *rd)
{
	if (rd->hdr_open && !rd->err_status)
		keep(rd, "", 1);
	rd->hdr_open = 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct pt_http_reader *rd = p->data;

	/* A chunked body's trailer fields are counted, never kept: no
	 * trailer may stand for a header (an Authorization after the body). */
	if (count_header(rd, len) || rd->trailers)
		return 0;
	if (rd->in_value) {
		rd->in_value = 0;
		rd->hname_len = 0;
		keep_end(rd);
	}
	if (rd->hname_len + len < sizeof(rd->hname)) {
		memcpy(rd->hname + rd->hname_len, at, len);
		rd->hname_len += len;
	} else {
		rd->hname_len = sizeof(rd->hname); /* too long to be one we want */
	}
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct pt_http_reader *rd = p->data;
	struct pt_http_req *r = rd->req;

	if (count_header(rd, len) || rd->trailers)
		return 0;
	/* http-parser lets a NUL through; no field value may hold one (RFC
	 * 9110 5.5), and it would cut the value short where it is kept. */
	if (memchr(at, '\0', len)) {
		over(rd, 400);
		return 0;
	}
	if (!rd->in_value) {
		rd->in_value = 1;
		rd->hvalue = NULL;
		rd->hvalue_len = 0;
		if (rd->hname_len < sizeof(rd->hname)) {
			rd->hname[rd->hname_len] = '\0';
			/* Every header, for pt_http_header(): the name in lower
			 * case, a NUL, the value, a NUL. */
			for (size_t i = 0; i < rd->hname_len; i++)
				rd->hname[i] = (char)tolower((unsigned char)rd->hname[i]);
			if (keep(rd, rd->hname, rd->hname_len + 1))
				return 0;
			rd->hdr_open = 1;
			if (!strcmp(rd->hname, "authorization")) {
				rd->hvalue = r->authorization;
				rd->hvalue_cap = sizeof(r->authorization);
			} else if (!strcmp(rd->hname, "content-type")) {
				rd->hvalue = r->content_type;
				rd->hvalue_cap = sizeof(r->content_type);
			}
		}
	}
	if (rd->hdr_open && keep(rd, at, len))
		return 0;
	if (rd->hvalue) {
		if (rd->hvalue_len + len >= rd->hvalue_cap) {
			over(rd, 431);
			return 0;
		}
		memcpy(rd->hvalue + rd->hvalue_len, at, len);
		rd->hvalue_len += len;
		rd->hvalue[rd->hvalue_len] = '\0';
	}
	return 0;
}

/* The path and query from the URL, the method: -1 (400) when malformed. */
static int finish_url(struct pt_http_reader *rd, http_parser *p)
{
	struct pt_http_req *r = rd->req;
	struct http_parser_url u;

	http_parser_url_init(&u);
	if (http_parser_parse_url(rd->url, rd->url_len, 0, &u) != 0 ||
	    !(u.field_set & (1 << UF_PATH))) {
		rd->err_status = 400;
		return -1;
	}
	snprintf(r->path, sizeof(r->path), "%.*s", (int)u.field_data[UF_PATH].len,
		 rd->url + u.field_data[UF_PATH].off);
	if (u.field_set & (1 << UF_QUERY))
		snprintf(r->query, sizeof(r->query), "%.*s", (int)u.field_data[UF_QUERY].len,
			 rd->url + u.field_data[UF_QUERY].off);
	r->method = p->method;
	rd->keepalive = http_should_keep_alive(p);
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct pt_http_reader *rd = p->data;

	keep_end(rd);
	rd->trailers = 1;
	if (rd->err_status)
		return -1; /* a limit hit on the way: answer it now */
	if (rd->rdg) {
		/* An RD Gateway channel: what follows the headers is the
		 * tunnel's (chunked, or as long as Content-Length says), not a
		 * body to read: the request is complete here. */
		if (finish_url(rd, p))
			return -1;
		return 1;
	}
	if (p->content_length != ULLONG_MAX && p->content_length > PT_HTTP_BODY_MAX) {
		rd->err_status = 413;
		return -1; /* 1 would mean "no body" to http-parser */
	}
	if (finish_url(rd, p))
		return -1;
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct pt_http_reader *rd = p->data;
	struct pt_http_req *r = rd->req;
	char *nb;

	if (r->body_len + len > PT_HTTP_BODY_MAX) {
		rd->err_status = 413;
		return 1;
	}
	nb = realloc(r->body, r->body_len + len + 1);
	if (!nb) {
		rd->err_status = 503;
		return 1;
	}
	r->body = nb;
	memcpy(r->body + r->body_len, at, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct pt_http_reader *rd = p->data;
	struct pt_http_req *r = rd->req;

	if (!r->body && !(r->body = strdup(""))) {
		rd->err_status = 503;
		return 1;
	}
	rd->keepalive = http_should_keep_alive(p);
	/* After an Upgrade (http-parser stops at the headers' end then) the
	 * bytes that follow are another protocol's.  After an RD Gateway
	 * request they may be (the tunnel's body) or not (FreeRDP's first
	 * RDG_IN_DATA is answered, then another comes): its owner says. */
	r->upgrade = p->upgrade && !rd->rdg;
	if (r->upgrade)
		rd->keepalive = 0;
	/* One request at a time: stop here; the caller answers, then feeds
	 * what else arrived. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

struct pt_http_reader *pt_http_reader_new(pt_http_begin_cb begin, void *owner)
{
	struct pt_http_reader *rd = calloc(1, sizeof(*rd));

	if (!rd)
		return NULL;
	rd->begin = begin;
	rd->owner = owner;
	pt_http_reader_next(rd);
	return rd;
}

void pt_http_req_free(struct pt_http_req *req)
{
	if (!req)
		return;
	free(req->body);
	free(req->headers);
	free(req);
}

void pt_http_reader_free(struct pt_http_reader *rd)
{
	if (!rd)
		return;
	pt_http_req_free(rd->req);
	free(rd);
}

void pt_http_reader_next(struct pt_http_reader *rd)
{
	pt_http_req_free(rd->req);
	rd->req = NULL;
	rd->err_status = 0;
	rd->parser_errno = 0;
	rd->keepalive = 0;
	rd->at_start = 1;
	rd->rdg = 0;
	rd->pre_len = 0;
	http_parser_init(&rd->parser, HTTP_REQUEST);
	rd->parser.data = rd;
}

void pt_http_reader_rdg(struct pt_http_reader *rd, int on)
{
	rd->rdg_ok = on;
}

/*
 * The RD Gateway's methods (MS-TSGU: RDG_OUT_DATA, RDG_IN_DATA) are no
 * method http-parser knows, and it refuses those.  So a request's first
 * bytes are held back while they may still be one of them; once the
 * method is read, http-parser is fed "GET" in its place (req->rdg says
 * which it was) or, when it is no RDG method, the bytes held back.
 * Returns 1 while the bytes are still held (all of data taken), 0 when
 * http-parser may go on with data + *skip, -1 when the bytes held back
 * could not be fed.
 */
static const char *const rdg_method[] = { [PT_HTTP_RDG_OUT] = "RDG_OUT_DATA ",
					  [PT_HTTP_RDG_IN] = "RDG_IN_DATA " };

static int rdg_prefix(struct pt_http_reader *rd, const char *data, size_t len, size_t *skip)
{
	size_t take = 0;
	int maybe = 0;

	*skip = 0;
	while (take < len && rd->pre_len < sizeof(rd->pre)) {
		rd->pre[rd->pre_len++] = data[take++];
		maybe = 0;
		for (int m = PT_HTTP_RDG_OUT; m <= PT_HTTP_RDG_IN; m++) {
			size_t ml = strlen(rdg_method[m]);
			if (rd->pre_len <= ml && !memcmp(rd->pre, rdg_method[m], rd->pre_len)) {
				maybe = 1;
				if (rd->pre_len == ml) {
					rd->rdg = m;
					rd->at_start = 0;
					*skip = take;
					/* "GET " in its place: the URL follows. */
					return http_parser_execute(&rd->parser, &settings, "GET ", 4) ==
							       4 ?
						       0 :
						       -1;
				}
			}
		}
		if (!maybe)
			break;
	}
	if (maybe)
		return 1; /* still one of them, or not yet known */
	/* Not an RDG method: what was held back goes to http-parser now. */
	rd->at_start = 0;
	*skip = take;
	if (http_parser_execute(&rd->parser, &settings, rd->pre, rd->pre_len) != rd->pre_len)
		return -1;
	return 0;
}

enum pt_http_read pt_http_reader_feed(struct pt_http_reader *rd, const char *data, size_t len,
				      size_t *used)
{
	enum http_errno e;

	size_t skip = 0;
	int held;

	*used = 0;
	if (len == 0)
		return PT_HTTP_READ_MORE;
	if (rd->rdg_ok && rd->at_start) {
		held = rdg_prefix(rd, data, len, &skip);
		if (held == 1) {
			*used = len;
			return PT_HTTP_READ_MORE;
		}
		if (held == 0 && HTTP_PARSER_ERRNO(&rd->parser) == HPE_OK) {
			data += skip;
			len -= skip;
		}
	}
	rd->at_start = 0;
	if (HTTP_PARSER_ERRNO(&rd->parser) == HPE_OK && len > 0)
		*used = skip + http_parser_execute(&rd->parser, &settings, data, len);
	else
		*used = skip;
	e = HTTP_PARSER_ERRNO(&rd->parser);
	if (e == HPE_PAUSED) {
		http_parser_pause(&rd->parser, 0);
		return PT_HTTP_READ_REQUEST;
	}
	if (e == HPE_OK && *used == skip + len)
		return PT_HTTP_READ_MORE;
	rd->parser_errno = (int)e;
	if (!rd->req)
		return PT_HTTP_READ_GARBAGE; /* nothing to answer */
	/* Our callbacks stopped it for err_status; otherwise http-parser
	 * found it malformed, whatever limit was hit before. */
	if (e == HPE_HEADER_OVERFLOW)
		rd->err_status = 431;
	else if (e < HPE_CB_message_begin || e > HPE_CB_chunk_complete || !rd->err_status)
		rd->err_status = 400;
	return PT_HTTP_READ_ERROR;
}

struct pt_http_req *pt_http_reader_take(struct pt_http_reader *rd)
{
	struct pt_http_req *r = rd->req;

	rd->req = NULL;
	return r;
}

int pt_http_reader_busy(const struct pt_http_reader *rd)
{
	return rd->req != NULL;
}

int pt_http_reader_status(const struct pt_http_reader *rd)
{
	return rd->err_status ? rd->err_status : 400;
}

const char *pt_http_reader_why(const struct pt_http_reader *rd)
{
	enum http_errno e = (enum http_errno)rd->parser_errno;

	if (e < HPE_CB_message_begin || e > HPE_CB_chunk_complete)
		return http_errno_description(e);
	switch (rd->err_status) {
	case 400:
		return "malformed URL";
	case 413:
		return "request body too large";
	case 414:
		return "URL too long";
	case 431:
		return "request headers too large";
	case 503:
		return "out of memory";
	}
	return "malformed request";
}

int pt_http_reader_keepalive(const struct pt_http_reader *rd)
{
	return rd->keepalive;
}

/* --- what handlers ask of a request ------------------------------------------ */

const char *pt_http_bearer(const struct pt_http_req *req)
{
	const char *a = req->authorization;

	if (strncasecmp(a, "Bearer ", 7))
		return NULL;
	a += 7;
	while (*a == ' ')
		a++;
	return *a ? a : NULL;
}

int pt_http_bearer_is(const struct pt_http_req *req, const char *secret)
{
	const char *tok = pt_http_bearer(req);
	size_t n;

	if (!tok || !secret || !*secret)
		return 0;
	n = strlen(secret);
	return strlen(tok) == n && CRYPTO_memcmp(tok, secret, n) == 0;
}

const char *pt_http_header(const struct pt_http_req *req, const char *name)
{
	const char *p = req->headers, *end = p ? p + req->headers_len : NULL;

	while (p && p < end) {
		const char *v = p + strlen(p) + 1;
		if (v >= end)
			break;
		if (!strcasecmp(p, name))
			return v;
		p = v + strlen(v) + 1;
	}
	return NULL;
}

int pt_http_hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

int pt_http_query(const struct pt_http_req *req, const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);
	const char *p = req->query;

	while (*p) {
		const char *end = strchr(p, '&');
		size_t plen = end ? (size_t)(end - p) : strlen(p);
		if (plen > nl && !strncmp(p, name, nl) && p[nl] == '=') {
			size_t o = 0;
			for (const char *q = p + nl + 1; q < p + plen && o + 1 < len; q++) {
				if (*q == '%' && q + 2 < p + plen + 1 && pt_http_hexval(q[1]) >= 0 &&
				    pt_http_hexval(q[2]) >= 0) {
					buf[o++] = (char)(pt_http_hexval(q[1]) << 4 | pt_http_hexval(q[2]));
					q += 2;
				} else {
					buf[o++] = *q == '+' ? ' ' : *q;
				}
			}
			buf[o] = '\0';
			return 0;
		}
		if (!end)
			break;
		p = end + 1;
	}
	return -ENOENT;
}
