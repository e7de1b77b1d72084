/*
 * rdg-bulk - the client end of tests/bench/rdg.sh's bulk stream through
 * the gateway's RD Gateway (MS-TSGU over HTTPS), doing on the wire what
 * xfreerdp 2.11 does (docs/rdg.md), and the same stream through a plain
 * TLS relay for comparison.  The backend is rdp-bulk serve.
 *
 *   rdg-bulk ws   -p PORT -b BYTES -t TICKET -T HOST:PORT [-C CAFILE]
 *   rdg-bulk http -p PORT -b BYTES -t TICKET -T HOST:PORT [-C CAFILE]
 *   rdg-bulk tls  -p PORT -b BYTES [-C CAFILE]
 *
 * ws: one TLS connection to 127.0.0.1:PORT, "RDG_OUT_DATA
 * /remoteDesktopGateway/" with an Upgrade to WebSocket and FreeRDP's
 * 15-character key (the answer's Sec-WebSocket-Accept checked), then RDG
 * packets in masked binary frames, one packet a frame.
 * http: the legacy transport: RDG_OUT_DATA answered 200 and 10 bytes of
 * seed, then the server's packets on that connection; a second connection
 * with RDG_IN_DATA (Content-Length: 0, answered 200), then RDG_IN_DATA
 * again with a chunked body that never ends, one packet a chunk.
 * Both: HANDSHAKE_REQUEST (PAA), TUNNEL_CREATE with TICKET as the PAA
 * cookie, TUNNEL_AUTH, CHANNEL_CREATE to HOST:PORT, each answered before
 * the next; then one DATA packet with an X.224 Connection Request
 * ("Cookie: mstshash=bench", what rdp-bulk serve waits for) and the
 * server's DATA payload read until BYTES, every byte checked (byte i is
 * 1 + i % 251, as rdp-bulk serve sends).  The server's KEEPALIVE is
 * answered, its CLOSE_CHANNEL (the backend's end) answered with
 * CLOSE_CHANNEL_RESPONSE.  The server's packets are read with the
 * gateway's own reader (gw_rdg_read, rdg_proto.c), which checks their
 * framing; the frames with libportico's WebSocket reader.
 * tls: TLS to a relay that ends TLS and relays the plain bytes (haproxy
 * "bind ... ssl"): the Connection Request, then the stream to EOF.
 *
 * Prints bytes=N, seconds=S (first payload byte to the last), mbps=M
 * (10^6 B/s), setup_ms=T (TCP connect to the first payload byte: TLS, the
 * HTTP requests, the tunnel and the channel, the broker's redeem of the
 * ticket, the backend's connect) and cipher=NAME.  Exit 1 on any error,
 * a refusal (its status named) or a short or wrong stream.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "portico/ws.h"
#include "rdg.h"

#define RG_PERIOD   251
#define RG_READ_MAX (64 * 1024) /* one SSL_read (a TLS record is at most 16 KiB) */
#define RG_HDR_MAX  8192	/* an HTTP answer's head */
#define RG_TIMEOUT  30		/* seconds a read or write may block */

enum rg_mode { RG_WS, RG_HTTP, RG_TLS };

struct rg_conn {
	int fd;
	SSL *ssl;
};

struct rg {
	enum rg_mode mode;
	struct rg_conn out; /* the server's packets come here */
	struct rg_conn in;  /* ours go here (the same connection but for http) */
	struct pt_ws_reader wr;
	struct gw_rdg_reader rr;
	size_t seed_left; /* http: bytes of seed still to skip */
	/* the control packet waited for */
	int have_pkt;
	uint16_t pkt_type;
	uint8_t pkt[GW_RDG_CTRL_MAX];
	size_t pkt_len;
	int channel_open;
	int closed;	      /* CLOSE_CHANNEL came */
	uint32_t close_status;
	int ended;	      /* the transport ended (EOF, a WebSocket close) */
	/* the stream */
	uint64_t bytes, got;
	double t0, t1, t2;
	uint8_t *ref;
};

