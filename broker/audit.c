/*
 * audit.c - the broker's records in the audit trail (portico/audit.h,
 * docs/operations.md "Audit trail"): sign-ins, launches and reconnects,
 * tickets redeemed, sessions ended, and every admin action with the values
 * before and after.  Built from what the call already holds (its route, the
 * caller, its answer), never from a password, a PAM answer, a ticket or a
 * session's secret.
 */
#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "pool.h"
#include "portico/audit.h"
#include "portico/log.h"

/* Which front the request came through: the gateway's HTTPS front (the
 * portal, a forwarded request), a gateway's VNC or RDP login step, or the
 * API itself (portico, portico-admin, scripts). */
static const char *via(const struct brk_call *c)
{
	if (c->forwarded)
		return "portal";
	if (c->role == BRK_ROLE_GATEWAY)
		return "gateway";
	return "api";
}

static const char *error_code(const struct brk_call *c)
{
	return json_string_value(json_object_get(c->out, "error"));
}

static int route_is(const struct brk_call *c, int method, const char *path)
{
	return c->route && c->route->method == method && !strcmp(c->route->path, path);
}

/* POST /login and /gateway/authorize, when answered. */
static void audit_login(const struct brk_call *c)
{
	const char *user = c->user[0] ? c->user : brk_call_str(c, "username");
	const char *code = error_code(c), *result;

	if (c->status == 200)
		result = "success";
	else if (code && !strcmp(code, "challenge"))
		result = "challenge"; /* PAM asks for more (a second factor) */
	else if (c->status == 429)
		result = "throttled";
	else if (c->status == 401 || c->status == 403)
		result = "failure";
	else
		result = "error";
	pt_audit(json_pack("{s:s,s:s,s:s,s:s,s:s,s:i}", "event", "login", "result", result, "user",
			   user ? user : "", "addr", c->rhost, "via", via(c), "status", c->status));
}

void brk_audit_call_done(const struct brk_call *c)
{
	if (!pt_audit_enabled() || !c->route)
		return;
	if (route_is(c, HTTP_POST, "/login") || route_is(c, HTTP_POST, "/gateway/authorize"))
		audit_login(c);
	else if (route_is(c, HTTP_POST, "/logout") && c->status == 200)
		pt_audit(json_pack("{s:s,s:s,s:s,s:s}", "event", "logout", "user", c->user, "addr",
				   c->rhost, "via", via(c)));
	else if ((route_is(c, HTTP_POST, "/resources/:name/launch") ||
		  route_is(c, HTTP_GET, "/resources/:name/launch.rdp")) &&
		 c->status != 200)
		pt_audit(json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:i,s:s?}", "event", "launch",
				   "result", "refused", "user", c->user, "pool", c->name, "addr",
				   c->rhost, "via", via(c), "status", c->status, "error",
				   error_code(c)));
}

void brk_audit_launch(const struct brk_call *c, const struct brk_session *s, int reconnect)
{
	if (!pt_audit_enabled())
		return;
	pt_audit(json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "event",
			   reconnect ? "reconnect" : "launch", "result", "success", "user", c->user,
			   "pool", s->pool, "session", (json_int_t)s->id, "host", s->host, "addr",
			   c->rhost, "via", via(c)));
}

void brk_audit_redeem(const struct brk_call *c, const char *result, const struct brk_session *s,
		      const char *addr)
{
	if (!pt_audit_enabled())
		return;
	pt_audit(json_pack("{s:s,s:s,s:s,s:s,s:I,s:s,s:s,s:s}", "event", "redeem", "result", result,
			   "gateway", c->node[0] ? c->node : "(shared secret)", "addr",
			   addr ? addr : "", "session", (json_int_t)(s ? s->id : 0), "user",
			   s ? s->user : "", "pool", s ? s->pool : "", "backend",
			   s ? s->backend : ""));
}

void brk_audit_session_end(const struct brk_session *s, const char *reason)
{
	if (!pt_audit_enabled())
		return;
	pt_audit(json_pack("{s:s,s:I,s:s,s:s,s:s,s:s}", "event", "session_end", "session",
			   (json_int_t)s->id, "user", s->user, "pool", s->pool, "host", s->host,
			   "reason", reason ? reason : ""));
}

/* --- admin actions: the target as it was and as it is ------------------------------------ */

