/*
 * rdp_login.c - the gateway's RDP login step, for a client that came
 * without a ticket (a user name and password typed into mstsc, xfreerdp,
 * Remmina): the login process, `portico-gateway --rdp-login`.  The
 * gateway's side (starting, watching and answering these processes) is
 * rdp_login_proc.c.
 *
 * The gateway speaks just enough RDP to read the Client Info PDU: a
 * FreeRDP server peer with TLS security (no NLA: the password must reach
 * PAM, and CredSSP only proves knowledge of an NT hash).  It runs in a
 * short-lived process of its own per login (the gateway's binary again,
 * as the gateway's user): FreeRDP's peer API blocks; FreeRDP 2.11 leaks
 * the certificate and key it loads for every TLS accept
 * (libfreerdp/crypto/tls.c), which a process returns when it ends; and a
 * fault in its parsing of what an unauthenticated client sends ends that
 * login, not the gateway.
 *
 * The process faces an unauthenticated client, so it holds no credential:
 * not the broker's address, nor the gateway's client certificate, nor a
 * secret, nor more of the environment than FreeRDP and the sanitizers read.
 * When the client's Client Info has arrived (the earliest hook is the
 * peer's LicenseCallback), the process tells the client its licence is
 * fine and asks the gateway, over the socket pair on its fd 5, one question
 * (the user name, password and domain: gateway.h has the messages); the
 * gateway asks the broker (gateway/authorize: PAM with the same fixed
 * delay and throttling as every login, then the launch) and answers with a
 * ticket or a refusal.  The process answers the client with a Server
 * Redirection PDU that carries the ticket as its load-balance info and the
 * gateway's own address, or with an ErrorInfo PDU the client shows.  The
 * client reconnects with the ticket as its routing token and takes the
 * passthrough path (rdp_route.c) to its session, where TLS and NLA run end
 * to end.
 *
 * The loop had already read the client's Connection Request when it found
 * no ticket in it; FreeRDP reads its peer from a socket, so the process gets
 * one end of a socket pair (fd 3) with that request written into it first,
 * and the loop relays the other end to the client (splice, like every
 * relay).  Its parameters (the client's address, the gateway's public name,
 * the certificate and key RDP clients see) come as JSON on fd 4.
 *
 * Pool choice: "alice#pool" as the user name, or the domain naming a pool,
 * or else the user's only pool.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

#define PARAMS_MAX     (1024 * 1024) /* fd 4: a certificate chain and a key, mostly */
#define ASK_FD	       5	     /* the socket pair to the gateway */
#define ANSWER_WAIT_MS 60000	     /* the gateway's call to the broker gives up at 30 s */

