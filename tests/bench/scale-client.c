/*
 * scale-client - the clients of tests/bench/scale.sh: thousands of held
 * sessions through a gateway (or haproxy), and new logins timed while
 * they are held.
 *
 *   scale-client hold  -k KIND -p PORT -n N [options]
 *   scale-client login -k KIND -p PORT -n N [options]
 *
 * KIND says what a session is and how it is opened, in front of
 * bench-backend -g vnc|rdp:
 *   gw-vnc     the gateway's VNC front end: RFB 3.8, VeNCrypt X509Plain
 *              (TLS), then a user name and password: "USER#POOL" and -w
 *              (the broker's PAM and launch, gateway/authorize), or "ticket"
 *              and a ticket from the broker (login mode, and hold with -t)
 *   tls-vnc    a TLS-terminating TCP proxy (haproxy): TLS, then RFB with
 *              the backend itself (security type None)
 *   gw-rdp     the gateway's RDP passthrough: an X.224 Connection Request
 *              with "Cookie: msts=<ticket>" (a ticket from the broker)
 *   plain-rdp  a plain TCP proxy: the same request with a mstshash cookie
 * Once the backend's ServerInit or Connection Confirm is in, the session
 * sends "SCALE\n" and then, every -i milliseconds (sessions spread evenly
 * over the interval), one 8-byte message that the backend echoes: a few
 * bytes a second each way, as an idle desktop with a clock sends.
 *
 * Session i (0 <= i < N) belongs to user PREFIX%03d (i % -U) and pool
 * PREFIX%02d (i / -U), so that N = users x pools distinct sessions exist
 * at the broker (a user's second launch in a pool reconnects).
 *
 * hold: opens N sessions, -c at a time, prints "ready held=... failed=...
 * seconds=..." and then reads commands on stdin:
 *   stats            "held=N echo_p50_us=.. echo_p99_us=.. late=.. lost=.."
 *                    over the echoes since the last stats
 *   quiet, resume    stop sending messages, start again ("quiet=1|0")
 *   bulk K BYTES     K held sessions each ask for BYTES of the backend's
 *                    pattern at once; every byte is checked; prints
 *                    "bulk_started=K" at once (K held sessions to take
 *                    part), then "bulk_sessions=K bulk_bytes=.. bulk_seconds=..
 *                    bulk_mbps=.." (first request to last byte; MB = 10^6 B)
 * and closes everything at stdin's EOF.  A session that ends or fails is
 * counted and its reason printed once per reason on stderr.
 *
 * login: N new sessions one after another, each timed from its first step
 * to the backend's ServerInit (gw-vnc: a new HTTPS connection to the
 * broker, POST /login, POST /resources/POOL/launch, then the gateway with
 * the ticket; tls-vnc: connect, TLS, RFB); prints login_p50_ms,
 * login_p99_ms, login_max_ms.  Each session is closed after it is timed.
 *
 * Options: -H ADDR (127.0.0.1), -s K (spread connections over source
 * addresses 127.0.0.2 .. 127.0.0.K+1; 0: let the kernel pick), -c
 * concurrency (64), -i interval ms (1000), -U users (100), --user-prefix
 * (s), --pool-prefix (p), -w password, -b BROKER_URL (https://...:port)
 * with --cacert FILE for tickets, -t (hold gw-vnc with tickets).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define SC_PERIOD    251 /* bench-backend's pattern: byte i is 1 + i % 251 */
#define SC_TICKET    64
#define SC_MSG	     8
#define SC_SAMPLES   (1 << 20)
#define SC_READ_SIZE (256 * 1024)
#define SC_TICK_MS   10

enum sc_kind { GW_VNC, TLS_VNC, GW_RDP, PLAIN_RDP };

enum sc_state {
	S_FREE,	     /* not opened yet */
	S_CONNECT,   /* TCP connect in progress */
	S_TLS,	     /* TLS handshake */
	S_HANDSHAKE, /* RFB or X.224 steps (step, need) */
	S_HELD,	     /* sending a message now and then */
	S_BULK,	     /* reading its bulk stream */
	S_DONE,	     /* closed (failed, or a timed login) */
};

