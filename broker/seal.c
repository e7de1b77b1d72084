/* seal.c - AES-256-GCM under a key derived from a token (see seal.h). */
#include "seal.h"

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <string.h>

#define NONCE 12
#define TAG   16
#define RAW   1024 /* longest sealed secret, in bytes, before encoding */

static int derive(const char *key, unsigned char out[32])
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	size_t len = 32;
	int ok = c && EVP_PKEY_derive_init(c) > 0 &&
		 EVP_PKEY_CTX_set_hkdf_md(c, EVP_sha256()) > 0 &&
		 EVP_PKEY_CTX_set1_hkdf_key(c, (const unsigned char *)key, (int)strlen(key)) > 0 &&
		 EVP_PKEY_CTX_add1_hkdf_info(c, (const unsigned char *)"portico sso v1", 14) > 0 &&
		 EVP_PKEY_derive(c, out, &len) > 0 && len == 32;

	EVP_PKEY_CTX_free(c);
	return ok ? 0 : -1;
}

/* GCM one way or the other over buf[NONCE .. NONCE+n), tag after it. */
static int gcm(int enc, const unsigned char k[32], unsigned char *buf, int n)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	unsigned char *data = buf + NONCE, *tag = buf + NONCE + n;
	int len, ok;

	ok = c && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, k, buf, enc) > 0;
	if (ok && !enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG, tag) > 0;
	ok = ok && EVP_CipherUpdate(c, data, &len, data, n) > 0 &&
	     EVP_CipherFinal_ex(c, data + len, &len) > 0;
	if (ok && enc)
		ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG, tag) > 0;
	EVP_CIPHER_CTX_free(c);
	return ok ? 0 : -1;
}

int brk_seal(const char *key, const char *secret, char *out, size_t outlen)
{
	unsigned char k[32], buf[NONCE + RAW + TAG];
	size_t n = strlen(secret);
	int rc = -1;

	if (n > RAW || outlen < 4 * ((NONCE + n + TAG + 2) / 3) + 1)
		return -1;
	memcpy(buf + NONCE, secret, n);
	if (derive(key, k) == 0 && RAND_bytes(buf, NONCE) == 1 && gcm(1, k, buf, (int)n) == 0) {
		EVP_EncodeBlock((unsigned char *)out, buf, (int)(NONCE + n + TAG));
		rc = 0;
	}
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

int brk_unseal(const char *key, const char *sealed, char *out, size_t outlen)
{
	unsigned char k[32], buf[NONCE + RAW + TAG + 3];
	size_t len = strlen(sealed);
	int n, pad = 0, rc = -1;

	if (len == 0 || len % 4 || len / 4 * 3 > sizeof(buf))
		return -1;
	n = EVP_DecodeBlock(buf, (const unsigned char *)sealed, (int)len);
	while (pad < 2 && sealed[len - 1 - pad] == '=')
		pad++;
	n -= pad; /* EVP_DecodeBlock counts the padding as bytes */
	if (n < NONCE + TAG || (size_t)(n - NONCE - TAG) + 1 > outlen)
		goto out;
	/* Only the one text brk_seal writes: base64 leaves spare bits in its
	 * last group, which a decoder ignores. */
	{
		unsigned char again[sizeof(buf) / 3 * 4 + 8];
		EVP_EncodeBlock(again, buf, n);
		if (strcmp((const char *)again, sealed))
			goto out;
	}
	n -= NONCE + TAG;
	if (derive(key, k) == 0 && gcm(0, k, buf, n) == 0) {
		memcpy(out, buf + NONCE, (size_t)n);
		out[n] = '\0';
		rc = 0;
	}
out:
	OPENSSL_cleanse(k, sizeof(k));
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}
