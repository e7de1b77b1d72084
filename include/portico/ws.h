/*
 * ws.h - WebSocket (RFC 6455): the handshake's key, a frame codec without
 * I/O, and a pt_stream that carries bytes in binary frames over another
 * pt_stream (noVNC's /ws/vnc and RD Gateway's WebSocket transport).
 *
 * Written here by hand: no WebSocket library is among the Debian packages
 * Portico builds with.  No extension is ever negotiated (RSV bits are 0)
 * and no subprotocol is required.
 */
#ifndef PORTICO_WS_H
#define PORTICO_WS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "portico/stream.h"

/* Opcodes (RFC 6455 5.2). */
#define PT_WS_OP_CONT	0x0
#define PT_WS_OP_TEXT	0x1
#define PT_WS_OP_BINARY 0x2
#define PT_WS_OP_CLOSE	0x8
#define PT_WS_OP_PING	0x9
#define PT_WS_OP_PONG	0xA

/* Close codes (RFC 6455 7.4.1) this code sends or reports. */
#define PT_WS_CLOSE_NORMAL	1000
#define PT_WS_CLOSE_GOING_AWAY	1001
#define PT_WS_CLOSE_PROTOCOL	1002
#define PT_WS_CLOSE_UNSUPPORTED 1003
#define PT_WS_CLOSE_NO_STATUS	1005 /* reported only: a close frame without a code */
#define PT_WS_CLOSE_ABNORMAL	1006 /* reported only: the connection ended without one */
#define PT_WS_CLOSE_BAD_DATA	1007
#define PT_WS_CLOSE_POLICY	1008
#define PT_WS_CLOSE_TOO_BIG	1009
#define PT_WS_CLOSE_INTERNAL	1011

/* The longest control frame payload, and a close frame's longest reason. */
#define PT_WS_CONTROL_MAX 125
#define PT_WS_REASON_MAX  123

/* --- handshake ------------------------------------------------------------ */

/* The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key: base64 of
 * SHA-1(key + the RFC's GUID), 28 characters and a NUL.  -EINVAL unless key
 * is exactly the base64 text of 16 bytes (24 characters ending in "==", no
 * spaces: the HTTP reader has trimmed them). */
int pt_ws_accept(const char *key, char out[29]);

/* The same for any key of 1 to PT_WS_TOKEN_KEY_MAX printable ASCII
 * characters: FreeRDP 2.11's RD Gateway client sends 15 characters of
 * "@A-Z[\\]^_" (docs/rdg.md) and checks the answer to exactly those.  For
 * that path only; browsers get pt_ws_accept.  -EINVAL otherwise. */
#define PT_WS_TOKEN_KEY_MAX 64
int pt_ws_accept_token(const char *key, char out[29]);

/* A fresh Sec-WebSocket-Key (16 random bytes in base64, 24 characters and a
 * NUL) for a client.  0 or -EIO when there is no randomness. */
int pt_ws_make_key(char out[25]);

/* True when out is the accept value for key (a client checks the server). */
int pt_ws_accept_matches(const char *key, const char *accept);

/* --- frame codec ---------------------------------------------------------- */

/* Write a frame header: FIN when fin, the opcode, the payload length in the
 * fewest bytes, and the masking key when mask is not NULL (a client's
 * frames).  Returns its length (2 to 14) or -EINVAL for an opcode that is
 * not one of the six, a length with the top bit set, or a control frame
 * that is fragmented or longer than PT_WS_CONTROL_MAX. */
int pt_ws_frame_header(uint8_t hdr[14], int opcode, int fin, uint64_t len,
		       const uint8_t *mask_or_NULL);

/* A close frame's payload: code (one an endpoint may send: 1000-1003,
 * 1007-1014, 3000-4999) and reason (NULL, or at most PT_WS_REASON_MAX bytes
 * of UTF-8).  Returns its length or -EINVAL. */
int pt_ws_close_payload(uint8_t out[PT_WS_CONTROL_MAX], uint16_t code, const char *reason);

/* XOR len bytes of src into dst with a masking key, src being the payload
 * from offset pos on (masking and unmasking are the same).  dst may be src,
 * or lie before it in the same buffer. */
void pt_ws_mask(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4], uint64_t pos);