struct sc_sess {
	int fd;
	SSL *ssl;
	enum sc_state state;
	int step;
	size_t need, inlen;
	unsigned char in[512];
	double t0;	  /* its first step (login: the HTTPS login) */
	double echo_t0;	  /* the message out, or 0 */
	int want_bulk;	  /* asked for a bulk stream once its echo is back */
	uint64_t bulk_left, bulk_pos;
	char ticket[SC_TICKET];
};

static struct {
	enum sc_kind kind;
	int login_mode;
	const char *host;
	int port;
	long n;
	int conc;
	int srcs;
	long interval_ms;
	long users;
	const char *user_prefix, *pool_prefix, *password;
	const char *broker, *cacert;
	int tickets;
} o = { .host = "127.0.0.1", .conc = 64, .interval_ms = 1000, .users = 100,
	.user_prefix = "s", .pool_prefix = "p", .password = "scale-pw" };

static struct sc_sess *sess;
static SSL_CTX *ctx;
static int epfd;
static long next_open, inflight, held, failed, ended;
static double *samples;
static long nsamples, late, lost;
static int quiet; /* no messages for now (the bulk run's CPU figure) */
static unsigned char rbuf[SC_READ_SIZE];
/* bulk */
static long bulk_running;
static double bulk_t0;
static uint64_t bulk_bytes;
static int bulk_sessions;
/* tickets, fetched by a thread ahead of the connections that need them */
static char (*tickets)[SC_TICKET];
static atomic_long tickets_ready;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("scale-client: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Each reason once on stderr, with the session that met it first. */
static void sess_fail(struct sc_sess *s, const char *why)
{
	static char seen[16][120];
	static int nseen;
	int i;

	for (i = 0; i < nseen && strcmp(seen[i], why); i++)
		;
	if (i == nseen && nseen < 16) {
		snprintf(seen[nseen++], sizeof(seen[0]), "%s", why);
		fprintf(stderr, "scale-client: session %ld: %s\n", (long)(s - sess), why);
	}
	if (s->state == S_HELD || s->state == S_BULK) {
		held--;
		ended++;
	} else {
		inflight--;
		failed++;
	}
	if (s->state == S_BULK) {
		bulk_running--;
		lost++;
	}
	if (s->ssl)
		SSL_free(s->ssl);
	s->ssl = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->state = S_DONE;
}

/* --- the broker: tickets --------------------------------------------------------- */

struct answer {
	char buf[16384];
	size_t len;
};

static size_t curl_sink(char *p, size_t sz, size_t n, void *arg)
{
	struct answer *a = arg;
	size_t len = sz * n;

	if (a->len + len >= sizeof(a->buf))
		return 0; /* too long for the broker's small answers: an error */
	memcpy(a->buf + a->len, p, len);
	a->len += len;
	a->buf[a->len] = '\0';
	return len;
}

/* POST path with body (a JSON text) and token; the answer's JSON or NULL. */
static json_t *broker_post(CURL *h, const char *path, const char *body, const char *token)
{
	char url[512], auth[300];
	struct curl_slist *hd = NULL;
	struct answer *a = calloc(1, sizeof(*a));
	json_t *out;
	long status = 0;

	if (!a)
		die("out of memory");

	snprintf(url, sizeof(url), "%s/api/v1%s", o.broker, path);
	hd = curl_slist_append(hd, "Content-Type: application/json");
	if (token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
		hd = curl_slist_append(hd, auth);
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, curl_sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(h, CURLOPT_CAINFO, o.cacert);
	if (curl_easy_perform(h) != CURLE_OK)
		die("broker %s: unreachable", path);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hd);
	if (status != 200)
		die("broker %s: HTTP %ld %s", path, status, a->buf);
	out = json_loads(a->buf, 0, NULL);
	if (!out)
		die("broker %s: not JSON: %s", path, a->buf);
	free(a);
	return out;
}

static void user_name(long i, char *buf, size_t len)
{
	snprintf(buf, len, "%s%03ld", o.user_prefix, i % o.users);
}

static void pool_name(long i, char *buf, size_t len)
{
	snprintf(buf, len, "%s%02ld", o.pool_prefix, i / o.users);
}

/* Log user i in (a new HTTPS connection when h is new) and launch pool p:
 * the ticket into out.  token caches the user's token when not NULL. */
static void fetch_ticket(CURL *h, long i, char *token, size_t toklen, char *out)
{
	char user[64], pool[64], body[256], path[128];
	json_t *j;

	user_name(i, user, sizeof(user));
	pool_name(i, pool, sizeof(pool));
	if (!token[0]) {
		snprintf(body, sizeof(body), "{\"username\":\"%s\",\"password\":\"%s\"}", user,
			 o.password);
		j = broker_post(h, "/login", body, NULL);
		if (!json_string_value(json_object_get(j, "token")))
			die("login %s: no token", user);
		snprintf(token, toklen, "%s", json_string_value(json_object_get(j, "token")));
		json_decref(j);
	}
	snprintf(path, sizeof(path), "/resources/%s/launch", pool);
	j = broker_post(h, path, "{}", token);
	if (!json_string_value(json_object_get(j, "ticket")) ||
	    strlen(json_string_value(json_object_get(j, "ticket"))) >= SC_TICKET)
		die("launch %s for %s: no ticket", pool, user);
	snprintf(out, SC_TICKET, "%s", json_string_value(json_object_get(j, "ticket")));
	json_decref(j);
}

/* hold with tickets: one kept-alive connection, each user logged in once. */
static void *ticket_thread(void *arg)
{
	CURL *h = curl_easy_init();
	char(*tokens)[256] = calloc((size_t)o.users, 256);

	(void)arg;
	if (!h || !tokens)
		die("out of memory");
	for (long i = 0; i < o.n; i++) {
		fetch_ticket(h, i, tokens[i % o.users], 256, tickets[i]);
		atomic_store(&tickets_ready, i + 1);
	}
	curl_easy_cleanup(h);
	free(tokens);
	return NULL;
}

/* --- opening ---------------------------------------------------------------------- */

static void want(struct sc_sess *s, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = s };

	if (epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
}

static void sess_open(struct sc_sess *s)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)o.port) };
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = s };
	long i = s - sess;
	int one = 1;

	if (!s->t0)
		s->t0 = now_s();
	inet_pton(AF_INET, o.host, &sin.sin_addr);
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd == -1)
		die("socket: %s (raise the open-file limit)", strerror(errno));
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A ticket is good only from the address that launched it (the
	 * broker checks): sessions with tickets come from 127.0.0.1. */
	if (o.srcs > 0 && !s->ticket[0]) {
		/* Several loopback sources, each with its own ephemeral ports;
		 * the port is picked at connect(), not at bind(). */
		struct sockaddr_in src = { .sin_family = AF_INET };
		src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(i % o.srcs));
		setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(s->fd, (struct sockaddr *)&src, sizeof(src)) == -1)
			die("bind: %s", strerror(errno));
	}
	s->state = S_CONNECT;
	inflight++;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) == -1)
		die("epoll_ctl: %s", strerror(errno));
	if (connect(s->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 && errno != EINPROGRESS)
		sess_fail(s, strerror(errno));
}

