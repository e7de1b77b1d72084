/*
 * api.c - the /api/v1 routes of portico-broker (docs/api.md): the route
 * table, the role check, the life of a call, and the map from -errno to
 * HTTP status.  The handlers live with their audience (api.h).
 *
 * A request is matched once to a row (unknown path 404, another method 405
 * with Allow), then admit() checks the caller's role against the row's,
 * before anything of the request is parsed and before any handler runs:
 * no credential 401, another role's credential 403, in one function.  A
 * node's credential (gateway, session host, broker) is told on the loop
 * thread; a user's token needs the store and an admin's groups NSS, both
 * blocking, so for routes that admit users admit() finishes on the thread
 * pool, in the call's job, just before the handler.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "metrics.h"
#include "control.h"
#include "portico/api.h"
#include "portico/log.h"
#include "portico/ticket.h"

/* Short names for the table. */
#define USERS	 (BRK_ROLE_USER | BRK_ROLE_ADMIN)
#define ADMIN	 BRK_ROLE_ADMIN
#define GATEWAY	 BRK_ROLE_GATEWAY
#define HOST	 BRK_ROLE_HOST
#define JSON	 BRK_ROUTE_JSON
#define JSON_OPT BRK_ROUTE_JSON_OPT
#define LOOP	 BRK_ROUTE_LOOP

/* Every route of the broker; docs/security.md, "Routes and roles", is this
 * table in words, and tests/integration/test_routes.sh tries every row
 * with every role's credential. */
static const struct brk_route routes[] = {
	/* { method, path, roles, handler, flags, op } */
	{ HTTP_POST, "/login", BRK_ROLE_ANYONE, brk_login, JSON | LOOP, 0 },
	/* users (admins are users too) */
	{ HTTP_POST, "/logout", USERS, brk_user_logout, 0, 0 },
	{ HTTP_GET, "/resources", USERS, brk_user_resources, 0, 0 },
	{ HTTP_POST, "/resources/:name/launch", USERS, brk_launch, JSON_OPT, 0 },
	{ HTTP_GET, "/resources/:name/launch.rdp", USERS, brk_launch, 0, BRK_OP_RDP_FILE },
	{ HTTP_GET, "/sessions", USERS, brk_user_sessions, 0, 0 },
	{ HTTP_POST, "/sessions/:id/logoff", USERS, brk_user_logoff, 0, 0 },
	/* gateways */
	{ HTTP_POST, "/gateway/redeem", GATEWAY, brk_gateway_redeem, JSON, 0 },
	{ HTTP_POST, "/gateway/authorize", GATEWAY, brk_gateway_authorize, JSON | LOOP, 0 },
	{ HTTP_POST, "/gateway/events", GATEWAY, brk_gateway_events, JSON, 0 },
	{ HTTP_GET, "/gateway/control", GATEWAY, brk_gateway_control, LOOP, 0 },
	/* session hosts */
	{ HTTP_POST, "/hosts/register", HOST, brk_host_hello, JSON, BRK_OP_REGISTER },
	{ HTTP_POST, "/hosts/heartbeat", HOST, brk_host_hello, JSON, BRK_OP_HEARTBEAT },
	{ HTTP_POST, "/hosts/events", HOST, brk_host_events, JSON, 0 },
	/* admins */
	{ HTTP_GET, "/admin/pools", ADMIN, brk_admin_pools, 0, 0 },
	{ HTTP_POST, "/admin/pools", ADMIN, brk_admin_pool_create, JSON, 0 },
	{ HTTP_GET, "/admin/pools/:name", ADMIN, brk_admin_pool_show, 0, 0 },
	{ HTTP_PUT, "/admin/pools/:name", ADMIN, brk_admin_pool_update, JSON, 0 },
	{ HTTP_PATCH, "/admin/pools/:name", ADMIN, brk_admin_pool_update, JSON, 0 },
	{ HTTP_DELETE, "/admin/pools/:name", ADMIN, brk_admin_pool_delete, 0, 0 },
	{ HTTP_POST, "/admin/pools/:name/drain", ADMIN, brk_admin_pool_drain, 0, BRK_OP_DRAIN },
	{ HTTP_POST, "/admin/pools/:name/undrain", ADMIN, brk_admin_pool_drain, 0, BRK_OP_UNDRAIN },
	{ HTTP_GET, "/admin/hosts", ADMIN, brk_admin_hosts, 0, 0 },
	{ HTTP_POST, "/admin/hosts/:host/drain", ADMIN, brk_admin_host_drain, 0, BRK_OP_DRAIN },
	{ HTTP_POST, "/admin/hosts/:host/undrain", ADMIN, brk_admin_host_drain, 0, BRK_OP_UNDRAIN },
	{ HTTP_GET, "/admin/sessions", ADMIN, brk_admin_sessions, 0, 0 },
	{ HTTP_POST, "/admin/sessions/:id/disconnect", ADMIN, brk_admin_session_action, 0,
	  BRK_OP_DISCONNECT },
	{ HTTP_POST, "/admin/sessions/:id/logoff", ADMIN, brk_admin_session_action, 0,
	  BRK_OP_LOGOFF },
	{ HTTP_POST, "/admin/sessions/:id/message", ADMIN, brk_admin_session_message, JSON, 0 },
	{ HTTP_GET, "/admin/audit", ADMIN, brk_admin_audit, 0, 0 },
};

