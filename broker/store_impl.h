/*
 * store_impl.h - what the two back ends of store.h share (store.c), and
 * their entry points, which store.c calls by the URI's scheme.
 *
 *   sqlite:/path/file.db   store_sqlite.c (sq_*): one file, one connection
 *   postgresql://...       store_pg.c (pg_*): a shared database, several
 *                          brokers; libpq's own connection URI
 *
 * Both keep one schema, numbered alike (BRK_SCHEMA_VERSION): a version is
 * the same tables and indexes in each, in each one's SQL.  Both set the
 * failing call's words with brk_store_fail (this thread's, for
 * brk_store_error).
 */
#ifndef BROKER_STORE_IMPL_H
#define BROKER_STORE_IMPL_H

#include "store.h"

#define BRK_SCHEMA_VERSION 7
#define BRK_HOST_ALIVE_MS  60000 /* a sessiond host not heard from longer takes no start */

struct brk_store {
	struct sq_store *sq; /* exactly one of the two */
	struct pg_store *pg;
};

/* The schema: version n's SQL at [n - 1], taken by both back ends alike;
 * ID is how each says "an integer key the database numbers".  A version,
 * once released, never changes: a new one is added at the end. */
#define BRK_SCHEMA(ID)                                                                                        \
	{                                                                                                     \
		/* version 1 */                                                                               \
		"CREATE TABLE pools (name TEXT PRIMARY KEY, conf TEXT NOT NULL,"                              \
		" drained INTEGER NOT NULL DEFAULT 0, from_config INTEGER NOT NULL DEFAULT 0,"                \
		" rr_cursor BIGINT NOT NULL DEFAULT -1);"                                                     \
		"CREATE TABLE hosts (name TEXT PRIMARY KEY, address TEXT NOT NULL DEFAULT '',"                \
		" sessiond INTEGER NOT NULL DEFAULT 0, drained INTEGER NOT NULL DEFAULT 0,"                   \
		" last_seen_ms BIGINT NOT NULL DEFAULT 0, load DOUBLE PRECISION NOT NULL DEFAULT "            \
		"0,"                                                                                          \
		" mem_free_kb BIGINT NOT NULL DEFAULT 0);"                                                    \
		"CREATE TABLE sessions (id " ID ", pool TEXT NOT NULL,"                                       \
		" user_name TEXT NOT NULL, host TEXT NOT NULL, backend TEXT NOT NULL DEFAULT '',"             \
		" secret TEXT NOT NULL DEFAULT '', client_addr TEXT NOT NULL DEFAULT '',"                     \
		" state INTEGER NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL,"            \
		" connected_ms BIGINT NOT NULL DEFAULT 0, disconnected_ms BIGINT NOT NULL "                   \
		"DEFAULT 0,"                                                                                  \
		" last_input_ms BIGINT NOT NULL DEFAULT 0, ended_ms BIGINT NOT NULL DEFAULT 0,"               \
		" end_reason TEXT NOT NULL DEFAULT '', bytes_up BIGINT NOT NULL DEFAULT 0,"                   \
		" bytes_down BIGINT NOT NULL DEFAULT 0);"                                                     \
		"CREATE INDEX sessions_pool_user ON sessions (pool, user_name, state);"                       \
		"CREATE INDEX sessions_host_state ON sessions (host, state);"                                 \
		"CREATE INDEX sessions_state ON sessions (state);"                                            \
		"CREATE TABLE tickets (hash TEXT PRIMARY KEY, session_id BIGINT NOT NULL,"                    \
		" user_name TEXT NOT NULL, client_addr TEXT NOT NULL, expires_ms BIGINT NOT "                 \
		"NULL);"                                                                                      \
		"CREATE TABLE tokens (hash TEXT PRIMARY KEY, user_name TEXT NOT NULL,"                        \
		" admin INTEGER NOT NULL, expires_ms BIGINT NOT NULL);", /* version 2: the user's             \
									  * password sealed under             \
									  * the token or ticket               \
									  * itself, for single                \
									  * sign-on                           \
									  * (broker/seal.c) */                \
			("ALTER TABLE tokens ADD COLUMN sealed TEXT NOT NULL DEFAULT '';"                     \
			 "ALTER TABLE tickets ADD COLUMN sealed TEXT NOT NULL DEFAULT "                       \
			 "'';"), /* version 3: the gateway a session's client last                            \
				  * connected through, so that a gateway that restarts can                    \
				  * say which relays it lost */                                               \
			"ALTER TABLE sessions ADD COLUMN gateway TEXT NOT NULL DEFAULT '';", /* version       \
											      * 4:            \
											      * one           \
											      * live          \
											      * session       \
											      * per           \
											      * user          \
											      * and           \
											      * pool,         \
											      * whichever     \
											      * broker        \
											      * inserts       \
											      * it            \
											      * (store_pg.c's \
											      * brokers       \
											      * race;         \
											      * here          \
											      * it            \
											      * is            \
											      * the           \
											      * rule          \
											      * made          \
											      * plain)        \
											      */              \
			"CREATE UNIQUE INDEX sessions_live_user ON sessions (pool, user_name) "               \
			"WHERE state < 4;", /* version 5: failed logins counted in the database,              \
					     * so that brokers sharing it give no more guesses                \
					     * together than one alone */                                     \
			("CREATE TABLE throttle (key TEXT PRIMARY KEY, failures INTEGER NOT NULL,"            \
			 " last_ms BIGINT NOT NULL);" /* and the brokers sharing the database,                \
						       * alive when seen lately, and which of them            \
						       * made each session: a start whose broker              \
						       * died is another broker's to settle */                \
			 "CREATE TABLE brokers (id TEXT PRIMARY KEY, seen_ms BIGINT NOT NULL);"               \
			 "ALTER TABLE sessions ADD COLUMN starter TEXT NOT NULL DEFAULT '';"),                \
		/* version 6: what gateways must do to a session's connection at once     \
		 * (disconnect, logoff, timeout, a message), read by their long-poll      \
		 * (broker/control.c) from whichever broker they ask */                   \
		"CREATE TABLE control (seq " ID ", session_id BIGINT NOT NULL,"                               \
		" action TEXT NOT NULL, text TEXT NOT NULL DEFAULT '', at_ms BIGINT NOT NULL);",              \
		/* version 7: a qemu pool's "vnc" was QEMU's console until pools had   \
		 * guest protocols; it is "console" now ("vnc" is a VNC server in the  \
		 * guest) */                                                           \
		"UPDATE pools SET conf = replace(conf, 'protocol = vnc', 'protocol = console')"               \
		" WHERE conf LIKE '%driver = qemu%';",                                                        \
	}

