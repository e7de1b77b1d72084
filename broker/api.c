/*
 * api.c - the /api/v1 routes of portico-broker (docs/api.md).
 *
 * Routing and JSON parsing happen on the loop thread; everything that
 * blocks (SQL, NSS group look-ups, calls to session hosts) runs as a job on
 * libuv's thread pool, whose result is answered back on the loop.  PAM runs
 * in the privileged process (authd.c) through auth.c.
 */
#include <errno.h>
#include <grp.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "broker.h"
#include "portico/log.h"
#include "roles.h"
#include "portico/ticket.h"
#include "seal.h"

#define USER_MAX     255
#define PASSWORD_MAX 511

struct job;
typedef void (*job_fn)(struct job *j);

struct job {
	uv_work_t work;
	uv_timer_t delay; /* failed logins answer at a fixed time */
	struct brk *b;
	struct pt_http_req *req;
	job_fn fn; /* runs on the pool */
	/* inputs */
	json_t *in;	 /* the request body, when JSON */
	char name[80];	 /* pool or host name from the path */
	int64_t id;	 /* session id from the path */
	char action[24]; /* drain, undrain, logoff, ... */
	char user[264];	 /* authenticated user */
	int admin;
	char rhost[64];		     /* client address for tickets and throttling */
	int gateway;		     /* a gateway (or session host) is asking */
	char node[128];		     /* its certificate's CN, "" for a shared secret */
	int want_rdp;		     /* launch.rdp */
	char geometry[24];	     /* launch: the client's screen, WxH */
	char sealed[BRK_SEALED_MAX]; /* the token's sealed password (sso) */
	/* output */
	int status;
	json_t *out;
	char *text; /* non-JSON body (.rdp) */
	const char *ctype;
	int64_t answer_at_ms; /* respond not before (uv_now clock), 0: now */
};

int64_t brk_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* --- jobs ----------------------------------------------------------------- */

static void job_free(struct job *j)
{
	json_decref(j->in);
	json_decref(j->out);
	free(j->text);
	free(j);
}

static void job_answer(struct job *j)
{
	if (j->text)
		pt_http_respond(j->req, j->status, j->ctype, j->text, strlen(j->text), NULL);
	else {
		pt_http_json(j->req, j->status, j->out);
		j->out = NULL;
	}
	j->req = NULL;
}

static void on_delay_closed(uv_handle_t *h)
{
	job_free(h->data);
}

static void on_delay(uv_timer_t *t)
{
	struct job *j = t->data;

	job_answer(j);
	uv_close((uv_handle_t *)&j->delay, on_delay_closed);
}

/* Answer now, or at j->answer_at_ms. */
static void job_finish(struct job *j)
{
	uint64_t now = uv_now(j->b->loop);

	if (j->answer_at_ms > (int64_t)now) {
		uv_timer_init(j->b->loop, &j->delay);
		j->delay.data = j;
		uv_timer_start(&j->delay, on_delay, (uint64_t)j->answer_at_ms - now, 0);
		return;
	}
	job_answer(j);
	job_free(j);
}

static void work_cb(uv_work_t *w)
{
	struct job *j = w->data;

	j->fn(j);
}

static void after_work_cb(uv_work_t *w, int status)
{
	struct job *j = w->data;

	if (status < 0 && !j->status) {
		j->status = 503;
		j->out = json_pack("{s:s,s:s}", "error", "busy", "message",
				   "the broker is stopping");
	}
	job_finish(j);
}

static void job_run(struct job *j, job_fn fn)
{
	j->fn = fn;
	j->work.data = j;
	if (uv_queue_work(j->b->loop, &j->work, work_cb, after_work_cb) != 0) {
		j->status = 503;
		j->out = json_pack("{s:s,s:s}", "error", "busy", "message", "try again");
		job_finish(j);
	}
}

static void set_error(struct job *j, int status, const char *code, const char *fmt, ...)
	PT_PRINTF(4, 5);
static void set_error(struct job *j, int status, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_decref(j->out);
	j->status = status;
	j->out = json_pack("{s:s,s:s}", "error", code, "message", msg);
}

static void set_store_error(struct job *j, int rc)
{
	pt_log(PT_LOG_WARNING, j->req ? j->req->id : 0, "store: %s (%s)",
	       brk_store_error(j->b->store), strerror(-rc));
	set_error(j, 500, "internal", "the broker could not reach its store");
}

static void set_ok(struct job *j, int status, json_t *doc)
{
	json_decref(j->out);
	j->status = status;
	j->out = doc ? doc : json_object();
}

/* --- who is asking --------------------------------------------------------- */

/* On the pool: find the user behind the token; 0 or an answer set. */
static int job_auth_user(struct job *j)
{
	const char *tok = pt_http_bearer(j->req);
	char hash[PT_TICKET_HASH_LEN + 1];
	struct brk_token t;
	int rc;

	if (!tok || !pt_ticket_valid(tok)) {
		set_error(j, 401, "unauthenticated", "log in first (POST /api/v1/login)");
		return -1;
	}
	pt_ticket_hash(tok, hash);
	rc = brk_store_token_get(j->b->store, hash, brk_now_ms(), &t);
	if (rc == -ENOENT) {
		set_error(j, 401, "unauthenticated", "your login has expired: log in again");
		return -1;
	}
	if (rc) {
		set_store_error(j, rc);
		return -1;
	}
	snprintf(j->user, sizeof(j->user), "%s", t.user);
	j->admin = t.admin;
	memcpy(j->sealed, t.sealed, sizeof(j->sealed));
	return 0;
}

static int job_auth_admin(struct job *j)
{
	if (job_auth_user(j))
		return -1;
	if (!j->admin) {
		set_error(j, 403, "forbidden", "this needs an administrator (group %s)",
			  j->b->conf->broker.admin_group);
		return -1;
	}
	return 0;
}

/* On the pool (NSS may block): the user's groups by name, NULL-terminated.
 * One look-up at a time: getgrouplist walks the group database with shared
 * iteration state in some NSS back-ends (nss_wrapper, some LDAP modules),
 * and a login is not hot enough for the lock to matter. */
static pthread_mutex_t nss_lock = PTHREAD_MUTEX_INITIALIZER;

static char **user_groups_locked(const char *user)
{
	struct passwd pw, *pwp = NULL;
	char buf[4096];
	gid_t gids[256];
	int ng = 256;
	char **names;

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
		return calloc(1, sizeof(char *));
	if (getgrouplist(user, pw.pw_gid, gids, &ng) < 0)
		ng = 256;
	names = calloc((size_t)ng + 1, sizeof(char *));
	if (!names)
		return NULL;
	for (int i = 0, k = 0; i < ng; i++) {
		struct group gr, *grp = NULL;
		char gbuf[8192];
		if (getgrgid_r(gids[i], &gr, gbuf, sizeof(gbuf), &grp) == 0 && grp)
			names[k++] = strdup(grp->gr_name);
	}
	return names;
}

