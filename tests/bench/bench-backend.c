/*
 * bench-backend - the plain TCP backend that tests/bench/relay.sh relays to.
 *
 *   bench-backend -p PORT [-a ADDR] [-g vnc|rdp]
 *
 * One thread, epoll, nonblocking sockets, as many connections as the file
 * limit allows (raised to the hard limit at start).  With -g the backend
 * first greets like a session would (tests/bench/scale.sh puts the gateway
 * in front of it): vnc, an RFB 3.8 server offering security type None, then
 * SecurityResult OK and, after the ClientInit, a ServerInit (1024x768,
 * name "bench"); rdp, a server that reads one X.224 Connection Request (as
 * long as its TPKT header says) and answers with a Connection Confirm
 * selecting TLS.  Then, and at once without -g, the client's first line
 * picks what its connection does:
 *
 *   BULK <bytes>\n   send that many bytes, then close
 *   ECHO\n           echo everything back until EOF
 *   SCALE\n          a held session: 8-byte messages; one starting with 'b'
 *                    asks for the bulk stream of the count in its other 7
 *                    bytes (big-endian), every other one is echoed
 *
 * A connection that sends nothing stays open until its peer closes it (the
 * idle-memory test).  Byte i of every BULK stream is 1 + i % 251, so the load
 * generator can check what the relay delivered; the bytes go out with
 * sendfile(2) from a memfd because the backend shares its core with the load
 * generator and should cost it as little as possible.
 *
 * Prints "port=N" on stdout once it listens.  Ends on SIGTERM or SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

/* A multiple of the pattern period, so the pattern runs on across the wrap
 * from the end of the memfd back to its start. */
#define BB_PERIOD     251
#define BB_FILE_SIZE  ((off_t)BB_PERIOD * 66841) /* just under 16 MiB */
#define BB_HEAD_MAX   256 /* a request line, or a Connection Request (-g rdp) */
#define BB_ECHO_BUF   16384
#define BB_MAX_EVENTS 256

enum bb_state {
	BB_GREET, /* -g: the session's own handshake (bb_greet) */
	BB_HEAD,  /* waiting for the first line (idle connections stay here) */
	BB_BULK,  /* sending BULK bytes */
	BB_DRAIN, /* BULK done and our side shut: wait for the peer's EOF */
	BB_ECHO,
	BB_SCALE, /* SCALE: 8-byte messages */
};

enum bb_greeting { BB_GREET_NONE, BB_GREET_VNC, BB_GREET_RDP };

struct bb_conn {
	int fd;
	enum bb_state state;
	uint32_t events; /* what epoll is asked for now */
	size_t hlen;
	char head[BB_HEAD_MAX];
	uint64_t left; /* BULK bytes still to send */
	off_t off;     /* where in the memfd the next byte comes from */
	char *ebuf;
	size_t elen, eoff;
	int eof;
	int step;	/* BB_GREET: which message comes next */
	int then_scale; /* BULK asked by a SCALE message: back to SCALE after */
};

static enum bb_greeting bb_greeting;
static int bb_epfd = -1;
static int bb_memfd = -1;
static unsigned long bb_nconns;

static void bb_close(struct bb_conn *c)
{
	/* close() removes the fd from the epoll set. */
	close(c->fd);
	free(c->ebuf);
	free(c);
	bb_nconns--;
}

static int bb_want(struct bb_conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	if (c->events == events)
		return 0;
	if (epoll_ctl(bb_epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
		fprintf(stderr, "bench-backend: epoll_ctl: %s\n", strerror(errno));
		return -errno;
	}
	c->events = events;
	return 0;
}

static void bb_scale(struct bb_conn *c);

static void bb_bulk(struct bb_conn *c)
{
	while (c->left > 0) {
		size_t n = (size_t)(BB_FILE_SIZE - c->off);
		ssize_t sent;

		if (n > c->left)
			n = (size_t)c->left;
		sent = sendfile(c->fd, bb_memfd, &c->off, n);
		if (sent > 0) {
			c->left -= (uint64_t)sent;
			if (c->off == BB_FILE_SIZE)
				c->off = 0;
			continue;
		}
		if (sent == -1 && errno == EINTR)
			continue;
		if (sent == -1 && errno == EAGAIN) {
			if (bb_want(c, EPOLLOUT))
				bb_close(c);
			return;
		}
		/* The client went away early; it reports the short count. */
		bb_close(c);
		return;
	}
	if (c->then_scale) {
		c->then_scale = 0;
		c->state = BB_SCALE;
		if (bb_want(c, EPOLLIN))
			bb_close(c);
		else
			bb_scale(c);
		return;
	}
	/* All sent: a FIN rather than close(), so that nothing the peer might
	 * still send turns into a reset that could cut the tail of the data. */
	shutdown(c->fd, SHUT_WR);
	c->state = BB_DRAIN;
	if (bb_want(c, EPOLLIN))
		bb_close(c);
}

static void bb_drain(struct bb_conn *c)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(c->fd, buf, sizeof(buf));

		if (n > 0)
			continue;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		bb_close(c);
		return;
	}
}

