/*
 * launch.c - the launch path (docs/api.md, "POST /resources/NAME/launch"):
 * the user's live session in a pool or a new one assigned by its policy,
 * started on its session host when needed, and a one-time ticket for it.
 * Users reach it through launch and launch.rdp, gateways through
 * gateway/authorize after PAM.  Runs on the thread pool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "pool.h"
#include "portico/log.h"
#include "portico/ticket.h"
#include "seal.h"

static int gateway_port(const char *listen)
{
	const char *c = listen ? strrchr(listen, ':') : NULL;

	return c ? atoi(c + 1) : 0;
}

/* host:port where clients reach the gateway for protocol. */
static void public_address(const struct brk *b, int protocol, char *buf, size_t len)
{
	const struct pt_gateway_conf *g = &b->conf->gateway;
	const char *listen = protocol == PT_PROTO_RDP ? g->rdp_listen : g->vnc_listen;

	snprintf(buf, len, "%s:%d", g->public_host, gateway_port(listen));
}

/* The user's password for a single sign-on pool: the one a gateway's login
 * carries, else the one sealed under the user's token at login.  0, or -1
 * when there is none. */
static int sso_password(struct brk_call *c, char *pw, size_t len)
{
	const char *tok = pt_http_bearer(c->req);

	if (c->role == BRK_ROLE_GATEWAY) {
		const char *given = brk_call_str(c, "password");
		if (!given || strlen(given) >= len)
			return -1;
		snprintf(pw, len, "%s", given);
		return 0;
	}
	if (tok && c->sealed[0] && brk_unseal(tok, c->sealed, pw, len) == 0)
		return 0;
	return -1;
}

/* Seal the password for whoever redeems `ticket` (out "" when none). */
static void seal_for_ticket(struct brk_call *c, const char *ticket, char *out, size_t len)
{
	char pw[BRK_PASSWORD_MAX + 1];

	out[0] = '\0';
	if (sso_password(c, pw, sizeof(pw)) == 0) {
		if (brk_seal(ticket, pw, out, len))
			out[0] = '\0';
	} else {
		pt_log(PT_LOG_INFO, c->req->id,
		       "pool %s has sso but the password of %s is not known (a login from "
		       "before); the backend will ask for it",
		       c->name, c->user);
	}
	explicit_bzero(pw, sizeof(pw));
}

/* The errno for the status brk_host_start() answers with. */
static int start_err(int status)
{
	return status == 503 ? -EHOSTUNREACH : status == 409 ? -ECANCELED : -EREMOTEIO;
}

/* Reconnect or assign c->user in pool c->name and mint a ticket: 1 for a
 * reconnect, 0 for a new session, or -1 with the answer set. */
static int launch(struct brk_call *c, struct brk_session *s, char ticket[PT_TICKET_LEN + 1],
		  struct brk_pool *pool)
{
	struct brk_assign_req ar = { .pool = c->name, .user = c->user, .client_addr = c->rhost };
	char hash[PT_TICKET_HASH_LEN + 1];
	struct brk_ticket t = { 0 };
	char **groups;
	int rc, reconnect = 0, entitled;

