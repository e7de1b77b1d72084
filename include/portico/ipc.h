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
	PT_IPC_AUTH_REQ = 0x41510001,	 /* net side -> PAM process */
	PT_IPC_AUTH_REP = 0x41510002,	 /* PAM process -> net side */
	PT_IPC_AUTH_CHAL = 0x41510003,	 /* PAM process -> net side: PAM asks more */
	PT_IPC_AUTH_ANSWER = 0x41510004, /* net side -> PAM process: the user's answer */
	PT_IPC_AUTH_CANCEL = 0x41510005, /* net side -> PAM process: nobody will answer */
	PT_IPC_SESS_REQ = 0x53450001,	 /* sessiond net side -> root side */
	PT_IPC_SESS_REP = 0x53450002,	 /* sessiond root side -> net side */
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

/* PAM asks request `id` for more than the password (a one-time code): the
 * conversation waits, in the PAM process, for an ANSWER or a CANCEL of the
 * same id, at most PT_AUTH_ANSWER_MS; then the request ends with its REP
 * as usual (a CANCEL or no answer in time: the conversation fails).  There
 * may be several challenges, one after the other, before the REP. */
struct pt_ipc_auth_chal {
	uint32_t type; /* PT_IPC_AUTH_CHAL */
	uint32_t id;
	int32_t echo;	  /* 1: the answer may be shown as it is typed */
	char prompt[512]; /* PAM's words, as the module wrote them (not trusted) */
};

/* The user's answer to the challenge of request id. */
struct pt_ipc_auth_answer {
	uint32_t type; /* PT_IPC_AUTH_ANSWER */
	uint32_t id;
	char answer[512];
};

/* Nobody will answer request id's challenge (it expired, or the caller
 * cannot take challenges): fail its conversation. */
struct pt_ipc_auth_cancel {
	uint32_t type; /* PT_IPC_AUTH_CANCEL */
	uint32_t id;
};

/* How long the PAM process waits for the answer to a challenge. */
#define PT_AUTH_ANSWER_MS 60000

/* portico-sessiond: the network side asks the root side to start or stop a
 * session; the root side answers and reports sessions that end or that it
 * found running when it started. */
enum pt_sess_op {
	PT_SESS_START = 1,   /* req: start session id for user in pool */
	PT_SESS_STOP = 2,    /* req: stop session id (reason) */
	PT_SESS_STARTED = 3, /* rep: id runs at backend with secret */
	PT_SESS_FAILED = 4,  /* rep: id could not start (message) */
	PT_SESS_ENDED = 5,   /* rep: id ended (message: why) */
	PT_SESS_RUNNING = 6, /* rep: id was found running at start-up */
	PT_SESS_SPARE = 7,   /* req: boot spare VM id of a qemu pool, for nobody yet */
	/* rep: every session found at start-up has been reported (RUNNING
	 * or ENDED); the network side tells the broker what runs only after
	 * this, or it would report an empty host and lose them */
	PT_SESS_ADOPTED = 8,
	PT_SESS_NOTICE = 9, /* req: show command's text on session id's display */
};

/* Spare VMs have ids of their own, above any session id of the broker. */
#define PT_SESS_SPARE_BASE ((int64_t)1 << 50) /* JSON numbers stay exact below 2^53 */

struct pt_ipc_sess_req {
	uint32_t type; /* PT_IPC_SESS_REQ */
	uint32_t op;   /* PT_SESS_START, PT_SESS_STOP, PT_SESS_SPARE or PT_SESS_NOTICE */
	int64_t id;
	int32_t kind;		 /* enum pt_pool_kind */
	int32_t driver;		 /* enum pt_pool_driver */
	int32_t persistent;	 /* the pool's policy is persistent */
	int32_t spare;		 /* qemu: VMs to keep booted ahead of demand */
	int32_t max_vms;	 /* qemu: cap on this host */
	int32_t protocol;	 /* enum pt_pool_protocol: qemu, what the gateway reaches */
	int32_t guest_port;	 /* qemu rdp/vnc: the guest's server port */
	int64_t boot_timeout_ms; /* qemu rdp/vnc: boot to ready at most */
	char user[256];
	char pool[72];
	char command[1024]; /* app pools; a notice's text */
	char image[512];    /* qemu pools: the golden image */
	char geometry[24];  /* WIDTHxHEIGHT */
	char reason[64];    /* stop */
	/* qemu START with sso: the user's password, set in the guest through
	 * its agent before the session is reported ready; "" otherwise */
	char password[512];
};

struct pt_ipc_sess_rep {
	uint32_t type; /* PT_IPC_SESS_REP */
	uint32_t op;   /* PT_SESS_STARTED, _FAILED, _ENDED, _RUNNING or _ADOPTED */
	int64_t id;
	char user[256];
	char pool[72];
	char backend[256]; /* host:port or unix:/path */
	char secret[64];   /* the backend's VNC password */
	char message[256]; /* failure or end reason, for people */
	int64_t from;	   /* STARTED: the spare VM it was, 0 when started cold */
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

/* Like pt_ipc_recv, but the datagram may be any of the ntypes types (one
 * socket that carries several messages): msg has room for cap bytes, at
 * least the size of the largest of them.  Returns the received message's
 * size (its type is its first uint32_t), 0, or a negative errno as
 * pt_ipc_recv does; a datagram whose type is none of them is -EPROTO. */
ssize_t pt_ipc_recv_any(int fd, void *msg, size_t cap, const uint32_t *types, size_t ntypes);

/* Messages waiting for a non-blocking socket that was full.  A process
 * that must never block on its peer (the network side on its event loop)
 * sends through one: what the socket does not take now is kept, in order,
 * and sent by pt_ipc_queue_flush when the socket is writable again (the
 * caller watches for that: uv_poll with UV_WRITABLE).  Each waiting message
 * is a private copy, wiped when sent or dropped (it may hold a secret). */
struct pt_ipc_qmsg;
struct pt_ipc_queue {
	struct pt_ipc_qmsg *head, *tail;
	size_t len; /* messages waiting */
	size_t max; /* at most this many wait; 0: no bound */
};

/* An empty queue of at most max messages (0: no bound). */
void pt_ipc_queue_init(struct pt_ipc_queue *q, size_t max);
/* Send msg (len bytes, one complete message) on fd after those already
 * waiting: at once when none waits and the socket takes it, else as a copy
 * kept for pt_ipc_queue_flush.  0 (sent or kept), -ENOBUFS when max
 * messages already wait (nothing kept: the caller refuses whatever asked
 * for it), -ENOMEM, or another negative errno of pt_ipc_send (-EPIPE, or
 * -ECONNRESET when it left messages unread: the peer is gone). */
int pt_ipc_queue_send(struct pt_ipc_queue *q, int fd, const void *msg, size_t len);
/* Send what waits, oldest first, until the socket is full.  0 when nothing
 * waits any more, -EAGAIN when some still does, another negative errno
 * when the socket failed (what waits stays). */
int pt_ipc_queue_flush(struct pt_ipc_queue *q, int fd);
/* Wipe and free what waits.  The queue is empty and usable again. */
void pt_ipc_queue_clear(struct pt_ipc_queue *q);

/* Why the calling thread's last pt_ipc_recv returned -EPROTO, as a short
 * phrase for the log ("datagram of 1248 bytes, expected 904"). */
const char *pt_ipc_error(void);

#endif