static char **user_groups(const char *user)
{
	char **g;

	pthread_mutex_lock(&nss_lock);
	g = user_groups_locked(user);
	pthread_mutex_unlock(&nss_lock);
	return g;
}

static void groups_free(char **g)
{
	for (size_t i = 0; g && g[i]; i++)
		free(g[i]);
	free(g);
}

static int in_list(const struct pt_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return 1;
	return 0;
}

/* Entitled: named in users, or a member of one of groups. */
static int entitled(const struct pt_pool_conf *pc, const char *user, char **groups)
{
	if (in_list(&pc->users, user))
		return 1;
	for (size_t i = 0; groups && groups[i]; i++)
		if (in_list(&pc->groups, groups[i]))
			return 1;
	return 0;
}

/* --- JSON helpers ------------------------------------------------------------ */

static const char *state_names[] = { "starting", "ready", "active", "disconnected", "ended" };

static json_t *session_json(const struct brk_session *s, int with_secret)
{
	json_t *o = json_pack(
		"{s:I,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "id", (json_int_t)s->id, "pool", s->pool,
		"user", s->user, "host", s->host, "state", state_names[s->state < 5 ? s->state : 4],
		"created_ms", (json_int_t)s->created_ms, "updated_ms", (json_int_t)s->updated_ms,
		"bytes_up", (json_int_t)s->bytes_up, "bytes_down", (json_int_t)s->bytes_down);

	if (!o)
		return NULL;
	if (s->last_input_ms)
		json_object_set_new(o, "last_input_ms", json_integer(s->last_input_ms));
	if (s->ended_ms) {
		json_object_set_new(o, "ended_ms", json_integer(s->ended_ms));
		json_object_set_new(o, "end_reason", json_string(s->end_reason));
	}
	if (with_secret) {
		json_object_set_new(o, "backend", json_string(s->backend));
		json_object_set_new(o, "secret", json_string(s->secret));
	}
	return o;
}

json_t *brk_pool_json(const struct brk_pool *p)
{
	json_t *o = json_object();
	char buf[512];
	const char *key;
	int kind;

	json_object_set_new(o, "name", json_string(p->c.name));
	for (size_t i = 0; (kind = pt_conf_pool_value(&p->c, i, &key, buf, sizeof(buf))) > 0; i++) {
		switch (kind) {
		case PT_CONF_VALUE_LIST: {
			const struct pt_strlist *l = pt_conf_pool_list(&p->c, key);
			json_t *a = json_array();
			for (size_t k = 0; l && k < l->n; k++)
				json_array_append_new(a, json_string(l->v[k]));
			json_object_set_new(o, key, a);
			break;
		}
		case PT_CONF_VALUE_NUMBER:
			json_object_set_new(o, key, json_integer(strtoll(buf, NULL, 10)));
			break;
		case PT_CONF_VALUE_BOOL:
			json_object_set_new(o, key, json_boolean(buf[0] == 'y'));
			break;
		case PT_CONF_VALUE_UNSET:
			json_object_set_new(o, key, json_null());
			break;
		default:
			json_object_set_new(o, key, json_string(buf));
		}
	}
	json_object_set_new(o, "drained", json_boolean(p->drained));
	json_object_set_new(o, "source", json_string(p->from_config ? "config" : "api"));
	return o;
}

/* Apply the JSON object's keys to pc as the file would take them. */
static int pool_from_json(json_t *in, struct pt_pool_conf *pc, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	char buf[4096];

	json_object_foreach(in, key, v)
	{
		if (!strcmp(key, "name") || !strcmp(key, "drained") || !strcmp(key, "source"))
			continue;
		if (json_is_string(v)) {
			snprintf(buf, sizeof(buf), "%s", json_string_value(v));
		} else if (json_is_integer(v)) {
			snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		} else if (json_is_boolean(v)) {
			snprintf(buf, sizeof(buf), "%s", json_is_true(v) ? "yes" : "no");
		} else if (json_is_null(v)) {
			buf[0] = '\0';
		} else if (json_is_array(v)) {
			size_t i, o = 0;
			json_t *e;
			buf[0] = '\0';
			json_array_foreach(v, i, e)
			{
				if (!json_is_string(e)) {
					snprintf(err, errlen, "'%s' must be a list of strings",
						 key);
					return -EINVAL;
				}
				o += snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "," : "",
					      json_string_value(e));
				if (o >= sizeof(buf)) {
					snprintf(err, errlen, "'%s' is too long", key);
					return -EINVAL;
				}
			}
		} else {
			snprintf(err, errlen, "'%s' has a value of the wrong type", key);
			return -EINVAL;
		}
		if (strchr(buf, '\n') || strchr(buf, '\r')) {
			snprintf(err, errlen, "'%s' must be one line", key);
			return -EINVAL;
		}
		int rc = pt_conf_pool_set(pc, key, buf, err, errlen);
		if (rc)
			return rc;
	}
	return pt_conf_pool_check(pc, err, errlen);
}

/* A string member of the body, or NULL. */
static const char *in_str(const struct job *j, const char *key)
{
	json_t *v = j->in ? json_object_get(j->in, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Printable and of bounded length: what a user name may be. */
static int name_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == ':' || s[i] == '/')
			return 0;
	return 1;
}

/* --- launch: shared by launch, launch.rdp and gateway/authorize ------------ */

static int gateway_port(const char *listen)
{
	const char *c = listen ? strrchr(listen, ':') : NULL;

	return c ? atoi(c + 1) : 0;
}

static void public_address(struct brk *b, int protocol, char *buf, size_t len)
{
	const struct pt_gateway_conf *g = &b->conf->gateway;
	const char *listen = protocol == PT_PROTO_RDP ? g->rdp_listen : g->vnc_listen;

	snprintf(buf, len, "%s:%d", g->public_host, gateway_port(listen));
}

/* The user's password for a single sign-on pool: the one the request
 * carries (gateway/authorize), else the one sealed under the bearer token
 * at login.  0, or -1 when there is none. */
static int sso_password(struct job *j, char *pw, size_t len)
{
	const char *given = j->gateway ? in_str(j, "password") : NULL;
	const char *tok = pt_http_bearer(j->req);

	if (given && strlen(given) < len) {
		snprintf(pw, len, "%s", given);
		return 0;
	}
	if (!j->gateway && tok && j->sealed[0] && brk_unseal(tok, j->sealed, pw, len) == 0)
		return 0;
	return -1;
}

