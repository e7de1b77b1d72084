/*
 * bench-loadgen - the one load generator of tests/bench/relay.sh.
 *
 *   bench-loadgen -m MODE -p PORT [-H HOST] [--plain] [options]
 *
 * Talks to a relay in front of bench-backend (or to bench-backend itself with
 * --plain) and prints its results as key=value lines on stdout; errors go to
 * stderr and make the exit status 1.  Modes:
 *
 *   bulk       one connection, "BULK <bytes>", read it all; checks the count
 *              and the backend's byte pattern; bytes, seconds, mbps (10^6 B/s)
 *   handshake  full TLS handshakes (no resumption) for --seconds, --concurrency
 *              connections in flight; each one: handshake, close_notify, wait
 *              for the relay to close; handshakes_per_s
 *   latency    one connection, "ECHO", then --count ping-pongs of --size
 *              bytes after --warmup unrecorded ones; rtt_p50_us, rtt_p99_us...
 *   idle       --count TLS connections, each with "ECHO" and one round trip so
 *              that the relay surely has its backend connection; prints
 *              "ready" and holds them until stdin reaches EOF or SIGTERM
 *
 * The TLS client accepts TLS 1.2 and 1.3 with OpenSSL's default suites and
 * does not verify the certificate (a benchmark, not a client); the protocol,
 * suite and group of the first handshake are printed once.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define LG_PERIOD	251 /* bench-backend's BULK pattern: byte i is 1 + i % 251 */
#define LG_READ_SIZE	(256 * 1024)
#define LG_MAX_INFLIGHT 1024

enum lg_mode { LG_BULK, LG_HANDSHAKE, LG_LATENCY, LG_IDLE };

struct lg_opts {
	enum lg_mode mode;
	const char *host;
	const char *port;
	int plain;
	uint64_t bytes;
	double seconds;
	int concurrency;
	long count;
	long warmup;
	size_t size;
};

static struct addrinfo *lg_addr;
static SSL_CTX *lg_ctx;
static int lg_printed_tls;
static unsigned long lg_tickets;
static volatile sig_atomic_t lg_stop;