enum pt_ws_event_type {
	PT_WS_EV_NONE,	/* nothing yet: feed more bytes */
	PT_WS_EV_DATA,	/* payload bytes of a text or binary message */
	PT_WS_EV_PING,	/* a whole ping (answer with a pong of the same payload) */
	PT_WS_EV_PONG,	/* a whole pong */
	PT_WS_EV_CLOSE, /* a whole close frame: the peer sends nothing more */
};

struct pt_ws_event {
	enum pt_ws_event_type type;
	int opcode;    /* DATA: the message's, PT_WS_OP_TEXT or PT_WS_OP_BINARY */
	uint8_t *data; /* DATA: unmasked payload (see pt_ws_read's dst);
			* PING, PONG: the payload; CLOSE: the reason (valid UTF-8) */
	size_t len;    /* bytes at data (a DATA event has len 0 only when end) */
	int end;       /* DATA: these bytes end the message */
	uint16_t code; /* CLOSE: the status code, PT_WS_CLOSE_NO_STATUS if none */
};

/* An incremental frame reader.  Set it up with pt_ws_reader_init; the
 * fields under "private" are its own. */
struct pt_ws_reader {
	uint64_t max_frame;	  /* a data frame's longest payload; 0: no limit
				   * (the length is never allocated: payload is
				   * handed on as it arrives) */
	unsigned server : 1;	  /* we are the server: frames must be masked */
	unsigned binary_only : 1; /* a text message is refused (1003) */
	/* after an error: the close code to send and why, for a log line */
	uint16_t close_code;
	const char *why;
	/* private */
	int err;
	uint8_t hdr[14], hlen, hneed;
	uint8_t opcode, fin, masked, closed;
	uint8_t msg_opcode; /* the open (fragmented) data message's, or 0 */
	uint8_t mask[4];
	uint64_t left, pos; /* payload bytes still to come, and taken so far */
	uint8_t ctl[PT_WS_CONTROL_MAX];
	uint8_t ctl_len;
};

/* A reader for the server side (server != 0: client frames, masked) or the
 * client side (server frames, unmasked); no frame limit, text accepted. */
void pt_ws_reader_init(struct pt_ws_reader *r, int server);

/* Read from buf (len bytes) up to the first event.  Returns how many bytes
 * it took (all of them when the event is NONE, and at least one whenever
 * len > 0), or a negative errno once the peer broke the protocol:
 * r->close_code and r->why then say how, and every later call returns the
 * same error.  The codes: 1002 (-EPROTO) for RSV bits, an unknown opcode,
 * a frame masked the wrong way, a fragmented or oversized control frame, a
 * continuation with no message open, a new message while one is open, a
 * length with its top bit set, or a close payload of 1 byte or with a code
 * no endpoint may send; 1007 (-EILSEQ) for a close reason that is not
 * UTF-8; 1009 (-EMSGSIZE) for a data frame longer than max_frame; 1003
 * (-ENOTSUP) for text when binary_only.
 *
 * A data frame's length written in more bytes than needed is accepted:
 * RFC 6455 asks the sender for the shortest form, and what a longer one
 * says is unambiguous.  A control frame may use only the 7-bit form (its
 * payload is at most 125 bytes; a longer form is refused as too long).
 * Text is handed on as bytes, its UTF-8 unchecked (the gateway's uses are
 * binary).  After a close frame, the rest is ignored (taken, no event).
 *
 * Data payload is unmasked into dst, which may be NULL (in place: the
 * bytes stay where they are in buf) or point earlier into the same buffer
 * (the stream uses that to join the payload of several frames at the front
 * of a chunk); the event points at it.  Nothing else is copied but control
 * payload (at most 125 bytes, kept in the reader: it may arrive in
 * pieces). */
ssize_t pt_ws_read(struct pt_ws_reader *r, uint8_t *buf, size_t len, uint8_t *dst,
		   struct pt_ws_event *ev);

/* True when the reader is between frames (and not in a fragmented message):
 * an end of input here cuts nothing. */
int pt_ws_reader_idle(const struct pt_ws_reader *r);

/* --- stream --------------------------------------------------------------- */

