/*
 * api_admin.c - the admins' routes (docs/api.md, "Admins"): pools, hosts
 * and sessions.  The role check (api.c) has asked NSS whether the caller is
 * in admin_group for this very request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "control.h"
#include "pool.h"
#include "portico/log.h"

/* --- pools ------------------------------------------------------------------ */

static void no_pool(struct brk_call *c)
{
	brk_call_fail(c, -ENOENT, "no_such_pool", "no pool %s", c->name);
}

void brk_admin_pools(struct brk_call *c)
{
	struct brk_pool *pools = NULL;
	size_t n = 0;
	json_t *a;
	int rc = brk_store_pool_list(c->b->store, &pools, &n);

	if (rc) {
		brk_call_store_error(c, rc);
		return;
	}
	a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, brk_pool_json(&pools[i]));
	brk_pools_free(pools, n);
	brk_call_ok(c, 200, json_pack("{s:o}", "pools", a));
}

/* Apply the body to p and store it (create: a new pool). */
static void pool_put(struct brk_call *c, struct brk_pool *p, int create)
{
	char err[512];
	int rc;

	if (brk_pool_from_json(c->in, &p->c, err, sizeof(err))) {
		brk_call_fail(c, -EINVAL, "bad_pool", "%s", err);
		return;
	}
	p->from_config = 0;
	rc = brk_store_pool_put(c->b->store, p, create);
	if (rc == -EEXIST) {
		brk_call_fail(c, -EEXIST, "exists", "pool %s exists already", c->name);
	} else if (rc) {
		brk_call_store_error(c, rc);
	} else {
		pt_log(PT_LOG_INFO, c->req->id, "pool %s %s by %s", c->name,
		       create ? "created" : "updated", c->user);
		brk_call_ok(c, create ? 201 : 200, brk_pool_json(p));
	}
}

void brk_admin_pool_create(struct brk_call *c)
{
	const char *name = brk_call_str(c, "name");
	struct brk_pool p = { 0 };
	int rc;

	if (!name || !pt_conf_pool_name_valid(name)) {
		brk_call_fail(c, -EINVAL, "bad_request",
			      "name: 1 to 64 letters, digits, '_', '.' or '-' (not . or ..)");
		return;
	}
	snprintf(c->name, sizeof(c->name), "%s", name);
	rc = pt_conf_pool_init(&p.c, name);
	if (rc)
		brk_call_fail(c, -ENOMEM, "busy", "out of memory");
	else
		pool_put(c, &p, 1);
	brk_pool_clear(&p);
}

/* Pool c->name into *p: 0, or -1 with the answer made (404, store). */
static int pool_get(struct brk_call *c, struct brk_pool *p)
{
	int rc = brk_store_pool_get(c->b->store, c->name, p);

	if (rc == -ENOENT)
		no_pool(c);
	else if (rc)
		brk_call_store_error(c, rc);
	return rc ? -1 : 0;
}

void brk_admin_pool_update(struct brk_call *c)
{
	struct brk_pool p = { 0 };

	if (pool_get(c, &p) == 0)
		pool_put(c, &p, 0);
	brk_pool_clear(&p);
}

/* Answer pool c->name as it is now. */
static void pool_show(struct brk_call *c)
{
	struct brk_pool p = { 0 };

	if (pool_get(c, &p) == 0)
		brk_call_ok(c, 200, brk_pool_json(&p));
	brk_pool_clear(&p);
}

void brk_admin_pool_show(struct brk_call *c)
{
	pool_show(c);
}

void brk_admin_pool_delete(struct brk_call *c)
{
	int rc = brk_store_pool_delete(c->b->store, c->name);

	if (rc == -EBUSY) {
		brk_call_fail(c, -EBUSY, "in_use",
			      "pool %s has live sessions: drain it and end them first", c->name);
	} else if (rc == -ENOENT) {
		no_pool(c);
	} else if (rc) {
		brk_call_store_error(c, rc);
	} else {
		pt_log(PT_LOG_INFO, c->req->id, "pool %s deleted by %s", c->name, c->user);
		brk_call_ok(c, 200, NULL);
	}
}

void brk_admin_pool_drain(struct brk_call *c)
{
	int rc = brk_store_pool_set_drained(c->b->store, c->name, c->route->op == BRK_OP_DRAIN);

	if (rc == -ENOENT)
		no_pool(c);
	else if (rc)
		brk_call_store_error(c, rc);
	else
		pool_show(c);
}

/* --- hosts ------------------------------------------------------------------ */

static json_t *host_json(const struct brk_host *h)
{
	return json_pack("{s:s,s:s,s:s,s:b,s:I,s:I,s:f,s:I}", "name", h->name, "address",
			 h->address, "kind", h->sessiond ? "sessiond" : "static", "drained",
			 h->drained, "sessions", (json_int_t)h->sessions, "last_seen_ms",
			 (json_int_t)h->last_seen_ms, "load", h->load, "mem_free_kb",
			 (json_int_t)h->mem_free_kb);
}