/* Whole handshake messages: small, on a socket that takes them at once. */
static int sess_send(struct sc_sess *s, const void *p, size_t len)
{
	ssize_t n = s->ssl ? SSL_write(s->ssl, p, (int)len) : write(s->fd, p, len);

	if (n == (ssize_t)len)
		return 0;
	sess_fail(s, "a small write did not go out at once");
	return -1;
}

static void put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void start_tls(struct sc_sess *s)
{
	s->ssl = SSL_new(ctx);
	if (!s->ssl || !SSL_set_fd(s->ssl, s->fd))
		die("SSL_new failed");
	s->state = S_TLS;
}

static void became_held(struct sc_sess *s)
{
	inflight--;
	held++;
	s->state = S_HELD;
	s->echo_t0 = 0;
	s->inlen = 0;
	if (sess_send(s, "SCALE\n", 6) == 0)
		want(s, EPOLLIN);
}

/* The X.224 Connection Request: the ticket as routing token, or a
 * mstshash cookie for a plain relay. */
static int send_cr(struct sc_sess *s)
{
	unsigned char cr[160];
	char cookie[100];
	int n;

	if (o.kind == GW_RDP)
		snprintf(cookie, sizeof(cookie), "Cookie: msts=%s\r\n", s->ticket);
	else
		snprintf(cookie, sizeof(cookie), "Cookie: mstshash=bench\r\n");
	n = (int)strlen(cookie);
	memcpy(cr + 11, cookie, (size_t)n);
	/* RDP_NEG_REQ for TLS */
	memcpy(cr + 11 + n, "\x01\x00\x08\x00\x01\x00\x00\x00", 8);
	n += 11 + 8;
	cr[0] = 3;
	cr[1] = 0;
	cr[2] = (unsigned char)(n >> 8);
	cr[3] = (unsigned char)n;
	cr[4] = (unsigned char)(n - 5); /* X.224 length indicator */
	cr[5] = 0xe0;
	memset(cr + 6, 0, 5);
	return sess_send(s, cr, (size_t)n);
}