/* What an admin route acts on, read from the store: a pool (:name under
 * /admin/pools, or the body's name on create), a host (:host), a session
 * (:id); NULL when there is none (yet, or any more). */
static json_t *target(struct brk_call *c)
{
	const char *p = c->route->path;
	struct brk_pool pool = { 0 };
	struct brk_host h;
	struct brk_session s;
	const char *name = c->name[0] ? c->name : NULL;
	json_t *o = NULL;

	if (!strncmp(p, "/admin/pools", 12)) {
		if (!name)
			name = brk_call_str(c, "name");
		if (name && brk_store_pool_get(c->b->store, name, &pool) == 0) {
			o = brk_pool_json(&pool);
			brk_pool_clear(&pool);
		}
	} else if (strstr(p, ":host")) {
		if (brk_store_host_get(c->b->store, c->name, &h) == 0)
			o = json_pack("{s:s,s:b}", "name", h.name, "drained", h.drained);
	} else if (strstr(p, ":id")) {
		if (brk_store_session_get(c->b->store, c->id, &s) == 0)
			o = brk_session_json(&s);
	}
	return o;
}

json_t *brk_audit_admin_before(struct brk_call *c)
{
	if (!pt_audit_enabled() || c->role != BRK_ROLE_ADMIN || c->route->method == HTTP_GET)
		return NULL;
	return json_pack("{s:o*}", "before", target(c));
}

void brk_audit_admin_after(struct brk_call *c, json_t *rec)
{
	char what[2 * PT_HTTP_PATH_MAX + 16];
	json_t *body = NULL, *more;

	if (!rec)
		return;
	snprintf(what, sizeof(what), "%s %s%s%s", http_method_str(c->route->method),
		 c->req->path, c->req->query[0] ? "?" : "", c->req->query);
	/* The body as sent: pool keys, a message's text (no secret goes in an
	 * admin body). */
	if (c->in)
		body = json_deep_copy(c->in);
	more = json_pack("{s:s,s:s,s:s,s:s,s:i,s:o*,s:o*}", "event", "admin", "admin", c->user,
			 "addr", c->rhost, "action", what, "status", c->status ? c->status : 500,
			 "body", body, "after", target(c));
	json_object_update(rec, more);
	json_decref(more);
	pt_audit(rec);
}

/* GET /admin/audit?user=&event=&since=&limit=: this broker's trail read
 * back (each broker of a shared store keeps its own: --broker picks). */
void brk_admin_audit(struct brk_call *c)
{
	struct pt_audit_filter f = { 0 };
	char user[BRK_USER_MAX + 1], event[32], since[40], limit[16], err[600], *end;
	const char *path = c->b->conf->broker.audit_log;
	size_t skipped = 0;
	json_t *a;

	if (!path || !*path) {
		brk_call_fail(c, -ENOENT, "no_audit_log",
			      "this broker keeps no audit trail ([broker] audit_log is not set)");
		return;
	}
	if (pt_http_query(c->req, "user", user, sizeof(user)) == 0)
		f.user = user;
	if (pt_http_query(c->req, "event", event, sizeof(event)) == 0)
		f.event = event;
	if (pt_http_query(c->req, "since", since, sizeof(since)) == 0 &&
	    pt_audit_since(&f, since)) {
		brk_call_fail(c, -EINVAL, "bad_request",
			      "since: a duration (30m, 1h, 7d) or a UTC time (2026-12-06T14:00)");
		return;
	}
	if (pt_http_query(c->req, "limit", limit, sizeof(limit)) == 0) {
		unsigned long long n = strtoull(limit, &end, 10);
		if (!*limit || *end || n == 0 || n > PT_AUDIT_READ_MAX) {
			brk_call_fail(c, -EINVAL, "bad_request", "limit: 1 to %d",
				      PT_AUDIT_READ_MAX);
			return;
		}
		f.limit = (size_t)n;
	}
	a = json_array();
	if (!a || pt_audit_read(path, &f, a, &skipped, err, sizeof(err))) {
		json_decref(a);
		pt_log_warnx("audit: %s", a ? err : "out of memory");
		brk_call_fail(c, -EIO, "internal", "the audit log cannot be read (see the broker's log)");
		return;
	}
	brk_call_ok(c, 200, json_pack("{s:o,s:I}", "records", a, "skipped", (json_int_t)skipped));
}
