/*
 * gateway.h - portico-gateway's parts: the VNC front end (vnc_proxy.c),
 * the RDP passthrough (rdp_route.c) and the calls to the broker
 * (broker_call.c).
 */
#ifndef GATEWAY_GATEWAY_H
#define GATEWAY_GATEWAY_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <uv.h>

#include "portico/api.h"
#include "portico/conf.h"

struct gw_vnc;
struct gw_rdp;

/*
 * A login process (rdp_login.c) holds no credential: it asks the gateway,
 * on the SOCK_SEQPACKET pair that is its fd 5, one question, and gets one
 * answer (rdp_login_proc.c asks the broker).  Each is one JSON object in
 * one message:
 *   process -> gateway  {"username":U,"password":P,"domain":D}, nothing
 *                       else; U and P 1..GW_LOGIN_FIELD_MAX bytes, D up to
 *                       that; the whole at most GW_LOGIN_ASK_MAX bytes.
 *   gateway -> process  {"ticket":T,"user":U,"session_id":N}, or
 *                       {"refused":"credentials"|"unavailable"|"denied"};
 *                       at most GW_LOGIN_ANSWER_MAX bytes.
 * The gateway trusts nothing in the question (it adds the client's address
 * itself) and ends a process that sends anything else, or more.
 */
#define GW_LOGIN_FIELD_MAX  512
#define GW_LOGIN_ASK_MAX    8192
#define GW_LOGIN_ANSWER_MAX 2048
#define GW_LOGIN_ENV_MAX    32 /* variables a login process inherits, at most */

struct gw {
	uv_loop_t *loop;
	const struct pt_conf *conf;
	SSL_CTX *tls;		/* VeNCrypt X509Plain */
	SSL_CTX *anon;		/* VeNCrypt TLSPlain, NULL unless vnc_anon_tls */
	struct pt_api_conf api; /* the broker */
	uv_tcp_t vnc;
	uv_tcp_t rdp;
	char *rdp_cert_pem, *rdp_key_pem;      /* for the RDP login step */
	char *login_env[GW_LOGIN_ENV_MAX + 1]; /* a login process's environment */
	int64_t logins;			       /* login processes running */
	int works; /* jobs on the thread pool: stopping waits for them */
	struct gw_vnc *conns;
	struct gw_rdp *rdp_conns;
	int64_t nconns, pending;
	uint64_t next_id;
};

/* Listen for VNC viewers on [gateway] vnc_listen.  0 or a negative errno. */
int gw_vnc_listen(struct gw *g);
/* Listen for RDP clients on [gateway] rdp_listen (rdp_route.c). */
int gw_rdp_listen(struct gw *g);
/* The RDP login step.  _init reads the certificate and key RDP clients
 * see ([tls] cert and key, made self-signed when both are absent), before
 * the gateway drops root: 0, or -1 with err set.  _start hands a
 * connection whose Connection Request (req, len) had no ticket to a login
 * process, with timeout_ms to finish; *fd is the socket to relay the client
 * to.  0 or a negative errno (-EAGAIN: rdp_max_logins are running).  Both
 * in rdp_login_proc.c.  _main is that process (portico-gateway
 * --rdp-login, rdp_login.c). */
int gw_rdp_login_init(struct gw *g, char *err, size_t errlen);
int gw_rdp_login_start(struct gw *g, uint64_t id, const char *peer, const uint8_t *req, size_t len,
		       int64_t timeout_ms, int *fd);
_Noreturn void gw_rdp_login_main(void);
/* Connections from peer (an address) that have not logged in yet: VNC and
 * RDP together (gw_pending_from), RDP alone (gw_rdp_pending_from). */
int gw_pending_from(struct gw *g, const char *peer);
int gw_rdp_pending_from(struct gw *g, const char *peer);
/* Close every connection (shutting down). */
void gw_vnc_close_all(struct gw *g);

/* --- the broker (broker_call.c) ----------------------------------------- */

/* What the broker answered, on the loop thread.  rc: 0 with resp filled
 * (any HTTP status), or -1 with err set (unreachable). */
typedef void (*gw_call_cb)(void *arg, int rc, struct pt_api_resp *resp, const char *err);

/* POST path with body (taken) on the thread pool; cb (may be NULL) on the
 * loop.  0, or -1 when it could not be queued (cb never fires). */
int gw_call(struct gw *g, const char *path, json_t *body, gw_call_cb cb, void *arg);

/* Report a session event (connect, disconnect, input); fire and forget. */
void gw_event(struct gw *g, int64_t session_id, const char *event, int64_t at_ms, uint64_t bytes_up,
	      uint64_t bytes_down);

int64_t gw_now_ms(void);

#endif
