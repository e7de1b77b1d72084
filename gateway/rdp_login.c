/*
 * rdp_login.c - the gateway's RDP login step, for a client that came
 * without a ticket (a user name and password typed into mstsc, xfreerdp,
 * Remmina).
 *
 * The gateway speaks just enough RDP to read the Client Info PDU: a
 * FreeRDP server peer with TLS security (no NLA: the password must reach
 * PAM, and CredSSP only proves knowledge of an NT hash) runs in a thread of
 * its own, since FreeRDP's peer API is blocking.  When the client's Client
 * Info has arrived (the earliest hook is the peer's LicenseCallback), the
 * thread tells the client its licence is fine, asks the broker
 * (gateway/authorize: PAM with the same fixed delay and throttling as every
 * login, then the launch), and answers with a Server Redirection PDU that
 * carries a fresh ticket as its load-balance info and the gateway's own
 * address.  The client reconnects with the ticket as its routing token and
 * takes the passthrough path (rdp_route.c) to its session, where TLS and NLA
 * run end to end.  A refusal is an ErrorInfo PDU the client shows.
 *
 * The loop had already read the client's Connection Request when it found
 * no ticket in it; FreeRDP reads its peer from a socket, so the thread gets
 * one end of a socket pair with that request written into it first, and the
 * loop relays the other end to the client (splice, like every relay).
 *
 * Pool choice: "alice#pool" as the user name, or the domain naming a pool,
 * or else the user's only pool.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

/* What a login thread needs; it owns this. */
struct login {
	struct gw *g; /* read only: conf, api, the PEM texts */
	uint64_t id;
	char peer[64];
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
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
	const char *host = l->g->conf->gateway.public_host;
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
	rc = body ? pt_api_call(&l->g->api, "POST", "/api/v1/gateway/authorize", body, &resp, err,
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
	if (authorize(p, l) == 0) {
		/* A redirected client leaves by itself: give it a moment. */
		int64_t linger = mono_ms() + 5000;
		if (linger < l->deadline_ms)
			l->deadline_ms = linger;
		return LICENSE_CB_IN_PROGRESS;
	}
	return LICENSE_CB_ABORT; /* the error is sent: close */
}

static void *login_thread(void *arg)
{
	struct login *l = arg;
	freerdp_peer *p = freerdp_peer_new(l->fd);
	const struct gw *g = l->g;
	int ok = 0;

	if (!p) {
		close(l->fd);
		goto out;
	}
	p->ContextSize = sizeof(struct login_ctx);
	if (!freerdp_peer_context_new(p)) {
		freerdp_peer_free(p);
		goto out; /* the socket is closed with the context */
	}
	((struct login_ctx *)p->context)->l = l;
	rdpSettings *s = p->settings;
	s->CertificateContent = strdup(g->rdp_cert_pem);
	s->PrivateKeyContent = strdup(g->rdp_key_pem);
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
out:
	explicit_bzero(l, sizeof(*l));
	free(l);
	return NULL;
}

int gw_rdp_login_start(struct gw *g, uint64_t id, const char *peer, const uint8_t *req, size_t len,
		       int64_t timeout_ms, int *fd)
{
	int sp[2];
	struct login *l;
	pthread_attr_t attr;
	pthread_t t;

	if (!g->rdp_cert_pem || !g->rdp_key_pem)
		return -ENOTSUP;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	/* The request FreeRDP must read first; a socket pair holds far more. */
	if (write(sp[0], req, len) != (ssize_t)len || !(l = calloc(1, sizeof(*l)))) {
		close(sp[0]);
		close(sp[1]);
		return -ENOMEM;
	}
	l->g = g;
	l->id = id;
	snprintf(l->peer, sizeof(l->peer), "%s", peer);
	l->fd = sp[1];
	l->deadline_ms = mono_ms() + timeout_ms;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 1 << 20);
	int rc = pthread_create(&t, &attr, login_thread, l);
	pthread_attr_destroy(&attr);
	if (rc) {
		close(sp[0]);
		close(sp[1]);
		free(l);
		return -rc;
	}
	*fd = sp[0];
	return 0;
}

int gw_rdp_login_init(struct gw *g, char *err, size_t errlen)
{
	const struct pt_tls_conf *tls = &g->conf->tls;
	static const char *const files[2] = { "certificate", "key" };
	char **dst[2] = { &g->rdp_cert_pem, &g->rdp_key_pem };
	const char *paths[2] = { tls->cert, tls->key };

	/* FreeRDP logs to stdout; the gateway's own lines say what matters. */
	if (!getenv("WLOG_LEVEL"))
		WLog_SetLogLevel(WLog_GetRoot(), WLOG_OFF);
	/* Read now: the gateway cannot read its key once it has dropped root. */
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
