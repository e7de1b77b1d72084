/*
 * rdg.h - the RD Gateway protocol core (MS-TSGU, HTTP transport): the
 * packets that travel inside the tunnel and the server's state machine.
 * No I/O, no libuv, no OpenSSL, no allocation: the glue (the HTTPS front)
 * feeds it the bytes of the client's RDG_IN_DATA body (legacy transport,
 * chunked coding removed) or of its WebSocket binary frames (payloads
 * joined as one byte stream), and writes what it is given to the
 * RDG_OUT_DATA response (after the 200 and the 10-byte seed) or in binary
 * frames.  What each client sends, and why the answers look as they do,
 * is in docs/rdg.md.
 *
 * Every packet starts with an 8-byte header, little endian:
 *
 *   type u16 | reserved u16 | packetLength u32 (header included)
 *
 * A tunnel goes, in this order and no other:
 *
 *   client                          server (this core)
 *   HANDSHAKE_REQUEST        ->     <- HANDSHAKE_RESPONSE
 *   TUNNEL_CREATE (PAA cookie) ->   ops->authenticate(cookie) ... the glue
 *                                   redeems it, then gw_rdg_tun_authenticated()
 *                                   <- TUNNEL_RESPONSE
 *   TUNNEL_AUTH (client name) ->    <- TUNNEL_AUTH_RESPONSE
 *   CHANNEL_CREATE (host,port) ->   ops->open(host, port) ... the glue checks
 *                                   it is the ticket's backend and connects,
 *                                   then gw_rdg_tun_opened()
 *                                   <- CHANNEL_RESPONSE
 *   DATA, KEEPALIVE          <->    ops->data() / gw_rdg_tun_send_data(),
 *                                   gw_rdg_tun_keepalive()
 *   CLOSE_CHANNEL            <->    CLOSE_CHANNEL_RESPONSE
 *
 * Anything else (a packet out of order, a length that lies, a string that
 * is not UTF-16, a second TUNNEL_CREATE, DATA before the channel) ends the
 * tunnel: a request is answered with its response carrying an E_PROXY_*
 * error, a violation in the data phase with CLOSE_CHANNEL, and the glue
 * closes the connections once what was sent is written.
 */
#ifndef GATEWAY_RDG_H
#define GATEWAY_RDG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Packet types (MS-TSGU 2.2.5.3.3 HTTP_PACKET_TYPE). */
#define GW_RDG_HANDSHAKE_REQUEST      0x01
#define GW_RDG_HANDSHAKE_RESPONSE     0x02
#define GW_RDG_EXTENDED_AUTH_MSG      0x03
#define GW_RDG_TUNNEL_CREATE	      0x04
#define GW_RDG_TUNNEL_RESPONSE	      0x05
#define GW_RDG_TUNNEL_AUTH	      0x06
#define GW_RDG_TUNNEL_AUTH_RESPONSE   0x07
#define GW_RDG_CHANNEL_CREATE	      0x08
#define GW_RDG_CHANNEL_RESPONSE	      0x09
#define GW_RDG_DATA		      0x0a
#define GW_RDG_SERVICE_MESSAGE	      0x0b
#define GW_RDG_REAUTH_MESSAGE	      0x0c
#define GW_RDG_KEEPALIVE	      0x0d
#define GW_RDG_CLOSE_CHANNEL	      0x10
#define GW_RDG_CLOSE_CHANNEL_RESPONSE 0x11

/* Flags and fields (MS-TSGU 2.2.5.3). */
#define GW_RDG_EXT_AUTH_NONE	  0x0000
#define GW_RDG_EXT_AUTH_SC	  0x0001
#define GW_RDG_EXT_AUTH_PAA	  0x0002
#define GW_RDG_EXT_AUTH_SSPI_NTLM 0x0004
#define GW_RDG_CAP_QUAR_SOH	  0x01
#define GW_RDG_CAP_IDLE_TIMEOUT	  0x02
#define GW_RDG_CAP_CONSENT_SIGN	  0x04
#define GW_RDG_CAP_SERVICE_MSG	  0x08
#define GW_RDG_CAP_REAUTH	  0x10
#define GW_RDG_CAP_UDP_TRANSPORT  0x20
#define GW_RDG_TUNNEL_PAA_COOKIE  0x01 /* HTTP_TUNNEL_PACKET fieldsPresent */
#define GW_RDG_TUNNEL_REAUTH	  0x02
#define GW_RDG_TUNNEL_AUTH_SOH	  0x01 /* HTTP_TUNNEL_AUTH_PACKET fieldsPresent */
#define GW_RDG_TRESP_TUNNEL_ID	  0x01 /* HTTP_TUNNEL_RESPONSE fieldsPresent */
#define GW_RDG_TRESP_CAPS	  0x02
#define GW_RDG_ARESP_REDIR_FLAGS  0x01 /* HTTP_TUNNEL_AUTH_RESPONSE fieldsPresent */
#define GW_RDG_ARESP_IDLE_TIMEOUT 0x02
#define GW_RDG_CRESP_CHANNEL_ID	  0x01 /* HTTP_CHANNEL_RESPONSE fieldsPresent */
#define GW_RDG_REDIR_ENABLE_ALL	  0x80000000u
#define GW_RDG_REDIR_DISABLE_ALL  0x40000000u
#define GW_RDG_PROTOCOL_RDP	  3 /* CHANNEL_CREATE protocol: the only one */

