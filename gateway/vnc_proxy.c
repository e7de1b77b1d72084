/*
 * vnc_proxy.c - the gateway's VNC front end.
 *
 * The gateway is an RFB 3.7/3.8 server that offers one security type,
 * VeNCrypt 0.2, with X509Plain (TLS with the gateway's certificate, then a
 * user name and password) and, when [gateway] vnc_anon_tls says so,
 * TLSPlain.  The credentials go to the broker: a real user (`alice`, or
 * `alice#pool`) through gateway/authorize, or user `ticket` with a ticket
 * from the portal through gateway/redeem.  Only once the backend accepted
 * us (its own handshake: None or VNC authentication with the session's
 * secret) does the client hear SecurityResult OK; its ClientInit goes on
 * as shared=1, the backend's ServerInit comes back unchanged, and the
 * relay carries the rest.
 *
 *   client                gateway                       backend
 *   version, types  <-->  VeNCrypt, TLS, plain  --->  broker (PAM, launch)
 *                         connect, RFB handshake  <-->  Xvnc / QEMU
 *   SecurityResult  <---
 *   ClientInit      --->  ClientInit(shared=1)    --->
 *   ServerInit      <---  (unchanged)             <---
 *   ... relay ...
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "portico/buf.h"
#include "portico/log.h"
#include "portico/net.h"
#include "portico/relay.h"
#include "portico/rfb.h"
#include "portico/stream.h"
#include "portico/tls.h"
#include "portico/ws.h"

#define USER_MAX     255
#define PASSWORD_MAX 511
#define NAME_MAX_RFB 4096 /* a backend's desktop name */

enum state {
	C_VERSION,    /* client's ProtocolVersion */
	C_SECTYPE,    /* its security type */
	C_VENC_VER,   /* its VeNCrypt version */
	C_VENC_SUB,   /* its VeNCrypt subtype */
	C_TLS,	      /* TLS handshake */
	C_PLAIN,      /* user and password lengths, then both */
	C_AUTH,	      /* the broker is deciding */
	B_CONNECT,    /* connecting to the backend */
	B_VERSION,    /* backend's ProtocolVersion */
	B_TYPES,      /* its security types */
	B_CHALLENGE,  /* its VNC authentication challenge */
	B_RESULT,     /* its SecurityResult */
	C_CLIENTINIT, /* client's ClientInit */
	B_SERVERINIT, /* backend's ServerInit */
	B_FORWARD,    /* ServerInit on its way to the client */
	RELAY,
	REFUSING, /* the refusal is on its way: nothing more is read */
	CLOSING,
};

struct gw_vnc {
	struct gw_conn conn; /* first: the core's (gateway.h) */
	int state;
	int minor; /* the client's RFB 3.x */
	int anon;  /* TLSPlain chosen */
	char in[2048]; /* client bytes not consumed yet */
	size_t inlen;
	char bin[8192]; /* backend bytes not consumed yet */
	size_t binlen;
	char out[8448]; /* the write in flight (one at a time per stream) */
	/* Bytes for the backend, the write in flight first: a backend may send
	 * its version, types and challenge at once, and each answer must wait
	 * for the one before it (one write at a time per stream). */
	char bout[64 + 2048];
	size_t boutlen, bflight;
	int relay_after; /* start the relay once bout is written */
	int writing;	 /* a client write is in flight */
	int close_after; /* close once it is done */
	int tls_after;	 /* start TLS once it is done */
	uint32_t ulen, plen;
	char secret[64]; /* the session's, from the broker */
	int ws;		 /* a browser's WebSocket: security None, the ticket below */
	char ticket[64];
};

/* The core's connection as ours (it is our first member). */
static struct gw_vnc *vnc_of(struct gw_conn *k)
{
	return gw_container_of(k, struct gw_vnc, conn);
}


static void process(struct gw_vnc *c);
static void process_backend(struct gw_vnc *c);
static void on_client_read(struct pt_stream *s, ssize_t n, char *chunk);

static void conn_close(struct gw_vnc *c, const char *why)
{
	c->state = CLOSING;
	gw_conn_close(&c->conn, why);
}

/* The core's close callback: nothing points to c any more. */
static void vnc_closed(struct gw_conn *k)
{
	struct gw_vnc *c = vnc_of(k);

	explicit_bzero(c->secret, sizeof(c->secret));
	explicit_bzero(c->ticket, sizeof(c->ticket));
	explicit_bzero(c->in, sizeof(c->in));
	free(c);
}