	rc = brk_store_pool_get(c->b->store, c->name, pool);
	if (rc && rc != -ENOENT) {
		brk_call_store_error(c, rc);
		return -1;
	}
	groups = rc ? NULL : brk_user_groups(c->user);
	entitled = !rc && brk_pool_entitled(&pool->c, c->user, groups);
	brk_groups_free(groups);
	if (!entitled) {
		/* The same answer as an unknown pool: nobody learns what
		 * exists without being entitled to it. */
		brk_call_fail(c, -ENOENT, "no_such_resource",
			      "there is no desktop or application '%s'", c->name);
		return -1;
	}
	ar.now_ms = brk_now_ms();
	rc = brk_store_assign(c->b->store, &ar, s, &reconnect);
	if (rc == -ENOSPC) {
		brk_call_fail(c, rc, "no_capacity", "no session available in pool %s", c->name);
		return -1;
	}
	if (rc == -EDQUOT) {
		brk_call_fail(c, rc, "session_limit",
			      "you already have the most sessions allowed in pool %s", c->name);
		return -1;
	}
	if (rc) {
		brk_call_store_error(c, rc);
		return -1;
	}
	if (s->state == BRK_STARTING && reconnect) {
		brk_call_fail(c, -EAGAIN, "starting",
			      "your session in pool %s is still starting: try again in a moment",
			      c->name);
		return -1;
	}
	if (s->state == BRK_STARTING) {
		char msg[300];
		rc = brk_host_start(c->b, s, pool, c->geometry, msg, sizeof(msg));
		if (rc) {
			brk_call_fail(c, start_err(rc),
				      rc == 503 ? "host_unavailable" : "start_failed",
				      "cannot start your session in pool %s: %s", c->name, msg);
			return -1;
		}
	}
	if (pt_ticket_new(ticket)) {
		brk_call_fail(c, -EIO, "internal", "no randomness for a ticket");
		return -1;
	}
	pt_ticket_hash(ticket, hash);
	t.session_id = s->id;
	snprintf(t.user, sizeof(t.user), "%s", c->user);
	snprintf(t.client_addr, sizeof(t.client_addr), "%s", c->rhost);
	t.expires_ms = ar.now_ms + c->b->conf->broker.ticket_ttl_ms;
	if (pool->c.sso)
		seal_for_ticket(c, ticket, t.sealed, sizeof(t.sealed));
	rc = brk_store_ticket_put(c->b->store, hash, &t);
	explicit_bzero(t.sealed, sizeof(t.sealed));
	if (rc) {
		brk_call_store_error(c, rc);
		return -1;
	}
	pt_log(PT_LOG_INFO, c->req->id, "%s %s session %lld in pool %s on %s",
	       reconnect ? "reconnect" : "launch", c->user, (long long)s->id, c->name, s->host);
	return reconnect;
}

/* The launch as a ready .rdp file. */
static void rdp_file(struct brk_call *c, const char *addr, const char *ticket,
		     const struct brk_pool *pool)
{
	const char *cmd = pool->c.kind == PT_POOL_APP ? pool->c.command : NULL;
	char *rdp = NULL, *app = NULL;
	int n;

	/* An application: xrdp and RDS run an alternate shell as the session's
	 * only program; "||alias" names a RemoteApp that a Windows RDS host
	 * publishes (its own window on the client). */
	if (cmd && !strncmp(cmd, "||", 2))
		n = asprintf(&app,
			     "remoteapplicationmode:i:1\r\nremoteapplicationprogram:s:%s\r\n"
			     "remoteapplicationname:s:%s\r\n",
			     cmd, pool->c.name);
	else
		n = asprintf(&app, "%s%s%s", cmd ? "alternate shell:s:" : "", cmd ? cmd : "",
			     cmd ? "\r\n" : "");
	if (n < 0)
		app = NULL;
	else
		n = asprintf(&rdp,
			     "full address:s:%s\r\nloadbalanceinfo:s:Cookie: msts=%s\r\n"
			     "username:s:%s\r\nscreen mode id:i:1\r\nsession bpp:i:32\r\n"
			     "prompt for credentials:i:0\r\n%s",
			     addr, ticket, c->user, app);
	free(app);
	if (n < 0) {
		brk_call_fail(c, -ENOMEM, "internal", "out of memory");
		return;
	}
	c->status = 200;
	c->text = rdp;
	c->ctype = "application/x-rdp";
}

static void launch_answer(struct brk_call *c, const struct brk_session *s, const char *ticket,
			  const struct brk_pool *pool, int reconnect)
{
	char addr[320];
	json_t *o;

	public_address(c->b, pool->c.protocol, addr, sizeof(addr));
	if (c->route->op == BRK_OP_RDP_FILE) {
		rdp_file(c, addr, ticket, pool);
		return;
	}
	o = json_pack("{s:s,s:s,s:s,s:o,s:b}", "ticket", ticket, "gateway", addr, "protocol",
		      pool->c.protocol == PT_PROTO_RDP ? "rdp" : "vnc", "session",
		      brk_session_json(s), "reconnect", reconnect);
	json_object_set_new(o, "expires_in_ms", json_integer(c->b->conf->broker.ticket_ttl_ms));
	/* An application pool's program: RDP clients send it as the alternate
	 * shell (xrdp and RDS run it as the session's only program). */
	if (pool->c.kind == PT_POOL_APP && pool->c.command)
		json_object_set_new(o, "command", json_string(pool->c.command));
	brk_call_ok(c, 200, o);
}