const struct brk_route *brk_api_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}

/* --- the one map from -errno to HTTP status ------------------------------- */

static const struct {
	int err;
	int status;
} status_map[] = {
	{ EINVAL, 400 },       /* malformed request */
	{ EACCES, 401 },       /* no credential, or a login that failed */
	{ EPERM, 403 },	       /* a credential this may not be done with; a bad ticket */
	{ ENOENT, 404 },       /* no such thing (or not yours to see) */
	{ EEXIST, 409 },       /* already there */
	{ EBUSY, 409 },	       /* in use */
	{ EDQUOT, 409 },       /* the user's session limit */
	{ ENOTUNIQ, 409 },     /* the user must name one of several pools */
	{ ECANCELED, 409 },    /* the session ended while it was starting */
	{ EUSERS, 429 },       /* throttled: too many failed logins */
	{ EIO, 500 },	       /* the store failed */
	{ EREMOTEIO, 502 },    /* the session host refused */
	{ EAGAIN, 503 },       /* busy, or still starting: try again */
	{ ENOSPC, 503 },       /* no capacity */
	{ EHOSTUNREACH, 503 }, /* the session host cannot be reached */
	{ ENOMEM, 503 },
};

int brk_api_status(int err)
{
	for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
		if (status_map[i].err == -err)
			return status_map[i].status;
	return 500;
}

/* --- calls ------------------------------------------------------------------ */

static void call_free(struct brk_call *c)
{
	c->b->calls--;
	json_decref(c->in);
	json_decref(c->out);
	free(c->text);
	free(c);
}

/* Every answer goes out here: to the connection, or to the test's hook. */
static void respond(struct brk *b, struct pt_http_req *req, int status, const char *ctype,
		    const char *body, size_t len, const char *extra)
{
	if (b->answer_cb) {
		b->answer_cb(b->answer_arg, status, ctype, body, len);
		req->conn = NULL; /* pt_http_respond then only frees it */
	}
	pt_http_respond(req, status, ctype, body, len, extra);
}

static void respond_json(struct brk *b, struct pt_http_req *req, int status, json_t *doc)
{
	static const char oom[] = "{\"error\":\"internal\",\"message\":\"out of memory\"}";
	char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	if (s)
		respond(b, req, status, "application/json", s, strlen(s), NULL);
	else
		respond(b, req, 500, "application/json", oom, sizeof(oom) - 1, NULL);
	free(s);
}

static void call_answer(struct brk_call *c)
{
	brk_metrics_call_done(c);
	brk_audit_call_done(c);
	if (c->text) {
		respond(c->b, c->req, c->status, c->ctype, c->text, strlen(c->text), NULL);
	} else {
		respond_json(c->b, c->req, c->status ? c->status : 500, c->out);
		c->out = NULL;
	}
	c->req = NULL;
}

static void on_delay_closed(uv_handle_t *h)
{
	call_free(h->data);
}

static void on_delay(uv_timer_t *t)
{
	struct brk_call *c = t->data;

	call_answer(c);
	uv_close((uv_handle_t *)&c->delay, on_delay_closed);
}

void brk_call_finish(struct brk_call *c)
{
	uint64_t now = uv_now(c->b->loop);

	if (c->answer_at_ms > (int64_t)now) {
		uv_timer_init(c->b->loop, &c->delay);
		c->delay.data = c;
		uv_timer_start(&c->delay, on_delay, (uint64_t)c->answer_at_ms - now, 0);
		return;
	}
	call_answer(c);
	call_free(c);
}

