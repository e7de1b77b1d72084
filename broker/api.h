/*
 * api.h - the core of the broker's HTTP API (docs/api.md), shared by the
 * files that hold its handlers.
 *
 * A request is matched once to a row of the route table (api.c); the
 * caller's role is checked against the row's roles in one place (api.c,
 * admit()) before any handler runs; the handler, in the file of its
 * audience, sets the answer.  Handlers speak -errno; the HTTP status is
 * made from it in one map at the edge (brk_api_status).
 *
 *   api.c          the route table, the role check, calls, the status map
 *   api_user.c     what any logged-in user may do (and session objects)
 *   api_admin.c    pools, hosts and sessions, for admins
 *   api_gateway.c  tickets, logins at the gateway, connection events
 *   api_host.c     session hosts: register, heartbeat, events
 *   login.c        PAM logins and their throttling (users and gateways)
 *   launch.c       the launch path: reconnect or assign, start, ticket
 */
#ifndef BROKER_API_H
#define BROKER_API_H

#include <stdint.h>

#include "broker.h"
#include "roles.h"

#define BRK_USER_MAX	 255
#define BRK_PASSWORD_MAX 511

struct brk_call;

/* A route's handler.  It runs on the thread pool and sets the answer
 * (brk_call_ok, brk_call_fail), which is sent when it returns; with
 * BRK_ROUTE_LOOP it runs on the loop thread instead and ends the call
 * itself (brk_call_finish, or by queueing more work with brk_call_queue). */
typedef void (*brk_handler_cb)(struct brk_call *c);

enum brk_route_flag {
	BRK_ROUTE_JSON = 1 << 0,     /* the body must be a JSON object */
	BRK_ROUTE_JSON_OPT = 1 << 1, /* ... when there is a body */
	BRK_ROUTE_LOOP = 1 << 2,     /* the handler runs on the loop (it starts PAM) */
};

/* One row of the route table: {method, path pattern, roles, handler}.
 * The path is below /api/v1; a segment ":name" is a pool name, ":id" a
 * session id, ":host" a host name (checked after the roles). */
struct brk_route {
	int method; /* enum http_method */
	const char *path;
	int roles; /* BRK_ROLE_* bits the route admits */
	brk_handler_cb handler;
	int flags; /* enum brk_route_flag */
	int op;	   /* for handlers that serve several rows (drain or undrain, ...) */
};

/* What a handler serving several rows is asked to do (brk_route.op). */
enum brk_op {
	BRK_OP_NONE = 0,
	BRK_OP_DRAIN,
	BRK_OP_UNDRAIN,
	BRK_OP_DISCONNECT,
	BRK_OP_LOGOFF,
	BRK_OP_RDP_FILE, /* launch answered as a .rdp file */
	BRK_OP_REGISTER,
	BRK_OP_HEARTBEAT,
};

/* One request from its match to its answer.  Owned by the API: handlers
 * read it and set the answer, never free it. */
struct brk_call {
	uv_work_t work;
	uv_timer_t delay; /* failed logins answer at a fixed time */
	struct brk *b;
	struct pt_http_req *req;
	const struct brk_route *route;
	brk_handler_cb next; /* what runs on the pool next */
	int deferred;	     /* the roles are checked on the pool (a user's token) */
	/* who asks, set by the role check (login.c sets user after PAM) */
	int role;		     /* one BRK_ROLE_* */
	char node[128];		     /* a node's certificate CN, "" for a shared secret */
	char user[264];		     /* a user's name */
	char sealed[BRK_SEALED_MAX]; /* the user's token's sealed password (sso) */
	char rhost[64];		     /* the client's address: tickets, throttling */
	int forwarded; /* a user's request a gateway passed on (rhost is the one it named) */
	/* the request, set before the handler runs */
	char arg[80];  /* the path's parameter as sent */
	char name[80]; /* :name or :host, checked; or a pool named in the body */
	int64_t id;    /* :id */
	json_t *in;    /* the JSON body, or NULL */
	char geometry[24];
	/* the answer */
	int status;
	json_t *out;
	char *text; /* a body that is not JSON (.rdp) */
	const char *ctype;
	int64_t answer_at_ms; /* not before (uv_now's clock); 0: at once */
	int parked; /* the answer comes from a start on a host (brk_call_park) */
};

/* The HTTP status for a handler's -errno (the one map, api.c). */
int brk_api_status(int err);

/* Answer {"error": code, "message": ...} with the status of err. */
void brk_call_fail(struct brk_call *c, int err, const char *code, const char *fmt, ...)
	PT_PRINTF(4, 5);
/* The store failed (rc): log it, answer 500 "internal". */
void brk_call_store_error(struct brk_call *c, int rc);
/* The same with the store's words as the failing thread had them (a call
 * that failed on another thread than the one answering). */
