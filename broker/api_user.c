/*
 * api_user.c - the routes of any logged-in user (docs/api.md, "Users"):
 * logout, the resources they may open, their sessions; and session objects,
 * which admins see too.  The launch is launch.c's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "control.h"
#include "pool.h"
#include "portico/log.h"
#include "portico/ticket.h"

static const char *const state_names[] = { "starting", "ready", "active", "disconnected", "ended" };

const char *brk_state_name(int state)
{
	return state_names[state >= 0 && state < 5 ? state : 4];
}

int brk_state_of(const char *name)
{
	for (int i = 0; i < 5; i++)
		if (!strcmp(name, state_names[i]))
			return i;
	return -1;
}

json_t *brk_session_json(const struct brk_session *s)
{
	json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "id", (json_int_t)s->id,
			      "pool", s->pool, "user", s->user, "host", s->host, "state",
			      brk_state_name(s->state), "created_ms", (json_int_t)s->created_ms,
			      "updated_ms", (json_int_t)s->updated_ms, "bytes_up",
			      (json_int_t)s->bytes_up, "bytes_down", (json_int_t)s->bytes_down);

	if (!o)
		return NULL;
	if (s->last_input_ms)
		json_object_set_new(o, "last_input_ms", json_integer(s->last_input_ms));
	if (s->ended_ms) {
		json_object_set_new(o, "ended_ms", json_integer(s->ended_ms));
		json_object_set_new(o, "end_reason", json_string(s->end_reason));
	}
	return o;
}

void brk_answer_sessions(struct brk_call *c, const struct brk_session_filter *f)
{
	struct brk_session *ss = NULL;
	size_t n = 0;
	int rc = brk_store_session_list(c->b->store, f, &ss, &n);
	json_t *a;

	if (rc) {
		brk_call_store_error(c, rc);
		return;
	}
	a = json_array();
	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, brk_session_json(&ss[i]));
	free(ss);
	brk_call_ok(c, 200, json_pack("{s:o}", "sessions", a));
}

void brk_user_logout(struct brk_call *c)
{
	char hash[PT_TICKET_HASH_LEN + 1];

	/* The role check found the token: it is there and valid. */
	pt_ticket_hash(pt_http_bearer(c->req), hash);
	brk_store_token_delete(c->b->store, hash);
	brk_call_ok(c, 200, NULL);
}

void brk_user_resources(struct brk_call *c)
{
	struct brk_session_filter f = { .user = c->user, .state = -2 };
	struct brk_pool *pools = NULL;
	struct brk_session *ss = NULL;
	size_t n = 0, ns = 0;
	char **groups;
	json_t *a;
	int rc;

	rc = brk_store_pool_list(c->b->store, &pools, &n);
	if (!rc)
		rc = brk_store_session_list(c->b->store, &f, &ss, &ns);
	if (rc) {
		brk_pools_free(pools, n);
		brk_call_store_error(c, rc);
		return;
	}
	groups = brk_user_groups(c->user);
	a = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct pt_pool_conf *pc = &pools[i].c;
		json_t *sess = json_null();
		if (!brk_pool_entitled(pc, c->user, groups))
			continue;
		for (size_t k = 0; k < ns; k++)
			if (!strcmp(ss[k].pool, pc->name)) {
				json_decref(sess);
				sess = brk_session_json(&ss[k]);
				break;
			}
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:o}", "name", pc->name, "kind",
						   pc->kind == PT_POOL_APP ? "app" : "desktop",
						   "protocol",
						   pc->protocol == PT_PROTO_RDP ? "rdp" : "vnc",
						   "session", sess));
	}
	brk_groups_free(groups);
	brk_pools_free(pools, n);
	free(ss);
	brk_call_ok(c, 200, json_pack("{s:o}", "resources", a));
}

void brk_user_sessions(struct brk_call *c)
{
	struct brk_session_filter f = { .user = c->user, .state = -2 };

	brk_answer_sessions(c, &f);
}

void brk_user_logoff(struct brk_call *c)
{
	brk_session_action(c, BRK_OP_LOGOFF, 1);
}

void brk_session_action(struct brk_call *c, int op, int own)
{
	const char *what = op == BRK_OP_DISCONNECT ? "disconnect" : "logoff";
	struct brk_session s;
	int rc = brk_store_session_get(c->b->store, c->id, &s);

	if (rc == 0 && own && strcmp(s.user, c->user))
		rc = -ENOENT; /* not telling whose it is */
	if (rc == -ENOENT || (rc == 0 && s.state == BRK_ENDED)) {
		brk_call_fail(c, -ENOENT, "no_such_session", "no live session %lld",
			      (long long)c->id);
		return;
	}
	if (rc) {
		brk_call_store_error(c, rc);
		return;
	}
	if (op == BRK_OP_DISCONNECT)
		rc = brk_store_session_event(c->b->store, c->id, "disconnect", brk_now_ms(), 0, 0);
	else
		rc = brk_store_session_end(c->b->store, c->id, own ? "logoff" : "logoff by admin",
					   brk_now_ms(), NULL);
	if (rc) {
		brk_call_store_error(c, rc);
		return;
	}
	if (op != BRK_OP_DISCONNECT)
		brk_host_stop(c->b, &s, own ? "logoff" : "logoff by admin");
	/* The viewer's connection closes now, not at its next input report. */
	if (own)
		brk_control_add(c->b, c->id, "logoff", "logged off by the user");
	else
		brk_control_add(c->b, c->id, what, "%s by an administrator (%s)",
				op == BRK_OP_DISCONNECT ? "disconnected" : "logged off", c->user);
	pt_log(PT_LOG_INFO, c->req->id, "%s session %lld of %s (by %s)", what, (long long)c->id,
	       s.user, c->user);
	if (brk_store_session_get(c->b->store, c->id, &s) == 0)
		brk_call_ok(c, 200, brk_session_json(&s));
	else
		brk_call_ok(c, 200, NULL);
}