/* --- writing to the client ------------------------------------------------------ */

static void on_client_written(struct pt_stream *s, int status);

static void after_client_write(struct gw_vnc *c);

/* Send len bytes of c->out; one write at a time (callers wait for the
 * client's answer before they write again). */
static void send_out(struct gw_vnc *c, size_t len)
{
	int rc;

	c->writing = 1;
	rc = pt_stream_write(c->conn.client, c->out, len, on_client_written);
	if (rc == PT_STREAM_DONE) {
		c->writing = 0;
		after_client_write(c);
	} else if (rc < 0) {
		c->writing = 0;
		conn_close(c, "write failed");
	}
}

static void send_bytes(struct gw_vnc *c, const void *p, size_t len)
{
	memcpy(c->out, p, len);
	send_out(c, len);
}

static void on_client_written(struct pt_stream *s, int status)
{
	struct gw_vnc *c = vnc_of(s->data);

	c->writing = 0;
	if (c->conn.closing)
		return; /* cancelled by the close */
	if (status < 0) {
		conn_close(c, "write failed");
		return;
	}
	after_client_write(c);
}

/* Refuse with a reason a person can read, then close. */
static void refuse(struct gw_vnc *c, const char *reason, const char *log)
{
	size_t n = 4, len = strlen(reason);

	if (c->conn.closing || c->state == REFUSING)
		return; /* said already */
	/* A client that heard OK already, or is being written to, gets no
	 * second SecurityResult: it is closed. */
	if (c->writing || c->state >= C_CLIENTINIT) {
		conn_close(c, log ? log : reason);
		return;
	}
	pt_log(PT_LOG_INFO, c->conn.id, "vnc %s%s%s: refused: %s", c->conn.peer, c->conn.user[0] ? " user " : "",
	       c->conn.user, log ? log : reason);
	if (c->ws) { /* and in the WebSocket's close frame */
		c->conn.ws_close_code = PT_WS_CLOSE_POLICY;
		snprintf(c->conn.ws_close_reason, sizeof(c->conn.ws_close_reason), "%s", reason);
	}
	pt_rfb_put_u32(c->out, 1); /* SecurityResult: failed */
	if (c->minor >= 8) {
		pt_rfb_put_u32(c->out + 4, (uint32_t)len);
		memcpy(c->out + 8, reason, len);
		n = 8 + len;
	}
	c->close_after = 1;
	c->state = REFUSING; /* nothing more is read */
	send_out(c, n);
}

/* --- TLS ------------------------------------------------------------------------ */

static void on_tls_ready(struct pt_stream *s, int status)
{
	struct gw_vnc *c = vnc_of(s->data);

	if (status < 0) {
		struct pt_tls *t = pt_tls_stream_engine(s);
		conn_close(c, t ? pt_tls_last_error(t) : "TLS handshake failed");
		return;
	}
	c->state = C_PLAIN;
	if (pt_stream_read_start(c->conn.client, on_client_read) < 0)
		conn_close(c, "read failed");
}

/* Ciphertext that arrived before the TLS stream took over the socket. */
static int tls_feed(struct gw_vnc *c, const char *data, size_t len)
{
	struct pt_tls *t = pt_tls_stream_engine(c->conn.client);
	size_t avail;
	char *sp = t ? pt_tls_in_space(t, &avail) : NULL;

	if (!sp || avail < len) {
		conn_close(c, "too much data before TLS");
		return -1;
	}
	memcpy(sp, data, len);
	pt_tls_in_commit(t, len);
	return 0;
}

static void start_tls(struct gw_vnc *c)
{
	struct pt_stream *tls;

	pt_stream_read_stop(c->conn.client);
	tls = pt_tls_stream_new(c->conn.client, c->anon ? c->conn.g->anon : c->conn.g->tls, 1, NULL);
	if (!tls) {
		conn_close(c, "out of memory");
		return;
	}
	tls->data = &c->conn;
	tls->id = c->conn.id;
	c->conn.client = tls;
	/* A ClientHello that came with the subtype is TLS's to read. */
	if (c->inlen && tls_feed(c, c->in, c->inlen))
		return;
	c->inlen = 0;
	c->state = C_TLS;
	if (pt_tls_stream_handshake(tls, on_tls_ready) < 0)
		conn_close(c, "TLS failed");
}

static void after_serverinit(struct gw_vnc *c);