/* Seal the password for whoever redeems `ticket` (out "" when none). */
static void seal_for_ticket(struct job *j, const char *ticket, char *out, size_t len)
{
	char pw[PASSWORD_MAX + 1];

	out[0] = '\0';
	if (sso_password(j, pw, sizeof(pw)) == 0) {
		if (brk_seal(ticket, pw, out, len))
			out[0] = '\0';
	} else {
		pt_log(PT_LOG_INFO, j->req ? j->req->id : 0,
		       "pool %s has sso but the password of %s is not known (a login from "
		       "before); the backend will ask for it",
		       j->name, j->user);
	}
	OPENSSL_cleanse(pw, sizeof(pw));
}

/* On the pool: reconnect or assign j->user in pool j->name and mint a
 * ticket.  Sets the answer; returns 0 on success. */
static int do_launch(struct job *j, struct brk_session *s, char ticket[PT_TICKET_LEN + 1],
		     struct brk_pool *pool)
{
	struct brk_assign_req ar = { .pool = j->name, .user = j->user, .client_addr = j->rhost };
	char hash[PT_TICKET_HASH_LEN + 1];
	struct brk_ticket t = { 0 };
	char **groups;
	int rc, reconnect = 0;

	rc = brk_store_pool_get(j->b->store, j->name, pool);
	if (rc == -ENOENT) {
		set_error(j, 404, "no_such_resource", "there is no desktop or application '%s'",
			  j->name);
		return -1;
	}
	if (rc) {
		set_store_error(j, rc);
		return -1;
	}
	groups = user_groups(j->user);
	if (!entitled(&pool->c, j->user, groups)) {
		groups_free(groups);
		/* The same answer as an unknown pool: nobody learns what
		 * exists without being entitled to it. */
		set_error(j, 404, "no_such_resource", "there is no desktop or application '%s'",
			  j->name);
		return -1;
	}
	groups_free(groups);
	ar.now_ms = brk_now_ms();
	rc = brk_store_assign(j->b->store, &ar, s, &reconnect);
	if (rc == -ENOSPC) {
		set_error(j, 503, "no_capacity", "no session available in pool %s", j->name);
		return -1;
	}
	if (rc == -EDQUOT) {
		set_error(j, 409, "session_limit",
			  "you already have the most sessions allowed in pool %s", j->name);
		return -1;
	}
	if (rc) {
		set_store_error(j, rc);
		return -1;
	}
	if (s->state == BRK_STARTING && reconnect) {
		set_error(j, 503, "starting",
			  "your session in pool %s is still starting: try again in a moment",
			  j->name);
		return -1;
	}
	if (s->state == BRK_STARTING) {
		char msg[300];
		rc = brk_host_start(j->b, s, pool, j->geometry, msg, sizeof(msg));
		if (rc) {
			set_error(j, rc, rc == 503 ? "host_unavailable" : "start_failed",
				  "cannot start your session in pool %s: %s", j->name, msg);
			return -1;
		}
	}
	if (pt_ticket_new(ticket)) {
		set_error(j, 500, "internal", "no randomness for a ticket");
		return -1;
	}
	pt_ticket_hash(ticket, hash);
	t.session_id = s->id;
	snprintf(t.user, sizeof(t.user), "%s", j->user);
	snprintf(t.client_addr, sizeof(t.client_addr), "%s", j->rhost);
	t.expires_ms = ar.now_ms + j->b->conf->broker.ticket_ttl_ms;
	if (pool->c.sso)
		seal_for_ticket(j, ticket, t.sealed, sizeof(t.sealed));
	rc = brk_store_ticket_put(j->b->store, hash, &t);
	OPENSSL_cleanse(t.sealed, sizeof(t.sealed));
	if (rc) {
		set_store_error(j, rc);
		return -1;
	}
	pt_log(PT_LOG_INFO, j->req ? j->req->id : 0, "%s %s session %lld in pool %s on %s",
	       reconnect ? "reconnect" : "launch", j->user, (long long)s->id, j->name, s->host);
	return reconnect;
}

static void launch_answer(struct job *j, const struct brk_session *s, const char *ticket,
			  const struct brk_pool *pool, int reconnect)
{
	char addr[320];

	public_address(j->b, pool->c.protocol, addr, sizeof(addr));
	if (j->want_rdp) {
		char *rdp = NULL, *app = NULL;
		const char *cmd = pool->c.kind == PT_POOL_APP ? pool->c.command : NULL;
		int n;
		/* An application: xrdp and RDS run an alternate shell as the
		 * session's only program; "||alias" names a RemoteApp that a
		 * Windows RDS host publishes (its own window on the client). */
		if (cmd && !strncmp(cmd, "||", 2))
			n = asprintf(
				&app,
				"remoteapplicationmode:i:1\r\nremoteapplicationprogram:s:%s\r\n"
				"remoteapplicationname:s:%s\r\n",
				cmd, pool->c.name);
		else
			n = asprintf(&app, "%s%s%s", cmd ? "alternate shell:s:" : "",
				     cmd ? cmd : "", cmd ? "\r\n" : "");
		if (n < 0)
			app = NULL;
		else
			n = asprintf(&rdp,
				     "full address:s:%s\r\nloadbalanceinfo:s:Cookie: msts=%s\r\n"
				     "username:s:%s\r\nscreen mode id:i:1\r\nsession bpp:i:32\r\n"
				     "prompt for credentials:i:0\r\n%s",
				     addr, ticket, j->user, app);
		free(app);
		if (n < 0) {
			set_error(j, 500, "internal", "out of memory");
			return;
		}
		j->status = 200;
		j->text = rdp;
		j->ctype = "application/x-rdp";
		return;
	}
	json_t *o = json_pack("{s:s,s:s,s:s,s:o,s:b}", "ticket", ticket, "gateway", addr,
			      "protocol", pool->c.protocol == PT_PROTO_RDP ? "rdp" : "vnc",
			      "session", session_json(s, 0), "reconnect", reconnect);
	json_object_set_new(o, "expires_in_ms", json_integer(j->b->conf->broker.ticket_ttl_ms));
	/* An application pool's program: RDP clients send it as the alternate
	 * shell (xrdp and RDS run it as the session's only program). */
	if (pool->c.kind == PT_POOL_APP && pool->c.command)
		json_object_set_new(o, "command", json_string(pool->c.command));
	set_ok(j, 200, o);
}

static void job_launch(struct job *j)
{
	struct brk_session s;
	struct brk_pool pool = { 0 };
	char ticket[PT_TICKET_LEN + 1];
	int rc;

	if (job_auth_user(j))
		return;
	rc = do_launch(j, &s, ticket, &pool);
	if (rc >= 0)
		launch_answer(j, &s, ticket, &pool, rc);
	brk_pool_clear(&pool);
	OPENSSL_cleanse(ticket, sizeof(ticket));
}

/* --- login ---------------------------------------------------------------- */

struct login {
	struct job *j;
	int authorize; /* gateway/authorize: launch after PAM */
};

