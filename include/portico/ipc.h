/*
 * ipc.h - fixed-size messages between a daemon's unprivileged network side
 * and its small root process (the PAM process of the broker).
 *
 * The transport is a socketpair(AF_UNIX, SOCK_SEQPACKET): one message is one
 * datagram.  Every message is a plain struct that starts with its type; the
 * receiver checks the datagram's size, the type and that every string is
 * NUL-terminated inside its array before it looks at anything else, and
 * treats any mismatch as a protocol violation (OpenBSD's IMSG_SIZE_CHECK):
 * the peer is compromised or broken, and the conversation ends.
 *
 * Both ends are built from this one header, so the layout needs no packing
 * or byte-order rules; it is never written to disk or to the network.
 */
#ifndef PORTICO_IPC_H
#define PORTICO_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Message types.  Not 0, so that a zeroed buffer is never a valid message. */
enum pt_ipc_type {
	PT_IPC_AUTH_REQ = 0x41510001, /* net side -> PAM process */
	PT_IPC_AUTH_REP = 0x41510002, /* PAM process -> net side */
};

/* pt_ipc_auth_rep.result */
enum pt_auth_result {
	PT_AUTH_OK = 0,	    /* authenticated and the account may log in */
	PT_AUTH_DENIED = 1, /* bad password, unknown user, account refused: one answer */
	PT_AUTH_ERROR = 2,  /* PAM itself failed (module missing, service unreadable, ...) */
};

/* Check one user name and password against PAM service `service`.  `id` is
 * the sender's and comes back unchanged in the reply.  rhost is the client's
 * address as text (PAM_RHOST). */
struct pt_ipc_auth_req {
	uint32_t type; /* PT_IPC_AUTH_REQ */
	uint32_t id;
	char service[64];
	char user[256];
	char password[512];
	char rhost[64];
};

/* The answer to request `id`.  user is the name PAM settled on (PAM_USER; it
 * may differ from the one asked for) and is set only with PT_AUTH_OK.
 * fail_delay_ms is the delay PAM's modules asked for after a failure
 * (PAM_FAIL_DELAY, randomised by libpam); the PAM process never sleeps it,
 * the network side decides how long a failure takes. */
struct pt_ipc_auth_rep {
	uint32_t type; /* PT_IPC_AUTH_REP */
	uint32_t id;
	int32_t result; /* enum pt_auth_result */
	uint32_t fail_delay_ms;
	char user[256];
};

/* Send msg (len bytes, one complete message) as one datagram.  Retries on
 * EINTR, never raises SIGPIPE.  0 or a negative errno (-EPIPE: the peer is
 * gone). */
int pt_ipc_send(int fd, const void *msg, size_t len);

/* Receive one message of type `type` into msg, whose size len must be that
 * type's size.  Returns len on success, 0 when the peer has closed, -EPROTO
 * when the datagram has the wrong size (longer or shorter), the wrong type
 * or an unterminated string, or another negative errno (-EAGAIN on a
 * non-blocking socket with nothing to read; EINTR is retried).  -EINVAL when
 * len does not match type (a bug in the caller).  On any failure msg is
 * wiped, since it may hold a partial password.  -EPROTO is meant to be
 * fatal for the conversation. */
ssize_t pt_ipc_recv(int fd, void *msg, size_t len, uint32_t type);

/* Why the calling thread's last pt_ipc_recv returned -EPROTO, as a short
 * phrase for the log ("datagram of 1248 bytes, expected 904"). */
const char *pt_ipc_error(void);

#endif
