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
 *
 * When PAM asks for more than the password (a one-time code), POST /login
 * answers 401 {"error":"challenge",...} and the login waits, detached from
 * any request, in auth.c's pending list; a second POST /login
 * {"challenge","answer"} from the same address takes it up again and counts
 * as one more attempt.  A gateway's login carries one password only: a
 * challenge there is cancelled and answered 403 "mfa_required".
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

/* A login waiting for PAM, or for its user's answer to a challenge. */
struct login {
	struct brk *b;
	struct brk_call *c;  /* NULL while the user has the challenge */
	brk_handler_cb then; /* on the pool after PAM said yes */
	char addr_key[KEY_MAX], user_key[KEY_MAX];
	char user[BRK_USER_MAX + 1];	     /* as asked, for the answer's call */
	char password[BRK_PASSWORD_MAX + 1]; /* kept for sso (login_ok) across a challenge */
	int counted;   /* attempts counted against both keys: forgiven on success */
	int mfa;       /* challenged where nobody can answer (a gateway) */
	int answering; /* c is the answer to a challenge */
	int working;   /* the throttle's job runs: PAM's end waits for it */
	int finished;  /* PAM ended while it ran: result, pam_user */
	int result;
	char pam_user[256];
	uv_work_t work;
	int rc;	       /* the store's throttle: 0, -EUSERS, or its failure */
	char why[512]; /* its words, from the thread that failed */
};

static void login_ok(struct brk_call *c);

static void login_free(struct login *l)
{
	explicit_bzero(l->password, sizeof(l->password));
	free(l);
}

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

static void forgive1(struct brk_call *c, const struct login *l, int64_t now)
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

