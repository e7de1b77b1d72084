/*
 * store.c - store.h's door: the back end the URI names, and what both back
 * ends share (the error words, a pool's text, the timeouts' decision).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "metrics.h"
#include "portico/audit.h"
#include "store_impl.h"

_Thread_local char brk_store_err[512];
_Thread_local int brk_store_rc = -EIO;

const char *brk_store_error(struct brk_store *st)
{
	(void)st;
	return brk_store_err[0] ? brk_store_err : "no error";
}

int brk_store_fail(int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(brk_store_err, sizeof(brk_store_err), fmt, ap);
	va_end(ap);
	return brk_store_rc = rc;
}

struct brk_store *brk_store_open(const char *uri, char *err, size_t errlen)
{
	struct brk_store *st = calloc(1, sizeof(*st));

	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (!strncmp(uri, "postgresql://", 13) || !strncmp(uri, "postgres://", 11))
		st->pg = pg_open(uri, err, errlen);
	else if (!strncmp(uri, "sqlite:", 7))
		st->sq = sq_open(uri, err, errlen);
	else
		snprintf(err, errlen,
			 "[broker] store: expected sqlite:/path/to/file.db or postgresql://...");
	if (!st->pg && !st->sq) {
		free(st);
		return NULL;
	}
	return st;
}

void brk_store_close(struct brk_store *st)
{
	if (!st)
		return;
	if (st->pg)
		pg_close(st->pg);
	else
		sq_close(st->sq);
	free(st);
}

#define CALL(st, fn, ...) \
	counted((st)->pg ? pg_##fn((st)->pg, __VA_ARGS__) : sq_##fn((st)->sq, __VA_ARGS__))

/* Every call goes through here: its failures are the metrics' store errors
 * (not the answers that are no failure: -ENOENT, -EEXIST, -ENOSPC...). */
static int counted(int rc)
{
	if (rc == -EIO || rc == -EAGAIN || rc == -ENOMEM)
		brk_metrics_store_error();
	return rc;
}

int brk_store_pool_put(struct brk_store *st, const struct brk_pool *p, int create_only)
{
	return CALL(st, pool_put, p, create_only);
}

int brk_store_pool_get(struct brk_store *st, const char *name, struct brk_pool *out)
{
	return CALL(st, pool_get, name, out);
}

int brk_store_pool_list(struct brk_store *st, struct brk_pool **out, size_t *n)
{
	return CALL(st, pool_list, out, n);
}

int brk_store_pool_delete(struct brk_store *st, const char *name)
{
	return CALL(st, pool_delete, name);
}

int brk_store_pool_set_drained(struct brk_store *st, const char *name, int drained)
{
	return CALL(st, pool_set_drained, name, drained);
}

int brk_store_host_register(struct brk_store *st, const char *name, const char *address,
			    int64_t now_ms)
{
	return CALL(st, host_register, name, address, now_ms);
}

int brk_store_host_heartbeat(struct brk_store *st, const char *name, double load,
			     int64_t mem_free_kb, int64_t now_ms)
{
	return CALL(st, host_heartbeat, name, load, mem_free_kb, now_ms);
}

int brk_store_host_list(struct brk_store *st, struct brk_host **out, size_t *n)
{
	return CALL(st, host_list, NULL, out, n);
}

int brk_store_host_get(struct brk_store *st, const char *name, struct brk_host *out)
{
	struct brk_host *h;
	size_t n;
	int rc = CALL(st, host_list, name, &h, &n);

	if (rc == 0 && n == 0)
		rc = -ENOENT;
	if (rc == 0)
		*out = h[0];
	free(h);
	return rc;
}

int brk_store_host_set_drained(struct brk_store *st, const char *name, int drained)
{
	return CALL(st, host_set_drained, name, drained);
}

int brk_store_assign(struct brk_store *st, const struct brk_assign_req *req,
		     struct brk_session *out, int *reconnect)
{
	return CALL(st, assign, req, out, reconnect);
}

int brk_store_session_get(struct brk_store *st, int64_t id, struct brk_session *out)
{
	return CALL(st, session_get, id, out);
}

int brk_store_session_list(struct brk_store *st, const struct brk_session_filter *f,
			   struct brk_session **out, size_t *n)
{
	return CALL(st, session_list, f, out, n);
}

int brk_store_session_ready(struct brk_store *st, int64_t id, const char *backend,
			    const char *secret, int64_t now_ms)
{
	return CALL(st, session_ready, id, backend, secret, now_ms);
}

