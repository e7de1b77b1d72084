/*
 * bench-broker - the broker's store and assignment under load.
 *
 *   bench-broker [postgresql://...]
 *
 * Builds a store with 1,000 static backends in one pool and 10,000 live
 * sessions, then measures 1,000 launches of new users (brk_store_assign:
 * the whole transaction, without PAM or HTTP) and 100,000 assignment
 * decisions over 1,000 candidates (brk_assign_pick alone).
 *
 * Always on a SQLite file of its own; with a PostgreSQL URI (libpq's, as
 * the broker's store takes it; an empty database: the schema is made by
 * brk_store_open) on that database too, filled alike, the two stores
 * taking turns by 100 launches so that a change in the machine's load
 * moves both.  Both are filled with raw SQL (one transaction; COPY on
 * PostgreSQL) and then ANALYZEd, as a live site's database is: PostgreSQL
 * analyses by itself once that many rows changed, SQLite through
 * PRAGMA optimize.  Prints key: value lines, and the PostgreSQL/SQLite
 * ratios.
 */
#include <errno.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

#define HOSTS	 1000
#define SESSIONS 10000
#define LAUNCHES 1000
#define TURN	 100 /* launches on one store before the other's turn */

struct bench_store {
	const char *name; /* in the output */
	struct brk_store *st;
	double lat[LAUNCHES];
};

static char names[HOSTS][24];

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v; its p50 and p99 in ms. */
static void percentiles(double *v, int n, double *p50, double *p99)
{
	qsort(v, n, sizeof(*v), cmp);
	*p50 = v[n / 2] / 1000;
	*p99 = v[n * 99 / 100] / 1000;
}

static void report(const char *name, double *v, int n)
{
	double p50, p99;

	percentiles(v, n, &p50, &p99);
	printf("%s_p50_ms: %.3f\n%s_p99_ms: %.3f\n", name, p50, name, p99);
}

/* The pool "big" on all hosts, 20 seats each. */
static int put_pool(struct brk_store *st, const char *hosts)
{
	struct brk_pool p = { 0 };
	char err[512];
	int rc;

	pt_conf_pool_init(&p.c, "big");
	if (pt_conf_pool_set(&p.c, "driver", "static", err, sizeof(err)) ||
	    pt_conf_pool_set(&p.c, "hosts", hosts, err, sizeof(err)) ||
	    pt_conf_pool_set(&p.c, "max_sessions_per_host", "20", err, sizeof(err))) {
		fprintf(stderr, "bench-broker: pool: %s\n", err);
		brk_pool_clear(&p);
		return -1;
	}
	rc = brk_store_pool_put(st, &p, 1);
	if (rc)
		fprintf(stderr, "bench-broker: %s\n", brk_store_error(st));
	brk_pool_clear(&p);
	return rc ? -1 : 0;
}

static int sq_exec(sqlite3 *db, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		fprintf(stderr, "bench-broker: sqlite: %s: %s\n", sql, msg ? msg : "?");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

/* 1,000 host rows and 10,000 live sessions spread over them, in one go. */
static int fill_sqlite(const char *path)
{
	sqlite3 *db;
	int rc = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK) {
		fprintf(stderr, "bench-broker: %s: %s\n", path, sqlite3_errmsg(db));
		sqlite3_close(db);
		return -1;
	}
	if (sq_exec(db, "BEGIN"))
		goto out;
	for (int i = 0; i < HOSTS; i++) {
		char sql[200];
		snprintf(sql, sizeof(sql),
			 "INSERT INTO hosts (name, address) VALUES ('%.23s', '%.23s')", names[i],
			 names[i]);
		if (sq_exec(db, sql))
			goto out;
	}
	for (int i = 0; i < SESSIONS; i++) {
		char sql[300];
		snprintf(sql, sizeof(sql),
			 "INSERT INTO sessions (pool, user_name, host, backend, state, created_ms,"
			 " updated_ms) VALUES ('big', 'seed%d', '%.23s', '%.23s', 2, 1, 1)",
			 i, names[i % HOSTS], names[i % HOSTS]);
		if (sq_exec(db, sql))
			goto out;
	}
	if (sq_exec(db, "COMMIT") || sq_exec(db, "ANALYZE"))
		goto out;
	rc = 0;
out:
	sqlite3_close(db);
	return rc;
}