/*
 * Status codes (MS-TSGU 2.2.6), spelt as in the specification because the
 * clients print these very names (xfreerdp: "Tunnel creation error
 * E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED").  A client treats a code
 * as a failure only when its top bit is set (HRESULT FAILED()): FreeRDP
 * 2.11 takes E_PROXY_NOTSUPPORTED (0x59E8) in a response for success and
 * goes on.  This core therefore sends every non-zero code it is handed in
 * its HRESULT form, GW_RDG_HRESULT(code), which FreeRDP prints under the
 * same name.
 */
#define E_PROXY_INTERNALERROR			    0x800759D8u
#define E_PROXY_RAP_ACCESSDENIED		    0x800759DAu
#define E_PROXY_NAP_ACCESSDENIED		    0x800759DBu
#define E_PROXY_TS_CONNECTFAILED		    0x800759DDu
#define E_PROXY_ALREADYDISCONNECTED		    0x800759DFu
#define E_PROXY_CAPABILITYMISMATCH		    0x800759E9u
#define E_PROXY_QUARANTINE_ACCESSDENIED		    0x800759EDu
#define E_PROXY_NOCERTAVAILABLE			    0x800759EEu
#define E_PROXY_COOKIE_BADPACKET		    0x800759F7u
#define E_PROXY_COOKIE_AUTHENTICATION_ACCESS_DENIED 0x800759F8u
#define E_PROXY_UNSUPPORTED_AUTHENTICATION_METHOD   0x800759F9u
#define E_PROXY_MAXCONNECTIONSREACHED		    0x000059E6u
#define E_PROXY_NOTSUPPORTED			    0x000059E8u
#define E_PROXY_SESSIONTIMEOUT			    0x000059F6u
#define E_PROXY_CONNECTIONABORTED		    0x000004D4u
#define GW_RDG_HRESULT(code)			    ((code)&0x80000000u ? (code) : 0x80070000u | ((code)&0xffffu))

/* The name of a status code for log lines ("E_PROXY_RAP_ACCESSDENIED";
 * the HRESULT form of a code has the name of the code), or "unknown". */
const char *gw_rdg_status_name(uint32_t code);

/* Sizes.  A packet's length is checked against its type's range before a
 * byte of its body is kept; a control packet is kept whole (at most
 * GW_RDG_CTRL_MAX), DATA payload is handed on as it arrives. */
#define GW_RDG_HDR_LEN	    8
#define GW_RDG_DATA_HDR_LEN 10	  /* header and cbDataLen */
#define GW_RDG_DATA_MAX	    65535 /* payload of one DATA packet (cbDataLen is u16) */
#define GW_RDG_CTRL_MAX	    4096  /* any other packet, header included */
#define GW_RDG_COOKIE_MAX   1024  /* bytes of a PAA cookie, as UTF-8 */
#define GW_RDG_HOST_MAX	    255	  /* bytes of a target host name, as UTF-8 */
#define GW_RDG_NAME_MAX	    255	  /* bytes of a client name, as UTF-8 */
#define GW_RDG_MESSAGE_MAX  1024  /* bytes of a service message, as UTF-8 */

/* --- the packet reader -------------------------------------------------- */

/* What gw_rdg_read found. */
enum gw_rdg_item_kind {
	GW_RDG_ITEM_NONE = 0, /* everything given was taken; nothing complete yet */
	GW_RDG_ITEM_PACKET,   /* a whole packet other than DATA: type, body */
	GW_RDG_ITEM_DATA,     /* DATA payload bytes (a packet's payload may come in slices) */
};