static void job_login_ok(struct job *j)
{
	char token[PT_TICKET_LEN + 1], hash[PT_TICKET_HASH_LEN + 1];
	struct brk_token t = { 0 };
	char **groups = user_groups(j->user);
	int rc;

	snprintf(t.user, sizeof(t.user), "%s", j->user);
	for (size_t i = 0; groups && groups[i]; i++)
		if (!strcmp(groups[i], j->b->conf->broker.admin_group))
			t.admin = 1;
	groups_free(groups);
	t.expires_ms = brk_now_ms() + j->b->conf->broker.token_ttl_ms;
	if (pt_ticket_new(token)) {
		set_error(j, 500, "internal", "no randomness for a token");
		return;
	}
	pt_ticket_hash(token, hash);
	/* Kept for pools with sso, openable only with the token. */
	if (in_str(j, "password") &&
	    brk_seal(token, in_str(j, "password"), t.sealed, sizeof(t.sealed)))
		t.sealed[0] = '\0';
	rc = brk_store_token_put(j->b->store, hash, &t);
	OPENSSL_cleanse(t.sealed, sizeof(t.sealed));
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	set_ok(j, 200,
	       json_pack("{s:s,s:s,s:b,s:I}", "token", token, "user", j->user, "admin", t.admin,
			 "expires_in_ms", (json_int_t)j->b->conf->broker.token_ttl_ms));
	OPENSSL_cleanse(token, sizeof(token));
}

static void job_authorize_ok(struct job *j);

/* Every failed login is answered at start + fail_delay + jitter, whatever
 * failed, so that timing tells nothing. */
static void login_failed(struct job *j, int status, const char *code, const char *msg)
{
	uint64_t jitter = 0;
	int64_t d = j->b->conf->broker.fail_delay_ms;

	if (d > 0) {
		unsigned char r[2];
		if (RAND_bytes(r, 2) == 1)
			jitter = ((unsigned)r[0] << 8 | r[1]) % (uint64_t)(d / 10 + 1);
	}
	j->answer_at_ms = (int64_t)(j->req->start_ms + (uint64_t)d + jitter);
	set_error(j, status, code, "%s", msg);
	job_finish(j);
}

static void on_pam(void *arg, int result, const char *pam_user)
{
	struct login *l = arg;
	struct job *j = l->j;
	int authorize = l->authorize;
	char key[300];
	int64_t now = brk_now_ms();

	free(l);
	if (result != PT_AUTH_OK) {
		pt_log(PT_LOG_WARNING, j->req->id, "auth failure user=%s rhost=%s%s", j->user,
		       j->rhost, result == PT_AUTH_ERROR ? " (PAM error)" : "");
		brk_throttle_addr_key(j->rhost, key, sizeof(key));
		brk_throttle_fail(j->b->throttle, key, now);
		snprintf(key, sizeof(key), "user:%s", j->user);
		brk_throttle_fail(j->b->throttle, key, now);
		login_failed(j, 401, "login_failed", "login failed");
		return;
	}
	/* PAM may map the name (case, aliases): use the one it settled on. */
	snprintf(j->user, sizeof(j->user), "%s", pam_user);
	pt_log(PT_LOG_INFO, j->req->id, "login user=%s rhost=%s", j->user, j->rhost);
	job_run(j, authorize ? job_authorize_ok : job_login_ok);
}

/* POST /login and /gateway/authorize: check, throttle, then PAM. */
static void start_login(struct job *j, int authorize)
{
	const char *user = in_str(j, "username"), *password = in_str(j, "password");
	char key[300];
	int64_t now = brk_now_ms();
	struct login *l;
	int rc;

	if (!user || !password) {
		set_error(j, 400, "bad_request", "username and password are required");
		job_finish(j);
		return;
	}
	if (!name_ok(user, USER_MAX) || strlen(password) > PASSWORD_MAX) {
		snprintf(j->user, sizeof(j->user), "%.64s", user);
		login_failed(j, 401, "login_failed", "login failed");
		return;
	}
	snprintf(j->user, sizeof(j->user), "%s", user);
	brk_throttle_addr_key(j->rhost, key, sizeof(key));
	int blocked = brk_throttle_blocked(j->b->throttle, key, now);
	snprintf(key, sizeof(key), "user:%s", user);
	blocked = blocked || brk_throttle_blocked(j->b->throttle, key, now);
	if (blocked) {
		pt_log(PT_LOG_WARNING, j->req->id, "auth throttled user=%s rhost=%s", user,
		       j->rhost);
		set_error(j, 429, "throttled", "too many failed logins: try again later");
		job_finish(j);
		return;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		set_error(j, 503, "busy", "out of memory");
		job_finish(j);
		return;
	}
	l->j = j;
	l->authorize = authorize;
	rc = brk_auth_start(j->b->auth, j->b->conf->broker.pam_service, user, password, j->rhost,
			    on_pam, l);
	if (rc) {
		free(l);
		if (rc == -EBUSY) {
			set_error(j, 503, "busy", "too many logins at once: try again");
			job_finish(j);
		} else {
			login_failed(j, 401, "login_failed", "login failed");
		}
	}
}

/* --- gateway ------------------------------------------------------------------ */

static void redeem_answer(struct job *j, const struct brk_session *s, const struct brk_pool *pool,
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
	set_ok(j, 200, o);
}

static void job_redeem(struct job *j)
{
	const char *ticket = in_str(j, "ticket"), *addr = in_str(j, "client_addr");
	char hash[PT_TICKET_HASH_LEN + 1];
	struct brk_ticket t;
	struct brk_session s;
	struct brk_pool pool = { 0 };
	int rc;

	if (!ticket || !pt_ticket_valid(ticket))
		goto refuse;
	pt_ticket_hash(ticket, hash);
	rc = brk_store_ticket_take(j->b->store, hash, brk_now_ms(), &t);
	if (rc == -ENOENT)
		goto refuse;
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	/* Bound to the address the ticket was issued to, where known. */
	if (t.client_addr[0] && addr && *addr && strcmp(t.client_addr, addr)) {
		pt_log(PT_LOG_WARNING, j->req->id,
		       "ticket of user %s presented from %s, issued to %s: refused", t.user, addr,
		       t.client_addr);
		goto refuse;
	}
	rc = brk_store_session_get(j->b->store, t.session_id, &s);
	if (rc == 0 && s.state == BRK_ENDED)
		rc = -ENOENT;
	if (rc == 0)
		rc = brk_store_pool_get(j->b->store, s.pool, &pool);
	if (rc == -ENOENT)
		goto refuse;
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	char pw[PASSWORD_MAX + 1];
	int have_pw =
		pool.c.sso && t.sealed[0] && brk_unseal(ticket, t.sealed, pw, sizeof(pw)) == 0;
	redeem_answer(j, &s, &pool, NULL, have_pw ? pw : NULL);
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(t.sealed, sizeof(t.sealed));
	brk_pool_clear(&pool);
	return;
refuse:
	set_error(j, 403, "invalid_ticket", "the ticket is not valid");
}

