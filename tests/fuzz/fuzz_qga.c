/*
 * fuzz_qga - libFuzzer target for what a guest agent sends to a session's
 * monitor (session/qga.c): the guest is the user's machine, so every byte
 * is an attacker's.
 *
 *   make fuzz      builds $(BUILD)-fuzz/fuzz/fuzz_qga
 *   build-fuzz/fuzz/fuzz_qga -runs=1000000 WORK tests/fuzz/corpus/fuzz_qga
 *
 * The first byte says how the rest is read:
 *   even  one answer line, by sd_qga_parse alone;
 *   odd   the agent's side of a real unix socketpair, the input written
 *         whole and then the end of the stream: sd_qga_call,
 *         sd_qga_exec, sd_qga_ipv4 and sd_qga_call again read it (each
 *         returns at the end of the stream, so nothing waits), and last
 *         sd_qga_sync, which reads to the end.
 * Properties beyond "no crash, no leak": every return is one the header
 * documents; 0 comes with a "return" member, -EREMOTEIO with a sentence;
 * the error text is printable (no C0 or C1 control, no DEL); the read
 * buffer never holds more than SD_QGA_MAX bytes; an address found is a
 * dotted quad that is not loopback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qga.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_printable(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)) {
			fprintf(stderr, "error text not printable: '%s'\n", s);
			abort();
		}
}

static void check_rc(int rc, const char *err, int ok_extra)
{
	if (rc != 0 && rc != -EREMOTEIO && rc != -EPROTO && rc != -ECONNRESET && rc != -ETIMEDOUT &&
	    rc != -EPIPE && rc != ok_extra) {
		fprintf(stderr, "undocumented return %d (%s)\n", rc, err);
		abort();
	}
	if (rc != 0 && !err[0]) {
		fprintf(stderr, "failure %d without a sentence\n", rc);
		abort();
	}
	check_printable(err);
}

static void parse_one(const uint8_t *d, size_t n)
{
	char err[128] = "";
	json_t *r = (json_t *)1;
	int rc = sd_qga_parse((const char *)d, n, &r, err, sizeof(err));

	if ((rc == 0) != (r != NULL) || (rc != 0 && rc != -EREMOTEIO && rc != -EPROTO))
		abort();
	if (rc)
		check_printable(err);
	/* "class: desc", unless a long class filled err. */
	if (rc == -EREMOTEIO && strlen(err) < sizeof(err) - 1 && !strstr(err, ": "))
		abort();
	json_decref(r);
}

static void stream(const uint8_t *d, size_t n)
{
	struct sd_qga *q = malloc(sizeof(*q));
	char err[128], addr[INET_ADDRSTRLEN];
	char *argv[] = { "/bin/true", "x", NULL };
	struct in_addr in;
	json_t *r;
	int sv[2], rc, status;

	if (!q || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == -1)
		abort();
	if (write(sv[1], d, n) != (ssize_t)n)
		goto out; /* more than the socket holds: no agent's single burst */
	shutdown(sv[1], SHUT_WR);
	q->fd = sv[0];
	q->len = 0;
	q->stale = 0;

	err[0] = '\0';
	rc = sd_qga_call(q, "guest-info", NULL, &r, 1000, err, sizeof(err));
	check_rc(rc, err, 0);
	if ((rc == 0) != (r != NULL))
		abort();
	json_decref(r);
	err[0] = '\0';
	/* 50 ms: a program still running ends the wait at once (the next
	 * poll would be past it) instead of sleeping 100 ms an input. */
	rc = sd_qga_exec(q, argv, &status, 50, err, sizeof(err));
	check_rc(rc, err, 0);
	err[0] = '\0';
	rc = sd_qga_ipv4(q, addr, sizeof(addr), 1000, err, sizeof(err));
	check_rc(rc, err, -ENOENT);
	if (rc == 0 && (inet_pton(AF_INET, addr, &in) != 1 || (ntohl(in.s_addr) >> 24) == 127))
		abort();
	err[0] = '\0';
	rc = sd_qga_call(q, "guest-ping", json_pack("{si}", "a", 1), NULL, 1000, err, sizeof(err));
	check_rc(rc, err, 0);
	/* Last: a sync's random id is never in the input, so it reads to
	 * the end, through everything left. */
	rc = sd_qga_sync(q, 1000);
	if (rc != -EPROTO && rc != -ECONNRESET && rc != -EREMOTEIO && rc != -EPIPE)
		abort();
	if (q->len > SD_QGA_MAX)
		abort();
	sd_qga_close(q);
	sv[0] = -1;
out:
	if (sv[0] >= 0)
		close(sv[0]);
	close(sv[1]);
	free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 200000)
		return 0;
	if (data[0] & 1)
		stream(data + 1, size - 1);
	else
		parse_one(data + 1, size - 1);
	return 0;
}