static void lg_die(const char *fmt, ...)
{
	va_list ap;

	fputs("bench-loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static double lg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double lg_cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Counts the TLS 1.3 session tickets the server sends (under TLS 1.2 every
 * new session would count): the relays are told not to send any, and this
 * shows whether they could obey. */
static int lg_new_session(SSL *ssl, SSL_SESSION *sess)
{
	lg_tickets++;
	return 0; /* not kept: no resumption */
}

static void lg_tls_init(const struct lg_opts *o)
{
	lg_ctx = SSL_CTX_new(TLS_client_method());
	if (!lg_ctx)
		lg_die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(lg_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(lg_ctx, SSL_VERIFY_NONE, NULL);
	/* Client-side cache on only so that the new-session callback reports
	 * tickets; nothing is ever offered for resumption. */
	SSL_CTX_set_session_cache_mode(lg_ctx,
				       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(lg_ctx, lg_new_session);
	if (o->mode == LG_BULK) {
		SSL_CTX_set_read_ahead(lg_ctx, 1);
		SSL_CTX_set_default_read_buffer_len(lg_ctx, LG_READ_SIZE);
	}
	if (o->mode == LG_IDLE)
		SSL_CTX_set_mode(lg_ctx, SSL_MODE_RELEASE_BUFFERS);
}

static void lg_print_tls(SSL *ssl)
{
	int nid;

	if (lg_printed_tls)
		return;
	lg_printed_tls = 1;
	printf("protocol=%s\n", SSL_get_version(ssl));
	printf("cipher=%s\n", SSL_get_cipher_name(ssl));
	nid = SSL_get_negotiated_group(ssl);
	if (nid > 0) {
		const char *name = SSL_group_to_name(ssl, nid);

		printf("group=%s\n", name ? name : OBJ_nid2sn(nid));
	}
}

static void lg_resolve(const struct lg_opts *o)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	int rc = getaddrinfo(o->host, o->port, &hints, &lg_addr);

	if (rc)
		lg_die("%s:%s: %s", o->host, o->port, gai_strerror(rc));
}

/* A blocking connection with Nagle off (the latency test needs that). */
static int lg_connect(void)
{
	int fd, one = 1;

	fd = socket(lg_addr->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd == -1)
		lg_die("socket: %s", strerror(errno));
	if (connect(fd, lg_addr->ai_addr, lg_addr->ai_addrlen) == -1)
		lg_die("connect: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static SSL *lg_tls_connect(int fd)
{
	SSL *ssl = SSL_new(lg_ctx);

	if (!ssl || !SSL_set_fd(ssl, fd))
		lg_die("SSL_new failed");
	if (SSL_connect(ssl) != 1)
		lg_die("TLS handshake failed");
	lg_print_tls(ssl);
	return ssl;
}

/* One stream, TLS or plain: the modes below do not care which. */
struct lg_conn {
	int fd;
	SSL *ssl;
};

static void lg_open(struct lg_conn *c, const struct lg_opts *o)
{
	c->fd = lg_connect();
	c->ssl = o->plain ? NULL : lg_tls_connect(c->fd);
}

static void lg_write_all(struct lg_conn *c, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n;

		if (c->ssl) {
			size_t w;

			if (SSL_write_ex(c->ssl, p, len, &w) != 1)
				lg_die("SSL_write failed");
			n = (ssize_t)w;
		} else {
			n = write(c->fd, p, len);
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1)
				lg_die("write: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
}

/* A TCP EOF without close_notify, as OpenSSL 3 reports it. */
static int lg_eof_error(int err)
{
	if (err == SSL_ERROR_SYSCALL && errno == 0)
		return 1;
	return err == SSL_ERROR_SSL &&
	       ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

/* Returns the byte count, 0 at EOF; *clean says whether the TLS stream ended
 * with close_notify.  Errors are fatal. */
static size_t lg_read(struct lg_conn *c, void *buf, size_t len, int *clean)
{
	for (;;) {
		if (c->ssl) {
			size_t r;
			int err;

			if (SSL_read_ex(c->ssl, buf, len, &r) == 1)
				return r;
			err = SSL_get_error(c->ssl, 0);
			if (err == SSL_ERROR_ZERO_RETURN) {
				if (clean)
					*clean = 1;
				return 0;
			}
			/* A relay may end the stream by closing TCP without a
			 * close_notify; the byte count tells whether that hid a
			 * truncation. */
			if (lg_eof_error(err)) {
				ERR_clear_error();
				return 0;
			}
			lg_die("SSL_read failed (error %d)", err);
		} else {
			ssize_t n = read(c->fd, buf, len);

			if (n >= 0)
				return (size_t)n;
			if (errno != EINTR)
				lg_die("read: %s", strerror(errno));
		}
	}
}

static void lg_close(struct lg_conn *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd != -1)
		close(c->fd);
	c->fd = -1;
}

static int lg_bulk(const struct lg_opts *o)
{
	unsigned char *buf, *pat;
	struct lg_conn c;
	char line[64];
	uint64_t total = 0;
	int clean = 0;
	double t0, t1, cpu0, cpu1;

	buf = malloc(LG_READ_SIZE);
	pat = malloc(LG_READ_SIZE + LG_PERIOD);
	if (!buf || !pat)
		lg_die("out of memory");
	for (size_t i = 0; i < LG_READ_SIZE + LG_PERIOD; i++)
		pat[i] = (unsigned char)(1 + i % LG_PERIOD);

	lg_open(&c, o);
	snprintf(line, sizeof(line), "BULK %llu\n", (unsigned long long)o->bytes);
	cpu0 = lg_cpu_seconds();
	t0 = lg_now();
	lg_write_all(&c, line, strlen(line));
	for (;;) {
		size_t n = lg_read(&c, buf, LG_READ_SIZE, &clean);

		if (n == 0)
			break;
		if (memcmp(buf, pat + total % LG_PERIOD, n) != 0)
			lg_die("wrong bytes in the stream after offset %llu",
			       (unsigned long long)total);
		total += n;
		if (total > o->bytes)
			break;
	}
	t1 = lg_now();
	cpu1 = lg_cpu_seconds();
	lg_close(&c);
	printf("bytes=%llu\n", (unsigned long long)total);
	printf("seconds=%.4f\n", t1 - t0);
	printf("mbps=%.1f\n", (double)total / (t1 - t0) / 1e6);
	printf("client_cpu_seconds=%.3f\n", cpu1 - cpu0);
	if (!o->plain)
		printf("close_notify=%s\n", clean ? "yes" : "no");
	free(buf);
	free(pat);
	if (total != o->bytes) {
		fprintf(stderr, "bench-loadgen: got %llu bytes, asked for %llu\n",
			(unsigned long long)total, (unsigned long long)o->bytes);
		return 1;
	}
	return 0;
}

static int lg_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double lg_percentile(const double *s, long n, double p)
{
	long rank = (long)(p / 100.0 * (double)n + 0.999999);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return s[rank - 1];
}

static int lg_latency(const struct lg_opts *o)
{
	unsigned char *msg, *back;
	struct lg_conn c;
	double *rtt, sum = 0;
	long total = o->warmup + o->count;

	msg = malloc(o->size);
	back = malloc(o->size);
	rtt = malloc(sizeof(*rtt) * (size_t)o->count);
	if (!msg || !back || !rtt)
		lg_die("out of memory");

	lg_open(&c, o);
	lg_write_all(&c, "ECHO\n", 5);
	for (long i = 0; i < total; i++) {
		size_t got = 0;
		double t0, t1;

		for (size_t j = 0; j < o->size; j++)
			msg[j] = (unsigned char)('A' + (i + (long)j) % 26);
		t0 = lg_now();
		lg_write_all(&c, msg, o->size);
		while (got < o->size) {
			size_t n = lg_read(&c, back + got, o->size - got, NULL);

			if (n == 0)
				lg_die("EOF after %ld round trips", i);
			got += n;
		}
		t1 = lg_now();
		if (memcmp(msg, back, o->size) != 0)
			lg_die("echo differs from what was sent (round trip %ld)", i);
		if (i >= o->warmup) {
			rtt[i - o->warmup] = (t1 - t0) * 1e6;
			sum += rtt[i - o->warmup];
		}
	}
	lg_close(&c);
	qsort(rtt, (size_t)o->count, sizeof(*rtt), lg_cmp_double);
	printf("count=%ld\n", o->count);
	printf("size=%zu\n", o->size);
	printf("rtt_min_us=%.1f\n", rtt[0]);
	printf("rtt_p50_us=%.1f\n", lg_percentile(rtt, o->count, 50));
	printf("rtt_p99_us=%.1f\n", lg_percentile(rtt, o->count, 99));
	printf("rtt_mean_us=%.1f\n", sum / (double)o->count);
	printf("rtt_max_us=%.1f\n", rtt[o->count - 1]);
	if (!o->plain)
		printf("session_tickets=%lu\n", lg_tickets);
	free(msg);
	free(back);
	free(rtt);
	return 0;
}

/* handshake mode: a small state machine per connection in flight. */
enum hs_state { HS_CONNECT, HS_HANDSHAKE, HS_DRAIN };

struct hs_conn {
	int fd;
	SSL *ssl;
	enum hs_state state;
	uint32_t events;
	double started;
};

struct hs_run {
	int epfd;
	double deadline;
	unsigned long done, errors, resets, bare_eofs, timeouts, connect_errors;
};

static void hs_end(struct hs_conn *c)
{
	if (c->ssl)
		SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd != -1)
		close(c->fd); /* also leaves the epoll set */
	c->fd = -1;
}

static void hs_want(struct hs_run *r, struct hs_conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events)
		return;
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
		lg_die("epoll_ctl: %s", strerror(errno));
	c->events = events;
}

/* Start a non-blocking connect to the target, watched by epfd for
 * writability with `ptr` as its cookie.  Returns the socket. */
static int lg_connect_nb(int epfd, void *ptr)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = ptr };
	int one = 1, fd;

	fd = socket(lg_addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		lg_die("socket: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, lg_addr->ai_addr, lg_addr->ai_addrlen) == -1 && errno != EINPROGRESS)
		lg_die("connect: %s", strerror(errno));
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
		lg_die("epoll_ctl: %s", strerror(errno));
	return fd;
}

static void hs_start(struct hs_run *r, struct hs_conn *c)
{
	c->ssl = NULL;
	c->state = HS_CONNECT;
	c->events = EPOLLOUT;
	c->started = lg_now();
	c->fd = lg_connect_nb(r->epfd, c);
}

static void hs_step(struct hs_run *r, struct hs_conn *c)
{
	char buf[4096];
	int rc, err, soerr = 0;
	socklen_t len = sizeof(soerr);

	switch (c->state) {
	case HS_CONNECT:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1 || soerr) {
			if (!r->connect_errors++)
				fprintf(stderr, "bench-loadgen: connect: %s\n", strerror(soerr));
			hs_end(c);
			return;
		}
		c->ssl = SSL_new(lg_ctx);
		if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
			lg_die("SSL_new failed");
		c->state = HS_HANDSHAKE;
		/* fall through */
	case HS_HANDSHAKE:
		rc = SSL_connect(c->ssl);
		if (rc != 1) {
			err = SSL_get_error(c->ssl, rc);
			if (err == SSL_ERROR_WANT_READ) {
				hs_want(r, c, EPOLLIN);
				return;
			}
			if (err == SSL_ERROR_WANT_WRITE) {
				hs_want(r, c, EPOLLOUT);
				return;
			}
			if (!r->errors++) {
				fprintf(stderr, "bench-loadgen: handshake failed:\n");
				ERR_print_errors_fp(stderr);
			}
			ERR_clear_error();
			hs_end(c);
			return;
		}
		if (lg_now() < r->deadline)
			r->done++;
		lg_print_tls(c->ssl);
		/* close_notify and a FIN, then wait for the relay to close its
		 * side: the next connection starts only once the relay has
		 * really finished with this one. */
		SSL_shutdown(c->ssl);
		shutdown(c->fd, SHUT_WR);
		c->state = HS_DRAIN;
		hs_want(r, c, EPOLLIN);
		/* fall through */
	case HS_DRAIN:
		for (;;) {
			size_t n;

			if (SSL_read_ex(c->ssl, buf, sizeof(buf), &n) == 1)
				continue;
			err = SSL_get_error(c->ssl, 0);
			if (err == SSL_ERROR_WANT_READ)
				return;
			if (lg_eof_error(err))
				r->bare_eofs++;
			else if (err != SSL_ERROR_ZERO_RETURN)
				r->resets++;
			ERR_clear_error();
			hs_end(c);
			return;
		}
	}
}

static int lg_handshake(const struct lg_opts *o)
{
	static struct hs_conn conns[LG_MAX_INFLIGHT];
	struct epoll_event evs[64];
	struct hs_run r = { 0 };
	double t0, t1, cpu0, cpu1;
	int n = o->concurrency;

	r.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r.epfd == -1)
		lg_die("epoll_create1: %s", strerror(errno));
	cpu0 = lg_cpu_seconds();
	t0 = lg_now();
	r.deadline = t0 + o->seconds;
	for (int i = 0; i < n; i++)
		hs_start(&r, &conns[i]);
	for (;;) {
		double now = lg_now();
		int k;

		if (now >= r.deadline)
			break;
		k = epoll_wait(r.epfd, evs, 64, 100);
		if (k == -1 && errno != EINTR)
			lg_die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < k; i++)
			hs_step(&r, evs[i].data.ptr);
		now = lg_now();
		for (int i = 0; i < n; i++) {
			struct hs_conn *c = &conns[i];

			if (c->fd != -1 && now - c->started > 5.0) {
				r.timeouts++;
				hs_end(c);
			}
			if (c->fd == -1 && now < r.deadline)
				hs_start(&r, c);
		}
		if (r.connect_errors > 100 || r.errors > 100)
			break;
	}
	t1 = lg_now();
	cpu1 = lg_cpu_seconds();
	for (int i = 0; i < n; i++)
		if (conns[i].fd != -1)
			hs_end(&conns[i]);
	if (t1 > r.deadline)
		t1 = r.deadline;
	printf("handshakes=%lu\n", r.done);
	printf("seconds=%.3f\n", t1 - t0);
	printf("handshakes_per_s=%.1f\n", (double)r.done / (t1 - t0));
	printf("concurrency=%d\n", n);
	printf("errors=%lu\n", r.errors + r.connect_errors);
	printf("resets=%lu\n", r.resets);
	printf("closes_without_close_notify=%lu\n", r.bare_eofs);
	printf("timeouts=%lu\n", r.timeouts);
	printf("session_tickets=%lu\n", lg_tickets);
	printf("client_cpu_seconds=%.3f\n", cpu1 - cpu0);
	close(r.epfd);
	if (r.connect_errors > 100 || r.errors > 100 || r.done == 0) {
		fprintf(stderr, "bench-loadgen: too many failed connections\n");
		return 1;
	}
	return 0;
}

