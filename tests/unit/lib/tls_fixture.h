/* tls_fixture.h - certificates in a temporary directory for TLS tests. */
#ifndef TEST_TLS_FIXTURE_H
#define TEST_TLS_FIXTURE_H

#include <openssl/ssl.h>

#include "portico/conf.h"

struct tls_fixture {
	char dir[64];
	char cert[96], key[96];		    /* a self-signed pair for "localhost" */
	char other_cert[96], other_key[96]; /* an unrelated pair */
};

/* Make the directory and both pairs (asserts on failure). */
void tls_fixture_init(struct tls_fixture *f);
/* Remove everything. */
void tls_fixture_fini(struct tls_fixture *f);
/* A server context for cert/key; a client context trusting `ca`. */
SSL_CTX *tls_fixture_server(struct tls_fixture *f);
SSL_CTX *tls_fixture_client(const char *ca);

#endif
