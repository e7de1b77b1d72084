/*
 * authd.c - the broker's PAM process (see authd.h).
 *
 * This file runs as root and reads what a network-facing process sends it,
 * so it stays small: one loop that relays.  Each request is run by a child
 * of its own (authd_pam.c), because a PAM conversation may wait up to a
 * minute for a user's one-time code and must not hold the other logins up;
 * the loop passes the child's challenges to the network side and the
 * network side's answers to the child, and the child's reply back.  No
 * state is kept between requests.  Modelled on OpenSMTPD's parent_auth_pam.
 */
#include "authd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <security/pam_appl.h>
#include <unistd.h>

#include "portico/ipc.h"
#include "portico/log.h"

/* The network side only ever sends the one service in its configuration;
 * an empty name or a path means it is no longer the program we started. */
static const char *authd_bad_service(const char *s, const char *pinned)
{
	if (!*s || *s == '.' || strchr(s, '/'))
		return "bad PAM service name";
	if (pinned && strcmp(s, pinned) != 0)
		return "PAM service not allowed";
	return NULL;
}

/* Requests running at once.  The network side asks for no more (its own
 * bound, [broker] max_logins, is at most this; auth.c queues the rest);
 * more is answered "error" at once, never queued. */
#define AUTHD_CHILDREN 128

/* One request's child.  fd -1 with pid > 0: answered, not reaped yet. */
struct authd_child {
	uint32_t id;
	pid_t pid;
	int fd;
};

struct authd {
	int net;
	const char *service;
	struct authd_child kid[AUTHD_CHILDREN];
};

/* Send to the network side: 0, 1 when it is gone (the end), -1 on another
 * failure (logged). */
static int authd_up(struct authd *d, const void *msg, size_t len)
{
	int rc = pt_ipc_send(d->net, msg, len);

	/* A net side that died between asking and hearing the answer is the
	 * caller's to notice (waitpid), like a plain EOF. */
	if (rc == -EPIPE || rc == -ECONNRESET)
		return 1;
	if (rc < 0) {
		errno = -rc;
		pt_log_warn("authd: cannot answer the net side");
		return -1;
	}
	return 0;
}

static int authd_error(struct authd *d, uint32_t id)
{
	struct pt_ipc_auth_rep rep = { .type = PT_IPC_AUTH_REP, .id = id, .result = PT_AUTH_ERROR };

	return authd_up(d, &rep, sizeof(rep));
}

static struct authd_child *authd_kid(struct authd *d, uint32_t id)
{
	for (int i = 0; i < AUTHD_CHILDREN; i++)
		if (d->kid[i].pid > 0 && d->kid[i].fd >= 0 && d->kid[i].id == id)
			return &d->kid[i];
	return NULL;
}

/* The child: PAM for req, talking to us on fd; never returns. */
static _Noreturn void authd_child_run(struct authd *d, int fd, struct pt_ipc_auth_req *req)
{
	int rc;

	/* The parent forwards SIGTERM to the network side; a child that
	 * inherited that would kill it. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	close(d->net);
	for (int i = 0; i < AUTHD_CHILDREN; i++)
		if (d->kid[i].fd >= 0)
			close(d->kid[i].fd);
	rc = brk_authd_pam(fd, req);
	explicit_bzero(req, sizeof(*req));
	_exit(rc);
}

static int authd_start(struct authd *d, struct pt_ipc_auth_req *req)
{
	struct authd_child *k = NULL;
	int sv[2];
	pid_t pid;

	if (authd_kid(d, req->id)) {
		pt_log_warnx("authd: malformed message from the net side (request %u is running)",
			     req->id);
		return -1;
	}
	for (int i = 0; i < AUTHD_CHILDREN && !k; i++)
		if (d->kid[i].pid == 0)
			k = &d->kid[i];
	if (!k) {
		pt_log_warnx("authd: request %u: %d requests are running already", req->id,
			     AUTHD_CHILDREN);
		return authd_error(d, req->id);
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
		pt_log_warn("authd: request %u: socketpair", req->id);
		return authd_error(d, req->id);
	}
	pid = fork();
	if (pid == -1) {
		pt_log_warn("authd: request %u: fork", req->id);
		close(sv[0]);
		close(sv[1]);
		return authd_error(d, req->id);
	}
	if (pid == 0) {
		close(sv[0]);
		authd_child_run(d, sv[1], req);
	}
	close(sv[1]);
	/* A child that does not read must not stop this loop. */
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	k->id = req->id;
	k->pid = pid;
	k->fd = sv[0];
	return 0;
}