/* idle mode: connections are opened --concurrency at a time, each through
 * connect, handshake, "ECHO" plus one message, and its echo. */
enum ic_state { IC_CONNECT, IC_HANDSHAKE, IC_SEND, IC_RECV, IC_READY };

#define IC_MSG_SIZE 64

struct ic_conn {
	int fd;
	SSL *ssl;
	enum ic_state state;
	uint32_t events;
	size_t got;
};

/* One nonblocking transfer, TLS or plain: > 0 bytes, 0 to wait (*want set),
 * -1 on EOF or error. */
static ssize_t ic_io(struct ic_conn *c, int writing, void *buf, size_t len, uint32_t *want)
{
	size_t n;
	ssize_t r;
	int ok, err;

	if (!c->ssl) {
		r = writing ? write(c->fd, buf, len) : read(c->fd, buf, len);
		if (r > 0)
			return r;
		if (r == -1 && (errno == EAGAIN || errno == EINTR)) {
			*want = writing ? EPOLLOUT : EPOLLIN;
			return 0;
		}
		return -1;
	}
	ok = writing ? SSL_write_ex(c->ssl, buf, len, &n) : SSL_read_ex(c->ssl, buf, len, &n);
	if (ok == 1)
		return (ssize_t)n;
	err = SSL_get_error(c->ssl, 0);
	if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
		*want = err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
		return 0;
	}
	return -1;
}

