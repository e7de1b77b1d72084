/*
 * rdp_login_proc.c - the gateway's side of the RDP login step: it starts a
 * login process per client that came without a ticket (rdp_login.c), hands
 * it the client and its parameters, watches it end, and answers its one
 * question by asking the broker itself, so that the process, which faces
 * an unauthenticated client, holds no credential.
 *
 * A login process is untrusted: its question is one size-checked message
 * on a SOCK_SEQPACKET pair (gateway.h), checked key by key; the client's
 * address in the call to the broker is the gateway's own record of it.  A
 * process that sends anything else, or a second question, or more than
 * GW_LOGIN_ASK_MAX bytes, is killed with a line in the log; the loop never
 * waits for one (its reads and its one write do not block).
 *
 * posix_spawn on the thread pool, not uv_spawn: a process start is
 * blocking work, kept off the event loop's thread (DESIGN.md), and libuv
 * 1.44 forks, copying the page tables of a gateway that carries thousands
 * of sessions; glibc's posix_spawn shares the memory until the exec.  The
 * loop hears of the end on a pidfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "gateway.h"
#include "portico/log.h"
#include "portico/ticket.h"
#include "portico/tls.h"

#define PEM_MAX (256 * 1024) /* a certificate chain or a key */

struct login_proc {
	uv_work_t work;	  /* the spawn */
	uv_poll_t exited; /* the pidfd */
	uv_pipe_t params; /* the write end of the child's fd 4 */
	uv_write_t wr;
	uv_poll_t ask; /* the gateway's end of the child's fd 5 */
	char *text;    /* the parameters */
	struct gw *g;
	uint64_t id;
	char peer[64];			   /* the client's address, as the loop saw it */
	char user[GW_LOGIN_FIELD_MAX + 1]; /* for the log */
	pid_t pid;
	int pidfd;
	int client_fd, params_fd, ask_fd; /* the child's fds 3, 4 and 5 */
	int params_w;			  /* the parent's end of fd 4 */
	int ask_r;			  /* the parent's end of fd 5 */
	int rc;				  /* the spawn's */
	int open;   /* handles not closed yet, and the broker's answer when awaited */
	int asking; /* the ask handle is open */
	int asked;  /* the question came */
	int killed; /* for sending what it must not */
};

/* The parameters hold the TLS key: wiped as soon as they are no longer
 * needed. */
static void drop_text(struct login_proc *lp)
{
	if (lp->text)
		explicit_bzero(lp->text, strlen(lp->text));
	free(lp->text);
	lp->text = NULL;
}

static void lp_destroy(struct login_proc *lp)
{
	if (lp->pidfd >= 0)
		close(lp->pidfd);
	drop_text(lp);
	free(lp);
}

static void lp_unref(struct login_proc *lp)
{
	if (--lp->open == 0)
		lp_destroy(lp);
}

static void login_proc_free(uv_handle_t *h)
{
	lp_unref(h->data);
}

static void ask_closed(uv_handle_t *h)
{
	struct login_proc *lp = h->data;

	close(lp->ask_r);
	lp_unref(lp);
}

static void ask_close(struct login_proc *lp)
{
	if (!lp->asking)
		return;
	lp->asking = 0;
	uv_close((uv_handle_t *)&lp->ask, ask_closed);
}

/* A login process that broke the protocol: it is ended (the pidfd is still
 * open: on_login_exit has not reaped it). */
