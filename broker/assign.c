/* assign.c - the assignment decision, see store.h (pure: no SQL). */
#include <stdlib.h>
#include <string.h>

#include "store_impl.h"

static int has_room(const struct brk_candidate *c)
{
	return c->sessions < c->capacity;
}

static int least_loaded(const struct brk_candidate *c, size_t n)
{
	int best = -1;

	for (size_t i = 0; i < n; i++)
		if (has_room(&c[i]) && (best < 0 || c[i].sessions < c[best].sessions))
			best = (int)i;
	return best;
}

int brk_assign_pick(int policy, const struct brk_candidate *c, size_t n, int64_t *cursor,
		    const char *previous)
{
	if (n == 0)
		return -1;
	switch (policy) {
	case PT_POLICY_ROUND_ROBIN:
		for (size_t k = 1; k <= n; k++) {
			size_t i = (size_t)((*cursor + (int64_t)k) % (int64_t)n);
			if (has_room(&c[i])) {
				*cursor = (int64_t)i;
				return (int)i;
			}
		}
		return -1;
	case PT_POLICY_PERSISTENT:
		for (size_t i = 0; previous && i < n; i++)
			if (!strcmp(c[i].host, previous) && has_room(&c[i]))
				return (int)i;
		return least_loaded(c, n);
	default:
		return least_loaded(c, n);
	}
}

/* bsearch over host rows sorted by name (strcmp): struct brk_hostinfo
 * starts with it. */
static int host_cmp(const void *key, const void *row)
{
	return strcmp(key, row);
}

const struct brk_hostinfo *brk_hostinfo_find(const struct brk_hostinfo *rows, size_t n,
					     const char *name)
{
	return rows ? bsearch(name, rows, n, sizeof(*rows), host_cmp) : NULL;
}

size_t brk_assign_candidates(const struct pt_pool_conf *pc, const struct brk_hostinfo *rows,
			     size_t nrows, int64_t now_ms, struct brk_candidate *c)
{
	int sessiond = pc->driver != PT_DRIVER_STATIC;
	size_t n = 0;

	for (size_t i = 0; i < pc->hosts.n; i++) {
		const char *h = pc->hosts.v[i];
		const struct brk_hostinfo *row = brk_hostinfo_find(rows, nrows, h);
		/* A static backend without a row yet has no sessions; a
		 * sessiond host must have registered and be heard from. */
		if (row ? row->drained || (sessiond && (!row->sessiond ||
							 row->seen < now_ms - BRK_HOST_ALIVE_MS))
			: sessiond)
			continue;
		c[n].host = h;
		c[n].capacity = pc->max_sessions_per_host;
		c[n].sessions = row ? row->live : 0;
		n++;
	}
	return n;
}
