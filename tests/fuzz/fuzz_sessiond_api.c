/*
 * fuzz_sessiond_api - libFuzzer target for portico-sessiond's HTTPS API
 * (session/net.c): each JSON body and path the broker may send (POST
 * /api/v1/sessions: a start; GET: the list; DELETE /api/v1/sessions/ID:
 * a stop; POST /api/v1/sessions/ID/message: a notice; anything else),
 * through the real handler.
 *
 *   make fuzz      builds $(BUILD)-fuzz/fuzz/fuzz_sessiond_api
 *   build-fuzz/fuzz/fuzz_sessiond_api -runs=10000000 WORK tests/fuzz/corpus/fuzz_sessiond_api
 *
 * An input is up to 8 requests separated by lines "%%", each "METHOD
 * PATH\n" and then its body; a first line that starts with '!' carries no
 * credential.  The request goes to the network side's
 * handler in-process (sd_net_test_request: no listener, no TLS, no loop);
 * the root side is this target, at the other end of a socketpair: it reads
 * each request the network side passed on with pt_ipc_recv and
 * sd_check_msg as the real root side does (one that fails them would be a
 * protocol violation, which ends the network side: abort), answers a start
 * by the root side's own checks (sd_check_req: refused with its reason, or
 * STARTED with a made-up backend; nothing is spawned) and a stop with
 * ENDED, and hands the answer back to the network side.  Then no session
 * may be known twice, and resetting must find and free everything (every
 * request answered exactly once shows as ASan's double free or LSan's
 * leak otherwise).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <http_parser.h>

#include "portico/httpd.h"
#include "portico/ipc.h"
#include "portico/log.h"
#include "session.h"

#define SECRET "broker-secret-0123456789abcdef"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__asan_default_options(void);

/* Every input makes and frees blocks (jansson's, the requests'): ASan's
 * default 256 MiB quarantine puts each on fresh pages, a page fault each;
 * 16 MiB still keeps a freed block for thousands of inputs. */
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=16";
}

static struct pt_conf *conf;
static uv_loop_t loop;
static int root_fd = -1;

static void setup(void)
{
	int sv[2];

	pt_log_init("fuzz", PT_LOG_ERR, 0);
	conf = pt_conf_defaults();
	if (!conf || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv) == -1 ||
	    uv_loop_init(&loop) != 0)
		abort();
	free(conf->broker.broker_secret);
	conf->broker.broker_secret = strdup(SECRET);
	free(conf->sessiond.name);
	conf->sessiond.name = strdup("fuzzhost");
	if (sd_net_test_init(conf, &loop, sv[0]) != 0)
		abort();
	root_fd = sv[1];
}

static int method_of(const char *m)
{
	for (int i = 0; i <= 40; i++) {
		const char *name = http_method_str((enum http_method)i);
		if (name && strcmp(name, "<unknown>") && !strcmp(name, m))
			return i;
	}
	return HTTP_PUT;
}

/* The root side: every request the network side passed on. */
static void play_root(void)
{
	struct pt_ipc_sess_req req;
	struct pt_ipc_sess_rep rep;
	struct sd_checked *ck = malloc(sizeof(*ck));
	const char *why;
	char reason[256];
	ssize_t n;

	if (!ck)
		abort();
	while ((n = pt_ipc_recv(root_fd, &req, sizeof(req), PT_IPC_SESS_REQ)) != -EAGAIN) {
		if (n != (ssize_t)sizeof(req) || sd_check_msg(&req, &why) != 0) {
			fprintf(stderr, "the network side sent what the root side refuses: %s\n",
				n < 0 ? pt_ipc_error() : why);
			abort();
		}
		if (req.op == PT_SESS_NOTICE)
			continue; /* shown by the session's monitor: no answer */
		memset(&rep, 0, sizeof(rep));
		rep.type = PT_IPC_SESS_REP;
		rep.id = req.id;
		snprintf(rep.user, sizeof(rep.user), "%s", req.user);
		snprintf(rep.pool, sizeof(rep.pool), "%s", req.pool);
		if (req.op == PT_SESS_STOP) {
			rep.op = PT_SESS_ENDED;
			sd_printable(rep.message, sizeof(rep.message), req.reason);
		} else if (sd_check_req(conf, &req, ck, reason, sizeof(reason)) != 0) {
			rep.op = PT_SESS_FAILED;
			snprintf(rep.message, sizeof(rep.message), "%s", reason);
		} else {
			rep.op = PT_SESS_STARTED;
			snprintf(rep.backend, sizeof(rep.backend), "unix:/nonexistent/%lld",
				 (long long)req.id);
			snprintf(rep.secret, sizeof(rep.secret), "fuzzfuzz");
		}
		if (pt_ipc_send(root_fd, &rep, sizeof(rep)) != 0)
			abort();
		sd_net_test_answer();
	}
	free(ck);
}

/* One request: "METHOD PATH\n" and its body. */
static void one_request(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	struct pt_http_req *req;
	char line[PT_HTTP_PATH_MAX + 16], method[16] = "";
	size_t ll = nl ? (size_t)(nl - data) : size, blen = nl ? size - ll - 1 : 0;
	char *sp, *p = line;
	int auth = 1;

	if (ll >= sizeof(line) || blen > PT_HTTP_BODY_MAX)
		return;
	memcpy(line, data, ll);
	line[ll] = '\0';
	if (memchr(line, '\0', ll))
		return; /* the HTTP reader never passes a NUL in a path */
	if (*p == '!') {
		auth = 0;
		p++;
	}
	sp = strchr(p, ' ');
	if (!sp || (size_t)(sp - p) >= sizeof(method))
		return;
	memcpy(method, p, (size_t)(sp - p));
	if (strlen(sp + 1) >= PT_HTTP_PATH_MAX)
		return;

	req = calloc(1, sizeof(*req));
	if (!req)
		abort();
	req->method = method_of(method);
	snprintf(req->path, sizeof(req->path), "%s", sp + 1);
	if (auth)
		snprintf(req->authorization, sizeof(req->authorization), "Bearer %s", SECRET);
	snprintf(req->peer, sizeof(req->peer), "192.0.2.1");
	req->body = malloc(blen + 1);
	if (!req->body)
		abort();
	memcpy(req->body, nl ? nl + 1 : data, blen);
	req->body[blen] = '\0';
	req->body_len = blen;

	sd_net_test_request(req); /* answered (and freed) now or once the root side answers */
	play_root();
	if (sd_net_test_check() != 0) {
		fprintf(stderr, "a session is known twice or with a bad id\n");
		abort();
	}
}

/* Up to 8 requests in one input, separated by a line "%%": a start, then
 * its stop; a start retried, or asked for another user. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char sep[] = "\n%%\n";
	const uint8_t *end = data + size;

	if (!conf)
		setup();
	for (int i = 0; i < 8 && data <= end; i++) {
		const uint8_t *next = memmem(data, (size_t)(end - data), sep, sizeof(sep) - 1);
		one_request(data, (size_t)((next ? next : end) - data));
		if (!next)
			break;
		data = next + sizeof(sep) - 1;
	}
	sd_net_test_reset();
	return 0;
}
