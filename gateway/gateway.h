/*
 * gateway.h - portico-gateway's parts: the VNC front end (vnc_proxy.c),
 * the RDP passthrough (rdp_route.c) and the calls to the broker
 * (broker_call.c).
 */
#ifndef GATEWAY_GATEWAY_H
#define GATEWAY_GATEWAY_H

#include <jansson.h>
#include <stddef.h>
#include <openssl/ssl.h>
#include <stdint.h>
#include <uv.h>

#include "portico/api.h"
#include "portico/conf.h"
#include "portico/httpd.h"

struct gw;
struct gw_conn;
struct pt_sources;
struct pt_metrics_http;
struct rdg;

/* What the broker answered, on the loop thread.  rc: 0 with resp filled
 * (any HTTP status), or -1 with err set (unreachable). */
typedef void (*gw_call_cb)(void *arg, int rc, struct pt_api_resp *resp, const char *err);

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

/* A listener: which protocol its connections speak (conn.c). */
struct gw_listener {
	uv_tcp_t tcp;
	struct gw *g;
	const struct gw_conn_proto *proto;
};

/* The files the HTTPS front serves, in memory (web_files.c). */
struct gw_file {
	char *path; /* the URL path: "/index.html", "/novnc/core/rfb.js" */
	char *data;
	size_t len;
	const char *ctype;
};
struct gw_files {
	struct gw_file *v; /* sorted by path */
	size_t n, bytes;
};

struct gw {
	uv_loop_t *loop;
	const struct pt_conf *conf;
	SSL_CTX *tls;		/* VeNCrypt X509Plain */
	SSL_CTX *https_tls;	/* the HTTPS front: [tls] cert, the public one */
	struct gw_files files;	/* web_root at /, novnc_root at /novnc/ */
	struct rdg *rdg_waiting; /* legacy RD Gateway tunnels waiting for their IN (rdg.c) */
	SSL_CTX *anon;		/* VeNCrypt TLSPlain, NULL unless vnc_anon_tls */
	struct pt_api_conf api; /* the broker */
	struct gw_listener vnc, rdp, https;
	char *rdp_cert_pem, *rdp_key_pem;      /* for the RDP login step */
	char *login_env[GW_LOGIN_ENV_MAX + 1]; /* a login process's environment */
	int64_t logins;			       /* login processes running */
	int works; /* jobs on the thread pool: stopping waits for them */
	int stopping;
	/* Calls to the broker: NULL for gw_call's own (libcurl on the thread
	 * pool).  The fuzz targets set one that answers in-process. */
	int (*call)(struct gw *g, const char *path, json_t *body, gw_call_cb cb, void *arg);
	/* The connection core's (conn.c) */
	struct gw_conn *conns;	   /* every open connection */
	struct pt_sources *sources; /* pending connections per source */
	int64_t nconns, pending;
	int64_t max_connections; /* [gateway] max_connections, clamped to the fd limit */
	uint64_t next_id;
	struct pt_metrics_http *metrics_http; /* [gateway] metrics_listen's (metrics.c) */
	/* The long-poll for what must happen at once (control.c) */
	struct {
		int64_t after; /* the last row seen; -1: none asked yet */
		volatile int cancel;
		int started, running, failing;
		uv_timer_t retry;
	} control;
};

/* --- the audit trail ([gateway] audit_log, audit.c) ---------------------- */

/* A session's connection relayed ("connect") or ended ("disconnect", with
 * why and the relay's byte counts): who, from where, to what. */
struct pt_relay_stats;
void gw_audit_conn(const struct gw_conn *c, const char *event, const char *why,
		   const struct pt_relay_stats *st);

/* --- what the broker says must happen at once (control.c) ---------------- */

/* A WebSocket client's close code when the broker ended its connection (a
 * disconnect, logoff, timeout or drain): the reason says which. */
