/*
 * login.c - a user's password checked by PAM (in the root process, through
 * auth.c), for POST /login and for a login at the gateway
 * (gateway/authorize), throttled per source address and per user name.
 *
 * An attempt is counted when it starts, before PAM is asked, and forgiven
 * when PAM says yes: however many requests arrive at once, at most
 * login_attempts of them reach PAM for one key.  Counted twice: in this
 * broker's memory first (a flood costs the database nothing), then in the
 * store (brk_store_throttle_take, off the loop), which every broker on a
 * shared database reads, so N brokers give no more guesses than one.  The user's key is the
 * name folded to lower case, as PAM modules that ignore case (LDAP, AD,
 * winbind) take it, so "Alice" and "alice" share one counter.
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "portico/log.h"
#include "portico/ticket.h"
#include "seal.h"

#define KEY_MAX 300

/* A login waiting for PAM. */
struct login {
	struct brk_call *c;
	brk_handler_cb then; /* on the pool after PAM said yes */
	char addr_key[KEY_MAX], user_key[KEY_MAX];
	uv_work_t work;
	int rc;		/* the store's throttle: 0, -EUSERS, or its failure */
	char why[512];	/* its words, from the thread that failed */
};

/* A success's failures taken back in the store, off the loop; nobody
 * waits for it. */
struct forgive {
	uv_work_t work;
	struct brk *b;
	char keys[2][KEY_MAX];
};

static void forgive_work(uv_work_t *w)
{
	struct forgive *f = w->data;
	const char *keys[2] = { f->keys[0], f->keys[1] };

	if (brk_store_throttle_forgive(f->b->store, keys, 2))
		pt_log_warnx("login throttle: %s", brk_store_error(f->b->store));
}

static void forgive_done(uv_work_t *w, int status)
{
	free(w->data);
}

static void forgive(struct brk_call *c, const struct login *l, int64_t now)
{
	struct forgive *f;

	brk_throttle_forgive(c->b->throttle, l->addr_key, now);
	brk_throttle_forgive(c->b->throttle, l->user_key, now);
	if (!(f = calloc(1, sizeof(*f))))
		return;
	f->b = c->b;
	snprintf(f->keys[0], KEY_MAX, "%s", l->addr_key);
	snprintf(f->keys[1], KEY_MAX, "%s", l->user_key);
	f->work.data = f;
	if (c->b->answer_cb) { /* brk_api_serve_inline: no loop of its own */
		forgive_work(&f->work);
		forgive_done(&f->work, 0);
	} else if (uv_queue_work(c->b->loop, &f->work, forgive_work, forgive_done) != 0) {
		free(f);
	}
}

static void user_key(const char *user, char *key, size_t len)
{
	size_t o = (size_t)snprintf(key, len, "user:");

	for (; *user && o + 1 < len; user++)
		key[o++] = (char)tolower((unsigned char)*user);
	key[o] = '\0';
}

/* Every failed login is answered at start + fail_delay + jitter, whatever
 * failed, so that timing tells nothing. */
static void login_failed(struct brk_call *c)
{
	uint64_t jitter = 0;
	int64_t d = c->b->conf->broker.fail_delay_ms;

	if (d > 0) {
		unsigned char r[2];
		if (RAND_bytes(r, 2) == 1)
			jitter = ((unsigned)r[0] << 8 | r[1]) % (uint64_t)(d / 10 + 1);
	}
	c->answer_at_ms = (int64_t)(c->req->start_ms + (uint64_t)d + jitter);
	brk_call_fail(c, -EACCES, "login_failed", "login failed");
	brk_call_finish(c);
}

static void on_pam(void *arg, int result, const char *pam_user)
{
	struct login *l = arg;
	struct brk_call *c = l->c;
	int64_t now = brk_now_ms();

	if (result != PT_AUTH_OK) {
		/* Counted when it started. */
		pt_log(PT_LOG_WARNING, c->req->id, "auth failure user=%s rhost=%s%s", c->user,
		       c->rhost, result == PT_AUTH_ERROR ? " (PAM error)" : "");
		free(l);
		login_failed(c);
		return;
	}
	forgive(c, l, now);
	/* PAM may map the name (case, aliases): use the one it settled on. */
	snprintf(c->user, sizeof(c->user), "%s", pam_user);
	pt_log(PT_LOG_INFO, c->req->id, "login user=%s rhost=%s", c->user, c->rhost);
	brk_call_queue(c, l->then);
	free(l);
}

/* Off the loop: the attempt counted in the store too. */
static void throttle_work(uv_work_t *w)
{
	struct login *l = w->data;
	struct brk_call *c = l->c;
	const char *keys[2] = { l->addr_key, l->user_key };

	l->rc = brk_store_throttle_take(c->b->store, keys, 2, (int)c->b->conf->broker.login_attempts,
					c->b->conf->broker.login_window_ms, brk_now_ms());
	if (l->rc && l->rc != -EUSERS)
		snprintf(l->why, sizeof(l->why), "%s", brk_store_error(c->b->store));
}

