/* throttle.c - see throttle.h */
#include "throttle.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX 96
#define PROBE	8

struct slot {
	char key[KEY_MAX];
	int count;	  /* failures since start */
	int64_t start_ms; /* the window's start; a lock-out restarts it */
};

struct brk_throttle {
	struct slot *slots;
	int nslots;
	int limit;
	int64_t window_ms;
};

struct brk_throttle *brk_throttle_new(int slots, int limit, int64_t window_ms)
{
	struct brk_throttle *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->slots = calloc(slots, sizeof(*t->slots));
	if (!t->slots) {
		free(t);
		return NULL;
	}
	t->nslots = slots;
	t->limit = limit;
	t->window_ms = window_ms;
	return t;
}

void brk_throttle_free(struct brk_throttle *t)
{
	if (!t)
		return;
	free(t->slots);
	free(t);
}

void brk_throttle_addr_key(const char *addr, char *key, size_t len)
{
	struct in6_addr a6;

	if (inet_pton(AF_INET6, addr, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
		char buf[INET6_ADDRSTRLEN];
		memset(a6.s6_addr + 8, 0, 8);
		inet_ntop(AF_INET6, &a6, buf, sizeof(buf));
		snprintf(key, len, "addr:%s/64", buf);
		return;
	}
	snprintf(key, len, "addr:%s", addr);
}

static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Failures that still count at now_ms (0 once the window has passed). */
static int live_count(const struct brk_throttle *t, const struct slot *s, int64_t now_ms)
{
	return s->key[0] && now_ms - s->start_ms <= t->window_ms ? s->count : 0;
}

/* The slot holding key, or (when create) the one to put it in: a free or
 * expired one, else the one with the fewest failures. */
static struct slot *find(struct brk_throttle *t, const char *key, int64_t now_ms, int create)
{
	uint32_t h = hash(key);
	struct slot *victim = NULL;
	int lowest = 0;

	for (int i = 0; i < PROBE; i++) {
		struct slot *s = &t->slots[(h + i) % t->nslots];
		if (!strncmp(s->key, key, KEY_MAX - 1))
			return s;
		int c = live_count(t, s, now_ms);
		if (!victim || c < lowest) {
			victim = s;
			lowest = c;
		}
	}
	if (!create)
		return NULL;
	snprintf(victim->key, KEY_MAX, "%s", key);
	victim->count = 0;
	victim->start_ms = now_ms;
	return victim;
}

int brk_throttle_blocked(struct brk_throttle *t, const char *key, int64_t now_ms)
{
	struct slot *s = find(t, key, now_ms, 0);

	return s && live_count(t, s, now_ms) >= t->limit;
}

void brk_throttle_fail(struct brk_throttle *t, const char *key, int64_t now_ms)
{
	struct slot *s = find(t, key, now_ms, 1);

	if (now_ms - s->start_ms > t->window_ms) {
		s->count = 0;
		s->start_ms = now_ms;
	}
	/* Reaching the limit locks the key out for one whole window. */
	if (++s->count == t->limit)
		s->start_ms = now_ms;
}

void brk_throttle_forgive(struct brk_throttle *t, const char *key, int64_t now_ms)
{
	struct slot *s = find(t, key, now_ms, 0);

	if (s && live_count(t, s, now_ms) > 0)
		s->count--;
}
