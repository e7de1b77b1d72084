/*
 * sources.h - counts per source (an IPv4 address or an IPv6 /64, as
 * pt_net_peer gives it), for listeners that cap what one source may hold.
 *
 * A hash table of small entries: an entry lives while its count is above
 * zero, so the table holds at most as many entries as there are counted
 * connections.  Not thread-safe: one per event loop.
 */
#ifndef PORTICO_SOURCES_H
#define PORTICO_SOURCES_H

struct pt_sources;

struct pt_sources *pt_sources_new(void);
void pt_sources_free(struct pt_sources *t);

/* The count for source ("" counts as a source of its own). */
int pt_sources_get(const struct pt_sources *t, const char *source);

/* Add delta (+1 or -1, say) to source's count and return the new count, or
 * -ENOMEM when a new entry could not be made (nothing changed then).  A
 * count never goes below zero. */
int pt_sources_add(struct pt_sources *t, const char *source, int delta);

#endif
