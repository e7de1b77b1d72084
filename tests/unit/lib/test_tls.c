/* test_tls.c - contexts, certificate generation and the memory-buffer engine. */
#include <criterion/criterion.h>
#include <errno.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "portico/buf.h"
#include "portico/tls.h"
#include "tls_fixture.h"

static struct tls_fixture fx;

static void setup(void)
{
	tls_fixture_init(&fx);
}

static void teardown(void)
{
	tls_fixture_fini(&fx);
}

TestSuite(tls, .init = setup, .fini = teardown, .timeout = 60);

/* Move every queued ciphertext byte from a to b.  Returns bytes moved. */
static size_t shuttle(struct pt_tls *a, struct pt_tls *b)
{
	const char *data;
	size_t n, moved = 0;

	while ((n = pt_tls_out_pending(a, &data)) > 0) {
		size_t avail;
		char *p = pt_tls_in_space(b, &avail);
		if (!p)
			break; /* b must consume first */
		if (n > avail)
			n = avail;
		memcpy(p, data, n);
		pt_tls_in_commit(b, n);
		pt_tls_out_consume(a, n);
		moved += n;
	}
	return moved;
}

/* Run both handshakes to the end; returns the client's and server's result. */
static void handshake(struct pt_tls *c, struct pt_tls *s, int *rc_c, int *rc_s)
{
	for (int i = 0; i < 50; i++) {
		*rc_c = pt_tls_handshake(c);
		shuttle(c, s);
		*rc_s = pt_tls_handshake(s);
		shuttle(s, c);
		if ((*rc_c == 0 && *rc_s == 0) || (*rc_c != 0 && *rc_c != -EAGAIN) ||
		    (*rc_s != 0 && *rc_s != -EAGAIN))
			break;
	}
	/* Let the client see the server's last flight or alert. */
	if (*rc_c == -EAGAIN)
		*rc_c = pt_tls_handshake(c);
}

static void fill(char *buf, size_t len, uint64_t off, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)((off + i) * 2654435761u >> 13 ^ seed);
}

/* Send `total` bytes from a to b in 100 KiB writes, checking every byte. */
static void stream_bytes(struct pt_tls *a, struct pt_tls *b, uint64_t total, unsigned seed)
{
	static char wbuf[100 * 1024], rbuf[64 * 1024], expect[64 * 1024];
	uint64_t sent = 0, got = 0;
	size_t wlen = 0, woff = 0;

	while (got < total) {
		if (woff == wlen && sent < total) {
			wlen = total - sent < sizeof(wbuf) ? total - sent : sizeof(wbuf);
			fill(wbuf, wlen, sent, seed);
			woff = 0;
		}
		while (woff < wlen) {
			ssize_t n = pt_tls_write(a, wbuf + woff, wlen - woff);
			if (n == -EAGAIN)
				break;
			cr_assert_gt(n, 0, "write: %s", pt_tls_last_error(a));
			woff += n;
			sent += n;
		}
		shuttle(a, b);
		for (;;) {
			ssize_t n = pt_tls_read(b, rbuf, sizeof(rbuf));
			if (n == -EAGAIN)
				break;
			cr_assert_gt(n, 0, "read: %s", pt_tls_last_error(b));
			fill(expect, n, got, seed);
			cr_assert_eq(memcmp(rbuf, expect, n), 0, "bytes differ at %llu",
				     (unsigned long long)got);
			got += n;
		}
	}
	cr_assert_eq(got, total);
}

