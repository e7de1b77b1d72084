/*
 * pool.h - pools: from the configuration file into the store, and their
 * wire format, the one the admin API shows and session hosts receive
 * (docs/api.md, "A pool object").  No HTTP here: the API and the session
 * host code both use it, and neither needs the other.
 */
#ifndef BROKER_POOL_H
#define BROKER_POOL_H

#include <jansson.h>
#include <stddef.h>

#include "store.h"

/* A pool as JSON: its name, every [pool] key, drained and source. */
json_t *brk_pool_json(const struct brk_pool *p);

/* Apply the keys of a JSON object to pc as the file would take them
 * (name, drained and source are ignored), then check the pool as the file
 * is checked.  0, or -EINVAL with err saying which key and why. */
int brk_pool_from_json(json_t *in, struct pt_pool_conf *pc, char *err, size_t errlen);

/* Whether user (with groups, NULL-terminated, or NULL) may use the pool:
 * named in its users, or a member of one of its groups. */
int brk_pool_entitled(const struct pt_pool_conf *pc, const char *user, char **groups);

#endif