static void work_cb(uv_work_t *w)
{
	struct brk_call *c = w->data;

	c->next(c);
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct brk_call *c = w->data;

	/* Parked: whichever of this and brk_call_resume comes second answers. */
	if (c->parked && --c->parked > 0)
		return;
	if (status < 0 && !c->status)
		brk_call_fail(c, -EAGAIN, "busy", "the broker is stopping");
	brk_call_finish(c);
}

void brk_call_queue(struct brk_call *c, brk_handler_cb fn)
{
	c->next = fn;
	c->work.data = c;
	if (c->b->answer_cb) { /* brk_api_serve_inline */
		work_cb(&c->work);
		after_work_cb(&c->work, 0);
		return;
	}
	if (uv_queue_work(c->b->loop, &c->work, work_cb, after_work_cb) != 0) {
		brk_call_fail(c, -EAGAIN, "busy", "try again");
		brk_call_finish(c);
	}
}

void brk_call_park(struct brk_call *c)
{
	c->parked = 2; /* the pool job's end, and the resume */
}

void brk_call_unpark(struct brk_call *c)
{
	c->parked = 0;
}

void brk_call_resume(struct brk_call *c)
{
	if (--c->parked > 0)
		return;
	brk_call_finish(c);
}

/* A message is one printable line: it may echo what the caller sent (a
 * name, jansson's "near '...'"), and people read it on a terminal. */
static void printable(char *msg)
{
	for (; *msg; msg++)
		if ((unsigned char)*msg < 0x20 || *msg == 0x7f)
			*msg = '?';
}

void brk_call_fail(struct brk_call *c, int err, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	printable(msg);
	json_decref(c->out);
	free(c->text);
	c->text = NULL;
	c->status = brk_api_status(err);
	c->out = json_pack("{s:s,s:s}", "error", code, "message", msg);
}

void brk_call_store_error(struct brk_call *c, int rc)
{
	brk_call_store_failed(c, rc, brk_store_error(c->b->store));
}

void brk_call_store_failed(struct brk_call *c, int rc, const char *why)
{
	int n = (int)strcspn(why, "(");

	pt_log(PT_LOG_WARNING, c->req ? c->req->id : 0, "store: %s (%s)", why, strerror(-rc));
	/* Passing (a full disk, store.h): 503 and its words, up to the
	 * bracket that holds SQLite's own. */
	while (n > 0 && why[n - 1] == ' ')
		n--;
	if (rc == -EAGAIN)
		brk_call_fail(c, -EAGAIN, "store_unavailable",
			      "the broker cannot use its store now (%.*s): try again later", n, why);
	else
		brk_call_fail(c, -EIO, "internal", "the broker could not reach its store");
}

void brk_call_ok(struct brk_call *c, int status, json_t *doc)
{
	json_decref(c->out);
	c->status = status;
	c->out = doc ? doc : json_object();
}

const char *brk_call_str(const struct brk_call *c, const char *key)
{
	json_t *v = c->in ? json_object_get(c->in, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

int brk_name_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == ':' || s[i] == '/')
			return 0;
	return 1;
}

/* --- the role check ------------------------------------------------------------ */

enum { ADMIT = 0, DENIED = -1, DEFER = 1 };

/* What the route's callers present, for a refusal's message. */
static void deny(struct brk_call *c, int err, int role)
{
	int want = c->route->roles;
	int node = want & (BRK_ROLE_GATEWAY | BRK_ROLE_HOST);
	const char *code = err == -EACCES ? "unauthenticated" : "forbidden";

	if (err == -EPERM)
		pt_log_warnx("%s %s%s%s%s refused on %s: not a%s %s", c->req->peer,
			     role < 0 ? "certificate of no role" : brk_role_name(role),
			     c->node[0] || c->user[0] ? " " : "", c->node, c->user, c->req->path,
			     (want & BRK_ROLE_ADMIN) && !(want & BRK_ROLE_USER) ? "n" : "",
			     brk_role_name(want & BRK_ROLE_USER ? BRK_ROLE_USER : want));
	if (node)
		brk_call_fail(c, err, code,
			      "this route is for a %s: present its certificate from [tls] ca or "
			      "[broker] %s",
			      brk_role_name(node),
			      node == BRK_ROLE_HOST ? "host_secret" : "gateway_secret");
	else if (err == -EPERM && role == BRK_ROLE_USER)
		brk_call_fail(c, err, code, "this needs an administrator (group %s)",
			      c->b->conf->broker.admin_group);
	else if (err == -EPERM)
		brk_call_fail(c, err, code, "this route is for users: log in (POST /api/v1/login)");
	else if (c->deferred)
		brk_call_fail(c, err, code, "your login has expired: log in again");
	else
		brk_call_fail(c, err, code, "log in first (POST /api/v1/login)");
}

