/*
 * rdp-bulk - both ends of tests/bench/rdp.sh's passthrough stream: a client
 * that opens like an RDP client (an X.224 Connection Request, with a ticket
 * as its routing token) and then reads a bulk stream, and the backend that
 * takes the request the gateway forwards and then sends that stream.
 *
 *   rdp-bulk serve -p PORT -b BYTES
 *   rdp-bulk get -p PORT -b BYTES [-t TICKET]
 *
 * serve: one connection at a time on 127.0.0.1:PORT.  It reads one whole
 * Connection Request (the TPKT length says how long), prints its cookie
 * line to stderr ("cr LEN Cookie: mstshash=alice", so the benchmark can see
 * what the gateway forwarded), then sends BYTES bytes, shuts its side and
 * waits for the client's EOF.  Byte i of the stream is 1 + i % 251, as in
 * bench-backend, and goes out with sendfile(2) from a memfd: the backend
 * shares a core with the client and should cost as little as possible.
 *
 * get: connects to 127.0.0.1:PORT, sends a Connection Request with
 * "Cookie: msts=TICKET" (without -t: "Cookie: mstshash=bench", what a
 * plain relay or the backend itself is happy with) and an RDP_NEG_REQ for
 * TLS, reads to EOF and checks every byte and the count.  Prints
 * bytes=N, seconds=S (first byte to EOF, so the gateway's ticket redeem is
 * not counted as transfer time), mbps=M (10^6 B/s) and setup_ms=T (connect
 * to first byte).  Exit status 1 on any error or a short or wrong stream.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RB_PERIOD    251
#define RB_FILE_SIZE ((off_t)RB_PERIOD * 66841) /* just under 16 MiB */
#define RB_READ_SIZE (256 * 1024)
#define RB_CR_MAX    4096

static double rb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int rb_addr(int port, struct sockaddr_in *sa)
{
	if (port <= 0 || port > 65535)
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return 0;
}

static int rb_read_full(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n > 0)
			got += (size_t)n;
		else if (n == -1 && errno == EINTR)
			continue;
		else
			return -1;
	}
	return 0;
}

static int rb_write_full(int fd, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n > 0)
			off += (size_t)n;
		else if (n == -1 && errno == EINTR)
			continue;
		else
			return -1;
	}
	return 0;
}

/* The pattern in a memfd, for sendfile. */
static int rb_memfd(void)
{
	uint8_t *p;
	int fd = memfd_create("rdp-bulk", 0);

	if (fd == -1 || ftruncate(fd, RB_FILE_SIZE) == -1)
		return -1;
	p = mmap(NULL, (size_t)RB_FILE_SIZE, PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	for (off_t i = 0; i < RB_FILE_SIZE; i++)
		p[i] = (uint8_t)(1 + i % RB_PERIOD);
	munmap(p, (size_t)RB_FILE_SIZE);
	return fd;
}

/* One connection of the backend: the request, then the stream. */
static void rb_serve_one(int fd, int memfd, uint64_t bytes)
{
	uint8_t cr[RB_CR_MAX + 1], buf[4096];
	size_t len;
	off_t off = 0;
	char *line, *end;

	if (rb_read_full(fd, cr, 4) != 0 || cr[0] != 3) {
		fprintf(stderr, "rdp-bulk: no TPKT from the client\n");
		return;
	}
	len = (size_t)cr[2] << 8 | cr[3];
	if (len < 11 || len > RB_CR_MAX || rb_read_full(fd, cr + 4, len - 4) != 0 ||
	    cr[5] != 0xe0) {
		fprintf(stderr, "rdp-bulk: not a connection request\n");
		return;
	}
	cr[len] = '\0';
	line = (char *)cr + 11;
	end = memchr(line, '\r', len - 11);
	if (end && strncmp(line, "Cookie: ", 8) == 0)
		fprintf(stderr, "cr %zu %.*s\n", len, (int)(end - line), line);
	else
		fprintf(stderr, "cr %zu (no cookie)\n", len);
	while (bytes > 0) {
		size_t n = (size_t)(RB_FILE_SIZE - off);
		ssize_t sent;

		if (n > bytes)
			n = (size_t)bytes;
		sent = sendfile(fd, memfd, &off, n);
		if (sent > 0) {
			bytes -= (uint64_t)sent;
			if (off == RB_FILE_SIZE)
				off = 0;
			continue;
		}
		if (sent == -1 && errno == EINTR)
			continue;
		fprintf(stderr, "rdp-bulk: the client left with %llu bytes unsent\n",
			(unsigned long long)bytes);
		return;
	}
	/* A FIN, then wait for the client's: a close() with unread data in
	 * the socket could turn into a reset that cuts the tail. */
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static int rb_serve(int port, uint64_t bytes)
{
	struct sockaddr_in sa;
	int lfd, memfd, one = 1;

	if (rb_addr(port, &sa) != 0)
		return 1;
	memfd = rb_memfd();
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (memfd == -1 || lfd == -1 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(lfd, 16) == -1) {
		fprintf(stderr, "rdp-bulk: cannot listen on 127.0.0.1:%d: %s\n", port,
			strerror(errno));
		return 1;
	}
	fprintf(stderr, "rdp-bulk: listening on 127.0.0.1:%d\n", port);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);

		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "rdp-bulk: accept: %s\n", strerror(errno));
			return 1;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		rb_serve_one(fd, memfd, bytes);
		close(fd);
	}
}

