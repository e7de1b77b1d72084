/*
 * bench-broker - the broker's store and assignment under load.
 *
 * Builds a store with 1,000 static backends in one pool and 10,000 live
 * sessions, then measures 1,000 launches of new users (brk_store_assign:
 * the whole transaction, without PAM or HTTP) and 100,000 assignment
 * decisions over 1,000 candidates (brk_assign_pick alone).  Prints
 * key: value lines.
 */
#include <errno.h>
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

static void report(const char *name, double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	printf("%s_p50_ms: %.3f\n%s_p99_ms: %.3f\n", name, v[n / 2] / 1000, name,
	       v[n * 99 / 100] / 1000);
}

int main(void)
{
	char dir[] = "/tmp/bench-broker-XXXXXX", uri[128], path[96], err[512], *hosts;
	struct brk_pool p = { 0 };
	struct brk_store *st;
	struct brk_session s;
	static double lat[LAUNCHES], dec[100000];
	static struct brk_candidate c[HOSTS];
	static char names[HOSTS][24];
	sqlite3 *db;
	int reconnect;
	size_t o = 0;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/portico.db", dir);
	snprintf(uri, sizeof(uri), "sqlite:%s", path);
	st = brk_store_open(uri, err, sizeof(err));
	if (!st) {
		fprintf(stderr, "bench-broker: %s\n", err);
		return 1;
	}
	hosts = malloc(HOSTS * 32);
	for (int i = 0; i < HOSTS; i++) {
		snprintf(names[i], sizeof(names[i]), "10.%d.%d.%d:5901", i / 65536, i / 256 % 256,
			 i % 256);
		o += (size_t)snprintf(hosts + o, HOSTS * 32 - o, "%s%.23s", i ? "," : "", names[i]);
	}
	pt_conf_pool_init(&p.c, "big");
	pt_conf_pool_set(&p.c, "driver", "static", err, sizeof(err));
	pt_conf_pool_set(&p.c, "hosts", hosts, err, sizeof(err));
	pt_conf_pool_set(&p.c, "max_sessions_per_host", "20", err, sizeof(err));
	if (brk_store_pool_put(st, &p, 1)) {
		fprintf(stderr, "bench-broker: %s\n", brk_store_error(st));
		return 1;
	}
	/* 10,000 live sessions spread over the hosts, written in one go. */
	sqlite3_open(path, &db);
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (int i = 0; i < HOSTS; i++) {
		char sql[200];
		snprintf(sql, sizeof(sql),
			 "INSERT INTO hosts (name, address) VALUES ('%.23s', '%.23s')", names[i],
			 names[i]);
		sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	for (int i = 0; i < SESSIONS; i++) {
		char sql[300];
		snprintf(sql, sizeof(sql),
			 "INSERT INTO sessions (pool, user_name, host, backend, state, created_ms,"
			 " updated_ms) VALUES ('big', 'seed%d', '%.23s', '%.23s', 2, 1, 1)",
			 i, names[i % HOSTS], names[i % HOSTS]);
		sqlite3_exec(db, sql, NULL, NULL, NULL);
	}
	sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(db);

	for (int i = 0; i < LAUNCHES; i++) {
		char user[32];
		struct brk_assign_req req = {
			.pool = "big", .user = user, .client_addr = "", .now_ms = 1000
		};
		snprintf(user, sizeof(user), "new%d", i);
		double t0 = now_us();
		int rc = brk_store_assign(st, &req, &s, &reconnect);
		lat[i] = now_us() - t0;
		if (rc) {
			fprintf(stderr, "bench-broker: assign: %s\n", strerror(-rc));
			return 1;
		}
	}
	printf("store: %d hosts, %d live sessions (SQLite, WAL)\n", HOSTS, SESSIONS + LAUNCHES);
	report("launch", lat, LAUNCHES);

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

	brk_pool_clear(&p);
	brk_store_close(st);
	free(hosts);
	unlink(path);
	char wal[128];
	snprintf(wal, sizeof(wal), "%s-wal", path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", path);
	unlink(wal);
	rmdir(dir);
	return 0;
}
