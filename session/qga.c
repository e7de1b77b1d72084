/*
 * qga.c - see qga.h.
 *
 * One file past 600 lines: the transport (deadlines, framing, the 0xFF
 * sync) and the commands on top share one rule, that a call ended part way
 * leaves the stream stale until a sync; split in two, that state and
 * qga_request would have to move into a header of their own.
 */
#include "qga.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <resolv.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define QGA_POLL_MS    100   /* guest-exec-status, and connect's retry */
#define QGA_PASSWD_MAX 16384 /* longer is refused before it is encoded */

/* --- time ----------------------------------------------------------------- */

static int64_t qga_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t qga_deadline(int timeout_ms)
{
	return qga_now() + (timeout_ms > 0 ? timeout_ms : 0);
}

/* What is left until deadline, in ms for poll(): 0 when it has passed. */
static int qga_left(int64_t deadline)
{
	int64_t left = deadline - qga_now();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* Sleep ms, but not past deadline.  0, or -ETIMEDOUT when the deadline
 * passed first. */
static int qga_sleep(int ms, int64_t deadline)
{
	int64_t until = qga_now() + ms;

	if (until > deadline)
		return -ETIMEDOUT;
	while (qga_left(until) > 0)
		poll(NULL, 0, qga_left(until)); /* EINTR: the loop sleeps the rest */
	return 0;
}

/* --- text ----------------------------------------------------------------- */

/* printf into err (NULL or errlen 0: nothing). */
static void qga_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void qga_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Make s printable in place: C0 controls and DEL become '?', and so do the
 * UTF-8 encodings of the C1 controls (U+0080..U+009F: U+009B is a CSI to
 * some terminals). */
static void qga_printable(char *s)
{
	unsigned char *p = (unsigned char *)s;

	for (; *p; p++) {
		if (*p < 0x20 || *p == 0x7f)
			*p = '?';
		else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			p[0] = p[1] = '?';
			p++;
		}
	}
}

/* The sentence for a failure other than the agent's own error. */
static int qga_fail(int rc, char *err, size_t errlen)
{
	switch (rc) {
	case -ETIMEDOUT:
		qga_err(err, errlen, "the guest agent did not answer in time");
		break;
	case -ECONNRESET:
		qga_err(err, errlen, "the guest agent closed the connection");
		break;
	case -EMSGSIZE:
		qga_err(err, errlen, "the guest agent's answer is longer than %d bytes",
			SD_QGA_MAX);
		return -EPROTO;
	case -EPROTO:
		qga_err(err, errlen, "the guest agent's answer is not one it may give");
		break;
	case -EREMOTEIO:
		break; /* err holds the agent's words */
	default:
		qga_err(err, errlen, "guest agent: %s", strerror(-rc));
	}
	return rc;
}

/* --- socket --------------------------------------------------------------- */

/* Wait for events on q->fd until deadline.  0 (ready, or an error or hang-up
 * that the next send or recv reports), -ETIMEDOUT, -errno. */