/* The step's bytes are in (s->in, s->need): check them, answer, and say
 * what the next step needs.  Returns -1 when s ended. */
static int step_done(struct sc_sess *s)
{
	unsigned char b[4];

	if (o.kind == GW_RDP || o.kind == PLAIN_RDP) {
		/* A TPKT header, then the rest of the Confirm. */
		size_t len = (size_t)s->in[2] << 8 | s->in[3];
		if (s->need == 4 && len > 4 && len <= sizeof(s->in)) {
			s->need = len;
			return 0;
		}
		if (s->need < 11 || s->in[5] != 0xd0) {
			sess_fail(s, "no X.224 Connection Confirm");
			return -1;
		}
		if (s->need >= 19 && s->in[11] != 2) { /* not an RDP_NEG_RSP */
			sess_fail(s, "refused (RDP_NEG_FAILURE; see the relay's log)");
			return -1;
		}
		became_held(s);
		return 0;
	}
	if (o.kind == TLS_VNC) {
		switch (s->step++) {
		case 0: /* ProtocolVersion */
			s->need = 2;
			return sess_send(s, "RFB 003.008\n", 12);
		case 1: /* one type, None */
			if (s->in[0] != 1 || s->in[1] != 1) {
				sess_fail(s, "the backend does not offer None alone");
				return -1;
			}
			s->need = 4;
			return sess_send(s, "\001", 1);
		case 2: /* SecurityResult */
			if (get_u32(s->in)) {
				sess_fail(s, "security failed");
				return -1;
			}
			s->need = 24;
			return sess_send(s, "\001", 1); /* ClientInit, shared */
		default: /* ServerInit */
			if (s->need == 24 && get_u32(s->in + 20)) {
				s->need = 24 + get_u32(s->in + 20);
				s->step--;
				return 0;
			}
			became_held(s);
			return 0;
		}
	}
	/* GW_VNC */
	switch (s->step++) {
	case 0: /* the gateway's ProtocolVersion */
		s->need = 2;
		return sess_send(s, "RFB 003.008\n", 12);
	case 1: /* one type: VeNCrypt (19) */
		if (s->in[0] != 1 || s->in[1] != 19) {
			sess_fail(s, "the gateway does not offer VeNCrypt");
			return -1;
		}
		s->need = 2;
		return sess_send(s, "\023", 1);
	case 2: /* VeNCrypt 0.2 */
		s->need = 2;
		return sess_send(s, "\000\002", 2);
	case 3: /* ack and the number of subtypes, then the subtypes */
		if (s->need == 2) {
			if (s->in[0] != 0 || s->in[1] == 0) {
				sess_fail(s, "VeNCrypt refused");
				return -1;
			}
			s->need = 2 + 4 * (size_t)s->in[1];
			s->step--;
			return 0;
		}
		put_u32(b, 262); /* X509Plain */
		s->need = 1;
		return sess_send(s, b, 4);
	case 4: /* subtype accepted: TLS */
		if (s->in[0] != 1) {
			sess_fail(s, "X509Plain refused");
			return -1;
		}
		start_tls(s);
		return 0;
	case 5: /* SecurityResult */
		if (get_u32(s->in)) {
			sess_fail(s, "login refused (SecurityResult failed)");
			return -1;
		}
		s->need = 24;
		return sess_send(s, "\001", 1);
	default: /* ServerInit */
		if (s->need == 24 && get_u32(s->in + 20)) {
			s->need = 24 + get_u32(s->in + 20);
			s->step--;
			return 0;
		}
		became_held(s);
		return 0;
	}
}

