/*
 * fuzz_broker_api - libFuzzer target for every JSON body (and query) the
 * broker's API takes, through the real route table, role check, body
 * parsing and handlers (broker/api*.c, login.c, launch.c, hosts.c), on a
 * real SQLite store in memory.
 *
 *   make fuzz      builds $(BUILD)-fuzz/fuzz/fuzz_broker_api
 *   build-fuzz/fuzz/fuzz_broker_api -runs=10000000 WORK tests/fuzz/corpus/fuzz_broker_api
 *
 * An input is up to 6 requests separated by a byte 0xff (never in UTF-8).
 * A request's first byte picks the route (a row of brk_api_routes(), by
 * its value modulo their number), its second the credential (none, a
 * user's token, an admin's, the gateway, host or broker secret, a
 * gateway's or a host's certificate, the token of this input's last login,
 * a token nobody has), its third the path parameter (a pool, a host, a
 * session id, nonsense); the rest is the body, or the query string of a
 * route that takes no body.  "@T", "@S" and "@K" in the rest stand for
 * this input's last ticket, session id and login token, so that a redeem
 * may redeem what a launch minted.
 *
 * Each request goes through brk_api_serve_inline() (api.h): the handler
 * that HTTP would run, with the thread pool's jobs run inline and the
 * answer handed here.  PAM is the one thing stubbed: this target is the
 * root process at the other end of the socketpair (as authd.c is), reading
 * each PT_IPC_AUTH_REQ the network side sends and answering yes for
 * root/root-pw and nobody/nobody-pw, no otherwise, over real IPC and the
 * real uv_poll.  No session host is called: the broker here has no host
 * queue, so a start is refused as in a stopping broker (and a stop is left
 * to the heartbeat).  The store is put back to one snapshot before each
 * input that follows one that wrote to it (broker_reset()), and the login
 * throttle made anew: an input always meets the same broker.
 *
 * Beyond "no crash, no leak": every request is answered exactly once; with
 * a status of the API's (never 500: this store cannot fail); a JSON body
 * that parses to an object; an error with its "error" and "message"
 * strings, the message one printable line; and no answer to anyone but a
 * gateway carries a backend's "secret", "credentials", a password or one
 * of the broker's secrets.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <http_parser.h>
#include <jansson.h>

#include "api.h"
#include "portico/ipc.h"
#include "portico/log.h"
#include "portico/ticket.h"

#define GW_SECRET     "gw-secret-0123456789abcdef"
#define HOST_SECRET   "host-secret-0123456789abcdef"
#define BROKER_SECRET "broker-secret-0123456789abcdef"
/* Tokens of the store's snapshot (43 characters of base64url). */
#define USER_TOKEN    "nobodynobodynobodynobodynobodynobodynobody0"
#define ADMIN_TOKEN   "rootrootrootrootrootrootrootrootrootrootroo"
#define UNKNOWN_TOKEN "unknownunknownunknownunknownunknownunknown0"
#define REQS_MAX      6

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);

/* Each input makes and frees hundreds of blocks (SQLite's, jansson's, the
 * calls'): ASan's default 256 MiB quarantine made every one land on fresh
 * pages, a page fault each, and this target 4 times slower.  16 MiB still
 * holds a freed block for thousands of inputs' worth of allocations. */
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=16";
}

static const char conf_text[] =
	"[broker]\n"
	"store = sqlite::memory:\n"
	"gateway_secret = " GW_SECRET "\n"
	"host_secret = " HOST_SECRET "\n"
	"broker_secret = " BROKER_SECRET "\n"
	"gateways = gw1\n"
	"admin_group = root\n"
	"fail_delay = 0\n"
	"login_attempts = 5\n"
	"[gateway]\n"
	"public_host = gateway.test\n"
	"[pool office]\n"
	"driver = static\n"
	"hosts = 127.0.0.1:5901, 127.0.0.1:5902\n"
	"users = nobody, root\n"
	"max_sessions_per_host = 2\n"
	"[pool apps]\n"
	"kind = app\n"
	"protocol = rdp\n"
	"driver = static\n"
	"command = /usr/bin/xterm\n"
	"hosts = 127.0.0.1:5901\n"
	"users = root\n"
	"sso = yes\n"
	"[pool vms]\n"
	"driver = xvnc\n"
	"hosts = h1\n"
	"groups = nogroup, root\n";

/* The path parameter, by the third byte. */
static const char *const params[] = {
	"office", "apps", "vms", "h1", "127.0.0.1:5901", "@S", "1", "0", "abc", "nosuch",
	"99999999999999999999", "-1", "h2", "x%2fy",
};

static struct brk B;
static int authd_fd = -1;
/* The store as setup() left it (base), and as each input starts (live:
 * base with h1 seen at live_ms). */
