/*
 * api_gateway.c - the gateways' routes (docs/api.md, "Gateways"): a ticket
 * redeemed for a backend, a user's login at the gateway, connection events.
 * Only a gateway's credential reaches these handlers (api.c, admit()).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "pool.h"
#include "portico/log.h"
#include "portico/ticket.h"
#include "seal.h"

static void refuse_ticket(struct brk_call *c)
{
	brk_audit_redeem(c, "refused", NULL, brk_call_str(c, "client_addr"));
	/* One answer for unknown, used, expired and misplaced tickets. */
	brk_call_fail(c, -EPERM, "invalid_ticket", "the ticket is not valid");
}

void brk_gateway_redeem(struct brk_call *c)
{
	const char *ticket = brk_call_str(c, "ticket"), *addr = brk_call_str(c, "client_addr");
	char hash[PT_TICKET_HASH_LEN + 1], pw[BRK_PASSWORD_MAX + 1];
	struct brk_ticket t;
	struct brk_session s;
	struct brk_pool pool = { 0 };
	int rc, have_pw;

	if (!ticket || !pt_ticket_valid(ticket)) {
		refuse_ticket(c);
		return;
	}
	pt_ticket_hash(ticket, hash);
	rc = brk_store_ticket_take(c->b->store, hash, brk_now_ms(), &t);
	if (rc == -ENOENT) {
		refuse_ticket(c);
		return;
	}
	if (rc) {
		/* Not spent for sure (the store could not delete it): refused,
		 * and the store will not take it again (store.h). */
		brk_call_store_error(c, rc);
		return;
	}
	/* Bound to the address the ticket was issued to, where known. */
	if (t.client_addr[0] && addr && *addr && strcmp(t.client_addr, addr)) {
		pt_log(PT_LOG_WARNING, c->req->id,
		       "ticket of user %s presented from %s, issued to %s: refused", t.user, addr,
		       t.client_addr);
		explicit_bzero(t.sealed, sizeof(t.sealed));
		refuse_ticket(c);
		return;
	}
	rc = brk_store_session_get(c->b->store, t.session_id, &s);
	if (rc == 0 && s.state == BRK_ENDED)
		rc = -ENOENT;
	if (rc == 0)
		rc = brk_store_pool_get(c->b->store, s.pool, &pool);
	if (rc == -ENOENT)
		refuse_ticket(c);
	else if (rc)
		brk_call_store_error(c, rc);
	if (rc) {
		explicit_bzero(t.sealed, sizeof(t.sealed));
		brk_pool_clear(&pool);
		return;
	}
	have_pw = pool.c.sso && t.sealed[0] && brk_unseal(ticket, t.sealed, pw, sizeof(pw)) == 0;
	brk_redeem_answer(c, &s, &pool, NULL, have_pw ? pw : NULL);
	brk_audit_redeem(c, "success", &s, addr);
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(t.sealed, sizeof(t.sealed));
	brk_pool_clear(&pool);
}

/* On the loop: a user logs in at the gateway; PAM, then a launch. */
void brk_gateway_authorize(struct brk_call *c)
{
	const char *addr = brk_call_str(c, "client_addr"), *user = brk_call_str(c, "username");
	const char *pool = brk_call_str(c, "pool"), *at = NULL;

	/* The user's address, for throttling and the ticket's binding. */
	if (addr && strlen(addr) < sizeof(c->rhost))
		snprintf(c->rhost, sizeof(c->rhost), "%s", addr);
	/* "alice#office" names the pool in the user field. */
	if (user && !pool && (at = strchr(user, '#')) != NULL)
		pool = at + 1;
	if (pool) {
		if (!pt_conf_pool_name_valid(pool)) {
			brk_call_fail(c, -EINVAL, "bad_name", "'%.64s' is not a valid name", pool);
			brk_call_finish(c);
			return;
		}
		snprintf(c->name, sizeof(c->name), "%s", pool);
	}
	if (at)
		json_object_set_new(c->in, "username", json_stringn(user, (size_t)(at - user)));
	brk_login_start(c, brk_launch_authorized);
}

void brk_gateway_events(struct brk_call *c)
{
	json_t *id = json_object_get(c->in, "session_id");
	const char *ev = brk_call_str(c, "event");
	int64_t at = json_integer_value(json_object_get(c->in, "at_ms"));
	int rc, n;

	/* A gateway that starts has no relay: those it held when it died
	 * (kill -9, a crash) never said "disconnect". */
	if (ev && !strcmp(ev, "started") && !id) {
		rc = brk_store_gateway_started(c->b->store, c->node, at ? at : brk_now_ms(), &n);
		if (rc) {
			brk_call_store_error(c, rc);
			return;
		}
		if (n)
			pt_log_info("gateway %s started: %d sessions connected through it are "
				    "disconnected",
				    c->node[0] ? c->node : "(shared secret)", n);
		brk_call_ok(c, 200, json_pack("{s:i}", "disconnected", n));
		return;
	}
	if (!json_is_integer(id) || !ev ||
	    (strcmp(ev, "connect") && strcmp(ev, "disconnect") && strcmp(ev, "input"))) {
		brk_call_fail(c, -EINVAL, "bad_request",
			      "session_id and event (connect, disconnect or input), or event "
			      "started alone, are required");
		return;
	}
	rc = brk_store_session_event(c->b->store, json_integer_value(id), ev,
				     at ? at : brk_now_ms(),
				     json_integer_value(json_object_get(c->in, "bytes_up")),
				     json_integer_value(json_object_get(c->in, "bytes_down")));
	if (rc == -ENOENT)
		brk_call_fail(c, -ENOENT, "no_such_session", "no live session %lld",
			      (long long)json_integer_value(id));
	else if (rc == 0 && !strcmp(ev, "connect"))
		rc = brk_store_session_gateway(c->b->store, json_integer_value(id), c->node);
	if (rc && rc != -ENOENT)
		brk_call_store_error(c, rc);
	else if (rc == 0)
		brk_call_ok(c, 200, NULL);
}
