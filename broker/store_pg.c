/*
 * store_pg.c - the PostgreSQL back-end of store.h: several brokers on one
 * database.
 *
 * Whatever two brokers could race for is settled by the database, never by
 * a broker's memory:
 *  - a launch is one transaction that first locks its pool's row (SELECT
 *    ... FOR UPDATE): the capacity counted after the lock is what every
 *    broker committed, so 200 launches into 100 seats give 100;
 *  - one live session per user and pool is a partial unique index as well
 *    (schema version 4): an insert that loses anyway is answered as a
 *    reconnect to the winner;
 *  - a ticket is taken by one DELETE ... RETURNING: once, on any broker.
 *
 * A small pool of connections (PG_CONNS), each used by one call at a time;
 * the broker's calls come from libuv's thread pool.  A connection that
 * breaks is closed and made again by the next call that needs it, no more
 * often than a backoff allows (200 ms doubling to 5 s): meanwhile calls
 * fail at once with -EAGAIN, "the database is unreachable", which the API
 * answers 503.  A transaction that fails is rolled back whole, so nothing
 * in the broker's memory claims what the database has not committed.
 *
 * The URI is libpq's own (postgresql://user@host/db?...), given to libpq
 * untouched; a password in it is refused (it belongs in ~/.pgpass or the
 * passfile parameter, not in the configuration file, which is logged and
 * shown).  Statements are prepared once per connection, keyed by their
 * SQL's address, as store_sqlite.c's are.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_impl.h"

#define PG_CONNS       8
#define PG_STMTS       64 /* more than the statements of this file */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 5000
#define MIGRATE_LOCK   "7070726f74696b6f" /* an advisory lock key: any constant */

struct pg_conn {
	PGconn *c;
	const char *stmts[PG_STMTS]; /* prepared as "s<i>" on this connection */
	int nstmts;
	int busy;
};