#define GW_WS_CLOSE_ENDED 4000
/* Keep a long-poll for control rows under way from now until _stop. */
void gw_control_start(struct gw *g);
void gw_control_stop(struct gw *g);
/* Act on rows (the broker's "control" array) on the connections of their
 * sessions. */
void gw_control_apply(struct gw *g, json_t *rows);


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
/* The gateway's side of the question, in rdp_login_proc.c (and its fuzz
 * target).  _question checks a process's message (buf, n): the body for
 * the broker's gateway/authorize, with peer as the client's address and
 * user set for the log, or NULL with *why.  _answer makes the broker's
 * word (rc and resp as gw_call_cb has them) into the process's answer, a
 * refusal with why set for the log, or NULL without memory. */
json_t *gw_login_question(const char *buf, size_t n, const char *peer, char *user, size_t userlen,
			  const char **why);
json_t *gw_login_answer(int rc, const struct pt_api_resp *resp, char *why, size_t whylen);

/* --- the connection core (conn.c) ---------------------------------------- */

/*
 * Both front ends (vnc_proxy.c, rdp_route.c) embed a struct gw_conn as the
 * first member of their connection (libuv's way) and get it back with
 * container_of.  The core accepts, admits (max_connections, max_pending and
 * max_pending_per_addr per source), keeps the timer and the pending count,
 * relays, reports to the broker, and closes.  Ownership:
 *   - c->client and c->backend belong to the core: it closes them in
 *     gw_conn_close (a protocol may replace c->client by a stream that wraps
 *     it, as TLS does, and sets c->backend when it opens one);
 *   - gw_conn_relay hands both to a relay, which the core stops at close;
 *   - a call made with gw_conn_call holds c until its answer;
 *   - proto->closed fires once, after gw_conn_close, when none of these
 *     points to c any more: only there may the protocol free its memory.
 * There is one way to close a connection, gw_conn_close, whoever decides
 * (an error, the handshake timeout, the relay's end, the gateway stopping).
 */
struct gw_conn_proto {
	const char *name; /* "vnc", "rdp": log lines */
	size_t size;	  /* the protocol's struct, which embeds struct gw_conn first */
	/* c was admitted: c->client is the accepted socket, not reading yet.
	 * The protocol starts its handshake, or closes c. */
	void (*start)(struct gw_conn *c);
	/* Nothing points to c any more: wipe and free (free(c) frees it all). */
	void (*closed)(struct gw_conn *c);
};

struct gw_conn {
	const struct gw_conn_proto *proto;
	struct gw *g;
	struct gw_conn *next, **prevp; /* g->conns */
	uint64_t id;
	char peer[64];	 /* the client's address */
	char source[64]; /* what per-source caps count it under (net.h) */
	char user[256];	 /* once known: log lines */
	int pending;	 /* not logged in yet: in g->pending and g->sources */
	int closing;
	int calls;	  /* broker calls in flight (gw_conn_call) */
	int timer_closed; /* the timer's close callback came */
	uv_timer_t timer; /* the handshake timeout, then input reports */
	struct pt_stream *client, *backend;
	struct pt_relay *relay;
	int login_step;	 /* the relay goes to an RDP login process, not a session */
	int64_t session; /* the broker's session, once known */
	char backend_addr[256];
	uint64_t reported_up_ms; /* the last input time reported */
	/* A WebSocket client (noVNC): the close frame gw_conn_close sends
	 * (0: none, a plain close) and its reason. */
	uint16_t ws_close_code;
	char ws_close_reason[124];
	int client_ws; /* c->client is a WebSocket stream: close frames, notices */
	struct pt_stream *ws_relayed; /* ... which the relay owns now (valid while c->relay) */
	char end_reason[160];	      /* why gw_conn_close closed it, for the audit trail */
	gw_call_cb call_cb;	 /* the answer gw_conn_call waits for */
	int mproto;		 /* GW_PROTO_*: the metrics' protocol label (metrics.c) */
};

#define gw_container_of(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* Listen on addr for proto's clients: 0 or a negative errno. */
int gw_conn_listen(struct gw *g, struct gw_listener *l, const char *addr,
		   const struct gw_conn_proto *proto);
