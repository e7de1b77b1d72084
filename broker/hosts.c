/*
 * hosts.c - the broker's side of the session agent protocol (docs/api.md,
 * "Session hosts"): start and stop sessions on portico-sessiond over HTTPS,
 * and reconcile what a sessiond reports with the store.
 *
 * The broker authenticates to a sessiond with its own credential: its
 * certificate ([broker] cert, else [tls]'s) as a client certificate, and
 * [broker] broker_secret as a bearer token; it verifies the sessiond's
 * certificate with [tls] ca (docs/security.md).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "hostq.h"
#include "pool.h"
#include "portico/api.h"
#include "portico/log.h"

/* A stop is quick on the host (a signal, a wait); a start takes [broker]
 * start_timeout at most (a QEMU VM may take a while to come up: sessiond
 * answers once the backend listens). */
#define STOP_TIMEOUT_MS 15000
/* A live session a sessiond does not report is gone, unless this broker
 * is still starting it (its call waits or runs in the host's queue), or it
 * was made, changed (a start that just completed) or this broker started
 * this recently: the report may predate the start, and a broker that was
 * away cannot tell a start a previous run left in flight from a lost one. */
#define RECONCILE_GRACE_MS 30000

static void host_api(struct brk *b, const struct brk_host *h, long timeout_ms,
		     struct pt_api_conf *c)
{
	*c = b->host_api;
	c->base = h->address;
	c->timeout_ms = timeout_ms;
}

static void end_session(struct brk *b, struct brk_session *s, const char *reason)
{
	brk_store_session_end(b->store, s->id, reason, brk_now_ms(), NULL);
	s->state = BRK_ENDED;
	snprintf(s->end_reason, sizeof(s->end_reason), "%s", reason);
}

int64_t brk_start_timeout_ms(const struct brk *b, const struct brk_pool *p)
{
	int64_t t = b->conf->broker.start_timeout_ms;

	if (p->c.driver == PT_DRIVER_QEMU && p->c.protocol != PT_PROTO_CONSOLE &&
	    p->c.boot_timeout_ms + 60000 > t)
		t = p->c.boot_timeout_ms + 60000;
	return t;
}

int brk_host_start(struct brk *b, struct brk_session *s, const struct brk_pool *p,
		   const char *geometry, const char *password, char *msg, size_t msglen)
{
	struct pt_api_resp r;
	struct pt_api_conf c;
	struct brk_host h;
	char err[512], why[300];
	const char *backend, *secret;
	json_t *body;
	int rc;

	if (brk_store_host_get(b->store, s->host, &h) || !h.sessiond || !h.address[0]) {
		snprintf(msg, msglen, "session host unavailable");
		end_session(b, s, "session host unknown");
		return 503;
	}
	body = json_pack("{s:I,s:s,s:o}", "id", (json_int_t)s->id, "user", s->user, "pool",
			 brk_pool_json(p));
	if (!body) {
		snprintf(msg, msglen, "out of memory");
		end_session(b, s, "start failed");
		return 503;
	}
	if (geometry && *geometry)
		json_object_set_new(body, "geometry", json_string(geometry));
	if (password)
		json_object_set_new(body, "password", json_string(password));
	host_api(b, &h, (long)brk_start_timeout_ms(b, p), &c);
	rc = pt_api_call(&c, "POST", "/api/v1/sessions", body, &r, err, sizeof(err));
	/* jansson frees its copy of the password unwiped */
	if (password && json_string_value(json_object_get(body, "password")))
		explicit_bzero((char *)json_string_value(json_object_get(body, "password")),
			       strlen(password));
	json_decref(body);
	if (rc) {
		pt_log_warnx("session %lld: session host %s unreachable: %s", (long long)s->id,
			     h.name, err);
		snprintf(msg, msglen, "session host unavailable");
		end_session(b, s, "session host unavailable");
		pt_api_resp_free(&r);
		return 503;
	}
	backend = json_string_value(json_object_get(r.json, "backend"));
	secret = json_string_value(json_object_get(r.json, "secret"));
	if (r.status != 200 && r.status != 201) {
		pt_api_message(&r, why, sizeof(why));
		pt_log_warnx("session %lld of %s: %s could not start it: %s", (long long)s->id,
			     s->user, h.name, why);
		snprintf(msg, msglen, "%s", why);
		end_session(b, s, "start failed");
		rc = r.status == 503 ? 503 : 502;
		pt_api_resp_free(&r);
		return rc;
	}
	if (!backend || !*backend || strlen(backend) >= sizeof(s->backend) ||
	    (secret && strlen(secret) >= sizeof(s->secret))) {
		pt_log_warnx("session %lld: %s answered without a usable backend", (long long)s->id,
			     h.name);
		snprintf(msg, msglen, "session host unavailable");
		brk_host_stop(b, s, "start failed");
		end_session(b, s, "start failed");
		pt_api_resp_free(&r);
		return 502;
	}
	rc = brk_store_session_ready(b->store, s->id, backend, secret ? secret : "", brk_now_ms());
	if (rc == -ENOENT) {
		/* Not STARTING any more: a heartbeat may have reported it running
		 * already (hosts.c, reconcile): the same backend, still live, is
		 * this start's success, not an end. */
		struct brk_session now;
		if (brk_store_session_get(b->store, s->id, &now) == 0 && now.state != BRK_ENDED &&
		    !strcmp(now.backend, backend)) {
			*s = now;
			pt_log_info("session %lld of %s started on %s at %s (its heartbeat told first)",
				    (long long)s->id, s->user, h.name, backend);
			pt_api_resp_free(&r);
			return 0;
		}
	}
	if (rc) {
		/* Ended meanwhile (an admin's logoff, a timeout): undo. */
		snprintf(msg, msglen, "the session ended while it was starting");
		brk_host_stop(b, s, "ended while starting");
		pt_api_resp_free(&r);
		return 409;
	}
	snprintf(s->backend, sizeof(s->backend), "%s", backend);
	snprintf(s->secret, sizeof(s->secret), "%s", secret ? secret : "");
	s->state = BRK_READY;
	pt_log_info("session %lld of %s started on %s at %s", (long long)s->id, s->user, h.name,
		    backend);
	pt_api_resp_free(&r);
	return 0;
}