static int pg_ok(PGconn *c, PGresult *r, const char *what)
{
	ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || s == PGRES_COPY_IN;

	if (!ok)
		fprintf(stderr, "bench-broker: postgresql: %s: %s", what, PQerrorMessage(c));
	PQclear(r);
	return ok ? 0 : -1;
}

/* COPY rows (text format, one per line) into table (columns). */
static int pg_copy(PGconn *c, const char *into, const char *rows, size_t len)
{
	char sql[200];

	snprintf(sql, sizeof(sql), "COPY %s FROM STDIN", into);
	if (pg_ok(c, PQexec(c, sql), sql))
		return -1;
	if (PQputCopyData(c, rows, (int)len) != 1 || PQputCopyEnd(c, NULL) != 1) {
		fprintf(stderr, "bench-broker: postgresql: COPY: %s", PQerrorMessage(c));
		return -1;
	}
	return pg_ok(c, PQgetResult(c), "COPY");
}

/* The same rows as fill_sqlite's, on an empty database. */
static int fill_pg(const char *uri)
{
	PGconn *c = PQconnectdb(uri);
	PGresult *r;
	size_t cap = (size_t)SESSIONS * 96, o = 0;
	char *rows = malloc(cap);
	int rc = -1;

	if (!rows || PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "bench-broker: postgresql: %s", PQerrorMessage(c));
		goto out;
	}
	r = PQexec(c, "SELECT (SELECT COUNT(*) FROM sessions) + (SELECT COUNT(*) FROM hosts)");
	if (PQresultStatus(r) != PGRES_TUPLES_OK || strcmp(PQgetvalue(r, 0, 0), "0")) {
		fprintf(stderr, "bench-broker: postgresql: the database must be empty (no "
				"sessions, no hosts)\n");
		PQclear(r);
		goto out;
	}
	PQclear(r);
	if (pg_ok(c, PQexec(c, "BEGIN"), "BEGIN"))
		goto out;
	for (int i = 0; i < HOSTS; i++)
		o += (size_t)snprintf(rows + o, cap - o, "%s\t%s\n", names[i], names[i]);
	if (pg_copy(c, "hosts (name, address)", rows, o))
		goto out;
	o = 0;
	for (int i = 0; i < SESSIONS; i++)
		o += (size_t)snprintf(rows + o, cap - o, "big\tseed%d\t%s\t%s\t2\t1\t1\n", i,
				      names[i % HOSTS], names[i % HOSTS]);
	if (pg_copy(c, "sessions (pool, user_name, host, backend, state, created_ms, updated_ms)",
		    rows, o) ||
	    pg_ok(c, PQexec(c, "COMMIT"), "COMMIT") ||
	    pg_ok(c, PQexec(c, "ANALYZE hosts, sessions"), "ANALYZE"))
		goto out;
	rc = 0;
out:
	free(rows);
	PQfinish(c);
	return rc;
}