/* TLS is up (gw-vnc: the credentials; tls-vnc: the RFB steps begin). */
static int tls_up(struct sc_sess *s)
{
	unsigned char b[600];
	char user[128], pool[64];
	const char *u, *p;
	size_t ul, pl;

	s->state = S_HANDSHAKE;
	s->inlen = 0;
	if (o.kind == TLS_VNC) {
		s->step = 0;
		s->need = 12;
		return 0;
	}
	if (s->ticket[0]) {
		u = "ticket";
		p = s->ticket;
	} else {
		long i = s - sess;
		char un[64];
		user_name(i, un, sizeof(un));
		pool_name(i, pool, sizeof(pool));
		snprintf(user, sizeof(user), "%s#%s", un, pool);
		u = user;
		p = o.password;
	}
	ul = strlen(u);
	pl = strlen(p);
	put_u32(b, (uint32_t)ul);
	put_u32(b + 4, (uint32_t)pl);
	memcpy(b + 8, u, ul);
	memcpy(b + 8 + ul, p, pl);
	s->need = 4;
	return sess_send(s, b, 8 + ul + pl);
}

static void sess_handshake_io(struct sc_sess *s)
{
	for (;;) {
		if (s->state == S_TLS) {
			int rc = SSL_connect(s->ssl);
			if (rc == 1) {
				if (tls_up(s))
					return;
				continue;
			}
			int e = SSL_get_error(s->ssl, rc);
			if (e == SSL_ERROR_WANT_READ) {
				want(s, EPOLLIN);
				return;
			}
			if (e == SSL_ERROR_WANT_WRITE) {
				want(s, EPOLLOUT);
				return;
			}
			ERR_clear_error();
			sess_fail(s, "TLS handshake failed");
			return;
		}
		if (s->state != S_HANDSHAKE)
			return;
		/* Exactly the step's bytes, never into the next protocol's. */
		ssize_t n = s->ssl ? SSL_read(s->ssl, s->in + s->inlen, (int)(s->need - s->inlen))
				   : read(s->fd, s->in + s->inlen, s->need - s->inlen);
		if (n > 0) {
			s->inlen += (size_t)n;
			if (s->inlen < s->need)
				continue;
			/* steps that only lengthen `need` keep what is in */
			size_t before = s->need;
			int step = s->step;
			if (step_done(s))
				return;
			if (s->state == S_HANDSHAKE && !(s->need > before && s->step == step))
				s->inlen = 0;
			continue;
		}
		if (s->ssl) {
			int e = SSL_get_error(s->ssl, (int)n);
			if (e == SSL_ERROR_WANT_READ) {
				want(s, EPOLLIN);
				return;
			}
			ERR_clear_error();
		} else if (n == -1 && errno == EAGAIN) {
			want(s, EPOLLIN);
			return;
		} else if (n == -1 && errno == EINTR) {
			continue;
		}
		sess_fail(s, n == 0 ? "closed during the handshake (refused: see the relay's log)"
				    : "read failed during the handshake");
		return;
	}
}

static void sess_connected(struct sc_sess *s)
{
	int err = 0;
	socklen_t len = sizeof(err);

	getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
	if (err) {
		sess_fail(s, strerror(err));
		return;
	}
	s->step = 0;
	s->inlen = 0;
	switch (o.kind) {
	case TLS_VNC:
		start_tls(s);
		break;
	case GW_VNC:
		s->state = S_HANDSHAKE;
		s->need = 12;
		break;
	case GW_RDP:
	case PLAIN_RDP:
		s->state = S_HANDSHAKE;
		s->need = 4;
		if (send_cr(s))
			return;
		break;
	}
	want(s, EPOLLIN);
	sess_handshake_io(s);
}

/* --- held sessions ----------------------------------------------------------------- */

static void send_msg(struct sc_sess *s)
{
	unsigned char m[SC_MSG] = { 'k', 0, 0, 0, 0, 0, 0, 0 };

	if (s->state != S_HELD || quiet)
		return;
	if (s->echo_t0) {
		late++; /* the last one is not back yet */
		return;
	}
	s->echo_t0 = now_s();
	if (sess_send(s, m, sizeof(m)) == 0)
		s->inlen = 0;
}