/*
 * Whether the caller may use c->route: the only place where roles are
 * checked.  On the loop thread (on_pool 0) it tells a node's credential,
 * admits or refuses it, and refuses a request with no credential at all;
 * a bearer that may be a user's token is DEFERred to the thread pool
 * (on_pool 1), where the store says whose it is and NSS whether that user
 * is an admin now (not at login: a user taken out of admin_group loses the
 * admin routes with the next request).  A user's token is refused on the
 * routes of nodes with 403 too: it is a credential, of another role.
 * A credential admitted marks the connection authenticated (httpd.h):
 * it no longer counts against its source's cap.
 */
static int admit(struct brk_call *c, int on_pool)
{
	const struct brk_route *r = c->route;
	char hash[PT_TICKET_HASH_LEN + 1];
	const char *tok = pt_http_bearer(c->req);
	struct brk_token t;
	int role, rc;

	if (r->roles & BRK_ROLE_ANYONE)
		return ADMIT;
	if (!on_pool) {
		/* A forwarded request's credentials: the gateway's, checked in
		 * forwarded(), and the user's bearer. */
		role = c->forwarded ? BRK_ROLE_NONE :
				      brk_node_role(c->b->conf, c->req, c->node, sizeof(c->node));
		if (role < 0) {
			deny(c, -EPERM, role);
			return DENIED;
		}
		if (role != BRK_ROLE_NONE) {
			if (!(r->roles & role)) {
				deny(c, -EPERM, role);
				return DENIED;
			}
			c->role = role;
			pt_http_authenticated(c->req);
			return ADMIT;
		}
		if (!tok || !pt_ticket_valid(tok)) {
			deny(c, -EACCES, BRK_ROLE_NONE);
			return DENIED;
		}
		c->deferred = 1;
		return DEFER;
	}
	pt_ticket_hash(tok, hash);
	rc = brk_store_token_get(c->b->store, hash, brk_now_ms(), &t);
	if (rc == -ENOENT) {
		deny(c, -EACCES, BRK_ROLE_NONE);
		return DENIED;
	}
	if (rc) {
		brk_call_store_error(c, rc);
		return DENIED;
	}
	snprintf(c->user, sizeof(c->user), "%s", t.user);
	memcpy(c->sealed, t.sealed, sizeof(c->sealed));
	explicit_bzero(t.sealed, sizeof(t.sealed));
	if (r->roles & BRK_ROLE_USER) {
		c->role = BRK_ROLE_USER;
		pt_http_authenticated(c->req);
		return ADMIT;
	}
	if ((r->roles & BRK_ROLE_ADMIN) &&
	    brk_user_in_group(c->user, c->b->conf->broker.admin_group)) {
		c->role = BRK_ROLE_ADMIN;
		pt_http_authenticated(c->req);
		return ADMIT;
	}
	deny(c, -EPERM, BRK_ROLE_USER);
	return DENIED;
}

/* --- the request's arguments, read once the caller is admitted ------------------- */

static int parse_id(const char *s, int64_t *id)
{
	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 18)
		return -1;
	*id = strtoll(s, NULL, 10);
	return *id > 0 ? 0 : -1;
}

/* The path's parameter and the body; 0, or -1 with the answer set. */
static int prepare(struct brk_call *c)
{
	const char *p = strchr(c->route->path, ':');
	json_error_t e;

	if (p && !strncmp(p, ":name", 5)) {
		if (!pt_conf_pool_name_valid(c->arg)) {
			brk_call_fail(c, -EINVAL, "bad_name", "'%.64s' is not a valid name",
				      c->arg);
			return -1;
		}
		snprintf(c->name, sizeof(c->name), "%s", c->arg);
	} else if (p && !strncmp(p, ":host", 5)) {
		if (!brk_name_ok(c->arg, 127)) {
			brk_call_fail(c, -ENOENT, "not_found", "no such API path: %.200s",
				      c->req->path);
			return -1;
		}
		snprintf(c->name, sizeof(c->name), "%s", c->arg);
	} else if (p && !strncmp(p, ":id", 3)) {
		if (parse_id(c->arg, &c->id)) {
			brk_call_fail(c, -EINVAL, "bad_id", "'%.32s' is not a session id", c->arg);
			return -1;
		}
	}
	if ((c->route->flags & BRK_ROUTE_JSON) ||
	    ((c->route->flags & BRK_ROUTE_JSON_OPT) && c->req->body_len > 0)) {
		c->in = json_loadb(c->req->body, c->req->body_len, JSON_REJECT_DUPLICATES, &e);
		if (!c->in || !json_is_object(c->in)) {
			brk_call_fail(c, -EINVAL, "bad_json", "the body must be a JSON object%s%s",
				      c->in ? "" : ": ", c->in ? "" : e.text);
			return -1;
		}
	}
	return 0;
}