static double rg_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 1, 2), noreturn)) static void rg_die(const char *fmt, ...)
{
	va_list ap;
	unsigned long e;

	fputs("rdg-bulk: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if ((e = ERR_get_error()) != 0) {
		char buf[256];

		ERR_error_string_n(e, buf, sizeof(buf));
		fprintf(stderr, " (%s)", buf);
	}
	fputc('\n', stderr);
	exit(1);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Set once the stream is complete: what follows is the gateway's goodbye,
 * and an error in it is not the benchmark's. */
static int lenient_reads;

/* --- connections ------------------------------------------------------------------ */

static void rg_connect(struct rg_conn *c, SSL_CTX *ctx, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct timeval tv = { .tv_sec = RG_TIMEOUT };
	int one = 1;

	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	if (c->fd == -1 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1)
		rg_die("connect to 127.0.0.1:%d: %s", port, strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!(c->ssl = SSL_new(ctx)) || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    SSL_set_tlsext_host_name(c->ssl, "127.0.0.1") != 1)
		rg_die("SSL_new");
	if (SSL_connect(c->ssl) != 1)
		rg_die("TLS handshake with 127.0.0.1:%d failed", port);
}

static void rg_close(struct rg_conn *c)
{
	if (c->ssl) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd > 0) {
		close(c->fd);
		c->fd = -1;
	}
}

static void rg_write(struct rg_conn *c, const void *p, size_t n)
{
	if (n > 0 && SSL_write(c->ssl, p, (int)n) != (int)n)
		rg_die("write: %s", strerror(errno));
}

/* Bytes read, 0 at an end of the connection (a close_notify or a FIN). */
static size_t rg_read(struct rg_conn *c, uint8_t *buf, size_t cap)
{
	int n = SSL_read(c->ssl, buf, (int)cap);

	if (n > 0)
		return (size_t)n;
	switch (SSL_get_error(c->ssl, n)) {
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_error() == 0 && (errno == 0 || errno == ECONNRESET))
			return 0;
		break;
	default:
		break;
	}
	if (lenient_reads)
		return 0;
	rg_die("read: %s", errno == EAGAIN ? "timed out" : strerror(errno));
}

/* Reads an HTTP answer's head; its status; what came after it in *rest. */
static int rg_http_head(struct rg_conn *c, char *head, size_t cap, uint8_t *rest,
			size_t *rest_len)
{
	size_t len = 0;
	char *end;
	int status;

	*rest_len = 0;
	for (;;) {
		size_t n;

		if (len + 1 >= cap)
			rg_die("an HTTP answer's head longer than %zu bytes", cap);
		n = rg_read(c, (uint8_t *)head + len, cap - 1 - len);
		if (n == 0)
			rg_die("the gateway closed the connection before its answer (%zu bytes)",
			       len);
		len += n;
		head[len] = '\0';
		if ((end = strstr(head, "\r\n\r\n")))
			break;
	}
	end += 4;
	*rest_len = len - (size_t)(end - head);
	memcpy(rest, end, *rest_len);
	*end = '\0';
	if (sscanf(head, "HTTP/1.1 %d ", &status) != 1)
		rg_die("not an HTTP answer: %.80s", head);
	return status;
}

/* The value of header name in a head, or NULL (copied into val). */
static const char *rg_header(const char *head, const char *name, char *val, size_t cap)
{
	size_t nl = strlen(name);

	for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
		const char *p = l + 2, *e;

		if (strncasecmp(p, name, nl) || p[nl] != ':')
			continue;
		p += nl + 1;
		p += strspn(p, " \t");
		e = strstr(p, "\r\n");
		if ((size_t)(e - p) >= cap)
			return NULL;
		memcpy(val, p, (size_t)(e - p));
		val[e - p] = '\0';
		return val;
	}
	return NULL;
}

/* --- packets out ------------------------------------------------------------------ */

