/*
 * ticket.h - one-time tickets and bearer tokens.
 *
 * Both are 256 random bits written as 43 characters of unpadded base64url, so
 * they fit a URL, an .rdp file's loadbalanceinfo and a VNC password field.
 * Only their SHA-256 (64 hex digits) is ever stored: a stolen database hands
 * out no valid ticket or token.
 */
#ifndef PORTICO_TICKET_H
#define PORTICO_TICKET_H

#include <stddef.h>

#define PT_TICKET_LEN	   43 /* characters, without the NUL */
#define PT_TICKET_HASH_LEN 64 /* hex digits, without the NUL */

/* A fresh random ticket into out[PT_TICKET_LEN + 1].  0 or -EIO when the
 * system has no randomness to give. */
int pt_ticket_new(char out[PT_TICKET_LEN + 1]);

/* True when s has the form of a ticket (length and alphabet); anything else
 * can be refused before a database look-up. */
int pt_ticket_valid(const char *s);

/* SHA-256 of s as hex into out[PT_TICKET_HASH_LEN + 1]. */
void pt_ticket_hash(const char *s, char out[PT_TICKET_HASH_LEN + 1]);

#endif
