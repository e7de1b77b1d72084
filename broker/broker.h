/*
 * broker.h - the network side of portico-broker: what its parts share.
 */
#ifndef BROKER_BROKER_H
#define BROKER_BROKER_H

#include <openssl/ssl.h>
#include <uv.h>

#include "auth.h"
#include "portico/api.h"
#include "portico/httpd.h"
#include "portico/conf.h"
#include "store.h"
#include "throttle.h"

struct brk_hostq;

struct brk {
	uv_loop_t *loop;
	const struct pt_conf *conf;
	struct brk_store *store;
	struct pt_httpd *http;
	struct brk_throttle *throttle;
	struct brk_auth *auth;
	SSL_CTX *client_ctx;	     /* to reach session hosts */
	struct pt_api_conf host_api; /* ... with the broker's credential (no base) */
	struct brk_hostq *hostq;     /* calls to session hosts (hostq.h); NULL: none */
	struct brk_longpoll *longpoll; /* gateways waiting for control rows (control.h) */
	uv_timer_t sweep;	     /* session timeouts, expired tickets */
	int sweeping;
	int64_t started_ms; /* when the sweep started: the daemon's start (hosts.c) */
	int calls; /* requests not answered yet: stopping waits for them */
	/* For tests and fuzzing (brk_api_serve_inline): jobs run inline and
	 * answers go to answer_cb, not to a connection.  NULL in the daemon. */
	void (*answer_cb)(void *arg, int status, const char *ctype, const char *body, size_t len);
	void *answer_arg;
	char gw_rdp[300]; /* host:port clients dial for RDP, "" when none */
	char gw_vnc[300]; /* ... for VNC */
	/* This run's name among the brokers of a shared store (host:pid:random):
	 * the starter of the sessions it makes, alive while it sweeps. */
	char id[96];
};

/* Load the pools of the configuration file into the store (insert or
 * update; pools made through the API are left alone).  Blocking: start-up. */
int brk_load_pools(struct brk *b);

/* The HTTP handler: every /api/v1 route (api.c). */
void brk_api_handle(struct pt_http_req *req, void *data);

/* Start the periodic sweep (timeouts, expired tickets and tokens). */
void brk_sweep_start(struct brk *b, uint64_t every_ms);

/* --- session hosts (hosts.c) ------------------------------------------------ */

/* Ask the sessiond of s->host to start session s (a STARTING row) of pool
 * p, waiting [broker] start_timeout at most.  On success the row is READY
 * and *s has its backend and secret.  On failure the row is ENDED, msg
 * says why in words for the user, and the return value is the HTTP status
 * to answer with (502 the host refused, 503 it could not be reached).
 * Blocks: on a thread of the host's queue only (hostq.h, launch.c), never
 * on the thread pool. */
int brk_host_start(struct brk *b, struct brk_session *s, const struct brk_pool *p,
		   const char *geometry, const char *password, char *msg, size_t msglen);
/* How long a start of pool p may take: [broker] start_timeout, or for a
 * VM that boots to its guest's own server its boot_timeout and a minute
 * besides, whichever is longer.  password (sso into a VM's guest: the
 * user's, set there through the guest agent) goes to the host, NULL for
 * none. */
int64_t brk_start_timeout_ms(const struct brk *b, const struct brk_pool *p);

/* Queue a stop of an ended session on its host (nothing for static
 * backends) and return; it blocks on the store only.  A host that cannot
 * be reached, or whose queue is full, learns it from the answer to its
 * next heartbeat. */
void brk_host_stop(struct brk *b, const struct brk_session *s, const char *reason);
/* Show text on session s's display, by its sessiond (a notice window as
 * the user); nothing for a static backend.  Queued like a stop; a failure
 * is logged. */
void brk_host_message(struct brk *b, const struct brk_session *s, const char *text);

/* A register or heartbeat from sessiond `name` reporting `sessions` (its
 * running sessions): bring the store in line and build the answer, {"pools":
 * [the pools this host serves], "stop": [ids it must stop]}.  NULL with
 * *status and msg set on failure. */
json_t *brk_host_reconcile(struct brk *b, const char *name, json_t *sessions, json_t *starting,
			   int *status,
			   char *msg, size_t msglen);

/* Milliseconds since the epoch: the store's clock (sweep.c). */
int64_t brk_now_ms(void);

#endif
