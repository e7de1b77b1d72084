/*
 * launch.c - the launch path (docs/api.md, "POST /resources/NAME/launch"):
 * the user's live session in a pool or a new one assigned by its policy,
 * started on its session host when needed, and a one-time ticket for it.
 * Users reach it through launch and launch.rdp, gateways through
 * gateway/authorize after PAM.  Runs on the thread pool, but for a start
 * on a session host: that runs on a thread of the host's queue (hostq.h),
 * which then mints the ticket and sets the answer, and the call is
 * answered from the loop when it is done (brk_call_park).  A host that
 * stops answering holds its own starts only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "hostq.h"
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

/* How a launch answers once its session runs: as launch (JSON or .rdp) or
 * as gateway/authorize (redeem's answer). */
typedef void (*answer_cb)(struct brk_call *c, const struct brk_session *s, const char *ticket,
			  const struct brk_pool *pool, int reconnect);

/* Mint a ticket for session s (READY or later) and answer with it. */
static void mint_and_answer(struct brk_call *c, const struct brk_session *s,
			    const struct brk_pool *pool, int reconnect, answer_cb answer)
{
	char ticket[PT_TICKET_LEN + 1], hash[PT_TICKET_HASH_LEN + 1];
	struct brk_ticket t = { 0 };
	int rc;

	if (pt_ticket_new(ticket)) {
		brk_call_fail(c, -EIO, "internal", "no randomness for a ticket");
		return;
	}
	pt_ticket_hash(ticket, hash);
	t.session_id = s->id;
	snprintf(t.user, sizeof(t.user), "%s", c->user);
	snprintf(t.client_addr, sizeof(t.client_addr), "%s", c->rhost);
	t.expires_ms = brk_now_ms() + c->b->conf->broker.ticket_ttl_ms;
	if (pool->c.sso)
		seal_for_ticket(c, ticket, t.sealed, sizeof(t.sealed));
	rc = brk_store_ticket_put(c->b->store, hash, &t);
	explicit_bzero(t.sealed, sizeof(t.sealed));
	if (rc) {
		brk_call_store_error(c, rc);
	} else {
		pt_log(PT_LOG_INFO, c->req->id, "%s %s session %lld in pool %s on %s",
		       reconnect ? "reconnect" : "launch", c->user, (long long)s->id, c->name,
		       s->host);
		brk_audit_launch(c, s, reconnect);
		answer(c, s, ticket, pool, reconnect);
	}
	explicit_bzero(ticket, sizeof(ticket));
}

/* A start on a session host, with the call that waits for it (hostq.h). */
struct start {
	struct brk_hostq_job job; /* first */
	struct brk_call *c;
	struct brk_session s;
	struct brk_pool pool;
	answer_cb answer;
};

/* On the start's own thread (or the pool when it will not be made): the
 * call to the host, then the ticket.  The answer is c's. */
static void start_run(struct brk_hostq_job *j, int why)
{
	struct start *st = (struct start *)j;
	struct brk_call *c = st->c;
	char msg[300], pw[BRK_PASSWORD_MAX + 1];
	const char *sso = NULL;
	int rc;

	if (why != BRK_HOSTQ_RUN) {
		const char *reason = why == BRK_HOSTQ_LATE	? "its host did not take the start"
				     : why == BRK_HOSTQ_STOPPING ? "the broker stopped"
								 : "start failed";
		brk_store_session_end(c->b->store, st->s.id, reason, brk_now_ms(), NULL);
		if (why == BRK_HOSTQ_LATE)
			brk_call_fail(c, -EAGAIN, "host_busy",
				      "cannot start your session in pool %s: host %s has been busy "
				      "with other starts for %lld s; try again",
				      c->name, st->s.host,
				      (long long)(st->job.wait_ms / 1000));
		else if (why == BRK_HOSTQ_STOPPING)
			brk_call_fail(c, -EAGAIN, "busy",
				      "the broker is stopping: try again in a moment");
		else
			brk_call_fail(c, -ENOMEM, "busy", "the broker is out of threads: try again");
		return;
	}
	/* sso into a VM's guest: the user's password goes to the host, which
	 * sets it in the guest before the session is ready. */
	if (st->pool.c.sso && st->pool.c.driver == PT_DRIVER_QEMU &&
	    st->pool.c.protocol != PT_PROTO_CONSOLE) {
		if (sso_password(c, pw, sizeof(pw)) == 0)
			sso = pw;
		else
			pt_log(PT_LOG_INFO, c->req->id,
			       "pool %s has sso but the password of %s is not known (a login "
			       "from before): the guest will ask for it",
			       c->name, c->user);
	}
	rc = brk_host_start(c->b, &st->s, &st->pool, c->geometry, sso, msg, sizeof(msg));
	explicit_bzero(pw, sizeof(pw));
	if (rc) {
		brk_call_fail(c, start_err(rc), rc == 503 ? "host_unavailable" : "start_failed",
			      "cannot start your session in pool %s: %s", c->name, msg);
		return;
	}
	mint_and_answer(c, &st->s, &st->pool, 0, st->answer);
}

