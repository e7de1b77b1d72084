/* ticket.c - see include/portico/ticket.h */
#include "portico/ticket.h"

#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int pt_ticket_new(char out[PT_TICKET_LEN + 1])
{
	unsigned char r[33]; /* 256 bits, padded to a multiple of 3 bytes */
	size_t o = 0;

	if (RAND_bytes(r, 32) != 1)
		return -EIO;
	r[32] = 0;
	for (size_t i = 0; i < 33; i += 3) {
		unsigned v = (unsigned)r[i] << 16 | (unsigned)r[i + 1] << 8 | r[i + 2];
		for (int k = 3; k >= 0 && o < PT_TICKET_LEN; k--)
			out[o++] = b64url[(v >> (6 * k)) & 63];
	}
	out[PT_TICKET_LEN] = '\0';
	OPENSSL_cleanse(r, sizeof(r));
	return 0;
}

int pt_ticket_valid(const char *s)
{
	return s && strlen(s) == PT_TICKET_LEN && strspn(s, b64url) == PT_TICKET_LEN;
}

void pt_ticket_hash(const char *s, char out[PT_TICKET_HASH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int len = 0;

	EVP_Digest(s, strlen(s), md, &len, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[PT_TICKET_HASH_LEN] = '\0';
}
