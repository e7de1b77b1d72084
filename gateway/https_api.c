/*
 * https_api.c - the broker's user routes under the HTTPS front's /api/v1/
 * (docs/gateway.md, "The HTTPS front"): passed on to the broker with the
 * gateway's own credential and the client's address (Forwarded), which
 * the broker believes only from a gateway.  Nothing else of the broker's
 * API is reachable here, so the broker itself need not be.
 *
 * Two kinds of callers:
 *  - browsers (a request with an Origin or a Cookie header): the session
 *    is the cookie portico_session (HttpOnly, Secure, SameSite=Strict),
 *    which the gateway sets from the token of a login and never shows the
 *    page; every POST must come from this origin and carry X-CSRF-Token
 *    equal to the cookie portico_csrf (double submit);
 *  - programs (portico, curl) with no cookie: their own
 *    `Authorization: Bearer`, answered as the broker answers.
 */
#include <errno.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "portico/log.h"
#include "portico/ticket.h"

#define SESSION_COOKIE "portico_session"
#define CSRF_COOKIE    "portico_csrf"

/* The user routes, and nothing else (broker/api.c has them all). */
static const struct {
	int method;
	const char *path; /* after /api/v1; ":" matches one segment */
} user_routes[] = {
	{ HTTP_POST, "/login" },
	{ HTTP_POST, "/logout" },
	{ HTTP_GET, "/resources" },
	{ HTTP_POST, "/resources/:/launch" },
	{ HTTP_GET, "/resources/:/launch.rdp" },
	{ HTTP_GET, "/sessions" },
	{ HTTP_POST, "/sessions/:/logoff" },
};

static int seg_match(const char *pattern, const char *path)
{
	while (*pattern && *path) {
		if (*pattern == ':') {
			size_t n = strcspn(path, "/");
			if (n == 0)
				return 0;
			path += n;
			pattern++;
			continue;
		}
		if (*pattern++ != *path++)
			return 0;
	}
	return !*pattern && !*path;
}

/* 1: a user route; 0: none (404); -1: a user route by another method (405). */
static int user_route(int method, const char *path)
{
	int other = 0;

	for (size_t i = 0; i < sizeof(user_routes) / sizeof(user_routes[0]); i++) {
		if (!seg_match(user_routes[i].path, path))
			continue;
		if (user_routes[i].method == method)
			return 1;
		other = 1;
	}
	return other ? -1 : 0;
}

/* A browser's POST: from this origin, with the double-submit token. */
static const char *csrf_refusal(const struct pt_http_req *r)
{
	const char *origin = pt_http_header(r, "origin"), *host = pt_http_header(r, "host");
	const char *sent = pt_http_header(r, "x-csrf-token");
	char want[80];

	if (origin && (!host || strncmp(origin, "https://", 8) || strcmp(origin + 8, host)))
		return "this request comes from another site";
	if (gw_https_cookie(r, CSRF_COOKIE, want, sizeof(want)) || strlen(want) < 32 || !sent ||
	    strlen(sent) != strlen(want) || CRYPTO_memcmp(sent, want, strlen(want)))
		return "missing or wrong X-CSRF-Token: reload the page";
	return NULL;
}

static char *header_line(const char *name, const char *value)
{
	char *s;

	return asprintf(&s, "%s: %s", name, value) < 0 ? NULL : s;
}

/* Set-Cookie for the session: the token, or clearing it (tok NULL). */
static void session_cookie(char *buf, size_t len, const char *tok, json_int_t max_age_s)
{
	snprintf(buf, len,
		 "Set-Cookie: " SESSION_COOKIE "=%s; Path=/; Max-Age=%lld; Secure; HttpOnly; "
		 "SameSite=Strict\r\nCache-Control: no-store\r\n",
		 tok ? tok : "", tok ? (long long)max_age_s : 0LL);
}

static int is_login(const struct pt_http_req *r)
{
	return !strcmp(r->path, "/api/v1/login");
}