/* One packet: a masked binary frame (ws) or a chunk of the IN body (http). */
static void rg_send(struct rg *g, const uint8_t *p, size_t n)
{
	static uint8_t buf[14 + GW_RDG_DATA_HDR_LEN + GW_RDG_DATA_MAX + 16];
	uint8_t mask[4];
	int h;

	if (g->mode == RG_WS) {
		if (RAND_bytes(mask, sizeof(mask)) != 1 ||
		    (h = pt_ws_frame_header(buf, PT_WS_OP_BINARY, 1, n, mask)) < 0)
			rg_die("a WebSocket frame of %zu bytes", n);
		pt_ws_mask(buf + h, p, n, mask, 0);
		rg_write(&g->in, buf, (size_t)h + n);
	} else {
		h = snprintf((char *)buf, 16, "%zx\r\n", n);
		memcpy(buf + h, p, n);
		memcpy(buf + h + n, "\r\n", 2);
		rg_write(&g->in, buf, (size_t)h + n + 2);
	}
}

/* A string as the protocol writes it: UTF-16LE with its NUL, after its
 * length in bytes (u16).  ASCII only, which is all this client sends. */
static size_t rg_str(uint8_t *out, const char *s)
{
	size_t n = strlen(s);

	put16(out, (uint16_t)(2 * n + 2));
	for (size_t i = 0; i < n; i++) {
		out[2 + 2 * i] = (uint8_t)s[i];
		out[3 + 2 * i] = 0;
	}
	put16(out + 2 + 2 * n, 0);
	return 2 + 2 * n + 2;
}

static size_t rg_hdr(uint8_t *out, uint16_t type, size_t len)
{
	put16(out, type);
	put16(out + 2, 0);
	put32(out + 4, (uint32_t)len);
	return GW_RDG_HDR_LEN;
}

/* --- packets in ------------------------------------------------------------------- */

static void rg_item(struct rg *g, const struct gw_rdg_item *it)
{
	uint8_t ans[GW_RDG_CLOSE_LEN];

	if (it->kind == GW_RDG_ITEM_DATA) {
		if (!g->channel_open)
			rg_die("DATA before the channel was open");
		if (it->n == 0)
			return;
		if (g->got == 0)
			g->t1 = rg_now();
		if (g->got + it->n > g->bytes)
			rg_die("more than %llu bytes", (unsigned long long)g->bytes);
		if (memcmp(it->p, g->ref + g->got % RG_PERIOD, it->n) != 0)
			rg_die("wrong bytes after %llu", (unsigned long long)g->got);
		g->got += it->n;
		if (g->got == g->bytes)
			g->t2 = rg_now();
		return;
	}
	switch (it->type) {
	case GW_RDG_KEEPALIVE:
		rg_hdr(ans, GW_RDG_KEEPALIVE, GW_RDG_KEEPALIVE_LEN);
		rg_send(g, ans, GW_RDG_KEEPALIVE_LEN);
		return;
	case GW_RDG_SERVICE_MESSAGE: {
		/* ASCII of the UTF-16 text, for the error that follows */
		size_t cb = it->n >= 2 ? (size_t)(it->p[0] | it->p[1] << 8) : 0;

		fputs("rdg-bulk: service message: ", stderr);
		for (size_t i = 2; i + 1 < it->n && i < 2 + cb; i += 2)
			if (it->p[i])
				fputc(it->p[i] < 0x80 && it->p[i + 1] == 0 ? it->p[i] : '?', stderr);
		fputc('\n', stderr);
		return;
	}
	case GW_RDG_CLOSE_CHANNEL:
		g->closed = 1;
		g->close_status = it->n == 4 ? get32(it->p) : 0;
		rg_hdr(ans, GW_RDG_CLOSE_CHANNEL_RESPONSE, GW_RDG_CLOSE_LEN);
		put32(ans + GW_RDG_HDR_LEN, 0);
		rg_send(g, ans, GW_RDG_CLOSE_LEN);
		return;
	default:
		if (g->have_pkt)
			rg_die("packet 0x%02x before packet 0x%02x was taken", it->type,
			       g->pkt_type);
		g->have_pkt = 1;
		g->pkt_type = it->type;
		g->pkt_len = it->n;
		memcpy(g->pkt, it->p, it->n);
	}
}