/* What a login process knows (gw_rdp_login_main). */
struct login {
	uint64_t id;
	char peer[64];
	char public_host[256]; /* the redirection's target */
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

/* Asks the gateway the one question (gateway.h): its answer, parsed, or
 * NULL when none came (the gateway is stopping, or took too long). */
static json_t *ask_gateway(struct login *l, const char *user, const char *pass, const char *domain)
{
	char *q = NULL, buf[GW_LOGIN_ANSWER_MAX + 1];
	json_t *j =
		json_pack("{s:s,s:s,s:s}", "username", user, "password", pass, "domain", domain);
	struct pollfd pfd = { .fd = ASK_FD, .events = POLLIN };
	ssize_t n = -1;

	if (j) {
		char *pw = (char *)json_string_value(json_object_get(j, "password"));
		q = json_dumps(j, JSON_COMPACT);
		explicit_bzero(pw, strlen(pw)); /* jansson's copy */
	}
	json_decref(j);
	if (q && strlen(q) <= GW_LOGIN_ASK_MAX &&
	    send(ASK_FD, q, strlen(q), MSG_NOSIGNAL) == (ssize_t)strlen(q)) {
		int r;
		while ((r = poll(&pfd, 1, ANSWER_WAIT_MS)) < 0 && errno == EINTR)
			;
		if (r == 1)
			n = recv(ASK_FD, buf, sizeof(buf), 0);
	}
	if (q)
		explicit_bzero(q, strlen(q));
	free(q);
	if (n <= 0 || n > GW_LOGIN_ANSWER_MAX)
		return NULL;
	return json_loadb(buf, (size_t)n, 0, NULL);
}

/* Ask the gateway; answer the client with a redirection (0) or an error
 * (-1).  The gateway logs its refusals (it has the broker's words). */
static int authorize(freerdp_peer *p, struct login *l)
{
	rdpSettings *s = p->settings;
	const char *user = s->Username ? s->Username : "";
	const char *pass = s->Password ? s->Password : "";
	const char *domain = s->Domain ? s->Domain : "";
	UINT32 code = ERRINFO_SERVER_DENIED_CONNECTION;
	const char *why = NULL, *ticket, *who, *refused;
	json_t *j;

	snprintf(l->user, sizeof(l->user), "%s", user);
	if (!*user || !*pass) {
		/* mstsc without saved credentials: it would wait for a login
		 * screen, which the gateway does not draw. */
		pt_log(PT_LOG_INFO, l->id, "rdp %s%s%s: refused: no %s in the client's logon info",
		       l->peer, *user ? " user " : "", user, *user ? "password" : "user name");
		send_error(p, ERRINFO_SERVER_FRESH_CREDENTIALS_REQUIRED);
		return -1;
	}
	if (strlen(user) > GW_LOGIN_FIELD_MAX || strlen(pass) > GW_LOGIN_FIELD_MAX ||
	    strlen(domain) > GW_LOGIN_FIELD_MAX) {
		pt_log(PT_LOG_INFO, l->id,
		       "rdp %s user %.64s...: refused: a user name, password or domain over %d "
		       "bytes",
		       l->peer, user, GW_LOGIN_FIELD_MAX);
		send_error(p, ERRINFO_SERVER_DENIED_CONNECTION);
		return -1;
	}
	j = ask_gateway(l, user, pass, domain);
	ticket = json_string_value(json_object_get(j, "ticket"));
	who = json_string_value(json_object_get(j, "user"));
	refused = json_string_value(json_object_get(j, "refused"));
	if (!j) {
		why = "the gateway did not answer";
	} else if (refused) {
		/* RDP's codes are made here, at the RDP edge. */
		if (!strcmp(refused, "credentials"))
			code = ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES;
		else if (!strcmp(refused, "unavailable"))
			code = ERRINFO_CB_DESTINATION_POOL_NOT_FREE;
		send_error(p, code);
		json_decref(j);
		return -1;
	} else if (!ticket || !pt_ticket_valid(ticket) || !who) {
		why = "the gateway's answer has no ticket";
	} else if (send_redirect(p, l, ticket, who, *domain && !strchr(user, '#') ? "" : domain)) {
		why = "cannot send the redirection";
	} else {
		pt_log(PT_LOG_INFO, l->id, "rdp %s user %s: logged in, redirected to session %lld",
		       l->peer, who,
		       (long long)json_integer_value(json_object_get(j, "session_id")));
	}
	if (why) {
		pt_log(PT_LOG_INFO, l->id, "rdp %s user %s: refused: %s", l->peer, user, why);
		send_error(p, code);
	}
	json_decref(j);
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
	/* What the gateway wrote to fd 4 (rdp_login_proc.c), up to EOF. */
	static char buf[PARAMS_MAX];
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
	if (!j || !param(j, "peer") || !param(j, "public_host") || !param(j, "cert_pem") ||
	    !param(j, "key_pem") || !json_is_integer(json_object_get(j, "id")) ||
	    !json_is_integer(json_object_get(j, "timeout_ms")))
		pt_fatalx(
			"--rdp-login is the gateway's own: it wants its parameters (JSON) on fd 4");
	if (json_is_true(json_object_get(j, "debug")))
		pt_log_init("gateway", PT_LOG_DEBUG, 0);
	signal(SIGPIPE, SIG_IGN);
	if (!getenv("WLOG_LEVEL")) /* FreeRDP's own log: the gateway's lines say what matters */
		WLog_SetLogLevel(WLog_GetRoot(), WLOG_OFF);
	l.id = (uint64_t)json_integer_value(json_object_get(j, "id"));
	snprintf(l.peer, sizeof(l.peer), "%s", param(j, "peer"));
	snprintf(l.public_host, sizeof(l.public_host), "%s", param(j, "public_host"));
	l.deadline_ms = mono_ms() + json_integer_value(json_object_get(j, "timeout_ms"));
	l.cert_pem = param(j, "cert_pem");
	l.key_pem = param(j, "key_pem");
	run_login(&l);
	json_decref(j);
	/* One login, one process: what FreeRDP 2.11 leaks per TLS accept goes
	 * back to the system with it; there are no exit handlers worth
	 * running (a leak checker would only count FreeRDP's leak). */
	_exit(0);
}
