/* tls_fixture.c - see tls_fixture.h */
#include "tls_fixture.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "portico/tls.h"

void tls_fixture_init(struct tls_fixture *f)
{
	char err[256];

	snprintf(f->dir, sizeof(f->dir), "/tmp/portico-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	snprintf(f->cert, sizeof(f->cert), "%s/server.pem", f->dir);
	snprintf(f->key, sizeof(f->key), "%s/server.key", f->dir);
	snprintf(f->other_cert, sizeof(f->other_cert), "%s/other.pem", f->dir);
	snprintf(f->other_key, sizeof(f->other_key), "%s/other.key", f->dir);
	cr_assert_eq(pt_tls_make_self_signed(f->cert, f->key, "localhost", err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(
		pt_tls_make_self_signed(f->other_cert, f->other_key, "localhost", err, sizeof(err)),
		0, "%s", err);
}

void tls_fixture_fini(struct tls_fixture *f)
{
	unlink(f->cert);
	unlink(f->key);
	unlink(f->other_cert);
	unlink(f->other_key);
	rmdir(f->dir);
}

SSL_CTX *tls_fixture_server(struct tls_fixture *f)
{
	struct pt_tls_conf tc = { .cert = f->cert, .key = f->key };
	char err[256];
	SSL_CTX *ctx = pt_tls_server_ctx(&tc, err, sizeof(err));

	cr_assert_not_null(ctx, "%s", err);
	return ctx;
}

SSL_CTX *tls_fixture_client(const char *ca)
{
	struct pt_tls_conf tc = { .ca = (char *)ca };
	char err[256];
	SSL_CTX *ctx = pt_tls_client_ctx(&tc, err, sizeof(err));

	cr_assert_not_null(ctx, "%s", err);
	return ctx;
}