struct gw_rdg_item {
	enum gw_rdg_item_kind kind;
	uint16_t type;	  /* PACKET: the packet's type; DATA: GW_RDG_DATA */
	const uint8_t *p; /* PACKET: the body after the header, in the reader (valid
			   * until the next gw_rdg_read); DATA: payload, in the input */
	size_t n;
	int last; /* DATA: this slice ends its packet */
};

/* An incremental reader of packets from a byte stream cut anywhere.
 * Zero it (or gw_rdg_reader_init) before the first byte. */
struct gw_rdg_reader {
	uint8_t hdr[GW_RDG_DATA_HDR_LEN];
	uint8_t body[GW_RDG_CTRL_MAX - GW_RDG_HDR_LEN];
	size_t got;    /* bytes of the current packet taken, header included */
	uint16_t type; /* the current packet's, once its header is complete */
	uint32_t len;  /* its packetLength */
	int done;      /* the last call completed a packet */
	int failed;    /* a violation: every later call fails */
	char why[96];  /* what the violation was, for the log */
};

void gw_rdg_reader_init(struct gw_rdg_reader *r);

/* Take bytes from in[0..len) until one item is complete or the input is
 * used up.  Returns how many bytes were taken (the caller calls again with
 * the rest) with *it filled, or -EPROTO when the stream is not RDG packets
 * (a type that does not exist, a packetLength below 8 or outside its type's
 * range, a DATA packet whose cbDataLen disagrees with its packetLength);
 * r->why says which, and r->type is the offending packet's type once its
 * header was read (else 0).  An item is always returned with at least one
 * byte taken, so `while (len > 0)` around it terminates. */
ssize_t gw_rdg_read(struct gw_rdg_reader *r, const uint8_t *in, size_t len, struct gw_rdg_item *it);

/* --- parsers: one whole packet body (after the 8-byte header) ------------ */

/* Each returns 0, or -EPROTO when the body is malformed (a field or string
 * running past the end, bytes left over, a count that cannot fit), or
 * -EILSEQ when a string is not valid UTF-16LE (odd length, a lone
 * surrogate, a NUL before its end, a control character), or -ENAMETOOLONG
 * when it is longer than its limit.  Strings come out as NUL-terminated
 * UTF-8; the terminating NUL that clients count in the length is dropped. */

struct gw_rdg_handshake {
	uint8_t major, minor;
	uint16_t client_version;
	uint16_t ext_auth; /* GW_RDG_EXT_AUTH_* */
};
int gw_rdg_parse_handshake(const uint8_t *b, size_t n, struct gw_rdg_handshake *h);

struct gw_rdg_tunnel_create {
	uint32_t caps;
	uint16_t fields;
	int has_reauth;
	uint64_t reauth_context;
	int has_cookie; /* a PAA cookie field was present (it may be empty) */
	char cookie[GW_RDG_COOKIE_MAX + 1];
};
int gw_rdg_parse_tunnel_create(const uint8_t *b, size_t n, struct gw_rdg_tunnel_create *t);

struct gw_rdg_tunnel_auth {
	uint16_t fields;
	char client_name[GW_RDG_NAME_MAX + 1];
};
int gw_rdg_parse_tunnel_auth(const uint8_t *b, size_t n, struct gw_rdg_tunnel_auth *a);

/* The first resource is the target; alternative resources are checked and
 * dropped (no client sends any).  At least one resource. */
struct gw_rdg_channel_create {
	uint8_t resources, alternatives;
	uint16_t port;
	uint16_t protocol;
	char host[GW_RDG_HOST_MAX + 1];
};
int gw_rdg_parse_channel_create(const uint8_t *b, size_t n, struct gw_rdg_channel_create *c);

/* CLOSE_CHANNEL and CLOSE_CHANNEL_RESPONSE: a status code. */
int gw_rdg_parse_close(const uint8_t *b, size_t n, uint32_t *status);

/* --- builders: whole packets into out, which has room for the maximum ---- */

#define GW_RDG_HANDSHAKE_RESPONSE_LEN 18
#define GW_RDG_TUNNEL_RESPONSE_MAX    26
#define GW_RDG_AUTH_RESPONSE_MAX      24
#define GW_RDG_CHANNEL_RESPONSE_MAX   20
#define GW_RDG_KEEPALIVE_LEN	      8
#define GW_RDG_CLOSE_LEN	      12
#define GW_RDG_SERVICE_MESSAGE_MAX    (GW_RDG_HDR_LEN + 2 + 2 * (GW_RDG_MESSAGE_MAX + 1))

/* Each returns the packet's length.  A response with status 0 carries the
 * optional fields clients look for (mstsc wants the channel id); one with
 * an error carries none (no client reads them then). */