/* The default pool for a user who named none: the only one they may use. */
static int default_pool(struct job *j)
{
	struct brk_pool *pools = NULL;
	size_t n = 0, found = 0;
	char **groups;
	int rc = brk_store_pool_list(j->b->store, &pools, &n);

	if (rc) {
		set_store_error(j, rc);
		return -1;
	}
	groups = user_groups(j->user);
	for (size_t i = 0; i < n; i++) {
		if (entitled(&pools[i].c, j->user, groups) && found++ == 0)
			snprintf(j->name, sizeof(j->name), "%s", pools[i].c.name);
	}
	groups_free(groups);
	brk_pools_free(pools, n);
	if (found == 1)
		return 0;
	set_error(j, found ? 409 : 404, found ? "pool_needed" : "no_such_resource",
		  found ? "you have several desktops: name one (user#pool)"
			: "you have no desktop or application");
	return -1;
}

static void job_authorize_ok(struct job *j)
{
	struct brk_session s;
	struct brk_pool pool = { 0 };
	char ticket[PT_TICKET_LEN + 1];
	int rc;

	if (!j->name[0] && default_pool(j))
		return;
	rc = do_launch(j, &s, ticket, &pool);
	if (rc >= 0)
		redeem_answer(j, &s, &pool, ticket, in_str(j, "password"));
	brk_pool_clear(&pool);
	OPENSSL_cleanse(ticket, sizeof(ticket));
}

static void job_event(struct job *j)
{
	json_t *in = j->in;
	json_t *id = json_object_get(in, "session_id");
	const char *ev = in_str(j, "event");
	int64_t at = json_integer_value(json_object_get(in, "at_ms"));
	int rc;

	if (!json_is_integer(id) || !ev ||
	    (strcmp(ev, "connect") && strcmp(ev, "disconnect") && strcmp(ev, "input"))) {
		set_error(j, 400, "bad_request",
			  "session_id and event (connect, disconnect or input) are required");
		return;
	}
	rc = brk_store_session_event(j->b->store, json_integer_value(id), ev,
				     at ? at : brk_now_ms(),
				     json_integer_value(json_object_get(in, "bytes_up")),
				     json_integer_value(json_object_get(in, "bytes_down")));
	if (rc == -ENOENT) {
		set_error(j, 404, "no_such_session", "no live session %lld",
			  (long long)json_integer_value(id));
		return;
	}
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	set_ok(j, 200, NULL);
}

/* --- session hosts ------------------------------------------------------------ */

/* A session host's certificate speaks only for the host its CN names. */
static int speaks_for(struct job *j, const char *name)
{
	if (!j->node[0] || !strcmp(j->node, name))
		return 1;
	pt_log_warnx("session host %s (%s) tried to speak for host %s: refused", j->node,
		     j->req->peer, name);
	set_error(j, 403, "forbidden", "your certificate is host %s's, not %s's", j->node, name);
	return 0;
}

static void job_host(struct job *j)
{
	const char *name = in_str(j, "name"), *address = in_str(j, "address");
	json_t *sessions = json_object_get(j->in, "sessions"), *out;
	char msg[300];
	int rc, status = 500;

	if (!name || !name_ok(name, 127)) {
		set_error(j, 400, "bad_request", "name is required");
		return;
	}
	if (!speaks_for(j, name))
		return;
	if (sessions && !json_is_array(sessions)) {
		set_error(j, 400, "bad_request", "sessions must be a list");
		return;
	}
	if (!strcmp(j->action, "register")) {
		if (!address || strlen(address) > 255 ||
		    (strncmp(address, "https://", 8) && strncmp(address, "http://", 7))) {
			set_error(j, 400, "bad_request",
				  "address is required (https://host:port of the agent)");
			return;
		}
		rc = brk_store_host_register(j->b->store, name, address, brk_now_ms());
		if (rc == 0)
			pt_log(PT_LOG_INFO, j->req->id, "session host %s registered at %s", name,
			       address);
	} else {
		rc = brk_store_host_heartbeat(
			j->b->store, name, json_number_value(json_object_get(j->in, "load")),
			json_integer_value(json_object_get(j->in, "mem_free_kb")), brk_now_ms());
	}
	if (rc == -ENOENT) {
		set_error(j, 404, "no_such_host", "host %s has not registered", name);
		return;
	}
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	json_t *none = sessions ? NULL : json_array();
	out = brk_host_reconcile(j->b, name, sessions ? sessions : none, &status, msg, sizeof(msg));
	json_decref(none);
	if (!out) {
		set_error(j, status, status == 400 ? "bad_request" : "internal", "%s", msg);
		return;
	}
	set_ok(j, 200, out);
}

/* POST /hosts/events: a session ended on its own (the app exited, the user
 * logged out of the desktop, the VM powered off). */
static void job_host_event(struct job *j)
{
	const char *name = in_str(j, "name"), *ev = in_str(j, "event");
	const char *reason = in_str(j, "reason");
	json_t *id = json_object_get(j->in, "session_id");
	struct brk_session s;
	char why[64];
	int rc;

	if (!name || !json_is_integer(id) || !ev || strcmp(ev, "ended")) {
		set_error(j, 400, "bad_request", "name, session_id and event (ended) are required");
		return;
	}
	if (!speaks_for(j, name))
		return;
	rc = brk_store_session_get(j->b->store, json_integer_value(id), &s);
	if (rc == -ENOENT || (rc == 0 && strcmp(s.host, name))) {
		set_error(j, 404, "no_such_session", "no session %lld on %s",
			  (long long)json_integer_value(id), name);
		return;
	}
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	/* Printable only: it is shown to admins and users. */
	snprintf(why, sizeof(why), "%s", reason && *reason ? reason : "ended on the session host");
	for (char *c = why; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	rc = brk_store_session_end(j->b->store, s.id, why, brk_now_ms());
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	if (s.state != BRK_ENDED)
		pt_log(PT_LOG_INFO, j->req->id, "session %lld of %s on %s ended: %s",
		       (long long)s.id, s.user, name, why);
	set_ok(j, 200, NULL);
}

/* --- user views ---------------------------------------------------------------- */

static void job_resources(struct job *j)
{
	struct brk_pool *pools = NULL;
	struct brk_session *ss = NULL;
	size_t n = 0, ns = 0;
	struct brk_session_filter f = { .user = NULL, .state = -2 };
	char **groups;
	json_t *a;
	int rc;

	if (job_auth_user(j))
		return;
	f.user = j->user;
	rc = brk_store_pool_list(j->b->store, &pools, &n);
	if (!rc)
		rc = brk_store_session_list(j->b->store, &f, &ss, &ns);
	if (rc) {
		brk_pools_free(pools, n);
		set_store_error(j, rc);
		return;
	}
	groups = user_groups(j->user);
	a = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct pt_pool_conf *pc = &pools[i].c;
		json_t *sess = json_null();
		if (!entitled(pc, j->user, groups))
			continue;
		for (size_t k = 0; k < ns; k++)
			if (!strcmp(ss[k].pool, pc->name)) {
				json_decref(sess);
				sess = session_json(&ss[k], 0);
				break;
			}
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:o}", "name", pc->name, "kind",
						   pc->kind == PT_POOL_APP ? "app" : "desktop",
						   "protocol",
						   pc->protocol == PT_PROTO_RDP ? "rdp" : "vnc",
						   "session", sess));
	}
	groups_free(groups);
	brk_pools_free(pools, n);
	free(ss);
	set_ok(j, 200, json_pack("{s:o}", "resources", a));
}