static void after_client_write(struct gw_vnc *c)
{
	if (c->close_after) {
		conn_close(c, NULL);
	} else if (c->state == B_FORWARD) {
		after_serverinit(c);
	} else if (c->tls_after) {
		c->tls_after = 0;
		start_tls(c);
	} else {
		process(c); /* what arrived while the write was out */
	}
}

/* --- the broker ------------------------------------------------------------------- */

static void connect_backend(struct gw_vnc *c);

static void on_authorized(void *arg, int rc, struct pt_api_resp *r, const char *err)
{
	struct gw_vnc *c = vnc_of(arg);
	json_t *j = r ? r->json : NULL;
	char msg[300];
	const char *backend, *secret, *user;

	if (rc) {
		pt_log_warnx("broker unreachable: %s", err);
		gw_metrics_refused("broker_unreachable");
		refuse(c, "the service is unavailable: try again later", "broker unreachable");
		return;
	}
	/* A second factor cannot be typed into a VNC password box: the
	 * broker's words say where to sign in instead. */
	if (r->status == 403 && !c->ws &&
	    !strcmp(json_string_value(json_object_get(j, "error")) ?: "", "mfa_required")) {
		gw_metrics_refused("mfa_required");
		pt_api_message(r, msg, sizeof(msg));
		refuse(c, msg, "login needs a second factor");
		return;
	}
	if (r->status == 401 || r->status == 403)
		gw_metrics_refused(c->ws ? "bad_ticket" : "login_failed");
	if ((r->status == 401 || r->status == 403) && c->ws) {
		refuse(c, "ticket refused (unknown, used or expired): open the desktop again from the portal",
		       "ticket refused");
		return;
	}
	if (r->status == 401 || r->status == 403) {
		refuse(c, "login failed", "login failed");
		return;
	}
	if (r->status != 200) {
		pt_api_message(r, msg, sizeof(msg));
		refuse(c, msg, msg);
		return;
	}
	backend = json_string_value(json_object_get(j, "backend"));
	secret = json_string_value(json_object_get(j, "secret"));
	user = json_string_value(json_object_get(j, "user"));
	if (!backend || strlen(backend) >= sizeof(c->conn.backend_addr) ||
	    (secret && strlen(secret) >= sizeof(c->secret)) ||
	    !json_is_integer(json_object_get(j, "session_id")) ||
	    strcmp(json_string_value(json_object_get(j, "protocol")) ?: "", "vnc")) {
		refuse(c, "session host unavailable", "the broker's answer has no VNC backend");
		return;
	}
	snprintf(c->conn.backend_addr, sizeof(c->conn.backend_addr), "%s", backend);
	snprintf(c->secret, sizeof(c->secret), "%s", secret ? secret : "");
	if (user)
		snprintf(c->conn.user, sizeof(c->conn.user), "%s", user);
	c->conn.session = json_integer_value(json_object_get(j, "session_id"));
	connect_backend(c);
}

/* The credentials are in: ask the broker. */
static void authorize(struct gw_vnc *c, const char *user, const char *password)
{
	json_t *body;
	const char *path;

	if (!strcmp(user, "ticket")) {
		path = "/api/v1/gateway/redeem";
		body = json_pack("{s:s,s:s}", "ticket", password, "client_addr", c->conn.peer);
	} else {
		path = "/api/v1/gateway/authorize";
		body = json_pack("{s:s,s:s,s:s}", "username", user, "password", password,
				 "client_addr", c->conn.peer);
	}
	snprintf(c->conn.user, sizeof(c->conn.user), "%s", user);
	c->state = C_AUTH;
	pt_stream_read_stop(c->conn.client);
	if (gw_conn_call(&c->conn, path, body, on_authorized) != 0)
		refuse(c, "the service is unavailable: try again later", "cannot queue a call");
}

/* --- the backend ------------------------------------------------------------------ */

static void on_backend_read(struct pt_stream *s, ssize_t n, char *chunk)
{
	struct gw_vnc *c = vnc_of(s->data);

	if (n <= 0) {
		refuse(c, "session host unavailable",
		       n == UV_EOF ? "the backend closed during its handshake"
				   : "backend read failed");
		return;
	}
	if (c->binlen + (size_t)n > sizeof(c->bin)) {
		pt_chunk_put(chunk);
		refuse(c, "session host unavailable", "the backend sent too much");
		return;
	}
	memcpy(c->bin + c->binlen, chunk, (size_t)n);
	c->binlen += (size_t)n;
	pt_chunk_put(chunk);
	process_backend(c);
}