/* Moves c on as far as it goes; returns 1 once it is ready.  Any failure is
 * fatal: the memory figure needs every connection up. */
static int ic_step(int epfd, struct ic_conn *c, long i)
{
	static unsigned char msg[5 + IC_MSG_SIZE] = "ECHO\n";
	unsigned char back[IC_MSG_SIZE];
	struct epoll_event ev = { .data.ptr = c };
	uint32_t want = 0;
	socklen_t len = sizeof(int);
	int rc, soerr = 0;
	ssize_t n;

	memset(msg + 5, 'i', IC_MSG_SIZE);
	for (;;) {
		switch (c->state) {
		case IC_CONNECT:
			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == -1 || soerr)
				lg_die("idle connection %ld: connect: %s", i, strerror(soerr));
			if (lg_ctx) {
				c->ssl = SSL_new(lg_ctx);
				if (!c->ssl || !SSL_set_fd(c->ssl, c->fd))
					lg_die("SSL_new failed");
			}
			c->state = c->ssl ? IC_HANDSHAKE : IC_SEND;
			continue;
		case IC_HANDSHAKE:
			rc = SSL_connect(c->ssl);
			if (rc != 1) {
				rc = SSL_get_error(c->ssl, rc);
				if (rc == SSL_ERROR_WANT_READ)
					want = EPOLLIN;
				else if (rc == SSL_ERROR_WANT_WRITE)
					want = EPOLLOUT;
				else
					lg_die("idle connection %ld: handshake failed", i);
				break;
			}
			lg_print_tls(c->ssl);
			c->state = IC_SEND;
			continue;
		case IC_SEND:
			/* One write, so nothing is ever half sent. */
			n = ic_io(c, 1, msg, sizeof(msg), &want);
			if (n < 0)
				lg_die("idle connection %ld: write failed", i);
			if (n == 0)
				break;
			c->state = IC_RECV;
			continue;
		case IC_RECV:
			n = ic_io(c, 0, back, sizeof(back) - c->got, &want);
			if (n < 0)
				lg_die("idle connection %ld: EOF or error before the echo", i);
			if (n == 0)
				break;
			c->got += (size_t)n;
			if (c->got < IC_MSG_SIZE)
				continue;
			c->state = IC_READY;
			/* Done with: keep the socket, forget the events. */
			if (epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL) == -1)
				lg_die("epoll_ctl: %s", strerror(errno));
			return 1;
		case IC_READY:
			return 1;
		}
		break;
	}
	if (want != c->events) {
		ev.events = want;
		if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1)
			lg_die("epoll_ctl: %s", strerror(errno));
		c->events = want;
	}
	return 0;
}