int brk_store_session_event(struct brk_store *st, int64_t id, const char *event, int64_t at_ms,
			    int64_t bytes_up, int64_t bytes_down)
{
	return CALL(st, session_event, id, event, at_ms, bytes_up, bytes_down);
}

int brk_store_session_gateway(struct brk_store *st, int64_t id, const char *gateway)
{
	return CALL(st, session_gateway, id, gateway);
}

int brk_store_gateway_started(struct brk_store *st, const char *gateway, int64_t now_ms, int *n)
{
	return CALL(st, gateway_started, gateway, now_ms, n);
}

int brk_store_session_end(struct brk_store *st, int64_t id, const char *reason, int64_t now_ms,
			  int *ended)
{
	struct brk_session s;
	int dummy, rc;

	if (!ended)
		ended = &dummy;
	rc = CALL(st, session_end, id, reason, now_ms, ended);
	/* Whoever ended it (a logoff, a timeout, the host's report, a start
	 * that failed), the trail has it once: the call that changed the row. */
	if (rc == 0 && *ended && pt_audit_enabled() && brk_store_session_get(st, id, &s) == 0)
		brk_audit_session_end(&s, reason);
	return rc;
}

int brk_store_ticket_put(struct brk_store *st, const char *hash, const struct brk_ticket *t)
{
	return CALL(st, ticket_put, hash, t);
}

int brk_store_ticket_take(struct brk_store *st, const char *hash, int64_t now_ms,
			  struct brk_ticket *out)
{
	return CALL(st, ticket_take, hash, now_ms, out);
}

int brk_store_token_put(struct brk_store *st, const char *hash, const struct brk_token *t)
{
	return CALL(st, token_put, hash, t);
}

int brk_store_token_get(struct brk_store *st, const char *hash, int64_t now_ms,
			struct brk_token *out)
{
	return CALL(st, token_get, hash, now_ms, out);
}

int brk_store_token_delete(struct brk_store *st, const char *hash)
{
	return CALL(st, token_delete, hash);
}

int brk_store_purge(struct brk_store *st, int64_t now_ms)
{
	return CALL(st, purge, now_ms);
}

int brk_store_snapshot(struct brk_store *st, void **buf, size_t *len)
{
	return CALL(st, snapshot, buf, len);
}

int brk_store_restore(struct brk_store *st, const void *buf, size_t len)
{
	return CALL(st, restore, buf, len);
}

int brk_store_is(struct brk_store *st, const void *buf, size_t len)
{
	return CALL(st, is, buf, len);
}

int brk_store_throttle_take(struct brk_store *st, const char *const *keys, size_t n, int limit,
			    int64_t window_ms, int64_t now_ms)
{
	return CALL(st, throttle_take, keys, n, limit, window_ms, now_ms);
}

int brk_store_throttle_forgive(struct brk_store *st, const char *const *keys, size_t n)
{
	return CALL(st, throttle_forgive, keys, n);
}

int brk_store_broker_beat(struct brk_store *st, const char *id, int64_t now_ms)
{
	return CALL(st, broker_beat, id, now_ms);
}

int brk_store_control_add(struct brk_store *st, int64_t session_id, const char *action,
			  const char *text, int64_t at_ms)
{
	return CALL(st, control_add, session_id, action, text ? text : "", at_ms);
}

int brk_store_control_since(struct brk_store *st, int64_t after, struct brk_control **out,
			    size_t *n, int64_t *last)
{
	*out = NULL;
	*n = 0;
	*last = 0;
	return CALL(st, control_since, after, out, n, last);
}

int brk_store_broker_seen(struct brk_store *st, const char *id, int64_t *seen_ms)
{
	return CALL(st, broker_seen, id, seen_ms);
}

int brk_store_shared(const struct brk_store *st)
{
	return st->pg != NULL;
}

/* --- a pool's keys as text -------------------------------------------------- */

/* Append to a growing string; 0 or -ENOMEM. */
static int append(char **out, size_t *len, size_t *cap, const char *a, const char *b)
{
	size_t need = strlen(a) + strlen(b) + 1;

	if (*len + need > *cap) {
		size_t ncap = (*cap + need) * 2;
		char *n = realloc(*out, ncap);
		if (!n)
			return -ENOMEM;
		*out = n;
		*cap = ncap;
	}
	*len += (size_t)snprintf(*out + *len, *cap - *len, "%s%s", a, b);
	return 0;
}