/* A stop on its way to a host (brk_host_stop), or a notice
 * (brk_host_message: text set). */
struct stop {
	struct brk_hostq_job job; /* first */
	struct brk *b;
	int64_t id;
	char reason[64];
	char text[512];
	struct brk_host h;
};

/* On the call's own thread: hand the notice to the host. */
static void notice_run(struct brk_hostq_job *j, int why)
{
	struct stop *st = (struct stop *)j;
	struct pt_api_resp r;
	struct pt_api_conf c;
	char path[80], err[512], msg[300];
	json_t *body;

	if (why != BRK_HOSTQ_RUN) {
		pt_log_warnx("session %lld: the message was not shown on %s's screen (%s)",
			     (long long)st->id, st->h.name,
			     why == BRK_HOSTQ_STOPPING ? "the broker is stopping"
						       : "the host is slow to answer");
		return;
	}
	snprintf(path, sizeof(path), "/api/v1/sessions/%lld/message", (long long)st->id);
	body = json_pack("{s:s}", "text", st->text);
	host_api(st->b, &st->h, STOP_TIMEOUT_MS, &c);
	if (pt_api_call(&c, "POST", path, body, &r, err, sizeof(err)))
		pt_log_warnx("session %lld: cannot reach %s to show the message (%s)",
			     (long long)st->id, st->h.name, err);
	else if (r.status != 200)
		pt_log_warnx("session %lld: %s did not show the message: %s", (long long)st->id,
			     st->h.name, pt_api_message(&r, msg, sizeof(msg)));
	pt_api_resp_free(&r);
	json_decref(body);
}

/* On the stop's own thread: ask the host. */
static void stop_run(struct brk_hostq_job *j, int why)
{
	struct stop *st = (struct stop *)j;
	struct pt_api_resp r;
	struct pt_api_conf c;
	char path[64], err[512], msg[300];
	json_t *body;

	if (why != BRK_HOSTQ_RUN) {
		pt_log_warnx("session %lld: not stopped on %s (%s); its next heartbeat will",
			     (long long)st->id, st->h.name,
			     why == BRK_HOSTQ_STOPPING ? "the broker is stopping"
			     : why == BRK_HOSTQ_LATE   ? "the host is slow to answer"
						       : "no thread for the call");
		return;
	}
	snprintf(path, sizeof(path), "/api/v1/sessions/%lld", (long long)st->id);
	body = json_pack("{s:s}", "reason", st->reason);
	host_api(st->b, &st->h, STOP_TIMEOUT_MS, &c);
	if (pt_api_call(&c, "DELETE", path, body, &r, err, sizeof(err)))
		pt_log_warnx("session %lld: cannot reach %s to stop it (%s); its next heartbeat "
			     "will",
			     (long long)st->id, st->h.name, err);
	else if (r.status != 200 && r.status != 404)
		pt_log_warnx("session %lld: %s did not stop it: %s", (long long)st->id, st->h.name,
			     pt_api_message(&r, msg, sizeof(msg)));
	pt_api_resp_free(&r);
	json_decref(body);
}

