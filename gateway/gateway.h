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

struct gw {
	uv_loop_t *loop;
	const struct pt_conf *conf;
	SSL_CTX *tls;		/* VeNCrypt X509Plain */
	SSL_CTX *anon;		/* VeNCrypt TLSPlain, NULL unless vnc_anon_tls */
	struct pt_api_conf api; /* the broker */
	uv_tcp_t vnc;
	uv_tcp_t rdp;
	char *rdp_cert_pem, *rdp_key_pem; /* for the RDP login step */
	int64_t logins;			  /* login processes running */
	struct gw_vnc *conns;
	struct gw_rdp *rdp_conns;
	int64_t nconns, pending;
	uint64_t next_id;
};

/* Listen for VNC viewers on [gateway] vnc_listen.  0 or a negative errno. */
int gw_vnc_listen(struct gw *g);
/* Listen for RDP clients on [gateway] rdp_listen (rdp_route.c). */
int gw_rdp_listen(struct gw *g);
/* The RDP login step (rdp_login.c).  _init reads the TLS certificate and
 * key (before the gateway drops root): 0, or -1 with err set.  _start hands
 * a connection whose Connection Request (req, len) had no ticket to a login
 * process, with timeout_ms to finish; *fd is the socket to relay the client
 * to.  0 or a negative errno (-EAGAIN: rdp_max_logins are running).
 * _main is that process (portico-gateway --rdp-login). */
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