static void on_backend_connected(uv_connect_t *req, int status)
{
	struct gw_vnc *c = req->data;

	free(req);
	if (c->conn.closing)
		return;
	if (status < 0) {
		char log[320];
		snprintf(log, sizeof(log), "cannot connect to %s: %s", c->conn.backend_addr,
			 uv_strerror(status));
		refuse(c, "session host unavailable", log);
		return;
	}
	c->state = B_VERSION;
	if (pt_stream_read_start(c->conn.backend, on_backend_read) < 0)
		refuse(c, "session host unavailable", "backend read failed");
}

static void connect_backend(struct gw_vnc *c)
{
	uv_connect_t *req = calloc(1, sizeof(*req));
	struct sockaddr_storage ss;
	int unix_sock = !strncmp(c->conn.backend_addr, "unix:", 5), rc;

	if (!req) {
		refuse(c, "session host unavailable", "out of memory");
		return;
	}
	if (!unix_sock && pt_net_parse_addr(c->conn.backend_addr, 5900, &ss) != 0) {
		free(req);
		refuse(c, "session host unavailable", "the backend address is not numeric");
		return;
	}
	c->conn.backend = pt_plain_new(c->conn.g->loop, unix_sock ? UV_NAMED_PIPE : UV_TCP);
	if (!c->conn.backend) {
		free(req);
		refuse(c, "session host unavailable", "out of memory");
		return;
	}
	c->conn.backend->data = &c->conn;
	c->conn.backend->id = c->conn.id;
	req->data = c;
	c->state = B_CONNECT;
	if (unix_sock) {
		uv_pipe_connect(req, (uv_pipe_t *)pt_plain_uv(c->conn.backend), c->conn.backend_addr + 5,
				on_backend_connected);
		return;
	}
	uv_tcp_nodelay((uv_tcp_t *)pt_plain_uv(c->conn.backend), 1);
	rc = uv_tcp_connect(req, (uv_tcp_t *)pt_plain_uv(c->conn.backend), (struct sockaddr *)&ss,
			    on_backend_connected);
	if (rc < 0) {
		free(req);
		refuse(c, "session host unavailable", uv_strerror(rc));
	}
}

static void start_relay(struct gw_vnc *c)
{
	c->state = RELAY;
	gw_conn_relay(&c->conn, 0);
}

static void backend_flush(struct gw_vnc *c);

/* The write in flight left: the rest goes, or the relay starts. */
static void backend_sent(struct gw_vnc *c)
{
	memmove(c->bout, c->bout + c->bflight, c->boutlen - c->bflight);
	c->boutlen -= c->bflight;
	c->bflight = 0;
	if (c->boutlen)
		backend_flush(c);
	else if (c->relay_after)
		start_relay(c);
}

static void on_backend_written(struct pt_stream *s, int status)
{
	struct gw_vnc *c = vnc_of(s->data);

	if (c->conn.closing || c->state == REFUSING)
		return;
	if (status < 0) {
		refuse(c, "session host unavailable", "backend write failed");
		return;
	}
	backend_sent(c);
}

static void backend_flush(struct gw_vnc *c)
{
	int rc;

	if (c->bflight || !c->boutlen)
		return;
	c->bflight = c->boutlen;
	rc = pt_stream_write(c->conn.backend, c->bout, c->boutlen, on_backend_written);
	if (rc == PT_STREAM_DONE)
		backend_sent(c);
	else if (rc < 0)
		refuse(c, "session host unavailable", "backend write failed");
}

static void backend_send(struct gw_vnc *c, const void *p, size_t len)
{
	if (len > sizeof(c->bout) - c->boutlen) {
		refuse(c, "session host unavailable", "the backend is not reading");
		return;
	}
	memcpy(c->bout + c->boutlen, p, len);
	c->boutlen += len;
	backend_flush(c);
}

/* Client bytes that came early (SetEncodings...) go to the backend first,
 * then the relay takes over (it wants no write in flight). */
static void after_serverinit(struct gw_vnc *c)
{
	c->relay_after = 1;
	if (c->inlen) {
		size_t n = c->inlen;
		c->inlen = 0;
		backend_send(c, c->in, n);
		return;
	}
	if (!c->bflight && !c->boutlen)
		start_relay(c);
}