static void *base, *live;
static size_t base_len, live_len;
static int64_t live_ms;

/* This input's memory of what the broker answered. */
static struct {
	int n; /* answers to the request in hand */
	int status;
	char ctype[64];
	char *body;
	size_t len;
	char ticket[PT_TICKET_LEN + 1], token[PT_TICKET_LEN + 1], sid[24];
} ans;

static void on_answer(void *arg, int status, const char *ctype, const char *body, size_t len)
{
	(void)arg;
	if (ans.n++)
		abort(); /* answered twice */
	ans.status = status;
	snprintf(ans.ctype, sizeof(ans.ctype), "%s", ctype ? ctype : "");
	ans.body = malloc(len + 1);
	if (!ans.body)
		abort();
	memcpy(ans.body, body, len);
	ans.body[len] = '\0';
	ans.len = len;
}

static void put_token(const char *token, const char *user, int admin)
{
	char hash[PT_TICKET_HASH_LEN + 1];
	struct brk_token t = { .admin = admin, .expires_ms = brk_now_ms() + 86400000LL * 365 };

	if (!pt_ticket_valid(token))
		abort();
	snprintf(t.user, sizeof(t.user), "%s", user);
	pt_ticket_hash(token, hash);
	if (brk_store_token_put(B.store, hash, &t))
		abort();
}

static void setup(void)
{
	char err[512];
	int sv[2];

	pt_log_init("fuzz", PT_LOG_ERR, 0);
	B.conf = pt_conf_load_buf("fuzz.conf", conf_text, sizeof(conf_text) - 1, err, sizeof(err));
	if (!B.conf) {
		fprintf(stderr, "fuzz.conf: %s\n", err);
		abort();
	}
	B.loop = uv_default_loop();
	B.store = brk_store_open(B.conf->broker.store, err, sizeof(err));
	if (!B.store || brk_load_pools(&B))
		abort();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	authd_fd = sv[1];
	B.auth = brk_auth_new(B.loop, sv[0], 64, 64);
	if (!B.auth)
		abort();
	B.answer_cb = on_answer;
	put_token(USER_TOKEN, "nobody", 0);
	put_token(ADMIN_TOKEN, "root", 1);
	if (brk_store_snapshot(B.store, &base, &base_len))
		abort();
}

/*
 * The broker each input meets: the store's base, with h1 seen within the
 * last 30 s (a session host is alive for 60 s after its last word), and a
 * login throttle that has seen nobody.  The store is made anew every 30 s;
 * between, put back only when it was written to (brk_store_is): a restore
 * makes SQLite parse the schema again, which cost more than a whole input
 * that only reads.  Run at the end of each input (and at its start, where
 * it is a no-op but every 30 s), so that what an input allocates is freed
 * by the time it ends, schema and all: libFuzzer runs an input again, to
 * look for leaks, whenever it allocated more than it freed.
 */
static void broker_reset(void)
{
	int64_t now = brk_now_ms();
	int restored = 0;
	struct brk_token t;

	if (!live || now - live_ms > 30000) {
		free(live);
		live = NULL;
		if (brk_store_restore(B.store, base, base_len) ||
		    brk_store_host_register(B.store, "h1", "https://127.0.0.1:9", now) ||
		    brk_store_snapshot(B.store, &live, &live_len) ||
		    brk_store_restore(B.store, live, live_len)) /* now SQLite's memdb */
			abort();
		live_ms = now;
		restored = 1;
	} else if (!brk_store_is(B.store, live, live_len)) {
		if (brk_store_restore(B.store, live, live_len))
			abort();
		restored = 1;
	}
	/* SQLite reads the schema again now rather than in the next input
	 * (a read changes no byte: the check below still holds). */
	if (restored && brk_store_token_get(B.store, "0", now, &t) != -ENOENT)
		abort();
	if (!brk_store_is(B.store, live, live_len))
		abort(); /* the check above cannot be trusted */
	brk_throttle_free(B.throttle);
	B.throttle = brk_throttle_new(64, (int)B.conf->broker.login_attempts,
				      B.conf->broker.login_window_ms);
	if (!B.throttle)
		abort();
}