/* The pool's keys as "key = value" lines (lists of any length). */
char *brk_pool_text(const struct pt_pool_conf *pc)
{
	size_t cap = 0, len = 0;
	char *out = NULL, buf[1024];
	const char *key;
	int kind, rc = append(&out, &len, &cap, "", "");

	for (size_t i = 0;
	     rc == 0 && (kind = pt_conf_pool_value(pc, i, &key, buf, sizeof(buf))) > 0; i++) {
		if (kind == PT_CONF_VALUE_UNSET)
			continue;
		rc = append(&out, &len, &cap, key, " = ");
		if (kind == PT_CONF_VALUE_LIST) {
			const struct pt_strlist *l = pt_conf_pool_list(pc, key);
			for (size_t k = 0; rc == 0 && l && k < l->n; k++)
				rc = append(&out, &len, &cap, k ? "," : "", l->v[k]);
		} else if (rc == 0) {
			rc = append(&out, &len, &cap, buf, "");
		}
		if (rc == 0)
			rc = append(&out, &len, &cap, "\n", "");
	}
	if (rc) {
		free(out);
		return NULL;
	}
	return out;
}

int brk_pool_parse(const char *name, const char *text, struct pt_pool_conf *pc)
{
	char err[512], *copy, *line, *save = NULL;
	int rc = pt_conf_pool_init(pc, name);

	if (rc)
		return rc;
	copy = strdup(text);
	if (!copy)
		return -ENOMEM;
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *eq = strstr(line, " = ");
		if (!eq)
			continue;
		*eq = '\0';
		if (pt_conf_pool_set(pc, line, eq + 3, err, sizeof(err)) == -EINVAL) {
			rc = brk_store_fail(-EIO, "pool %.64s: %.400s", name, err);
		}
	}
	free(copy);
	pt_conf_pool_resolve(pc);
	return rc;
}

int brk_pool_text_has_host(const char *text, const char *host)
{
	const char *h = text ? strstr(text, "hosts = ") : NULL;
	char *line = h ? strndup(h + 8, strcspn(h + 8, "\n")) : NULL;
	int known = 0;

	for (char *sv, *tok = line ? strtok_r(line, ",", &sv) : NULL; tok && !known;
	     tok = strtok_r(NULL, ",", &sv))
		known = !strcmp(tok, host);
	free(line);
	return known;
}

void brk_pool_clear(struct brk_pool *p)
{
	pt_conf_pool_clear(&p->c);
}

void brk_pools_free(struct brk_pool *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		brk_pool_clear(&p[i]);
	free(p);
}

/* --- timeouts ------------------------------------------------------------------ */

int brk_store_session_expired(struct brk_store *st, int64_t now_ms, struct brk_session **out,
			      const char ***reasons, size_t *n)
{
	struct brk_pool *pools = NULL;
	struct brk_session *live = NULL;
	size_t np = 0, nl = 0, k = 0;
	struct brk_session_filter f = { .state = -2 };
	int rc;

	*out = NULL;
	*reasons = NULL;
	*n = 0;
	if ((rc = brk_store_pool_list(st, &pools, &np)) ||
	    (rc = brk_store_session_list(st, &f, &live, &nl))) {
		brk_pools_free(pools, np);
		return rc;
	}
	*reasons = calloc(nl ? nl : 1, sizeof(**reasons));
	if (!*reasons) {
		brk_pools_free(pools, np);
		free(live);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nl; i++) {
		const struct brk_session *s = &live[i];
		const struct pt_pool_conf *pc = NULL;
		const char *why = NULL;
		for (size_t j = 0; j < np; j++)
			if (!strcmp(pools[j].c.name, s->pool))
				pc = &pools[j].c;
		if (!pc)
			continue;
		int64_t last = s->last_input_ms > s->created_ms ? s->last_input_ms : s->created_ms;
		if (pc->max_duration_ms && now_ms - s->created_ms >= pc->max_duration_ms)
			why = "maximum duration";
		else if (pc->disconnect_timeout_ms && s->state == BRK_DISCONNECTED &&
			 now_ms - s->disconnected_ms >= pc->disconnect_timeout_ms)
			why = "disconnect timeout";
		else if (pc->idle_timeout_ms && s->state != BRK_STARTING &&
			 now_ms - last >= pc->idle_timeout_ms)
			why = "idle timeout";
		if (why) {
			live[k] = *s;
			(*reasons)[k++] = why;
		}
	}
	brk_pools_free(pools, np);
	*out = live;
	*n = k;
	return 0;
}