static json_t *sessions_array(struct brk_session *ss, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, session_json(&ss[i], 0));
	return a;
}

static void job_my_sessions(struct job *j)
{
	struct brk_session_filter f = { .state = -2 };
	struct brk_session *ss = NULL;
	size_t n = 0;
	int rc;

	if (job_auth_user(j))
		return;
	f.user = j->user;
	rc = brk_store_session_list(j->b->store, &f, &ss, &n);
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	set_ok(j, 200, json_pack("{s:o}", "sessions", sessions_array(ss, n)));
	free(ss);
}

/* End or disconnect session j->id; own: the user must own it. */
static void session_action(struct job *j, int own)
{
	struct brk_session s;
	int rc = brk_store_session_get(j->b->store, j->id, &s);

	if (rc == 0 && own && strcmp(s.user, j->user))
		rc = -ENOENT; /* not telling whose it is */
	if (rc == -ENOENT || (rc == 0 && s.state == BRK_ENDED)) {
		set_error(j, 404, "no_such_session", "no live session %lld", (long long)j->id);
		return;
	}
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	if (!strcmp(j->action, "disconnect"))
		rc = brk_store_session_event(j->b->store, j->id, "disconnect", brk_now_ms(), 0, 0);
	else
		rc = brk_store_session_end(j->b->store, j->id, own ? "logoff" : "logoff by admin",
					   brk_now_ms());
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	if (strcmp(j->action, "disconnect"))
		brk_host_stop(j->b, &s, own ? "logoff" : "logoff by admin");
	pt_log(PT_LOG_INFO, j->req->id, "%s session %lld of %s (by %s)", j->action,
	       (long long)j->id, s.user, j->user);
	if (brk_store_session_get(j->b->store, j->id, &s) == 0)
		set_ok(j, 200, session_json(&s, 0));
	else
		set_ok(j, 200, NULL);
}

static void job_logoff_own(struct job *j)
{
	if (job_auth_user(j))
		return;
	session_action(j, 1);
}

static void job_logout(struct job *j)
{
	char hash[PT_TICKET_HASH_LEN + 1];
	const char *tok = pt_http_bearer(j->req);

	if (job_auth_user(j))
		return;
	pt_ticket_hash(tok, hash);
	brk_store_token_delete(j->b->store, hash);
	set_ok(j, 200, NULL);
}

/* --- admin ----------------------------------------------------------------- */

static void job_admin_pools(struct job *j)
{
	struct brk_pool *pools = NULL, p = { 0 };
	size_t n = 0;
	char err[512];
	int rc;

	if (job_auth_admin(j))
		return;
	if (!strcmp(j->action, "list")) {
		rc = brk_store_pool_list(j->b->store, &pools, &n);
		if (rc) {
			set_store_error(j, rc);
			return;
		}
		json_t *a = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(a, brk_pool_json(&pools[i]));
		brk_pools_free(pools, n);
		set_ok(j, 200, json_pack("{s:o}", "pools", a));
		return;
	}
	if (!strcmp(j->action, "create") || !strcmp(j->action, "update")) {
		int create = !strcmp(j->action, "create");
		if (create) {
			const char *name = in_str(j, "name");
			if (!name || !pt_conf_pool_name_valid(name)) {
				set_error(j, 400, "bad_request",
					  "name: 1 to 64 letters, digits, '_', '.' or '-' (not . "
					  "or ..)");
				return;
			}
			snprintf(j->name, sizeof(j->name), "%s", name);
			rc = pt_conf_pool_init(&p.c, name);
		} else {
			rc = brk_store_pool_get(j->b->store, j->name, &p);
			if (rc == -ENOENT) {
				set_error(j, 404, "no_such_pool", "no pool %s", j->name);
				return;
			}
		}
		if (rc) {
			set_store_error(j, rc);
			brk_pool_clear(&p);
			return;
		}
		if (pool_from_json(j->in, &p.c, err, sizeof(err))) {
			set_error(j, 400, "bad_pool", "%s", err);
			brk_pool_clear(&p);
			return;
		}
		p.from_config = 0;
		rc = brk_store_pool_put(j->b->store, &p, create);
		if (rc == -EEXIST) {
			set_error(j, 409, "exists", "pool %s exists already", j->name);
		} else if (rc) {
			set_store_error(j, rc);
		} else {
			pt_log(PT_LOG_INFO, j->req->id, "pool %s %s by %s", j->name,
			       create ? "created" : "updated", j->user);
			set_ok(j, create ? 201 : 200, brk_pool_json(&p));
		}
		brk_pool_clear(&p);
		return;
	}
	if (!strcmp(j->action, "show")) {
		rc = brk_store_pool_get(j->b->store, j->name, &p);
	} else if (!strcmp(j->action, "delete")) {
		rc = brk_store_pool_delete(j->b->store, j->name);
		if (rc == -EBUSY) {
			set_error(j, 409, "in_use",
				  "pool %s has live sessions: drain it and end them first",
				  j->name);
			return;
		}
		if (rc == 0) {
			pt_log(PT_LOG_INFO, j->req->id, "pool %s deleted by %s", j->name, j->user);
			set_ok(j, 200, NULL);
			return;
		}
	} else {
		rc = brk_store_pool_set_drained(j->b->store, j->name, !strcmp(j->action, "drain"));
		if (rc == 0)
			rc = brk_store_pool_get(j->b->store, j->name, &p);
	}
	if (rc == -ENOENT) {
		set_error(j, 404, "no_such_pool", "no pool %s", j->name);
		return;
	}
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	set_ok(j, 200, brk_pool_json(&p));
	brk_pool_clear(&p);
}

