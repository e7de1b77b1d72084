/*
 * rdp_login.c - the gateway's RDP login step, for a client that came
 * without a ticket (a user name and password typed into mstsc, xfreerdp,
 * Remmina).
 *
 * The gateway speaks just enough RDP to read the Client Info PDU: a
 * FreeRDP server peer with TLS security (no NLA: the password must reach
 * PAM, and CredSSP only proves knowledge of an NT hash).  It runs in a
 * short-lived process of its own per login (the gateway's binary again,
 * `portico-gateway --rdp-login`, as the gateway's user): FreeRDP's peer API
 * blocks; FreeRDP 2.11 leaks the certificate and key it loads for every
 * TLS accept (libfreerdp/crypto/tls.c), which a process returns when it
 * ends; and a fault in its parsing of what an unauthenticated client sends
 * ends that login, not the gateway.  The loop hears of the end through
 * a pidfd.  When the client's Client Info has arrived (the
 * earliest hook is the peer's LicenseCallback), the process tells the
 * client its licence is fine, asks the broker
 * (gateway/authorize: PAM with the same fixed delay and throttling as every
 * login, then the launch), and answers with a Server Redirection PDU that
 * carries a fresh ticket as its load-balance info and the gateway's own
 * address.  The client reconnects with the ticket as its routing token and
 * takes the passthrough path (rdp_route.c) to its session, where TLS and NLA
 * run end to end.  A refusal is an ErrorInfo PDU the client shows.
 *
 * The loop had already read the client's Connection Request when it found
 * no ticket in it; FreeRDP reads its peer from a socket, so the process gets
 * one end of a socket pair (fd 3) with that request written into it first,
 * and the loop relays the other end to the client (splice, like every
 * relay).  Its parameters (the client, the broker, the certificate and key)
 * come as JSON on fd 4.
 *
 * Pool choice: "alice#pool" as the user name, or the domain naming a pool,
 * or else the user's only pool.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <freerdp/error.h>
#include <freerdp/freerdp.h>
#include <freerdp/license.h>
#include <freerdp/peer.h>
#include <winpr/synch.h>
#include <winpr/wlog.h>

#include "gateway.h"
#include "portico/log.h"
#include "portico/ticket.h"

#define PEM_MAX (256 * 1024) /* a certificate chain or a key */

/* What a login process knows (gw_rdp_login_main). */
struct login {
	uint64_t id;
	char peer[64];
	char public_host[256];	/* the redirection's target */
	struct pt_api_conf api; /* the broker */
	const char *cert_pem, *key_pem;
	int fd;
	int64_t deadline_ms; /* the handshake timeout */
	int answered;	     /* redirected or refused: wait for the client to go */
	char user[256];	     /* for the log */
};

/* FreeRDP allocates the peer's context with ContextSize bytes. */
struct login_ctx {
	rdpContext base;
	struct login *l;
};

static int64_t mono_ms(void)
{
	return (int64_t)(uv_hrtime() / 1000000);
}