/* One message from the network side: 0, 1 at its end, -1 malformed. */
static int authd_from_net(struct authd *d)
{
	static const uint32_t types[] = { PT_IPC_AUTH_REQ, PT_IPC_AUTH_ANSWER, PT_IPC_AUTH_CANCEL };
	union {
		uint32_t type;
		struct pt_ipc_auth_req req;
		struct pt_ipc_auth_answer ans;
		struct pt_ipc_auth_cancel can;
	} m;
	struct authd_child *k;
	const char *why;
	ssize_t n;
	int rc;

	n = pt_ipc_recv_any(d->net, &m, sizeof(m), types, 3);
	if (n == 0)
		return 1;
	if (n == -EAGAIN || n == -EINTR)
		return 0;
	if (n == -EPROTO) {
		pt_log_warnx("authd: malformed message from the net side (%s)", pt_ipc_error());
		return -1;
	}
	if (n < 0) {
		errno = (int)-n;
		pt_log_warn("authd: cannot read from the net side");
		return -1;
	}
	if (m.type == PT_IPC_AUTH_REQ) {
		why = authd_bad_service(m.req.service, d->service);
		if (why) {
			explicit_bzero(&m, sizeof(m));
			pt_log_warnx("authd: malformed message from the net side (%s)", why);
			return -1;
		}
		rc = authd_start(d, &m.req);
		explicit_bzero(&m, sizeof(m));
		return rc;
	}
	/* An answer or a cancel for a request that has just ended crossed
	 * its reply: not an error. */
	k = authd_kid(d, m.ans.id);
	if (k && pt_ipc_send(k->fd, &m, (size_t)n) < 0)
		pt_log_warnx("authd: request %u: its PAM process does not listen", k->id);
	explicit_bzero(&m, sizeof(m));
	return 0;
}

/* One message from a child: 0, 1 when the network side is gone, -1 when
 * it cannot be told. */
static int authd_from_kid(struct authd *d, struct authd_child *k)
{
	static const uint32_t types[] = { PT_IPC_AUTH_CHAL, PT_IPC_AUTH_REP };
	union {
		uint32_t type;
		struct pt_ipc_auth_chal chal;
		struct pt_ipc_auth_rep rep;
	} m;
	ssize_t n = pt_ipc_recv_any(k->fd, &m, sizeof(m), types, 2);
	int rc;

	if (n == -EAGAIN || n == -EINTR)
		return 0;
	if (n > 0 && m.chal.id != k->id)
		n = -EPROTO;
	if (n <= 0) {
		/* Died (a module crashed) or is not our code any more. */
		pt_log_warnx("authd: request %u: its PAM process ended without an answer", k->id);
		kill(k->pid, SIGKILL);
		close(k->fd);
		k->fd = -1;
		return authd_error(d, k->id);
	}
	rc = authd_up(d, &m, (size_t)n);
	if (m.type == PT_IPC_AUTH_REP) {
		close(k->fd);
		k->fd = -1;
	}
	return rc;
}

static void authd_cancel_all(struct authd *d)
{
	for (int i = 0; i < AUTHD_CHILDREN; i++) {
		struct pt_ipc_auth_cancel x = { .type = PT_IPC_AUTH_CANCEL, .id = d->kid[i].id };
		if (d->kid[i].fd >= 0)
			pt_ipc_send(d->kid[i].fd, &x, sizeof(x));
	}
}