/* Every host (only: just that one, answered alone). */
static void hosts_answer(struct brk_call *c, const char *only)
{
	struct brk_host *h = NULL;
	size_t n = 0;
	json_t *a, *one = NULL;
	int rc = brk_store_host_list(c->b->store, &h, &n);

	if (rc) {
		brk_call_store_error(c, rc);
		return;
	}
	a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (only && strcmp(h[i].name, only))
			continue;
		json_array_append_new(a, host_json(&h[i]));
	}
	free(h);
	if (only) {
		one = json_incref(json_array_get(a, 0));
		brk_call_ok(c, 200, one);
		json_decref(a);
	} else {
		brk_call_ok(c, 200, json_pack("{s:o}", "hosts", a));
	}
}

void brk_admin_hosts(struct brk_call *c)
{
	hosts_answer(c, NULL);
}

/* drain --now (?now=1): the host's live sessions end at once, as a
 * logoff, and their viewers are closed (control.c).  0 or the store's error;
 * *n how many ended. */
static int drain_now(struct brk_call *c, int *n)
{
	struct brk_session_filter f = { .host = c->name, .state = -2 };
	struct brk_session *v = NULL;
	size_t nv = 0;
	int rc = brk_store_session_list(c->b->store, &f, &v, &nv), ended;

	*n = 0;
	for (size_t i = 0; rc == 0 && i < nv; i++) {
		rc = brk_store_session_end(c->b->store, v[i].id, "host drained now", brk_now_ms(),
					   &ended);
		if (rc || !ended)
			continue;
		brk_host_stop(c->b, &v[i], "host drained now");
		brk_control_add(c->b, v[i].id, "drain", "host %s drained now by %s", c->name,
				c->user);
		(*n)++;
	}
	free(v);
	return rc;
}

void brk_admin_host_drain(struct brk_call *c)
{
	int drain = c->route->op == BRK_OP_DRAIN, now = 0, ended = 0;
	char v[8];
	int rc;

	if (pt_http_query(c->req, "now", v, sizeof(v)) == 0) {
		if (!drain || (strcmp(v, "1") && strcmp(v, "yes") && strcmp(v, "true"))) {
			brk_call_fail(c, -EINVAL, "bad_request",
				      "now: 1, on drain only (its sessions end at once)");
			return;
		}
		now = 1;
	}
	rc = brk_store_host_set_drained(c->b->store, c->name, drain);

	if (rc == -ENOENT) {
		brk_call_fail(c, -ENOENT, "no_such_host", "no host %s", c->name);
		return;
	}
	if (rc) {
		brk_call_store_error(c, rc);
		return;
	}
	if (now && (rc = drain_now(c, &ended)) != 0) {
		brk_call_store_error(c, rc);
		return;
	}
	pt_log(PT_LOG_INFO, c->req->id, "host %s %s by %s%s%d%s", c->name,
	       drain ? "drained" : "undrained", c->user, now ? " now: " : "", ended,
	       now ? " sessions ended" : "");
	hosts_answer(c, c->name);
}

/* --- sessions ---------------------------------------------------------------- */

void brk_admin_sessions(struct brk_call *c)
{
	struct brk_session_filter f = { .state = -2 };
	char pool[80] = "", user[BRK_USER_MAX + 1] = "", state[32] = "";

	if (pt_http_query(c->req, "pool", pool, sizeof(pool)) == 0)
		f.pool = pool;
	if (pt_http_query(c->req, "user", user, sizeof(user)) == 0)
		f.user = user;
	if (pt_http_query(c->req, "state", state, sizeof(state)) == 0) {
		if (!strcmp(state, "all"))
			f.state = -1;
		else if (!strcmp(state, "live"))
			f.state = -2;
		else if ((f.state = brk_state_of(state)) < 0) {
			brk_call_fail(
				c, -EINVAL, "bad_request",
				"state: starting, ready, active, disconnected, ended, live or all");
			return;
		}
	}
	brk_answer_sessions(c, &f);
}

void brk_admin_session_action(struct brk_call *c)
{
	brk_session_action(c, c->route->op, 0);
}

/* Text a person reads: 1 to 400 bytes of UTF-8 (jansson checked that),
 * no control characters but line breaks. */
static int message_ok(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n > 400)
		return 0;
	for (; *t; t++)
		if ((unsigned char)*t < 0x20 && *t != '\n')
			return 0;
		else if (*t == 0x7f)
			return 0;
	return 1;
}

/* POST /admin/sessions/:id/message {"text"}: shown to the user now. */
void brk_admin_session_message(struct brk_call *c)
{
	const char *text = brk_call_str(c, "text");
	struct brk_session s;
	int rc;

	if (!text || !message_ok(text)) {
		brk_call_fail(c, -EINVAL, "bad_request",
			      "text: 1 to 400 bytes, no control characters but line breaks");
		return;
	}
	rc = brk_store_session_get(c->b->store, c->id, &s);
	if (rc == -ENOENT || (rc == 0 && s.state == BRK_ENDED)) {
		brk_call_fail(c, -ENOENT, "no_such_session", "no live session %lld",
			      (long long)c->id);
		return;
	}
	if (rc == 0)
		rc = brk_control_add(c->b, c->id, "message", "%s", text);
	if (rc) {
		brk_call_store_error(c, rc);
		return;
	}
	brk_host_message(c->b, &s, text);
	pt_log(PT_LOG_INFO, c->req->id, "message to session %lld of %s (by %s)", (long long)c->id,
	       s.user, c->user);
	brk_call_ok(c, 200, brk_session_json(&s));
}
