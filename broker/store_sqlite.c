/*
 * store_sqlite.c - the SQLite back-end of store.h.
 *
 * One connection, one mutex: every call is short, and the assignment must
 * be one serialised transaction anyway (BEGIN IMMEDIATE), so a pool of
 * connections would buy nothing but SQLITE_BUSY.  WAL with synchronous =
 * NORMAL: a committed transaction survives the process being killed (the
 * issue's kill -9 test); only a power cut can lose the last commits.
 *
 * A pool's [pool] keys are kept as the configuration file's own text
 * ("key = value" lines, through conf.c's table), so the schema does not
 * change when a key is added; store_pg.c stores the same text (store.c
 * writes and reads it for both).  The schema's versions are store_pg.c's
 * too, each in its own SQL.
 *
 * One file past 600 lines: it is the whole back-end, one short function per
 * call of store.h around one connection and its lock; a second back-end
 * (store_pg.c) is a second file of the same shape, not a split of this one.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_impl.h"

#define store_err      brk_store_err /* store_impl.h: this thread's */
#define store_rc       brk_store_rc
#define SCHEMA_VERSION BRK_SCHEMA_VERSION
#define HOST_ALIVE_MS  BRK_HOST_ALIVE_MS

#define SPENT_MAX  64
#define STMT_CACHE 96 /* more than the statements of this file */

/* A ticket taken whose DELETE failed: refused until it expires. */
struct spent {
	char hash[72]; /* SHA-256, hex */
	int64_t expires_ms;
};

struct sq_store {
	sqlite3 *db;
	pthread_mutex_t mu;
	struct spent spent[SPENT_MAX];
	/* Prepared statements, by their SQL's address (vq): each is compiled
	 * once, not on every call (compiling was a third of a call's time). */
	struct {
		const char *sql;
		sqlite3_stmt *s;
	} stmts[STMT_CACHE];
	int nstmts;
};

/*
 * The errno for SQLite's last error, and its words in store_err.  A full
 * disk, an I/O error, a read-only file or a lock held past the busy
 * timeout is -EAGAIN (store.h): the statement changed nothing, and the
 * same call works again once the cause is gone, with no restart (SQLite
 * rolls back what failed; rollback() below sees that no transaction is
 * left open).  Its text is for users ("its disk is full"); SQLite's own
 * follows in brackets for the log.
 */
static int db_fail(struct sq_store *st, const char *what)
{
	const char *why = NULL;

	switch (sqlite3_errcode(st->db)) {
	case SQLITE_FULL:
		why = "its disk is full";
		break;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN:
		why = "its disk failed";
		break;
	case SQLITE_READONLY:
		why = "it is read-only";
		break;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		why = "it is locked by another process";
		break;
	case SQLITE_NOMEM:
		why = "out of memory";
		break;
	}
	if (why)
		snprintf(store_err, sizeof(store_err), "%s (%s: %s)", why, what,
			 sqlite3_errmsg(st->db));
	else
		snprintf(store_err, sizeof(store_err), "%s: %s", what, sqlite3_errmsg(st->db));
	store_rc = !why ? -EIO : sqlite3_errcode(st->db) == SQLITE_NOMEM ? -ENOMEM : -EAGAIN;
	return store_rc;
}

/* Ends the transaction a failed call leaves open, if SQLite has not
 * already rolled it back (a full disk may or may not, by its documentation);
 * keeps the failure's own text in store_err.  Without it the next BEGIN
 * would fail for good ("cannot start a transaction within a transaction"). */
static void rollback(struct sq_store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* One step of a query: 1 a row, 0 no more rows, or the error (db_fail).
 * A read that fails must not pass for "no such row": a session taken for
 * gone is stopped on its host, a user taken for sessionless gets a second. */
static int step_row(struct sq_store *st, sqlite3_stmt *s)
{
	int rc;

	if (!s)
		return store_rc;
	rc = sqlite3_step(s);
	return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : db_fail(st, "step");
}

/* Version n's SQL is schema[n - 1] (store_impl.h); SQLite numbers an
 * INTEGER PRIMARY KEY itself. */
static const char *const schema[] = BRK_SCHEMA("INTEGER PRIMARY KEY");
_Static_assert(sizeof(schema) / sizeof(schema[0]) == BRK_SCHEMA_VERSION, "one entry per version");

/* --- statements --------------------------------------------------------- */

/* Prepare sql and bind the arguments: 'i' int64, 's' text, 'd' double.
 * sql is a string literal of this file (its address is the cache's key),
 * and the statement goes back with stmt_done(). */
static sqlite3_stmt *vq(struct sq_store *st, const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *s = NULL;
	int i;

	for (i = 0; i < st->nstmts; i++)
		if (st->stmts[i].sql == sql) {
			s = st->stmts[i].s;
			sqlite3_reset(s); /* done with already; a path that forgot is harmless */
			break;
		}
	if (!s) {
		if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) !=
		    SQLITE_OK) {
			db_fail(st, "prepare");
			return NULL;
		}
		if (st->nstmts < STMT_CACHE) {
			st->stmts[st->nstmts].sql = sql;
			st->stmts[st->nstmts++].s = s;
		}
	}
	for (i = 0; types[i]; i++) {
		if (types[i] == 'i')
			sqlite3_bind_int64(s, i + 1, va_arg(ap, int64_t));
		else if (types[i] == 'd')
			sqlite3_bind_double(s, i + 1, va_arg(ap, double));
		else
			sqlite3_bind_text(s, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
	}
	return s;
}

/* A statement of vq() (or any other) is done with: a cached one reset for
 * its next call (its read ends, its bound texts are freed), another
 * finalized. */