static void rg_packets(struct rg *g, const uint8_t *p, size_t n)
{
	struct gw_rdg_item it;

	while (n > 0) {
		ssize_t k = gw_rdg_read(&g->rr, p, n, &it);

		if (k < 0)
			rg_die("the gateway's packets: %s", g->rr.why);
		if (it.kind != GW_RDG_ITEM_NONE)
			rg_item(g, &it);
		p += k;
		n -= (size_t)k;
	}
}

/* Bytes from the OUT side: WebSocket frames, or the seed and packets. */
static void rg_input(struct rg *g, uint8_t *p, size_t n)
{
	struct pt_ws_event ev;

	if (g->mode == RG_HTTP) {
		size_t k = n < g->seed_left ? n : g->seed_left;

		g->seed_left -= k;
		rg_packets(g, p + k, n - k);
		return;
	}
	while (n > 0) {
		ssize_t k = pt_ws_read(&g->wr, p, n, NULL, &ev);

		if (k < 0)
			rg_die("the gateway's WebSocket frames: %s (%u)", g->wr.why ? g->wr.why : "?",
			       g->wr.close_code);
		switch (ev.type) {
		case PT_WS_EV_DATA:
			rg_packets(g, ev.data, ev.len);
			break;
		case PT_WS_EV_PING: {
			uint8_t f[14 + PT_WS_CONTROL_MAX], mask[4];
			int h;

			if (RAND_bytes(mask, sizeof(mask)) != 1 ||
			    (h = pt_ws_frame_header(f, PT_WS_OP_PONG, 1, ev.len, mask)) < 0)
				rg_die("a pong");
			pt_ws_mask(f + h, ev.data, ev.len, mask, 0);
			rg_write(&g->in, f, (size_t)h + ev.len);
			break;
		}
		case PT_WS_EV_CLOSE: {
			/* Answered, so that the gateway need not wait for it. */
			uint8_t f[14 + 2], mask[4], code[2] = { 0x03, 0xe8 };
			int h;

			g->ended = 1;
			if (RAND_bytes(mask, sizeof(mask)) != 1 ||
			    (h = pt_ws_frame_header(f, PT_WS_OP_CLOSE, 1, 2, mask)) < 0)
				rg_die("a close frame");
			pt_ws_mask(f + h, code, 2, mask, 0);
			if (SSL_write(g->in.ssl, f, h + 2) != h + 2 && !lenient_reads)
				rg_die("write: %s", strerror(errno));
			break;
		}
		default:
			break;
		}
		p += k;
		n -= (size_t)k;
	}
}

/* One read from the OUT side; 0 at its end. */
static int rg_pump(struct rg *g)
{
	static uint8_t buf[RG_READ_MAX];
	size_t n = rg_read(&g->out, buf, sizeof(buf));

	if (n == 0) {
		g->ended = 1;
		return 0;
	}
	rg_input(g, buf, n);
	return 1;
}

/* Waits for the answer of this type; the status at off in its body. */
static void rg_expect(struct rg *g, uint16_t type, size_t off, const char *what)
{
	uint32_t st;

	while (!g->have_pkt) {
		if (g->closed)
			rg_die("%s: the gateway closed the channel: %s (0x%08x)", what,
			       gw_rdg_status_name(g->close_status), g->close_status);
		if (g->ended || !rg_pump(g))
			rg_die("%s: the gateway ended the connection", what);
	}
	if (g->pkt_type != type)
		rg_die("%s: packet 0x%02x, not 0x%02x", what, g->pkt_type, type);
	if (g->pkt_len < off + 4)
		rg_die("%s: %zu bytes", what, g->pkt_len);
	st = get32(g->pkt + off);
	if (st & 0x80000000u)
		rg_die("%s: %s (0x%08x)", what, gw_rdg_status_name(st), st);
	g->have_pkt = 0;
}

/* --- the tunnel ------------------------------------------------------------------- */

/* The request an RDP client sends first (MS-RDPBCGR 2.2.1.1), for the
 * backend: rdp-bulk serve reads it whole before the stream. */
