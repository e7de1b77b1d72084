/*
 * net.c - portico-sessiond's network side (see session.h), as [sessiond]
 * user: the HTTPS API the broker calls (docs/api.md, "Session hosts"), and
 * register / heartbeat / events towards the broker.  Starting and stopping
 * is the root side's: this side checks the broker's request and passes it
 * on as a fixed-size message.
 */
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "portico/api.h"
#include "portico/httpd.h"
#include "portico/log.h"
#include "portico/urls.h"
#include "session.h"

#define START_TIMEOUT_MS 120000 /* a start the root side never answered */
/* Requests that wait for a root side that is not reading (busy forking,
 * looking users up, stopped): about 2 KiB each.  Past this the broker is
 * told "host busy" (503) instead. */
#define ROOT_QUEUE_MAX 1024

/* A session this host runs (or is starting), as the broker should see it. */
struct nsess {
	struct nsess *next;
	int64_t id;
	int running;
	int spare; /* a booted VM nobody has yet */
	int kind;  /* SD_KIND_*: the metrics' label (unknown when adopted) */
	char user[256];
	char pool[72];
	char backend[256];
	char secret[64];
	/* POST /sessions requests waiting for the start */
	struct waiter *waiters;
	uint64_t since; /* uv_now at the start request */
	uint64_t limit; /* how long the root side may take to answer it */
};

struct waiter {
	struct waiter *next;
	struct pt_http_req *req;
};

static struct {
	const struct pt_conf *conf;
	uv_loop_t *loop;
	int fd;
	uv_poll_t ipc;
	struct pt_ipc_queue out; /* requests the root side's socket did not take yet */
	int busy;		 /* refusing requests since the queue filled */
	struct pt_httpd *http;
	struct nsess *sessions;
	uv_timer_t beat, stuck;
	int registered;
	int beating; /* a register or heartbeat is in flight */
	char address[300];
	/* The CNs a broker's certificate may carry, and them for messages. */
	char broker_names[PT_URLS_MAX][256];
	size_t n_broker_names;
	char broker_name[PT_URLS_MAX * 260];
	char last_err[2048]; /* why the last register or heartbeat failed */
	unsigned char broker_hash[SHA256_DIGEST_LENGTH]; /* of [broker] broker_secret */
	int have_broker_hash;
	struct pt_api_conf api;
	uv_signal_t sigterm, sigint;
	json_t *pools;	    /* what the broker says this host serves */
	int64_t next_spare; /* id of the next spare VM */
	struct call *calls; /* on the thread pool: stopping waits for them */
	int stopping;
	/* The root side has reported every session it adopted at start
	 * (PT_SESS_ADOPTED): until then this side tells the broker nothing,
	 * since an empty or partial list would make it end them. */
	int adopted;
	/* What runs, as the sessions of a register or heartbeat: rebuilt on
	 * the loop whenever the list changes, read by the call on the
	 * thread pool when it sends (a list built before a call waits its
	 * turn or a slow handshake would be stale). */
	pthread_mutex_t snap_lock;
	char *snap;
	int snap_dirty;
} N = { .snap_lock = PTHREAD_MUTEX_INITIALIZER };