/* ServerInit (and anything after it) to the client, unchanged. */
static void forward_serverinit(struct gw_vnc *c)
{
	size_t len = c->binlen;

	c->binlen = 0;
	c->state = B_FORWARD;
	/* What the backend sends meanwhile is the relay's to carry. */
	pt_stream_read_stop(c->conn.backend);
	memcpy(c->out, c->bin, len);
	send_out(c, len);
}

static void process_backend(struct gw_vnc *c)
{
	for (;;) {
		switch (c->state) {
		case B_VERSION: {
			if (c->binlen < PT_RFB_VERSION_LEN)
				return;
			int minor = pt_rfb_version_minor(c->bin);
			if (minor < 7) {
				refuse(c, "session host unavailable",
				       "the backend does not speak RFB 3.7 or 3.8");
				return;
			}
			memmove(c->bin, c->bin + 12, c->binlen -= 12);
			backend_send(c, "RFB 003.008\n", 12);
			c->state = B_TYPES;
			break;
		}
		case B_TYPES: {
			if (c->binlen < 1 || c->binlen < 1u + (uint8_t)c->bin[0])
				return;
			int n = (uint8_t)c->bin[0], vnc = 0, none = 0;
			if (n == 0) {
				refuse(c, "session host unavailable", "the backend refused us");
				return;
			}
			for (int i = 1; i <= n; i++) {
				vnc |= c->bin[i] == PT_RFB_SEC_VNC;
				none |= c->bin[i] == PT_RFB_SEC_NONE;
			}
			memmove(c->bin, c->bin + 1 + n, c->binlen -= 1u + (size_t)n);
			uint8_t pick = c->secret[0] && vnc ? PT_RFB_SEC_VNC
				       : none		   ? PT_RFB_SEC_NONE
							   : 0;
			if (!pick) {
				refuse(c, "session host unavailable",
				       "the backend offers no security type we can use");
				return;
			}
			backend_send(c, &pick, 1);
			c->state = pick == PT_RFB_SEC_VNC ? B_CHALLENGE : B_RESULT;
			break;
		}
		case B_CHALLENGE: {
			uint8_t resp[16];
			if (c->binlen < 16)
				return;
			if (pt_rfb_vnc_response(c->secret, (uint8_t *)c->bin, resp)) {
				refuse(c, "session host unavailable", "DES failed");
				return;
			}
			memmove(c->bin, c->bin + 16, c->binlen -= 16);
			backend_send(c, resp, 16);
			c->state = B_RESULT;
			break;
		}
		case B_RESULT: {
			if (c->binlen < 4)
				return;
			if (pt_rfb_u32(c->bin) != 0) {
				refuse(c, "session host unavailable",
				       "the backend refused the session secret");
				return;
			}
			memmove(c->bin, c->bin + 4, c->binlen -= 4);
			/* The backend took us: now the client may go on. */
			gw_conn_release(&c->conn);
			c->state = C_CLIENTINIT;
			pt_rfb_put_u32(c->out, 0);
			send_out(c, 4);
			if (c->state == C_CLIENTINIT &&
			    pt_stream_read_start(c->conn.client, on_client_read) < 0)
				conn_close(c, "read failed");
			process(c);
			return;
		}
		case B_SERVERINIT: {
			if (c->binlen < 24)
				return;
			uint32_t namelen = pt_rfb_u32(c->bin + 20);
			if (namelen > NAME_MAX_RFB) {
				conn_close(c, "the backend's desktop name is too long");
				return;
			}
			if (c->binlen < 24 + namelen)
				return;
			forward_serverinit(c);
			return;
		}
		default:
			return;
		}
	}
}

/* --- the client ------------------------------------------------------------------- */

static void on_client_read(struct pt_stream *s, ssize_t n, char *chunk)
{
	struct gw_vnc *c = vnc_of(s->data);
	size_t off = 0;

	if (n <= 0) {
		const char *why = NULL;
		char msg[160];
		if (c->ws && n == UV_EPROTO && (pt_ws_stream_sent_close(s, &why), why)) {
			snprintf(msg, sizeof(msg), "WebSocket: %s", why);
			conn_close(c, msg);
			return;
		}
		conn_close(c, n == UV_EOF ? "the client left during the handshake"
					  : "client read failed");
		return;
	}
	/* A piece at a time: what the handshake consumes makes room, and a
	 * refusal (an oversized user name) is decided before the rest is
	 * looked at. */
	while (off < (size_t)n && c->state < REFUSING && !c->conn.closing) {
		size_t k = (size_t)n - off;
		if (k > sizeof(c->in) - c->inlen)
			k = sizeof(c->in) - c->inlen;
		if (k == 0) {
			conn_close(c, "the client sent too much during the handshake");
			break;
		}
		memcpy(c->in + c->inlen, chunk + off, k);
		c->inlen += k;
		off += k;
		process(c);
		/* TLS has the socket now: the rest is its ClientHello. */
		if (c->state == C_TLS && !c->tls_after && off < (size_t)n) {
			tls_feed(c, chunk + off, (size_t)n - off);
			break;
		}
	}
	pt_chunk_put(chunk);
}