static size_t rg_cr(uint8_t *out)
{
	static const char line[] = "Cookie: mstshash=bench\r\n";
	size_t n = sizeof(line) - 1, len = 4 + 7 + n + 8;

	out[0] = 3;
	out[1] = 0;
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	out[4] = (uint8_t)(len - 5);
	memcpy(out + 5, "\xe0\0\0\0\0\0", 6);
	memcpy(out + 11, line, n);
	memcpy(out + 11 + n, "\x01\x00\x08\x00\x01\x00\x00\x00", 8);
	return len;
}

static void rg_random_id(char *key, char *id)
{
	uint8_t r[16 + 15];
	static const char hex[] = "0123456789abcdef";
	char *p = id;

	if (RAND_bytes(r, sizeof(r)) != 1)
		rg_die("no randomness");
	/* FreeRDP's key: 15 characters of "@A-Z[\]^_", not RFC 6455's. */
	for (int i = 0; i < 15; i++)
		key[i] = (char)('@' + (r[16 + i] & 0x1f));
	key[15] = '\0';
	*p++ = '{';
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[r[i] >> 4];
		*p++ = hex[r[i] & 15];
	}
	*p++ = '}';
	*p = '\0';
}

static void rg_open(struct rg *g, SSL_CTX *ctx, int port, const char *ticket, const char *host,
		    uint16_t tport)
{
	static const char common[] = "Cache-Control: no-cache\r\nPragma: no-cache\r\nAccept: */*\r\n"
				     "User-Agent: MS-RDGateway/1.0\r\nHost: 127.0.0.1\r\n";
	char req[1024], head[RG_HDR_MAX], val[128], want[29], key[16], id[40];
	uint8_t rest[RG_HDR_MAX], p[GW_RDG_CTRL_MAX];
	size_t rest_len, n;
	int st;

	rg_random_id(key, id);
	rg_connect(&g->out, ctx, port);
	if (g->mode == RG_WS) {
		g->in = g->out;
		n = (size_t)snprintf(req, sizeof(req),
				     "RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n%s"
				     "Connection: Upgrade\r\nUpgrade: websocket\r\n"
				     "Sec-Websocket-Version: 13\r\nSec-Websocket-Key: %s\r\n"
				     "RDG-Connection-Id: %s\r\nRDG-Auth-Scheme: PAA\r\n"
				     "Content-Length: 0\r\n\r\n",
				     common, key, id);
		rg_write(&g->out, req, n);
		st = rg_http_head(&g->out, head, sizeof(head), rest, &rest_len);
		if (st != 101)
			rg_die("the upgrade was answered %d: %.200s", st, head);
		if (pt_ws_accept_token(key, want) != 0 ||
		    !rg_header(head, "Sec-WebSocket-Accept", val, sizeof(val)) ||
		    strcasecmp(val, want))
			rg_die("a wrong Sec-WebSocket-Accept: %.200s", head);
		pt_ws_reader_init(&g->wr, 0);
	} else {
		n = (size_t)snprintf(req, sizeof(req),
				     "RDG_OUT_DATA /remoteDesktopGateway/ HTTP/1.1\r\n%s"
				     "Connection: Keep-Alive\r\nRDG-Connection-Id: %s\r\n"
				     "RDG-Auth-Scheme: PAA\r\nContent-Length: 0\r\n\r\n",
				     common, id);
		rg_write(&g->out, req, n);
		st = rg_http_head(&g->out, head, sizeof(head), rest, &rest_len);
		if (st != 200)
			rg_die("RDG_OUT_DATA was answered %d: %.200s", st, head);
		g->seed_left = 10;
		/* The IN connection, opened once OUT was answered. */
		rg_connect(&g->in, ctx, port);
		n = (size_t)snprintf(req, sizeof(req),
				     "RDG_IN_DATA /remoteDesktopGateway/ HTTP/1.1\r\n%s"
				     "Connection: Keep-Alive\r\nRDG-Connection-Id: %s\r\n"
				     "RDG-Auth-Scheme: PAA\r\nContent-Length: 0\r\n\r\n",
				     common, id);
		rg_write(&g->in, req, n);
		{
			char h2[RG_HDR_MAX];
			uint8_t r2[RG_HDR_MAX];
			size_t r2_len;

			st = rg_http_head(&g->in, h2, sizeof(h2), r2, &r2_len);
			if (st != 200 || r2_len)
				rg_die("the first RDG_IN_DATA was answered %d (%zu bytes more): %.200s",
				       st, r2_len, h2);
		}
		n = (size_t)snprintf(req, sizeof(req),
				     "RDG_IN_DATA /remoteDesktopGateway/ HTTP/1.1\r\n%s"
				     "Connection: Keep-Alive\r\nRDG-Connection-Id: %s\r\n"
				     "RDG-Auth-Scheme: PAA\r\nTransfer-Encoding: chunked\r\n\r\n",
				     common, id);
		rg_write(&g->in, req, n);
	}
	gw_rdg_reader_init(&g->rr);
	if (rest_len)
		rg_input(g, rest, rest_len);

	/* HANDSHAKE_REQUEST: version 1.0, client version 0, PAA. */
	rg_hdr(p, GW_RDG_HANDSHAKE_REQUEST, 14);
	p[8] = 1;
	p[9] = 0;
	put16(p + 10, 0);
	put16(p + 12, GW_RDG_EXT_AUTH_PAA);
	rg_send(g, p, 14);
	rg_expect(g, GW_RDG_HANDSHAKE_RESPONSE, 0, "handshake");
	/* TUNNEL_CREATE: FreeRDP's capabilities and the PAA cookie. */
	if (strlen(ticket) > 1000)
		rg_die("a ticket of %zu bytes", strlen(ticket));
	put32(p + 8, GW_RDG_CAP_QUAR_SOH | GW_RDG_CAP_CONSENT_SIGN | GW_RDG_CAP_SERVICE_MSG);
	put16(p + 12, GW_RDG_TUNNEL_PAA_COOKIE);
	put16(p + 14, 0);
	n = 16 + rg_str(p + 16, ticket);
	rg_hdr(p, GW_RDG_TUNNEL_CREATE, n);
	rg_send(g, p, n);
	rg_expect(g, GW_RDG_TUNNEL_RESPONSE, 2, "tunnel create");
	/* TUNNEL_AUTH: the client's name. */
	put16(p + 8, 0);
	n = 10 + rg_str(p + 10, "rdg-bulk");
	rg_hdr(p, GW_RDG_TUNNEL_AUTH, n);
	rg_send(g, p, n);
	rg_expect(g, GW_RDG_TUNNEL_AUTH_RESPONSE, 0, "tunnel auth");
	/* CHANNEL_CREATE: one resource, the target, RDP. */
	if (strlen(host) > 200)
		rg_die("a target host of %zu bytes", strlen(host));
	p[8] = 1;
	p[9] = 0;
	put16(p + 10, tport);
	put16(p + 12, GW_RDG_PROTOCOL_RDP);
	n = 14 + rg_str(p + 14, host);
	rg_hdr(p, GW_RDG_CHANNEL_CREATE, n);
	rg_send(g, p, n);
	rg_expect(g, GW_RDG_CHANNEL_RESPONSE, 0, "channel create");
	g->channel_open = 1;
	/* The desktop's first bytes: the Connection Request, in one DATA. */
	n = rg_cr(p + GW_RDG_DATA_HDR_LEN);
	gw_rdg_data_header(p, n);
	rg_send(g, p, GW_RDG_DATA_HDR_LEN + n);
}