/* A connection over client (any stream; reading not started; or NULL for
 * a protocol whose client stream is part of its own struct, set after) from peer
 * (counted under source), admitted like an accepted one, its handshake
 * timer running: NULL (client closed, a line logged) when a cap refuses
 * it.  What gw_conn_listen does per accept, before proto->start; the fuzz
 * targets call it with a stream that records what is written. */
struct gw_conn *gw_conn_open(struct gw *g, const struct gw_conn_proto *proto,
			     struct pt_stream *client, const char *peer, const char *source);
/* Take c's client stream away from it (c then closes without it): a
 * connection that changes protocol hands its client to another. */
struct pt_stream *gw_conn_take_client(struct gw_conn *c);
/* Close c with "handshake timed out" unless it is done within ms (the
 * timer gw_conn_open started, restarted: an HTTPS connection's time for
 * its next request). */
void gw_conn_timeout(struct gw_conn *c, uint64_t ms);
/* Logged in: no longer counted as pending (in all and per source). */
void gw_conn_release(struct gw_conn *c);
/* Close c (why: a log line, or NULL for none).  Idempotent. */
void gw_conn_close(struct gw_conn *c, const char *why);
/* Close every connection and the listeners (the gateway is stopping). */
void gw_conn_close_all(struct gw *g);
/* Ask the broker for c (gw_call): cb fires on the loop unless c was closed
 * meanwhile (then only the core hears the answer).  0, or -1: not queued. */
int gw_conn_call(struct gw_conn *c, const char *path, json_t *body, gw_call_cb cb);
/* Relay c->client and c->backend (both set, reading stopped) to each
 * other; the relay owns them now.  For a session (login_step 0) the core
 * reports connect, input and disconnect for c->session; for the RDP login
 * step it only closes c at the end.  0, or -ENOMEM (c is closed). */
int gw_conn_relay(struct gw_conn *c, int login_step);

/* The descriptors one relayed connection takes at most: the client's and
 * the backend's sockets and, on the splice path, a duplicate of each and a
 * pipe per direction (lib/relay.c). */
#define GW_FDS_PER_CONN 8
/* What an RDP login step takes besides (rdp_login_proc.c): the child's
 * three descriptors while it starts, the parameters' pipe, the question's
 * socket, the pidfd. */
#define GW_FDS_PER_LOGIN 6
/* The rest: stdio and the log, the two listeners, libuv's own (epoll,
 * eventfd, signal pipe), libcurl on 16 pool threads, a margin. */
#define GW_FDS_HEADROOM 64

/* The VNC front end's protocol (vnc_proxy.c), for gw_conn_open. */
extern const struct gw_conn_proto gw_vnc_proto;
/* Where gw_vnc_enter puts a VNC connection (vnc_proxy.c): */
enum gw_vnc_at {
	GW_VNC_AT_START,   /* just accepted: the banner goes out */
	GW_VNC_AT_PLAIN,   /* TLS is up: the user name and password come next */
	GW_VNC_AT_BACKEND, /* the broker answered: c->backend is the session's
			      backend, connected; its handshake comes next */
	GW_VNC_AT_WS,	   /* a browser's WebSocket (noVNC, /ws/vnc): the banner
			      goes out, security type None is offered, and the
			      ticket (the secret argument) is redeemed */
};
/* Start c (from gw_conn_open with gw_vnc_proto) at a given step: what
 * accepting does (GW_VNC_AT_START), or, for the fuzz targets, the steps
 * after TLS, which a fuzzer cannot reach at speed through a real handshake;
 * secret is the session's (AT_BACKEND), or the ticket (AT_WS).  0 or a
 * negative errno. */
int gw_vnc_enter(struct gw_conn *c, enum gw_vnc_at at, const char *secret);

/* --- the HTTPS front (https.c, https_api.c, web_files.c) ----------------- */

