/*
 * qga.h - a client of the QEMU guest agent (qemu-ga) for a session's
 * monitor: the agent inside a desktop VM, reached through QEMU's
 * virtio-serial chardev, which the host sees as a unix socket
 * (-chardev socket,id=qga0,path=DIR/qga.sock,server=on,wait=off).
 *
 * The monitor is single threaded and may block, so every call here blocks,
 * bounded by a deadline in milliseconds: each poll() waits only for what is
 * left of it.  Functions return 0 or a negative errno.  Everything the agent
 * sends is untrusted (the guest is the user's machine): one answer is one
 * JSON object ended by "\n", at most SD_QGA_MAX bytes; anything else is
 * -EPROTO, and error text is made printable before it reaches err.
 *
 * Where a call takes err and errlen (err may be NULL), a failure leaves one
 * printable sentence there: the agent's own {"error":{"class","desc"}} as
 * "class: desc" with -EREMOTEIO, or what went wrong with the other codes.
 *
 * A call that failed part way (timed out, a malformed answer) leaves the
 * stream out of step; the next call re-synchronises first (guest-sync-
 * delimited, within that call's deadline), so a late answer is never taken
 * for the next one's.
 */
#ifndef SESSION_QGA_H
#define SESSION_QGA_H

#include <jansson.h>
#include <stddef.h>

/* The longest answer taken, its "\n" included. */
#define SD_QGA_MAX (64 * 1024)

/* One connection to an agent, embedded in its owner: sd_qga_open, then
 * sd_qga_close (also after a failed open). */
struct sd_qga {
	int fd;		      /* nonblocking unix stream socket, -1: closed */
	char buf[SD_QGA_MAX]; /* read buffer: what came after the last answer */
	size_t len;	      /* bytes in buf */
	int stale;	      /* a call ended part way: sync before the next */
};

/* Connect to the agent's unix socket at path (a nonblocking connect, the
 * whole call bounded by timeout_ms).  0, or -errno: -ENOENT no socket yet,
 * -ECONNREFUSED QEMU not listening, -ETIMEDOUT, -ENAMETOOLONG. */
int sd_qga_open(struct sd_qga *q, const char *path, int timeout_ms);

/* Close the socket (if open) and forget what was read; q can be opened
 * again. */
void sd_qga_close(struct sd_qga *q);

/* guest-sync-delimited with a random id: writes 0xFF (resets the agent's
 * parser) and the command, skips what comes before the 0xFF the agent sends
 * back and then answers to earlier syncs, until the answer with our id.
 * 0 when the agent answered in time, -ETIMEDOUT, -EPROTO (garbage, or a
 * line longer than SD_QGA_MAX), -EREMOTEIO (the agent answered the sync
 * with an error), -ECONNRESET (closed), -errno. */
int sd_qga_sync(struct sd_qga *q, int timeout_ms);

/* One command {"execute":cmd,"arguments":args}; args may be NULL and is
 * taken (the call decrefs it, on every path).  On success *ret is the
 * answer's "return" member (a new reference; ret may be NULL).  Else
 * -EREMOTEIO (the agent's error, "class: desc" in err), -ETIMEDOUT,
 * -EPROTO (an answer that is not a JSON object with "return" or "error",
 * or longer than SD_QGA_MAX), -ECONNRESET (the agent closed), -errno. */
int sd_qga_call(struct sd_qga *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
		char *err, size_t errlen);

/* The guest's first IPv4 address that is not loopback (127/8) nor 0.0.0.0,
 * from guest-network-get-interfaces, into out (a dotted quad, len at least
 * 16).  0, -ENOENT (none yet), -ENOSPC (out too short), or as
 * sd_qga_call. */
int sd_qga_ipv4(struct sd_qga *q, char *out, size_t len, int timeout_ms, char *err, size_t errlen);

/* Run argv[0] with argv[1..] (NULL-terminated) in the guest: guest-exec
 * with capture-output false, then guest-exec-status every 100 ms until it
 * ended or timeout_ms passed.  *status: its exit code, or 128 + the signal
 * that ended it.  0, -EINVAL (no argv[0], or not UTF-8), -ETIMEDOUT (it did
 * not end in time: it keeps running in the guest), or as sd_qga_call. */
int sd_qga_exec(struct sd_qga *q, char *const argv[], int *status, int timeout_ms, char *err,
		size_t errlen);

/* guest-set-user-password for user, crypted false: the password is
 * base64-encoded here, and the encoded copy and the command text holding it
 * are wiped after the write (they never reach jansson's heap).  0, -EINVAL
 * (user not UTF-8), or as sd_qga_call. */
int sd_qga_set_password(struct sd_qga *q, const char *user, const char *password, int timeout_ms,
			char *err, size_t errlen);

/* guest-shutdown mode "powerdown".  An agent that obeys sends no answer:
 * 0 once the command is written and no error came back within timeout_ms
 * (or the agent closed the socket, or answered success); -EREMOTEIO for its
 * error; -EPROTO for garbage; -errno when the command could not be
 * written. */
int sd_qga_shutdown(struct sd_qga *q, int timeout_ms, char *err, size_t errlen);

/* Read one answer line (len bytes, without its "\n") as sd_qga_call does:
 * 0 and *ret (the "return" member, a new reference; ret may be NULL), or
 * -EREMOTEIO with "class: desc" in err, or -EPROTO.  Exposed for the
 * tests and the fuzz target. */
int sd_qga_parse(const char *line, size_t len, json_t **ret, char *err, size_t errlen);

#endif