/* WebSocket over inner, after the HTTP handshake; inner is owned from now on
 * (closed with it).  server: frames read must be masked and frames written
 * are not (the gateway); otherwise the reverse (tests, benchmarks).  pre:
 * bytes already read from inner after the HTTP request or response (at most
 * PT_CHUNK_SIZE), read before anything else.  Returns NULL on memory
 * exhaustion or a pre too long (inner is then still the caller's).
 *
 * Reading yields the payload of data messages, binary or text, joined into
 * one byte stream.  A ping is answered with a pong.  The peer's close frame
 * is answered with one carrying its code, then read gets UV_EOF (so does an
 * end of the connection without a close frame, reported as code 1006), and
 * once both close frames went the inner stream is shut down (the server
 * ends TCP first); writes then fail with UV_EPIPE.  A protocol error sends
 * a close with its code (1002, 1003, 1007, 1009), then read gets UV_EPROTO.
 *
 * Each write is one binary frame (masked with a fresh key on the client
 * side).  shutdown() sends a close frame 1000 after the write in flight,
 * and reading goes on until the peer's answer (UV_EOF).  Closing waits, 2 s
 * at most, for a close frame already queued (shutdown, an answer, an error,
 * pt_ws_stream_close_with): to send it, then to read the peer's answer, so
 * it is not lost to a reset; never for data.  The inner stream is read
 * only while the owner reads.  fileno() is -ENOTSUP. */
struct pt_stream *pt_ws_stream_new(struct pt_stream *inner, int server, const char *pre,
				   size_t prelen);

/* Limits for a stream's reader (see struct pt_ws_reader): the longest data
 * frame (0: any) and whether text is refused.  Streams start with
 * PT_WS_STREAM_MAX_FRAME and text accepted.  -EINVAL if s is not a
 * WebSocket stream. */
#define PT_WS_STREAM_MAX_FRAME (16u << 20)
int pt_ws_stream_limits(struct pt_stream *s, uint64_t max_frame, int binary_only);

/* Send a close frame with code (1000-4999, one an endpoint may send) and
 * reason (NULL or at most PT_WS_REASON_MAX bytes of UTF-8), then close the
 * stream as pt_stream_close does: the inner stream is closed once the frame
 * went out and the peer answered (or after the same wait), and cb fires once
 * the memory is released.  A close frame sent before (shutdown, the answer to the peer's)
 * is not sent again.  -EINVAL for a bad code or reason, or a stream that is
 * not a WebSocket stream or is closing; the stream is then not closed. */
int pt_ws_stream_close_with(struct pt_stream *s, uint16_t code, const char *reason,
			    pt_stream_close_cb cb);

/* Send a close frame with code and reason (as pt_ws_stream_close_with)
 * without closing the stream: whoever owns it closes it later (a relay),
 * and that close waits for the frame to go and the peer's answer as
 * pt_ws_stream_close_with's does.  0, -EALREADY when a close frame was sent
 * or queued already, -EINVAL as pt_ws_stream_close_with. */
int pt_ws_stream_queue_close(struct pt_stream *s, uint16_t code, const char *reason);

/* Send text (UTF-8, at most PT_WS_TEXT_MAX bytes) to the client as one text
 * frame, between the owner's binary frames (a server's stream only): a
 * notice beside the protocol the binary frames carry.  0 (queued; freed by
 * the stream), -EBUSY while the last one has not gone out, -EPIPE once the
 * stream is closing or failed, -EINVAL for a client's stream or too long a
 * text. */
#define PT_WS_TEXT_MAX 4096
int pt_ws_stream_send_text(struct pt_stream *s, const char *text);

/* What the peer's close frame said: 0 and its code (PT_WS_CLOSE_NO_STATUS
 * when it gave none, PT_WS_CLOSE_ABNORMAL when the connection ended
 * without one) and reason (NUL-terminated, owned by the stream), or
 * -ENOENT while none came, -EINVAL if s is not a WebSocket stream. */
int pt_ws_stream_peer_close(struct pt_stream *s, uint16_t *code, const char **reason);

/* The close code this side sent (0: none yet) and, after a protocol error,
 * what the peer did wrong (else NULL), for a log line. */
uint16_t pt_ws_stream_sent_close(struct pt_stream *s, const char **why);

#endif