static void stmt_done(struct sq_store *st, sqlite3_stmt *s)
{
	for (int i = 0; i < st->nstmts; i++)
		if (st->stmts[i].s == s) {
			sqlite3_reset(s);
			sqlite3_clear_bindings(s);
			return;
		}
	sqlite3_finalize(s);
}

static sqlite3_stmt *q(struct sq_store *st, const char *sql, const char *types, ...)
{
	va_list ap;
	sqlite3_stmt *s;

	va_start(ap, types);
	s = vq(st, sql, types, ap);
	va_end(ap);
	return s;
}

/* Run a statement that returns no rows; 0, or -EIO. */
static int exec_stmt(struct sq_store *st, sqlite3_stmt *s)
{
	int rc;

	if (!s)
		return store_rc;
	rc = sqlite3_step(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		rc = db_fail(st, "step");
		stmt_done(st, s);
		return rc;
	}
	stmt_done(st, s);
	return 0;
}

/* One write under the lock: 0, -EIO, or (must_change) -ENOENT when no
 * row was changed. */
static int write1(struct sq_store *st, int must_change, const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	pthread_mutex_lock(&st->mu);
	va_start(ap, types);
	rc = exec_stmt(st, vq(st, sql, types, ap));
	va_end(ap);
	if (rc == 0 && must_change && sqlite3_changes(st->db) == 0)
		rc = -ENOENT;
	pthread_mutex_unlock(&st->mu);
	return rc;
}

static int exec_sql(struct sq_store *st, const char *sql)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(st, "exec");
	return 0;
}

static void col_text(sqlite3_stmt *s, int i, char *buf, size_t len)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	snprintf(buf, len, "%s", t ? (const char *)t : "");
}

/* --- open ----------------------------------------------------------------- */

/* Owner only (0600) when path exists and is more open; 0 or -errno. */
static int make_private(const char *path)
{
	struct stat sb;

	if (stat(path, &sb) == -1)
		return errno == ENOENT ? 0 : -errno;
	if ((sb.st_mode & 0177) == 0)
		return 0;
	return chmod(path, 0600) == -1 ? -errno : 0;
}

/* The database and the files SQLite keeps beside it, owner only. */
static int make_files_private(const char *db, char *err, size_t errlen)
{
	static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
	char path[4096];
	int rc;

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
		rc = make_private(path);
		if (rc) {
			snprintf(err, errlen, "%s: cannot make it private (chmod 0600): %s", path,
				 strerror(-rc));
			return rc;
		}
	}
	return 0;
}

struct sq_store *sq_open(const char *uri, char *err, size_t errlen)
{
	struct sq_store *st;
	sqlite3_stmt *s;
	int version = 0;

	if (strncmp(uri, "sqlite:", 7) || !uri[7]) {
		snprintf(err, errlen, "[broker] store '%.200s': expected sqlite:/path/to/file.db",
			 uri);
		return NULL;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&st->mu, NULL);
	/*
	 * The files hold backends' addresses and secrets and sealed passwords:
	 * owner only.  SQLite creates the database 0644 less the umask, and its
	 * -wal, -shm and -journal files with the database's own mode; so a
	 * umask of 077 covers a new database, and a chmod one that an older
	 * broker (or a person) made, before the journal files are opened.  The
	 * umask is the process's: the store is opened at start-up, before the
	 * broker has any other thread.
	 */
	mode_t mask = umask(077);
	int orc = make_files_private(uri + 7, err, errlen);
	if (orc == 0 &&
	    sqlite3_open_v2(uri + 7, &st->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			    NULL) != SQLITE_OK)
		orc = -EIO;
	if (orc == 0) {
		sqlite3_busy_timeout(st->db, 5000);
		if (exec_sql(st, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;") ||
		    exec_sql(st,
			     "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)"))
			orc = -EIO;
	}
	umask(mask);
	if (orc == -EIO)
		goto fail;
	if (orc) {
		sq_close(st);
		return NULL;
	}
	s = q(st, "SELECT value FROM meta WHERE key = 'schema_version'", "");
	if (!s)
		goto fail;
	if (sqlite3_step(s) == SQLITE_ROW)
		version = sqlite3_column_int(s, 0);
	stmt_done(st, s);
	if (version > SCHEMA_VERSION) {
		snprintf(err, errlen,
			 "%s: schema version %d is newer than this broker's (%d): run the newer "
			 "broker, or restore a backup",
			 uri + 7, version, SCHEMA_VERSION);
		sq_close(st);
		return NULL;
	}
	if (version < SCHEMA_VERSION) {
		if (exec_sql(st, "BEGIN IMMEDIATE")) /* SQLite: take the write lock now */
			goto fail;
		for (int v = version; v < SCHEMA_VERSION; v++)
			if (exec_sql(st, schema[v])) {
				rollback(st);
				goto fail;
			}
		if (exec_stmt(st, q(st,
				    "INSERT OR REPLACE INTO meta (key, value) VALUES"
				    " ('schema_version', ?)",
				    "i", (int64_t)SCHEMA_VERSION)) ||
		    exec_sql(st, "COMMIT")) {
			rollback(st);
			goto fail;
		}
	}
	return st;
fail:
	snprintf(err, errlen, "%s: %s", uri + 7,
		 store_err[0] ? store_err
		 : st->db     ? sqlite3_errmsg(st->db)
			      : "cannot open the database");
	sq_close(st);
	return NULL;
}

void sq_close(struct sq_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < st->nstmts; i++)
		sqlite3_finalize(st->stmts[i].s);
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->mu);
	free(st);
}

#define LOCK(st)   pthread_mutex_lock(&(st)->mu)
#define UNLOCK(st) pthread_mutex_unlock(&(st)->mu)

