/*
 * relay.c - join two streams, see include/portico/relay.h.
 *
 * Stream path: per direction one chunk at most is in flight.  A read hands
 * its chunk to the other side's write; a write that completes at once (the
 * common case on a healthy connection) costs nothing more and reading goes
 * on; a write that has to wait stops reading on the source until it is done,
 * which is the whole of the backpressure.
 *
 * Splice path: when both sides are plain sockets, bytes move socket -> pipe
 * -> socket with splice(2), polled on duplicates of the two descriptors (the
 * streams' own libuv handles stay idle, and are closed as usual at the end).
 */
#include "portico/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "portico/buf.h"
#include "portico/metrics.h"

#define SPLICE_PIPE_SIZE (1024 * 1024)

struct relay_dir {
	struct pt_relay *r;
	struct pt_stream *from, *to;
	char *chunk; /* in flight to `to` */
	uint64_t *bytes, *last_ms;
	struct pt_series *total; /* pt_relay_count's, or NULL */
	unsigned done : 1; /* EOF passed on */
	/* splice path */
	int pipe[2];
	size_t piped; /* bytes in the pipe */
	unsigned in_eof : 1;
	unsigned want_read : 1;	 /* waiting for `from` to be readable */
	unsigned want_write : 1; /* waiting for `to` to be writable */
	int fd_in, fd_out;
};

struct pt_relay {
	uv_loop_t *loop;
	struct pt_stream *client, *server;
	struct relay_dir up, down;
	uv_timer_t timer;
	uint64_t idle_ms;
	pt_relay_done_cb cb;
	void *data;
	struct pt_relay_stats st;
	int status;
	int pending_closes;
	unsigned ending : 1;
	struct relay_splice *sp; /* the splice path only */
};

/* Kept apart so that a TLS relay does not carry it. */
struct relay_splice {
	int fd[2]; /* dups of the client (0) and server (1) sockets */
	uv_poll_t poll[2];
	int polled; /* how many poll handles were initialised */
};

static void relay_end(struct pt_relay *r, int status);

static void on_part_closed(struct pt_relay *r)
{
	if (--r->pending_closes > 0)
		return;
	r->st.end_ms = uv_now(r->loop);
	r->cb(r, r->status);
	free(r->sp);
	free(r);
}

static void on_stream_closed(struct pt_stream *s)
{
	on_part_closed(s->data == NULL ? NULL : ((struct relay_dir *)s->data)->r);
}

static void on_handle_closed(uv_handle_t *h)
{
	on_part_closed(h->data);
}

static void relay_end(struct pt_relay *r, int status)
{
	if (r->ending)
		return;
	r->ending = 1;
	r->status = status;
	for (struct relay_dir *d = &r->up; d <= &r->down; d++) {
		pt_chunk_put(d->chunk);
		d->chunk = NULL;
		for (int i = 0; i < 2; i++)
			if (d->pipe[i] >= 0)
				close(d->pipe[i]);
	}
	r->pending_closes = 3;
	if (r->sp) {
		r->pending_closes += r->sp->polled;
		for (int i = 0; i < r->sp->polled; i++)
			uv_close((uv_handle_t *)&r->sp->poll[i], on_handle_closed);
		for (int i = 0; i < 2; i++)
			if (r->sp->fd[i] >= 0)
				close(r->sp->fd[i]);
	}
	uv_close((uv_handle_t *)&r->timer, on_handle_closed);
	pt_stream_close(r->client, on_stream_closed);
	pt_stream_close(r->server, on_stream_closed);
}

static void dir_finished(struct relay_dir *d)
{
	struct pt_relay *r = d->r;

	d->done = 1;
	if (r->up.done && r->down.done)
		relay_end(r, 0);
}

/* --- stream path ------------------------------------------------------- */

static void on_read(struct pt_stream *s, ssize_t nread, char *chunk);

static void on_write(struct pt_stream *s, int status)
{
	struct relay_dir *d = s->data;
	int rc;

	/* s->data is the direction that reads from s; the one writing to s
	 * is the other. */
	d = (d == &d->r->up) ? &d->r->down : &d->r->up;
	pt_chunk_put(d->chunk);
	d->chunk = NULL;
	if (status < 0) {
		relay_end(d->r, status);
		return;
	}
	rc = pt_stream_read_start(d->from, on_read);
	if (rc < 0)
		relay_end(d->r, rc);
}