static void job_admin_hosts(struct job *j)
{
	struct brk_host *h = NULL;
	size_t n = 0;
	int rc;

	if (job_auth_admin(j))
		return;
	if (strcmp(j->action, "list")) {
		rc = brk_store_host_set_drained(j->b->store, j->name, !strcmp(j->action, "drain"));
		if (rc == -ENOENT) {
			set_error(j, 404, "no_such_host", "no host %s", j->name);
			return;
		}
		if (rc) {
			set_store_error(j, rc);
			return;
		}
		pt_log(PT_LOG_INFO, j->req->id, "host %s %sed by %s", j->name, j->action, j->user);
	}
	rc = brk_store_host_list(j->b->store, &h, &n);
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (strcmp(j->action, "list") && strcmp(h[i].name, j->name))
			continue;
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:b,s:I,s:I,s:f,s:I}", "name",
						   h[i].name, "address", h[i].address, "kind",
						   h[i].sessiond ? "sessiond" : "static", "drained",
						   h[i].drained, "sessions",
						   (json_int_t)h[i].sessions, "last_seen_ms",
						   (json_int_t)h[i].last_seen_ms, "load", h[i].load,
						   "mem_free_kb", (json_int_t)h[i].mem_free_kb));
	}
	free(h);
	if (strcmp(j->action, "list"))
		set_ok(j, 200, json_incref(json_array_get(a, 0)));
	else
		set_ok(j, 200, json_pack("{s:O}", "hosts", a));
	json_decref(a);
}

static void job_admin_sessions(struct job *j)
{
	struct brk_session_filter f = { .state = -2 };
	struct brk_session *ss = NULL;
	char pool[80] = "", user[USER_MAX + 1] = "", state[32] = "";
	size_t n = 0;
	int rc;

	if (job_auth_admin(j))
		return;
	if (strcmp(j->action, "list")) {
		session_action(j, 0);
		return;
	}
	if (pt_http_query(j->req, "pool", pool, sizeof(pool)) == 0)
		f.pool = pool;
	if (pt_http_query(j->req, "user", user, sizeof(user)) == 0)
		f.user = user;
	if (pt_http_query(j->req, "state", state, sizeof(state)) == 0) {
		f.state = -3;
		if (!strcmp(state, "all"))
			f.state = -1;
		else if (!strcmp(state, "live"))
			f.state = -2;
		for (int i = 0; i < 5; i++)
			if (!strcmp(state, state_names[i]))
				f.state = i;
		if (f.state == -3) {
			set_error(
				j, 400, "bad_request",
				"state: starting, ready, active, disconnected, ended, live or all");
			return;
		}
	}
	rc = brk_store_session_list(j->b->store, &f, &ss, &n);
	if (rc) {
		set_store_error(j, rc);
		return;
	}
	set_ok(j, 200, json_pack("{s:o}", "sessions", sessions_array(ss, n)));
	free(ss);
}

/* --- routing ----------------------------------------------------------------- */

/* Split path into at most 8 segments after /api/v1/. */
static int split(const char *path, char seg[8][80])
{
	const char *p;
	int n = 0;

	if (strncmp(path, "/api/v1/", 8))
		return -1;
	p = path + 8;
	while (*p && n < 8) {
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || len >= 80)
			return -1;
		memcpy(seg[n], p, len);
		seg[n][len] = '\0';
		n++;
		if (!e)
			break;
		p = e + 1;
		if (!*p)
			return -1; /* trailing slash */
	}
	return *p && strchr(p, '/') ? -1 : n;
}

static int parse_id(const char *s, int64_t *id)
{
	char *end;
	long long v;

	if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 18)
		return -1;
	v = strtoll(s, &end, 10);
	*id = v;
	return v > 0 ? 0 : -1;
}

static int want_method(struct job *j, int method, const char *allow)
{
	if (j->req->method == method)
		return 1;
	static const char body[] =
		"{\"error\":\"method_not_allowed\",\"message\":\"method not allowed\"}";

	pt_http_respond(j->req, 405, "application/json", body, sizeof(body) - 1, allow);
	j->req = NULL;
	job_free(j);
	return 0;
}

static int need_json(struct job *j)
{
	json_error_t e;

	j->in = json_loadb(j->req->body, j->req->body_len, JSON_REJECT_DUPLICATES, &e);
	if (!j->in || !json_is_object(j->in)) {
		set_error(j, 400, "bad_json", "the body must be a JSON object%s%s",
			  j->in ? "" : ": ", j->in ? "" : e.text);
		job_finish(j);
		return 0;
	}
	return 1;
}

static int name_arg(struct job *j, const char *s)
{
	if (!pt_conf_pool_name_valid(s)) {
		set_error(j, 400, "bad_name", "'%.64s' is not a valid name", s);
		job_finish(j);
		return 0;
	}
	snprintf(j->name, sizeof(j->name), "%s", s);
	return 1;
}

static int id_arg(struct job *j, const char *s)
{
	if (parse_id(s, &j->id)) {
		set_error(j, 400, "bad_id", "'%.32s' is not a session id", s);
		job_finish(j);
		return 0;
	}
	return 1;
}

/* launch {"geometry": "1920x1080"}: the size of the client's screen. */
static int geometry_arg(struct job *j)
{
	const char *g = in_str(j, "geometry");
	unsigned w, h;
	char end;

	if (!g)
		return 1;
	if (sscanf(g, "%4ux%4u%c", &w, &h, &end) != 2 || w < 200 || h < 200 || w > 8192 ||
	    h > 8192) {
		set_error(j, 400, "bad_geometry",
			  "geometry must be WIDTHxHEIGHT, each from 200 to 8192");
		job_finish(j);
		return 0;
	}
	snprintf(j->geometry, sizeof(j->geometry), "%ux%u", w, h);
	return 1;
}

static void not_found(struct job *j)
{
	set_error(j, 404, "not_found", "no such API path: %.200s", j->req->path);
	job_finish(j);
}

#define ALLOW_GET  "Allow: GET\r\n"
#define ALLOW_POST "Allow: POST\r\n"

