/* test_relay.c - the relay over real loopback sockets, TLS and splice paths. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "portico/buf.h"
#include "relay_fixture.h"
#include "tls_fixture.h"

static struct tls_fixture fx;
static struct relay_fixture rf;
static SSL_CTX *sctx, *cctx;

static void setup(void)
{
	struct rlimit rl;

	signal(SIGPIPE, SIG_IGN);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	tls_fixture_init(&fx);
	sctx = tls_fixture_server(&fx);
	cctx = tls_fixture_client(fx.cert);
}

static void teardown(void)
{
	tls_fixture_fini(&fx);
}

TestSuite(relay, .init = setup, .fini = teardown, .timeout = 120);

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A client connection: a socket, with TLS on top when tls is set. */
struct client {
	int fd;
	SSL *ssl;
};

static struct client client_open(int port, int tls)
{
	struct client c = { .fd = fixture_connect(port) };

	if (tls) {
		c.ssl = SSL_new(cctx);
		SSL_set_fd(c.ssl, c.fd);
		SSL_set1_host(c.ssl, "localhost");
		cr_assert_eq(SSL_connect(c.ssl), 1, "TLS handshake through the relay failed");
	}
	return c;
}

static void client_close(struct client *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
}

static void set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* Send `len` bytes, then end the sending side (close_notify and FIN),
 * while reading whatever comes back until EOF.  Returns bytes received. */
static size_t client_exchange(struct client *c, const char *out, size_t len, char *in, size_t cap)
{
	size_t sent = 0, got = 0;
	int shut = 0, eof = 0;

	set_nonblock(c->fd, 1);
	while (!eof) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int progress = 0;

		if (sent < len) {
			ssize_t n;
			size_t chunk = len - sent > 65536 ? 65536 : len - sent;
			if (c->ssl) {
				size_t w;
				int r = SSL_write_ex(c->ssl, out + sent, chunk, &w);
				n = r == 1 ? (ssize_t)w : -1;
				if (r != 1) {
					int e = SSL_get_error(c->ssl, r);
					cr_assert(e == SSL_ERROR_WANT_WRITE ||
							  e == SSL_ERROR_WANT_READ,
						  "SSL_write error %d", e);
				}
			} else {
				n = send(c->fd, out + sent, chunk, MSG_NOSIGNAL);
				if (n < 0)
					cr_assert_eq(errno, EAGAIN, "send: %m");
			}
			if (n > 0) {
				sent += n;
				progress = 1;
			}
		}
		if (sent == len && !shut) {
			if (c->ssl)
				SSL_shutdown(c->ssl);
			shutdown(c->fd, SHUT_WR);
			shut = 1;
		}
		for (;;) {
			ssize_t n;
			cr_assert_lt(got, cap, "more bytes came back than were expected");
			if (c->ssl) {
				size_t r;
				int rc = SSL_read_ex(c->ssl, in + got, cap - got, &r);
				if (rc == 1) {
					n = (ssize_t)r;
				} else {
					int e = SSL_get_error(c->ssl, rc);
					if (e == SSL_ERROR_ZERO_RETURN) {
						n = 0;
					} else {
						cr_assert(e == SSL_ERROR_WANT_READ ||
								  e == SSL_ERROR_WANT_WRITE,
							  "SSL_read error %d", e);
						n = -1;
						errno = EAGAIN;
					}
				}
			} else {
				n = recv(c->fd, in + got, cap - got, 0);
			}
			if (n > 0) {
				got += n;
				progress = 1;
				continue;
			}
			if (n == 0)
				eof = 1;
			else
				cr_assert_eq(errno, EAGAIN, "recv: %m");
			break;
		}
		if (!progress && !eof) {
			if (sent < len)
				p.events |= POLLOUT;
			cr_assert_gt(poll(&p, 1, 10000), 0, "relay stalled");
		}
	}
	set_nonblock(c->fd, 0);
	return got;
}

static int all_done_1(struct relay_fixture *f)
{
	return atomic_load(&f->relays_done) >= 1;
}