static void on_read(struct pt_stream *s, ssize_t nread, char *chunk)
{
	struct relay_dir *d = s->data;
	struct pt_relay *r = d->r;
	int rc;

	if (nread > 0) {
		*d->bytes += nread;
		pt_series_add(d->total, (uint64_t)nread);
		*d->last_ms = uv_now(r->loop);
		rc = pt_stream_write(d->to, chunk, nread, on_write);
		if (rc == PT_STREAM_DONE) {
			pt_chunk_put(chunk);
			return;
		}
		if (rc < 0) {
			pt_chunk_put(chunk);
			relay_end(r, rc);
			return;
		}
		d->chunk = chunk;
		pt_stream_read_stop(d->from);
		return;
	}
	if (nread == UV_EOF) {
		pt_stream_read_stop(d->from);
		rc = pt_stream_shutdown(d->to);
		if (rc < 0) {
			relay_end(r, rc);
			return;
		}
		dir_finished(d);
		return;
	}
	relay_end(r, (int)nread);
}

/* --- splice path -------------------------------------------------------- */

static void splice_poll_update(struct pt_relay *r);

/* Move what can be moved in one direction.  Returns 0 or a negative errno. */
static int splice_dir(struct relay_dir *d)
{
	struct pt_relay *r = d->r;
	ssize_t n;

	d->want_read = d->want_write = 0;
	if (d->done)
		return 0;
	for (;;) {
		if (d->piped > 0) {
			n = splice(d->pipe[0], NULL, d->fd_out, NULL, d->piped,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n > 0) {
				d->piped -= n;
				*d->bytes += n;
				pt_series_add(d->total, (uint64_t)n);
				*d->last_ms = uv_now(r->loop);
				continue;
			}
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && errno == EAGAIN) {
				d->want_write = 1;
				return 0;
			}
			return n == 0 ? UV_EPIPE : -errno;
		}
		if (d->in_eof) {
			if (shutdown(d->fd_out, SHUT_WR) == -1 && errno != ENOTCONN)
				return -errno;
			dir_finished(d);
			return 0;
		}
		n = splice(d->fd_in, NULL, d->pipe[1], NULL, SPLICE_PIPE_SIZE,
			   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n > 0) {
			d->piped = n;
			continue;
		}
		if (n == 0) {
			d->in_eof = 1;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			d->want_read = 1;
			return 0;
		}
		return -errno;
	}
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct pt_relay *r = h->data;
	int side = h == &r->sp->poll[0] ? 0 : 1;
	/* client socket: up reads from it, down writes to it; server: the
	 * reverse. */
	struct relay_dir *rd = side == 0 ? &r->up : &r->down;
	struct relay_dir *wd = side == 0 ? &r->down : &r->up;
	int rc = 0;

	if (status < 0) {
		relay_end(r, status);
		return;
	}
	if ((events & UV_WRITABLE) && wd->want_write)
		rc = splice_dir(wd);
	if (rc == 0 && !r->ending && (events & (UV_READABLE | UV_DISCONNECT)) && rd->want_read)
		rc = splice_dir(rd);
	if (rc < 0) {
		relay_end(r, rc);
		return;
	}
	if (!r->ending)
		splice_poll_update(r);
}

static void splice_poll_update(struct pt_relay *r)
{
	int ev[2] = { 0, 0 };

	if (r->up.want_read)
		ev[0] |= UV_READABLE;
	if (r->up.want_write)
		ev[1] |= UV_WRITABLE;
	if (r->down.want_read)
		ev[1] |= UV_READABLE;
	if (r->down.want_write)
		ev[0] |= UV_WRITABLE;
	for (int i = 0; i < 2; i++) {
		if (ev[i])
			uv_poll_start(&r->sp->poll[i], ev[i], on_poll);
		else
			uv_poll_stop(&r->sp->poll[i]);
	}
}

/* Set up the splice path; returns 0, or a negative errno to fall back to
 * the stream path (nothing has moved yet then). */