struct pg_store {
	char *uri;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pg_conn conns[PG_CONNS];
	int64_t retry_at_ms; /* no new connection before */
	int backoff_ms;
	char down_why[256]; /* why the last connection failed */
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq's message, one line. */
static const char *pq_msg(PGconn *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s", c ? PQerrorMessage(c) : "no connection");
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

/*
 * The errno for a failed statement, its words in brk_store_err.  A lost
 * connection, a server shutting down or starting, too many connections,
 * a standby (read-only after a failover), a deadlock or serialization
 * failure: -EAGAIN (nothing was committed; the same call works later).
 */
static int pg_fail(struct pg_conn *k, PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *s = state ? state : ""; /* none: libpq's own failure */
	char msg[256];

	pq_msg(k->c, msg, sizeof(msg));
	if (!k->c || PQstatus(k->c) != CONNECTION_OK || !strncmp(s, "08", 2) ||
	    !strncmp(s, "57P", 3) || !strncmp(s, "53", 2))
		return brk_store_fail(-EAGAIN, "the database is unreachable (%s: %s)", what, msg);
	if (!state) /* libpq's own failure (memory) */
		return brk_store_fail(-EIO, "%s: %s", what, msg);
	if (!strcmp(state, "25006"))
		return brk_store_fail(-EAGAIN, "the database is read-only (%s: %s)", what, msg);
	if (!strcmp(state, "40001") || !strcmp(state, "40P01"))
		return brk_store_fail(-EAGAIN, "the database is busy (%s: %s)", what, msg);
	if (!strcmp(state, "23505"))
		return brk_store_fail(-EEXIST, "%s: %s", what, msg);
	return brk_store_fail(-EIO, "%s: %s [%s]", what, msg, state);
}

/* --- connections ------------------------------------------------------------ */

static void ignore_notice(void *arg, const char *message)
{
}

static int pg_connect(struct pg_store *st, struct pg_conn *k)
{
	/* The URI's own connect_timeout wins: it comes later. */
	const char *keys[] = { "connect_timeout", "application_name", "dbname", NULL };
	const char *vals[] = { "5", "portico-broker", st->uri, NULL };
	char msg[256];

	k->c = PQconnectdbParams(keys, vals, 1);
	k->nstmts = 0;
	if (k->c && PQstatus(k->c) == CONNECTION_OK) {
		/* The server's notices ("already exists, skipping") are not
		 * the broker's to print. */
		PQsetNoticeProcessor(k->c, ignore_notice, NULL);
		return 0;
	}
	pq_msg(k->c, msg, sizeof(msg));
	PQfinish(k->c);
	k->c = NULL;
	pthread_mutex_lock(&st->mu);
	snprintf(st->down_why, sizeof(st->down_why), "%s", msg);
	st->backoff_ms = st->backoff_ms ? st->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (st->backoff_ms > BACKOFF_MAX_MS)
		st->backoff_ms = BACKOFF_MAX_MS;
	st->retry_at_ms = mono_ms() + st->backoff_ms;
	pthread_mutex_unlock(&st->mu);
	return brk_store_fail(-EAGAIN, "the database is unreachable (%s)", msg);
}

/* A connection for one call, connected; NULL with the error set. */
static struct pg_conn *take(struct pg_store *st)
{
	struct pg_conn *k = NULL;
	int64_t wait_ms = 0;

	pthread_mutex_lock(&st->mu);
	for (;;) {
		for (int i = 0; i < PG_CONNS && !k; i++)
			if (!st->conns[i].busy && st->conns[i].c)
				k = &st->conns[i];
		for (int i = 0; i < PG_CONNS && !k; i++)
			if (!st->conns[i].busy)
				k = &st->conns[i];
		if (k)
			break;
		pthread_cond_wait(&st->cv, &st->mu);
	}
	k->busy = 1;
	pthread_mutex_unlock(&st->mu);
	/* One the server closed while it was idle (a restart, a failover)
	 * is seen now, not by the statement it would fail. */
	if (k->c && (!PQconsumeInput(k->c) || PQstatus(k->c) != CONNECTION_OK)) {
		PQfinish(k->c);
		k->c = NULL;
	}
	pthread_mutex_lock(&st->mu);
	if (!k->c)
		wait_ms = st->retry_at_ms - mono_ms();
	pthread_mutex_unlock(&st->mu);
	if (!k->c && wait_ms > 0) {
		brk_store_fail(-EAGAIN, "the database is unreachable (%s)", st->down_why);
	} else if (k->c || pg_connect(st, k) == 0) {
		return k;
	}
	pthread_mutex_lock(&st->mu);
	k->busy = 0;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

/* Done with k: a broken connection is closed, the next call makes one. */
static void give(struct pg_store *st, struct pg_conn *k)
{
	if (k->c && PQstatus(k->c) != CONNECTION_OK) {
		PQfinish(k->c);
		k->c = NULL;
	}
	pthread_mutex_lock(&st->mu);
	if (k->c)
		st->backoff_ms = 0;
	k->busy = 0;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

/* --- statements --------------------------------------------------------------- */

/* Run sql (a string literal of this file: its address names its prepared
 * statement) with the arguments: 'i' int64, 'd' double, 's' text (NULL is
 * SQL's NULL).  The result, or NULL with the error set. */
static PGresult *vq(struct pg_conn *k, const char *sql, const char *types, va_list ap)
{
	const char *vals[16];
	char nums[16][32], name[16];
	int n, i;
	PGresult *r;

	for (n = 0; n < 16 && types[n]; n++) {
		if (types[n] == 'i')
			snprintf(nums[n], sizeof(nums[n]), "%lld", (long long)va_arg(ap, int64_t));
		else if (types[n] == 'd')
			snprintf(nums[n], sizeof(nums[n]), "%.17g", va_arg(ap, double));
		vals[n] = types[n] == 's' ? va_arg(ap, const char *) : nums[n];
	}
	for (i = 0; i < k->nstmts && k->stmts[i] != sql; i++)
		;
	snprintf(name, sizeof(name), "s%d", i);
	if (i == k->nstmts && i < PG_STMTS) {
		r = PQprepare(k->c, name, sql, n, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			pg_fail(k, r, "prepare");
			PQclear(r);
			return NULL;
		}
		PQclear(r);
		k->stmts[k->nstmts++] = sql;
	}
	if (i < PG_STMTS)
		r = PQexecPrepared(k->c, name, n, vals, NULL, NULL, 0);
	else
		r = PQexecParams(k->c, sql, n, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
		return r;
	pg_fail(k, r, "query");
	PQclear(r);
	return NULL;
}

static PGresult *q(struct pg_conn *k, const char *sql, const char *types, ...)
{
	va_list ap;
	PGresult *r;

	va_start(ap, types);
	r = vq(k, sql, types, ap);
	va_end(ap);
	return r;
}

/* One statement on a connection of its own, given back at once: its
 * result, or NULL with the error set. */
static PGresult *vq1(struct pg_store *st, const char *sql, const char *types, va_list ap)
{
	struct pg_conn *k = take(st);
	PGresult *r;

	if (!k)
		return NULL;
	r = vq(k, sql, types, ap);
	give(st, k);
	return r;
}

static PGresult *q1(struct pg_store *st, const char *sql, const char *types, ...)
{
	va_list ap;
	PGresult *r;

	va_start(ap, types);
	r = vq1(st, sql, types, ap);
	va_end(ap);
	return r;
}

/* A statement without parameters or rows (BEGIN, COMMIT, DDL). */
static int ex(struct pg_conn *k, const char *sql)
{
	PGresult *r = PQexec(k->c, sql);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK
			 ? 0
			 : pg_fail(k, r, sql);

	PQclear(r);
	return rc;
}

/* After a failure inside a transaction: end it, keeping the failure's
 * words.  On a broken connection there is nothing to end. */
static void rollback(struct pg_conn *k)
{
	if (k->c && PQstatus(k->c) == CONNECTION_OK && PQtransactionStatus(k->c) != PQTRANS_IDLE)
		PQclear(PQexec(k->c, "ROLLBACK"));
}

static int64_t gi(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static void gt(const PGresult *r, int row, int col, char *buf, size_t len)
{
	snprintf(buf, len, "%s", PQgetvalue(r, row, col));
}

/* Rows changed by r's statement. */
static int64_t changed(const PGresult *r)
{
	return strtoll(PQcmdTuples((PGresult *)r), NULL, 10);
}

/* The rows of r (which it takes; NULL: the failed statement's error), each
 * made by fn into an element of a new array (*out, *n; free()). */
static int rows_into(PGresult *r, size_t size, void (*fn)(const PGresult *r, int i, void *elem),
		     void **out, size_t *n)
{
	int rows = r ? PQntuples(r) : 0;
	char *a;

	*out = NULL;
	*n = 0;
	if (!r)
		return brk_store_rc;
	if (!(a = calloc(rows ? (size_t)rows : 1, size))) {
		PQclear(r);
		return -ENOMEM;
	}
	for (int i = 0; i < rows; i++)
		fn(r, i, a + (size_t)i * size);
	PQclear(r);
	*out = a;
	*n = (size_t)rows;
	return 0;
}

/* One statement on a connection of its own: 0, the error, or (must_change)
 * -ENOENT when it changed no row.  *n: rows changed, when n. */
static int write1(struct pg_store *st, int must_change, int *n, const char *sql, const char *types,
		  ...)
{
	va_list ap;
	PGresult *r;
	int rc = 0;

	va_start(ap, types);
	r = vq1(st, sql, types, ap);
	va_end(ap);
	if (!r)
		rc = brk_store_rc;
	else if (must_change && changed(r) == 0)
		rc = -ENOENT;
	if (r && n)
		*n = (int)changed(r);
	PQclear(r);
	return rc;
}

/* --- schema and open ------------------------------------------------------------ */

/* Version n's SQL is schema[n - 1] (store_impl.h). */
static const char *const schema[] = BRK_SCHEMA("BIGSERIAL PRIMARY KEY");
_Static_assert(sizeof(schema) / sizeof(schema[0]) == BRK_SCHEMA_VERSION, "one entry per version");

/* Create or migrate the schema in one transaction, under an advisory lock
 * (brokers starting together migrate once); refuse a newer one. */
static int migrate(struct pg_conn *k, char *err, size_t errlen)
{
	PGresult *r;
	int version = 0, rc;

	if ((rc = ex(k, "BEGIN")) ||
	    (rc = ex(k, "SELECT pg_advisory_xact_lock(x'" MIGRATE_LOCK "'::bigint)")) ||
	    (rc = ex(k, "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")))
		goto fail;
	if (!(r = q(k, "SELECT value FROM meta WHERE key = 'schema_version'", ""))) {
		rc = brk_store_rc;
		goto fail;
	}
	if (PQntuples(r) == 1)
		version = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (version > BRK_SCHEMA_VERSION) {
		rollback(k);
		snprintf(err, errlen,
			 "schema version %d is newer than this broker's (%d): run the newer "
			 "broker, or restore a backup",
			 version, BRK_SCHEMA_VERSION);
		return -EPROTO;
	}
	for (int v = version; v < BRK_SCHEMA_VERSION; v++)
		if ((rc = ex(k, schema[v])))
			goto fail;
	if (!(r = q(k,
		    "INSERT INTO meta (key, value) VALUES ('schema_version', $1)"
		    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
		    "i", (int64_t)BRK_SCHEMA_VERSION))) {
		rc = brk_store_rc;
		goto fail;
	}
	PQclear(r);
	if ((rc = ex(k, "COMMIT")) == 0)
		return 0;
fail:
	rollback(k);
	snprintf(err, errlen, "cannot migrate the schema: %s", brk_store_err);
	return rc;
}

struct pg_store *pg_open(const char *uri, char *err, size_t errlen)
{
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(uri, &perr);
	struct pg_store *st;
	struct pg_conn *k;
	int password = 0;

	if (!opts) {
		snprintf(err, errlen, "[broker] store: not a PostgreSQL URI: %s",
			 perr ? perr : "out of memory");
		PQfreemem(perr);
		return NULL;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (!strcmp(o->keyword, "password") && o->val && o->val[0])
			password = 1;
	PQconninfoFree(opts);
	if (password) {
		snprintf(err, errlen,
			 "[broker] store: a password in the URI: put it in ~/.pgpass or a"
			 " passfile (postgresql://...?passfile=/path), not in the configuration");
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (!st || !(st->uri = strdup(uri))) {
		free(st);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	if (!(k = take(st))) {
		snprintf(err, errlen, "cannot connect to PostgreSQL: %s", st->down_why);
		pg_close(st);
		return NULL;
	}
	if (migrate(k, err, errlen)) {
		give(st, k);
		pg_close(st);
		return NULL;
	}
	give(st, k);
	return st;
}

void pg_close(struct pg_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < PG_CONNS; i++)
		PQfinish(st->conns[i].c);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	free(st->uri);
	free(st);
}

/* A fuzzer's snapshots are SQLite's (sqlite::memory:). */
int pg_snapshot(struct pg_store *st, void **buf, size_t *len)
{
	return -ENOTSUP;
}

int pg_restore(struct pg_store *st, const void *buf, size_t len)
{
	return -ENOTSUP;
}

int pg_is(struct pg_store *st, const void *buf, size_t len)
{
	return 0;
}

/* --- pools ------------------------------------------------------------------------ */

static int pool_row(const PGresult *r, int row, struct brk_pool *p)
{
	memset(p, 0, sizeof(*p));
	p->drained = (int)gi(r, row, 2);
	p->from_config = (int)gi(r, row, 3);
	return brk_pool_parse(PQgetvalue(r, row, 0), PQgetvalue(r, row, 1), &p->c);
}

int pg_pool_put(struct pg_store *st, const struct brk_pool *p, int create_only)
{
	char *text = brk_pool_text(&p->c);
	int rc, n = 0;

	if (!text)
		return -ENOMEM;
	if (create_only) {
		rc = write1(st, 0, &n,
			    "INSERT INTO pools (name, conf, drained, from_config)"
			    " VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
			    "ssii", p->c.name, text, (int64_t)p->drained, (int64_t)p->from_config);
		if (rc == 0 && n == 0)
			rc = -EEXIST;
	} else {
		rc = write1(st, 0, NULL,
			    "INSERT INTO pools (name, conf, drained, from_config)"
			    " VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET"
			    " conf = excluded.conf, drained = excluded.drained,"
			    " from_config = excluded.from_config",
			    "ssii", p->c.name, text, (int64_t)p->drained, (int64_t)p->from_config);
	}
	free(text);
	return rc;
}

/* lock: FOR UPDATE (inside a transaction). */
static int pool_get_k(struct pg_conn *k, const char *name, struct brk_pool *out, int64_t *cursor,
		      int lock)
{
	PGresult *r = lock ? q(k,
			       "SELECT name, conf, drained, from_config, rr_cursor FROM pools"
			       " WHERE name = $1 FOR UPDATE",
			       "s", name)
			   : q(k,
			       "SELECT name, conf, drained, from_config, rr_cursor FROM pools"
			       " WHERE name = $1",
			       "s", name);
	int rc;

	if (!r)
		return brk_store_rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return -ENOENT;
	}
	rc = pool_row(r, 0, out);
	if (cursor)
		*cursor = gi(r, 0, 4);
	PQclear(r);
	return rc;
}

int pg_pool_get(struct pg_store *st, const char *name, struct brk_pool *out)
{
	struct pg_conn *k = take(st);
	int rc;

	if (!k)
		return brk_store_rc;
	rc = pool_get_k(k, name, out, NULL, 0);
	give(st, k);
	return rc;
}

static void pool_elem(const PGresult *r, int i, void *elem)
{
	pool_row(r, i, elem); /* a stored key that no longer parses keeps its default,
			       * as in store_sqlite.c's list */
}

int pg_pool_list(struct pg_store *st, struct brk_pool **out, size_t *n)
{
	PGresult *r;

	*out = NULL;
	*n = 0;
	r = q1(st, "SELECT name, conf, drained, from_config FROM pools ORDER BY name COLLATE \"C\"",
	       "");
	return rows_into(r, sizeof(**out), pool_elem, (void **)out, n);
}

int pg_pool_delete(struct pg_store *st, const char *name)
{
	struct pg_conn *k = take(st);
	PGresult *r;
	int rc;

	if (!k)
		return brk_store_rc;
	/* The pool's row locked first: no launch can add a session to it
	 * between the count and the delete. */
	if ((rc = ex(k, "BEGIN")))
		goto out;
	if (!(r = q(k, "SELECT 1 FROM pools WHERE name = $1 FOR UPDATE", "s", name))) {
		rc = brk_store_rc;
		goto out;
	}
	rc = PQntuples(r) ? 0 : -ENOENT;
	PQclear(r);
	if (rc == 0 &&
	    !(r = q(k, "SELECT COUNT(*) FROM sessions WHERE pool = $1 AND state < 4", "s", name)))
		rc = brk_store_rc;
	else if (rc == 0) {
		rc = gi(r, 0, 0) > 0 ? -EBUSY : 0;
		PQclear(r);
	}
	if (rc == 0 && !(r = q(k, "DELETE FROM pools WHERE name = $1", "s", name)))
		rc = brk_store_rc;
	else if (rc == 0)
		PQclear(r);
	if (rc == 0)
		rc = ex(k, "COMMIT");
out:
	rollback(k);
	give(st, k);
	return rc;
}

int pg_pool_set_drained(struct pg_store *st, const char *name, int drained)
{
	return write1(st, 1, NULL, "UPDATE pools SET drained = $1 WHERE name = $2", "is",
		      (int64_t)drained, name);
}

/* --- hosts ----------------------------------------------------------------------- */

int pg_host_register(struct pg_store *st, const char *name, const char *address, int64_t now_ms)
{
	return write1(
		st, 0, NULL,
		"INSERT INTO hosts (name, address, sessiond, last_seen_ms) VALUES ($1, $2, 1, $3)"
		" ON CONFLICT (name) DO UPDATE SET address = excluded.address, sessiond = 1,"
		" last_seen_ms = excluded.last_seen_ms",
		"ssi", name, address, now_ms);
}

int pg_host_heartbeat(struct pg_store *st, const char *name, double load, int64_t mem_free_kb,
		      int64_t now_ms)
{
	return write1(st, 1, NULL,
		      "UPDATE hosts SET load = $1, mem_free_kb = $2, last_seen_ms = $3"
		      " WHERE name = $4 AND sessiond = 1",
		      "diis", load, mem_free_kb, now_ms, name);
}

static void host_elem(const PGresult *r, int i, void *elem)
{
	struct brk_host *h = elem;

	gt(r, i, 0, h->name, sizeof(h->name));
	gt(r, i, 1, h->address, sizeof(h->address));
	h->sessiond = (int)gi(r, i, 2);
	h->drained = (int)gi(r, i, 3);
	h->last_seen_ms = gi(r, i, 4);
	h->load = strtod(PQgetvalue(r, i, 5), NULL);
	h->mem_free_kb = gi(r, i, 6);
	h->sessions = gi(r, i, 7);
}

int pg_host_list(struct pg_store *st, const char *name, struct brk_host **out, size_t *n)
{
	PGresult *r;

	*out = NULL;
	*n = 0;
	r = q1(st,
	       "SELECT h.name, h.address, h.sessiond, h.drained, h.last_seen_ms,"
	       " h.load, h.mem_free_kb, (SELECT COUNT(*) FROM sessions s"
	       " WHERE s.host = h.name AND s.state < 4) FROM hosts h"
	       " WHERE $1::text IS NULL OR h.name = $1::text ORDER BY h.name COLLATE \"C\"",
	       "s", name);
	return rows_into(r, sizeof(**out), host_elem, (void **)out, n);
}

int pg_host_set_drained(struct pg_store *st, const char *name, int drained)
{
	struct pg_conn *k;
	PGresult *r;
	int rc, n = 0, known = 0;

	rc = write1(st, 0, &n, "UPDATE hosts SET drained = $1 WHERE name = $2", "is",
		    (int64_t)drained, name);
	if (rc || n)
		return rc;
	/* A static backend has a row only once a session used it. */
	if (!(k = take(st)))
		return brk_store_rc;
	r = q(k, "SELECT conf FROM pools", "");
	give(st, k);
	if (!r)
		return brk_store_rc;
	for (int i = 0; i < PQntuples(r) && !known; i++)
		known = brk_pool_text_has_host(PQgetvalue(r, i, 0), name);
	PQclear(r);
	if (!known)
		return -ENOENT;
	return write1(st, 0, NULL,
		      "INSERT INTO hosts (name, address, sessiond, drained) VALUES ($1, $1, 0, $2)"
		      " ON CONFLICT (name) DO UPDATE SET drained = excluded.drained",
		      "si", name, (int64_t)drained);
}

/* --- sessions --------------------------------------------------------------------- */

#define SESSION_COLS                                                                       \
	"id, pool, user_name, host, backend, secret, client_addr, state, created_ms,"      \
	" updated_ms, connected_ms, disconnected_ms, last_input_ms, ended_ms, end_reason," \
	" bytes_up, bytes_down, starter"

static void session_row(const PGresult *r, int i, struct brk_session *o)
{
	memset(o, 0, sizeof(*o));
	o->id = gi(r, i, 0);
	gt(r, i, 1, o->pool, sizeof(o->pool));
	gt(r, i, 2, o->user, sizeof(o->user));
	gt(r, i, 3, o->host, sizeof(o->host));
	gt(r, i, 4, o->backend, sizeof(o->backend));
	gt(r, i, 5, o->secret, sizeof(o->secret));
	gt(r, i, 6, o->client_addr, sizeof(o->client_addr));
	o->state = (int)gi(r, i, 7);
	o->created_ms = gi(r, i, 8);
	o->updated_ms = gi(r, i, 9);
	o->connected_ms = gi(r, i, 10);
	o->disconnected_ms = gi(r, i, 11);
	o->last_input_ms = gi(r, i, 12);
	o->ended_ms = gi(r, i, 13);
	gt(r, i, 14, o->end_reason, sizeof(o->end_reason));
	o->bytes_up = gi(r, i, 15);
	o->bytes_down = gi(r, i, 16);
	gt(r, i, 17, o->starter, sizeof(o->starter));
}

/* One session (0), none (-ENOENT), or the error. */
static int session_one(PGresult *r, struct brk_session *out)
{
	int rc;

	if (!r)
		return brk_store_rc;
	rc = PQntuples(r) ? 0 : -ENOENT;
	if (rc == 0)
		session_row(r, 0, out);
	PQclear(r);
	return rc;
}

int pg_session_get(struct pg_store *st, int64_t id, struct brk_session *out)
{
	int rc;

	rc = session_one(q1(st, "SELECT " SESSION_COLS " FROM sessions WHERE id = $1", "i", id),
			 out);
	return rc;
}

static int live_session(struct pg_conn *k, const struct brk_assign_req *req,
			struct brk_session *out)
{
	return session_one(q(k,
			     "SELECT " SESSION_COLS " FROM sessions WHERE pool = $1 AND"
			     " user_name = $2 AND state < 4 ORDER BY id DESC LIMIT 1",
			     "ss", req->pool, req->user),
			   out);
}

/* The host rows with their live sessions, sorted by name as strcmp
 * sorts (COLLATE "C"). */
static void hostinfo_elem(const PGresult *r, int i, void *elem)
{
	struct brk_hostinfo *h = elem;

	gt(r, i, 0, h->name, sizeof(h->name));
	h->drained = (int)gi(r, i, 1);
	h->sessiond = (int)gi(r, i, 2);
	h->seen = gi(r, i, 3);
	h->live = gi(r, i, 4);
}

static int host_infos(struct pg_conn *k, struct brk_hostinfo **out, size_t *n)
{
	return rows_into(q(k,
			   "SELECT h.name, h.drained, h.sessiond, h.last_seen_ms, COALESCE(c.n, 0)"
			   " FROM hosts h LEFT JOIN (SELECT host, COUNT(*) AS n FROM sessions"
			   " WHERE state < 4 GROUP BY host) c ON c.host = h.name"
			   " ORDER BY h.name COLLATE \"C\"",
			   ""),
			 sizeof(**out), hostinfo_elem, (void **)out, n);
}

/* Inside the transaction, the pool's row locked. */
static int assign_locked(struct pg_conn *k, const struct brk_assign_req *req,
			 struct brk_session *out, int *reconnect)
{
	struct brk_pool p = { 0 };
	struct brk_candidate *c = NULL;
	struct brk_hostinfo *hi = NULL;
	char previous[128] = "";
	int64_t cursor = -1;
	size_t n = 0, nhi = 0;
	PGresult *r;
	int rc, pick, sessiond;

	if ((rc = pool_get_k(k, req->pool, &p, &cursor, 1)))
		return rc;
	*reconnect = 0;
	if ((rc = live_session(k, req, out)) != -ENOENT) {
		*reconnect = rc == 0;
		goto out;
	}
	/* As store_sqlite.c: a user with no live session here has 0. */
	if (p.c.max_sessions_per_user < 1) {
		rc = -EDQUOT;
		goto out;
	}
	if (p.drained || p.c.hosts.n == 0) {
		rc = -ENOSPC;
		goto out;
	}
	sessiond = p.c.driver != PT_DRIVER_STATIC;
	if (!(c = calloc(p.c.hosts.n, sizeof(*c)))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = host_infos(k, &hi, &nhi)))
		goto out;
	for (size_t i = 0; !sessiond && i < p.c.hosts.n; i++) {
		if (brk_hostinfo_find(hi, nhi, p.c.hosts.v[i]))
			continue;
		if (!(r = q(k,
			    "INSERT INTO hosts (name, address, sessiond) VALUES ($1, $1, 0)"
			    " ON CONFLICT (name) DO NOTHING",
			    "s", p.c.hosts.v[i]))) {
			rc = brk_store_rc;
			goto out;
		}
		PQclear(r);
	}
	n = brk_assign_candidates(&p.c, hi, nhi, req->now_ms, c);
	if (p.c.policy == PT_POLICY_PERSISTENT) {
		if (!(r = q(k,
			    "SELECT host FROM sessions WHERE pool = $1 AND user_name = $2"
			    " ORDER BY id DESC LIMIT 1",
			    "ss", req->pool, req->user))) {
			rc = brk_store_rc;
			goto out;
		}
		if (PQntuples(r))
			gt(r, 0, 0, previous, sizeof(previous));
		PQclear(r);
	}
	pick = brk_assign_pick(p.c.policy, c, n, &cursor, previous[0] ? previous : NULL);
	if (pick < 0) {
		rc = -ENOSPC;
		goto out;
	}
	if (p.c.policy == PT_POLICY_ROUND_ROBIN) {
		if (!(r = q(k, "UPDATE pools SET rr_cursor = $1 WHERE name = $2", "is", cursor,
			    req->pool))) {
			rc = brk_store_rc;
			goto out;
		}
		PQclear(r);
	}
	rc = session_one(q(k,
			   "INSERT INTO sessions (pool, user_name, host, backend, client_addr,"
			   " state, created_ms, updated_ms, starter) VALUES ($1, $2, $3, $4, $5,"
			   " $6, $7, $7, $8) RETURNING " SESSION_COLS,
			   "sssssiis", req->pool, req->user, c[pick].host,
			   sessiond ? "" : c[pick].host, req->client_addr ? req->client_addr : "",
			   (int64_t)(sessiond ? BRK_STARTING : BRK_READY), req->now_ms,
			   req->broker ? req->broker : ""),
			 out);
out:
	free(hi);
	free(c);
	brk_pool_clear(&p);
	return rc;
}

int pg_assign(struct pg_store *st, const struct brk_assign_req *req, struct brk_session *out,
	      int *reconnect)
{
	struct pg_conn *k = take(st);
	int rc;

	if (!k)
		return brk_store_rc;
	if ((rc = ex(k, "BEGIN")) == 0) {
		rc = assign_locked(k, req, out, reconnect);
		if (rc == 0 || rc == -ENOSPC || rc == -EDQUOT || rc == -ENOENT) {
			int crc = ex(k, "COMMIT");
			rc = crc ? crc : rc;
		}
		rollback(k);
	}
	if (rc == -EEXIST) {
		/* Another broker's insert won the user's one live session
		 * (the unique index): theirs is the answer. */
		*reconnect = 1;
		rc = live_session(k, req, out);
		rc = rc == -ENOENT ? brk_store_fail(-EAGAIN, "the database is busy") : rc;
	}
	give(st, k);
	return rc;
}

static void session_elem(const PGresult *r, int i, void *elem)
{
	session_row(r, i, elem);
}

int pg_session_list(struct pg_store *st, const struct brk_session_filter *f,
		    struct brk_session **out, size_t *n)
{
	char limit[24];
	PGresult *r;

	*out = NULL;
	*n = 0;
	snprintf(limit, sizeof(limit), "%d", f->limit);
	/* A NULL parameter matches all; LIMIT NULL is no limit. */
	r = q1(st,
	       "SELECT " SESSION_COLS " FROM sessions WHERE ($1::text IS NULL OR pool = $1::text)"
	       " AND ($2::text IS NULL OR user_name = $2::text) AND ($3::int = -1 OR"
	       " ($3::int = -2 AND state < 4) OR state = $3::int)"
	       " AND ($4::text IS NULL OR host = $4::text) ORDER BY id DESC LIMIT $5::bigint",
	       "ssiss", f->pool, f->user, (int64_t)f->state, f->host, f->limit > 0 ? limit : NULL);
	return rows_into(r, sizeof(**out), session_elem, (void **)out, n);
}

int pg_session_ready(struct pg_store *st, int64_t id, const char *backend, const char *secret,
		     int64_t now_ms)
{
	return write1(st, 1, NULL,
		      "UPDATE sessions SET backend = $1, secret = $2, state = 1, updated_ms = $3"
		      " WHERE id = $4 AND state = 0",
		      "ssii", backend, secret ? secret : "", now_ms, id);
}

int pg_session_event(struct pg_store *st, int64_t id, const char *event, int64_t at_ms,
		     int64_t bytes_up, int64_t bytes_down)
{
	const char *sql;

	if (!strcmp(event, "connect"))
		sql = "UPDATE sessions SET state = 2, connected_ms = $1, updated_ms = $1,"
		      " bytes_up = bytes_up + $2, bytes_down = bytes_down + $3 WHERE id = $4"
		      " AND state < 4";
	else if (!strcmp(event, "disconnect"))
		sql = "UPDATE sessions SET state = 3, disconnected_ms = $1, updated_ms = $1,"
		      " bytes_up = bytes_up + $2, bytes_down = bytes_down + $3 WHERE id = $4"
		      " AND state < 4";
	else if (!strcmp(event, "input"))
		sql = "UPDATE sessions SET last_input_ms = $1, updated_ms = $1,"
		      " bytes_up = bytes_up + $2, bytes_down = bytes_down + $3 WHERE id = $4"
		      " AND state < 4";
	else
		return -EINVAL;
	return write1(st, 1, NULL, sql, "iiii", at_ms, bytes_up, bytes_down, id);
}

int pg_session_gateway(struct pg_store *st, int64_t id, const char *gateway)
{
	return write1(st, 0, NULL, "UPDATE sessions SET gateway = $1 WHERE id = $2 AND state < 4",
		      "si", gateway, id);
}

int pg_gateway_started(struct pg_store *st, const char *gateway, int64_t now_ms, int *n)
{
	*n = 0;
	return write1(st, 0, n,
		      "UPDATE sessions SET state = 3, disconnected_ms = $1, updated_ms = $1"
		      " WHERE state = 2 AND gateway = $2 AND connected_ms < $1",
		      "is", now_ms, gateway);
}

int pg_session_end(struct pg_store *st, int64_t id, const char *reason, int64_t now_ms, int *ended)
{
	struct brk_session s;
	int n = 0;
	int rc = write1(st, 0, &n,
			"UPDATE sessions SET state = 4, ended_ms = $1, updated_ms = $1,"
			" end_reason = $2 WHERE id = $3 AND state < 4",
			"isi", now_ms, reason, id);

	*ended = rc == 0 && n == 1;
	if (rc == 0 && n == 0)
		rc = pg_session_get(st, id, &s); /* ended already: 0 */
	return rc;
}

/* --- tickets and tokens ------------------------------------------------------------ */

int pg_ticket_put(struct pg_store *st, const char *hash, const struct brk_ticket *t)
{
	return write1(st, 0, NULL,
		      "INSERT INTO tickets (hash, session_id, user_name, client_addr, expires_ms,"
		      " sealed) VALUES ($1, $2, $3, $4, $5, $6)",
		      "sissis", hash, t->session_id, t->user, t->client_addr, t->expires_ms,
		      t->sealed);
}

int pg_ticket_take(struct pg_store *st, const char *hash, int64_t now_ms, struct brk_ticket *out)
{
	PGresult *r;
	int rc;

	/* Single use, on any broker: the one DELETE that returns the row
	 * took it.  A DELETE that fails took nothing and answers nothing. */
	r = q1(st,
	       "DELETE FROM tickets WHERE hash = $1"
	       " RETURNING session_id, user_name, client_addr, expires_ms, sealed",
	       "s", hash);
	if (!r)
		return brk_store_rc;
	rc = -ENOENT;
	if (PQntuples(r) == 1) {
		memset(out, 0, sizeof(*out));
		out->session_id = gi(r, 0, 0);
		gt(r, 0, 1, out->user, sizeof(out->user));
		gt(r, 0, 2, out->client_addr, sizeof(out->client_addr));
		out->expires_ms = gi(r, 0, 3);
		gt(r, 0, 4, out->sealed, sizeof(out->sealed));
		rc = out->expires_ms > now_ms ? 0 : -ENOENT;
		if (rc)
			explicit_bzero(out->sealed, sizeof(out->sealed));
	}
	PQclear(r);
	return rc;
}

int pg_token_put(struct pg_store *st, const char *hash, const struct brk_token *t)
{
	return write1(st, 0, NULL,
		      "INSERT INTO tokens (hash, user_name, admin, expires_ms, sealed)"
		      " VALUES ($1, $2, $3, $4, $5)",
		      "ssiis", hash, t->user, (int64_t)t->admin, t->expires_ms, t->sealed);
}

int pg_token_get(struct pg_store *st, const char *hash, int64_t now_ms, struct brk_token *out)
{
	PGresult *r;
	int rc;

	r = q1(st,
	       "SELECT user_name, admin, expires_ms, sealed FROM tokens"
	       " WHERE hash = $1 AND expires_ms > $2",
	       "si", hash, now_ms);
	if (!r)
		return brk_store_rc;
	rc = PQntuples(r) == 1 ? 0 : -ENOENT;
	if (rc == 0) {
		memset(out, 0, sizeof(*out));
		gt(r, 0, 0, out->user, sizeof(out->user));
		out->admin = (int)gi(r, 0, 1);
		out->expires_ms = gi(r, 0, 2);
		gt(r, 0, 3, out->sealed, sizeof(out->sealed));
	}
	PQclear(r);
	return rc;
}

int pg_token_delete(struct pg_store *st, const char *hash)
{
	return write1(st, 0, NULL, "DELETE FROM tokens WHERE hash = $1", "s", hash);
}

int pg_purge(struct pg_store *st, int64_t now_ms)
{
	int rc = write1(st, 0, NULL, "DELETE FROM tickets WHERE expires_ms <= $1", "i", now_ms);

	if (rc == 0)
		rc = write1(st, 0, NULL, "DELETE FROM tokens WHERE expires_ms <= $1", "i", now_ms);
	if (rc == 0)
		rc = write1(st, 0, NULL, "DELETE FROM throttle WHERE last_ms <= $1", "i",
			    now_ms - BRK_QUIET_PURGE_MS);
	if (rc == 0)
		rc = write1(st, 0, NULL, "DELETE FROM brokers WHERE seen_ms <= $1", "i",
			    now_ms - BRK_QUIET_PURGE_MS);
	if (rc == 0)
		rc = write1(st, 0, NULL,
			    "DELETE FROM control WHERE at_ms <= $1"
			    " AND seq < (SELECT MAX(seq) FROM control)",
			    "i", now_ms - BRK_CONTROL_KEEP_MS);
	return rc;
}

/* --- login throttling ------------------------------------------------------------ */

int pg_throttle_take(struct pg_store *st, const char *const *keys, size_t n, int limit,
		     int64_t window_ms, int64_t now_ms)
{
	struct pg_conn *k = take(st);
	PGresult *r;
	int rc;

	if (!k)
		return brk_store_rc;
	/* The upsert locks each key's row until COMMIT: brokers racing for
	 * one key count one after the other. */
	rc = ex(k, "BEGIN");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		r = q(k, BRK_THROTTLE_SQL("$1", "$2", "$3", "$4"), "siii", keys[i], now_ms,
		      (int64_t)limit, window_ms);
		rc = !r ? brk_store_rc : PQntuples(r) == 1 ? 0 : -EUSERS;
		PQclear(r);
	}
	if (rc == 0)
		rc = ex(k, "COMMIT");
	rollback(k);
	give(st, k);
	return rc;
}

int pg_broker_beat(struct pg_store *st, const char *id, int64_t now_ms)
{
	return write1(st, 0, NULL, BRK_BROKER_BEAT_SQL("$1", "$2"), "si", id, now_ms);
}

int pg_broker_seen(struct pg_store *st, const char *id, int64_t *seen_ms)
{
	PGresult *r;
	int rc;

	r = q1(st, "SELECT seen_ms FROM brokers WHERE id = $1", "s", id);
	if (!r)
		return brk_store_rc;
	rc = PQntuples(r) == 1 ? 0 : -ENOENT;
	if (rc == 0)
		*seen_ms = gi(r, 0, 0);
	PQclear(r);
	return rc;
}

int pg_throttle_forgive(struct pg_store *st, const char *const *keys, size_t n)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = write1(st, 0, NULL, BRK_THROTTLE_FORGIVE_SQL("$1"), "s", keys[i]);
	return rc;
}

/* --- control ------------------------------------------------------------------- */

int pg_control_add(struct pg_store *st, int64_t session_id, const char *action, const char *text,
		   int64_t at_ms)
{
	return write1(st, 0, NULL,
		      "INSERT INTO control (session_id, action, text, at_ms) VALUES ($1, $2, $3, $4)",
		      "issi", session_id, action, text, at_ms);
}

int pg_control_since(struct pg_store *st, int64_t after, struct brk_control **out, size_t *n,
		     int64_t *last)
{
	struct brk_control *v;
	PGresult *r;
	int rows;

	r = q1(st, "SELECT COALESCE(MAX(seq), 0) FROM control", "");
	if (!r)
		return brk_store_rc;
	*last = PQntuples(r) == 1 ? gi(r, 0, 0) : 0;
	PQclear(r);
	if (*last <= after)
		return 0;
	r = q1(st,
	       "SELECT seq, session_id, at_ms, action, text FROM control WHERE seq > $1"
	       " ORDER BY seq LIMIT $2",
	       "ii", after, (int64_t)BRK_CONTROL_MAX);
	if (!r)
		return brk_store_rc;
	rows = PQntuples(r);
	if (!(v = calloc(rows ? (size_t)rows : 1, sizeof(*v)))) {
		PQclear(r);
		return brk_store_fail(-ENOMEM, "out of memory");
	}
	for (int i = 0; i < rows; i++) {
		v[i].seq = gi(r, i, 0);
		v[i].session_id = gi(r, i, 1);
		v[i].at_ms = gi(r, i, 2);
		snprintf(v[i].action, sizeof(v[i].action), "%s", PQgetvalue(r, i, 3));
		snprintf(v[i].text, sizeof(v[i].text), "%s", PQgetvalue(r, i, 4));
	}
	PQclear(r);
	*out = v;
	*n = (size_t)rows;
	return 0;
}