/* The same 10 MiB through the TLS path and the splice path come back the same. */
Test(relay, tls_and_splice_paths_carry_the_same_bytes)
{
	size_t len = 10 << 20;
	char *out = malloc(len), *in_tls = malloc(len + 1), *in_plain = malloc(len + 1);

	for (size_t i = 0; i < len; i++)
		out[i] = (char)(rand() >> 7);

	relay_fixture_start(&rf, sctx, BACKEND_ECHO, 0);
	struct client c = client_open(rf.front_port, 1);
	cr_assert_eq(client_exchange(&c, out, len, in_tls, len + 1), len);
	client_close(&c);
	cr_assert(fixture_wait(all_done_1, &rf, 5000));
	cr_assert_eq(atomic_load(&rf.spliced), 0);
	cr_assert_eq(atomic_load(&rf.bytes_up), len);
	cr_assert_eq(atomic_load(&rf.bytes_down), len);
	relay_fixture_stop(&rf);

	relay_fixture_start(&rf, NULL, BACKEND_ECHO, 0);
	c = client_open(rf.front_port, 0);
	cr_assert_eq(client_exchange(&c, out, len, in_plain, len + 1), len);
	client_close(&c);
	cr_assert(fixture_wait(all_done_1, &rf, 5000));
	cr_assert_eq(atomic_load(&rf.spliced), 1, "plain sockets on both sides must splice");
	cr_assert_eq(atomic_load(&rf.bytes_up), len);
	cr_assert_eq(atomic_load(&rf.bytes_down), len);
	relay_fixture_stop(&rf);

	cr_assert_eq(memcmp(in_tls, out, len), 0, "TLS path changed the bytes");
	cr_assert_eq(memcmp(in_plain, out, len), 0, "splice path changed the bytes");
	cr_assert_eq(pt_chunk_in_use(), 0, "chunks still held: %lld", (long long)pt_chunk_in_use());
	free(out);
	free(in_tls);
	free(in_plain);
}

/* A backend that never reads: the client ends up blocked, and the relay
 * holds no more than its bound of chunks however long the client pushes. */
static void stalled_backend(int tls)
{
	static char block[65536];
	uint64_t sent = 0, t0, last_progress;
	int64_t max_chunks = 0;

	relay_fixture_start(&rf, tls ? sctx : NULL, BACKEND_STALL, 0);
	struct client c = client_open(rf.front_port, tls);
	set_nonblock(c.fd, 1);
	t0 = last_progress = now_ms();
	while (now_ms() - last_progress < 1000 && now_ms() - t0 < 20000) {
		ssize_t n;
		if (c.ssl) {
			size_t w;
			n = SSL_write_ex(c.ssl, block, sizeof(block), &w) == 1 ? (ssize_t)w : -1;
		} else {
			n = send(c.fd, block, sizeof(block), MSG_NOSIGNAL);
		}
		if (n > 0) {
			sent += n;
			last_progress = now_ms();
		} else {
			struct pollfd p = { .fd = c.fd, .events = POLLOUT };
			poll(&p, 1, 50);
		}
		if (pt_chunk_in_use() > max_chunks)
			max_chunks = pt_chunk_in_use();
	}
	/* Kernel socket buffers on loopback hold a few MiB at most; a relay
	 * that kept reading would have taken everything. */
	cr_assert_lt(sent, 64ull << 20, "the client was never held back (%llu bytes sent)",
		     (unsigned long long)sent);
	cr_assert_gt(sent, 0);
	/* TLS: two queued ciphertext chunks and one plaintext chunk in flight;
	 * splice: none (the bytes wait in the kernel). */
	cr_assert_leq(max_chunks, tls ? 4 : 0, "relay held %lld chunks", (long long)max_chunks);
	client_close(&c);
	relay_fixture_stop(&rf);
}

Test(relay, stalled_backend_bounds_memory_tls)
{
	stalled_backend(1);
}

Test(relay, stalled_backend_bounds_memory_splice)
{
	stalled_backend(0);
}

/* The client's EOF reaches the backend, whose answer still comes back. */
static void half_close(int tls)
{
	size_t len = 3 << 20;
	char *out = calloc(1, len), in[64];

	relay_fixture_start(&rf, tls ? sctx : NULL, BACKEND_COUNT_REPLY, 0);
	struct client c = client_open(rf.front_port, tls);
	size_t got = client_exchange(&c, out, len, in, sizeof(in));
	in[got < sizeof(in) ? got : sizeof(in) - 1] = '\0';
	cr_assert_str_eq(in, "got 3145728\n");
	client_close(&c);
	cr_assert(fixture_wait(all_done_1, &rf, 5000));
	cr_assert_eq(atomic_load(&rf.last_status), 0, "relay ended with %d",
		     atomic_load(&rf.last_status));
	relay_fixture_stop(&rf);
	free(out);
}