static void on_answer(void *arg, int rc, struct pt_api_resp *resp, const char *err)
{
	struct gw_conn *c = arg;
	struct gw_https *h = gw_container_of(c, struct gw_https, c);
	struct pt_http_req *r = h->req;
	char extra[PT_TICKET_LEN + 512] = "Cache-Control: no-store\r\n";
	const char *tok;
	char *text = NULL;

	if (rc) {
		pt_log_warnx("https %s: the broker is unreachable: %s", c->peer, err);
		gw_https_error(h, 503, "unavailable", "the service is unavailable: try again later",
			       NULL);
		return;
	}
	tok = json_string_value(json_object_get(resp->json, "token"));
	if (h->browser && is_login(r) && resp->status == 200 && tok) {
		/* The token goes in the cookie, never to the page's script. */
		session_cookie(extra, sizeof(extra), tok,
			       json_integer_value(json_object_get(resp->json, "expires_in_ms")) /
				       1000);
		json_object_del(resp->json, "token");
		text = json_dumps(resp->json, JSON_COMPACT);
		if (!text) {
			gw_https_error(h, 503, "busy", "out of memory", NULL);
			return;
		}
		gw_https_respond(h, 200, "application/json", text, strlen(text), extra);
		free(text);
		return;
	}
	if (h->browser && (resp->status == 401 || !strcmp(r->path, "/api/v1/logout")) &&
	    !is_login(r))
		session_cookie(extra, sizeof(extra), NULL, 0); /* the session is over */
	if (resp->disposition[0] && strlen(resp->disposition) < 200 &&
	    !strpbrk(resp->disposition, "\r\n"))
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra),
			 "Content-Disposition: %s\r\n", resp->disposition);
	gw_https_respond(h, resp->status, resp->ctype[0] ? resp->ctype : NULL, resp->body,
			 resp->len, extra);
}

void gw_https_api(struct gw_https *h)
{
	struct pt_http_req *r = h->req;
	const char *sub = r->path + strlen("/api/v1");
	const char *ctype = pt_http_header(r, "content-type");
	char tok[PT_TICKET_LEN + 8], fwd_for[96];
	const char *why;
	struct gw_fwd *f;
	int route = user_route(r->method, sub), n = 0;

	if (route == 0) {
		char msg[PT_HTTP_PATH_MAX + 80];
		snprintf(msg, sizeof(msg),
			 "the gateway serves the routes of users only: no such API path: %s",
			 r->path);
		gw_https_error(h, 404, "not_found", msg, NULL);
		return;
	}
	if (route < 0) {
		gw_https_error(h, 405, "method_not_allowed", "method not allowed", NULL);
		return;
	}
	if (h->browser && r->method != HTTP_GET && (why = csrf_refusal(r))) {
		pt_log(PT_LOG_INFO, h->c.id, "https %s: %s %s refused: %s", h->c.peer,
		       http_method_str(r->method), r->path, why);
		gw_https_error(h, 403, "csrf", why, NULL);
		return;
	}
	if (!(f = calloc(1, sizeof(*f)))) {
		gw_https_error(h, 503, "busy", "out of memory", NULL);
		return;
	}
	snprintf(f->method, sizeof(f->method), "%s", http_method_str(r->method));
	snprintf(f->path, sizeof(f->path), "%s%s%s", r->path, r->query[0] ? "?" : "", r->query);
	if (r->body_len && !(f->body = malloc(r->body_len))) {
		gw_fwd_free(f);
		gw_https_error(h, 503, "busy", "out of memory", NULL);
		return;
	}
	if (r->body_len)
		memcpy(f->body, r->body, r->body_len);
	f->len = r->body_len;
	/* A browser's session is its cookie; a program's its own bearer. */
	if (h->browser) {
		if (gw_https_cookie(r, SESSION_COOKIE, tok, sizeof(tok)) == 0 &&
		    pt_ticket_valid(tok) &&
		    asprintf(&f->headers[n++], "Authorization: Bearer %s", tok) < 0)
			f->headers[n - 1] = NULL;
		explicit_bzero(tok, sizeof(tok));
	} else if (r->authorization[0]) {
		f->headers[n++] = header_line("Authorization", r->authorization);
	}
	snprintf(fwd_for, sizeof(fwd_for), strchr(h->c.peer, ':') ? "for=\"[%s]\"" : "for=%s",
		 h->c.peer);
	f->headers[n++] = header_line("Forwarded", fwd_for);
	if (ctype)
		f->headers[n++] = header_line("Content-Type", ctype);
	for (int i = 0; i < n; i++)
		if (!f->headers[i]) {
			gw_fwd_free(f);
			gw_https_error(h, 503, "busy", "out of memory", NULL);
			return;
		}
	if (gw_conn_forward(&h->c, f, on_answer)) {
		gw_https_error(h, 503, "busy", "out of memory", NULL);
		return;
	}
}