static void lp_kill(struct login_proc *lp, const char *why)
{
	pt_log(PT_LOG_WARNING, lp->id, "rdp %s: the login process %s: ended", lp->peer, why);
	lp->killed = 1;
	if (pidfd_send_signal(lp->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
		pt_log_warn("rdp: cannot kill login process %d", (int)lp->pid);
	ask_close(lp);
}

static void on_login_exit(uv_poll_t *p, int status, int events)
{
	struct login_proc *lp = p->data;
	int st = 0;

	if (waitpid(lp->pid, &st, WNOHANG) == 0)
		return; /* not yet */
	/* A fault in FreeRDP's server side ends this login, not the gateway. */
	if (lp->killed)
		;
	else if (WIFSIGNALED(st))
		pt_log(PT_LOG_WARNING, lp->id, "rdp: the login process died of signal %d",
		       WTERMSIG(st));
	else if (WIFEXITED(st) && WEXITSTATUS(st))
		pt_log(PT_LOG_WARNING, lp->id, "rdp: the login process exited with status %d",
		       WEXITSTATUS(st));
	lp->g->logins--;
	ask_close(lp); /* a question not read yet has nobody to answer */
	uv_close((uv_handle_t *)p, login_proc_free);
}

/* --- the question and its answer --------------------------------------------------- */

static void answer(struct login_proc *lp, json_t *a)
{
	char *text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	size_t n = text ? strlen(text) : 0;

	json_decref(a);
	if (!lp->asking) {
		/* The process went meanwhile. */
	} else if (!text || n > GW_LOGIN_ANSWER_MAX) {
		lp_kill(lp,
			"cannot be answered (out of memory, or the broker's answer is too long)");
	} else if (send(lp->ask_r, text, n, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)n) {
		/* Its one message is the only one ever queued to it: this
		 * cannot block, and a failure means the process is going. */
		lp_kill(lp, "cannot be answered");
	}
	if (text)
		explicit_bzero(text, n); /* a ticket */
	free(text);
}

static json_t *refusal(struct login_proc *lp, const char *kind, const char *why)
{
	pt_log(PT_LOG_INFO, lp->id, "rdp %s user %s: refused: %s", lp->peer, lp->user, why);
	return json_pack("{s:s}", "refused", kind);
}

json_t *gw_login_answer(int rc, const struct pt_api_resp *resp, char *why, size_t whylen)
{
	const char *kind;

	if (rc) {
		snprintf(why, whylen, "the broker is unreachable");
		kind = "unavailable";
	} else if (resp->status == 401 || resp->status == 403 || resp->status == 429) {
		pt_api_message(resp, why, whylen);
		kind = "credentials";
	} else if (resp->status == 503) {
		pt_api_message(resp, why, whylen);
		kind = "unavailable";
	} else if (resp->status != 200) {
		pt_api_message(resp, why, whylen);
		kind = "denied";
	} else {
		json_t *j = resp->json;
		const char *ticket = json_string_value(json_object_get(j, "ticket"));
		const char *who = json_string_value(json_object_get(j, "user"));
		const char *proto = json_string_value(json_object_get(j, "protocol"));
		json_int_t sid = json_integer_value(json_object_get(j, "session_id"));

		kind = "denied";
		if (!ticket || !pt_ticket_valid(ticket) || !who || strlen(who) > GW_LOGIN_FIELD_MAX)
			snprintf(why, whylen, "the broker's answer has no ticket");
		else if (!proto || strcmp(proto, "rdp"))
			snprintf(why, whylen, "that pool's sessions are VNC: use a VNC viewer");
		else
			return json_pack("{s:s,s:s,s:I}", "ticket", ticket, "user", who,
					 "session_id", sid);
	}
	return json_pack("{s:s}", "refused", kind);
}

/* The broker's word, made into the process's answer. */
static void on_authorized(void *arg, int rc, struct pt_api_resp *resp, const char *err)
{
	struct login_proc *lp = arg;
	char why[300] = "";
	json_t *a;

	if (rc)
		pt_log_warnx("broker unreachable: %s", err);
	a = gw_login_answer(rc, resp, why, sizeof(why));
	if (json_object_get(a, "refused"))
		pt_log(PT_LOG_INFO, lp->id, "rdp %s user %s: refused: %s", lp->peer, lp->user,
		       why);
	answer(lp, a);
	lp_unref(lp); /* the answer awaited */
}

json_t *gw_login_question(const char *buf, size_t n, const char *peer, char *user, size_t userlen,
			  const char **why)
{
	static const char *const keys[3] = { "username", "password", "domain" };
	const char *v[3];
	json_t *q = json_loadb(buf, n, JSON_REJECT_DUPLICATES, NULL), *body;

	*why = "sent a malformed request";
	if (!json_is_object(q) || json_object_size(q) != 3)
		goto fail;
	for (int i = 0; i < 3; i++) {
		json_t *s = json_object_get(q, keys[i]);
		size_t len = json_string_length(s);
		/* jansson refuses a NUL in a string (JSON_ALLOW_NUL is not set). */
		if (!json_is_string(s) || len > GW_LOGIN_FIELD_MAX || (i < 2 && !len))
			goto fail;
		v[i] = json_string_value(s);
	}
	snprintf(user, userlen, "%s", v[0]);
	/* The client's address is the gateway's to say; the domain names the
	 * pool unless the user name does. */
	body = json_pack("{s:s,s:s,s:s}", "username", v[0], "password", v[1], "client_addr", peer);
	if (body && *v[2] && !strchr(v[0], '#'))
		json_object_set_new(body, "pool", json_string(v[2]));
	explicit_bzero((char *)v[1], strlen(v[1]));
	json_decref(q);
	*why = body ? NULL : "cannot be served (out of memory)";
	return body;
fail:
	json_decref(q);
	return NULL;
}

static void on_ask(uv_poll_t *h, int status, int events)
{
	struct login_proc *lp = h->data;
	char buf[GW_LOGIN_ASK_MAX + 1]; /* one byte more: a longer message is cut to it */
	const char *why;
	json_t *body;
	ssize_t n;

	if (status < 0) {
		ask_close(lp);
		return;
	}
	n = recv(lp->ask_r, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		ask_close(lp); /* the process closed its end: it is going */
		return;
	}
	if (lp->asked) {
		lp_kill(lp, "sent a second request");
	} else if (n > GW_LOGIN_ASK_MAX) {
		char why_long[64];
		snprintf(why_long, sizeof(why_long), "sent a request over %d bytes",
			 GW_LOGIN_ASK_MAX);
		lp_kill(lp, why_long);
	} else if (!(body = gw_login_question(buf, (size_t)n, lp->peer, lp->user, sizeof(lp->user),
					      &why))) {
		lp_kill(lp, why);
	} else {
		lp->asked = 1;
		lp->open++; /* until the answer */
		if (gw_call(lp->g, "/api/v1/gateway/authorize", body, on_authorized, lp)) {
			lp->open--;
			answer(lp, refusal(lp, "unavailable", "cannot ask the broker"));
		}
	}
	explicit_bzero(buf, sizeof(buf));
}

/* --- starting a login process ------------------------------------------------------- */

static void on_params_written(uv_write_t *wr, int status)
{
	struct login_proc *lp = wr->data;

	drop_text(lp);
	uv_close((uv_handle_t *)&lp->params, login_proc_free); /* the child reads EOF */
}

/* fd moved to 6 or above, so that the child's dup2 to 3, 4 and 5 cannot
 * clash. */
static int fd_high(int fd)
{
	int nfd;

	if (fd < 0 || fd >= 6)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 6);
	close(fd);
	return nfd;
}

static int spawn_login(struct login_proc *lp)
{
	char *args[] = { "portico-gateway", "--rdp-login", NULL };
	posix_spawn_file_actions_t fa;
	int rc;

	if ((rc = posix_spawn_file_actions_init(&fa)))
		return -rc;
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, lp->client_fd, 3);
	rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, lp->params_fd, 4);
	rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, lp->ask_fd, 5);
	/* Nothing else of the gateway's, whatever a library opened without
	 * close-on-exec on another thread meanwhile. */
	rc = rc ? rc : posix_spawn_file_actions_addclosefrom_np(&fa, 6);
	rc = rc ? rc : posix_spawn(&lp->pid, "/proc/self/exe", &fa, NULL, args, lp->g->login_env);
	posix_spawn_file_actions_destroy(&fa);
	if (rc)
		return -rc;
	lp->pidfd = pidfd_open(lp->pid, 0);
	if (lp->pidfd < 0) {
		/* Cannot watch it (a kernel before 5.3): let it go, and reap. */
		rc = -errno;
		kill(lp->pid, SIGKILL);
		waitpid(lp->pid, NULL, 0);
		return rc;
	}
	return 0;
}