/* On the loop: the answer is set, c may go. */
static void start_done(struct brk_hostq_job *j)
{
	struct start *st = (struct start *)j;
	struct brk_call *c = st->c;

	brk_pool_clear(&st->pool);
	explicit_bzero(&st->s, sizeof(st->s)); /* the backend's secret */
	free(st);
	brk_call_resume(c);
}

/* Hand the start of session s (STARTING) to its host's queue; *pool is
 * taken.  The answer comes when it has run, or now when it cannot wait. */
static void start_on_host(struct brk_call *c, const struct brk_session *s, struct brk_pool *pool,
			  answer_cb answer)
{
	struct start *st = calloc(1, sizeof(*st));
	int rc = -ENOMEM, running, waiting;

	if (st) {
		st->c = c;
		st->s = *s;
		st->pool = *pool;
		st->answer = answer;
		st->job.run = start_run;
		st->job.done = start_done;
		st->job.wait_ms = brk_start_timeout_ms(c->b, pool);
		st->job.key = s->id; /* a heartbeat leaves it alone (hosts.c) */
		brk_call_park(c);
		rc = brk_hostq_submit(c->b->hostq, s->host, &st->job);
		if (rc == 0) {
			memset(pool, 0, sizeof(*pool)); /* st's now */
			return;
		}
		brk_call_unpark(c);
		free(st);
	}
	brk_store_session_end(c->b->store, s->id, "start refused", brk_now_ms(), NULL);
	if (rc == -EAGAIN) {
		brk_hostq_counts(c->b->hostq, s->host, &running, &waiting);
		pt_log(PT_LOG_WARNING, c->req->id,
		       "session %lld of %s: refused, %d starts run and %d wait for host %s",
		       (long long)s->id, c->user, running, waiting, s->host);
		brk_call_fail(c, rc, "host_busy",
			      "too many starts waiting for host %s, try again in a moment", s->host);
	} else if (rc == -ESHUTDOWN) {
		brk_call_fail(c, -EAGAIN, "busy", "the broker is stopping: try again in a moment");
	} else {
		brk_call_fail(c, -ENOMEM, "busy", "out of memory");
	}
}

/* Reconnect or assign c->user in pool c->name, start the session on its
 * host when it is new there, mint a ticket and answer with answer. */
static void launch(struct brk_call *c, answer_cb answer)
{
	struct brk_assign_req ar = {
		.pool = c->name, .user = c->user, .client_addr = c->rhost, .broker = c->b->id
	};
	struct brk_pool pool = { 0 };
	struct brk_session s;
	char **groups;
	int rc, reconnect = 0, entitled;

	rc = brk_store_pool_get(c->b->store, c->name, &pool);
	if (rc && rc != -ENOENT) {
		brk_call_store_error(c, rc);
		goto out;
	}
	groups = rc ? NULL : brk_user_groups(c->user);
	entitled = !rc && brk_pool_entitled(&pool.c, c->user, groups);
	brk_groups_free(groups);
	if (!entitled) {
		/* The same answer as an unknown pool: nobody learns what
		 * exists without being entitled to it. */
		brk_call_fail(c, -ENOENT, "no_such_resource",
			      "there is no desktop or application '%s'", c->name);
		goto out;
	}
	ar.now_ms = brk_now_ms();
	rc = brk_store_assign(c->b->store, &ar, &s, &reconnect);
	if (rc == -ENOSPC) {
		brk_call_fail(c, rc, "no_capacity", "no session available in pool %s", c->name);
		goto out;
	}
	if (rc == -EDQUOT) {
		brk_call_fail(c, rc, "session_limit",
			      "you already have the most sessions allowed in pool %s", c->name);
		goto out;
	}
	if (rc) {
		brk_call_store_error(c, rc);
		goto out;
	}
	if (s.state == BRK_STARTING && reconnect) {
		brk_call_fail(c, -EAGAIN, "starting",
			      "your session in pool %s is still starting: try again in a moment",
			      c->name);
		goto out;
	}
	if (s.state == BRK_STARTING)
		start_on_host(c, &s, &pool, answer); /* not on this thread: hostq.h */
	else
		mint_and_answer(c, &s, &pool, reconnect, answer);
out:
	brk_pool_clear(&pool);
	explicit_bzero(&s, sizeof(s));
}