/* On the pool: the rest of the role check when it was deferred, the
 * arguments, then the handler. */
static void run_route(struct brk_call *c)
{
	if (c->deferred && admit(c, 1) != ADMIT)
		return;
	json_t *audit;

	if (prepare(c))
		return;
	audit = brk_audit_admin_before(c);
	c->route->handler(c);
	brk_audit_admin_after(c, audit);
}

/* --- matching ---------------------------------------------------------------------- */

#define SEG_MAX	 8
#define SEG_SIZE 80

/* Split the path below /api/v1/ into 1 to SEG_MAX segments, or -1. */
static int split(const char *path, char seg[SEG_MAX][SEG_SIZE])
{
	const char *p;
	int n = 0;

	if (strncmp(path, "/api/v1/", 8))
		return -1;
	p = path + 8;
	while (n < SEG_MAX) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || len >= SEG_SIZE)
			return -1;
		memcpy(seg[n], p, len);
		seg[n][len] = '\0';
		n++;
		if (!e)
			return n;
		p = e + 1;
	}
	return -1;
}

/* Whether the pattern matches the segments; arg gets a parameter's value. */
static int pattern_matches(const char *pat, char seg[SEG_MAX][SEG_SIZE], int n, char arg[SEG_SIZE])
{
	int i = 0;

	while (*pat == '/' && i < n) {
		const char *e = strchr(pat + 1, '/');
		size_t len = e ? (size_t)(e - pat - 1) : strlen(pat + 1);
		if (pat[1] == ':') {
			if (arg)
				snprintf(arg, SEG_SIZE, "%s", seg[i]);
		} else if (strlen(seg[i]) != len || strncmp(pat + 1, seg[i], len)) {
			return 0;
		}
		pat += len + 1;
		i++;
	}
	return !*pat && i == n;
}

static const struct brk_route *match(int method, const char *path, unsigned long *allowed,
				     char arg[SEG_SIZE])
{
	char seg[SEG_MAX][SEG_SIZE];
	int n = split(path, seg);

	*allowed = 0;
	for (size_t i = 0; n > 0 && i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!pattern_matches(routes[i].path, seg, n, NULL))
			continue;
		if (routes[i].method == method) {
			pattern_matches(routes[i].path, seg, n, arg);
			return &routes[i];
		}
		*allowed |= 1UL << routes[i].method;
	}
	return NULL;
}

const struct brk_route *brk_api_match(int method, const char *path, unsigned long *allowed)
{
	char arg[SEG_SIZE];

	return match(method, path, allowed, arg);
}

static void not_allowed(struct brk *b, struct pt_http_req *req, unsigned long allowed)
{
	static const char body[] =
		"{\"error\":\"method_not_allowed\",\"message\":\"method not allowed\"}";
	char allow[128] = "Allow:";
	size_t o = strlen(allow);

	for (int m = 0; m < (int)(sizeof(allowed) * 8) && o < sizeof(allow); m++)
		if (allowed & (1UL << m))
			o += (size_t)snprintf(allow + o, sizeof(allow) - o, "%s %s",
					      o > 6 ? "," : "", http_method_str(m));
	if (o < sizeof(allow))
		snprintf(allow + o, sizeof(allow) - o, "\r\n");
	respond(b, req, 405, "application/json", body, sizeof(body) - 1, allow);
}

static void refuse(struct brk *b, struct pt_http_req *req, int status, const char *code,
		   char *msg)
{
	printable(msg);
	respond_json(b, req, status, json_pack("{s:s,s:s}", "error", code, "message", msg));
}

