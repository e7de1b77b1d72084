/*
 * throttle.h - failed-login penalties per source address (per /64 for IPv6)
 * and per user name, in a table of bounded size.
 *
 * `limit` failures of one key within `window` lock it out for one whole
 * window from the last of them (the fail2ban maxretry/findtime model).
 * The broker counts an attempt as a failure when it starts and forgives it
 * when it succeeds, so attempts still waiting for PAM count too.
 * When the table is full, the entry with the fewest live failures in the
 * neighbourhood is replaced, so a flood of one-off keys evicts the least
 * suspicious ones first.
 */
#ifndef BROKER_THROTTLE_H
#define BROKER_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

struct brk_throttle;

struct brk_throttle *brk_throttle_new(int slots, int limit, int64_t window_ms);
void brk_throttle_free(struct brk_throttle *t);

/* The key for an address: IPv6 addresses count per /64, IPv4 as they are. */
void brk_throttle_addr_key(const char *addr, char *key, size_t len);

/* True when key is over its limit at now_ms. */
int brk_throttle_blocked(struct brk_throttle *t, const char *key, int64_t now_ms);
/* Record a failure (or an attempt that may fail) for key. */
void brk_throttle_fail(struct brk_throttle *t, const char *key, int64_t now_ms);
/* Take one recorded failure back (the attempt succeeded); nothing when key
 * has none. */
void brk_throttle_forgive(struct brk_throttle *t, const char *key, int64_t now_ms);

#endif