size_t gw_rdg_build_handshake_response(uint8_t *out, uint32_t status, uint16_t ext_auth);
/* tunnel_id and caps (GW_RDG_CAP_*) are sent only with status 0. */
size_t gw_rdg_build_tunnel_response(uint8_t *out, uint32_t status, uint32_t tunnel_id,
				    uint32_t caps);
/* redir_flags (GW_RDG_REDIR_*) and idle_minutes (0: none) only with status 0. */
size_t gw_rdg_build_auth_response(uint8_t *out, uint32_t status, uint32_t redir_flags,
				  uint32_t idle_minutes);
size_t gw_rdg_build_channel_response(uint8_t *out, uint32_t status, uint32_t channel_id);
size_t gw_rdg_build_keepalive(uint8_t *out);
size_t gw_rdg_build_close(uint8_t *out, uint32_t status);
size_t gw_rdg_build_close_response(uint8_t *out, uint32_t status);
/* A service message (the client shows it: xfreerdp prints "Service
 * message:" and the text).  -EILSEQ when text is not UTF-8 without control
 * characters other than newline, -ENAMETOOLONG past GW_RDG_MESSAGE_MAX. */
ssize_t gw_rdg_build_service_message(uint8_t *out, const char *text);
/* The 10 bytes that go before n (1..GW_RDG_DATA_MAX) bytes of payload. */
void gw_rdg_data_header(uint8_t hdr[GW_RDG_DATA_HDR_LEN], size_t n);

/* --- the server's state machine ----------------------------------------- */

enum gw_rdg_state {
	GW_RDG_S_HANDSHAKE,    /* waiting for HANDSHAKE_REQUEST */
	GW_RDG_S_TUNNEL,       /* waiting for TUNNEL_CREATE */
	GW_RDG_S_AUTHENTICATE, /* ops->authenticate called: waiting for the glue */
	GW_RDG_S_TUNNEL_AUTH,  /* waiting for TUNNEL_AUTH */
	GW_RDG_S_CHANNEL,      /* waiting for CHANNEL_CREATE */
	GW_RDG_S_OPENING,      /* ops->open called: waiting for the glue */
	GW_RDG_S_OPEN,	       /* data both ways */
	GW_RDG_S_CLOSING,      /* CLOSE_CHANNEL sent: waiting for its response */
	GW_RDG_S_ENDED,	       /* over: the glue closes once what was sent is written */
};

struct gw_rdg_tun;

/*
 * What the core asks of the glue.  Callbacks run inside the call that
 * caused them (gw_rdg_tun_feed and the others); they may call back into
 * the core (answer at once), but must not free the tunnel.
 */
struct gw_rdg_ops {
	/* Bytes for the client, in order: a whole packet, or (DATA from
	 * gw_rdg_tun_send_data) its header then its payload.  Copy or write
	 * them before returning.  0, or a negative errno, which ends the
	 * tunnel (nothing more is sent). */
	int (*send)(struct gw_rdg_tun *t, const uint8_t *p, size_t n);
	/* TUNNEL_CREATE arrived with this PAA cookie (UTF-8, 1..
	 * GW_RDG_COOKIE_MAX bytes), or with none (cookie NULL: an NTLM or
	 * smart card client).  The glue answers with gw_rdg_tun_authenticated,
	 * now or later (redeeming a ticket is a call to the broker). */
	void (*authenticate)(struct gw_rdg_tun *t, const char *cookie);
	/* CHANNEL_CREATE asks for host (UTF-8, as the client wrote it: a name
	 * or an address, any case) and port.  The glue compares them with
	 * the backend the cookie was issued for, connects, and answers with
	 * gw_rdg_tun_opened.  Never called for a tunnel refused with a
	 * message. */
	void (*open)(struct gw_rdg_tun *t, const char *host, uint16_t port);
	/* Payload for the backend: a slice of what was fed.  Copy or write it
	 * before returning.  0, or a negative errno, which ends the tunnel. */
	int (*data)(struct gw_rdg_tun *t, const uint8_t *p, size_t n);
};

/*
 * One tunnel: the RDG conversation of one client (the pair of legacy
 * connections, or the one WebSocket).  Embedded in the glue's struct;
 * nothing inside is allocated.  The glue may read state, status, why,
 * client_name and the counters; it sets tunnel_id, redir_flags and
 * idle_minutes (if not the defaults) before the first feed.
 */