void brk_call_store_failed(struct brk_call *c, int rc, const char *why);
/* Answer doc (taken; NULL: {}) with status. */
void brk_call_ok(struct brk_call *c, int status, json_t *doc);
/* Loop thread: send the answer (now or at answer_at_ms) and free c. */
void brk_call_finish(struct brk_call *c);
/* Loop thread: run fn on the thread pool, then finish c. */
void brk_call_queue(struct brk_call *c, brk_handler_cb fn);
/* In a handler on the thread pool, before it hands c to a call to a
 * session host (hostq.h): c is not answered when the handler returns, but
 * when that call's done says brk_call_resume.  Undo with brk_call_unpark
 * (the same thread) when the hand-over fails. */
void brk_call_park(struct brk_call *c);
void brk_call_unpark(struct brk_call *c);
/* Loop thread: the parked call's answer is set; send it (once the handler
 * has returned too). */
void brk_call_resume(struct brk_call *c);
/* A string member of the JSON body, or NULL. */
const char *brk_call_str(const struct brk_call *c, const char *key);

/* Printable, 1 to max bytes, no ':' or '/': what a user or host name may be. */
int brk_name_ok(const char *s, size_t max);

/* For tests and fuzzing: serve req as the HTTP server's handler does (the
 * same match, role check, body parsing and handler), but with every job
 * that would go to the thread pool run inline on this thread, and the
 * answer handed to b->answer_cb (which must be set) instead of a
 * connection.  req and req->body are malloc'd and taken (freed with the
 * answer); req->conn must be NULL.  A route whose handler waits for PAM
 * answers when b->auth's process does and the loop runs. */
void brk_api_serve_inline(struct brk *b, struct pt_http_req *req);

/* The route table, for tests: n rows. */
const struct brk_route *brk_api_routes(size_t *n);
/* The row for method and path (/api/v1/...), or NULL with
 * *allowed set to the methods the path takes (0: an unknown path), as bits
 * 1 << method. */
const struct brk_route *brk_api_match(int method, const char *path, unsigned long *allowed);

/* --- handlers, by audience ----------------------------------------------- */

/* api_user.c */
void brk_user_logout(struct brk_call *c);
void brk_user_resources(struct brk_call *c);
void brk_user_sessions(struct brk_call *c);
void brk_user_logoff(struct brk_call *c);
/* A session as users and admins see it (never its backend or secret). */
json_t *brk_session_json(const struct brk_session *s);
/* Answer {"sessions": [...]} with the sessions filter f selects. */
void brk_answer_sessions(struct brk_call *c, const struct brk_session_filter *f);
/* Disconnect or end session c->id (op BRK_OP_DISCONNECT or BRK_OP_LOGOFF);
 * own: only one of c->user's. */
void brk_session_action(struct brk_call *c, int op, int own);
/* "starting", "ready", ... for a state; -1 for an unknown name. */
const char *brk_state_name(int state);
int brk_state_of(const char *name);

/* api_admin.c */
void brk_admin_pools(struct brk_call *c);
void brk_admin_pool_create(struct brk_call *c);
void brk_admin_pool_show(struct brk_call *c);
void brk_admin_pool_update(struct brk_call *c);
void brk_admin_pool_delete(struct brk_call *c);
void brk_admin_pool_drain(struct brk_call *c);
void brk_admin_hosts(struct brk_call *c);
void brk_admin_host_drain(struct brk_call *c);
void brk_admin_sessions(struct brk_call *c);
void brk_admin_session_action(struct brk_call *c);

/* api_gateway.c */
void brk_gateway_redeem(struct brk_call *c);
void brk_gateway_authorize(struct brk_call *c); /* loop */
void brk_gateway_events(struct brk_call *c);
void brk_admin_session_message(struct brk_call *c);

/* api_host.c */
void brk_host_hello(struct brk_call *c); /* register and heartbeat */
void brk_host_events(struct brk_call *c);

/* login.c */
void brk_login(struct brk_call *c); /* loop */
/* Loop: check and throttle c's username and password, ask PAM, and on
 * success run then (on the pool) with c->user the name PAM settled on. */
void brk_login_start(struct brk_call *c, brk_handler_cb then);

/* launch.c */
void brk_launch(struct brk_call *c);
/* After PAM at gateway/authorize: launch in c->name (or the user's only
 * pool) and answer as redeem does, with a fresh ticket. */
void brk_launch_authorized(struct brk_call *c);
/* Redeem's answer for session s of pool; ticket: a fresh one to add. */
void brk_redeem_answer(struct brk_call *c, const struct brk_session *s, const struct brk_pool *pool,
		       const char *ticket, const char *password);

#endif
