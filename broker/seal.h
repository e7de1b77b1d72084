/*
 * seal.h - the user's password kept for single sign-on, sealed under the
 * bearer token or ticket that carries it.
 *
 * Pools with `sso = yes` hand the user's credentials to the backend, so the
 * password must outlive the login.  It is kept encrypted (AES-256-GCM) with
 * a key derived (HKDF-SHA256) from the token or ticket itself, which the
 * store never holds (only its hash): whoever reads the database learns no
 * password, and a password can be opened only by a request that presents
 * the token or ticket.
 */
#ifndef BROKER_SEAL_H
#define BROKER_SEAL_H

#include <stddef.h>

/* Seal `secret` under `key` (a token or ticket) into out (base64 text).
 * 0, or -1 when out is too small or OpenSSL fails. */
int brk_seal(const char *key, const char *secret, char *out, size_t outlen);

/* Open what brk_seal made with the same key into out (NUL-terminated).
 * 0, or -1 when the key is wrong or the text was altered. */
int brk_unseal(const char *key, const char *sealed, char *out, size_t outlen);

#endif