static void ic_start(int epfd, struct ic_conn *c)
{
	c->state = IC_CONNECT;
	c->events = EPOLLOUT;
	c->fd = lg_connect_nb(epfd, c);
}

static void lg_on_signal(int sig)
{
	lg_stop = 1;
}

static int lg_idle(const struct lg_opts *o)
{
	struct sigaction sa = { .sa_handler = lg_on_signal };
	struct epoll_event evs[64];
	struct ic_conn *conns;
	long started = 0, ready = 0;
	double t0, deadline;
	char buf[256];
	int epfd;

	/* No SA_RESTART: the read on stdin below must return on SIGTERM. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	conns = calloc((size_t)o->count, sizeof(*conns));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || epfd == -1)
		lg_die("out of memory or epoll_create1 failed");
	t0 = lg_now();
	deadline = t0 + 120;
	while (ready < o->count) {
		int k;

		while (started < o->count && started - ready < o->concurrency)
			ic_start(epfd, &conns[started++]);
		k = epoll_wait(epfd, evs, 64, 1000);
		if (k == -1 && errno != EINTR)
			lg_die("epoll_wait: %s", strerror(errno));
		if (lg_stop)
			return 1;
		if (lg_now() > deadline)
			lg_die("only %ld of %ld idle connections up after 120 s", ready, o->count);
		for (int j = 0; j < k; j++) {
			struct ic_conn *c = evs[j].data.ptr;

			ready += ic_step(epfd, c, (long)(c - conns));
		}
	}
	printf("connections=%ld\n", ready);
	printf("seconds=%.3f\n", lg_now() - t0);
	if (!o->plain)
		printf("session_tickets=%lu\n", lg_tickets);
	printf("ready\n");
	fflush(stdout);
	while (!lg_stop) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));

		if (n == 0 || (n == -1 && errno != EINTR))
			break;
	}
	/* Exit closes them all at once, as a crowd of clients going away would. */
	close(epfd);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench-loadgen -m bulk|handshake|latency|idle -p PORT [-H HOST] [--plain]\n"
		"       [--bytes N] [--seconds S] [--concurrency N] [--count N] [--warmup N]\n"
		"       [--size N]\n");
	exit(2);
}