/* Listen on [gateway] https_listen: the portal's files, the broker's user
 * routes under /api/v1/, /ws/vnc and /remoteDesktopGateway/.  0 or a
 * negative errno. */
int gw_https_listen(struct gw *g);
extern const struct gw_conn_proto gw_https_proto;

/* An HTTPS connection: the core first, then one request at a time. */
struct gw_https {
	struct gw_conn c;
	struct pt_http_reader *rd;
	struct pt_http_req *req; /* the request being answered, or NULL */
	char *in;		 /* bytes read after it: the next request's, or, */
	size_t in_len;		 /* after an upgrade, the new protocol's */
	char *out;		 /* the answer being written */
	int close_after;	 /* the answer is the connection's last */
	int browser;		 /* req came from a browser (Origin or Cookie): its rules */
	void (*then)(struct gw_https *h); /* gw_https_switch's */
};

/* Answer h->req (status, body of len bytes; extra: "Name: value\r\n"...
 * or NULL); every answer carries the security headers (docs/gateway.md,
 * "The HTTPS front").  The request is freed. */
void gw_https_respond(struct gw_https *h, int status, const char *ctype, const char *body,
		      size_t len, const char *extra);
/* Answer {"error":code,"message":msg} (extra as above, may be NULL). */
void gw_https_error(struct gw_https *h, int status, const char *code, const char *msg,
		    const char *extra);
/* The value of cookie name of the request into buf: 0, or -ENOENT (absent,
 * or longer than len - 1). */
int gw_https_cookie(const struct pt_http_req *r, const char *name, char *buf, size_t len);
/* A request under /api/v1/: passed on to the broker (https_api.c). */
void gw_https_api(struct gw_https *h);
/* A request of the RD Gateway, /remoteDesktopGateway/ (rdg.c). */
void gw_https_rdg(struct gw_https *h);
/* After gw_https_switch: h's client as a WebSocket (server side, binary
 * frames of at most 1 MiB, the bytes read after the request first), taken
 * from h, which closes later; NULL with h closed when out of memory. */
struct pt_stream *gw_https_take_ws(struct gw_https *h);
/* The request asks for a WebSocket (Upgrade: websocket, Connection: upgrade). */
int gw_https_is_upgrade(const struct pt_http_req *r);
/* Answer 101 Switching Protocols with Sec-WebSocket-Accept: accept, then
 * call then(h) with h->req still there and h->in the bytes that followed
 * it (the connection is closed instead when the answer cannot go out). */
void gw_https_switch(struct gw_https *h, const char *accept, void (*then)(struct gw_https *h));

/* An answer in plain text (msg, extra as gw_https_respond's). */
void gw_https_text(struct gw_https *h, int status, const char *msg, const char *extra);

/* --- the RD Gateway (rdg.c: HTTP; rdg_tunnel.c: the tunnel) --------------- */

/* What a client without a token is told (a service message, or a 401's body). */
#define GW_RDG_NO_TOKEN_MESSAGE                                                                \
	"This gateway takes Portico's one-time access token, not a password: open the " \
	"desktop's .rdp file from the Portico portal in your browser, or run 'portico " \
	"connect NAME'."
#define GW_RDG_CONN_ID_MAX 72 /* an RDG-Connection-Id, its NUL included */

/* A tunnel over out, the client's connection (the WebSocket when ws, read
 * too; else the legacy OUT connection's TLS), taken from h, whose HTTPS
 * connection ends here: a connection of the core of its own.  NULL (out
 * closed, a line logged) when the core's caps refuse it. */
struct rdg *gw_rdg_tunnel_new(struct gw_https *h, struct pt_stream *out, int ws);
/* A WebSocket tunnel reads from now on (no_token: it came with NTLM). */
void gw_rdg_tunnel_start(struct rdg *r, int no_token);
/* A legacy tunnel sends first (n bytes: the answer and the seed) and waits
 * for its IN connection, known by id and its source.  0 or -ENOMEM (r is
 * then closed). */