/* --- snapshots, for tests and fuzzing ---------------------------------------- */

int sq_snapshot(struct sq_store *st, void **buf, size_t *len)
{
	sqlite3_int64 n = 0;
	unsigned char *p;

	LOCK(st);
	p = sqlite3_serialize(st->db, "main", &n, 0);
	UNLOCK(st);
	if (!p)
		return -ENOMEM;
	*buf = malloc((size_t)n);
	if (*buf)
		memcpy(*buf, p, (size_t)n);
	*len = (size_t)n;
	sqlite3_free(p);
	return *buf ? 0 : -ENOMEM;
}

int sq_restore(struct sq_store *st, const void *buf, size_t len)
{
	unsigned char *p = sqlite3_malloc64(len);
	int rc;

	if (!p)
		return -ENOMEM;
	memcpy(p, buf, len);
	LOCK(st);
	/* SQLite owns p now, whatever the answer. */
	rc = sqlite3_deserialize(st->db, "main", p, (sqlite3_int64)len, (sqlite3_int64)len,
				 SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE);
	memset(st->spent, 0, sizeof(st->spent));
	UNLOCK(st);
	return rc == SQLITE_OK ? 0 : db_fail(st, "deserialize");
}

int sq_is(struct sq_store *st, const void *buf, size_t len)
{
	sqlite3_int64 n = 0;
	const unsigned char *p;
	int same = 1;

	LOCK(st);
	/* NOCOPY: the database's own bytes, which only a database restored
	 * above (SQLite's memdb) has; any other gives NULL, "cannot tell". */
	p = sqlite3_serialize(st->db, "main", &n, SQLITE_SERIALIZE_NOCOPY);
	for (int i = 0; i < SPENT_MAX && same; i++)
		same = !st->spent[i].hash[0];
	same = same && p && (size_t)n == len && !memcmp(p, buf, len);
	UNLOCK(st);
	return same;
}

/* --- pools ----------------------------------------------------------------- */

static int pool_row(sqlite3_stmt *s, struct brk_pool *p)
{
	char name[80];

	memset(p, 0, sizeof(*p));
	col_text(s, 0, name, sizeof(name));
	p->drained = sqlite3_column_int(s, 2);
	p->from_config = sqlite3_column_int(s, 3);
	return brk_pool_parse(name, (const char *)sqlite3_column_text(s, 1), &p->c);
}

int sq_pool_put(struct sq_store *st, const struct brk_pool *p, int create_only)
{
	char *text = brk_pool_text(&p->c);
	int rc;

	if (!text)
		return -ENOMEM;
	LOCK(st);
	sqlite3_stmt *s = q(st, "SELECT 1 FROM pools WHERE name = ?", "s", p->c.name);
	int exists = s && sqlite3_step(s) == SQLITE_ROW;
	stmt_done(st, s);
	if (exists && create_only)
		rc = -EEXIST;
	else if (exists)
		rc = exec_stmt(st, q(st,
				     "UPDATE pools SET conf = ?, drained = ?, from_config = ?"
				     " WHERE name = ?",
				     "siis", text, (int64_t)p->drained, (int64_t)p->from_config,
				     p->c.name));
	else
		rc = exec_stmt(st, q(st,
				     "INSERT INTO pools (name, conf, drained, from_config)"
				     " VALUES (?, ?, ?, ?)",
				     "ssii", p->c.name, text, (int64_t)p->drained,
				     (int64_t)p->from_config));
	UNLOCK(st);
	free(text);
	return rc;
}

static int pool_get_locked(struct sq_store *st, const char *name, struct brk_pool *out,
			   int64_t *cursor)
{
	sqlite3_stmt *s = q(st,
			    "SELECT name, conf, drained, from_config, rr_cursor FROM pools"
			    " WHERE name = ?",
			    "s", name);
	int rc;

	if ((rc = step_row(st, s)) != 1) {
		stmt_done(st, s);
		return rc ? rc : -ENOENT;
	}
	rc = pool_row(s, out);
	if (cursor)
		*cursor = sqlite3_column_int64(s, 4);
	stmt_done(st, s);
	return rc;
}

int sq_pool_get(struct sq_store *st, const char *name, struct brk_pool *out)
{
	int rc;

	LOCK(st);
	rc = pool_get_locked(st, name, out, NULL);
	UNLOCK(st);
	return rc;
}