/* Through the RD Gateway ([gateway] rdg, with an HTTPS front): its
 * host[:port] into gw (port left out when 443).  0, or -1 when not. */
static int rdg_address(const struct brk *b, char *gw, size_t len)
{
	const struct pt_gateway_conf *g = &b->conf->gateway;
	int port = gateway_port(g->https_listen);

	if (!g->rdg || !g->https_listen || !*g->https_listen || port <= 0)
		return -1;
	if (port == 443)
		snprintf(gw, len, "%s", g->public_host);
	else
		snprintf(gw, len, "%s:%d", g->public_host, port);
	return 0;
}

/* The launch as a ready .rdp file.  Through the RD Gateway, the ticket is
 * the gateway's access token (MS-TSGU's PAA cookie) and the address the
 * session's backend, the one target the gateway opens a channel to for
 * that ticket; else the ticket is the load-balance cookie that the RDP
 * listener's passthrough redeems. */
static void rdp_file(struct brk_call *c, const char *addr, const char *ticket,
		     const struct brk_pool *pool, const struct brk_session *s)
{
	char gw[300], *via = NULL;
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
	else if (rdg_address(c->b, gw, sizeof(gw)) == 0)
		n = asprintf(&via,
			     "full address:s:%s\r\ngatewayhostname:s:%s\r\n"
			     "gatewayusagemethod:i:1\r\ngatewaycredentialssource:i:5\r\n"
			     "gatewayprofileusagemethod:i:1\r\ngatewayaccesstoken:s:%s\r\n",
			     s->backend, gw, ticket);
	else
		n = asprintf(&via, "full address:s:%s\r\nloadbalanceinfo:s:Cookie: msts=%s\r\n",
			     addr, ticket);
	if (n < 0)
		via = NULL;
	else if (app)
		n = asprintf(&rdp,
			     "%susername:s:%s\r\nscreen mode id:i:1\r\nsession bpp:i:32\r\n"
			     "prompt for credentials:i:0\r\n%s",
			     via, c->user, app);
	free(app);
	free(via);
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
	char addr[320], gw[300];
	json_t *o;

	public_address(c->b, pool->c.protocol, addr, sizeof(addr));
	if (c->route->op == BRK_OP_RDP_FILE) {
		rdp_file(c, addr, ticket, pool, s);
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
	/* RDP through the RD Gateway: the ticket is its access token, and the
	 * channel's one target the session's backend (rdp_file). */
	if (pool->c.protocol == PT_PROTO_RDP && rdg_address(c->b, gw, sizeof(gw)) == 0) {
		json_object_set_new(o, "rd_gateway", json_string(gw));
		json_object_set_new(o, "target", json_string(s->backend));
	}
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
	if (geometry_arg(c) == 0)
		launch(c, launch_answer);
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

/* Redeem's answer, with the fresh ticket. */
static void authorized_answer(struct brk_call *c, const struct brk_session *s, const char *ticket,
			      const struct brk_pool *pool, int reconnect)
{
	(void)reconnect;
	brk_redeem_answer(c, s, pool, ticket, brk_call_str(c, "password"));
}

void brk_launch_authorized(struct brk_call *c)
{
	if (!c->name[0] && default_pool(c))
		return;
	launch(c, authorized_answer);
}