static void authd_reap(struct authd *d, int block)
{
	for (int i = 0; i < AUTHD_CHILDREN; i++) {
		struct authd_child *k = &d->kid[i];
		pid_t r;

		if (k->pid <= 0 || (k->fd >= 0 && !block))
			continue;
		if (block && k->fd >= 0) {
			kill(k->pid, SIGKILL);
			close(k->fd);
			k->fd = -1;
		}
		do
			r = waitpid(k->pid, NULL, block ? 0 : WNOHANG);
		while (r == -1 && errno == EINTR);
		if (r != 0)
			k->pid = 0;
	}
}

static int authd_no_conv(int n, const struct pam_message **msg, struct pam_response **resp,
			 void *arg)
{
	return PAM_CONV_ERR;
}

/* The children's pam_start one at a time: a record lock on a memfd the
 * children inherit (the kernel lets go of it when its holder dies, so a
 * child killed inside pam_start holds nobody up).  -1: no lock (tests that
 * run authd without brk_authd_prepare). */
static int start_lock_fd = -1;

void brk_authd_start_lock(int take)
{
	struct flock fl = { .l_type = take ? F_WRLCK : F_UNLCK, .l_whence = SEEK_SET };

	if (start_lock_fd < 0)
		return;
	while (fcntl(start_lock_fd, take ? F_SETLKW : F_SETLK, &fl) == -1 && errno == EINTR)
		;
}

void brk_authd_prepare(const char *service)
{
	struct pam_conv conv = { authd_no_conv, NULL };
	pam_handle_t *h = NULL;
	int rc;

	start_lock_fd = memfd_create("authd-pam-start", MFD_CLOEXEC);
	rc = pam_start(service, "portico", &conv, &h);

	if (rc != PAM_SUCCESS)
		pt_log_warnx("authd: PAM service %s: %s: every login will fail", service,
			     pam_strerror(h, rc));
	if (h)
		pam_end(h, rc);
}

int brk_authd_run_service(int fd, const char *service)
{
	static struct authd d; /* one per process */
	struct pollfd p[1 + AUTHD_CHILDREN];
	struct authd_child *at[1 + AUTHD_CHILDREN];
	int n, rc = 0, zombies, running, closing = 0;

	memset(&d, 0, sizeof(d));
	d.net = fd;
	d.service = service;
	for (int i = 0; i < AUTHD_CHILDREN; i++)
		d.kid[i].fd = -1;
	while (rc == 0) {
		n = 0;
		zombies = running = 0;
		/* After the network side's end, only the requests it sent
		 * before are finished (their questions cancelled). */
		p[n++] = (struct pollfd){ .fd = closing ? -1 : fd, .events = POLLIN };
		for (int i = 0; i < AUTHD_CHILDREN; i++) {
			if (d.kid[i].fd >= 0) {
				at[n] = &d.kid[i];
				p[n++] = (struct pollfd){ .fd = d.kid[i].fd, .events = POLLIN };
				running = 1;
			} else if (d.kid[i].pid > 0) {
				zombies = 1;
			}
		}
		if (closing && !running)
			break;
		if (poll(p, (nfds_t)n, zombies ? 100 : -1) == -1) {
			if (errno == EINTR)
				continue;
			pt_log_warn("authd: poll");
			rc = -1;
			break;
		}
		for (int i = 1; i < n && rc == 0; i++)
			if (p[i].revents)
				rc = authd_from_kid(&d, at[i]);
		if (rc == 0 && p[0].revents)
			rc = authd_from_net(&d);
		if (rc == 1 && !closing) {
			closing = 1;
			rc = 0;
			authd_cancel_all(&d);
		}
		authd_reap(&d, 0);
	}
	authd_reap(&d, 1);
	return rc < 0 ? 1 : 0;
}

int brk_authd_run(int fd)
{
	return brk_authd_run_service(fd, NULL);
}