/* Back on the loop: PAM, or the answer. */
static void throttle_done(uv_work_t *w, int status)
{
	struct login *l = w->data;
	struct brk_call *c = l->c;
	int64_t now = brk_now_ms();
	int rc;

	if (l->rc == 0 && status == 0) {
		rc = brk_auth_start(c->b->auth, c->b->conf->broker.pam_service, c->user,
				    brk_call_str(c, "password"), c->rhost, on_pam, l);
		if (rc == -EBUSY) {
			/* PAM never saw it: not an attempt. */
			forgive(c, l, now);
			free(l);
			brk_call_fail(c, -EAGAIN, "busy", "too many logins at once: try again");
			brk_call_finish(c);
		} else if (rc) {
			free(l);
			login_failed(c);
		}
		return;
	}
	/* Not an attempt: the memory's count is taken back. */
	brk_throttle_forgive(c->b->throttle, l->addr_key, now);
	brk_throttle_forgive(c->b->throttle, l->user_key, now);
	if (status < 0) {
		brk_call_fail(c, -EAGAIN, "busy", "the broker is stopping");
	} else if (l->rc == -EUSERS) {
		pt_log(PT_LOG_WARNING, c->req->id, "auth throttled user=%s rhost=%s (every broker)",
		       c->user, c->rhost);
		brk_call_fail(c, -EUSERS, "throttled", "too many failed logins: try again later");
	} else {
		brk_call_store_failed(c, l->rc, l->why);
	}
	free(l);
	brk_call_finish(c);
}

void brk_login_start(struct brk_call *c, brk_handler_cb then)
{
	const char *user = brk_call_str(c, "username"), *password = brk_call_str(c, "password");
	int64_t now = brk_now_ms();
	struct brk_throttle *t = c->b->throttle;
	struct login *l;

	if (!user || !password) {
		brk_call_fail(c, -EINVAL, "bad_request", "username and password are required");
		brk_call_finish(c);
		return;
	}
	if (!brk_name_ok(user, BRK_USER_MAX) || strlen(password) > BRK_PASSWORD_MAX) {
		snprintf(c->user, sizeof(c->user), "%.64s", user);
		login_failed(c);
		return;
	}
	snprintf(c->user, sizeof(c->user), "%s", user);
	l = calloc(1, sizeof(*l));
	if (!l) {
		brk_call_fail(c, -ENOMEM, "busy", "out of memory");
		brk_call_finish(c);
		return;
	}
	l->c = c;
	l->then = then;
	brk_throttle_addr_key(c->rhost, l->addr_key, sizeof(l->addr_key));
	user_key(user, l->user_key, sizeof(l->user_key));
	if (brk_throttle_blocked(t, l->addr_key, now) ||
	    brk_throttle_blocked(t, l->user_key, now)) {
		free(l);
		pt_log(PT_LOG_WARNING, c->req->id, "auth throttled user=%s rhost=%s", user,
		       c->rhost);
		brk_call_fail(c, -EUSERS, "throttled", "too many failed logins: try again later");
		brk_call_finish(c);
		return;
	}
	/* Counted now: the attempts in flight count against the limit. */
	brk_throttle_fail(t, l->addr_key, now);
	brk_throttle_fail(t, l->user_key, now);
	l->work.data = l;
	if (c->b->answer_cb) { /* brk_api_serve_inline */
		throttle_work(&l->work);
		throttle_done(&l->work, 0);
	} else if (uv_queue_work(c->b->loop, &l->work, throttle_work, throttle_done) != 0) {
		throttle_done(&l->work, UV_ECANCELED); /* "the broker is stopping" */
	}
}

/* On the pool, after PAM: a token for c->user. */
static void login_ok(struct brk_call *c)
{
	char token[PT_TICKET_LEN + 1], hash[PT_TICKET_HASH_LEN + 1];
	const char *password = brk_call_str(c, "password");
	struct brk_token t = { 0 };
	int rc;

	snprintf(t.user, sizeof(t.user), "%s", c->user);
	/* For the answer only: admin routes ask NSS on every request. */
	t.admin = brk_user_in_group(c->user, c->b->conf->broker.admin_group);
	t.expires_ms = brk_now_ms() + c->b->conf->broker.token_ttl_ms;
	if (pt_ticket_new(token)) {
		brk_call_fail(c, -EIO, "internal", "no randomness for a token");
		return;
	}
	pt_ticket_hash(token, hash);
	/* Kept for pools with sso, openable only with the token. */
	if (password && brk_seal(token, password, t.sealed, sizeof(t.sealed)))
		t.sealed[0] = '\0';
	rc = brk_store_token_put(c->b->store, hash, &t);
	explicit_bzero(t.sealed, sizeof(t.sealed));
	if (rc) {
		brk_call_store_error(c, rc);
		explicit_bzero(token, sizeof(token));
		return;
	}
	brk_call_ok(c, 200,
		    json_pack("{s:s,s:s,s:b,s:I}", "token", token, "user", c->user, "admin",
			      t.admin, "expires_in_ms",
			      (json_int_t)c->b->conf->broker.token_ttl_ms));
	explicit_bzero(token, sizeof(token));
}

/* POST /login, on the loop. */
void brk_login(struct brk_call *c)
{
	brk_login_start(c, login_ok);
}