/* The PAM process: answer what the network side asked, if it asked. */
static void pam_answer(void)
{
	struct pt_ipc_auth_req rq;
	struct pt_ipc_auth_rep rp = { .type = PT_IPC_AUTH_REP };
	ssize_t n = pt_ipc_recv(authd_fd, &rq, sizeof(rq), PT_IPC_AUTH_REQ);

	if (n == -EAGAIN)
		return;
	if (n != (ssize_t)sizeof(rq) || strcmp(rq.service, "portico"))
		abort(); /* authd.c would end the broker: a protocol violation */
	rp.id = rq.id;
	rp.result = ((!strcmp(rq.user, "root") && !strcmp(rq.password, "root-pw")) ||
		     (!strcmp(rq.user, "nobody") && !strcmp(rq.password, "nobody-pw")))
			    ? PT_AUTH_OK
			    : PT_AUTH_DENIED;
	snprintf(rp.user, sizeof(rp.user), "%s", rq.user);
	explicit_bzero(&rq, sizeof(rq));
	if (pt_ipc_send(authd_fd, &rp, sizeof(rp)))
		abort();
	for (int i = 0; i < 100 && !ans.n; i++)
		uv_run(B.loop, UV_RUN_NOWAIT);
}

/* "@T", "@S", "@K" replaced; into out (NUL-terminated), its length. */
static size_t expand(const uint8_t *p, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		const char *v = NULL;
		if (p[i] == '@' && i + 1 < n)
			v = p[i + 1] == 'T' ? ans.ticket
			    : p[i + 1] == 'S' ? ans.sid
			    : p[i + 1] == 'K' ? ans.token
					      : NULL;
		if (v) {
			size_t l = strlen(v);
			if (o + l + 1 >= cap)
				break;
			memcpy(out + o, v, l);
			o += l;
			i++;
			continue;
		}
		out[o++] = (char)p[i];
	}
	out[o] = '\0';
	return o;
}

static void credential(struct pt_http_req *req, int which)
{
	const char *bearer = NULL;

	switch (which) {
	case 1: bearer = USER_TOKEN; break;
	case 2: bearer = ADMIN_TOKEN; break;
	case 3: bearer = GW_SECRET; break;
	case 4: bearer = HOST_SECRET; break;
	case 5: bearer = BROKER_SECRET; break;
	case 6:
		req->peer_verified = 1;
		snprintf(req->peer_cn, sizeof(req->peer_cn), "gw1");
		snprintf(req->peer_ou, sizeof(req->peer_ou), "gateway");
		break;
	case 7:
		req->peer_verified = 1;
		snprintf(req->peer_cn, sizeof(req->peer_cn), "h1");
		snprintf(req->peer_ou, sizeof(req->peer_ou), "host");
		break;
	case 8: bearer = ans.token[0] ? ans.token : NULL; break;
	case 9: bearer = UNKNOWN_TOKEN; break;
	}
	if (bearer)
		snprintf(req->authorization, sizeof(req->authorization), "Bearer %s", bearer);
}

/* A property broken: say which, with the answer, and stop. */
static _Noreturn void broken(const char *what)
{
	fprintf(stderr, "fuzz_broker_api: %s: HTTP %d %s: %s\n", what, ans.status, ans.ctype,
		ans.body ? ans.body : "(none)");
	abort();
}

static int printable_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/* What this input's requests have sent so far (bodies or queries, one a
 * line, so that no two join into a secret): an error message may quote a
 * request back, and a later answer may list what an earlier one stored
 * (an admin may name a pool anything, a secret's text too). */
static char *sent;
static size_t sent_len;

static void remember_sent(const char *text, size_t n)
{
	char *p = realloc(sent, sent_len + n + 2);

	if (!p)
		abort();
	sent = p;
	/* All of it, as the broker reads it: a NUL in a body ends no JSON
	 * text, and jansson may quote what follows it; NUL is a line's end
	 * here, so that no two parts join into a secret either. */
	for (size_t i = 0; i < n; i++)
		sent[sent_len + i] = text[i] ? text[i] : '\n';
	sent_len += n;
	sent[sent_len++] = '\n';
	sent[sent_len] = '\0';
}

/* Whether s is in the answer but in none of this input's requests. */
static int leaked(const char *s, const char *req)
{
	return strstr(ans.body, s) && !strstr(req, s);
}