static int qga_wait(struct sd_qga *q, short events, int64_t deadline)
{
	struct pollfd p = { .fd = q->fd, .events = events };
	int n;

	for (;;) {
		/* A peer that never stops sending must not keep us past it. */
		if (qga_now() > deadline)
			return -ETIMEDOUT;
		n = poll(&p, 1, qga_left(deadline));
		if (n == 1)
			return 0;
		if (n == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Write all len bytes before deadline.  0, -ETIMEDOUT, -errno (-EPIPE: the
 * agent is gone; never a SIGPIPE). */
static int qga_write(struct sd_qga *q, const char *data, size_t len, int64_t deadline)
{
	ssize_t n;
	int rc;

	while (len > 0) {
		n = send(q->fd, data, len, MSG_NOSIGNAL);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		rc = qga_wait(q, POLLOUT, deadline);
		if (rc)
			return rc;
	}
	return 0;
}

/* Read what the socket has into q->buf (which must have room), waiting
 * until deadline for something.  0, -ETIMEDOUT, -ECONNRESET (end of
 * stream), -errno. */
static int qga_fill(struct sd_qga *q, int64_t deadline)
{
	ssize_t n;
	int rc;

	for (;;) {
		rc = qga_wait(q, POLLIN, deadline);
		if (rc)
			return rc;
		n = recv(q->fd, q->buf + q->len, sizeof(q->buf) - q->len, 0);
		if (n > 0) {
			q->len += (size_t)n;
			return 0;
		}
		if (n == 0)
			return -ECONNRESET;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
	}
}

/* Forget the first n bytes of the buffer. */
static void qga_consume(struct sd_qga *q, size_t n)
{
	memmove(q->buf, q->buf + n, q->len - n);
	q->len -= n;
}

/* The next whole line in the buffer, reading until deadline: *len bytes at
 * q->buf, its "\n" turned into a NUL; the caller consumes *len + 1.  0,
 * -EMSGSIZE (no "\n" in SD_QGA_MAX bytes: the buffer is emptied), or as
 * qga_fill. */
static int qga_line(struct sd_qga *q, size_t *len, int64_t deadline)
{
	char *nl;
	int rc;

	while (!(nl = memchr(q->buf, '\n', q->len))) {
		if (q->len == sizeof(q->buf)) {
			q->len = 0;
			return -EMSGSIZE;
		}
		rc = qga_fill(q, deadline);
		if (rc)
			return rc;
	}
	*nl = '\0';
	*len = (size_t)(nl - q->buf);
	return 0;
}

/* --- answers -------------------------------------------------------------- */

int sd_qga_parse(const char *line, size_t len, json_t **ret, char *err, size_t errlen)
{
	json_t *o, *r, *e;
	const char *cls, *desc;
	int rc = -EPROTO;

	if (ret)
		*ret = NULL;
	o = json_loadb(line, len, 0, NULL);
	if (!json_is_object(o)) {
		qga_err(err, errlen, "the guest agent's answer is not a JSON object");
		goto out;
	}
	r = json_object_get(o, "return");
	e = json_object_get(o, "error");
	if (r) {
		if (ret)
			*ret = json_incref(r);
		rc = 0;
	} else if (json_is_object(e)) {
		cls = json_string_value(json_object_get(e, "class"));
		desc = json_string_value(json_object_get(e, "desc"));
		qga_err(err, errlen, "%s: %s", cls ? cls : "?", desc ? desc : "?");
		if (err && errlen)
			qga_printable(err);
		rc = -EREMOTEIO;
	} else {
		qga_err(err, errlen, "the guest agent's answer has neither return nor error");
	}
out:
	json_decref(o);
	return rc;
}

/* --- sync ----------------------------------------------------------------- */

static uint32_t qga_random_id(void)
{
	uint32_t id;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != (ssize_t)sizeof(id))
		id = (uint32_t)qga_now() ^ ((uint32_t)getpid() << 16);
	return id & 0x7fffffff;
}

/* One line after the delimiter: 1 when it answers our sync, 0 for an
 * earlier sync's answer, -EPROTO, -EREMOTEIO. */
static int qga_sync_answer(const char *line, size_t len, uint32_t id)
{
	json_t *r = NULL;
	int rc = sd_qga_parse(line, len, &r, NULL, 0);

	if (rc == 0)
		rc = json_is_integer(r) && json_integer_value(r) == (json_int_t)id;
	json_decref(r);
	return rc;
}

/* Skip to the agent's 0xFF and then to the answer to id.  A later 0xFF
 * starts over: it delimits another (earlier) sync's answer. */
static int qga_sync_read(struct sd_qga *q, uint32_t id, int64_t deadline)
{
	int delimited = 0, rc;
	char *ff, *nl;

	for (;;) {
		ff = memchr(q->buf, 0xff, q->len);
		nl = memchr(q->buf, '\n', q->len);
		if (ff && (!delimited || !nl || ff < nl)) {
			qga_consume(q, (size_t)(ff - q->buf) + 1);
			delimited = 1;
			continue;
		}
		if (delimited && nl) {
			*nl = '\0';
			rc = qga_sync_answer(q->buf, (size_t)(nl - q->buf), id);
			qga_consume(q, (size_t)(nl - q->buf) + 1);
			if (rc)
				return rc < 0 ? rc : 0;
			continue;
		}
		if (!delimited)
			q->len = 0; /* what came before the 0xFF is not ours */
		else if (q->len == sizeof(q->buf))
			return -EMSGSIZE;
		rc = qga_fill(q, deadline);
		if (rc)
			return rc;
	}
}

static int qga_sync_until(struct sd_qga *q, int64_t deadline)
{
	uint32_t id = qga_random_id();
	char cmd[96];
	int n, rc;

	if (q->fd < 0)
		return -EBADF;
	q->stale = 1;
	/* 0xFF first: the agent drops whatever half command it holds. */
	n = snprintf(cmd, sizeof(cmd),
		     "\xff{\"execute\":\"guest-sync-delimited\",\"arguments\":{\"id\":%u}}\n",
		     (unsigned)id);
	rc = qga_write(q, cmd, (size_t)n, deadline);
	if (rc == 0)
		rc = qga_sync_read(q, id, deadline);
	if (rc == 0)
		q->stale = 0;
	return rc;
}

int sd_qga_sync(struct sd_qga *q, int timeout_ms)
{
	int rc = qga_sync_until(q, qga_deadline(timeout_ms));

	return rc == -EMSGSIZE ? -EPROTO : rc;
}

/* --- commands ------------------------------------------------------------- */

/* Send one command's text (without its "\n") and read its answer, first
 * re-synchronising when an earlier call ended part way. */
static int qga_request(struct sd_qga *q, const char *text, size_t len, json_t **ret,
		       int64_t deadline, char *err, size_t errlen)
{
	size_t n;
	int rc;

	if (ret)
		*ret = NULL;
	if (q->fd < 0)
		return qga_fail(-EBADF, err, errlen);
	if (q->stale && (rc = qga_sync_until(q, deadline)) != 0)
		return qga_fail(rc == -EREMOTEIO ? -EPROTO : rc, err, errlen);
	q->stale = 1;
	rc = qga_write(q, text, len, deadline);
	if (rc == 0)
		rc = qga_write(q, "\n", 1, deadline);
	if (rc == 0)
		rc = qga_line(q, &n, deadline);
	if (rc)
		return qga_fail(rc, err, errlen);
	rc = sd_qga_parse(q->buf, n, ret, err, errlen);
	qga_consume(q, n + 1);
	if (rc != -EPROTO)
		q->stale = 0;
	return rc;
}

/* {"execute":cmd,"arguments":args} as text (args taken), or NULL. */
static char *qga_command(const char *cmd, json_t *args)
{
	json_t *o = json_object();
	char *text = NULL;

	if (!o || json_object_set_new(o, "execute", json_string(cmd)) != 0) {
		json_decref(args);
		goto out;
	}
	if (args && json_object_set_new(o, "arguments", args) != 0)
		goto out; /* jansson has let go of args */
	text = json_dumps(o, JSON_COMPACT);
out:
	json_decref(o);
	return text;
}

static int qga_call_until(struct sd_qga *q, const char *cmd, json_t *args, json_t **ret,
			  int64_t deadline, char *err, size_t errlen)
{
	char *text;
	int rc;

	if (ret)
		*ret = NULL;
	text = qga_command(cmd, args);
	if (!text) {
		qga_err(err, errlen, "guest agent command not encodable (not UTF-8?)");
		return -EINVAL;
	}
	rc = qga_request(q, text, strlen(text), ret, deadline, err, errlen);
	free(text);
	return rc;
}

int sd_qga_call(struct sd_qga *q, const char *cmd, json_t *args, json_t **ret, int timeout_ms,
		char *err, size_t errlen)
{
	return qga_call_until(q, cmd, args, ret, qga_deadline(timeout_ms), err, errlen);
}

/* --- connect -------------------------------------------------------------- */

/* One connect() of q->fd: 0, 1 (try again: the listener's backlog is
 * full), -errno. */
static int qga_connect_once(struct sd_qga *q, const struct sockaddr_un *sa, int64_t deadline)
{
	socklen_t sl = sizeof(int);
	int e = 0, rc;

	if (connect(q->fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
		return 0;
	if (errno == EAGAIN || errno == EINTR)
		return 1;
	if (errno != EINPROGRESS)
		return -errno;
	rc = qga_wait(q, POLLOUT, deadline);
	if (rc)
		return rc;
	if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &e, &sl) == -1)
		return -errno;
	return -e;
}

int sd_qga_open(struct sd_qga *q, const char *path, int timeout_ms)
{
	int64_t deadline = qga_deadline(timeout_ms);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int rc;

	q->fd = -1;
	q->len = 0;
	q->stale = 0;
	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->fd == -1)
		return -errno;
	while ((rc = qga_connect_once(q, &sa, deadline)) == 1)
		if (qga_sleep(QGA_POLL_MS / 10, deadline)) {
			rc = -ETIMEDOUT;
			break;
		}
	if (rc)
		sd_qga_close(q);
	return rc;
}

void sd_qga_close(struct sd_qga *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	q->len = 0;
	q->stale = 0;
}

/* --- guest-network-get-interfaces ----------------------------------------- */

/* The first usable IPv4 address in the agent's list of interfaces, in
 * canonical form into out.  0, -ENOENT, -ENOSPC. */
static int qga_pick_ipv4(json_t *ifs, char *out, size_t len)
{
	char text[INET_ADDRSTRLEN];
	struct in_addr in;
	const char *type, *ip;
	json_t *itf, *a;
	size_t i, j;
	uint32_t h;

	json_array_foreach(ifs, i, itf)
	{
		json_array_foreach(json_object_get(itf, "ip-addresses"), j, a)
		{
			type = json_string_value(json_object_get(a, "ip-address-type"));
			ip = json_string_value(json_object_get(a, "ip-address"));
			if (!type || !ip || strcmp(type, "ipv4") ||
			    inet_pton(AF_INET, ip, &in) != 1)
				continue;
			h = ntohl(in.s_addr);
			if (h == 0 || (h >> 24) == 127)
				continue;
			inet_ntop(AF_INET, &in, text, sizeof(text));
			if (strlen(text) >= len)
				return -ENOSPC;
			memcpy(out, text, strlen(text) + 1);
			return 0;
		}
	}
	return -ENOENT;
}

int sd_qga_ipv4(struct sd_qga *q, char *out, size_t len, int timeout_ms, char *err, size_t errlen)
{
	json_t *ifs = NULL;
	int rc;

	rc = sd_qga_call(q, "guest-network-get-interfaces", NULL, &ifs, timeout_ms, err, errlen);
	if (rc)
		return rc;
	rc = qga_pick_ipv4(ifs, out, len);
	json_decref(ifs);
	if (rc == -ENOENT)
		qga_err(err, errlen, "the guest has no IPv4 address yet");
	else if (rc == -ENOSPC)
		qga_err(err, errlen, "no room for the guest's address");
	return rc;
}

/* --- guest-exec ----------------------------------------------------------- */

/* guest-exec's arguments for argv, or NULL (not UTF-8, no memory). */
static json_t *qga_exec_args(char *const argv[])
{
	json_t *args = json_object(), *arg = json_array();

	if (!args || !arg)
		goto fail;
	for (int i = 1; argv[i]; i++)
		if (json_array_append_new(arg, json_string(argv[i])) != 0)
			goto fail;
	if (json_object_set_new(args, "path", json_string(argv[0])) != 0 ||
	    json_object_set_new(args, "capture-output", json_false()) != 0)
		goto fail;
	if (json_object_set_new(args, "arg", arg) != 0) {
		arg = NULL; /* let go of by jansson */
		goto fail;
	}
	return args;
fail:
	json_decref(arg);
	json_decref(args);
	return NULL;
}

/* A guest-exec-status answer: 1 and *status once it ended, 0 while it
 * runs, -EPROTO. */
static int qga_exec_ended(json_t *st, int *status)
{
	json_t *code = json_object_get(st, "exitcode"), *sig = json_object_get(st, "signal");
	json_int_t v;

	if (!json_is_object(st))
		return -EPROTO;
	if (!json_is_true(json_object_get(st, "exited")))
		return 0;
	if (json_is_integer(code)) {
		v = json_integer_value(code);
		if (v < INT_MIN || v > INT_MAX)
			return -EPROTO;
		*status = (int)v;
		return 1;
	}
	if (json_is_integer(sig)) {
		v = json_integer_value(sig);
		if (v < 0 || v > INT_MAX - 128)
			return -EPROTO;
		*status = 128 + (int)v;
		return 1;
	}
	return -EPROTO;
}

/* Poll pid's status until it ended or deadline: every 10 ms at first,
 * doubling to QGA_POLL_MS (a short program, useradd at a user's hand-over,
 * is waited for by that user's launch). */
static int qga_exec_wait(struct sd_qga *q, json_int_t pid, int *status, int64_t deadline, char *err,
			 size_t errlen)
{
	json_t *args, *st;
	int rc, wait_ms = 10;

	for (;;) {
		if (!(args = json_pack("{sI}", "pid", pid)))
			return qga_fail(-ENOMEM, err, errlen);
		rc = qga_call_until(q, "guest-exec-status", args, &st, deadline, err, errlen);
		if (rc)
			return rc;
		rc = qga_exec_ended(st, status);
		json_decref(st);
		if (rc < 0)
			return qga_fail(rc, err, errlen);
		if (rc == 1)
			return 0;
		if (qga_sleep(wait_ms, deadline)) {
			qga_err(err, errlen, "the program did not end in time");
			return -ETIMEDOUT;
		}
		if (wait_ms < QGA_POLL_MS)
			wait_ms *= 2;
	}
}

int sd_qga_exec(struct sd_qga *q, char *const argv[], int *status, int timeout_ms, char *err,
		size_t errlen)
{
	int64_t deadline = qga_deadline(timeout_ms);
	json_t *args, *r;
	json_int_t pid;
	int rc;

	if (!argv || !argv[0] || !(args = qga_exec_args(argv))) {
		qga_err(err, errlen, "no program, or its words are not UTF-8");
		return -EINVAL;
	}
	rc = qga_call_until(q, "guest-exec", args, &r, deadline, err, errlen);
	if (rc)
		return rc;
	rc = json_is_integer(json_object_get(r, "pid")) ? 0 : -EPROTO;
	pid = json_integer_value(json_object_get(r, "pid"));
	json_decref(r);
	if (rc)
		return qga_fail(rc, err, errlen);
	return qga_exec_wait(q, pid, status, deadline, err, errlen);
}

/* --- guest-set-user-password ---------------------------------------------- */

/* The command's text with password base64-encoded into it, in memory the
 * caller wipes and frees (*len bytes); NULL when user is not UTF-8. */
static char *qga_password_command(const char *user, const char *password, size_t *len)
{
	static const char fmt[] = "{\"execute\":\"guest-set-user-password\",\"arguments\":"
				  "{\"username\":%s,\"password\":\"%s\",\"crypted\":false}}";
	size_t plen = strlen(password), blen = 4 * ((plen + 2) / 3);
	json_t *u = json_string(user);
	char *uj = u ? json_dumps(u, JSON_ENCODE_ANY) : NULL;
	char *b64 = malloc(blen + 1), *text = NULL;
	int n;

	if (!uj || !b64)
		goto out;
	/* glibc's libresolv: the monitor runs as root, and root code links no
	 * OpenSSL (STYLE.md) */
	if (b64_ntop((const unsigned char *)password, plen, b64, blen + 1) < 0)
		goto out;
	*len = sizeof(fmt) + strlen(uj) + blen;
	text = malloc(*len);
	if (!text)
		goto out;
	n = snprintf(text, *len, fmt, uj, b64);
	*len = (size_t)n;
out:
	if (b64)
		explicit_bzero(b64, blen + 1);
	free(b64);
	free(uj);
	json_decref(u);
	return text;
}

int sd_qga_set_password(struct sd_qga *q, const char *user, const char *password, int timeout_ms,
			char *err, size_t errlen)
{
	char *text;
	size_t len = 0;
	int rc;

	if (strlen(password) > QGA_PASSWD_MAX ||
	    !(text = qga_password_command(user, password, &len))) {
		qga_err(err, errlen, "user name not UTF-8 or password longer than %d bytes",
			QGA_PASSWD_MAX);
		return -EINVAL;
	}
	rc = qga_request(q, text, len, NULL, qga_deadline(timeout_ms), err, errlen);
	explicit_bzero(text, len);
	free(text);
	return rc;
}

/* --- guest-shutdown ------------------------------------------------------- */

int sd_qga_shutdown(struct sd_qga *q, int timeout_ms, char *err, size_t errlen)
{
	static const char cmd[] = "{\"execute\":\"guest-shutdown\",\"arguments\":"
				  "{\"mode\":\"powerdown\"}}\n";
	int64_t deadline = qga_deadline(timeout_ms);
	size_t n;
	int rc;

	if (q->fd < 0)
		return qga_fail(-EBADF, err, errlen);
	if (q->stale && (rc = qga_sync_until(q, deadline)) != 0)
		return qga_fail(rc == -EREMOTEIO ? -EPROTO : rc, err, errlen);
	rc = qga_write(q, cmd, sizeof(cmd) - 1, deadline);
	if (rc)
		return qga_fail(rc, err, errlen);
	/* From here on, whatever comes is not in step with a next call. */
	q->stale = 1;
	rc = qga_line(q, &n, deadline);
	if (rc == -ETIMEDOUT || rc == -ECONNRESET)
		return 0; /* silence, or the guest going down: it obeys */
	if (rc)
		return qga_fail(rc, err, errlen);
	rc = sd_qga_parse(q->buf, n, NULL, err, errlen);
	qga_consume(q, n + 1);
	if (rc != -EPROTO)
		q->stale = 0; /* it answered (refused): still in step */
	return rc;
}
