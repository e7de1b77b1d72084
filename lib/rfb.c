/* rfb.c - see include/portico/rfb.h */
#include "portico/rfb.h"

#include <openssl/evp.h>
#include <string.h>

int pt_rfb_version_minor(const char v[PT_RFB_VERSION_LEN])
{
	int major, minor;

	if (memcmp(v, "RFB ", 4) || v[7] != '.' || v[11] != '\n')
		return -1;
	for (int i = 4; i < 11; i++)
		if (i != 7 && (v[i] < '0' || v[i] > '9'))
			return -1;
	major = (v[4] - '0') * 100 + (v[5] - '0') * 10 + (v[6] - '0');
	minor = (v[8] - '0') * 100 + (v[9] - '0') * 10 + (v[10] - '0');
	if (major != 3)
		return -1;
	return minor > 8 ? 8 : minor;
}

/* Single DES-ECB over n bytes (a multiple of 8).  OpenSSL 3's default
 * provider has no single DES; three-key DES with three equal keys is the
 * same cipher.  Written by hand because no library offers VNC's use of
 * DES. */
static int des_ecb(const uint8_t k[8], const uint8_t *in, uint8_t *out, int n)
{
	uint8_t key[24];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int len = 0, ok;

	for (int i = 0; i < 3; i++)
		memcpy(key + 8 * i, k, 8);
	ok = c && EVP_EncryptInit_ex(c, EVP_des_ede3_ecb(), NULL, key, NULL) > 0 &&
	     EVP_CIPHER_CTX_set_padding(c, 0) > 0 && EVP_EncryptUpdate(c, out, &len, in, n) > 0 &&
	     len == n;
	EVP_CIPHER_CTX_free(c);
	memset(key, 0, sizeof(key));
	return ok ? 0 : -1;
}

int pt_rfb_vnc_response(const char *password, const uint8_t challenge[16], uint8_t out[16])
{
	uint8_t k[8] = { 0 };
	size_t n = strnlen(password, 8);
	int rc;

	for (size_t i = 0; i < n; i++) {
		uint8_t b = (uint8_t)password[i], r = 0;
		for (int j = 0; j < 8; j++)
			r |= (uint8_t)(((b >> j) & 1) << (7 - j));
		k[i] = r;
	}
	rc = des_ecb(k, challenge, out, 16);
	memset(k, 0, sizeof(k));
	return rc;
}

int pt_rfb_vnc_obfuscate(const char *password, uint8_t out[8])
{
	/* The d3des key {23,82,107,6,35,78,88,7} with each byte's bits
	 * reversed, as standard DES wants it. */
	static const uint8_t k[8] = { 0xe8, 0x4a, 0xd6, 0x60, 0xc4, 0x72, 0x1a, 0xe0 };
	uint8_t in[8] = { 0 };

	memcpy(in, password, strnlen(password, 8));
	return des_ecb(k, in, out, 8);
}