static long lg_parse_long(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "plain", no_argument, NULL, 'P' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "seconds", required_argument, NULL, 't' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "count", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "size", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct lg_opts o = {
		.mode = -1,
		.host = "127.0.0.1",
		.bytes = 2147483648ULL,
		.seconds = 5,
		.concurrency = 16,
		.count = -1,
		.warmup = 1000,
		.size = 64,
	};
	static const char *const names[] = { "bulk", "handshake", "latency", "idle" };
	struct rlimit rl;
	char *end;
	int opt, rc = 1;

	while ((opt = getopt_long(argc, argv, "m:H:p:b:t:c:n:w:s:", opts, NULL)) != -1) {
		switch (opt) {
		case 'm':
			for (int i = 0; i < 4; i++)
				if (strcmp(optarg, names[i]) == 0)
					o.mode = (enum lg_mode)i;
			if ((int)o.mode < 0)
				usage();
			break;
		case 'H':
			o.host = optarg;
			break;
		case 'p':
			o.port = optarg;
			break;
		case 'P':
			o.plain = 1;
			break;
		case 'b':
			errno = 0;
			o.bytes = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end || o.bytes == 0)
				usage();
			break;
		case 't':
			o.seconds = strtod(optarg, &end);
			if (end == optarg || *end || !(o.seconds > 0 && o.seconds < 3600))
				usage();
			break;
		case 'c':
			o.concurrency = (int)lg_parse_long(optarg, 1, LG_MAX_INFLIGHT);
			break;
		case 'n':
			o.count = lg_parse_long(optarg, 1, 1000000);
			break;
		case 'w':
			o.warmup = lg_parse_long(optarg, 0, 1000000);
			break;
		case 's':
			o.size = (size_t)lg_parse_long(optarg, 1, 1 << 20);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (int)o.mode < 0 || !o.port)
		usage();
	if (o.count < 0)
		o.count = o.mode == LG_IDLE ? 2000 : 20000;
	if (o.plain && o.mode == LG_HANDSHAKE)
		lg_die("handshake mode needs TLS");

	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	lg_resolve(&o);
	if (!o.plain)
		lg_tls_init(&o);
	printf("mode=%s\n", names[o.mode]);
	printf("target=%s:%s\n", o.host, o.port);
	printf("transport=%s\n", o.plain ? "plain" : "tls");
	if (!o.plain)
		printf("openssl=%s\n", OpenSSL_version(OPENSSL_VERSION));
	switch (o.mode) {
	case LG_BULK:
		rc = lg_bulk(&o);
		break;
	case LG_HANDSHAKE:
		rc = lg_handshake(&o);
		break;
	case LG_LATENCY:
		rc = lg_latency(&o);
		break;
	case LG_IDLE:
		rc = lg_idle(&o);
		break;
	}
	fflush(stdout);
	freeaddrinfo(lg_addr);
	SSL_CTX_free(lg_ctx);
	return rc;
}