/* Every attempt the login counted is given back. */
static void forgive(struct brk_call *c, struct login *l, int64_t now)
{
	for (; l->counted > 0; l->counted--)
		forgive1(c, l, now);
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
static void login_fail_time(struct brk_call *c)
{
	uint64_t jitter = 0;
	int64_t d = c->b->conf->broker.fail_delay_ms;

	if (d > 0) {
		unsigned char r[2];
		if (RAND_bytes(r, 2) == 1)
			jitter = ((unsigned)r[0] << 8 | r[1]) % (uint64_t)(d / 10 + 1);
	}
	c->answer_at_ms = (int64_t)(c->req->start_ms + (uint64_t)d + jitter);
}

static void login_failed(struct brk_call *c)
{
	login_fail_time(c);
	brk_call_fail(c, -EACCES, "login_failed", "login failed");
	brk_call_finish(c);
}

/* At the time a failure would answer: a gateway's user whose PAM asks more
 * than the one password it carries. */
static void login_mfa_required(struct brk_call *c)
{
	const struct pt_gateway_conf *g = &c->b->conf->gateway;
	const char *https =
		g->https_listen && *g->https_listen ? strrchr(g->https_listen, ':') : NULL;
	char at[320] = "";

	if (https && g->public_host && *g->public_host)
		snprintf(at, sizeof(at), " at https://%s%s%s/", g->public_host,
			 strcmp(https, ":443") ? ":" : "", strcmp(https, ":443") ? https + 1 : "");
	login_fail_time(c);
	brk_call_fail(c, -EPERM, "mfa_required",
		      "this account signs in with a second factor: sign in on the web portal%s or "
		      "with `portico connect`",
		      at);
}

static void on_pam(void *arg, int result, const char *pam_user)
{
	struct login *l = arg;
	struct brk_call *c = l->c;
	int64_t now = brk_now_ms();

	if (l->working) {
		/* The answer's throttle job still reads l: it finishes. */
		l->finished = 1;
		l->result = result;
		snprintf(l->pam_user, sizeof(l->pam_user), "%s", pam_user);
		return;
	}
	if (!c) { /* a challenge nobody answered */
		pt_log(PT_LOG_WARNING, 0,
		       "auth failure user=%s (challenge not answered, or cancelled)", l->user);
		login_free(l);
		return;
	}
	if (result != PT_AUTH_OK) {
		/* Counted when it started. */
		pt_log(PT_LOG_WARNING, c->req->id, "auth failure user=%s rhost=%s%s%s", c->user,
		       c->rhost, result == PT_AUTH_ERROR ? " (PAM error)" : "",
		       l->mfa ? " (PAM asks more than a password)" : "");
		if (l->mfa) {
			login_mfa_required(c);
			brk_call_finish(c);
		} else {
			login_failed(c);
		}
		login_free(l);
		return;
	}
	forgive(c, l, now);
	/* PAM may map the name (case, aliases): use the one it settled on. */
	snprintf(c->user, sizeof(c->user), "%s", pam_user);
	/* The password came with the first request; login_ok seals it. */
	if (l->answering && l->password[0])
		json_object_set_new(c->in, "password", json_string(l->password));
	pt_log(PT_LOG_INFO, c->req->id, "login user=%s rhost=%s", c->user, c->rhost);
	brk_call_queue(c, l->then);
	login_free(l);
}

/* PAM asks for more.  The user gets the challenge; the login waits for its
 * answer without a call.  A gateway's login cannot ask: cancelled. */
static void on_challenge(void *arg, const char *challenge, const char *prompt, int echo)
{
	struct login *l = arg;
	struct brk_call *c = l->c;

	if (l->then != login_ok || !c) {
		l->mfa = 1;
		brk_auth_cancel(l->b->auth, l);
		return;
	}
	pt_log(PT_LOG_INFO, c->req->id, "auth challenge user=%s rhost=%s", l->user, c->rhost);
	brk_call_ok(c, 401,
		    json_pack("{s:s,s:s,s:s,s:b,s:s}", "error", "challenge", "challenge", challenge,
			      "prompt", prompt, "echo", echo, "message",
			      "PAM asks for more: answer with POST /api/v1/login "
			      "{\"challenge\", \"answer\"}"));
	l->c = NULL;
	l->answering = 0;
	brk_call_finish(c);
}

/* Off the loop: the attempt counted in the store too. */
static void throttle_work(uv_work_t *w)
{
	struct login *l = w->data;
	struct brk_call *c = l->c;
	const char *keys[2] = { l->addr_key, l->user_key };

	l->rc = brk_store_throttle_take(c->b->store, keys, 2,
					(int)c->b->conf->broker.login_attempts,
					c->b->conf->broker.login_window_ms, brk_now_ms());
	if (l->rc && l->rc != -EUSERS)
		snprintf(l->why, sizeof(l->why), "%s", brk_store_error(c->b->store));
}

/* Back on the loop: PAM (or the challenge's answer to it), or the answer. */
static void throttle_done(uv_work_t *w, int status)
{
	struct login *l = w->data;
	struct brk_call *c = l->c;
	int64_t now = brk_now_ms();
	int rc;

	l->working = 0;
	if (l->finished) { /* PAM ended meanwhile (the challenge expired) */
		on_pam(l, l->result, l->pam_user);
		return;
	}
	if (l->rc == 0 && status == 0) {
		if (l->answering) {
			/* On failure the request is cancelled: on_pam answers. */
			brk_auth_answer(c->b->auth, l, brk_call_str(c, "answer"));
			return;
		}
		rc = brk_auth_start(c->b->auth, c->b->conf->broker.pam_service, c->user,
				    brk_call_str(c, "password"), c->rhost, on_pam, on_challenge, l);
		if (rc == -EBUSY) {
			/* PAM never saw it: not an attempt. */
			forgive(c, l, now);
			login_free(l);
			brk_call_fail(c, -EAGAIN, "busy", "too many logins at once: try again");
			brk_call_finish(c);
		} else if (rc) {
			login_free(l);
			login_failed(c);
		}
		return;
	}
	/* Not an attempt: the memory's count is taken back. */
	brk_throttle_forgive(c->b->throttle, l->addr_key, now);
	brk_throttle_forgive(c->b->throttle, l->user_key, now);
	l->counted--;
	if (status < 0) {
		brk_call_fail(c, -EAGAIN, "busy", "the broker is stopping");
	} else if (l->rc == -EUSERS) {
		pt_log(PT_LOG_WARNING, c->req->id, "auth throttled user=%s rhost=%s (every broker)",
		       c->user, c->rhost);
		brk_call_fail(c, -EUSERS, "throttled", "too many failed logins: try again later");
	} else {
		brk_call_store_failed(c, l->rc, l->why);
	}
	if (l->answering) { /* the challenge is spent: PAM says no, on_pam frees l */
		l->c = NULL;
		brk_auth_cancel(c->b->auth, l);
	} else {
		login_free(l);
	}
	brk_call_finish(c);
}

/* Count an attempt (in memory now, in the store off the loop), then PAM. */
static void login_count(struct brk_call *c, struct login *l, int64_t now)
{
	brk_throttle_fail(c->b->throttle, l->addr_key, now);
	brk_throttle_fail(c->b->throttle, l->user_key, now);
	l->counted++;
	l->work.data = l;
	l->working = 1;
	if (c->b->answer_cb) { /* brk_api_serve_inline */
		throttle_work(&l->work);
		throttle_done(&l->work, 0);
	} else if (uv_queue_work(c->b->loop, &l->work, throttle_work, throttle_done) != 0) {
		throttle_done(&l->work, UV_ECANCELED); /* "the broker is stopping" */
	}
}

/* POST /login {"challenge","answer"}: the answer to a challenge, from the
 * address that got it.  Anything wrong is a failed login. */
static void login_answer(struct brk_call *c)
{
	json_t *id = json_object_get(c->in, "challenge"), *ans = json_object_get(c->in, "answer");
	struct brk_throttle *t = c->b->throttle;
	int64_t now = brk_now_ms();
	char addr_key[KEY_MAX];
	struct login *l;

	if (!json_is_string(id) || !json_is_string(ans)) {
		brk_call_fail(c, -EINVAL, "bad_request",
			      "challenge and answer (strings) are required");
		brk_call_finish(c);
		return;
	}
	brk_throttle_addr_key(c->rhost, addr_key, sizeof(addr_key));
	if (brk_throttle_blocked(t, addr_key, now)) {
		pt_log(PT_LOG_WARNING, c->req->id, "auth throttled rhost=%s (challenge)", c->rhost);
		brk_call_fail(c, -EUSERS, "throttled", "too many failed logins: try again later");
		brk_call_finish(c);
		return;
	}
	l = brk_auth_take(c->b->auth, json_string_value(id), c->rhost);
	if (!l) {
		/* A guess at an id: the address pays for it. */
		brk_throttle_fail(t, addr_key, now);
		pt_log(PT_LOG_WARNING, c->req->id,
		       "auth failure rhost=%s (unknown, spent, expired or misplaced challenge)",
		       c->rhost);
		login_failed(c);
		return;
	}
	l->c = c;
	l->answering = 1;
	snprintf(c->user, sizeof(c->user), "%s", l->user);
	if (json_string_length(ans) != strlen(json_string_value(ans)) ||
	    json_string_length(ans) > BRK_PASSWORD_MAX) {
		brk_auth_cancel(c->b->auth, l); /* PAM says no: on_pam */
		return;
	}
	if (brk_throttle_blocked(t, l->user_key, now)) {
		pt_log(PT_LOG_WARNING, c->req->id, "auth throttled user=%s rhost=%s", c->user,
		       c->rhost);
		l->c = NULL;
		brk_auth_cancel(c->b->auth, l);
		brk_call_fail(c, -EUSERS, "throttled", "too many failed logins: try again later");
		brk_call_finish(c);
		return;
	}
	login_count(c, l, now);
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
	l->b = c->b;
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
	snprintf(l->user, sizeof(l->user), "%s", user);
	snprintf(l->password, sizeof(l->password), "%s", password);
	login_count(c, l, now);
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
	if (json_object_get(c->in, "challenge"))
		login_answer(c);
	else
		brk_login_start(c, login_ok);
}