struct gw_rdg_tun {
	const struct gw_rdg_ops *ops;
	void *data; /* the glue's */
	enum gw_rdg_state state;
	uint32_t tunnel_id;    /* TUNNEL_RESPONSE's tunnelId (default 1) */
	uint32_t redir_flags;  /* device redirection (default GW_RDG_REDIR_ENABLE_ALL) */
	uint32_t idle_minutes; /* idle timeout the client is told (default 0: none) */
	uint16_t ext_auth;     /* what the client's handshake offered */
	uint32_t client_caps;  /* and its TUNNEL_CREATE */
	char client_name[GW_RDG_NAME_MAX + 1];
	/* Why it ended: 0 for an orderly close, else the E_PROXY_* code that
	 * was sent or received, or E_PROXY_INTERNALERROR for a violation
	 * answered with nothing (why says what). */
	uint32_t status;
	char why[128];
	uint64_t bytes_in, bytes_out; /* DATA payload, client->backend, backend->client */
	/* A refusal told by a service message (gw_rdg_tun_authenticated with a
	 * message): the tunnel plays along until the channel, then says it. */
	uint32_t refuse_status;
	char refuse_message[GW_RDG_MESSAGE_MAX + 1];
	struct gw_rdg_reader rd;
};

/* A tunnel waiting for its handshake. */
void gw_rdg_tun_init(struct gw_rdg_tun *t, const struct gw_rdg_ops *ops, void *data);

/* Bytes from the client, cut anywhere.  0 (the tunnel goes on, or ended
 * in order: see state), or a negative errno when it ended on a violation
 * (-EPROTO; what was owed the client has been sent) or on a failure of a
 * callback (its code).  -EPIPE once the tunnel has ended: feed no more. */
int gw_rdg_tun_feed(struct gw_rdg_tun *t, const uint8_t *p, size_t n);

/*
 * The glue's answer to ops->authenticate.
 *   status 0:                  the tunnel is created (TUNNEL_RESPONSE ok).
 *   status != 0, message NULL: TUNNEL_RESPONSE carries the error; ended.
 *   status != 0, message:      the tunnel answers ok up to the channel, then
 *                              sends the message (SERVICE_MESSAGE) and
 *                              CLOSE_CHANNEL(status): the only way to put a
 *                              sentence in front of an xfreerdp or mstsc
 *                              user.  ops->open is never called, DATA is
 *                              dropped; nothing reaches any backend.
 * 0, -EINVAL when the tunnel is not waiting for this answer (it ended in
 * the meantime: nothing happens), -EILSEQ/-ENAMETOOLONG for a message that
 * gw_rdg_build_service_message refuses (the tunnel then answers status
 * without it), or a send failure.
 */
int gw_rdg_tun_authenticated(struct gw_rdg_tun *t, uint32_t status, const char *message);

/* The glue's answer to ops->open: 0 opens the channel (CHANNEL_RESPONSE
 * ok, channel id 1), else CHANNEL_RESPONSE carries the error
 * (E_PROXY_RAP_ACCESSDENIED: not the ticket's backend;
 * E_PROXY_TS_CONNECTFAILED: the backend does not answer) and the tunnel
 * ends.  -EINVAL when not waiting for it. */
int gw_rdg_tun_opened(struct gw_rdg_tun *t, uint32_t status);

/* Backend bytes for the client, as DATA packets of at most GW_RDG_DATA_MAX
 * bytes each.  -ENOTCONN unless the channel is open (data while closing is
 * dropped: 0). */
int gw_rdg_tun_send_data(struct gw_rdg_tun *t, const uint8_t *p, size_t n);

/* A KEEPALIVE to the client (the glue's timer; the client answers with
 * one, which the core takes and does not answer).  -ENOTCONN before the
 * handshake was answered or after the end. */
int gw_rdg_tun_keepalive(struct gw_rdg_tun *t);

/* The gateway ends the tunnel (backend gone: status 0; shutting down:
 * E_PROXY_ALREADYDISCONNECTED; idle: E_PROXY_SESSIONTIMEOUT).  With the
 * channel open it sends CLOSE_CHANNEL and waits for the response (the glue
 * closes anyway after a short time: FreeRDP answers, then carries on);
 * while waiting for the glue it answers the pending request with status
 * (E_PROXY_INTERNALERROR if 0); otherwise it just ends. */
int gw_rdg_tun_close(struct gw_rdg_tun *t, uint32_t status);

/* The tunnel is over: close the connections once the output is written. */
static inline int gw_rdg_tun_done(const struct gw_rdg_tun *t)
{
	return t->state == GW_RDG_S_ENDED;
}

#endif