static void stop_done(struct brk_hostq_job *j)
{
	free(j);
}

void brk_host_stop(struct brk *b, const struct brk_session *s, const char *reason)
{
	struct stop *st;
	int rc;

	st = calloc(1, sizeof(*st));
	if (!st)
		return; /* the heartbeat stops it */
	if (brk_store_host_get(b->store, s->host, &st->h) || !st->h.sessiond ||
	    !st->h.address[0]) {
		free(st); /* a static backend: nothing runs on our behalf */
		return;
	}
	st->b = b;
	st->id = s->id;
	snprintf(st->reason, sizeof(st->reason), "%s", reason);
	st->job.run = stop_run;
	st->job.done = stop_done;
	st->job.wait_ms = b->conf->broker.start_timeout_ms;
	rc = brk_hostq_submit(b->hostq, st->h.name, &st->job);
	if (rc) {
		pt_log_warnx("session %lld: not stopped on %s (%s); its next heartbeat will",
			     (long long)s->id, st->h.name,
			     rc == -EAGAIN ? "too many calls wait for that host"
			     : rc == -ESHUTDOWN ? "the broker is stopping"
						: "out of memory");
		free(st);
	}
}

void brk_host_message(struct brk *b, const struct brk_session *s, const char *text)
{
	struct stop *st = calloc(1, sizeof(*st));
	int rc;

	if (!st)
		return;
	/* A static backend (or a VM) has no agent to draw it: the gateway's
	 * text frame to a browser is all there is. */
	if (brk_store_host_get(b->store, s->host, &st->h) || !st->h.sessiond ||
	    !st->h.address[0]) {
		free(st);
		return;
	}
	st->b = b;
	st->id = s->id;
	snprintf(st->text, sizeof(st->text), "%s", text);
	st->job.run = notice_run;
	st->job.done = stop_done;
	st->job.wait_ms = b->conf->broker.start_timeout_ms;
	rc = brk_hostq_submit(b->hostq, st->h.name, &st->job);
	if (rc) {
		pt_log_warnx("session %lld: the message is not shown on %s's screen (%s)",
			     (long long)s->id, st->h.name,
			     rc == -EAGAIN ? "too many calls wait for that host" : "the broker is stopping");
		free(st);
	}
}

static int reported(json_t *sessions, int64_t id)
{
	size_t i;
	json_t *v;

	json_array_foreach(sessions, i, v)
	{
		if (json_integer_value(json_object_get(v, "id")) == id)
			return 1;
	}
	return 0;
}

static int serves(const struct pt_pool_conf *pc, const char *host)
{
	if (pc->driver == PT_DRIVER_STATIC)
		return 0;
	for (size_t i = 0; i < pc->hosts.n; i++)
		if (!strcmp(pc->hosts.v[i], host))
			return 1;
	return 0;
}

/*
 * A session STARTING here that the host does not run: whether its start
 * is over (it is to be ended now).  Its broker's call may still wait in
 * that broker's queue or run: this broker's own is in its hostq; another
 * broker's is in that broker's hands while the broker lives (it beats every
 * sweep), and, once the host says what it is starting (starting != NULL),
 * a start the host has is listed there.  A start whose broker stopped
 * beating BROKER_LOST_MS ago and that the host does not have never reached
 * it: over, without waiting for any grace.  From a host that does not say
 * what it starts, or a row made before brokers were named: the grace since
 * its last change, on a shared store long enough for another broker's
 * start to wait and run (twice start_timeout).
 */
