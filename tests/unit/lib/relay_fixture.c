/* relay_fixture.c - see relay_fixture.h */
#include "relay_fixture.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "portico/buf.h"
#include "portico/relay.h"
#include "portico/tls.h"

/* Criterion's asserts may not run on the loop thread; a broken fixture
 * aborts, which the test reports as a crash. */
#define CHECK(x)                                                                                 \
	do {                                                                                     \
		if (!(x)) {                                                                      \
			fprintf(stderr, "%s:%d: fixture check failed: %s\n", __FILE__, __LINE__, \
				#x);                                                             \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/* Ports below the ephemeral range, tried until one is free. */
static int listen_free(uv_loop_t *loop, uv_tcp_t *tcp, uv_connection_cb cb)
{
	struct sockaddr_in sin;

	for (int i = 0; i < 200; i++) {
		int port = 20000 + rand() % 12000;
		uv_tcp_init(loop, tcp);
		uv_ip4_addr("127.0.0.1", port, &sin);
		if (uv_tcp_bind(tcp, (const struct sockaddr *)&sin, 0) == 0 &&
		    uv_listen((uv_stream_t *)tcp, 4096, cb) == 0)
			return port;
		uv_close((uv_handle_t *)tcp, NULL);
		uv_run(loop, UV_RUN_NOWAIT);
	}
	cr_assert_fail("no free port");
	return -1;
}

/* --- backend ------------------------------------------------------------ */

struct back_conn {
	struct relay_fixture *f;
	struct back_conn *next, **prevp;
	struct pt_stream *s;
	char *pending;
	uint64_t count;
	int eof;
};

static void back_closed(struct pt_stream *s)
{
	struct back_conn *b = s->data;

	if (b->next)
		b->next->prevp = b->prevp;
	*b->prevp = b->next;
	free(b);
}

static void back_read(struct pt_stream *s, ssize_t nread, char *chunk);

static void back_written(struct pt_stream *s, int status)
{
	struct back_conn *b = s->data;

	pt_chunk_put(b->pending);
	b->pending = NULL;
	if (status < 0 || b->eof) {
		pt_stream_close(s, back_closed);
		return;
	}
	pt_stream_read_start(s, back_read);
}

static void back_read(struct pt_stream *s, ssize_t nread, char *chunk)
{
	struct back_conn *b = s->data;
	int rc;

	if (nread < 0) {
		b->eof = 1;
		pt_stream_read_stop(s);
		if (nread == UV_EOF && b->f->mode == BACKEND_COUNT_REPLY) {
			char *reply = pt_chunk_get();
			int n = snprintf(reply, 64, "got %llu\n", (unsigned long long)b->count);
			b->pending = reply;
			rc = pt_stream_write(s, reply, n, back_written);
			if (rc == 0)
				return;
			pt_chunk_put(reply);
			b->pending = NULL;
		}
		pt_stream_close(s, back_closed);
		return;
	}
	b->count += nread;
	if (b->f->mode == BACKEND_COUNT_REPLY) {
		pt_chunk_put(chunk);
		return;
	}
	rc = pt_stream_write(s, chunk, nread, back_written);
	if (rc == PT_STREAM_DONE) {
		pt_chunk_put(chunk);
	} else if (rc == 0) {
		b->pending = chunk;
		pt_stream_read_stop(s);
	} else {
		pt_chunk_put(chunk);
		pt_stream_close(s, back_closed);
	}
}

static void on_back_conn(uv_stream_t *srv, int status)
{
	struct relay_fixture *f = srv->data;
	struct back_conn *b = calloc(1, sizeof(*b));

	b->f = f;
	b->s = pt_plain_new(&f->loop, UV_TCP);
	b->s->data = b;
	b->next = f->backs;
	if (b->next)
		b->next->prevp = &b->next;
	b->prevp = &f->backs;
	f->backs = b;
	CHECK(uv_accept(srv, pt_plain_uv(b->s)) == 0);
	if (f->mode != BACKEND_STALL)
		pt_stream_read_start(b->s, back_read);
	/* BACKEND_STALL: never read; the socket stays open until stop. */
}

/* --- front end: accept, connect the backend, relay ---------------------- */

struct front_conn {
	struct relay_fixture *f;
	struct pt_stream *client, *server;
	uv_connect_t req;
};

static void on_relay_done(struct pt_relay *r, int status)
{
	struct front_conn *c = pt_relay_data(r);
	const struct pt_relay_stats *st = pt_relay_stats(r);

	atomic_fetch_add(&c->f->bytes_up, st->bytes_up);
	atomic_fetch_add(&c->f->bytes_down, st->bytes_down);
	atomic_store(&c->f->spliced, st->spliced);
	atomic_store(&c->f->last_status, status);
	atomic_fetch_add(&c->f->relays_done, 1);
	free(c);
}

static void on_back_connected(uv_connect_t *req, int status)
{
	struct front_conn *c = req->data;
	struct pt_stream *front = c->client;

	CHECK(status == 0);
	if (c->f->server_ctx) {
		front = pt_tls_stream_new(c->client, c->f->server_ctx, 1, NULL);
		CHECK(front != NULL);
	}
	atomic_fetch_add(&c->f->relays_started, 1);
	CHECK(pt_relay_start(&c->f->loop, front, c->server, c->f->idle_ms, on_relay_done, c));
}

static void on_front_conn(uv_stream_t *srv, int status)
{
	struct relay_fixture *f = srv->data;
	struct front_conn *c = calloc(1, sizeof(*c));

	c->f = f;
	c->client = pt_plain_new(&f->loop, UV_TCP);
	c->server = pt_plain_new(&f->loop, UV_TCP);
	CHECK(uv_accept(srv, pt_plain_uv(c->client)) == 0);
	c->req.data = c;
	CHECK(uv_tcp_connect(&c->req, (uv_tcp_t *)pt_plain_uv(c->server),
			     (const struct sockaddr *)&f->back_addr, on_back_connected) == 0);
}

static void on_drain(uv_timer_t *t)
{
	struct relay_fixture *f = t->data;

	if (atomic_load(&f->relays_done) < atomic_load(&f->relays_started) || f->backs)
		return;
	uv_close((uv_handle_t *)&f->drain, NULL);
	uv_close((uv_handle_t *)&f->front, NULL);
	uv_close((uv_handle_t *)&f->back, NULL);
	uv_close((uv_handle_t *)&f->stop, NULL);
}

static void on_stop(uv_async_t *a)
{
	struct relay_fixture *f = a->data;

	for (struct back_conn *b = f->backs; b; b = b->next)
		pt_stream_close(b->s, back_closed);
	uv_timer_init(&f->loop, &f->drain);
	f->drain.data = f;
	uv_timer_start(&f->drain, on_drain, 0, 10);
}

static void run_loop(void *arg)
{
	struct relay_fixture *f = arg;

	uv_run(&f->loop, UV_RUN_DEFAULT);
	CHECK(uv_loop_close(&f->loop) == 0);
	pt_chunk_release_thread();
}

void relay_fixture_start(struct relay_fixture *f, SSL_CTX *server_ctx, enum backend_mode mode,
			 uint64_t idle_ms)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&f->back_addr;

	memset(f, 0, sizeof(*f));
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	f->server_ctx = server_ctx;
	f->mode = mode;
	f->idle_ms = idle_ms;
	cr_assert_eq(uv_loop_init(&f->loop), 0);
	f->back_port = listen_free(&f->loop, &f->back, on_back_conn);
	f->back.data = f;
	f->front_port = listen_free(&f->loop, &f->front, on_front_conn);
	f->front.data = f;
	uv_ip4_addr("127.0.0.1", f->back_port, sin);
	uv_async_init(&f->loop, &f->stop, on_stop);
	f->stop.data = f;
	cr_assert_eq(uv_thread_create(&f->thread, run_loop, f), 0);
}

void relay_fixture_stop(struct relay_fixture *f)
{
	uv_async_send(&f->stop);
	uv_thread_join(&f->thread);
}

int fixture_connect(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	cr_assert_neq(fd, -1);
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0, "connect: %m");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int fixture_wait(int (*pred)(struct relay_fixture *), struct relay_fixture *f, int ms)
{
	for (int i = 0; i < ms; i += 10) {
		if (pred(f))
			return 1;
		usleep(10000);
	}
	return pred(f);
}