int gw_rdg_tunnel_wait(struct rdg *r, const char *id, int no_token, const void *first, size_t n);
/* The legacy tunnel waiting with this id from this source, or NULL. */
struct rdg *gw_rdg_tunnel_waiting(struct gw *g, const char *id, const char *source);
/* Its IN connection (owned from now on) joins it; pre: n body bytes
 * already read after the request; chunked: the body's coding. */
void gw_rdg_tunnel_join(struct rdg *r, struct pt_stream *in, int chunked, const char *pre,
			size_t n);

/* The chunked coding of an RDG_IN_DATA body taken off (rdg.c): the data
 * goes to out as it comes.  Zeroed before the first byte.  0, 1 after a
 * last chunk, -EPROTO for a malformed one, or out's error. */
struct gw_unchunk {
	int state;
	uint64_t left;
	size_t len;
};
int gw_unchunk(struct gw_unchunk *u, const char *p, size_t n,
	       int (*out)(void *arg, const char *p, size_t n), void *arg);

/* Read every file below root into f, at URL paths prefix + the file's path
 * below root (web_files.c).  0, or -1 with err set. */
int gw_files_load(struct gw_files *f, const char *root, const char *prefix, char *err,
		  size_t errlen);
const struct gw_file *gw_files_find(const struct gw_files *f, const char *path);
void gw_files_free(struct gw_files *f);

/* --- metrics (metrics.c; docs/operations.md) ------------------------------ */

/* The protocol label of a connection (metrics.c). */
enum gw_proto { GW_PROTO_VNC, GW_PROTO_RDP, GW_PROTO_HTTPS, GW_PROTO_RDG, GW_PROTO_WS, GW_PROTO_N };
/* The registry and its listener on [gateway] metrics_listen (nothing when
 * unset): 0, or -1 with err set (the address cannot be bound). */
int gw_metrics_init(struct gw *g, char *err, size_t errlen);
/* Stop listening (the gateway is stopping). */
void gw_metrics_close(struct gw *g);
/* c was admitted (gw_conn_open): its protocol label, and its count. */
void gw_metrics_opened(struct gw_conn *c);
int gw_metrics_proto(const struct gw_conn *c);
/* A connection refused or closed before its session, for reason (one of
 * metrics.c's: "max_connections", "handshake_timeout", "bad_ticket"...). */
void gw_metrics_refused(const char *reason);
/* c's relay just started: count its bytes under its protocol. */
void gw_metrics_relay(struct gw_conn *c);

/* --- the broker (broker_call.c) ----------------------------------------- */

/* A user's request for the broker, as the HTTPS front passes it on
 * (pt_api_forward): everything owned, freed (the body wiped: it may hold a
 * password) once answered. */
struct gw_fwd {
	char method[16];
	char path[PT_HTTP_PATH_MAX * 2 + 2]; /* "/api/v1/...?query" */
	char *body;
	size_t len;
	char *headers[4]; /* "Name: value" (pt_api_fwd) */
};
void gw_fwd_free(struct gw_fwd *f);
/* Send f (taken, whatever happens) on the thread pool; cb on the loop.
 * 0, or -1 when it could not be queued (cb never fires). */
int gw_forward(struct gw *g, struct gw_fwd *f, gw_call_cb cb, void *arg);
/* gw_conn_call's twin for a forwarded request: c is held until the answer. */
int gw_conn_forward(struct gw_conn *c, struct gw_fwd *f, gw_call_cb cb);


/* POST path with body (taken) on the thread pool; cb (may be NULL) on the
 * loop.  0, or -1 when it could not be queued (cb never fires). */
int gw_call(struct gw *g, const char *path, json_t *body, gw_call_cb cb, void *arg);

/* Report a session event (connect, disconnect, input); fire and forget. */
void gw_event(struct gw *g, int64_t session_id, const char *event, int64_t at_ms, uint64_t bytes_up,
	      uint64_t bytes_down);

int64_t gw_now_ms(void);

#endif