/* The failing call's words and errno, this thread's: rc is returned. */
extern _Thread_local char brk_store_err[512];
extern _Thread_local int brk_store_rc;
int brk_store_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A pool's keys as the configuration file's "key = value" lines, and back
 * (malloc'd; NULL when out of memory).  -EIO when a stored key no longer
 * parses (its words in brk_store_err). */
char *brk_pool_text(const struct pt_pool_conf *pc);
int brk_pool_parse(const char *name, const char *text, struct pt_pool_conf *pc);
/* Whether the pool text's hosts = list names host. */
int brk_pool_text_has_host(const char *text, const char *host);

/* The throttle's counter of one key (both back ends): $1 key, $2 now,
 * $3 limit, $4 window; a row back when the attempt may go on.  SQLite
 * and PostgreSQL both take this upsert (SQLite names parameters ?N). */
#define BRK_THROTTLE_SQL(A, B, C, D)                                                           \
	"INSERT INTO throttle (key, failures, last_ms) VALUES (" A ", 1, " B ")"               \
	" ON CONFLICT (key) DO UPDATE SET failures = CASE WHEN throttle.last_ms <= " B " - " D \
	" THEN 1 ELSE throttle.failures + 1 END, last_ms = " B " WHERE throttle.failures < " C \
	" OR throttle.last_ms <= " B " - " D " RETURNING failures"
#define BRK_THROTTLE_FORGIVE_SQL(A) \
	"UPDATE throttle SET failures = failures - 1 WHERE key = " A " AND failures > 0"
#define BRK_QUIET_PURGE_MS (24LL * 3600 * 1000)
/* Control rows outlive any long-poll that could still want them; the
 * newest is always kept so that the numbering never goes back (SQLite
 * numbers max + 1). */
#define BRK_CONTROL_KEEP_MS (10LL * 60 * 1000)
#define BRK_CONTROL_MAX	    256 /* rows one long-poll answer carries at most */
#define BRK_BROKER_BEAT_SQL(A, B)                                                            \
	"INSERT INTO brokers (id, seen_ms) VALUES (" A ", " B ") ON CONFLICT (id) DO UPDATE" \
	" SET seen_ms = excluded.seen_ms"

/* A host row as the assignment reads it (name first: brk_hostinfo_find). */
struct brk_hostinfo {
	char name[128];
	int drained, sessiond;
	int64_t seen, live; /* last_seen_ms, live sessions on it */
};

/* rows sorted by name (strcmp): the one named, or NULL. */
const struct brk_hostinfo *brk_hostinfo_find(const struct brk_hostinfo *rows, size_t n,
					     const char *name);
/* The pool's hosts that may take a new session at now_ms, in the pool's
 * order, into c (room for pc->hosts.n): not drained and, on sessiond
 * hosts, registered and heard from in the last BRK_HOST_ALIVE_MS; a static
 * backend without a row counts as one with no sessions.  How many. */
size_t brk_assign_candidates(const struct pt_pool_conf *pc, const struct brk_hostinfo *rows,
			     size_t nrows, int64_t now_ms, struct brk_candidate *c);

#define BRK_STORE_OPS(P, S)                                                                        \
	struct S *P##open(const char *uri, char *err, size_t errlen);                              \
	void P##close(struct S *st);                                                               \
	int P##snapshot(struct S *st, void **buf, size_t *len);                                    \
	int P##restore(struct S *st, const void *buf, size_t len);                                 \
	int P##is(struct S *st, const void *buf, size_t len);                                      \
	int P##pool_put(struct S *st, const struct brk_pool *p, int create_only);                  \
	int P##pool_get(struct S *st, const char *name, struct brk_pool *out);                     \
	int P##pool_list(struct S *st, struct brk_pool **out, size_t *n);                          \
	int P##pool_delete(struct S *st, const char *name);                                        \
	int P##pool_set_drained(struct S *st, const char *name, int drained);                      \
	int P##host_register(struct S *st, const char *name, const char *address, int64_t now_ms); \
	int P##host_heartbeat(struct S *st, const char *name, double load, int64_t mem_free_kb,    \
			      int64_t now_ms);                                                     \
	int P##host_list(struct S *st, const char *name, struct brk_host **out, size_t *n);        \
	int P##host_set_drained(struct S *st, const char *name, int drained);                      \
	int P##assign(struct S *st, const struct brk_assign_req *req, struct brk_session *out,     \
		      int *reconnect);                                                             \
	int P##session_get(struct S *st, int64_t id, struct brk_session *out);                     \
	int P##session_list(struct S *st, const struct brk_session_filter *f,                      \
			    struct brk_session **out, size_t *n);                                  \
	int P##session_ready(struct S *st, int64_t id, const char *backend, const char *secret,    \
			     int64_t now_ms);                                                      \
	int P##session_event(struct S *st, int64_t id, const char *event, int64_t at_ms,           \
			     int64_t bytes_up, int64_t bytes_down);                                \
	int P##session_gateway(struct S *st, int64_t id, const char *gateway);                     \
	int P##gateway_started(struct S *st, const char *gateway, int64_t now_ms, int *n);         \
	int P##session_end(struct S *st, int64_t id, const char *reason, int64_t now_ms,           \
			   int *ended);                                                            \
	int P##ticket_put(struct S *st, const char *hash, const struct brk_ticket *t);             \
	int P##ticket_take(struct S *st, const char *hash, int64_t now_ms,                         \
			   struct brk_ticket *out);                                                \
	int P##token_put(struct S *st, const char *hash, const struct brk_token *t);               \
	int P##token_get(struct S *st, const char *hash, int64_t now_ms, struct brk_token *out);   \
	int P##token_delete(struct S *st, const char *hash);                                       \
	int P##throttle_take(struct S *st, const char *const *keys, size_t n, int limit,           \
			     int64_t window_ms, int64_t now_ms);                                   \
	int P##throttle_forgive(struct S *st, const char *const *keys, size_t n);                  \
	int P##broker_beat(struct S *st, const char *id, int64_t now_ms);                          \
	int P##broker_seen(struct S *st, const char *id, int64_t *seen_ms);                        \
	int P##control_add(struct S *st, int64_t session_id, const char *action, const char *text, \
			   int64_t at_ms);                                                         \
	int P##control_since(struct S *st, int64_t after, struct brk_control **out, size_t *n,     \
			     int64_t *last);                                                       \
	int P##purge(struct S *st, int64_t now_ms)

BRK_STORE_OPS(sq_, sq_store);
BRK_STORE_OPS(pg_, pg_store);

#endif