static void spawn_work(uv_work_t *w)
{
	struct login_proc *lp = w->data;

	lp->rc = spawn_login(lp);
}

static void spawn_done(uv_work_t *w, int status)
{
	struct login_proc *lp = w->data;

	lp->g->works--;
	close(lp->client_fd); /* the child has them now, or nobody */
	close(lp->params_fd);
	close(lp->ask_fd);
	if (lp->rc || status) {
		/* The loop's end of the client's pair sees EOF: the relay ends. */
		pt_log(PT_LOG_WARNING, lp->id, "rdp: cannot start a login process: %s",
		       strerror(lp->rc ? -lp->rc : ECANCELED));
		lp->g->logins--;
		close(lp->params_w);
		close(lp->ask_r);
		lp_destroy(lp);
		return;
	}
	lp->exited.data = lp->params.data = lp->wr.data = lp->ask.data = lp;
	lp->open = 3;
	uv_poll_init(lp->g->loop, &lp->exited, lp->pidfd);
	uv_poll_start(&lp->exited, UV_READABLE, on_login_exit);
	uv_poll_init(lp->g->loop, &lp->ask, lp->ask_r);
	uv_poll_start(&lp->ask, UV_READABLE, on_ask);
	lp->asking = 1;
	uv_pipe_init(lp->g->loop, &lp->params, 0);
	uv_pipe_open(&lp->params, lp->params_w);
	uv_buf_t b = uv_buf_init(lp->text, (unsigned)strlen(lp->text));
	if (uv_write(&lp->wr, (uv_stream_t *)&lp->params, &b, 1, on_params_written))
		uv_close((uv_handle_t *)&lp->params, login_proc_free);
}