/* --- main ------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
		"usage: rdg-bulk ws|http -p PORT -b BYTES -t TICKET -T HOST:PORT [-C CAFILE]\n"
		"       rdg-bulk tls -p PORT -b BYTES [-C CAFILE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *ticket = NULL, *target = NULL, *cafile = NULL, *colon;
	char host[256];
	unsigned long tport = 0;
	struct rg g = { .out = { -1, NULL }, .in = { -1, NULL } };
	SSL_CTX *ctx;
	int port = 0, opt;
	char *end;

	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "ws"))
		g.mode = RG_WS;
	else if (!strcmp(argv[1], "http"))
		g.mode = RG_HTTP;
	else if (!strcmp(argv[1], "tls"))
		g.mode = RG_TLS;
	else
		usage();
	optind = 2;
	while ((opt = getopt(argc, argv, "p:b:t:T:C:")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'b':
			errno = 0;
			g.bytes = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end)
				usage();
			break;
		case 't':
			ticket = optarg;
			break;
		case 'T':
			target = optarg;
			break;
		case 'C':
			cafile = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || port <= 0 || port > 65535 || g.bytes == 0)
		usage();
	if (g.mode != RG_TLS) {
		if (!ticket || !target || !(colon = strrchr(target, ':')) ||
		    (size_t)(colon - target) >= sizeof(host) || colon == target)
			usage();
		tport = strtoul(colon + 1, &end, 10);
		if (*end || tport == 0 || tport > 65535)
			usage();
		snprintf(host, sizeof(host), "%.*s", (int)(colon - target), target);
	}
	signal(SIGPIPE, SIG_IGN);

	if (!(ctx = SSL_CTX_new(TLS_client_method())) ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		rg_die("SSL_CTX_new");
	/* A FIN without close_notify is an end like any other here. */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	if (cafile) {
		if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1)
			rg_die("cannot read %s", cafile);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	if (!(g.ref = malloc(RG_READ_MAX + RG_PERIOD)))
		rg_die("out of memory");
	for (size_t i = 0; i < RG_READ_MAX + RG_PERIOD; i++)
		g.ref[i] = (uint8_t)(1 + i % RG_PERIOD);

	g.t0 = rg_now();
	if (g.mode == RG_TLS) {
		static uint8_t buf[RG_READ_MAX];
		uint8_t cr[64];
		size_t n;

		rg_connect(&g.out, ctx, port);
		rg_write(&g.out, cr, rg_cr(cr));
		while ((n = rg_read(&g.out, buf, sizeof(buf))) > 0) {
			struct gw_rdg_item it = { .kind = GW_RDG_ITEM_DATA, .p = buf, .n = n };

			g.channel_open = 1;
			rg_item(&g, &it);
		}
	} else {
		rg_open(&g, ctx, port, ticket, host, (uint16_t)tport);
		while (g.got < g.bytes && !g.closed && !g.ended)
			rg_pump(&g);
		if (g.got < g.bytes)
			rg_die("got %llu bytes of %llu, then %s %s", (unsigned long long)g.got,
			       (unsigned long long)g.bytes,
			       g.closed ? "CLOSE_CHANNEL" : "the end of the connection",
			       g.closed ? gw_rdg_status_name(g.close_status) : "");
		/* The backend's end: CLOSE_CHANNEL (answered in rg_item), then
		 * the gateway closes the connections (a WebSocket close frame,
		 * answered); no more DATA may come. */
		while (!g.closed && !g.ended)
			rg_pump(&g);
		if (g.closed && g.close_status)
			rg_die("the channel closed with %s (0x%08x)",
			       gw_rdg_status_name(g.close_status), g.close_status);
		lenient_reads = 1;
		setsockopt(g.out.fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ .tv_sec = 5 },
			   sizeof(struct timeval));
		while (!g.ended)
			rg_pump(&g);
	}
	if (g.got != g.bytes)
		rg_die("got %llu bytes of %llu", (unsigned long long)g.got,
		       (unsigned long long)g.bytes);
	printf("bytes=%llu\nseconds=%.3f\nmbps=%.0f\nsetup_ms=%.1f\ncipher=%s\n",
	       (unsigned long long)g.got, g.t2 - g.t1, (double)g.got / (g.t2 - g.t1) / 1e6,
	       (g.t1 - g.t0) * 1000, SSL_get_cipher_name(g.out.ssl));
	if (g.in.ssl != g.out.ssl)
		rg_close(&g.in);
	rg_close(&g.out);
	SSL_CTX_free(ctx);
	free(g.ref);
	return 0;
}