static int pool_list_locked(struct sq_store *st, struct brk_pool **out, size_t *n)
{
	sqlite3_stmt *s =
		q(st, "SELECT name, conf, drained, from_config FROM pools ORDER BY name", "");
	size_t cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	while ((rc = step_row(st, s)) == 1) {
		if (*n == cap) {
			struct brk_pool *np =
				realloc(*out, (cap = cap ? cap * 2 : 16) * sizeof(**out));
			if (!np) {
				rc = -ENOMEM;
				break;
			}
			*out = np;
		}
		pool_row(s, &(*out)[(*n)++]);
	}
	stmt_done(st, s);
	if (rc) {
		brk_pools_free(*out, *n);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int sq_pool_list(struct sq_store *st, struct brk_pool **out, size_t *n)
{
	int rc;

	LOCK(st);
	rc = pool_list_locked(st, out, n);
	UNLOCK(st);
	return rc;
}

int sq_pool_delete(struct sq_store *st, const char *name)
{
	int rc;

	LOCK(st);
	sqlite3_stmt *s =
		q(st, "SELECT COUNT(*) FROM sessions WHERE pool = ? AND state < 4", "s", name);
	int64_t live = 0;
	if ((rc = step_row(st, s)) == 1)
		live = sqlite3_column_int64(s, 0);
	stmt_done(st, s);
	if (rc < 0) {
		/* unknown: not deleted */
	} else if (live > 0) {
		rc = -EBUSY;
	} else {
		rc = exec_stmt(st, q(st, "DELETE FROM pools WHERE name = ?", "s", name));
		if (rc == 0 && sqlite3_changes(st->db) == 0)
			rc = -ENOENT;
	}
	UNLOCK(st);
	return rc;
}

int sq_pool_set_drained(struct sq_store *st, const char *name, int drained)
{
	return write1(st, 1, "UPDATE pools SET drained = ? WHERE name = ?", "is", (int64_t)drained,
		      name);
}

/* --- hosts ------------------------------------------------------------------ */

int sq_host_register(struct sq_store *st, const char *name, const char *address, int64_t now_ms)
{
	return write1(
		st, 0,
		"INSERT INTO hosts (name, address, sessiond, last_seen_ms) VALUES (?, ?, 1, ?)"
		" ON CONFLICT (name) DO UPDATE SET address = excluded.address, sessiond = 1,"
		" last_seen_ms = excluded.last_seen_ms",
		"ssi", name, address, now_ms);
}

int sq_host_heartbeat(struct sq_store *st, const char *name, double load, int64_t mem_free_kb,
		      int64_t now_ms)
{
	return write1(st, 1,
		      "UPDATE hosts SET load = ?, mem_free_kb = ?, last_seen_ms = ?"
		      " WHERE name = ? AND sessiond = 1",
		      "diis", load, mem_free_kb, now_ms, name);
}

int sq_host_list(struct sq_store *st, const char *name, struct brk_host **out, size_t *n)
{
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	LOCK(st);
	sqlite3_stmt *s = q(st,
			    "SELECT h.name, h.address, h.sessiond, h.drained, h.last_seen_ms,"
			    " h.load, h.mem_free_kb, (SELECT COUNT(*) FROM sessions s"
			    " WHERE s.host = h.name AND s.state < 4) FROM hosts h"
			    " WHERE ? IS NULL OR h.name = ? ORDER BY h.name",
			    "ss", name, name);
	int rc;
	while ((rc = step_row(st, s)) == 1) {
		if (*n == cap) {
			struct brk_host *nh =
				realloc(*out, (cap = cap ? cap * 2 : 16) * sizeof(**out));
			if (!nh) {
				rc = -ENOMEM;
				break;
			}
			*out = nh;
		}
		struct brk_host *h = &(*out)[(*n)++];
		memset(h, 0, sizeof(*h));
		col_text(s, 0, h->name, sizeof(h->name));
		col_text(s, 1, h->address, sizeof(h->address));
		h->sessiond = sqlite3_column_int(s, 2);
		h->drained = sqlite3_column_int(s, 3);
		h->last_seen_ms = sqlite3_column_int64(s, 4);
		h->load = sqlite3_column_double(s, 5);
		h->mem_free_kb = sqlite3_column_int64(s, 6);
		h->sessions = sqlite3_column_int64(s, 7);
	}
	stmt_done(st, s);
	UNLOCK(st);
	if (rc) {
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int sq_host_set_drained(struct sq_store *st, const char *name, int drained)
{
	int rc;

	LOCK(st);
	/* A static backend has a row only once a session used it. */
	rc = exec_stmt(st, q(st, "UPDATE hosts SET drained = ? WHERE name = ?", "is",
			     (int64_t)drained, name));
	if (rc == 0 && sqlite3_changes(st->db) == 0) {
		sqlite3_stmt *s = q(st, "SELECT conf FROM pools", "");
		int known = 0;
		while (s && !known && sqlite3_step(s) == SQLITE_ROW)
			known = brk_pool_text_has_host((const char *)sqlite3_column_text(s, 0),
						       name);
		stmt_done(st, s);
		rc = known ? exec_stmt(st, q(st,
					     "INSERT INTO hosts (name, address, sessiond, drained)"
					     " VALUES (?, ?, 0, ?)",
					     "ssi", name, name, (int64_t)drained))
			   : -ENOENT;
	}
	UNLOCK(st);
	return rc;
}

/* --- sessions ---------------------------------------------------------------- */

#define SESSION_COLS                                                                       \
	"id, pool, user_name, host, backend, secret, client_addr, state, created_ms,"      \
	" updated_ms, connected_ms, disconnected_ms, last_input_ms, ended_ms, end_reason," \
	" bytes_up, bytes_down, starter"

static void session_row(sqlite3_stmt *s, struct brk_session *o)
{
	memset(o, 0, sizeof(*o));
	o->id = sqlite3_column_int64(s, 0);
	col_text(s, 1, o->pool, sizeof(o->pool));
	col_text(s, 2, o->user, sizeof(o->user));
	col_text(s, 3, o->host, sizeof(o->host));
	col_text(s, 4, o->backend, sizeof(o->backend));
	col_text(s, 5, o->secret, sizeof(o->secret));
	col_text(s, 6, o->client_addr, sizeof(o->client_addr));
	o->state = sqlite3_column_int(s, 7);
	o->created_ms = sqlite3_column_int64(s, 8);
	o->updated_ms = sqlite3_column_int64(s, 9);
	o->connected_ms = sqlite3_column_int64(s, 10);
	o->disconnected_ms = sqlite3_column_int64(s, 11);
	o->last_input_ms = sqlite3_column_int64(s, 12);
	o->ended_ms = sqlite3_column_int64(s, 13);
	col_text(s, 14, o->end_reason, sizeof(o->end_reason));
	o->bytes_up = sqlite3_column_int64(s, 15);
	o->bytes_down = sqlite3_column_int64(s, 16);
	col_text(s, 17, o->starter, sizeof(o->starter));
}

static int session_get_locked(struct sq_store *st, int64_t id, struct brk_session *out)
{
	sqlite3_stmt *s = q(st, "SELECT " SESSION_COLS " FROM sessions WHERE id = ?", "i", id);
	int rc = step_row(st, s);

	if (rc == 1)
		session_row(s, out);
	stmt_done(st, s);
	return rc == 1 ? 0 : rc ? rc : -ENOENT;
}

int sq_session_get(struct sq_store *st, int64_t id, struct brk_session *out)
{
	int rc;

	LOCK(st);
	rc = session_get_locked(st, id, out);
	UNLOCK(st);
	return rc;
}

/* A COUNT(*): 0 or the error, the figure in *v. */
static int count(struct sq_store *st, sqlite3_stmt *s, int64_t *v)
{
	int rc = step_row(st, s);

	*v = rc == 1 ? sqlite3_column_int64(s, 0) : 0;
	stmt_done(st, s);
	return rc < 0 ? rc : 0;
}

static int assign_locked(struct sq_store *st, const struct brk_assign_req *req,
			 struct brk_session *out, int *reconnect)
{
	struct brk_pool p = { 0 };
	struct brk_candidate *c = NULL;
	char previous[128] = "";
	int64_t cursor = -1;
	size_t n = 0;
	sqlite3_stmt *s;
	int rc, pick, sessiond;

	rc = pool_get_locked(st, req->pool, &p, &cursor);
	if (rc)
		return rc;
	*reconnect = 0;
	s = q(st,
	      "SELECT " SESSION_COLS " FROM sessions WHERE pool = ? AND user_name = ?"
	      " AND state < 4 ORDER BY id DESC LIMIT 1",
	      "ss", req->pool, req->user);
	if ((rc = step_row(st, s)) == 1) {
		session_row(s, out);
		stmt_done(st, s);
		*reconnect = 1;
		rc = 0;
		goto out;
	}
	stmt_done(st, s);
	if (rc)
		goto out; /* not "no session": that would give a second one */
	int64_t mine;
	if ((rc = count(st,
			q(st,
			  "SELECT COUNT(*) FROM sessions WHERE pool = ? AND user_name = ?"
			  " AND state < 4",
			  "ss", req->pool, req->user),
			&mine)))
		goto out;
	if (mine >= p.c.max_sessions_per_user) {
		rc = -EDQUOT;
		goto out;
	}
	if (p.drained || p.c.hosts.n == 0) {
		rc = -ENOSPC;
		goto out;
	}
	sessiond = p.c.driver != PT_DRIVER_STATIC;
	c = calloc(p.c.hosts.n, sizeof(*c));
	if (!c) {
		rc = -ENOMEM;
		goto out;
	}
	/* Two reads whatever the number of hosts: the host rows, and the live
	 * sessions per host.  A per-host query costs milliseconds at 1,000. */
	struct brk_hostinfo *hi = NULL;
	size_t nhi = 0, caphi = 0;
	s = q(st,
	      "SELECT h.name, h.drained, h.sessiond, h.last_seen_ms, COALESCE(c.n, 0)"
	      " FROM hosts h LEFT JOIN (SELECT host, COUNT(*) AS n FROM sessions"
	      " WHERE state < 4 GROUP BY host) c ON c.host = h.name ORDER BY h.name",
	      "");
	while ((rc = step_row(st, s)) == 1) {
		if (nhi == caphi) {
			struct brk_hostinfo *nh =
				realloc(hi, (caphi = caphi ? caphi * 2 : 64) * sizeof(*hi));
			if (!nh) {
				rc = -ENOMEM;
				break;
			}
			hi = nh;
		}
		col_text(s, 0, hi[nhi].name, sizeof(hi[nhi].name));
		hi[nhi].drained = sqlite3_column_int(s, 1);
		hi[nhi].sessiond = sqlite3_column_int(s, 2);
		hi[nhi].seen = sqlite3_column_int64(s, 3);
		hi[nhi].live = sqlite3_column_int64(s, 4);
		nhi++;
	}
	stmt_done(st, s);
	/* A static backend gets its row when first used.  A failed write may
	 * have ended the transaction (SQLite rolls back on a full disk): stop
	 * there, or the session row would be written outside it. */
	for (size_t i = 0; rc == 0 && !sessiond && i < p.c.hosts.n; i++)
		if (!brk_hostinfo_find(hi, nhi, p.c.hosts.v[i]))
			rc = exec_stmt(st, q(st,
					     "INSERT INTO hosts (name, address, sessiond)"
					     " VALUES (?, ?, 0)",
					     "ss", p.c.hosts.v[i], p.c.hosts.v[i]));
	if (rc == 0)
		n = brk_assign_candidates(&p.c, hi, nhi, req->now_ms, c);
	free(hi);
	if (rc) /* hosts missed would read as "no capacity" */
		goto out;
	if (p.c.policy == PT_POLICY_PERSISTENT) {
		s = q(st,
		      "SELECT host FROM sessions WHERE pool = ? AND user_name = ?"
		      " ORDER BY id DESC LIMIT 1",
		      "ss", req->pool, req->user);
		if (s && sqlite3_step(s) == SQLITE_ROW)
			col_text(s, 0, previous, sizeof(previous));
		stmt_done(st, s);
	}
	pick = brk_assign_pick(p.c.policy, c, n, &cursor, previous[0] ? previous : NULL);
	if (pick < 0) {
		rc = -ENOSPC;
		goto out;
	}
	if (p.c.policy == PT_POLICY_ROUND_ROBIN &&
	    (rc = exec_stmt(st, q(st, "UPDATE pools SET rr_cursor = ? WHERE name = ?", "is", cursor,
				  req->pool))))
		goto out;
	rc = exec_stmt(
		st, q(st,
		      "INSERT INTO sessions (pool, user_name, host, backend, client_addr,"
		      " state, created_ms, updated_ms, starter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		      "sssssiiis", req->pool, req->user, c[pick].host, sessiond ? "" : c[pick].host,
		      req->client_addr ? req->client_addr : "",
		      (int64_t)(sessiond ? BRK_STARTING : BRK_READY), req->now_ms, req->now_ms,
		      req->broker ? req->broker : ""));
	if (rc == 0) /* SQLite: RETURNING would do in both, but 3.40 + PG differ */
		rc = session_get_locked(st, sqlite3_last_insert_rowid(st->db), out);
out:
	free(c);
	brk_pool_clear(&p);
	return rc;
}

int sq_assign(struct sq_store *st, const struct brk_assign_req *req, struct brk_session *out,
	      int *reconnect)
{
	int rc;

	LOCK(st);
	/* The choice and the insert in one write transaction: no two
	 * launches can see the same free seat. */
	if ((rc = exec_sql(st, "BEGIN IMMEDIATE"))) {
		UNLOCK(st);
		return rc;
	}
	rc = assign_locked(st, req, out, reconnect);
	if (rc == 0 || rc == -ENOSPC || rc == -EDQUOT || rc == -ENOENT) {
		/* A COMMIT that fails (the disk full) leaves nothing: the
		 * row the caller would start is not there. */
		int crc = exec_sql(st, "COMMIT");
		if (crc) {
			rollback(st);
			rc = crc;
		}
	} else {
		rollback(st);
	}
	UNLOCK(st);
	return rc;
}

int sq_session_list(struct sq_store *st, const struct brk_session_filter *f,
		    struct brk_session **out, size_t *n)
{
	char sql[512];
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	/* Fixed SQL with optional filters: a NULL parameter matches all. */
	snprintf(sql, sizeof(sql),
		 "SELECT " SESSION_COLS " FROM sessions WHERE (? IS NULL OR pool = ?)"
		 " AND (? IS NULL OR user_name = ?) AND (? = -1 OR (? = -2 AND state < 4)"
		 " OR state = ?) AND (? IS NULL OR host = ?) ORDER BY id DESC%s",
		 f->limit > 0 ? " LIMIT ?" : "");
	LOCK(st);
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
		UNLOCK(st);
		return db_fail(st, "prepare");
	}
	if (f->pool) {
		sqlite3_bind_text(s, 1, f->pool, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 2, f->pool, -1, SQLITE_TRANSIENT);
	}
	if (f->user) {
		sqlite3_bind_text(s, 3, f->user, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 4, f->user, -1, SQLITE_TRANSIENT);
	}
	sqlite3_bind_int(s, 5, f->state);
	sqlite3_bind_int(s, 6, f->state);
	sqlite3_bind_int(s, 7, f->state);
	if (f->host) {
		sqlite3_bind_text(s, 8, f->host, -1, SQLITE_TRANSIENT);
		sqlite3_bind_text(s, 9, f->host, -1, SQLITE_TRANSIENT);
	}
	if (f->limit > 0)
		sqlite3_bind_int(s, 10, f->limit);
	int rc;
	while ((rc = step_row(st, s)) == 1) {
		if (*n == cap) {
			struct brk_session *ns =
				realloc(*out, (cap = cap ? cap * 2 : 16) * sizeof(**out));
			if (!ns) {
				rc = -ENOMEM;
				break;
			}
			*out = ns;
		}
		session_row(s, &(*out)[(*n)++]);
	}
	stmt_done(st, s);
	UNLOCK(st);
	if (rc) { /* a part of the list would read as "the rest ended" */
		free(*out);
		*out = NULL;
		*n = 0;
	}
	return rc;
}

int sq_session_ready(struct sq_store *st, int64_t id, const char *backend, const char *secret,
		     int64_t now_ms)
{
	return write1(st, 1,
		      "UPDATE sessions SET backend = ?, secret = ?, state = 1, updated_ms = ?"
		      " WHERE id = ? AND state = 0",
		      "ssii", backend, secret ? secret : "", now_ms, id);
}

int sq_session_event(struct sq_store *st, int64_t id, const char *event, int64_t at_ms,
		     int64_t bytes_up, int64_t bytes_down)
{
	const char *sql;

	if (!strcmp(event, "connect"))
		sql = "UPDATE sessions SET state = 2, connected_ms = ?, updated_ms = ?,"
		      " bytes_up = bytes_up + ?, bytes_down = bytes_down + ? WHERE id = ? AND "
		      "state < 4";
	else if (!strcmp(event, "disconnect"))
		sql = "UPDATE sessions SET state = 3, disconnected_ms = ?, updated_ms = ?,"
		      " bytes_up = bytes_up + ?, bytes_down = bytes_down + ? WHERE id = ? AND "
		      "state < 4";
	else if (!strcmp(event, "input"))
		sql = "UPDATE sessions SET last_input_ms = ?, updated_ms = ?,"
		      " bytes_up = bytes_up + ?, bytes_down = bytes_down + ? WHERE id = ? AND "
		      "state < 4";
	else
		return -EINVAL;
	return write1(st, 1, sql, "iiiii", at_ms, at_ms, bytes_up, bytes_down, id);
}

int sq_session_gateway(struct sq_store *st, int64_t id, const char *gateway)
{
	return write1(st, 0, "UPDATE sessions SET gateway = ? WHERE id = ? AND state < 4", "si",
		      gateway, id);
}

int sq_gateway_started(struct sq_store *st, const char *gateway, int64_t now_ms, int *n)
{
	int rc;

	LOCK(st);
	rc = exec_stmt(st, q(st,
			     "UPDATE sessions SET state = 3, disconnected_ms = ?, updated_ms = ?"
			     " WHERE state = 2 AND gateway = ? AND connected_ms < ?",
			     "iisi", now_ms, now_ms, gateway, now_ms));
	*n = rc == 0 ? sqlite3_changes(st->db) : 0;
	UNLOCK(st);
	return rc;
}

int sq_session_end(struct sq_store *st, int64_t id, const char *reason, int64_t now_ms, int *ended)
{
	int rc;

	LOCK(st);
	rc = exec_stmt(st, q(st,
			     "UPDATE sessions SET state = 4, ended_ms = ?, updated_ms = ?,"
			     " end_reason = ? WHERE id = ? AND state < 4",
			     "iisi", now_ms, now_ms, reason, id));
	*ended = rc == 0 && sqlite3_changes(st->db) > 0;
	if (rc == 0 && !*ended) {
		struct brk_session s;
		rc = session_get_locked(st, id, &s); /* ended already: 0 */
	}
	UNLOCK(st);
	return rc;
}

/* --- tickets and tokens -------------------------------------------------------- */

int sq_ticket_put(struct sq_store *st, const char *hash, const struct brk_ticket *t)
{
	return write1(st, 0,
		      "INSERT INTO tickets (hash, session_id, user_name, client_addr, expires_ms,"
		      " sealed) VALUES (?, ?, ?, ?, ?, ?)",
		      "sissis", hash, t->session_id, t->user, t->client_addr, t->expires_ms,
		      t->sealed);
}

/* Under the lock: the entry of a ticket whose DELETE failed, or NULL. */
static struct spent *spent(struct sq_store *st, const char *hash, int64_t now_ms)
{
	for (int i = 0; i < SPENT_MAX; i++) {
		struct spent *e = &st->spent[i];
		if (e->hash[0] && e->expires_ms <= now_ms)
			e->hash[0] = '\0';
		if (e->hash[0] && !strcmp(e->hash, hash))
			return e;
	}
	return NULL;
}

/* Under the lock: remember a ticket that could not be deleted.  When every
 * slot holds a live one, the one that expires first gives way. */
static void remember_spent(struct sq_store *st, const char *hash, int64_t expires_ms)
{
	struct spent *slot = &st->spent[0];

	for (int i = 0; i < SPENT_MAX; i++) {
		struct spent *e = &st->spent[i];
		if (!e->hash[0]) {
			slot = e;
			break;
		}
		if (e->expires_ms < slot->expires_ms)
			slot = e;
	}
	snprintf(slot->hash, sizeof(slot->hash), "%s", hash);
	slot->expires_ms = expires_ms;
}

int sq_ticket_take(struct sq_store *st, const char *hash, int64_t now_ms, struct brk_ticket *out)
{
	struct spent *e;
	sqlite3_stmt *s;
	int rc = -ENOENT, found = 0;

	LOCK(st);
	if ((e = spent(st, hash, now_ms)) != NULL) {
		/* Presented before: whatever the store still holds, it is used. */
		if (exec_stmt(st, q(st, "DELETE FROM tickets WHERE hash = ?", "s", hash)) == 0)
			e->hash[0] = '\0';
		UNLOCK(st);
		return -ENOENT;
	}
	s = q(st,
	      "SELECT session_id, user_name, client_addr, expires_ms, sealed FROM tickets"
	      " WHERE hash = ?",
	      "s", hash);
	if (s && sqlite3_step(s) == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		out->session_id = sqlite3_column_int64(s, 0);
		col_text(s, 1, out->user, sizeof(out->user));
		col_text(s, 2, out->client_addr, sizeof(out->client_addr));
		out->expires_ms = sqlite3_column_int64(s, 3);
		col_text(s, 4, out->sealed, sizeof(out->sealed));
		found = 1;
		rc = out->expires_ms > now_ms ? 0 : -ENOENT;
	}
	stmt_done(st, s);
	/* Single use: whatever the outcome, the ticket is gone.  A DELETE that
	 * fails (the database locked, read-only, full) must not let it be taken
	 * again: refuse it now, and remember it until it expires. */
	if (found) {
		if (exec_stmt(st, q(st, "DELETE FROM tickets WHERE hash = ?", "s", hash))) {
			remember_spent(st, hash, out->expires_ms);
			if (rc == 0)
				rc = -EIO;
		} else if (rc == 0 && sqlite3_changes(st->db) == 0) {
			rc = -ENOENT; /* taken meanwhile by another broker */
		}
		if (rc)
			explicit_bzero(out->sealed, sizeof(out->sealed));
	}
	UNLOCK(st);
	return rc;
}

int sq_token_put(struct sq_store *st, const char *hash, const struct brk_token *t)
{
	return write1(st, 0,
		      "INSERT INTO tokens (hash, user_name, admin, expires_ms, sealed)"
		      " VALUES (?, ?, ?, ?, ?)",
		      "ssiis", hash, t->user, (int64_t)t->admin, t->expires_ms, t->sealed);
}

int sq_token_get(struct sq_store *st, const char *hash, int64_t now_ms, struct brk_token *out)
{
	sqlite3_stmt *s;
	int rc;

	LOCK(st);
	s = q(st,
	      "SELECT user_name, admin, expires_ms, sealed FROM tokens"
	      " WHERE hash = ? AND expires_ms > ?",
	      "si", hash, now_ms);
	if ((rc = step_row(st, s)) == 0) {
		rc = -ENOENT;
	} else if (rc == 1) {
		memset(out, 0, sizeof(*out));
		col_text(s, 0, out->user, sizeof(out->user));
		out->admin = sqlite3_column_int(s, 1);
		out->expires_ms = sqlite3_column_int64(s, 2);
		col_text(s, 3, out->sealed, sizeof(out->sealed));
		rc = 0;
	}
	stmt_done(st, s);
	UNLOCK(st);
	return rc;
}

int sq_token_delete(struct sq_store *st, const char *hash)
{
	return write1(st, 0, "DELETE FROM tokens WHERE hash = ?", "s", hash);
}

int sq_purge(struct sq_store *st, int64_t now_ms)
{
	int rc;

	LOCK(st);
	rc = exec_stmt(st, q(st, "DELETE FROM tickets WHERE expires_ms <= ?", "i", now_ms));
	if (rc == 0)
		rc = exec_stmt(st, q(st, "DELETE FROM tokens WHERE expires_ms <= ?", "i", now_ms));
	if (rc == 0)
		rc = exec_stmt(st, q(st, "DELETE FROM throttle WHERE last_ms <= ?", "i",
				     now_ms - BRK_QUIET_PURGE_MS));
	if (rc == 0)
		rc = exec_stmt(st, q(st, "DELETE FROM brokers WHERE seen_ms <= ?", "i",
				     now_ms - BRK_QUIET_PURGE_MS));
	if (rc == 0)
		rc = exec_stmt(st, q(st,
				     "DELETE FROM control WHERE at_ms <= ?"
				     " AND seq < (SELECT MAX(seq) FROM control)",
				     "i", now_ms - BRK_CONTROL_KEEP_MS));
	UNLOCK(st);
	return rc;
}

/* --- login throttling -------------------------------------------------------------- */

int sq_throttle_take(struct sq_store *st, const char *const *keys, size_t n, int limit,
		     int64_t window_ms, int64_t now_ms)
{
	int rc;

	LOCK(st);
	rc = exec_sql(st, "BEGIN IMMEDIATE");
	for (size_t i = 0; rc == 0 && i < n; i++) {
		sqlite3_stmt *s = q(st, BRK_THROTTLE_SQL("?1", "?2", "?3", "?4"), "siii", keys[i],
				    now_ms, (int64_t)limit, window_ms);
		rc = step_row(st, s);
		rc = rc == 1 ? 0 : rc == 0 ? -EUSERS : rc;
		stmt_done(st, s);
	}
	if (rc == 0 && (rc = exec_sql(st, "COMMIT")) == 0) {
		UNLOCK(st);
		return 0;
	}
	rollback(st);
	UNLOCK(st);
	return rc;
}

int sq_broker_beat(struct sq_store *st, const char *id, int64_t now_ms)
{
	return write1(st, 0, BRK_BROKER_BEAT_SQL("?", "?"), "si", id, now_ms);
}

int sq_broker_seen(struct sq_store *st, const char *id, int64_t *seen_ms)
{
	sqlite3_stmt *s;
	int rc;

	LOCK(st);
	s = q(st, "SELECT seen_ms FROM brokers WHERE id = ?", "s", id);
	if ((rc = step_row(st, s)) == 1)
		*seen_ms = sqlite3_column_int64(s, 0);
	stmt_done(st, s);
	UNLOCK(st);
	return rc == 1 ? 0 : rc ? rc : -ENOENT;
}

int sq_throttle_forgive(struct sq_store *st, const char *const *keys, size_t n)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = write1(st, 0, BRK_THROTTLE_FORGIVE_SQL("?"), "s", keys[i]);
	return rc;
}

/* --- control ------------------------------------------------------------------- */

int sq_control_add(struct sq_store *st, int64_t session_id, const char *action, const char *text,
		   int64_t at_ms)
{
	return write1(st, 0, "INSERT INTO control (session_id, action, text, at_ms) VALUES (?, ?, ?, ?)",
		      "issi", session_id, action, text, at_ms);
}

int sq_control_since(struct sq_store *st, int64_t after, struct brk_control **out, size_t *n,
		     int64_t *last)
{
	struct brk_control *v = NULL;
	sqlite3_stmt *s;
	int rc;

	LOCK(st);
	s = q(st, "SELECT COALESCE(MAX(seq), 0) FROM control", "");
	if ((rc = step_row(st, s)) == 1)
		*last = sqlite3_column_int64(s, 0);
	stmt_done(st, s);
	if (rc == 1 && *last > after) {
		s = q(st,
		      "SELECT seq, session_id, at_ms, action, text FROM control WHERE seq > ?"
		      " ORDER BY seq LIMIT ?",
		      "ii", after, (int64_t)BRK_CONTROL_MAX);
		if (s && !(v = calloc(BRK_CONTROL_MAX, sizeof(*v))))
			rc = brk_store_fail(-ENOMEM, "out of memory");
		while (v && (rc = step_row(st, s)) == 1) {
			struct brk_control *e = &v[(*n)++];
			e->seq = sqlite3_column_int64(s, 0);
			e->session_id = sqlite3_column_int64(s, 1);
			e->at_ms = sqlite3_column_int64(s, 2);
			snprintf(e->action, sizeof(e->action), "%s",
				 (const char *)sqlite3_column_text(s, 3));
			snprintf(e->text, sizeof(e->text), "%s",
				 (const char *)sqlite3_column_text(s, 4));
		}
		stmt_done(st, s);
	}
	UNLOCK(st);
	if (rc < 0) {
		free(v);
		*n = 0;
		return rc;
	}
	*out = v;
	return 0;
}