int gw_rdp_login_start(struct gw *g, uint64_t id, const char *peer, const uint8_t *req, size_t len,
		       int64_t timeout_ms, int *fd)
{
	const struct pt_conf *conf = g->conf;
	struct login_proc *lp;
	json_t *j;
	int sp[2] = { -1, -1 }, pp[2] = { -1, -1 }, ap[2] = { -1, -1 }, rc;

	if (!g->rdp_cert_pem || !g->rdp_key_pem)
		return -ENOTSUP;
	if (g->logins >= conf->gateway.rdp_max_logins)
		return -EAGAIN;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0 ||
	    pipe2(pp, O_CLOEXEC) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ap) < 0) {
		rc = -errno;
		goto fail_fds;
	}
	sp[1] = fd_high(sp[1]);
	pp[0] = fd_high(pp[0]);
	ap[1] = fd_high(ap[1]);
	lp = calloc(1, sizeof(*lp));
	if (lp)
		lp->pidfd = -1;
	/* Nothing here opens anything at the broker (rdp_login.c). */
	j = json_pack("{s:I,s:s,s:I,s:s,s:s,s:s,s:b}", "id", (json_int_t)id, "peer", peer,
		      "timeout_ms", (json_int_t)timeout_ms, "public_host",
		      conf->gateway.public_host, "cert_pem", g->rdp_cert_pem, "key_pem",
		      g->rdp_key_pem, "debug", pt_log_level() >= PT_LOG_DEBUG);
	if (lp && j)
		lp->text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (lp) {
		lp->g = g;
		lp->id = id;
		snprintf(lp->peer, sizeof(lp->peer), "%s", peer);
		lp->client_fd = sp[1];
		lp->params_fd = pp[0];
		lp->params_w = pp[1];
		lp->ask_fd = ap[1];
		lp->ask_r = ap[0];
		lp->work.data = lp;
	}
	/* The request FreeRDP must read first; a socket pair holds far more. */
	rc = !lp || !lp->text || sp[1] < 0 || pp[0] < 0 || ap[1] < 0	 ? -ENOMEM
	     : write(sp[0], req, len) != (ssize_t)len			 ? -EIO
	     : uv_queue_work(g->loop, &lp->work, spawn_work, spawn_done) ? -ENOMEM
									 : 0;
	if (rc) {
		if (lp)
			lp_destroy(lp);
		goto fail_fds;
	}
	g->logins++;
	g->works++;
	*fd = sp[0];
	return 0;
fail_fds:
	for (int k = 0; k < 2; k++) {
		if (sp[k] >= 0)
			close(sp[k]);
		if (pp[k] >= 0)
			close(pp[k]);
		if (ap[k] >= 0)
			close(ap[k]);
	}
	return rc;
}

/* --- at start ------------------------------------------------------------------------ */

