/* pool.c - pools from the configuration file into the store, and their
 * wire format (see pool.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "pool.h"
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

json_t *brk_pool_json(const struct brk_pool *p)
{
	json_t *o = json_object();
	char buf[512];
	const char *key;
	int kind;

	if (!o)
		return NULL;
	json_object_set_new(o, "name", json_string(p->c.name));
	for (size_t i = 0; (kind = pt_conf_pool_value(&p->c, i, &key, buf, sizeof(buf))) > 0; i++) {
		switch (kind) {
		case PT_CONF_VALUE_LIST: {
			const struct pt_strlist *l = pt_conf_pool_list(&p->c, key);
			json_t *a = json_array();
			for (size_t k = 0; l && k < l->n; k++)
				json_array_append_new(a, json_string(l->v[k]));
			json_object_set_new(o, key, a);
			break;
		}
		case PT_CONF_VALUE_NUMBER:
			json_object_set_new(o, key, json_integer(strtoll(buf, NULL, 10)));
			break;
		case PT_CONF_VALUE_BOOL:
			json_object_set_new(o, key, json_boolean(buf[0] == 'y'));
			break;
		case PT_CONF_VALUE_UNSET:
			json_object_set_new(o, key, json_null());
			break;
		default:
			json_object_set_new(o, key, json_string(buf));
		}
	}
	json_object_set_new(o, "drained", json_boolean(p->drained));
	json_object_set_new(o, "source", json_string(p->from_config ? "config" : "api"));
	return o;
}

/* One JSON value as the file's text for its key; 0 or -EINVAL. */
static int value_text(const char *key, json_t *v, char *buf, size_t len, char *err, size_t errlen)
{
	if (json_is_string(v)) {
		snprintf(buf, len, "%s", json_string_value(v));
	} else if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	} else if (json_is_boolean(v)) {
		snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
	} else if (json_is_null(v)) {
		buf[0] = '\0';
	} else if (json_is_array(v)) {
		size_t i, o = 0;
		json_t *e;
		buf[0] = '\0';
		json_array_foreach(v, i, e)
		{
			if (!json_is_string(e)) {
				snprintf(err, errlen, "'%s' must be a list of strings", key);
				return -EINVAL;
			}
			o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? "," : "",
					      json_string_value(e));
			if (o >= len) {
				snprintf(err, errlen, "'%s' is too long", key);
				return -EINVAL;
			}
		}
	} else {
		snprintf(err, errlen, "'%s' has a value of the wrong type", key);
		return -EINVAL;
	}
	if (strchr(buf, '\n') || strchr(buf, '\r')) {
		snprintf(err, errlen, "'%s' must be one line", key);
		return -EINVAL;
	}
	return 0;
}

int brk_pool_from_json(json_t *in, struct pt_pool_conf *pc, char *err, size_t errlen)
{
	const char *key;
	json_t *v;
	char buf[4096];
	int rc;

	json_object_foreach(in, key, v)
	{
		if (!strcmp(key, "name") || !strcmp(key, "drained") || !strcmp(key, "source"))
			continue;
		rc = value_text(key, v, buf, sizeof(buf), err, errlen);
		if (rc == 0)
			rc = pt_conf_pool_set(pc, key, buf, err, errlen);
		if (rc)
			return -EINVAL;
	}
	pt_conf_pool_resolve(pc);
	return pt_conf_pool_check(pc, err, errlen) ? -EINVAL : 0;
}

static int listed(const struct pt_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return 1;
	return 0;
}

int brk_pool_entitled(const struct pt_pool_conf *pc, const char *user, char **groups)
{
	if (listed(&pc->users, user))
		return 1;
	for (size_t i = 0; groups && groups[i]; i++)
		if (listed(&pc->groups, groups[i]))
			return 1;
	return 0;
}
