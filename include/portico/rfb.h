/*
 * rfb.h - pieces of the RFB protocol (RFC 6143) and its VeNCrypt
 * extension that the gateway and the session agent share.
 */
#ifndef PORTICO_RFB_H
#define PORTICO_RFB_H

#include <stddef.h>
#include <stdint.h>

#define PT_RFB_VERSION_LEN 12 /* "RFB 003.008\n" */

enum pt_rfb_security {
	PT_RFB_SEC_INVALID = 0,
	PT_RFB_SEC_NONE = 1,
	PT_RFB_SEC_VNC = 2,
	PT_RFB_SEC_VENCRYPT = 19,
};

enum pt_rfb_vencrypt {
	PT_VENCRYPT_PLAIN = 256,
	PT_VENCRYPT_TLSPLAIN = 259,  /* anonymous TLS, then plain */
	PT_VENCRYPT_X509PLAIN = 262, /* certificate TLS, then plain */
};

/* The minor version of a ProtocolVersion message ("RFB 003.008\n" -> 8),
 * or -1 when the 12 bytes are not one.  Versions above 3.8 (Apple's 3.889)
 * answer 8, as the RFB specification says a server should treat them. */
int pt_rfb_version_minor(const char v[PT_RFB_VERSION_LEN]);

/* The answer to a VNC authentication challenge: the challenge DES-encrypted
 * with the password's first 8 bytes (bits of each byte reversed, as the
 * protocol has it). */
int pt_rfb_vnc_response(const char *password, const uint8_t challenge[16], uint8_t out[16]);

/* TigerVNC's password file content (`vncpasswd -f`): the password's first 8
 * bytes DES-encrypted with the protocol's fixed key. */
int pt_rfb_vnc_obfuscate(const char *password, uint8_t out[8]);

static inline uint32_t pt_rfb_u32(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static inline void pt_rfb_put_u32(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8),
	b[3] = (uint8_t)v;
}

#endif
