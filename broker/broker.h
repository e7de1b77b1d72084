/*
 * broker.h - the network side of portico-broker: what its parts share.
 */
#ifndef BROKER_BROKER_H
#define BROKER_BROKER_H

#include <openssl/ssl.h>
#include <uv.h>

#include "auth.h"
#include "http.h"
#include "portico/conf.h"
#include "store.h"
#include "throttle.h"

struct brk {
	uv_loop_t *loop;
	const struct pt_conf *conf;
	struct brk_store *store;
	struct brk_http_server *http;
	struct brk_throttle *throttle;
	struct brk_auth *auth;
	SSL_CTX *client_ctx; /* to reach session hosts */
	uv_timer_t sweep;    /* session timeouts, expired tickets */
	int sweeping;
	char gw_rdp[300]; /* host:port clients dial for RDP, "" when none */
	char gw_vnc[300]; /* ... for VNC */
};

/* Load the pools of the configuration file into the store (insert or
 * update; pools made through the API are left alone).  Blocking: start-up. */
int brk_load_pools(struct brk *b);

/* The HTTP handler: every /api/v1 route. */
void brk_api_handle(struct brk_http_req *req, void *data);

/* Start the periodic sweep (timeouts, expired tickets and tokens). */
void brk_sweep_start(struct brk *b, uint64_t every_ms);

/* Milliseconds since the epoch. */
int64_t brk_now_ms(void);

#endif