/*
 * A user's request that a gateway's HTTPS front passed on (docs/api.md,
 * "Through a gateway"): the client's address in `Forwarded: for=ADDR`
 * (RFC 7239, one element), believed only from a gateway, which presents
 * its certificate or its secret in PT_API_GATEWAY_HEADER (Authorization is
 * the user's), and only on the routes users call.  0, or -1 with the
 * refusal set (brk_call_fail).
 */
static int forwarded(struct brk_call *c, const char *fwd)
{
	const struct pt_broker_conf *bc = &c->b->conf->broker;
	const char *sec = pt_http_header(c->req, PT_API_GATEWAY_HEADER);
	char addr[64], node[128];
	unsigned char bin[16];
	const char *p, *end;
	size_t n;
	int gw;

	gw = c->req->peer_verified ?
		     brk_node_role(c->b->conf, c->req, node, sizeof(node)) == BRK_ROLE_GATEWAY :
		     sec && bc->gateway_secret && *bc->gateway_secret &&
			     strlen(sec) == strlen(bc->gateway_secret) &&
			     CRYPTO_memcmp(sec, bc->gateway_secret, strlen(sec)) == 0;
	if (!gw) {
		brk_call_fail(c, -EPERM, "forbidden",
			      "a forwarded request is taken only from a gateway");
		return -1;
	}
	if (!(c->route->roles & (BRK_ROLE_ANYONE | BRK_ROLE_USER))) {
		brk_call_fail(c, -EPERM, "forbidden", "a gateway forwards only the routes of users");
		return -1;
	}
	/* for=ADDR or for="ADDR" or for="[v6]", nothing else. */
	p = fwd && !strncasecmp(fwd, "for=", 4) ? fwd + 4 : NULL;
	end = "";
	if (p && *p == '"') {
		p++;
		end = *p == '[' ? "]\"" : "\"";
		p += *p == '[';
	}
	n = p ? strcspn(p, "\"[]") : 0;
	if (!p || n == 0 || n >= sizeof(addr) || strcmp(p + n, end)) {
		brk_call_fail(c, -EINVAL, "bad_forwarded", "Forwarded must be one for=ADDRESS");
		return -1;
	}
	memcpy(addr, p, n);
	addr[n] = '\0';
	if (inet_pton(AF_INET, addr, bin) != 1 && inet_pton(AF_INET6, addr, bin) != 1) {
		brk_call_fail(c, -EINVAL, "bad_forwarded", "Forwarded must be one for=ADDRESS");
		return -1;
	}
	snprintf(c->rhost, sizeof(c->rhost), "%s", addr);
	c->forwarded = 1;
	/* The gateway's connection: no longer counted as not authenticated. */
	pt_http_authenticated(c->req);
	return 0;
}

/* The HTTP handler: every /api/v1 route. */
void brk_api_handle(struct pt_http_req *req, void *data)
{
	struct brk *b = data;
	struct brk_call *c;
	unsigned long allowed;
	char arg[SEG_SIZE] = "", msg[300];
	const struct brk_route *r = match(req->method, req->path, &allowed, arg);

	if (!r && allowed) {
		not_allowed(b, req, allowed);
		return;
	}
	if (!r) {
		snprintf(msg, sizeof(msg), "no such API path: %.200s", req->path);
		refuse(b, req, 404, "not_found", msg);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(msg, sizeof(msg), "out of memory");
		refuse(b, req, 503, "busy", msg);
		return;
	}
	b->calls++;
	c->b = b;
	c->req = req;
	c->route = r;
	snprintf(c->rhost, sizeof(c->rhost), "%.63s", req->peer);
	snprintf(c->arg, sizeof(c->arg), "%s", arg);
	if ((pt_http_header(req, "forwarded") || pt_http_header(req, PT_API_GATEWAY_HEADER)) &&
	    forwarded(c, pt_http_header(req, "forwarded"))) {
		brk_call_finish(c);
		return;
	}
	switch (admit(c, 0)) {
	case DENIED:
		brk_call_finish(c);
		return;
	case DEFER:
		/* Only user routes defer, and their handlers run on the pool. */
		brk_call_queue(c, run_route);
		return;
	}
	if (!(r->flags & BRK_ROUTE_LOOP)) {
		brk_call_queue(c, run_route);
		return;
	}
	if (prepare(c)) {
		brk_call_finish(c);
		return;
	}
	r->handler(c);
}

void brk_api_serve_inline(struct brk *b, struct pt_http_req *req)
{
	brk_api_handle(req, b);
}
