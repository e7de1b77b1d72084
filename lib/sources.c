/* sources.c - see include/portico/sources.h */
#include "portico/sources.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SOURCES_BUCKETS 4096 /* a power of two */
#define SOURCE_MAX	64   /* "xxxx:...:xxxx::/64" fits */

struct entry {
	struct entry *next;
	int count;
	char key[SOURCE_MAX];
};

struct pt_sources {
	struct entry *bucket[SOURCES_BUCKETS];
};

/* FNV-1a: the keys are short and not chosen to collide in any way that
 * matters, since a bucket's chain is bounded by the connections counted. */
static uint32_t hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (uint8_t)*s++) * 16777619u;
	return h & (SOURCES_BUCKETS - 1);
}

struct pt_sources *pt_sources_new(void)
{
	return calloc(1, sizeof(struct pt_sources));
}

void pt_sources_free(struct pt_sources *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < SOURCES_BUCKETS; i++)
		for (struct entry *e = t->bucket[i], *n; e; e = n) {
			n = e->next;
			free(e);
		}
	free(t);
}

static struct entry **find(struct pt_sources *t, const char *source)
{
	struct entry **pp = &t->bucket[hash(source)];

	while (*pp && strncmp((*pp)->key, source, SOURCE_MAX - 1) != 0)
		pp = &(*pp)->next;
	return pp;
}

int pt_sources_get(const struct pt_sources *t, const char *source)
{
	struct entry **pp = find((struct pt_sources *)t, source);

	return *pp ? (*pp)->count : 0;
}

int pt_sources_add(struct pt_sources *t, const char *source, int delta)
{
	struct entry **pp = find(t, source), *e = *pp;

	if (!e) {
		if (delta <= 0)
			return 0;
		if (!(e = calloc(1, sizeof(*e))))
			return -ENOMEM;
		strncpy(e->key, source, SOURCE_MAX - 1);
		*pp = e;
	}
	e->count += delta;
	if (e->count > 0)
		return e->count;
	*pp = e->next;
	free(e);
	return 0;
}