static int is_ascii(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s > 0x7e || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

/* UTF-16 length in bytes, NUL included, of an ASCII string. */
static uint32_t w16(const char *s)
{
	return 2 * ((uint32_t)strlen(s) + 1);
}

/*
 * FreeRDP 2 sends the Server Redirection PDU without a security header,
 * and a client still in its licensing state reads the first two bytes (the
 * share control header's totalLength) as security flags: a length with
 * SEC_ENCRYPT (0x08) or SEC_LICENSE_PKT (0x80) set would be misread.  We
 * send it after the licence, when clients read no security header under
 * TLS, but choose the length anyway so that no reader can misparse it:
 * filler for the length is the target NetBIOS name (informational; clients
 * dial the address or, with load-balance info, the gateway again) and,
 * when that is not enough, more copies of the gateway's address in the
 * target address list.  Returns 0 with *nb (NetBIOS name length, 0 for
 * none) and *copies set, or -1.
 */
static int redirect_layout(uint32_t base, uint32_t addr_entry, int *nb, int *copies)
{
	for (int k = 0; k <= 16; k++) {
		uint32_t t = base + (k ? 8 + (uint32_t)k * addr_entry : 0);
		for (int n = 0; n <= 15; n++) {
			uint32_t len = t + (n ? 4 + 2 * ((uint32_t)n + 1) : 0);
			if (len <= 0xffff && !(len & 0x88)) {
				*nb = n;
				*copies = k;
				return 0;
			}
		}
	}
	return -1;
}

static int send_redirect(freerdp_peer *p, struct login *l, const char *ticket, const char *user,
			 const char *domain)
{
	const char *host = l->public_host;
	char nbname[16] = "PORTICO--------";
	const char *addrs[16];
	int nb, k;
	/* FreeRDP's own layout (libfreerdp/core/peer.c): share control header
	 * 6, pad 2, flags 2, length 2, session id 4, flags 4, then the fields,
	 * then a pad byte. */
	uint32_t base = 6 + 2 + 12 + 1;

	if (!is_ascii(host) || !is_ascii(user) || !is_ascii(domain))
		return -1;     /* FreeRDP 2 sizes its strings in bytes, not UTF-16 units */
	base += 4 + w16(host); /* target address */
	base += 4 + 15 + (uint32_t)strlen(ticket); /* "Cookie: msts=<ticket>\r\n" */
	base += 4 + w16(user) + 4 + w16(domain);   /* user name, domain */
	base += 4 + w16(host);			   /* target FQDN */
	if (redirect_layout(base, 4 + w16(host), &nb, &k))
		return -1;
	nbname[nb] = '\0';
	for (int i = 0; i < k; i++)
		addrs[i] = host;
	return p->SendServerRedirection(p, 0, host, ticket, user, domain, NULL, host,
					nb ? nbname : NULL, 0, NULL, (UINT32)k, k ? addrs : NULL)
		       ? 0
		       : -1;
}

static void send_error(freerdp_peer *p, UINT32 code)
{
	freerdp_set_error_info(p->context->rdp, code);
	freerdp_send_error_info(p->context->rdp);
}

/* Ask the broker; answer the client with a redirection (0) or an error
 * (-1). */
static int authorize(freerdp_peer *p, struct login *l)
{
	rdpSettings *s = p->settings;
	const char *user = s->Username ? s->Username : "";
	const char *pass = s->Password ? s->Password : "";
	const char *domain = s->Domain ? s->Domain : "";
	struct pt_api_resp resp = { 0 };
	char err[512], msg[300];
	json_t *body;
	UINT32 code = ERRINFO_SERVER_DENIED_CONNECTION;
	const char *why = NULL;
	int rc;

	snprintf(l->user, sizeof(l->user), "%s", user);
	if (!*user || !*pass) {
		/* mstsc without saved credentials: it would wait for a login
		 * screen, which the gateway does not draw. */
		pt_log(PT_LOG_INFO, l->id, "rdp %s%s%s: refused: no %s in the client's logon info",
		       l->peer, *user ? " user " : "", user, *user ? "password" : "user name");
		send_error(p, ERRINFO_SERVER_FRESH_CREDENTIALS_REQUIRED);
		return -1;
	}
	body = json_pack("{s:s,s:s,s:s}", "username", user, "password", pass, "client_addr",
			 l->peer);
	/* The domain names the pool unless the user name does. */
	if (body && *domain && !strchr(user, '#'))
		json_object_set_new(body, "pool", json_string(domain));
	rc = body ? pt_api_call(&l->api, "POST", "/api/v1/gateway/authorize", body, &resp, err,
				sizeof(err))
		  : -1;
	json_decref(body);
	if (rc) {
		pt_log_warnx("broker unreachable: %s", body ? err : "out of memory");
		why = "the broker is unreachable";
		code = ERRINFO_CB_DESTINATION_POOL_NOT_FREE;
	} else if (resp.status == 401 || resp.status == 403 || resp.status == 429) {
		why = pt_api_message(&resp, msg, sizeof(msg));
		code = ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES;
	} else if (resp.status == 503) {
		why = pt_api_message(&resp, msg, sizeof(msg));
		code = ERRINFO_CB_DESTINATION_POOL_NOT_FREE;
	} else if (resp.status != 200) {
		why = pt_api_message(&resp, msg, sizeof(msg));
	} else {
		json_t *j = resp.json;
		const char *ticket = json_string_value(json_object_get(j, "ticket"));
		const char *who = json_string_value(json_object_get(j, "user"));
		const char *proto = json_string_value(json_object_get(j, "protocol"));

		if (!ticket || !pt_ticket_valid(ticket) || !who) {
			why = "the broker's answer has no ticket";
		} else if (!proto || strcmp(proto, "rdp")) {
			why = "that pool's sessions are VNC: use a VNC viewer";
		} else if (send_redirect(p, l, ticket, who,
					 *domain && !strchr(user, '#') ? "" : domain)) {
			why = "cannot send the redirection";
		} else {
			pt_log(PT_LOG_INFO, l->id,
			       "rdp %s user %s: logged in, redirected to session %lld", l->peer,
			       who,
			       (long long)json_integer_value(json_object_get(j, "session_id")));
		}
	}
	if (why) {
		pt_log(PT_LOG_INFO, l->id, "rdp %s user %s: refused: %s", l->peer, user, why);
		send_error(p, code);
	}
	pt_api_resp_free(&resp);
	return why ? -1 : 0;
}

/* Called once the Client Info PDU is in (settings hold the user's name,
 * password, domain, alternate shell), then for every licensing packet. */
static LicenseCallbackResult on_client_info(freerdp_peer *p, wStream *s)
{
	struct login *l = ((struct login_ctx *)p->context)->l;

	if (l->answered)
		return LICENSE_CB_IN_PROGRESS; /* waiting for the client to go */
	l->answered = 1;
	/* The licence first: a client reads the redirection (or the error)
	 * when it expects the server's capabilities. */
	if (!license_send_valid_client_error_packet(p->context->rdp))
		return LICENSE_CB_ABORT;
	int rc = authorize(p, l);
	if (p->settings->Password) /* the broker has it; FreeRDP frees it as is */
		explicit_bzero(p->settings->Password, strlen(p->settings->Password));
	if (rc == 0) {
		/* A redirected client leaves by itself: give it a moment. */
		int64_t linger = mono_ms() + 5000;
		if (linger < l->deadline_ms)
			l->deadline_ms = linger;
		return LICENSE_CB_IN_PROGRESS;
	}
	return LICENSE_CB_ABORT; /* the error is sent: close */
}

/* The login itself, in its own process: the peer on l->fd until the client
 * has its answer and goes, or the deadline. */
static void run_login(struct login *l)
{
	freerdp_peer *p = freerdp_peer_new(l->fd);
	int ok = 0;

	if (!p) {
		close(l->fd);
		return;
	}
	p->ContextSize = sizeof(struct login_ctx);
	if (!freerdp_peer_context_new(p)) {
		freerdp_peer_free(p);
		return;
	}
	((struct login_ctx *)p->context)->l = l;
	rdpSettings *s = p->settings;
	s->CertificateContent = strdup(l->cert_pem);
	s->PrivateKeyContent = strdup(l->key_pem);
	s->RdpSecurity = FALSE;
	s->TlsSecurity = TRUE;
	s->NlaSecurity = FALSE;
	s->ColorDepth = 32;
	p->LicenseCallback = on_client_info;
	if (s->CertificateContent && s->PrivateKeyContent && p->Initialize(p)) {
		ok = 1;
		while (mono_ms() < l->deadline_ms) {
			HANDLE h[MAXIMUM_WAIT_OBJECTS];
			DWORD n = p->GetEventHandles(p, h, MAXIMUM_WAIT_OBJECTS);
			if (!n)
				break;
			DWORD w = WaitForMultipleObjects(n, h, FALSE, 250);
			if (w == WAIT_FAILED)
				break;
			if (!p->CheckFileDescriptor(p))
				break; /* the client left, or spoke no RDP */
		}
	}
	if (!l->answered)
		pt_log(PT_LOG_INFO, l->id, "rdp %s: no logon info from the client%s", l->peer,
		       ok && mono_ms() >= l->deadline_ms ? " in time" : "");
	p->Disconnect(p);
	freerdp_peer_context_free(p);
	freerdp_peer_free(p);
}

/* --- the login process: portico-gateway --rdp-login ------------------------ */

static const char *param(json_t *j, const char *key)
{
	const char *v = json_string_value(json_object_get(j, key));

	return v && *v ? v : NULL;
}

_Noreturn void gw_rdp_login_main(void)
{
	/* What the gateway wrote to fd 4 (rdp_login_start below), up to EOF. */
	static char buf[4 * PEM_MAX];
	size_t n = 0;
	ssize_t got;
	json_t *j;
	json_error_t jerr;
	struct login l = { .fd = 3 };

	pt_log_init("gateway", PT_LOG_INFO, 0);
	while (n < sizeof(buf) && (got = read(4, buf + n, sizeof(buf) - n)) != 0) {
		if (got < 0 && errno != EINTR)
			pt_fatal("--rdp-login: cannot read its parameters from fd 4");
		n += got > 0 ? (size_t)got : 0;
	}
	close(4);
	j = n < sizeof(buf) ? json_loadb(buf, n, 0, &jerr) : NULL;
	explicit_bzero(buf, n);
	if (!j || !param(j, "peer") || !param(j, "public_host") || !param(j, "broker") ||
	    !param(j, "cert_pem") || !param(j, "key_pem") ||
	    !json_is_integer(json_object_get(j, "id")) ||
	    !json_is_integer(json_object_get(j, "timeout_ms")))
		pt_fatalx(
			"--rdp-login is the gateway's own: it wants its parameters (JSON) on fd 4");
	if (json_is_true(json_object_get(j, "debug")))
		pt_log_init("gateway", PT_LOG_DEBUG, 0);
	signal(SIGPIPE, SIG_IGN);
	if (!getenv("WLOG_LEVEL")) /* FreeRDP's own log: the gateway's lines say what matters */
		WLog_SetLogLevel(WLog_GetRoot(), WLOG_OFF);
	if (pt_api_global_init())
		pt_fatalx("cannot initialise libcurl");
	l.id = (uint64_t)json_integer_value(json_object_get(j, "id"));
	snprintf(l.peer, sizeof(l.peer), "%s", param(j, "peer"));
	snprintf(l.public_host, sizeof(l.public_host), "%s", param(j, "public_host"));
	l.deadline_ms = mono_ms() + json_integer_value(json_object_get(j, "timeout_ms"));
	l.cert_pem = param(j, "cert_pem");
	l.key_pem = param(j, "key_pem");
	l.api.base = param(j, "broker");
	l.api.ca = param(j, "ca");
	l.api.cert = param(j, "cert");
	l.api.key = param(j, "key");
	l.api.bearer = param(j, "bearer");
	l.api.timeout_ms = 30000;
	run_login(&l);
	json_decref(j);
	/* One login, one process: what FreeRDP 2.11 leaks per TLS accept goes
	 * back to the system with it; there are no exit handlers worth
	 * running (a leak checker would only count FreeRDP's leak). */
	_exit(0);
}

/* --- the gateway's side ---------------------------------------------------------- */

/*
 * posix_spawn on the thread pool, not uv_spawn: a process start is
 * blocking work, kept off the event loop's thread (DESIGN.md), and libuv
 * 1.44 forks, copying the page tables of a gateway that carries thousands
 * of sessions; glibc's posix_spawn shares the memory until the exec.  The
 * loop hears of the end on a pidfd.
 */
struct login_proc {
	uv_work_t work;	  /* the spawn */
	uv_poll_t exited; /* the pidfd */
	uv_pipe_t params; /* the write end of the child's fd 4 */
	uv_write_t wr;
	char *text; /* the parameters */
	struct gw *g;
	uint64_t id;
	pid_t pid;
	int pidfd;
	int client_fd, params_fd; /* the child's fds 3 and 4 */
	int params_w;		  /* the parent's end of fd 4 */
	int rc;			  /* the spawn's */
	int open;		  /* handles not closed yet */
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

static void login_proc_free(uv_handle_t *h)
{
	struct login_proc *lp = h->data;

	if (--lp->open == 0)
		lp_destroy(lp);
}

static void on_login_exit(uv_poll_t *p, int status, int events)
{
	struct login_proc *lp = p->data;
	int st = 0;

	if (waitpid(lp->pid, &st, WNOHANG) == 0)
		return; /* not yet */
	/* A fault in FreeRDP's server side ends this login, not the gateway. */
	if (WIFSIGNALED(st))
		pt_log(PT_LOG_WARNING, lp->id, "rdp: the login process died of signal %d",
		       WTERMSIG(st));
	else if (WIFEXITED(st) && WEXITSTATUS(st))
		pt_log(PT_LOG_WARNING, lp->id, "rdp: the login process exited with status %d",
		       WEXITSTATUS(st));
	lp->g->logins--;
	uv_close((uv_handle_t *)p, login_proc_free);
}

static void on_params_written(uv_write_t *wr, int status)
{
	struct login_proc *lp = wr->data;

	drop_text(lp);
	uv_close((uv_handle_t *)&lp->params, login_proc_free); /* the child reads EOF */
}

/* fd moved to 5 or above, so that the child's dup2 to 3 and 4 cannot clash. */
static int fd_high(int fd)
{
	int nfd;

	if (fd >= 5)
		return fd;
	nfd = fcntl(fd, F_DUPFD_CLOEXEC, 5);
	close(fd);
	return nfd;
}

static int spawn_login(struct login_proc *lp, int client_fd, int params_fd)
{
	extern char **environ;
	char *args[] = { "portico-gateway", "--rdp-login", NULL };
	posix_spawn_file_actions_t fa;
	int rc;

	if ((rc = posix_spawn_file_actions_init(&fa)))
		return -rc;
	rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, client_fd, 3);
	rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, params_fd, 4);
	rc = rc ? rc : posix_spawn(&lp->pid, "/proc/self/exe", &fa, NULL, args, environ);
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

	lp->rc = spawn_login(lp, lp->client_fd, lp->params_fd);
}