static void bb_echo(struct bb_conn *c)
{
	/* Bounded so that one busy connection cannot starve the others; epoll is
	 * level-triggered and brings us back. */
	for (int round = 0; round < 64; round++) {
		ssize_t n;

		if (c->eoff < c->elen) {
			n = write(c->fd, c->ebuf + c->eoff, c->elen - c->eoff);
			if (n > 0) {
				c->eoff += (size_t)n;
				continue;
			}
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && errno == EAGAIN) {
				if (bb_want(c, EPOLLOUT))
					bb_close(c);
				return;
			}
			bb_close(c);
			return;
		}
		c->eoff = c->elen = 0;
		if (c->eof) {
			bb_close(c);
			return;
		}
		n = read(c->fd, c->ebuf, BB_ECHO_BUF);
		if (n > 0) {
			c->elen = (size_t)n;
			continue;
		}
		if (n == 0) {
			c->eof = 1;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			if (bb_want(c, EPOLLIN))
				bb_close(c);
			return;
		}
		bb_close(c);
		return;
	}
	if (bb_want(c, c->eoff < c->elen ? EPOLLOUT : EPOLLIN))
		bb_close(c);
}

/* SCALE: one 8-byte message at a time (a held session sends a few a
 * second); an echo of 8 bytes goes out at once to a peer that reads. */
static void bb_scale(struct bb_conn *c)
{
	for (;;) {
		char m[8];
		ssize_t n;

		if (c->hlen < 8) {
			n = read(c->fd, c->head + c->hlen, 8 - c->hlen);
			if (n > 0) {
				c->hlen += (size_t)n;
				continue;
			}
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 && errno == EAGAIN)
				return;
			bb_close(c); /* the session ended */
			return;
		}
		/* One message; more may have come with the SCALE line. */
		memcpy(m, c->head, 8);
		c->hlen -= 8;
		memmove(c->head, c->head + 8, c->hlen);
		if (m[0] == 'b') {
			uint64_t v = 0;

			for (int i = 1; i < 8; i++)
				v = v << 8 | (unsigned char)m[i];
			c->left = v;
			c->off = 0;
			c->then_scale = 1;
			c->state = BB_BULK;
			bb_bulk(c);
			return;
		}
		if (write(c->fd, m, 8) != 8) {
			fprintf(stderr, "bench-backend: an echo did not go out at once\n");
			bb_close(c);
			return;
		}
	}
}

/* What -g vnc sends after the client's ClientInit: 1024x768, 32 bpp true
 * colour, name "bench". */
static const unsigned char bb_serverinit[] = {
	4, 0, 3, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
	0, 0, 0, 5, 'b', 'e', 'n', 'c', 'h',
};
/* What -g rdp answers: an X.224 Connection Confirm with an RDP_NEG_RSP
 * that selects TLS. */
static const unsigned char bb_confirm[] = {
	3, 0, 0, 19, 14, 0xd0, 0, 0, 0x12, 0x34, 0, 2, 0, 8, 0, 1, 0, 0, 0,
};

static int bb_send(struct bb_conn *c, const void *p, size_t len)
{
	/* A handshake message on a fresh socket: it fits in the buffer. */
	if (write(c->fd, p, len) == (ssize_t)len)
		return 0;
	fprintf(stderr, "bench-backend: a handshake message did not go out at once\n");
	bb_close(c);
	return -1;
}