/* launch {"geometry": "1920x1080"}: the size of the client's screen. */
static int geometry_arg(struct brk_call *c)
{
	const char *g = brk_call_str(c, "geometry");
	unsigned w, h;
	char end;

	if (!g)
		return 0;
	if (sscanf(g, "%4ux%4u%c", &w, &h, &end) != 2 || w < 200 || h < 200 || w > 8192 ||
	    h > 8192) {
		brk_call_fail(c, -EINVAL, "bad_geometry",
			      "geometry must be WIDTHxHEIGHT, each from 200 to 8192");
		return -1;
	}
	snprintf(c->geometry, sizeof(c->geometry), "%ux%u", w, h);
	return 0;
}

void brk_launch(struct brk_call *c)
{
	struct brk_session s;
	struct brk_pool pool = { 0 };
	char ticket[PT_TICKET_LEN + 1];
	int rc;

	if (geometry_arg(c))
		return;
	rc = launch(c, &s, ticket, &pool);
	if (rc >= 0)
		launch_answer(c, &s, ticket, &pool, rc);
	brk_pool_clear(&pool);
	explicit_bzero(ticket, sizeof(ticket));
}

void brk_redeem_answer(struct brk_call *c, const struct brk_session *s, const struct brk_pool *pool,
		       const char *ticket, const char *password)
{
	json_t *o =
		json_pack("{s:s,s:I,s:s,s:s,s:s,s:s}", "user", s->user, "session_id",
			  (json_int_t)s->id, "pool", s->pool, "backend", s->backend, "protocol",
			  pool->c.protocol == PT_PROTO_RDP ? "rdp" : "vnc", "secret", s->secret);

	if (pool->c.kind == PT_POOL_APP && pool->c.command)
		json_object_set_new(o, "command", json_string(pool->c.command));
	if (ticket)
		json_object_set_new(o, "ticket", json_string(ticket));
	if (pool->c.sso && password)
		json_object_set_new(
			o, "credentials",
			json_pack("{s:s,s:s}", "username", s->user, "password", password));
	brk_call_ok(c, 200, o);
}

/* The default pool for a user who named none: the only one they may use. */
static int default_pool(struct brk_call *c)
{
	struct brk_pool *pools = NULL;
	size_t n = 0, found = 0;
	char **groups;
	int rc = brk_store_pool_list(c->b->store, &pools, &n);

	if (rc) {
		brk_call_store_error(c, rc);
		return -1;
	}
	groups = brk_user_groups(c->user);
	for (size_t i = 0; i < n; i++)
		if (brk_pool_entitled(&pools[i].c, c->user, groups) && found++ == 0)
			snprintf(c->name, sizeof(c->name), "%s", pools[i].c.name);
	brk_groups_free(groups);
	brk_pools_free(pools, n);
	if (found == 1)
		return 0;
	if (found)
		brk_call_fail(c, -ENOTUNIQ, "pool_needed",
			      "you have several desktops: name one (user#pool)");
	else
		brk_call_fail(c, -ENOENT, "no_such_resource", "you have no desktop or application");
	return -1;
}

void brk_launch_authorized(struct brk_call *c)
{
	struct brk_session s;
	struct brk_pool pool = { 0 };
	char ticket[PT_TICKET_LEN + 1];
	int rc;

	if (!c->name[0] && default_pool(c))
		return;
	rc = launch(c, &s, ticket, &pool);
	if (rc >= 0)
		brk_redeem_answer(c, &s, &pool, ticket, brk_call_str(c, "password"));
	brk_pool_clear(&pool);
	explicit_bzero(ticket, sizeof(ticket));
}