static void route_admin(struct job *j, char seg[8][80], int n)
{
	int m = j->req->method;

	if (!strcmp(seg[1], "pools")) {
		if (n == 2) {
			if (m == HTTP_GET) {
				strcpy(j->action, "list");
				job_run(j, job_admin_pools);
			} else if (m == HTTP_POST) {
				if (!need_json(j))
					return;
				strcpy(j->action, "create");
				job_run(j, job_admin_pools);
			} else {
				want_method(j, -1, "Allow: GET, POST\r\n");
			}
			return;
		}
		if (!name_arg(j, seg[2]))
			return;
		if (n == 3) {
			if (m == HTTP_GET) {
				strcpy(j->action, "show");
			} else if (m == HTTP_PUT || m == HTTP_PATCH) {
				if (!need_json(j))
					return;
				strcpy(j->action, "update");
			} else if (m == HTTP_DELETE) {
				strcpy(j->action, "delete");
			} else {
				want_method(j, -1, "Allow: GET, PUT, PATCH, DELETE\r\n");
				return;
			}
			job_run(j, job_admin_pools);
			return;
		}
		if (n == 4 && (!strcmp(seg[3], "drain") || !strcmp(seg[3], "undrain"))) {
			if (!want_method(j, HTTP_POST, ALLOW_POST))
				return;
			snprintf(j->action, sizeof(j->action), "%.23s", seg[3]);
			job_run(j, job_admin_pools);
			return;
		}
	} else if (!strcmp(seg[1], "hosts")) {
		if (n == 2) {
			if (!want_method(j, HTTP_GET, ALLOW_GET))
				return;
			strcpy(j->action, "list");
			job_run(j, job_admin_hosts);
			return;
		}
		if (n == 4 && (!strcmp(seg[3], "drain") || !strcmp(seg[3], "undrain"))) {
			if (!name_ok(seg[2], 127)) {
				not_found(j);
				return;
			}
			if (!want_method(j, HTTP_POST, ALLOW_POST))
				return;
			snprintf(j->name, sizeof(j->name), "%.79s", seg[2]);
			snprintf(j->action, sizeof(j->action), "%.23s", seg[3]);
			job_run(j, job_admin_hosts);
			return;
		}
	} else if (!strcmp(seg[1], "sessions")) {
		if (n == 2) {
			if (!want_method(j, HTTP_GET, ALLOW_GET))
				return;
			strcpy(j->action, "list");
			job_run(j, job_admin_sessions);
			return;
		}
		if (n == 4 && (!strcmp(seg[3], "disconnect") || !strcmp(seg[3], "logoff"))) {
			if (!id_arg(j, seg[2]) || !want_method(j, HTTP_POST, ALLOW_POST))
				return;
			snprintf(j->action, sizeof(j->action), "%.23s", seg[3]);
			job_run(j, job_admin_sessions);
			return;
		}
	}
	not_found(j);
}

void brk_api_handle(struct pt_http_req *req, void *data)
{
	struct brk *b = data;
	struct job *j = calloc(1, sizeof(*j));
	char seg[8][80];
	int n;

	if (!j) {
		pt_http_error(req, 503, "busy", "out of memory");
		return;
	}
	j->b = b;
	j->req = req;
	snprintf(j->rhost, sizeof(j->rhost), "%.63s", req->peer);
	n = split(req->path, seg);
	if (n < 1) {
		not_found(j);
		return;
	}
	if (!strcmp(seg[0], "login") && n == 1) {
		if (want_method(j, HTTP_POST, ALLOW_POST) && need_json(j))
			start_login(j, 0);
	} else if (!strcmp(seg[0], "logout") && n == 1) {
		if (want_method(j, HTTP_POST, ALLOW_POST))
			job_run(j, job_logout);
	} else if (!strcmp(seg[0], "resources") && n == 1) {
		if (want_method(j, HTTP_GET, ALLOW_GET))
			job_run(j, job_resources);
	} else if (!strcmp(seg[0], "resources") && n == 3 && !strcmp(seg[2], "launch")) {
		if (name_arg(j, seg[1]) && want_method(j, HTTP_POST, ALLOW_POST) &&
		    (req->body_len == 0 || need_json(j)) && geometry_arg(j))
			job_run(j, job_launch);
	} else if (!strcmp(seg[0], "resources") && n == 3 && !strcmp(seg[2], "launch.rdp")) {
		j->want_rdp = 1;
		if (name_arg(j, seg[1]) && want_method(j, HTTP_GET, ALLOW_GET))
			job_run(j, job_launch);
	} else if (!strcmp(seg[0], "sessions") && n == 1) {
		if (want_method(j, HTTP_GET, ALLOW_GET))
			job_run(j, job_my_sessions);
	} else if (!strcmp(seg[0], "sessions") && n == 3 && !strcmp(seg[2], "logoff")) {
		strcpy(j->action, "logoff");
		if (id_arg(j, seg[1]) && want_method(j, HTTP_POST, ALLOW_POST))
			job_run(j, job_logoff_own);
	} else if (!strcmp(seg[0], "gateway") || !strcmp(seg[0], "hosts")) {
		if (n != 2) {
			not_found(j);
			return;
		}
		if (!want_method(j, HTTP_POST, ALLOW_POST))
			return;
		int want = !strcmp(seg[0], "hosts") ? BRK_ROLE_HOST : BRK_ROLE_GATEWAY;
		int role = brk_node_role(b->conf, req, j->node, sizeof(j->node));
		if (role != want) {
			if (role != BRK_ROLE_NONE)
				pt_log_warnx("%s %s%s%s refused on %s: not a %s", req->peer,
					     brk_role_name(role), j->node[0] ? " " : "", j->node,
					     req->path, brk_role_name(want));
			set_error(j, role == BRK_ROLE_NONE ? 401 : 403,
				  role == BRK_ROLE_NONE ? "unauthenticated" : "forbidden",
				  "this route is for a %s: present its certificate from [tls] ca "
				  "or [broker] %s",
				  brk_role_name(want),
				  want == BRK_ROLE_HOST ? "host_secret" : "gateway_secret");
			job_finish(j);
			return;
		}
		j->gateway = 1;
		if (!need_json(j))
			return;
		if (!strcmp(seg[0], "hosts") &&
		    (!strcmp(seg[1], "register") || !strcmp(seg[1], "heartbeat"))) {
			snprintf(j->action, sizeof(j->action), "%.23s", seg[1]);
			job_run(j, job_host);
		} else if (!strcmp(seg[0], "hosts") && !strcmp(seg[1], "events")) {
			job_run(j, job_host_event);
		} else if (!strcmp(seg[0], "gateway") && !strcmp(seg[1], "redeem")) {
			job_run(j, job_redeem);
		} else if (!strcmp(seg[0], "gateway") && !strcmp(seg[1], "events")) {
			job_run(j, job_event);
		} else if (!strcmp(seg[0], "gateway") && !strcmp(seg[1], "authorize")) {
			const char *addr = in_str(j, "client_addr"), *user = in_str(j, "username");
			const char *pool = in_str(j, "pool");
			char *hash;
			if (addr && strlen(addr) < sizeof(j->rhost))
				snprintf(j->rhost, sizeof(j->rhost), "%s", addr);
			/* "alice#office" names the pool in the user field. */
			if (user && (hash = strchr(user, '#')) != NULL && !pool) {
				if (!name_arg(j, hash + 1))
					return;
				json_object_set_new(j->in, "username",
						    json_stringn(user, (size_t)(hash - user)));
			} else if (pool && !name_arg(j, pool)) {
				return;
			}
			start_login(j, 1);
		} else {
			not_found(j);
		}
	} else if (!strcmp(seg[0], "admin") && n >= 2) {
		route_admin(j, seg, n);
	} else {
		not_found(j);
	}
}