/* -g: read exactly what the current step needs, answer, go on. */
static void bb_greet(struct bb_conn *c)
{
	for (;;) {
		size_t need;
		ssize_t n;

		if (bb_greeting == BB_GREET_VNC)
			need = c->step == 0 ? 12 : 1;
		else if (c->hlen < 4)
			need = 4;
		else
			need = (size_t)((unsigned char)c->head[2] << 8 | (unsigned char)c->head[3]);
		if (need < 4 && bb_greeting == BB_GREET_RDP) {
			fprintf(stderr, "bench-backend: bad TPKT length\n");
			bb_close(c);
			return;
		}
		if (need > sizeof(c->head)) {
			fprintf(stderr, "bench-backend: Connection Request of %zu bytes\n", need);
			bb_close(c);
			return;
		}
		if (c->hlen < need) {
			n = read(c->fd, c->head + c->hlen, need - c->hlen);
			if (n > 0) {
				c->hlen += (size_t)n;
				continue;
			}
			if (n == -1 && (errno == EINTR))
				continue;
			if (n == -1 && errno == EAGAIN)
				return;
			bb_close(c);
			return;
		}
		c->hlen = 0;
		if (bb_greeting == BB_GREET_RDP) {
			if (c->head[5] != (char)0xe0) {
				fprintf(stderr, "bench-backend: not a Connection Request\n");
				bb_close(c);
				return;
			}
			if (bb_send(c, bb_confirm, sizeof(bb_confirm)))
				return;
			c->state = BB_HEAD;
			return;
		}
		switch (c->step++) {
		case 0: /* the client's ProtocolVersion: one type, None */
			if (bb_send(c, "\001\001", 2))
				return;
			break;
		case 1: /* its choice, None: SecurityResult OK */
			if (c->head[0] != 1) {
				fprintf(stderr, "bench-backend: security type %d\n", c->head[0]);
				bb_close(c);
				return;
			}
			if (bb_send(c, "\0\0\0\0", 4))
				return;
			break;
		default: /* ClientInit */
			if (bb_send(c, bb_serverinit, sizeof(bb_serverinit)))
				return;
			c->state = BB_HEAD;
			return;
		}
	}
}

static void bb_head(struct bb_conn *c)
{
	char *nl;
	ssize_t n;
	size_t linelen;

	for (;;) {
		n = read(c->fd, c->head + c->hlen, sizeof(c->head) - 1 - c->hlen);
		if (n > 0)
			break;
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && errno == EAGAIN)
			return;
		bb_close(c); /* EOF or error before a request: the idle case ends */
		return;
	}
	c->hlen += (size_t)n;
	c->head[c->hlen] = '\0';
	nl = memchr(c->head, '\n', c->hlen);
	if (!nl) {
		if (c->hlen == sizeof(c->head) - 1) {
			fprintf(stderr, "bench-backend: request line too long\n");
			bb_close(c);
		}
		return;
	}
	*nl = '\0';
	linelen = (size_t)(nl - c->head) + 1;
	if (strncmp(c->head, "BULK ", 5) == 0) {
		char *end;

		errno = 0;
		c->left = strtoull(c->head + 5, &end, 10);
		if (errno || end == c->head + 5 || (*end && *end != '\r')) {
			fprintf(stderr, "bench-backend: bad BULK line\n");
			bb_close(c);
			return;
		}
		c->state = BB_BULK;
		c->off = 0;
		bb_bulk(c);
	} else if (strcmp(c->head, "ECHO") == 0 || strcmp(c->head, "ECHO\r") == 0) {
		c->ebuf = malloc(BB_ECHO_BUF);
		if (!c->ebuf) {
			bb_close(c);
			return;
		}
		/* What came after the line in the same read is the first data. */
		c->elen = c->hlen - linelen;
		memcpy(c->ebuf, c->head + linelen, c->elen);
		c->state = BB_ECHO;
		bb_echo(c);
	} else if (strcmp(c->head, "SCALE") == 0 || strcmp(c->head, "SCALE\r") == 0) {
		/* A first message may have come with the line. */
		c->hlen -= linelen;
		memmove(c->head, c->head + linelen, c->hlen);
		c->state = BB_SCALE;
		bb_scale(c);
	} else {
		fprintf(stderr, "bench-backend: unknown request\n");
		bb_close(c);
	}
}