static void consume(struct gw_vnc *c, size_t n)
{
	memmove(c->in, c->in + n, c->inlen - n);
	c->inlen -= n;
}

static void process(struct gw_vnc *c)
{
	for (;;) {
		if (c->writing)
			return; /* one step at a time */
		switch (c->state) {
		case C_VERSION: {
			static const char reason[] =
				"RFB 3.3 is not supported: use a viewer with RFB 3.7 or 3.8 and "
				"VeNCrypt";
			if (c->inlen < PT_RFB_VERSION_LEN)
				return;
			c->minor = pt_rfb_version_minor(c->in);
			if (c->minor < 0) {
				conn_close(c, "not an RFB client");
				return;
			}
			consume(c, PT_RFB_VERSION_LEN);
			if (c->minor < 7) {
				/* 3.3: the server picks; 0 and a reason refuse. */
				pt_rfb_put_u32(c->out, 0);
				pt_rfb_put_u32(c->out + 4, sizeof(reason) - 1);
				memcpy(c->out + 8, reason, sizeof(reason) - 1);
				c->close_after = 1;
				c->state = REFUSING;
				pt_log(PT_LOG_INFO, c->conn.id, "vnc %s: refused an RFB 3.3 client",
				       c->conn.peer);
				send_out(c, 8 + sizeof(reason) - 1);
				return;
			}
			c->state = C_SECTYPE;
			/* One type: VeNCrypt; in a browser's WebSocket, None (its
			 * TLS and its ticket are the authentication). */
			send_bytes(c, c->ws ? "\001\001" : "\001\023", 2);
			break;
		}
		case C_SECTYPE:
			if (c->inlen < 1)
				return;
			if (c->ws) {
				if ((uint8_t)c->in[0] != PT_RFB_SEC_NONE) {
					consume(c, 1);
					refuse(c, "only security type None is offered here",
					       "the browser chose another security type");
					return;
				}
				consume(c, 1);
				authorize(c, "ticket", c->ticket);
				explicit_bzero(c->ticket, sizeof(c->ticket));
				return;
			}
			if ((uint8_t)c->in[0] != PT_RFB_SEC_VENCRYPT) {
				consume(c, 1);
				refuse(c, "only VeNCrypt (TLS) is offered",
				       "the client chose another security type");
				return;
			}
			consume(c, 1);
			c->state = C_VENC_VER;
			send_bytes(c, "\000\002", 2);
			break;
		case C_VENC_VER: {
			uint8_t sub[1 + 1 + 8];
			size_t n = 0;
			if (c->inlen < 2)
				return;
			if (c->in[0] != 0 || c->in[1] != 2) {
				c->close_after = 1;
				c->state = REFUSING;
				pt_log(PT_LOG_INFO, c->conn.id, "vnc %s: VeNCrypt %d.%d refused",
				       c->conn.peer, c->in[0], c->in[1]);
				send_bytes(c, "\377", 1);
				return;
			}
			consume(c, 2);
			sub[n++] = 0; /* version accepted */
			sub[n++] = c->conn.g->anon ? 2 : 1;
			pt_rfb_put_u32(sub + n, PT_VENCRYPT_X509PLAIN);
			n += 4;
			if (c->conn.g->anon) {
				pt_rfb_put_u32(sub + n, PT_VENCRYPT_TLSPLAIN);
				n += 4;
			}
			c->state = C_VENC_SUB;
			send_bytes(c, sub, n);
			break;
		}
		case C_VENC_SUB: {
			uint32_t t;
			if (c->inlen < 4)
				return;
			t = pt_rfb_u32(c->in);
			consume(c, 4);
			if (t != PT_VENCRYPT_X509PLAIN &&
			    !(t == PT_VENCRYPT_TLSPLAIN && c->conn.g->anon)) {
				c->close_after = 1;
				c->state = REFUSING;
				pt_log(PT_LOG_INFO, c->conn.id, "vnc %s: VeNCrypt subtype %u refused",
				       c->conn.peer, t);
				send_bytes(c, "\000", 1);
				return;
			}
			c->anon = t == PT_VENCRYPT_TLSPLAIN;
			c->tls_after = 1;
			c->state = C_TLS;
			send_bytes(c, "\001", 1);
			return;
		}
		case C_PLAIN: {
			char user[USER_MAX + 1], pass[PASSWORD_MAX + 1];
			if (c->inlen < 8)
				return;
			c->ulen = pt_rfb_u32(c->in);
			c->plen = pt_rfb_u32(c->in + 4);
			if (c->ulen == 0 || c->ulen > USER_MAX || c->plen > PASSWORD_MAX) {
				refuse(c, "login failed",
				       "user name or password too long or empty");
				return;
			}
			if (c->inlen < 8 + c->ulen + c->plen)
				return;
			memcpy(user, c->in + 8, c->ulen);
			user[c->ulen] = '\0';
			memcpy(pass, c->in + 8 + c->ulen, c->plen);
			pass[c->plen] = '\0';
			consume(c, 8 + c->ulen + c->plen);
			explicit_bzero(c->in + c->inlen, sizeof(c->in) - c->inlen);
			if (strlen(user) != c->ulen || strlen(pass) != c->plen) {
				explicit_bzero(pass, sizeof(pass));
				refuse(c, "login failed", "NUL in the user name or password");
				return;
			}
			authorize(c, user, pass);
			explicit_bzero(pass, sizeof(pass));
			return;
		}
		case C_CLIENTINIT: {
			static const uint8_t shared = 1;
			if (c->inlen < 1)
				return;
			/* Always shared: a TigerVNC viewer's exclusive request must
			 * not drop the user's other viewers. */
			consume(c, 1);
			pt_stream_read_stop(c->conn.client);
			backend_send(c, &shared, 1);
			c->state = B_SERVERINIT;
			process_backend(c);
			return;
		}
		default:
			return;
		}
	}
}