Test(tls, handshake_100mib_both_ways_and_clean_shutdown)
{
	SSL_CTX *sctx = tls_fixture_server(&fx), *cctx = tls_fixture_client(fx.cert);
	struct pt_tls *c = pt_tls_new(cctx, 0, "localhost"), *s = pt_tls_new(sctx, 1, NULL);
	char buf[16];
	int rc_c, rc_s;

	handshake(c, s, &rc_c, &rc_s);
	cr_assert_eq(rc_c, 0, "client: %s", pt_tls_last_error(c));
	cr_assert_eq(rc_s, 0, "server: %s", pt_tls_last_error(s));
	cr_assert(SSL_version(pt_tls_ssl(c)) >= TLS1_2_VERSION);

	stream_bytes(c, s, 100 << 20, 1);
	stream_bytes(s, c, 100 << 20, 2);

	/* Orderly shutdown: each side sees the end of the other's data. */
	cr_assert_eq(pt_tls_shutdown(c), 0);
	shuttle(c, s);
	cr_assert_eq(pt_tls_read(s, buf, sizeof(buf)), 0);
	cr_assert_eq(pt_tls_shutdown(s), 0);
	shuttle(s, c);
	cr_assert_eq(pt_tls_read(c, buf, sizeof(buf)), 0);

	/* No TLS 1.3 session ticket was issued (TigerVNC 1.12 hangs on them). */
	SSL_SESSION *sess = SSL_get_session(pt_tls_ssl(c));
	cr_assert_not_null(sess);
	cr_assert_not(SSL_SESSION_has_ticket(sess));

	pt_tls_free(c);
	pt_tls_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	cr_assert_eq(pt_chunk_in_use(), 0, "chunks leaked: %lld", (long long)pt_chunk_in_use());
}

/* A client that must refuse the server: the handshake fails on the client
 * side with a message that says why. */
static void expect_refusal(const char *ca, const char *host, const char *why)
{
	SSL_CTX *sctx = tls_fixture_server(&fx), *cctx = tls_fixture_client(ca);
	struct pt_tls *c = pt_tls_new(cctx, 0, host), *s = pt_tls_new(sctx, 1, NULL);
	int rc_c, rc_s;

	handshake(c, s, &rc_c, &rc_s);
	cr_assert_eq(rc_c, -EPROTO);
	cr_assert(strstr(pt_tls_last_error(c), why) != NULL, "got '%s'", pt_tls_last_error(c));
	pt_tls_free(c);
	pt_tls_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

Test(tls, wrong_ca_fails_with_clear_error)
{
	expect_refusal(fx.other_cert, "localhost", "certificate verify failed");
}

Test(tls, wrong_host_name_fails)
{
	expect_refusal(fx.cert, "gateway.example.org", "hostname mismatch");
}

static void feed_garbage(const char *data, size_t len)
{
	SSL_CTX *sctx = tls_fixture_server(&fx);
	struct pt_tls *s = pt_tls_new(sctx, 1, NULL);
	size_t avail, off = 0;
	int rc = -EAGAIN;

	while (off < len && rc == -EAGAIN) {
		char *p = pt_tls_in_space(s, &avail);
		cr_assert_not_null(p);
		size_t n = len - off < avail ? len - off : avail;
		memcpy(p, data + off, n);
		pt_tls_in_commit(s, n);
		off += n;
		rc = pt_tls_handshake(s);
	}
	cr_assert_eq(rc, -EPROTO, "garbage was not refused (rc %d)", rc);
	cr_assert(strcmp(pt_tls_last_error(s), "no error") != 0);
	pt_tls_free(s);
	SSL_CTX_free(sctx);
}

Test(tls, garbage_instead_of_client_hello_is_refused)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char rfb[] = "RFB 003.008\n";
	char *junk = malloc(1 << 20);

	feed_garbage(http, sizeof(http) - 1);
	feed_garbage(rfb, sizeof(rfb) - 1);
	/* A TLS record header announcing a huge handshake message. */
	feed_garbage("\x16\x03\x01\xff\xff\x01\xff\xff\xff", 9);
	srand(7);
	for (int i = 0; i < (1 << 20); i++)
		junk[i] = (char)rand();
	junk[0] = 0x16; /* looks like a handshake record, then noise */
	junk[1] = 0x03;
	junk[2] = 0x03;
	feed_garbage(junk, 1 << 20);
	free(junk);
}