static void bb_accept(int lfd)
{
	for (;;) {
		struct epoll_event ev;
		struct bb_conn *c;
		int fd, one = 1;

		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd == -1) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN)
				return;
			fprintf(stderr, "bench-backend: accept (%lu connections): %s\n", bb_nconns,
				strerror(errno));
			/* EMFILE and friends: back off instead of spinning on a
			 * level-triggered listener that stays readable. */
			usleep(10000);
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			return;
		}
		c->fd = fd;
		c->state = bb_greeting == BB_GREET_NONE ? BB_HEAD : BB_GREET;
		if (bb_greeting == BB_GREET_VNC && write(fd, "RFB 003.008\n", 12) != 12) {
			close(fd);
			free(c);
			continue;
		}
		c->events = EPOLLIN;
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		if (epoll_ctl(bb_epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
			fprintf(stderr, "bench-backend: epoll_ctl: %s\n", strerror(errno));
			close(fd);
			free(c);
			return;
		}
		bb_nconns++;
	}
}

static int bb_make_file(void)
{
	unsigned char *p;
	int fd;

	fd = memfd_create("bench-bulk", MFD_CLOEXEC);
	if (fd == -1)
		return -1;
	if (ftruncate(fd, BB_FILE_SIZE) == -1)
		goto fail;
	p = mmap(NULL, (size_t)BB_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	for (off_t i = 0; i < BB_FILE_SIZE; i++)
		p[i] = (unsigned char)(1 + i % BB_PERIOD);
	munmap(p, (size_t)BB_FILE_SIZE);
	return fd;
fail:
	close(fd);
	return -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench-backend -p PORT [-a ADDR] [-g vnc|rdp]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct epoll_event evs[BB_MAX_EVENTS], ev;
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sin);
	const char *addr = "127.0.0.1";
	struct rlimit rl;
	long port = -1;
	int lfd, one = 1, opt;
	char *end;

	while ((opt = getopt(argc, argv, "a:g:p:")) != -1) {
		switch (opt) {
		case 'g':
			if (!strcmp(optarg, "vnc"))
				bb_greeting = BB_GREET_VNC;
			else if (!strcmp(optarg, "rdp"))
				bb_greeting = BB_GREET_RDP;
			else
				usage();
			break;
		case 'a':
			addr = optarg;
			break;
		case 'p':
			port = strtol(optarg, &end, 10);
			if (*end || port < 0 || port > 65535)
				usage();
			break;
		default:
			usage();
		}
	}
	if (optind != argc || port < 0)
		usage();
	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		usage();
	sin.sin_port = htons((uint16_t)port);

	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	bb_memfd = bb_make_file();
	if (bb_memfd == -1) {
		fprintf(stderr, "bench-backend: memfd: %s\n", strerror(errno));
		return 1;
	}

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (lfd == -1) {
		fprintf(stderr, "bench-backend: socket: %s\n", strerror(errno));
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) == -1 || listen(lfd, 4096) == -1 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &slen) == -1) {
		fprintf(stderr, "bench-backend: %s:%ld: %s\n", addr, port, strerror(errno));
		return 1;
	}
	bb_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (bb_epfd == -1) {
		fprintf(stderr, "bench-backend: epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	ev.events = EPOLLIN;
	ev.data.ptr = NULL; /* the listener */
	if (epoll_ctl(bb_epfd, EPOLL_CTL_ADD, lfd, &ev) == -1) {
		fprintf(stderr, "bench-backend: epoll_ctl: %s\n", strerror(errno));
		return 1;
	}
	printf("port=%u\n", ntohs(sin.sin_port));
	fflush(stdout);

	for (;;) {
		int n = epoll_wait(bb_epfd, evs, BB_MAX_EVENTS, -1);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "bench-backend: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct bb_conn *c = evs[i].data.ptr;

			if (!c) {
				bb_accept(lfd);
				continue;
			}
			switch (c->state) {
			case BB_GREET:
				bb_greet(c);
				break;
			case BB_SCALE:
				bb_scale(c);
				break;
			case BB_HEAD:
				bb_head(c);
				break;
			case BB_BULK:
				bb_bulk(c);
				break;
			case BB_DRAIN:
				bb_drain(c);
				break;
			case BB_ECHO:
				bb_echo(c);
				break;
			}
		}
	}
}