static void start_bulk(struct sc_sess *s)
{
	unsigned char m[SC_MSG];
	uint64_t v = s->bulk_left;

	m[0] = 'b';
	for (int i = 7; i >= 1; i--, v >>= 8)
		m[i] = (unsigned char)v;
	s->want_bulk = 0;
	s->bulk_pos = 0;
	s->state = S_BULK;
	sess_send(s, m, sizeof(m));
}

static void bulk_finished(void)
{
	double t = now_s() - bulk_t0;

	printf("bulk_sessions=%d\nbulk_bytes=%llu\nbulk_seconds=%.3f\nbulk_mbps=%.1f\nbulk_lost=%ld\n",
	       bulk_sessions, (unsigned long long)bulk_bytes, t, (double)bulk_bytes / t / 1e6,
	       lost);
	fflush(stdout);
}

static ssize_t sess_read(struct sc_sess *s, void *buf, size_t len)
{
	ssize_t n = s->ssl ? SSL_read(s->ssl, buf, (int)len) : read(s->fd, buf, len);

	if (n > 0)
		return n;
	if (s->ssl) {
		int e = SSL_get_error(s->ssl, (int)n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return -EAGAIN;
		ERR_clear_error();
		return n == 0 ? 0 : -EIO;
	}
	if (n == 0)
		return 0;
	return errno == EAGAIN || errno == EINTR ? -EAGAIN : -errno;
}

static void sess_held_io(struct sc_sess *s)
{
	for (;;) {
		ssize_t n;

		if (s->state == S_BULK) {
			size_t want_n = s->bulk_left < sizeof(rbuf) ? (size_t)s->bulk_left : sizeof(rbuf);
			n = sess_read(s, rbuf, want_n);
			if (n > 0) {
				/* One division per read, not per byte: the client
				 * shares its core with the backends. */
				unsigned v = (unsigned)(s->bulk_pos % SC_PERIOD);
				for (ssize_t k = 0; k < n; k++) {
					if (rbuf[k] != (unsigned char)(1 + v)) {
						sess_fail(s, "bulk stream differs from the backend's pattern");
						return;
					}
					if (++v == SC_PERIOD)
						v = 0;
				}
				s->bulk_pos += (uint64_t)n;
				s->bulk_left -= (uint64_t)n;
				bulk_bytes += (uint64_t)n;
				if (s->bulk_left == 0) {
					s->state = S_HELD;
					s->inlen = 0;
					if (--bulk_running == 0)
						bulk_finished();
				}
				continue;
			}
		} else {
			n = sess_read(s, s->in + s->inlen, SC_MSG - s->inlen);
			if (n > 0) {
				s->inlen += (size_t)n;
				if (s->inlen < SC_MSG)
					continue;
				s->inlen = 0;
				if (s->in[0] != 'k' || !s->echo_t0) {
					sess_fail(s, "an echo that was not asked for");
					return;
				}
				if (nsamples < SC_SAMPLES)
					samples[nsamples++] = (now_s() - s->echo_t0) * 1e6;
				s->echo_t0 = 0;
				if (s->want_bulk)
					start_bulk(s);
				continue;
			}
		}
		if (n == -EAGAIN)
			return;
		sess_fail(s, n == 0 ? "the session was closed" : "read failed");
		return;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(double *v, long n, double p)
{
	long i;

	if (n == 0)
		return 0;
	i = (long)(p / 100.0 * (double)n + 0.5);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

static void command(char *line)
{
	long k;
	unsigned long long bytes;

	if (!strcmp(line, "stats")) {
		qsort(samples, (size_t)nsamples, sizeof(*samples), cmp_double);
		printf("held=%ld\nechoes=%ld\necho_p50_us=%.1f\necho_p99_us=%.1f\nlate=%ld\nended=%ld\n",
		       held, nsamples, pct(samples, nsamples, 50), pct(samples, nsamples, 99), late,
		       ended);
		fflush(stdout);
		nsamples = late = 0;
	} else if (!strcmp(line, "quiet") || !strcmp(line, "resume")) {
		quiet = line[0] == 'q';
		printf("quiet=%d\n", quiet);
		fflush(stdout);
	} else if (sscanf(line, "bulk %ld %llu", &k, &bytes) == 2 && k > 0 && bytes > 0) {
		bulk_running = 0;
		bulk_bytes = 0;
		bulk_t0 = now_s();
		for (long i = 0; i < o.n && bulk_running < k; i++) {
			struct sc_sess *s = &sess[i];
			if (s->state != S_HELD)
				continue;
			s->bulk_left = bytes;
			bulk_running++;
			if (s->echo_t0)
				s->want_bulk = 1;
			else
				start_bulk(s);
		}
		bulk_sessions = (int)bulk_running;
		printf("bulk_started=%d\n", bulk_sessions);
		fflush(stdout);
	} else {
		fprintf(stderr, "scale-client: unknown command '%s'\n", line);
	}
}

/* --- main loop --------------------------------------------------------------------- */

static void open_more(void)
{
	while (next_open < o.n && inflight < o.conc) {
		struct sc_sess *s = &sess[next_open];
		if (tickets) {
			if (atomic_load(&tickets_ready) <= next_open)
				return;
			memcpy(s->ticket, tickets[next_open], SC_TICKET);
		}
		next_open++;
		sess_open(s);
	}
}

static void dispatch(struct epoll_event *ev)
{
	struct sc_sess *s = ev->data.ptr;

	switch (s->state) {
	case S_CONNECT:
		sess_connected(s);
		break;
	case S_TLS:
	case S_HANDSHAKE:
		sess_handshake_io(s);
		break;
	case S_HELD:
	case S_BULK:
		sess_held_io(s);
		break;
	default:
		break;
	}
}

static int run_hold(void)
{
	struct epoll_event evs[256], ev = { .events = EPOLLIN, .data.ptr = NULL };
	double t0 = now_s(), last_tick = t0;
	long slots = o.interval_ms / SC_TICK_MS, slot = 0;
	int ready = 0, stdin_open = 1;
	char line[256];
	size_t llen = 0;
	pthread_t th;

	if (slots < 1)
		slots = 1;
	if (o.tickets) {
		tickets = calloc((size_t)o.n, SC_TICKET);
		if (!tickets)
			die("out of memory");
		if (pthread_create(&th, NULL, ticket_thread, NULL))
			die("pthread_create");
		pthread_detach(th);
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) == -1)
		stdin_open = 0; /* not pollable (a file): commands are not read */
	for (;;) {
		int n;

		open_more();
		if (!ready && next_open == o.n && inflight == 0) {
			printf("ready\nheld=%ld\nfailed=%ld\nseconds=%.2f\n", held, failed,
			       now_s() - t0);
			fflush(stdout);
			ready = 1;
		}
		n = epoll_wait(epfd, evs, 256, SC_TICK_MS);
		if (n == -1 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr) {
				dispatch(&evs[i]);
				continue;
			}
			ssize_t r = read(0, line + llen, sizeof(line) - 1 - llen);
			if (r <= 0) {
				epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
				stdin_open = 0;
				if (ready)
					return 0;
				continue;
			}
			llen += (size_t)r;
			line[llen] = '\0';
			char *nl;
			while ((nl = strchr(line, '\n'))) {
				*nl = '\0';
				command(line);
				memmove(line, nl + 1, llen - (size_t)(nl + 1 - line) + 1);
				llen -= (size_t)(nl + 1 - line);
			}
			if (llen == sizeof(line) - 1)
				llen = 0;
		}
		if (!stdin_open && ready)
			return 0;
		/* The messages of the slots whose time came: session i sends
		 * in slot i % slots, once per interval. */
		double t = now_s();
		while (t - last_tick >= SC_TICK_MS / 1000.0) {
			last_tick += SC_TICK_MS / 1000.0;
			for (long i = slot; i < o.n; i += slots)
				send_msg(&sess[i]);
			slot = (slot + 1) % slots;
		}
	}
}

static int run_login(void)
{
	struct epoll_event evs[16];
	double *lat = calloc((size_t)o.n, sizeof(double));
	long ok = 0;

	if (!lat)
		die("out of memory");
	for (long i = 0; i < o.n; i++) {
		struct sc_sess *s = &sess[i];

		s->t0 = now_s();
		if (o.kind == GW_VNC) {
			CURL *h = curl_easy_init(); /* a new user: a new connection */
			char token[256] = "";
			if (!h)
				die("out of memory");
			fetch_ticket(h, i, token, sizeof(token), s->ticket);
			curl_easy_cleanup(h);
		}
		sess_open(s);
		while (s->state != S_HELD && s->state != S_DONE) {
			int n = epoll_wait(epfd, evs, 16, 10000);
			if (n == 0) {
				sess_fail(s, "no ServerInit within 10 s");
				break;
			}
			for (int k = 0; k < n; k++)
				dispatch(&evs[k]);
		}
		if (s->state == S_HELD) {
			lat[ok++] = (now_s() - s->t0) * 1e3;
			held--;
			SSL_free(s->ssl);
			s->ssl = NULL;
			close(s->fd);
			s->state = S_DONE;
		}
	}
	qsort(lat, (size_t)ok, sizeof(*lat), cmp_double);
	printf("logins=%ld\nfailed=%ld\nlogin_p50_ms=%.1f\nlogin_p99_ms=%.1f\nlogin_max_ms=%.1f\n",
	       ok, failed, pct(lat, ok, 50), pct(lat, ok, 99), ok ? lat[ok - 1] : 0.0);
	free(lat);
	return ok == o.n ? 0 : 1;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: scale-client hold|login -k gw-vnc|tls-vnc|gw-rdp|plain-rdp -p PORT -n N\n"
		"       [-H ADDR] [-s SOURCES] [-c CONCURRENCY] [-i INTERVAL_MS] [-U USERS]\n"
		"       [--user-prefix P] [--pool-prefix P] [-w PASSWORD] [-t]\n"
		"       [-b BROKER_URL --cacert FILE]\n");
	exit(2);
}

static long num(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		usage();
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "user-prefix", required_argument, NULL, 'u' },
		{ "pool-prefix", required_argument, NULL, 'P' },
		{ "cacert", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	struct rlimit rl;
	int opt, rc;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "login"))
		o.login_mode = 1;
	else if (strcmp(argv[1], "hold"))
		usage();
	optind = 2;
	o.kind = -1;
	while ((opt = getopt_long(argc, argv, "k:p:n:H:s:c:i:U:w:b:t", opts, NULL)) != -1) {
		switch (opt) {
		case 'k':
			o.kind = !strcmp(optarg, "gw-vnc")	? GW_VNC
				 : !strcmp(optarg, "tls-vnc")	? TLS_VNC
				 : !strcmp(optarg, "gw-rdp")	? GW_RDP
				 : !strcmp(optarg, "plain-rdp") ? PLAIN_RDP
								: (enum sc_kind)-1;
			break;
		case 'p':
			o.port = (int)num(optarg, 1, 65535);
			break;
		case 'n':
			o.n = num(optarg, 1, 1000000);
			break;
		case 'H':
			o.host = optarg;
			break;
		case 's':
			o.srcs = (int)num(optarg, 0, 250);
			break;
		case 'c':
			o.conc = (int)num(optarg, 1, 100000);
			break;
		case 'i':
			o.interval_ms = num(optarg, SC_TICK_MS, 3600000);
			break;
		case 'U':
			o.users = num(optarg, 1, 1000);
			break;
		case 'u':
			o.user_prefix = optarg;
			break;
		case 'P':
			o.pool_prefix = optarg;
			break;
		case 'w':
			o.password = optarg;
			break;
		case 'b':
			o.broker = optarg;
			break;
		case 'C':
			o.cacert = optarg;
			break;
		case 't':
			o.tickets = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || (int)o.kind < 0 || !o.port || !o.n)
		usage();
	if (o.kind == GW_RDP)
		o.tickets = 1;
	if ((o.tickets || (o.login_mode && o.kind == GW_VNC)) && (!o.broker || !o.cacert))
		die("tickets need -b BROKER_URL and --cacert");
	if (o.login_mode)
		o.tickets = 0; /* fetched per login, on the clock */

	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx)
		die("SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* a load generator */
	sess = calloc((size_t)o.n, sizeof(*sess));
	samples = malloc(sizeof(*samples) * SC_SAMPLES);
	if (!sess || !samples)
		die("out of memory");
	for (long i = 0; i < o.n; i++)
		sess[i].fd = -1;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd == -1)
		die("epoll_create1: %s", strerror(errno));
	rc = o.login_mode ? run_login() : run_hold();
	for (long i = 0; i < o.n; i++) {
		if (sess[i].ssl)
			SSL_free(sess[i].ssl);
		if (sess[i].fd >= 0)
			close(sess[i].fd);
	}
	return rc;
}