static void spawn_done(uv_work_t *w, int status)
{
	struct login_proc *lp = w->data;

	close(lp->client_fd); /* the child has them now, or nobody */
	close(lp->params_fd);
	if (lp->rc || status) {
		/* The loop's end of the client's pair sees EOF: the relay ends. */
		pt_log(PT_LOG_WARNING, lp->id, "rdp: cannot start a login process: %s",
		       strerror(lp->rc ? -lp->rc : ECANCELED));
		lp->g->logins--;
		close(lp->params_w);
		lp_destroy(lp);
		return;
	}
	lp->exited.data = lp->params.data = lp->wr.data = lp;
	lp->open = 2;
	uv_poll_init(lp->g->loop, &lp->exited, lp->pidfd);
	uv_poll_start(&lp->exited, UV_READABLE, on_login_exit);
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
	int sp[2], pp[2], rc;

	if (!g->rdp_cert_pem || !g->rdp_key_pem)
		return -ENOTSUP;
	if (g->logins >= conf->gateway.rdp_max_logins)
		return -EAGAIN;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	if (pipe2(pp, O_CLOEXEC) < 0) {
		rc = -errno;
		close(sp[0]);
		close(sp[1]);
		return rc;
	}
	sp[1] = fd_high(sp[1]);
	pp[0] = fd_high(pp[0]);
	lp = calloc(1, sizeof(*lp));
	if (lp)
		lp->pidfd = -1;
	j = json_pack("{s:I,s:s,s:I,s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s,s:s,s:b}", "id", (json_int_t)id,
		      "peer", peer, "timeout_ms", (json_int_t)timeout_ms, "public_host",
		      conf->gateway.public_host, "broker", g->api.base, "ca", g->api.ca, "cert",
		      g->api.cert, "key", g->api.key, "bearer", g->api.bearer, "cert_pem",
		      g->rdp_cert_pem, "key_pem", g->rdp_key_pem, "debug",
		      pt_log_level() >= PT_LOG_DEBUG);
	if (lp && j)
		lp->text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (lp) {
		lp->g = g;
		lp->id = id;
		lp->client_fd = sp[1];
		lp->params_fd = pp[0];
		lp->params_w = pp[1];
		lp->work.data = lp;
	}
	/* The request FreeRDP must read first; a socket pair holds far more. */
	rc = !lp || !lp->text || sp[1] < 0 || pp[0] < 0			 ? -ENOMEM
	     : write(sp[0], req, len) != (ssize_t)len			 ? -EIO
	     : uv_queue_work(g->loop, &lp->work, spawn_work, spawn_done) ? -ENOMEM
									 : 0;
	if (rc) {
		if (lp)
			lp_destroy(lp);
		for (int k = 0; k < 2; k++) {
			if (sp[k] >= 0)
				close(sp[k]);
			if (pp[k] >= 0)
				close(pp[k]);
		}
		return rc;
	}
	g->logins++;
	*fd = sp[0];
	return 0;
}

int gw_rdp_login_init(struct gw *g, char *err, size_t errlen)
{
	const struct pt_tls_conf *tls = &g->conf->tls;
	static const char *const files[2] = { "certificate", "key" };
	char **dst[2] = { &g->rdp_cert_pem, &g->rdp_key_pem };
	const char *paths[2] = { tls->cert, tls->key };

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
	return 0;
}