/* Launches from..to-1 of new users on one store. */
static int launches(struct bench_store *b, int from, int to)
{
	struct brk_session s;
	int reconnect;

	for (int i = from; i < to; i++) {
		char user[32];
		struct brk_assign_req req = {
			.pool = "big", .user = user, .client_addr = "", .now_ms = 1000
		};
		snprintf(user, sizeof(user), "new%d", i);
		double t0 = now_us();
		int rc = brk_store_assign(b->st, &req, &s, &reconnect);
		b->lat[i] = now_us() - t0;
		if (rc || reconnect) {
			fprintf(stderr, "bench-broker: %s: assign: %s\n", b->name,
				rc ? brk_store_error(b->st) : "a reconnect");
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/bench-broker-XXXXXX", uri[128], path[96], err[512], *hosts;
	static struct bench_store b[2] = { { .name = "sqlite" }, { .name = "pg" } };
	static double dec[100000];
	static struct brk_candidate c[HOSTS];
	const char *pg_uri = argc > 1 ? argv[1] : NULL;
	int nb = pg_uri ? 2 : 1, rc = 1;
	size_t o = 0;

	if (argc > 2 || (pg_uri && strncmp(pg_uri, "postgresql:", 11))) {
		fprintf(stderr, "usage: bench-broker [postgresql://...]\n");
		return 2;
	}
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/portico.db", dir);
	snprintf(uri, sizeof(uri), "sqlite:%s", path);
	hosts = malloc(HOSTS * 32);
	if (!hosts)
		return 1;
	for (int i = 0; i < HOSTS; i++) {
		snprintf(names[i], sizeof(names[i]), "10.%d.%d.%d:5901", i / 65536, i / 256 % 256,
			 i % 256);
		o += (size_t)snprintf(hosts + o, HOSTS * 32 - o, "%s%.23s", i ? "," : "", names[i]);
	}
	for (int k = 0; k < nb; k++) {
		double t0 = now_us();
		b[k].st = brk_store_open(k ? pg_uri : uri, err, sizeof(err));
		if (!b[k].st) {
			fprintf(stderr, "bench-broker: %s: %s\n", b[k].name, err);
			goto out;
		}
		if (put_pool(b[k].st, hosts) || (k ? fill_pg(pg_uri) : fill_sqlite(path)))
			goto out;
		printf("store %s: %d hosts, %d live sessions, filled in %.1f s\n",
		       k ? "PostgreSQL" : "SQLite (WAL)", HOSTS, SESSIONS, (now_us() - t0) / 1e6);
	}
	/* The stores take turns: TURN launches on each, in alternating order. */
	for (int i = 0; i < LAUNCHES; i += TURN) {
		for (int j = 0; j < nb; j++) {
			int k = (i / TURN + j) % nb;
			if (launches(&b[k], i, i + TURN))
				goto out;
		}
	}
	printf("launches: %d new users each, %d live sessions at the end\n", LAUNCHES,
	       SESSIONS + LAUNCHES);
	if (nb == 1) {
		report("launch", b[0].lat, LAUNCHES);
	} else {
		double p50[2], p99[2];
		for (int k = 0; k < nb; k++) {
			percentiles(b[k].lat, LAUNCHES, &p50[k], &p99[k]);
			printf("launch_%s_p50_ms: %.3f\nlaunch_%s_p99_ms: %.3f\n", b[k].name,
			       p50[k], b[k].name, p99[k]);
		}
		printf("launch_pg_over_sqlite_p50: %.2f\nlaunch_pg_over_sqlite_p99: %.2f\n",
		       p50[1] / p50[0], p99[1] / p99[0]);
	}

	for (int i = 0; i < HOSTS; i++) {
		c[i].host = names[i];
		c[i].capacity = 20;
		c[i].sessions = 10 + (i * 7919) % 10;
	}
	int64_t cursor = -1;
	for (int i = 0; i < 100000; i++) {
		double t0 = now_us();
		int pick = brk_assign_pick(i % 3, c, HOSTS, &cursor, names[i % HOSTS]);
		dec[i] = now_us() - t0;
		c[pick].sessions = 10 + (c[pick].sessions + 1) % 10;
	}
	report("decision", dec, 100000);
	rc = 0;
out:
	for (int k = 0; k < nb; k++)
		brk_store_close(b[k].st);
	free(hosts);
	unlink(path);
	char wal[128];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	rmdir(dir);
	return rc;
}