/* --- starting ------------------------------------------------------------------------ */

int gw_vnc_enter(struct gw_conn *k, enum gw_vnc_at at, const char *secret)
{
	struct gw_vnc *c = vnc_of(k);

	switch (at) {
	case GW_VNC_AT_START:
		c->state = C_VERSION;
		send_bytes(c, "RFB 003.008\n", 12);
		break;
	case GW_VNC_AT_PLAIN:
		c->minor = 8;
		c->state = C_PLAIN;
		break;
	case GW_VNC_AT_WS:
		if (!secret || strlen(secret) >= sizeof(c->ticket))
			return -EINVAL;
		c->ws = 1;
		k->client_ws = 1;
		snprintf(c->ticket, sizeof(c->ticket), "%s", secret);
		c->state = C_VERSION;
		send_bytes(c, "RFB 003.008\n", 12);
		break;
	case GW_VNC_AT_BACKEND:
		if (!k->backend || !secret || strlen(secret) >= sizeof(c->secret))
			return -EINVAL;
		c->minor = 8;
		snprintf(c->secret, sizeof(c->secret), "%s", secret);
		c->state = B_VERSION;
		k->backend->data = k;
		k->backend->id = k->id;
		if (pt_stream_read_start(k->backend, on_backend_read) < 0)
			conn_close(c, "backend read failed");
		return 0;
	}
	if (!k->closing && pt_stream_read_start(k->client, on_client_read) < 0)
		conn_close(c, "read failed");
	return 0;
}

static void vnc_start(struct gw_conn *k)
{
	gw_vnc_enter(k, GW_VNC_AT_START, NULL);
}

const struct gw_conn_proto gw_vnc_proto = {
	.name = "vnc",
	.size = sizeof(struct gw_vnc),
	.start = vnc_start,
	.closed = vnc_closed,
};

int gw_vnc_listen(struct gw *g)
{
	int rc = gw_conn_listen(g, &g->vnc, g->conf->gateway.vnc_listen, &gw_vnc_proto);

	if (rc < 0)
		return rc;
	pt_log_info("VNC on %s (VeNCrypt X509Plain%s)", g->conf->gateway.vnc_listen,
		    g->anon ? ", TLSPlain" : "");
	return 0;
}