Test(relay, half_close_tls)
{
	half_close(1);
}

Test(relay, half_close_splice)
{
	half_close(0);
}

static void idle_timeout(int tls)
{
	char buf[8];
	uint64_t t0;

	relay_fixture_start(&rf, tls ? sctx : NULL, BACKEND_ECHO, 400);
	/* Traffic every 150 ms keeps the connection open past the timeout. */
	struct client c = client_open(rf.front_port, tls);
	for (int i = 0; i < 6; i++) {
		usleep(150000);
		if (c.ssl) {
			cr_assert_eq(SSL_write(c.ssl, "x", 1), 1);
			cr_assert_eq(SSL_read(c.ssl, buf, 1), 1);
		} else {
			cr_assert_eq(send(c.fd, "x", 1, 0), 1);
			cr_assert_eq(recv(c.fd, buf, 1, 0), 1);
		}
	}
	cr_assert_eq(atomic_load(&rf.relays_done), 0, "closed while in use");
	/* Silence closes it after the timeout, not before. */
	t0 = now_ms();
	if (c.ssl)
		cr_assert_leq(SSL_read(c.ssl, buf, 1), 0);
	else
		cr_assert_leq(recv(c.fd, buf, 1, 0), 0);
	uint64_t waited = now_ms() - t0;
	cr_assert_geq(waited, 300, "closed after %llu ms", (unsigned long long)waited);
	cr_assert_lt(waited, 3000, "closed after %llu ms", (unsigned long long)waited);
	cr_assert(fixture_wait(all_done_1, &rf, 2000));
	cr_assert_eq(atomic_load(&rf.last_status), UV_ETIMEDOUT);
	client_close(&c);
	relay_fixture_stop(&rf);
}

Test(relay, idle_timeout_tls)
{
	idle_timeout(1);
}

Test(relay, idle_timeout_splice)
{
	idle_timeout(0);
}

/* 1,000 connections open at once, each with its own bytes. */
#define NCONN 1000

static int all_done_n(struct relay_fixture *f)
{
	return atomic_load(&f->relays_done) >= NCONN;
}

static void concurrent(int tls)
{
	static struct client c[NCONN];
	char msg[1024], back[1024];

	relay_fixture_start(&rf, tls ? sctx : NULL, BACKEND_ECHO, 0);
	for (int i = 0; i < NCONN; i++)
		c[i] = client_open(rf.front_port, tls);
	for (int i = 0; i < NCONN; i++) {
		int n = snprintf(msg, sizeof(msg), "connection %d ", i);
		memset(msg + n, 'a' + i % 26, sizeof(msg) - n);
		if (c[i].ssl)
			cr_assert_eq(SSL_write(c[i].ssl, msg, sizeof(msg)), (int)sizeof(msg));
		else
			cr_assert_eq(send(c[i].fd, msg, sizeof(msg), 0), (ssize_t)sizeof(msg));
	}
	for (int i = 0; i < NCONN; i++) {
		size_t got = 0;
		int n = snprintf(msg, sizeof(msg), "connection %d ", i);
		memset(msg + n, 'a' + i % 26, sizeof(msg) - n);
		while (got < sizeof(back)) {
			int r = c[i].ssl ? SSL_read(c[i].ssl, back + got, sizeof(back) - got)
					 : (int)recv(c[i].fd, back + got, sizeof(back) - got, 0);
			cr_assert_gt(r, 0, "connection %d ended early", i);
			got += r;
		}
		cr_assert_eq(memcmp(back, msg, sizeof(msg)), 0, "connection %d got other bytes", i);
	}
	for (int i = 0; i < NCONN; i++)
		client_close(&c[i]);
	cr_assert(fixture_wait(all_done_n, &rf, 20000), "%d of %d relays ended",
		  atomic_load(&rf.relays_done), NCONN);
	cr_assert_eq(atomic_load(&rf.bytes_up), (unsigned long long)NCONN * sizeof(msg));
	cr_assert_eq(atomic_load(&rf.bytes_down), (unsigned long long)NCONN * sizeof(msg));
	relay_fixture_stop(&rf);
	cr_assert_eq(pt_chunk_in_use(), 0, "chunks still held: %lld", (long long)pt_chunk_in_use());
}

Test(relay, thousand_concurrent_connections_tls)
{
	concurrent(1);
}

Test(relay, thousand_concurrent_connections_splice)
{
	concurrent(0);
}