/* The request an RDP client sends first (MS-RDPBCGR 2.2.1.1). */
static size_t rb_cr(const char *ticket, uint8_t *out, size_t cap)
{
	char line[512];
	int n = ticket ? snprintf(line, sizeof(line), "Cookie: msts=%s\r\n", ticket)
		       : snprintf(line, sizeof(line), "Cookie: mstshash=bench\r\n");
	size_t len = 4 + 7 + (size_t)n + 8;

	if (n < 0 || (size_t)n >= sizeof(line) || len > cap || len > 255 + 4)
		return 0;
	out[0] = 3;
	out[1] = 0;
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	out[4] = (uint8_t)(len - 5); /* LI: what follows it */
	memcpy(out + 5, "\xe0\0\0\0\0\0", 6);
	memcpy(out + 11, line, (size_t)n);
	/* RDP_NEG_REQ: type 1, flags 0, length 8, PROTOCOL_SSL */
	memcpy(out + 11 + n, "\x01\x00\x08\x00\x01\x00\x00\x00", 8);
	return len;
}

static int rb_get(int port, uint64_t bytes, const char *ticket)
{
	struct sockaddr_in sa;
	uint8_t cr[512], *buf, *ref;
	size_t crlen;
	uint64_t got = 0;
	double t0, t1 = 0, t2;
	int fd, one = 1;

	if (rb_addr(port, &sa) != 0 || !(crlen = rb_cr(ticket, cr, sizeof(cr)))) {
		fprintf(stderr, "rdp-bulk: bad port or ticket\n");
		return 1;
	}
	buf = malloc(RB_READ_SIZE);
	ref = malloc(RB_READ_SIZE + RB_PERIOD);
	if (!buf || !ref)
		return 1;
	for (size_t i = 0; i < RB_READ_SIZE + RB_PERIOD; i++)
		ref[i] = (uint8_t)(1 + i % RB_PERIOD);
	t0 = rb_now();
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
		fprintf(stderr, "rdp-bulk: connect to 127.0.0.1:%d: %s\n", port, strerror(errno));
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (rb_write_full(fd, cr, crlen) != 0) {
		fprintf(stderr, "rdp-bulk: send: %s\n", strerror(errno));
		return 1;
	}
	for (;;) {
		ssize_t n = read(fd, buf, RB_READ_SIZE);

		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			fprintf(stderr, "rdp-bulk: read after %llu bytes: %s\n",
				(unsigned long long)got, strerror(errno));
			return 1;
		}
		if (n == 0)
			break;
		if (got == 0)
			t1 = rb_now();
		if (memcmp(buf, ref + got % RB_PERIOD, (size_t)n) != 0) {
			fprintf(stderr, "rdp-bulk: wrong bytes after %llu\n",
				(unsigned long long)got);
			return 1;
		}
		got += (uint64_t)n;
	}
	t2 = rb_now();
	close(fd);
	if (got != bytes) {
		fprintf(stderr, "rdp-bulk: got %llu bytes of %llu\n", (unsigned long long)got,
			(unsigned long long)bytes);
		return 1;
	}
	printf("bytes=%llu\nseconds=%.3f\nmbps=%.0f\nsetup_ms=%.1f\n", (unsigned long long)got,
	       t2 - t1, (double)got / (t2 - t1) / 1e6, (t1 - t0) * 1000);
	free(buf);
	free(ref);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: rdp-bulk serve -p PORT -b BYTES\n"
			"       rdp-bulk get -p PORT -b BYTES [-t TICKET]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *ticket = NULL;
	uint64_t bytes = 0;
	int port = 0, opt;
	char *end;

	if (argc < 2)
		usage();
	optind = 2;
	while ((opt = getopt(argc, argv, "p:b:t:")) != -1) {
		switch (opt) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'b':
			errno = 0;
			bytes = strtoull(optarg, &end, 10);
			if (errno || end == optarg || *end)
				usage();
			break;
		case 't':
			ticket = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || port == 0 || bytes == 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(argv[1], "serve") == 0 && !ticket)
		return rb_serve(port, bytes);
	if (strcmp(argv[1], "get") == 0)
		return rb_get(port, bytes, ticket);
	usage();
	return 2;
}