/* What a login process inherits: FreeRDP's and the sanitizers' settings, the
 * locale and the time zone; whatever else the gateway was given stays with
 * it. */
static void login_env(struct gw *g)
{
	extern char **environ;
	static const char *const keep[] = {
		"WLOG_", "ASAN_OPTIONS=", "UBSAN_OPTIONS=", "LSAN_OPTIONS=", "TZ=", "LANG=",
		"LC_",	 "PATH=",	  "HOME=",	    "OPENSSL_CONF=", NULL
	};
	size_t n = 0;

	for (char **e = environ; e && *e && n < GW_LOGIN_ENV_MAX; e++)
		for (int k = 0; keep[k]; k++)
			if (!strncmp(*e, keep[k], strlen(keep[k]))) {
				g->login_env[n++] = *e;
				break;
			}
	g->login_env[n] = NULL;
}

/* A certificate that [tls] ca verifies names a node (docs/security.md): its
 * key is a credential, which a login process must not hold. */
static int issued_by_ca(const char *cert_pem, const char *ca)
{
	BIO *bio = BIO_new_mem_buf(cert_pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	X509_STORE *st = x ? X509_STORE_new() : NULL;
	X509_STORE_CTX *ctx = st ? X509_STORE_CTX_new() : NULL;
	int ok = 0;

	if (ctx && X509_STORE_load_file(st, ca) == 1 && X509_STORE_CTX_init(ctx, st, x, NULL) == 1)
		ok = X509_verify_cert(ctx) == 1;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(st);
	X509_free(x);
	BIO_free(bio);
	return ok;
}

int gw_rdp_login_init(struct gw *g, char *err, size_t errlen)
{
	const struct pt_tls_conf *tls = &g->conf->tls;
	static const char *const files[2] = { "certificate", "key" };
	char **dst[2] = { &g->rdp_cert_pem, &g->rdp_key_pem };
	const char *paths[2] = { tls->cert, tls->key };
	struct stat sb;

	/* Like every TLS listener's pair, made when neither exists. */
	if (tls->cert && tls->key && stat(tls->cert, &sb) < 0 && errno == ENOENT &&
	    stat(tls->key, &sb) < 0 && errno == ENOENT) {
		const char *cn = g->conf->gateway.public_host;
		if (pt_tls_make_self_signed(tls->cert, tls->key, cn && *cn ? cn : "localhost", err,
					    errlen))
			return -1;
		pt_log_info("generated a self-signed ECDSA P-256 certificate for %s in %s (key "
			    "%s) for RDP clients; they will not trust it until you install your "
			    "own or hand them this one",
			    cn && *cn ? cn : "localhost", tls->cert, tls->key);
	}
	/* Read now: the gateway may not read its key once it has dropped root. */
	for (int i = 0; i < 2; i++) {
		FILE *f = paths[i] ? fopen(paths[i], "r") : NULL;
		char *buf = f ? malloc(PEM_MAX + 1) : NULL;
		size_t n = buf ? fread(buf, 1, PEM_MAX + 1, f) : 0;

		if (f)
			fclose(f);
		if (!buf || !n || n > PEM_MAX) {
			snprintf(err, errlen, "cannot read the TLS %s %s: %s", files[i],
				 paths[i] ? paths[i] : "(none)",
				 !f	       ? strerror(errno)
				 : n > PEM_MAX ? "too big"
					       : "empty");
			free(buf);
			return -1;
		}
		buf[n] = '\0';
		*dst[i] = buf;
	}
	/* Refused, not warned: a node's key in every login process would hand
	 * the credential of a gateway or a broker to whoever breaks into one. */
	if (tls->ca && *tls->ca && issued_by_ca(g->rdp_cert_pem, tls->ca)) {
		snprintf(err, errlen,
			 "the RDP login step's certificate [tls] cert %s is issued by [tls] ca "
			 "%s: its key is a node's credential, and every login process (which "
			 "faces unauthenticated clients) would hold it; give [tls] cert a "
			 "certificate of the gateway's public name from another CA, or remove "
			 "both files for a self-signed one (docs/gateway.md)",
			 tls->cert, tls->ca);
		return -1;
	}
	login_env(g);
	return 0;
}
