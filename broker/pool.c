/* pool.c - pools from the configuration file into the store. */
#include <errno.h>
#include <string.h>

#include "broker.h"
#include "portico/log.h"

int brk_load_pools(struct brk *b)
{
	const struct pt_conf *conf = b->conf;
	struct brk_pool *have = NULL;
	size_t nhave = 0;
	int rc;

	for (size_t i = 0; i < conf->npools; i++) {
		struct brk_pool p = { .c = conf->pools[i], .from_config = 1 };
		struct brk_pool old = { 0 };

		/* The file is the truth for the pools it names; a drain set
		 * through the console survives a restart. */
		if (brk_store_pool_get(b->store, p.c.name, &old) == 0) {
			p.drained = old.drained;
			brk_pool_clear(&old);
		}
		rc = brk_store_pool_put(b->store, &p, 0);
		if (rc) {
			pt_log_warnx("cannot store pool %s: %s", p.c.name,
				     brk_store_error(b->store));
			return rc;
		}
	}
	rc = brk_store_pool_list(b->store, &have, &nhave);
	if (rc)
		return rc;
	for (size_t i = 0; i < nhave; i++)
		if (have[i].from_config && !pt_conf_pool(conf, have[i].c.name))
			pt_log_info("pool %s is no longer in %s; it stays until deleted with "
				    "portico-admin pool delete",
				    have[i].c.name, conf->path ? conf->path : "the configuration");
	brk_pools_free(have, nhave);
	pt_log_info("%zu pools from the configuration, %zu in the store", conf->npools, nhave);
	return 0;
}