#define BROKER_LOST_MS 15000 /* > a heartbeat's call timeout (10 s) */
static int start_is_over(struct brk *b, const struct brk_session *s, json_t *starting,
			 int64_t since, int64_t now)
{
	int64_t grace = RECONCILE_GRACE_MS, seen = 0;

	if (brk_hostq_has(b->hostq, s->host, s->id) || reported(starting, s->id))
		return 0;
	if (starting && s->starter[0] && strcmp(s->starter, b->id)) {
		int rc = brk_store_broker_seen(b->store, s->starter, &seen);
		if (rc == 0 || rc == -ENOENT)
			return now - seen >= BROKER_LOST_MS;
		return 0; /* cannot tell now: the next heartbeat will */
	}
	if (brk_store_shared(b->store) && strcmp(s->starter, b->id))
		grace += 2 * b->conf->broker.start_timeout_ms;
	return now - since >= grace;
}

json_t *brk_host_reconcile(struct brk *b, const char *name, json_t *sessions, json_t *starting,
			   int *status, char *msg, size_t msglen)
{
	struct brk_session_filter f = { .host = name, .state = -2 };
	struct brk_session *live = NULL, s;
	struct brk_pool *pools = NULL;
	size_t nl = 0, np = 0, i;
	int64_t now = brk_now_ms();
	json_t *stop = json_array(), *pl = json_array(), *v;
	int rc;

	if (!stop || !pl)
		goto oom;
	/* What the host runs: known and live here, or to be stopped. */
	json_array_foreach(sessions, i, v)
	{
		json_t *jid = json_object_get(v, "id");
		const char *backend = json_string_value(json_object_get(v, "backend"));
		const char *secret = json_string_value(json_object_get(v, "secret"));
		if (!json_is_integer(jid)) {
			*status = 400;
			snprintf(msg, msglen, "sessions[%zu] has no id", i);
			goto fail;
		}
		rc = brk_store_session_get(b->store, json_integer_value(jid), &s);
		if (rc && rc != -ENOENT)
			goto store;
		if (rc == -ENOENT || s.state == BRK_ENDED || strcmp(s.host, name)) {
			json_array_append(stop, jid);
			continue;
		}
		/* Started while the broker was away, or its answer was lost. */
		if (s.state == BRK_STARTING && backend && *backend &&
		    strlen(backend) < sizeof(s.backend) &&
		    (!secret || strlen(secret) < sizeof(s.secret)) &&
		    brk_store_session_ready(b->store, s.id, backend, secret ? secret : "", now) ==
			    0)
			pt_log_info("session %lld of %s on %s is running (reported by the host)",
				    (long long)s.id, s.user, name);
	}
	/* What the store believes runs there and the host no longer has. */
	rc = brk_store_session_list(b->store, &f, &live, &nl);
	if (rc)
		goto store;
	for (i = 0; i < nl; i++) {
		int64_t since = live[i].created_ms;
		if (live[i].updated_ms > since)
			since = live[i].updated_ms;
		if (b->started_ms > since)
			since = b->started_ms;
		if (reported(sessions, live[i].id) ||
		    (live[i].state == BRK_STARTING
			     ? !start_is_over(b, &live[i], starting, since, now)
			     : now - since < RECONCILE_GRACE_MS))
			continue;
		brk_store_session_end(b->store, live[i].id, "ended on the session host", now, NULL);
		if (live[i].state == BRK_STARTING)
			pt_log_info("session %lld of %s ended: its start never reached %s (%s)",
				    (long long)live[i].id, live[i].user, name,
				    strcmp(live[i].starter, b->id) ? "the broker that made it is gone"
								   : "its call ended");
		else
			pt_log_info("session %lld of %s ended: %s no longer runs it",
				    (long long)live[i].id, live[i].user, name);
	}
	free(live);
	rc = brk_store_pool_list(b->store, &pools, &np);
	if (rc)
		goto store;
	for (i = 0; i < np; i++)
		if (serves(&pools[i].c, name))
			json_array_append_new(pl, brk_pool_json(&pools[i]));
	brk_pools_free(pools, np);
	return json_pack("{s:o,s:o}", "pools", pl, "stop", stop);
store:
	*status = 500;
	snprintf(msg, msglen, "store: %s", brk_store_error(b->store));
	goto fail;
oom:
	*status = 503;
	snprintf(msg, msglen, "out of memory");
fail:
	json_decref(stop);
	json_decref(pl);
	return NULL;
}