Test(tls, tls_1_1_client_is_refused)
{
	SSL_CTX *sctx = tls_fixture_server(&fx), *cctx = tls_fixture_client(fx.cert);
	struct pt_tls *c, *s;
	int rc_c, rc_s;

	SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION);
	SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION);
	SSL_CTX_set_security_level(cctx, 0);
	c = pt_tls_new(cctx, 0, "localhost");
	s = pt_tls_new(sctx, 1, NULL);
	handshake(c, s, &rc_c, &rc_s);
	cr_assert_eq(rc_s, -EPROTO);
	cr_assert_neq(rc_c, 0);
	pt_tls_free(c);
	pt_tls_free(s);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
}

Test(tls, self_signed_pair_is_generated_when_absent)
{
	char cert[128], key[128], err[256];
	struct pt_tls_conf tc = { .cert = cert, .key = key };
	struct stat st;
	SSL_CTX *ctx;

	snprintf(cert, sizeof(cert), "%s/new.pem", fx.dir);
	snprintf(key, sizeof(key), "%s/new.key", fx.dir);
	ctx = pt_tls_server_ctx(&tc, err, sizeof(err));
	cr_assert_not_null(ctx, "%s", err);
	cr_assert_eq(stat(key, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "key mode %o", st.st_mode & 0777);

	X509 *x = SSL_CTX_get0_certificate(ctx);
	EVP_PKEY *pk = X509_get0_pubkey(x);
	char group[64];
	size_t glen;
	cr_assert_eq(EVP_PKEY_get_base_id(pk), EVP_PKEY_EC);
	cr_assert(EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen));
	cr_assert_str_eq(group, "prime256v1");
	cr_assert_eq(X509_check_host(x, "localhost", 0, 0, NULL), 1);
	cr_assert_eq(X509_check_ip_asc(x, "127.0.0.1", 0), 1);

	/* A second start loads the same pair instead of making a new one. */
	SSL_CTX *again = pt_tls_server_ctx(&tc, err, sizeof(err));
	cr_assert_not_null(again, "%s", err);
	cr_assert_eq(X509_cmp(x, SSL_CTX_get0_certificate(again)), 0);
	SSL_CTX_free(again);
	SSL_CTX_free(ctx);
	unlink(cert);
	unlink(key);
}

Test(tls, config_errors_name_the_file)
{
	char err[512], missing[128];
	struct pt_tls_conf tc = { .cert = fx.cert, .key = missing };

	/* A certificate without its key is an error, not a silent new pair. */
	snprintf(missing, sizeof(missing), "%s/missing.key", fx.dir);
	cr_assert_null(pt_tls_server_ctx(&tc, err, sizeof(err)));
	cr_assert(strstr(err, missing) != NULL, "got '%s'", err);

	/* A key that does not belong to the certificate. */
	tc.key = fx.other_key;
	cr_assert_null(pt_tls_server_ctx(&tc, err, sizeof(err)));
	cr_assert(strstr(err, "does not match") != NULL, "got '%s'", err);

	/* Bad cipher strings. */
	tc.key = fx.key;
	tc.ciphersuites = "TLS_NOT_A_SUITE";
	cr_assert_null(pt_tls_server_ctx(&tc, err, sizeof(err)));
	cr_assert(strstr(err, "ciphersuites") != NULL, "got '%s'", err);

	/* A CA file that is not PEM. */
	struct pt_tls_conf cc = { .ca = fx.key };
	FILE *f;
	char junk[128];
	snprintf(junk, sizeof(junk), "%s/junk.pem", fx.dir);
	f = fopen(junk, "w");
	fputs("not a certificate\n", f);
	fclose(f);
	cc.ca = junk;
	cr_assert_null(pt_tls_client_ctx(&cc, err, sizeof(err)));
	cr_assert(strstr(err, junk) != NULL, "got '%s'", err);
	unlink(junk);
}