static struct nsess *find(int64_t id)
{
	for (struct nsess *s = N.sessions; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void forget(struct nsess *s)
{
	for (struct nsess **pp = &N.sessions; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	explicit_bzero(s->secret, sizeof(s->secret));
	free(s);
}

static json_t *session_json(const struct nsess *s, int with_secret)
{
	json_t *o = json_pack("{s:I,s:s,s:s,s:s}", "id", (json_int_t)s->id, "user", s->user, "pool",
			      s->pool, "backend", s->backend);

	if (o && with_secret)
		json_object_set_new(o, "secret", json_string(s->secret));
	return o;
}

static json_t *sessions_json(int with_secret)
{
	json_t *a = json_array();

	for (struct nsess *s = N.sessions; s; s = s->next)
		if (s->running && !s->spare)
			json_array_append_new(a, session_json(s, with_secret));
	return a;
}

/* The sessions asked for and not running yet: the broker then knows a
 * start reached this host, whichever broker asked (docs/ha.md). */
static json_t *starting_json(void)
{
	json_t *a = json_array();

	for (struct nsess *s = N.sessions; s; s = s->next)
		if (!s->running && !s->spare)
			json_array_append_new(a, json_pack("{s:I}", "id", (json_int_t)s->id));
	return a;
}

/* The list as the broker should see it now, for the next register or
 * heartbeat to take when it sends (the loop thread only). */
static void publish(void)
{
	json_t *a = json_pack("{s:o,s:o}", "sessions", sessions_json(1), "starting", starting_json());
	char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	char *old;

	json_decref(a);
	if (!text)
		return; /* out of memory: stays dirty, tried again */
	pthread_mutex_lock(&N.snap_lock);
	old = N.snap;
	N.snap = text;
	pthread_mutex_unlock(&N.snap_lock);
	N.snap_dirty = 0;
	if (old) {
		explicit_bzero(old, strlen(old)); /* it holds the backends' secrets */
		free(old);
	}
}

/* The sessions of a register or heartbeat, from the latest list (on the
 * thread pool, as the call is made); NULL when out of memory. */
static json_t *snapshot(void)
{
	json_t *a;

	pthread_mutex_lock(&N.snap_lock);
	a = N.snap ? json_loads(N.snap, 0, NULL) : json_pack("{s:[],s:[]}", "sessions", "starting");
	pthread_mutex_unlock(&N.snap_lock);
	return a;
}

static json_t *spares_json(void)
{
	json_t *a = json_array();

	for (struct nsess *s = N.sessions; s; s = s->next)
		if (s->spare)
			json_array_append_new(a, json_pack("{s:I,s:s,s:b}", "id", (json_int_t)s->id,
							   "pool", s->pool, "ready", s->running));
	return a;
}

/* --- jobs towards the broker (libcurl on the thread pool) -------------------- */

struct call {
	uv_work_t work;
	struct call *next, **prevp; /* N.calls */
	char method[8];
	char path[64];
	json_t *body;
	int beat; /* a register or heartbeat: its body is made in call_work */
	struct pt_api_resp resp;
	int rc;
	char err[2048]; /* every broker of the list tried, and why */
	void (*done)(struct call *c);
};

static json_t *beat_body(int reg);

static void call_work(uv_work_t *w)
{
	struct call *c = w->data;

	if (c->beat && !(c->body = beat_body(!strcmp(c->path, "/api/v1/hosts/register")))) {
		c->rc = -1;
		snprintf(c->err, sizeof(c->err), "out of memory");
		return;
	}
	c->rc = pt_api_call(&N.api, c->method, c->path, c->body, &c->resp, c->err, sizeof(c->err));
}

static void call_after(uv_work_t *w, int status)
{
	struct call *c = w->data;

	if (c->next)
		c->next->prevp = c->prevp;
	*c->prevp = c->next;
	/* Once stopping, an answer changes nothing: the root side may be
	 * gone, and a heartbeat's answer would ask it for spare VMs. */
	if (c->done && status == 0 && !N.stopping)
		c->done(c);
	json_decref(c->body);
	pt_api_resp_free(&c->resp);
	free(c);
}

/* A call to the broker on the thread pool; done(c) on the loop with its
 * answer.  body is the call's (freed with it); NULL for a register or
 * heartbeat, whose body call_work makes as it sends. */
static struct call *call(const char *method, const char *path, json_t *body,
			 void (*done)(struct call *))
{
	/* No broker (tests and fuzzing: sd_net_test_init): nothing to call. */
	struct call *c = N.stopping || !N.api.base ? NULL : calloc(1, sizeof(*c));

	if (!c) {
		json_decref(body);
		return NULL;
	}
	snprintf(c->method, sizeof(c->method), "%s", method);
	snprintf(c->path, sizeof(c->path), "%s", path);
	c->body = body;
	c->done = done;
	c->work.data = c;
	c->beat = !strcmp(path, "/api/v1/hosts/register") || !strcmp(path, "/api/v1/hosts/heartbeat");
	if (uv_queue_work(N.loop, &c->work, call_work, call_after) != 0) {
		json_decref(body);
		free(c);
		return NULL;
	}
	c->next = N.calls;
	if (c->next)
		c->next->prevp = &c->next;
	c->prevp = &N.calls;
	N.calls = c;
	return c;
}

static int send_req(int op, int64_t id, const char *reason);
static int send_req_full(const struct pt_ipc_sess_req *req);

static void load(double *load1, long long *mem_free_kb)
{
	FILE *f = fopen("/proc/loadavg", "re");
	char line[256];

	*load1 = 0;
	*mem_free_kb = 0;
	if (f) {
		if (fscanf(f, "%lf", load1) != 1)
			*load1 = 0;
		fclose(f);
	}
	f = fopen("/proc/meminfo", "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %lld kB", mem_free_kb) == 1)
			break;
	if (f)
		fclose(f);
}

static int pool_is(json_t *p, const char *key, const char *val)
{
	const char *v = json_string_value(json_object_get(p, key));

	return v && !strcmp(v, val);
}

static const char *jstr(json_t *o, const char *key);
static int enum_of(const char *v, const char *const names[], int n);

/* A qemu pool's guest keys (docs/api.md: the broker sends every key of the
 * pool) into r: protocol, the guest's port, the boot timeout; a broker
 * older than guest protocols sends none, and its VMs are consoles.  0, or
 * -1 when one is malformed. */
static int vm_keys(json_t *pool, struct pt_ipc_sess_req *r)
{
	static const char *const protos[] = { "vnc", "rdp", "console" };
	const char *proto = jstr(pool, "protocol"), *boot = jstr(pool, "boot_timeout");
	json_t *port = json_object_get(pool, "guest_port");
	int64_t ms = 300000;

	r->protocol = proto ? enum_of(proto, protos, 3) : PT_PROTO_CONSOLE;
	if (r->protocol < 0 || (port && !json_is_integer(port)) ||
	    (boot && (pt_conf_parse_duration(boot, &ms) || ms < 10000 || ms > 3600000)))
		return -1;
	r->guest_port = (int32_t)json_integer_value(port);
	if (r->guest_port < 0 || r->guest_port > 65535)
		return -1;
	if (r->guest_port == 0)
		r->guest_port = r->protocol == PT_PROTO_RDP ? 3389 : 5900;
	r->boot_timeout_ms = ms;
	return 0;
}

/* How long a start may take before this side gives up on it: a VM that
 * boots to its guest's server takes its boot timeout and the time to
 * hand it over besides. */
static uint64_t start_limit(const struct pt_ipc_sess_req *r)
{
	if (r->driver == PT_DRIVER_QEMU && r->protocol != PT_PROTO_CONSOLE &&
	    r->boot_timeout_ms + 60000 > START_TIMEOUT_MS)
		return (uint64_t)r->boot_timeout_ms + 60000;
	return START_TIMEOUT_MS;
}

/* Keep min_spare VMs booted for each qemu pool this host serves (never
 * above max_vms with its sessions); stop spares nobody wants any more. */
static void refill(void)
{
	size_t i;
	json_t *p;

	for (struct nsess *s = N.sessions, *next; s; s = next) {
		int wanted = 0, have = 0;
		next = s->next;
		if (!s->spare || !s->running)
			continue;
		json_array_foreach(N.pools, i, p)
		{
			if (pool_is(p, "name", s->pool) && !pool_is(p, "policy", "persistent"))
				wanted = (int)json_integer_value(json_object_get(p, "min_spare"));
		}
		for (struct nsess *o = N.sessions; o; o = o->next)
			if (o->spare && !strcmp(o->pool, s->pool))
				have++;
		if (have > wanted) {
			/* A busy root side: asked again at the next beat. */
			if (send_req(PT_SESS_STOP, s->id, "spare no longer needed"))
				continue;
			pt_log_info("spare VM %lld of pool %s no longer needed", (long long)s->id,
				    s->pool);
			s->spare = 2; /* stopping: counted no more */
			s->running = 0;
		}
	}
	json_array_foreach(N.pools, i, p)
	{
		const char *name = json_string_value(json_object_get(p, "name"));
		const char *image = json_string_value(json_object_get(p, "image"));
		int min = (int)json_integer_value(json_object_get(p, "min_spare"));
		int max = (int)json_integer_value(json_object_get(p, "max_vms"));
		int spares = 0, vms = 0;
		if (!name || !pool_is(p, "driver", "qemu") || pool_is(p, "policy", "persistent") ||
		    min <= 0 || !image || strlen(name) >= 72 || strlen(image) >= 512)
			continue;
		for (struct nsess *o = N.sessions; o; o = o->next) {
			if (strcmp(o->pool, name) || o->spare == 2)
				continue;
			vms++;
			spares += o->spare == 1;
		}
		while (spares < min && (max <= 0 || vms < max)) {
			struct pt_ipc_sess_req r;
			struct nsess *s = calloc(1, sizeof(*s));
			if (!s)
				return;
			memset(&r, 0, sizeof(r));
			r.type = PT_IPC_SESS_REQ;
			r.op = PT_SESS_SPARE;
			r.id = N.next_spare;
			r.kind = PT_POOL_DESKTOP;
			r.driver = PT_DRIVER_QEMU;
			snprintf(r.pool, sizeof(r.pool), "%s", name);
			snprintf(r.image, sizeof(r.image), "%s", image);
			if (vm_keys(p, &r)) {
				free(s);
				pt_log_warnx("pool %s: its protocol, guest_port or boot_timeout is "
					     "malformed: no spare VMs",
					     name);
				break;
			}
			/* A busy root side: booted at a later beat. */
			if (send_req_full(&r)) {
				free(s);
				return;
			}
			N.next_spare++;
			s->id = r.id;
			s->spare = 1;
			s->since = uv_now(N.loop);
			s->limit = start_limit(&r);
			snprintf(s->pool, sizeof(s->pool), "%s", name);
			s->next = N.sessions;
			N.sessions = s;
			pt_log_info("booting spare VM %lld for pool %s", (long long)r.id, name);
			spares++;
			vms++;
		}
	}
}

static void beat_done(struct call *c)
{
	json_t *stop, *v;
	size_t i;
	char msg[300];

	N.beating = 0;
	if (c->rc) {
		/* Said once per cause, not once per beat. */
		if (N.registered || strcmp(N.last_err, c->err))
			pt_log_warnx("broker unreachable: %s", c->err);
		snprintf(N.last_err, sizeof(N.last_err), "%s", c->err);
		N.registered = 0;
		return;
	}
	N.last_err[0] = '\0';
	if (c->resp.status == 404 && !strcmp(c->path, "/api/v1/hosts/heartbeat")) {
		N.registered = 0; /* a broker with a fresh store: register again */
		return;
	}
	if (c->resp.status != 200) {
		pt_log_warnx("broker refused %s: %s", c->path,
			     pt_api_message(&c->resp, msg, sizeof(msg)));
		N.registered = 0;
		return;
	}
	if (!N.registered)
		pt_log_info("registered with the broker as %s (%s)", N.conf->sessiond.name,
			    N.address);
	N.registered = 1;
	json_t *pools = json_object_get(c->resp.json, "pools");
	if (json_is_array(pools)) {
		json_decref(N.pools);
		N.pools = json_incref(pools);
		refill();
	}
	stop = json_object_get(c->resp.json, "stop");
	json_array_foreach(stop, i, v)
	{
		struct nsess *s = find(json_integer_value(v));
		/* A busy root side: the broker asks again at the next beat. */
		if (s && s->running && !send_req(PT_SESS_STOP, s->id, "ended by the broker"))
			pt_log_info("session %lld: the broker has ended it: stopping",
				    (long long)s->id);
	}
}

/* On the thread pool, as the call is made: the host's figures and what
 * runs now, with the time they were taken (at_ms, docs/api.md). */
static json_t *beat_body(int reg)
{
	double l;
	long long mem;
	struct timespec ts;
	json_t *body, *snap = snapshot();

	if (!snap)
		return NULL;
	load(&l, &mem);
	clock_gettime(CLOCK_REALTIME, &ts);
	body = json_pack("{s:s,s:f,s:I,s:I,s:O,s:O}", "name", N.conf->sessiond.name, "load", l,
			 "mem_free_kb", (json_int_t)mem, "at_ms",
			 (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "sessions",
			 json_object_get(snap, "sessions"), "starting",
			 json_object_get(snap, "starting"));
	json_decref(snap);
	if (body && reg && json_object_set_new(body, "address", json_string(N.address))) {
		json_decref(body);
		body = NULL;
	}
	return body;
}

static void heartbeat(uv_timer_t *t)
{
	/* Nothing before the root side has reported what it adopted: the
	 * broker would end every session it has not heard of yet. */
	if (N.beating || !N.adopted)
		return;
	if (N.snap_dirty)
		publish();
	if (call("POST", N.registered ? "/api/v1/hosts/heartbeat" : "/api/v1/hosts/register",
		 NULL, beat_done))
		N.beating = 1;
}

static void event_done(struct call *c)
{
	char msg[300];

	if (c->rc)
		pt_log_warnx("cannot tell the broker a session ended (%s); the next heartbeat will",
			     c->err);
	else if (c->resp.status != 200 && c->resp.status != 404)
		pt_log_warnx("broker refused the end of a session: %s",
			     pt_api_message(&c->resp, msg, sizeof(msg)));
}

/* --- the root side -------------------------------------------------------------- */

static void on_ipc(uv_poll_t *p, int status, int events);

/* Watch the socket for room while requests wait, for answers always. */
static void watch_ipc(void)
{
	uv_poll_start(&N.ipc, UV_READABLE | (N.out.len ? UV_WRITABLE : 0), on_ipc);
}

/* Pass a request to the root side: at once, or kept in order while its
 * socket is full (the root side is busy or stopped; exiting here would
 * lose every request in flight).  0, or -ENOBUFS when ROOT_QUEUE_MAX
 * requests already wait: the caller refuses ("host busy").  A root side
 * that is gone ends this side, as before. */
static int send_req_full(const struct pt_ipc_sess_req *req)
{
	size_t was = N.out.len;
	int rc = pt_ipc_queue_send(&N.out, N.fd, req, sizeof(*req));

	if (rc == -ENOBUFS || rc == -ENOMEM) {
		if (!N.busy)
			pt_log_warnx("the root side is not keeping up: %zu requests wait for it; "
				     "refusing more (host busy) until it catches up",
				     N.out.len);
		N.busy = 1;
		return -ENOBUFS;
	}
	if (rc < 0)
		pt_fatalx("cannot reach sessiond's root side: %s", strerror(-rc));
	if (!was && N.out.len)
		watch_ipc();
	return 0;
}

static int send_req(int op, int64_t id, const char *reason)
{
	struct pt_ipc_sess_req req;

	memset(&req, 0, sizeof(req));
	req.type = PT_IPC_SESS_REQ;
	req.op = (uint32_t)op;
	req.id = id;
	snprintf(req.reason, sizeof(req.reason), "%s", reason ? reason : "");
	return send_req_full(&req);
}

/* The socket has room: send what waits. */
static void flush_req(void)
{
	int rc = pt_ipc_queue_flush(&N.out, N.fd);

	if (rc < 0 && rc != -EAGAIN)
		pt_fatalx("cannot reach sessiond's root side: %s", strerror(-rc));
	if (rc == 0) {
		if (N.busy)
			pt_log_info("the root side has caught up: taking requests again");
		N.busy = 0;
		watch_ipc();
	}
}

/* A request refused because the root side is not keeping up. */
static void host_busy(struct pt_http_req *req)
{
	pt_http_error(req, 503, "busy",
		      "host busy: %zu requests wait for %s's root side; try again shortly",
		      N.out.len, N.conf->sessiond.name);
}

static void answer_waiters(struct nsess *s, int status, json_t *doc)
{
	struct waiter *w = s->waiters;

	s->waiters = NULL;
	while (w) {
		struct waiter *next = w->next;
		pt_http_json(w->req, status, json_incref(doc));
		free(w);
		w = next;
	}
	json_decref(doc);
}

/* One answer of the root side, read from N.fd. */
static void read_rep(void)
{
	struct pt_ipc_sess_rep rep;
	ssize_t n = pt_ipc_recv(N.fd, &rep, sizeof(rep), PT_IPC_SESS_REP);
	struct nsess *s;
	int runs = 0;

	if (n == -EAGAIN)
		return;
	/* The root side ends first when sessiond stops (it closes its end
	 * as it sends this side SIGTERM, whichever comes first) or dies:
	 * stop as for SIGTERM, so the calls to the broker in flight end
	 * before what they read is freed (net_stop). */
	if (n == 0 || n == -ECONNRESET) {
		pt_log_info("sessiond's root side has gone away: stopping");
		uv_poll_stop(&N.ipc);
		uv_stop(N.loop);
		return;
	}
	if (n < 0)
		pt_fatalx("malformed message from the root side (%s)", pt_ipc_error());
	N.snap_dirty = 1;
	s = find(rep.id);
	switch (rep.op) {
	case PT_SESS_RUNNING:
	case PT_SESS_STARTED:
		if (rep.from) { /* a spare VM became this session */
			struct nsess *sp = find(rep.from);
			if (sp)
				forget(sp);
		}
		if (!s && (s = calloc(1, sizeof(*s))) != NULL) {
			s->id = rep.id;
			s->kind = rep.id >= PT_SESS_SPARE_BASE ? SD_KIND_VM : SD_KIND_UNKNOWN;
			s->next = N.sessions;
			N.sessions = s;
		}
		if (!s)
			break;
		if (rep.op == PT_SESS_STARTED && !s->running && rep.id < PT_SESS_SPARE_BASE)
			sd_metrics_start(s->kind, "ok",
					 s->since ? (uv_now(N.loop) - s->since) / 1000.0 : -1);
		s->running = 1;
		s->spare = rep.id >= PT_SESS_SPARE_BASE;
		if (s->spare && rep.id >= N.next_spare)
			N.next_spare = rep.id + 1;
		snprintf(s->user, sizeof(s->user), "%s", rep.user);
		snprintf(s->pool, sizeof(s->pool), "%s", rep.pool);
		snprintf(s->backend, sizeof(s->backend), "%s", rep.backend);
		snprintf(s->secret, sizeof(s->secret), "%s", rep.secret);
		if (rep.op == PT_SESS_STARTED && s->spare)
			pt_log_info("spare VM %lld of pool %s is ready", (long long)s->id, s->pool);
		else if (rep.op == PT_SESS_STARTED)
			pt_log_info("session %lld of %s started at %s%s", (long long)s->id, s->user,
				    s->backend, rep.from ? " (a spare VM)" : "");
		answer_waiters(s, 201, session_json(s, 1));
		if (rep.from)
			refill();
		break;
	case PT_SESS_FAILED:
		pt_log_warnx("session %lld of %s did not start: %s", (long long)rep.id, rep.user,
			     rep.message);
		/* A running session stays: this refused a second start of its id. */
		if (s && !s->running) {
			sd_metrics_start(s->kind, "failed", -1);
			answer_waiters(s, 422,
				       json_pack("{s:s,s:s}", "error", "start_failed", "message",
						 rep.message));
			forget(s);
		}
		break;
	case PT_SESS_ENDED:
		if (rep.id >= PT_SESS_SPARE_BASE) {
			pt_log_info("spare VM %lld of pool %s ended: %s", (long long)rep.id,
				    rep.pool, rep.message);
			if (s)
				forget(s);
			break;
		}
		pt_log_info("session %lld of %s ended: %s", (long long)rep.id, rep.user,
			    rep.message);
		if (s) {
			if (!s->running)
				sd_metrics_start(s->kind, "failed", -1);
			answer_waiters(s, 422,
				       json_pack("{s:s,s:s}", "error", "start_failed", "message",
						 rep.message));
			forget(s);
		}
		call("POST", "/api/v1/hosts/events",
		     json_pack("{s:s,s:I,s:s,s:s}", "name", N.conf->sessiond.name, "session_id",
			       (json_int_t)rep.id, "event", "ended", "reason", rep.message),
		     event_done);
		break;
	case PT_SESS_ADOPTED:
		if (N.adopted)
			pt_fatalx("the root side reported its adoptions twice");
		N.adopted = 1;
		for (s = N.sessions; s; s = s->next)
			runs += s->running && !s->spare;
		pt_log_info("the root side has reported what runs here (%d session%s): "
			    "telling the broker",
			    runs, runs == 1 ? "" : "s");
		publish();
		heartbeat(NULL); /* at once: the broker need not wait a beat */
		break;
	default:
		pt_fatalx("the root side sent operation %u", rep.op);
	}
	explicit_bzero(&rep, sizeof(rep));
}

static void on_ipc(uv_poll_t *p, int status, int events)
{
	if (status == 0 && (events & UV_WRITABLE))
		flush_req();
	if (status < 0 || (events & UV_READABLE))
		read_rep();
	/* The list the next register or heartbeat sends, kept current: a
	 * call made later takes it as it is then. */
	if (N.snap_dirty)
		publish();
}

/* --- the API the broker calls ------------------------------------------------- */

static int text_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n >= max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int enum_of(const char *v, const char *const names[], int n)
{
	for (int i = 0; v && i < n; i++)
		if (!strcmp(v, names[i]))
			return i;
	return -1;
}

/* A start's body, which may hold a password: jansson frees its copy
 * unwiped. */
static void drop_body(json_t *in)
{
	const char *v = jstr(in, "password");

	if (v)
		explicit_bzero((char *)v, strlen(v));
	json_decref(in);
}

static void start_queue(struct pt_http_req *req, const struct pt_ipc_sess_req *r);

static void start_request(struct pt_http_req *req)
{
	static const char *const kinds[] = { "desktop", "app" };
	static const char *const drivers[] = { "xvnc", "qemu", "static" };
	json_error_t e;
	json_t *in = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &e), *pool;
	struct pt_ipc_sess_req r;
	json_t *jid;
	const char *user, *geometry, *command, *image, *password;
	int bad_password = 0;
	unsigned gw, gh;
	char end;

	if (!json_is_object(in)) {
		pt_http_error(req, 400, "bad_json", "the body must be a JSON object%s%s",
			      in ? "" : ": ", in ? "" : e.text);
		drop_body(in);
		return;
	}
	memset(&r, 0, sizeof(r));
	r.type = PT_IPC_SESS_REQ;
	r.op = PT_SESS_START;
	/* sso: the user's password, for the guest of a VM only (set there
	 * through its agent); jansson's copy is wiped with the body. */
	password = jstr(in, "password");
	bad_password = password && (!*password || strlen(password) >= sizeof(r.password));
	jid = json_object_get(in, "id");
	user = jstr(in, "user");
	pool = json_object_get(in, "pool");
	geometry = jstr(in, "geometry");
	/* Ids from PT_SESS_SPARE_BASE up are this host's spare VMs: the root
	 * side refuses a start there as a malformed message and ends the pair. */
	if (!json_is_integer(jid) || json_integer_value(jid) <= 0 ||
	    json_integer_value(jid) >= PT_SESS_SPARE_BASE || !text_ok(user, sizeof(r.user)) || strchr(user, '/') || !json_is_object(pool) ||
	    !text_ok(jstr(pool, "name"), sizeof(r.pool))) {
		pt_http_error(req, 400, "bad_request",
			      "id (a positive integer below 2^50), user and pool (an object "
			      "with a name) are required");
		drop_body(in);
		return;
	}
	r.id = json_integer_value(jid);
	snprintf(r.user, sizeof(r.user), "%s", user);
	snprintf(r.pool, sizeof(r.pool), "%s", jstr(pool, "name"));
	r.kind = enum_of(jstr(pool, "kind"), kinds, 2);
	r.driver = enum_of(jstr(pool, "driver"), drivers, 3);
	r.persistent = !strcmp(jstr(pool, "policy") ? jstr(pool, "policy") : "", "persistent");
	r.spare = (int32_t)json_integer_value(json_object_get(pool, "min_spare"));
	r.max_vms = (int32_t)json_integer_value(json_object_get(pool, "max_vms"));
	command = jstr(pool, "command");
	image = jstr(pool, "image");
	if (!geometry)
		geometry = jstr(pool, "geometry");
	if (r.kind < 0 || r.driver < 0) {
		pt_http_error(req, 400, "bad_request", "pool kind or driver unknown");
		drop_body(in);
		return;
	}
	if ((command && !text_ok(command, sizeof(r.command))) ||
	    (image && !text_ok(image, sizeof(r.image)))) {
		pt_http_error(req, 400, "bad_request", "pool command or image too long");
		drop_body(in);
		return;
	}
	if (geometry && (sscanf(geometry, "%4ux%4u%c", &gw, &gh, &end) != 2 || gw < 200 ||
			 gh < 200 || gw > 8192 || gh > 8192)) {
		pt_http_error(req, 400, "bad_geometry",
			      "geometry must be WIDTHxHEIGHT, each from 200 to 8192");
		drop_body(in);
		return;
	}
	if (r.kind == 1 && !command) {
		pt_http_error(req, 400, "bad_request", "an app pool needs a command");
		drop_body(in);
		return;
	}
	if (r.driver == PT_DRIVER_QEMU && vm_keys(pool, &r)) {
		pt_http_error(req, 400, "bad_request",
			      "pool protocol (vnc, rdp or console), guest_port (0 to 65535) or "
			      "boot_timeout (10s to 1h) malformed");
		drop_body(in);
		return;
	}
	if (bad_password || (password && r.driver != PT_DRIVER_QEMU)) {
		pt_http_error(req, 400, "bad_request",
			      "a password (1 to %zu bytes) is for a VM's guest only",
			      sizeof(r.password) - 1);
		drop_body(in);
		return;
	}
	snprintf(r.command, sizeof(r.command), "%s", command ? command : "");
	snprintf(r.image, sizeof(r.image), "%s", image ? image : "");
	if (geometry)
		snprintf(r.geometry, sizeof(r.geometry), "%ux%u", gw, gh);
	if (password)
		snprintf(r.password, sizeof(r.password), "%s", password);
	drop_body(in);
	start_queue(req, &r);
	explicit_bzero(r.password, sizeof(r.password));
}

/* A checked start: answered when it runs (or at once when it does). */
static void start_queue(struct pt_http_req *req, const struct pt_ipc_sess_req *r)
{
	struct nsess *s;
	struct waiter *w;

	s = find(r->id);
	/* A retried start gets the same answer; the same id for another user
	 * or pool gets nothing of the running session (its backend, secret). */
	if (s && (strcmp(s->user, r->user) || strcmp(s->pool, r->pool))) {
		pt_http_error(req, 409, "id_in_use",
			      "session %lld runs here for another user or pool", (long long)r->id);
		return;
	}
	if (s && s->running) {
		pt_http_json(req, 201, session_json(s, 1));
		return;
	}
	w = calloc(1, sizeof(*w));
	if (!w || (!s && !(s = calloc(1, sizeof(*s))))) {
		free(w);
		pt_http_error(req, 503, "busy", "out of memory");
		return;
	}
	w->req = req;
	if (!s->id) {
		/* The qemu driver's sessions are VMs whatever their pool's kind. */
		s->kind = r->driver == PT_DRIVER_QEMU ? SD_KIND_VM
			  : r->kind == PT_POOL_APP    ? SD_KIND_APP
						     : SD_KIND_DESKTOP;
		if (send_req_full(r)) {
			sd_metrics_start(s->kind, "busy", -1);
			free(w);
			free(s);
			host_busy(req);
			return;
		}
		s->id = r->id;
		s->since = uv_now(N.loop);
		s->limit = start_limit(r);
		snprintf(s->user, sizeof(s->user), "%s", r->user);
		snprintf(s->pool, sizeof(s->pool), "%s", r->pool);
		s->next = N.sessions;
		N.sessions = s;
		pt_log_info("starting session %lld of %s in pool %s", (long long)r->id, r->user,
			    r->pool);
		N.snap_dirty = 1; /* the next heartbeat says the start is here */
	}
	w->next = s->waiters;
	s->waiters = w;
}

static void stop_request(struct pt_http_req *req, int64_t id)
{
	json_t *in = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
	const char *reason = jstr(in, "reason");
	struct nsess *s = find(id);

	if (!s || !s->running) {
		pt_http_error(req, 404, "no_such_session", "session %lld does not run here",
			      (long long)id);
	} else if (send_req(PT_SESS_STOP, id, text_ok(reason, 64) ? reason : "stopped")) {
		host_busy(req);
	} else {
		pt_http_json(req, 200, json_object());
	}
	json_decref(in);
}

/* POST /sessions/ID/message {"text"}: an admin's notice, shown on the
 * session's display by its monitor (as the user: xmessage). */
static void notice_request(struct pt_http_req *req, int64_t id)
{
	json_t *in = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
	const char *text = jstr(in, "text");
	struct nsess *s = find(id);
	struct pt_ipc_sess_req r;

	if (!text || !sd_notice_ok(text) || strlen(text) >= sizeof(r.command)) {
		pt_http_error(req, 400, "bad_request",
			      "text: 1 to %d bytes, no control characters but line breaks",
			      SD_NOTICE_MAX);
	} else if (!s || !s->running || s->spare) {
		pt_http_error(req, 404, "no_such_session", "session %lld does not run here",
			      (long long)id);
	} else {
		memset(&r, 0, sizeof(r));
		r.type = PT_IPC_SESS_REQ;
		r.op = PT_SESS_NOTICE;
		r.id = id;
		snprintf(r.command, sizeof(r.command), "%s", text);
		if (send_req_full(&r))
			host_busy(req);
		else
			pt_http_json(req, 200, json_object());
	}
	json_decref(in);
}

static void not_allowed(struct pt_http_req *req, const char *allow)
{
	static const char body[] =
		"{\"error\":\"method_not_allowed\",\"message\":\"method not allowed\"}";

	pt_http_respond(req, 405, "application/json", body, sizeof(body) - 1, allow);
}

static int broker_secret_is(const char *tok)
{
	unsigned char h[SHA256_DIGEST_LENGTH];
	int ok;

	if (!tok || !N.have_broker_hash)
		return 0;
	ok = SHA256((const unsigned char *)tok, strlen(tok), h) &&
	     CRYPTO_memcmp(h, N.broker_hash, sizeof(h)) == 0;
	explicit_bzero(h, sizeof(h));
	return ok;
}

static int broker_cn_is(const char *cn)
{
	for (size_t i = 0; i < N.n_broker_names; i++)
		if (!strcmp(cn, N.broker_names[i]))
			return 1;
	return 0;
}

/* Only the broker may call: its certificate (CN = broker_name, OU broker as
 * portico-admin pki issues it), or [broker] broker_secret.
 * Nothing else opens this API, whatever other Portico credential it is. */
static int from_broker(struct pt_http_req *req)
{
	const char *ou = req->peer_ou;

	if (req->peer_verified) {
		if (broker_cn_is(req->peer_cn) && !strcmp(ou, "broker"))
			return 1;
		pt_log_warnx("%s presented the certificate of %s%s%s, not the broker's (%s): "
			     "refused",
			     req->peer, req->peer_cn, *ou ? ", a " : "", ou, N.broker_name);
		pt_http_error(req, 403, "forbidden", "only the broker (%s) may call a session host",
			      N.broker_name);
		return 0;
	}
	if (broker_secret_is(pt_http_bearer(req)))
		return 1;
	pt_http_error(req, 401, "unauthenticated",
		      "the broker presents its certificate from [tls] ca or [broker] "
		      "broker_secret");
	return 0;
}

static void handle(struct pt_http_req *req, void *data)
{
	const char *p = req->path;

	if (!from_broker(req))
		return;
	pt_http_authenticated(req); /* no longer counted against its source */
	if (!strcmp(p, "/api/v1/sessions")) {
		if (req->method == HTTP_POST)
			start_request(req);
		else if (req->method == HTTP_GET)
			pt_http_json(req, 200,
				     json_pack("{s:o,s:o}", "sessions", sessions_json(0), "spares",
					       spares_json()));
		else
			not_allowed(req, "Allow: GET, POST\r\n");
		return;
	}
	if (!strncmp(p, "/api/v1/sessions/", 17)) {
		const char *id = p + 17;
		size_t n = strspn(id, "0123456789");
		if (n && n <= 18 && !strcmp(id + n, "/message") && atoll(id) > 0) {
			if (req->method != HTTP_POST)
				not_allowed(req, "Allow: POST\r\n");
			else
				notice_request(req, atoll(id));
			return;
		}
		if (!*id || strlen(id) > 18 || strspn(id, "0123456789") != strlen(id) ||
		    atoll(id) <= 0) {
			pt_http_error(req, 400, "bad_id", "'%.32s' is not a session id", id);
			return;
		}
		if (req->method != HTTP_DELETE) {
			not_allowed(req, "Allow: DELETE\r\n");
			return;
		}
		stop_request(req, atoll(id));
		return;
	}
	pt_http_error(req, 404, "not_found", "no such API path: %.200s", p);
}

void sd_net_count(int n[SD_KIND_N][SD_STATE_N])
{
	for (const struct nsess *s = N.sessions; s; s = s->next)
		n[s->kind >= 0 && s->kind < SD_KIND_N ? s->kind : SD_KIND_UNKNOWN]
		 [s->spare     ? SD_STATE_SPARE
		  : s->running ? SD_STATE_RUNNING
			       : SD_STATE_STARTING]++;
}

/* Starts the root side never answered (it always should). */
static void check_stuck(uv_timer_t *t)
{
	uint64_t now = uv_now(N.loop);

	for (struct nsess *s = N.sessions, *next; s; s = next) {
		next = s->next;
		if (!s->running && s->waiters && now - s->since > s->limit) {
			sd_metrics_start(s->kind, "timeout", -1);
			answer_waiters(s, 504,
				       json_pack("{s:s,s:s}", "error", "timeout", "message",
						 "the session did not start in time"));
			send_req(PT_SESS_STOP, s->id, "start timed out");
			forget(s);
		}
	}
}

static void on_term(uv_signal_t *h, int sig)
{
	uv_stop(h->loop);
}

/*
 * After the loop: nothing may be freed that a call to the broker on the
 * thread pool still reads (N.api, the configuration, libcurl's and
 * OpenSSL's state, which exit() tears down).  Calls not started yet are
 * cancelled (an "ended" event among them is what the next heartbeat
 * tells the broker anyway); running ones end within N.api.timeout_ms,
 * and the loop runs until they have.  Requests still waiting for a start
 * are answered, every handle is closed, and what this side holds freed.
 */
static void net_stop(void)
{
	int running = 0;

	N.stopping = 1;
	sd_metrics_close();
	for (struct nsess *s = N.sessions; s; s = s->next)
		answer_waiters(s, 503,
			       json_pack("{s:s,s:s}", "error", "stopping", "message",
					 "sessiond is stopping; the session may still start"));
	pt_httpd_close(N.http);
	N.http = NULL;
	uv_close((uv_handle_t *)&N.ipc, NULL);
	uv_close((uv_handle_t *)&N.beat, NULL);
	uv_close((uv_handle_t *)&N.stuck, NULL);
	uv_close((uv_handle_t *)&N.sigterm, NULL);
	uv_close((uv_handle_t *)&N.sigint, NULL);
	for (struct call *c = N.calls; c; c = c->next)
		if (uv_cancel((uv_req_t *)&c->work) != 0)
			running++;
	if (running)
		pt_log_info("waiting for %d call%s to the broker to end", running,
			    running == 1 ? "" : "s");
	/* Until every handle has closed and every job has come back. */
	uv_run(N.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(N.loop) != 0)
		pt_log_warnx("the network side's loop still holds handles at exit");
	while (N.sessions)
		forget(N.sessions);
	if (N.out.len)
		pt_log_warnx("%zu requests never reached the root side", N.out.len);
	pt_ipc_queue_clear(&N.out);
	json_decref(N.pools);
	N.pools = NULL;
	if (N.snap)
		explicit_bzero(N.snap, strlen(N.snap));
	free(N.snap);
	N.snap = NULL;
	if (N.api.key_pem)
		explicit_bzero(N.api.key_pem, N.api.key_len);
	free(N.api.key_pem);
	free(N.api.cert_pem);
	N.api.key_pem = N.api.cert_pem = NULL;
}

int sd_net_load_identity(const struct pt_conf *conf)
{
	struct pt_tls_conf tls;
	const char *bs = conf->broker.broker_secret;

	/* Kept as its hash only: the plain secret would let this host's
	 * network side, if broken into, call every other host as the broker
	 * (they share broker_secret). */
	if (bs && SHA256((const unsigned char *)bs, strlen(bs), N.broker_hash))
		N.have_broker_hash = 1;

	pt_conf_tls_of(conf, PT_NODE_SESSIOND, &tls);
	pt_api_conf_tls(&N.api, &tls);
	return pt_api_conf_load_identity(&N.api);
}

/* The host of an https:// URL (the configuration checked its form):
 * "broker.example.org", "127.0.0.1", "::1" (without brackets). */
/* [sessiond] broker_name, or else the host of each URL of [sessiond]
 * broker: with several brokers each may present its own certificate, and
 * every one of them is trusted with this host's credential already. */
static void broker_names_init(const struct pt_sessiond_conf *sc)
{
	struct pt_urls u;
	char err[300];
	size_t i, o = 0;

	N.n_broker_names = 0;
	if (sc->broker_name) {
		snprintf(N.broker_names[0], sizeof(N.broker_names[0]), "%s", sc->broker_name);
		N.n_broker_names = 1;
	} else if (pt_urls_parse(sc->broker, &u, err, sizeof(err)) == 0) {
		for (i = 0; i < u.n; i++) {
			if (broker_cn_is(u.v[i].host))
				continue;
			memcpy(N.broker_names[N.n_broker_names++], u.v[i].host,
			       sizeof(N.broker_names[0]));
		}
	}
	N.broker_name[0] = '\0';
	for (i = 0; i < N.n_broker_names && o < sizeof(N.broker_name); i++)
		o += (size_t)snprintf(N.broker_name + o, sizeof(N.broker_name) - o, "%s%s",
				      i ? " or " : "", N.broker_names[i]);
}

int sd_net_run(const struct pt_conf *conf, int ipc_fd, void *server_ctx)
{
	const struct pt_sessiond_conf *sc = &conf->sessiond;
	struct pt_httpd_limits lim = {
		.handshake_ms = 10000,
		.request_ms = 10000,
		.keepalive_ms = 60000,
		.max_conns = (int)sc->max_connections,
		.max_conns_per_source = (int)sc->max_connections_per_source,
	};
	char err[512];

	N.conf = conf;
	N.loop = uv_default_loop();
	N.fd = ipc_fd;
	if (sc->address)
		snprintf(N.address, sizeof(N.address), "%s", sc->address);
	else
		snprintf(N.address, sizeof(N.address), "https://%s", sc->listen);
	broker_names_init(sc);
	N.api.base = sc->broker;
	N.api.bearer = conf->broker.host_secret;
	N.api.timeout_ms = 10000;
	N.api.log_failover = 1;
	N.next_spare = PT_SESS_SPARE_BASE + 1;
	N.pools = json_array();
	if (pt_api_global_init())
		pt_fatalx("cannot initialise libcurl");
	fcntl(ipc_fd, F_SETFL, O_NONBLOCK);
	pt_ipc_queue_init(&N.out, ROOT_QUEUE_MAX);
	uv_poll_init(N.loop, &N.ipc, ipc_fd);
	watch_ipc();
	N.http = pt_httpd_listen(N.loop, server_ctx, sc->listen, &lim, handle, NULL);
	if (!N.http)
		pt_fatalx("cannot listen on %s", sc->listen);
	if (sd_metrics_init(conf, N.loop, err, sizeof(err)))
		pt_fatalx("[sessiond] metrics_listen: %s", err);
	uv_timer_init(N.loop, &N.beat);
	/* The first register is sent as the root side reports what it
	 * adopted (PT_SESS_ADOPTED, read_rep), however long that takes; the
	 * beats after it, and the retries of a register that failed, on the
	 * timer (which does nothing before that report). */
	uv_timer_start(&N.beat, heartbeat, (uint64_t)sc->heartbeat_ms,
		       (uint64_t)sc->heartbeat_ms);
	uv_timer_init(N.loop, &N.stuck);
	uv_timer_start(&N.stuck, check_stuck, 5000, 5000);
	uv_signal_init(N.loop, &N.sigterm);
	uv_signal_start(&N.sigterm, on_term, SIGTERM);
	uv_signal_init(N.loop, &N.sigint);
	uv_signal_start(&N.sigint, on_term, SIGINT);
	pt_log_info("listening on %s as host %s; broker %s", sc->listen, sc->name, sc->broker);
	uv_run(N.loop, UV_RUN_DEFAULT);
	net_stop();
	return 0;
}

/* --- for tests and fuzzing only (session.h) ------------------------------------ */

int sd_net_test_init(const struct pt_conf *conf, uv_loop_t *loop, int ipc_fd)
{
	const char *bs = conf->broker.broker_secret;

	free(N.snap);
	memset(&N, 0, sizeof(N));
	pthread_mutex_init(&N.snap_lock, NULL);
	N.conf = conf;
	N.loop = loop;
	N.fd = ipc_fd;
	snprintf(N.broker_names[0], sizeof(N.broker_names[0]), "broker");
	N.n_broker_names = 1;
	snprintf(N.broker_name, sizeof(N.broker_name), "broker");
	if (bs && SHA256((const unsigned char *)bs, strlen(bs), N.broker_hash))
		N.have_broker_hash = 1;
	N.next_spare = PT_SESS_SPARE_BASE + 1;
	N.pools = json_array();
	pt_ipc_queue_init(&N.out, ROOT_QUEUE_MAX);
	if (fcntl(ipc_fd, F_SETFL, O_NONBLOCK) == -1)
		return -errno;
	return uv_poll_init(loop, &N.ipc, ipc_fd);
}

void sd_net_test_request(struct pt_http_req *req)
{
	handle(req, NULL);
}

void sd_net_test_answer(void)
{
	read_rep();
}

int sd_net_test_check(void)
{
	for (struct nsess *s = N.sessions; s; s = s->next) {
		if (s->id <= 0)
			return -1;
		for (struct nsess *o = s->next; o; o = o->next)
			if (o->id == s->id)
				return -1;
	}
	return 0;
}

size_t sd_net_test_reset(void)
{
	size_t n = 0;

	for (struct nsess *s = N.sessions; s; s = s->next)
		answer_waiters(s, 503, json_object());
	while (N.sessions) {
		forget(N.sessions);
		n++;
	}
	pt_ipc_queue_clear(&N.out);
	N.busy = 0;
	json_decref(N.pools);
	N.pools = json_array();
	return n;
}