static int splice_setup(struct pt_relay *r)
{
	int cfd = pt_stream_fileno(r->client), sfd = pt_stream_fileno(r->server);
	struct relay_dir *dirs[2] = { &r->up, &r->down };
	struct relay_splice *sp;

	if (cfd < 0 || sfd < 0)
		return -ENOTSUP;
	sp = r->sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->fd[0] = fcntl(cfd, F_DUPFD_CLOEXEC, 0);
	sp->fd[1] = fcntl(sfd, F_DUPFD_CLOEXEC, 0);
	if (sp->fd[0] == -1 || sp->fd[1] == -1)
		goto fail;
	for (int i = 0; i < 2; i++) {
		if (pipe2(dirs[i]->pipe, O_NONBLOCK | O_CLOEXEC) == -1)
			goto fail;
		/* A larger pipe moves more per splice; the default works too. */
		(void)fcntl(dirs[i]->pipe[1], F_SETPIPE_SZ, SPLICE_PIPE_SIZE);
	}
	r->up.fd_in = sp->fd[0];
	r->up.fd_out = sp->fd[1];
	r->down.fd_in = sp->fd[1];
	r->down.fd_out = sp->fd[0];
	for (int i = 0; i < 2; i++) {
		if (uv_poll_init(r->loop, &sp->poll[i], sp->fd[i]) != 0)
			goto fail;
		sp->poll[i].data = r;
		sp->polled++;
	}
	r->st.spliced = 1;
	return 0;
fail:
	/* Nothing is polled yet, so the handles close without a loop turn
	 * mattering; the struct goes when the relay does. */
	for (int i = 0; i < sp->polled; i++)
		uv_close((uv_handle_t *)&sp->poll[i], NULL);
	sp->polled = 0;
	for (int i = 0; i < 2; i++) {
		if (sp->fd[i] >= 0)
			close(sp->fd[i]);
		sp->fd[i] = -1;
		for (int j = 0; j < 2; j++) {
			if (dirs[i]->pipe[j] >= 0)
				close(dirs[i]->pipe[j]);
			dirs[i]->pipe[j] = -1;
		}
	}
	return -ENOTSUP;
}

/* --- common ------------------------------------------------------------- */

static void on_timer(uv_timer_t *t)
{
	struct pt_relay *r = t->data;
	uint64_t now = uv_now(r->loop), last = r->st.start_ms;

	if (r->st.last_up_ms > last)
		last = r->st.last_up_ms;
	if (r->st.last_down_ms > last)
		last = r->st.last_down_ms;
	if (now - last >= r->idle_ms) {
		relay_end(r, UV_ETIMEDOUT);
		return;
	}
	uv_timer_start(&r->timer, on_timer, r->idle_ms - (now - last), 0);
}

struct pt_relay *pt_relay_start(uv_loop_t *loop, struct pt_stream *client, struct pt_stream *server,
				uint64_t idle_timeout_ms, pt_relay_done_cb cb, void *data)
{
	struct pt_relay *r = calloc(1, sizeof(*r));
	int rc = 0;

	if (!r)
		return NULL;
	r->loop = loop;
	r->client = client;
	r->server = server;
	r->cb = cb;
	r->data = data;
	r->idle_ms = idle_timeout_ms;
	r->st.start_ms = uv_now(loop);
	r->up = (struct relay_dir){ .r = r,
				    .from = client,
				    .to = server,
				    .bytes = &r->st.bytes_up,
				    .last_ms = &r->st.last_up_ms,
				    .pipe = { -1, -1 } };
	r->down = (struct relay_dir){ .r = r,
				      .from = server,
				      .to = client,
				      .bytes = &r->st.bytes_down,
				      .last_ms = &r->st.last_down_ms,
				      .pipe = { -1, -1 } };
	client->data = &r->up;
	server->data = &r->down;
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	if (idle_timeout_ms)
		uv_timer_start(&r->timer, on_timer, idle_timeout_ms, 0);

	if (pt_stream_is_plain(client) && pt_stream_is_plain(server) && splice_setup(r) == 0) {
		rc = splice_dir(&r->up);
		if (rc == 0 && !r->ending)
			rc = splice_dir(&r->down);
		if (rc == 0 && !r->ending)
			splice_poll_update(r);
	} else {
		rc = pt_stream_read_start(client, on_read);
		if (rc == 0)
			rc = pt_stream_read_start(server, on_read);
	}
	if (rc < 0)
		relay_end(r, rc);
	return r;
}

void pt_relay_stop(struct pt_relay *r)
{
	relay_end(r, UV_ECANCELED);
}

void pt_relay_count(struct pt_relay *r, struct pt_series *up, struct pt_series *down)
{
	/* What moved before (the splice path starts moving at once). */
	pt_series_add(up, r->st.bytes_up);
	pt_series_add(down, r->st.bytes_down);
	r->up.total = up;
	r->down.total = down;
}

const struct pt_relay_stats *pt_relay_stats(const struct pt_relay *r)
{
	return &r->st;
}

void *pt_relay_data(const struct pt_relay *r)
{
	return r->data;
}