/* What every answer must be; and what to remember of it. */
static void check(int cred, const char *req)
{
	static const int statuses[] = { 200, 201, 400, 401, 403, 404, 405, 409, 429, 502, 503 };
	int gateway = cred == 3 || cred == 6, known = 0;
	json_t *doc, *v;

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		known |= ans.status == statuses[i];
	if (!known)
		broken("a status the API does not answer with");
	/* Nobody but a gateway learns a backend's secret or a password. */
	if (!gateway && (leaked("\"secret\"", req) || leaked("\"credentials\"", req) ||
			 leaked("root-pw", req) || leaked("nobody-pw", req)))
		broken("a secret or password to a caller that is no gateway");
	if (leaked(GW_SECRET, req) || leaked(HOST_SECRET, req) || leaked(BROKER_SECRET, req))
		broken("one of the broker's secrets in an answer");
	if (!strcmp(ans.ctype, "application/x-rdp")) {
		if (ans.status != 200 || strncmp(ans.body, "full address:s:", 15))
			broken("an .rdp file that is not one");
		return;
	}
	if (strcmp(ans.ctype, "application/json"))
		broken("neither JSON nor an .rdp file");
	doc = json_loadb(ans.body, ans.len, 0, NULL);
	if (!json_is_object(doc))
		broken("a body that is no JSON object");
	if (ans.status >= 400) {
		const char *code = json_string_value(json_object_get(doc, "error"));
		const char *msg = json_string_value(json_object_get(doc, "message"));
		if (!code || !*code || !msg || !*msg)
			broken("an error without its code and message");
		if (!printable_line(msg))
			broken("an error message that is not one printable line");
	} else {
		const char *s = json_string_value(json_object_get(doc, "ticket"));
		if (s && pt_ticket_valid(s))
			snprintf(ans.ticket, sizeof(ans.ticket), "%s", s);
		s = json_string_value(json_object_get(doc, "token"));
		if (s && pt_ticket_valid(s))
			snprintf(ans.token, sizeof(ans.token), "%s", s);
		v = json_object_get(json_object_get(doc, "session"), "id");
		if (!v)
			v = json_object_get(doc, "session_id");
		if (json_is_integer(v))
			snprintf(ans.sid, sizeof(ans.sid), "%lld", (long long)json_integer_value(v));
	}
	json_decref(doc);
}

static void one_request(const uint8_t *p, size_t n)
{
	size_t nroutes;
	const struct brk_route *routes = brk_api_routes(&nroutes), *r;
	struct pt_http_req *req;
	const char *colon, *slash, *param;
	char pbuf[64], req_query[PT_HTTP_PATH_MAX], *req_text;
	size_t req_len;
	int cred;

	if (n < 3)
		return;
	r = &routes[p[0] % nroutes];
	cred = p[1] % 10;
	param = params[p[2] % (sizeof(params) / sizeof(params[0]))];
	p += 3;
	n -= 3;
	req = calloc(1, sizeof(*req));
	if (!req)
		abort();
	req->method = r->method;
	snprintf(req->peer, sizeof(req->peer), "192.0.2.1");
	credential(req, cred);
	/* The path: the row's pattern with its parameter filled in. */
	expand((const uint8_t *)param, strlen(param), pbuf, sizeof(pbuf));
	colon = strchr(r->path, ':');
	if (colon) {
		slash = strchr(colon, '/');
		snprintf(req->path, sizeof(req->path), "/api/v1%.*s%s%s", (int)(colon - r->path),
			 r->path, pbuf, slash ? slash : "");
	} else {
		snprintf(req->path, sizeof(req->path), "/api/v1%s", r->path);
	}
	req->body = malloc(n * 3 + PT_TICKET_LEN * 2 + 1); /* room for every "@T" expanded */
	if (!req->body)
		abort();
	if (r->flags & (BRK_ROUTE_JSON | BRK_ROUTE_JSON_OPT)) {
		req->body_len = expand(p, n, req->body, n * 3 + PT_TICKET_LEN * 2 + 1);
	} else {
		/* No body: the rest is the query (admin/sessions?state=...). */
		expand(p, n, req->query, sizeof(req->query));
		req->body[0] = '\0';
	}
	/* The request is the broker's now (freed with its answer). */
	snprintf(req_query, sizeof(req_query), "%s", req->query);
	req_len = req->body_len;
	req_text = malloc(req_len + 1);
	if (!req_text)
		abort();
	memcpy(req_text, req->body, req_len);
	req_text[req_len] = '\0';
	ans.n = 0;
	brk_api_serve_inline(&B, req);
	pam_answer();
	if (ans.n != 1)
		abort(); /* not answered */
	if (r->flags & (BRK_ROUTE_JSON | BRK_ROUTE_JSON_OPT))
		remember_sent(req_text, req_len);
	else
		remember_sent(req_query, strlen(req_query));
	check(cred, sent);
	free(ans.body);
	ans.body = NULL;
	free(req_text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t start = 0;
	int reqs = 0;

	if (!B.store)
		setup();
	broker_reset();
	memset(ans.ticket, 0, sizeof(ans.ticket));
	memset(ans.token, 0, sizeof(ans.token));
	memset(ans.sid, 0, sizeof(ans.sid));
	for (size_t i = 0; i <= size && reqs < REQS_MAX; i++) {
		if (i == size || data[i] == 0xff) {
			one_request(data + start, i - start);
			reqs++;
			start = i + 1;
		}
	}
	if (B.calls != 0)
		abort(); /* a call not freed */
	free(sent);
	sent = NULL;
	sent_len = 0;
	broker_reset();
	return 0;
}
