/* assign.c - the assignment decision, see store.h (pure: no SQL). */
#include <string.h>

#include "store.h"

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
