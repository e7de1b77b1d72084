/* test_store.c - the store on a real database: what the API tests cannot
 * reach (schema versions, reopening, races between brokers).
 *
 * One suite, two stores: suite "store" runs on SQLite (a file of its own
 * per test), and on PostgreSQL when PORTICO_TEST_PG_URL names a database
 * (tests/integration/test_store_pg.sh starts a server and runs this suite
 * against it, one test at a time: they share the database, emptied before
 * each).  Suite "store_sqlite" is what only a file has (modes, foreign
 * files, locks, snapshots). */
#include <criterion/criterion.h>
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "store_impl.h" /* BRK_SCHEMA_VERSION */

static char dir[64], uri[1024], path[128];
static const char *pg_url;

/* SQL straight to the database under test, as another program would. */
static void raw_sql(const char *sql)
{
	if (pg_url) {
		PGconn *c = PQconnectdb(pg_url);
		cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
		PGresult *r = PQexec(c, sql);
		cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK ||
				  PQresultStatus(r) == PGRES_TUPLES_OK,
			  "%s: %s", sql, PQerrorMessage(c));
		PQclear(r);
		PQfinish(c);
	} else {
		sqlite3 *db;
		cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
		cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql,
			     sqlite3_errmsg(db));
		sqlite3_close(db);
	}
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/portico-store-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/portico.db", dir);
	pg_url = getenv("PORTICO_TEST_PG_URL");
	if (pg_url && *pg_url) {
		snprintf(uri, sizeof(uri), "%s", pg_url);
		raw_sql("SET client_min_messages = warning;"
			" DROP TABLE IF EXISTS meta, pools, hosts, sessions, tickets, tokens, throttle, brokers,"
			" control CASCADE");
	} else {
		pg_url = NULL;
		snprintf(uri, sizeof(uri), "sqlite:%s", path);
	}
}

static void setup_sqlite(void)
{
	setup();
	pg_url = NULL;
	snprintf(uri, sizeof(uri), "sqlite:%s", path);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	(void)!system(cmd);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(store_sqlite, .init = setup_sqlite, .fini = teardown, .timeout = 30);

static struct brk_store *open_ok(void)
{
	char err[512];
	struct brk_store *st = brk_store_open(uri, err, sizeof(err));

	cr_assert_not_null(st, "%s", err);
	return st;
}

static void put_static_pool(struct brk_store *st, const char *name, int per_host)
{
	struct brk_pool p = { 0 };
	char err[256], n[16];

	cr_assert_eq(pt_conf_pool_init(&p.c, name), 0);
	cr_assert_eq(pt_conf_pool_set(&p.c, "driver", "static", err, sizeof(err)), 0);
	cr_assert_eq(
		pt_conf_pool_set(&p.c, "hosts", "10.0.0.1:5901, 10.0.0.2:5901", err, sizeof(err)),
		0);
	snprintf(n, sizeof(n), "%d", per_host);
	cr_assert_eq(pt_conf_pool_set(&p.c, "max_sessions_per_host", n, err, sizeof(err)), 0);
	cr_assert_eq(brk_store_pool_put(st, &p, 1), 0);
	cr_assert_eq(brk_store_pool_put(st, &p, 1), -EEXIST);
	brk_pool_clear(&p);
}

Test(store, everything_survives_reopening)
{
	struct brk_store *st = open_ok();
	struct brk_assign_req req = {
		.pool = "office", .user = "alice", .client_addr = "", .now_ms = 1000
	};
	struct brk_session s, again;
	struct brk_ticket t = { .session_id = 0, .user = "alice", .expires_ms = 5000 };
	struct brk_token k = { .user = "alice", .admin = 1, .expires_ms = 5000 };
	struct brk_pool p;
	int reconnect;

	put_static_pool(st, "office", 1);
	cr_assert_eq(brk_store_assign(st, &req, &s, &reconnect), 0);
	cr_assert_eq(reconnect, 0);
	cr_assert_eq(s.state, BRK_READY);
	t.session_id = s.id;
	cr_assert_eq(brk_store_ticket_put(st, "aa", &t), 0);
	cr_assert_eq(brk_store_token_put(st, "bb", &k), 0);
	brk_store_close(st);

	st = open_ok();
	cr_assert_eq(brk_store_pool_get(st, "office", &p), 0);
	cr_assert_eq(p.c.driver, PT_DRIVER_STATIC);
	cr_assert_eq(p.c.hosts.n, 2);
	cr_assert_eq(p.c.max_sessions_per_host, 1);
	brk_pool_clear(&p);
	cr_assert_eq(brk_store_assign(st, &req, &again, &reconnect), 0);
	cr_assert_eq(reconnect, 1);
	cr_assert_eq(again.id, s.id);
	cr_assert_eq(brk_store_token_get(st, "bb", 2000, &k), 0);
	cr_assert_eq(k.admin, 1);
	cr_assert_eq(brk_store_token_get(st, "bb", 6000, &k), -ENOENT, "expired token accepted");
	cr_assert_eq(brk_store_ticket_take(st, "aa", 2000, &t), 0);
	cr_assert_eq(t.session_id, s.id);
	cr_assert_eq(brk_store_ticket_take(st, "aa", 2000, &t), -ENOENT, "ticket used twice");
	brk_store_close(st);
}

Test(store, capacity_user_limit_and_drain)
{
	struct brk_store *st = open_ok();
	struct brk_session s;
	char user[16];
	int reconnect;

	put_static_pool(st, "office", 1);
	for (int i = 0; i < 3; i++) {
		struct brk_assign_req req = { .pool = "office", .user = user, .now_ms = 1000 };
		snprintf(user, sizeof(user), "u%d", i);
		cr_assert_eq(brk_store_assign(st, &req, &s, &reconnect), i < 2 ? 0 : -ENOSPC,
			     "user %d", i);
	}
	struct brk_assign_req gone = { .pool = "nosuch", .user = "u0", .now_ms = 1000 };
	cr_assert_eq(brk_store_assign(st, &gone, &s, &reconnect), -ENOENT);
	/* A drained host takes reconnects, never new sessions. */
	int ended = -1;
	cr_assert_eq(brk_store_session_end(st, 2, "logoff", 2000, &ended), 0);
	cr_assert_eq(ended, 1, "the first end ended it");
	/* Another broker's sweep finds it ended: 0, and not ended by it. */
	cr_assert_eq(brk_store_session_end(st, 2, "idle timeout", 2100, &ended), 0);
	cr_assert_eq(ended, 0, "ended twice");
	cr_assert_eq(brk_store_session_end(st, 999, "idle timeout", 2100, &ended), -ENOENT);
	cr_assert_eq(brk_store_host_set_drained(st, "10.0.0.2:5901", 1), 0);
	struct brk_assign_req u5 = { .pool = "office", .user = "u5", .now_ms = 3000 };
	cr_assert_eq(brk_store_assign(st, &u5, &s, &reconnect), -ENOSPC);
	struct brk_assign_req u0 = { .pool = "office", .user = "u0", .now_ms = 3000 };
	cr_assert_eq(brk_store_assign(st, &u0, &s, &reconnect), 0);
	cr_assert_eq(reconnect, 1);
	cr_assert_eq(brk_store_host_set_drained(st, "no-such-host", 1), -ENOENT);
	brk_store_close(st);
}

Test(store, timeouts_end_sessions_with_their_reason)
{
	struct brk_store *st = open_ok();
	struct brk_pool p;
	struct brk_session s, *ended;
	const char **why;
	size_t n;
	int reconnect;
	char err[128];

	put_static_pool(st, "office", 5);
	cr_assert_eq(brk_store_pool_get(st, "office", &p), 0);
	cr_assert_eq(pt_conf_pool_set(&p.c, "disconnect_timeout", "10s", err, sizeof(err)), 0);
	cr_assert_eq(pt_conf_pool_set(&p.c, "idle_timeout", "1m", err, sizeof(err)), 0);
	cr_assert_eq(brk_store_pool_put(st, &p, 0), 0);
	brk_pool_clear(&p);
	struct brk_assign_req a = { .pool = "office", .user = "a", .now_ms = 0 };
	struct brk_assign_req b = { .pool = "office", .user = "b", .now_ms = 0 };
	cr_assert_eq(brk_store_assign(st, &a, &s, &reconnect), 0);
	cr_assert_eq(brk_store_session_event(st, s.id, "disconnect", 1000, 0, 0), 0);
	cr_assert_eq(brk_store_assign(st, &b, &s, &reconnect), 0);
	cr_assert_eq(brk_store_session_event(st, s.id, "input", 30000, 0, 0), 0);

	cr_assert_eq(brk_store_session_expired(st, 5000, &ended, &why, &n), 0);
	cr_assert_eq(n, 0);
	free(ended);
	free(why);
	cr_assert_eq(brk_store_session_expired(st, 12000, &ended, &why, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_str_eq(ended[0].user, "a");
	cr_assert_str_eq(why[0], "disconnect timeout");
	free(ended);
	free(why);
	cr_assert_eq(brk_store_session_expired(st, 91000, &ended, &why, &n), 0);
	cr_assert_eq(n, 2);
	free(ended);
	free(why);
	brk_store_close(st);
}

/* A gateway that restarts lost the relays it held: the sessions it last
 * reported connected before its start are disconnected, no others. */
Test(store, a_gateway_started_disconnects_only_its_own_earlier_sessions)
{
	struct brk_store *st = open_ok();
	struct brk_session s[4], got;
	const char *users[4] = { "a", "b", "c", "d" };
	int reconnect, n;

	put_static_pool(st, "office", 5);
	for (int i = 0; i < 4; i++) {
		struct brk_assign_req r = { .pool = "office", .user = users[i], .now_ms = 0 };
		cr_assert_eq(brk_store_assign(st, &r, &s[i], &reconnect), 0);
	}
	/* a, b through gw1 (b after gw1's start), c through gw2, d never. */
	cr_assert_eq(brk_store_session_event(st, s[0].id, "connect", 1000, 0, 0), 0);
	cr_assert_eq(brk_store_session_gateway(st, s[0].id, "gw1"), 0);
	cr_assert_eq(brk_store_session_event(st, s[1].id, "connect", 6000, 0, 0), 0);
	cr_assert_eq(brk_store_session_gateway(st, s[1].id, "gw1"), 0);
	cr_assert_eq(brk_store_session_event(st, s[2].id, "connect", 1000, 0, 0), 0);
	cr_assert_eq(brk_store_session_gateway(st, s[2].id, "gw2"), 0);

	cr_assert_eq(brk_store_gateway_started(st, "gw1", 5000, &n), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(brk_store_session_get(st, s[0].id, &got), 0);
	cr_assert_eq(got.state, BRK_DISCONNECTED);
	cr_assert_eq(got.disconnected_ms, 5000);
	cr_assert_eq(brk_store_session_get(st, s[1].id, &got), 0);
	cr_assert_eq(got.state, BRK_ACTIVE);
	cr_assert_eq(brk_store_session_get(st, s[2].id, &got), 0);
	cr_assert_eq(got.state, BRK_ACTIVE);
	cr_assert_eq(brk_store_session_get(st, s[3].id, &got), 0);
	cr_assert_eq(got.state, BRK_READY);
	/* Again: nothing left to disconnect; an unknown gateway: nothing. */
	cr_assert_eq(brk_store_gateway_started(st, "gw1", 5000, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(brk_store_gateway_started(st, "", 9000, &n), 0);
	cr_assert_eq(n, 0);
	/* Ended sessions keep their gateway out of it. */
	cr_assert_eq(brk_store_session_end(st, s[2].id, "logoff", 7000, NULL), 0);
	cr_assert_eq(brk_store_session_gateway(st, s[2].id, "gw1"), 0);
	cr_assert_eq(brk_store_gateway_started(st, "gw2", 9000, &n), 0);
	cr_assert_eq(n, 0);
	brk_store_close(st);
}

/* Control rows: numbered in order, read after a seq, kept 10 minutes, the
 * newest always (the numbering never goes back). */
Test(store, control_rows)
{
	struct brk_store *st = open_ok();
	struct brk_control *v;
	size_t n;
	int64_t last;

	cr_assert_eq(brk_store_control_since(st, 0, &v, &n, &last), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(last, 0);
	free(v);
	cr_assert_eq(brk_store_control_add(st, 7, "disconnect", "by carol", 1000), 0);
	cr_assert_eq(brk_store_control_add(st, 8, "message", "hello\nworld", 2000), 0);
	cr_assert_eq(brk_store_control_since(st, 0, &v, &n, &last), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(v[0].session_id, 7);
	cr_assert_str_eq(v[0].action, "disconnect");
	cr_assert_str_eq(v[1].text, "hello\nworld");
	cr_assert_eq(last, v[1].seq);
	cr_assert_gt(v[1].seq, v[0].seq);
	int64_t first = v[0].seq;
	free(v);
	cr_assert_eq(brk_store_control_since(st, first, &v, &n, &last), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].session_id, 8);
	free(v);
	/* Nothing after the newest. */
	cr_assert_eq(brk_store_control_since(st, last, &v, &n, &last), 0);
	cr_assert_eq(n, 0);
	free(v);
	/* Old rows go, the newest stays: the next one is numbered after it. */
	cr_assert_eq(brk_store_purge(st, 2000 + 11 * 60 * 1000), 0);
	cr_assert_eq(brk_store_control_since(st, 0, &v, &n, &last), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(v[0].session_id, 8);
	free(v);
	cr_assert_eq(brk_store_control_add(st, 9, "logoff", "", 3000), 0);
	cr_assert_eq(brk_store_control_since(st, 0, &v, &n, &last), 0);
	cr_assert_eq(n, 2);
	cr_assert_gt(v[1].seq, v[0].seq);
	free(v);
	brk_store_close(st);
}

Test(store, a_newer_schema_is_refused)
{
	char err[512];

	brk_store_close(open_ok());
	raw_sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
	cr_assert_null(brk_store_open(uri, err, sizeof(err)));
	char want[100], back[100];
	snprintf(want, sizeof(want), "schema version 99 is newer than this broker's (%d)",
		 BRK_SCHEMA_VERSION);
	cr_assert(strstr(err, want) != NULL, "got '%s'", err);
	snprintf(back, sizeof(back), "UPDATE meta SET value = '%d' WHERE key = 'schema_version'",
		 BRK_SCHEMA_VERSION);
	raw_sql(back);
	brk_store_close(open_ok());
}

/* A database of version 3 (before the live-session index) is migrated. */
Test(store, an_older_schema_is_migrated)
{
	struct brk_store *st = open_ok();
	struct brk_assign_req req = { .pool = "office", .user = "alice", .now_ms = 1000 };
	struct brk_session s;
	int reconnect;

	put_static_pool(st, "office", 2);
	cr_assert_eq(brk_store_assign(st, &req, &s, &reconnect), 0);
	brk_store_close(st);
	raw_sql("DROP INDEX sessions_live_user");
	raw_sql("DROP TABLE throttle");
	raw_sql("DROP TABLE brokers");
	raw_sql("ALTER TABLE sessions DROP COLUMN starter");
	raw_sql("DROP TABLE control");
	raw_sql("UPDATE meta SET value = '3' WHERE key = 'schema_version'");
	brk_store_close(open_ok());
	/* The index is back: a second live row for alice is refused (on
	 * PostgreSQL, a block that fails unless the insert does). */
	if (pg_url) {
		raw_sql("DO $$ BEGIN INSERT INTO sessions (pool, user_name, host, state, created_ms,"
			" updated_ms) VALUES ('office', 'alice', 'x', 1, 1, 1);"
			" RAISE EXCEPTION 'a second live session for alice was inserted';"
			" EXCEPTION WHEN unique_violation THEN NULL; END $$");
	} else {
		sqlite3 *db;
		cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
		cr_assert_eq(sqlite3_exec(db,
					  "INSERT INTO sessions (pool, user_name, host, state,"
					  " created_ms, updated_ms) VALUES ('office', 'alice', 'x',"
					  " 1, 1, 1)",
					  NULL, NULL, NULL),
			     SQLITE_CONSTRAINT, "a second live session for alice was inserted");
		sqlite3_close(db);
	}
}

Test(store, uris_it_cannot_use_are_refused)
{
	char err[512];

	cr_assert_null(brk_store_open("mysql://x/y", err, sizeof(err)));
	cr_assert(strstr(err, "expected sqlite:/path/to/file.db or postgresql://") != NULL,
		  "got '%s'", err);
	cr_assert_null(brk_store_open("sqlite:", err, sizeof(err)));
	cr_assert(strstr(err, "expected sqlite:/path/to/file.db") != NULL, "got '%s'", err);
	cr_assert_null(brk_store_open("postgresql://portico:hunter2@/portico", err, sizeof(err)));
	cr_assert(strstr(err, "a password in the URI") != NULL, "got '%s'", err);
	cr_assert(strstr(err, "hunter2") == NULL, "the password is repeated: '%s'", err);
	cr_assert_null(brk_store_open("postgresql:///portico?password=hunter2", err, sizeof(err)));
	cr_assert(strstr(err, "a password in the URI") != NULL, "got '%s'", err);
	cr_assert_null(brk_store_open("postgresql://[::1/portico", err, sizeof(err)));
	cr_assert(strstr(err, "not a PostgreSQL URI") != NULL, "got '%s'", err);
	cr_assert_null(brk_store_open("postgresql:///portico?nosuchoption=1", err, sizeof(err)));
	cr_assert(strstr(err, "not a PostgreSQL URI") != NULL, "got '%s'", err);
	/* Nobody listens there: a clear error, at once. */
	cr_assert_null(brk_store_open("postgresql:///portico?host=/nonexistent", err, sizeof(err)));
	cr_assert(strstr(err, "cannot connect to PostgreSQL") != NULL, "got '%s'", err);
}

Test(store_sqlite, a_file_that_is_not_a_database_is_refused)
{
	char err[512];
	FILE *f = fopen(path, "w");

	fputs("this is not a database, it is a long enough line of text to look like a file\n", f);
	fclose(f);
	cr_assert_null(brk_store_open(uri, err, sizeof(err)));
	cr_assert(strstr(err, path) != NULL, "got '%s'", err);
}

/* --- two brokers on one database ------------------------------------------- */

struct racer {
	struct brk_store *st;
	int i, rc, reconnect;
	struct brk_session s;
	const char *user;
	const char *ticket;
	pthread_barrier_t *go;
};

static void *launch(void *arg)
{
	struct racer *r = arg;
	char user[16];
	struct brk_assign_req req = { .pool = "office", .user = r->user, .now_ms = 1000 };

	if (!r->user) {
		snprintf(user, sizeof(user), "u%d", r->i);
		req.user = user;
	}
	pthread_barrier_wait(r->go);
	r->rc = brk_store_assign(r->st, &req, &r->s, &r->reconnect);
	return NULL;
}

static void *throttle(void *arg)
{
	struct racer *r = arg;
	const char *keys[2] = { r->i % 3 ? "addr:10.0.0.1" : "addr:10.0.0.2", r->user };

	pthread_barrier_wait(r->go);
	r->rc = brk_store_throttle_take(r->st, keys, 2, 5, 60000, 1000);
	return NULL;
}

static void *take_ticket(void *arg)
{
	struct racer *r = arg;
	struct brk_ticket t;

	pthread_barrier_wait(r->go);
	r->rc = brk_store_ticket_take(r->st, r->ticket, 2000, &t);
	return NULL;
}

/* n threads, half on each of two handles (two brokers), all at once. */
static void race(struct racer *r, int n, struct brk_store *a, struct brk_store *b,
		 void *(*fn)(void *), const char *user, const char *ticket)
{
	pthread_t th[200];
	pthread_barrier_t go;

	cr_assert_leq(n, 200);
	pthread_barrier_init(&go, NULL, (unsigned)n);
	for (int i = 0; i < n; i++) {
		r[i] = (struct racer){ .st = i % 2 ? b : a, .i = i, .user = user, .ticket = ticket,
				       .go = &go };
		cr_assert_eq(pthread_create(&th[i], NULL, fn, &r[i]), 0);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
}

Test(store, two_brokers_give_200_launches_into_100_seats_exactly_100)
{
	struct brk_store *a = open_ok(), *b = open_ok();
	static struct racer r[200];
	struct brk_session_filter f = { .state = -2 };
	struct brk_session *live;
	size_t n;
	int ok = 0, full = 0;

	put_static_pool(a, "office", 50); /* two hosts of 50 */
	race(r, 200, a, b, launch, NULL, NULL);
	for (int i = 0; i < 200; i++) {
		ok += r[i].rc == 0;
		full += r[i].rc == -ENOSPC;
		cr_assert(r[i].rc == 0 || r[i].rc == -ENOSPC, "launch %d: %d (%s)", i, r[i].rc,
			  strerror(-r[i].rc));
	}
	cr_assert_eq(ok, 100, "%d launches given a seat", ok);
	cr_assert_eq(full, 100);
	cr_assert_eq(brk_store_session_list(b, &f, &live, &n), 0);
	cr_assert_eq(n, 100);
	int on1 = 0;
	for (size_t i = 0; i < n; i++)
		on1 += !strcmp(live[i].host, "10.0.0.1:5901");
	cr_assert_eq(on1, 50, "%d of 100 on the first host", on1);
	free(live);
	brk_store_close(a);
	brk_store_close(b);
}

Test(store, one_user_launching_on_two_brokers_at_once_gets_one_session)
{
	struct brk_store *a = open_ok(), *b = open_ok();
	static struct racer r[32];
	int fresh = 0;

	put_static_pool(a, "office", 50);
	race(r, 32, a, b, launch, "alice", NULL);
	for (int i = 0; i < 32; i++) {
		cr_assert_eq(r[i].rc, 0, "launch %d: %d", i, r[i].rc);
		cr_assert_eq(r[i].s.id, r[0].s.id, "launch %d got session %lld, not %lld", i,
			     (long long)r[i].s.id, (long long)r[0].s.id);
		fresh += !r[i].reconnect;
	}
	cr_assert_eq(fresh, 1, "%d launches made a session", fresh);
	brk_store_close(a);
	brk_store_close(b);
}

Test(store, sixty_four_guesses_on_two_brokers_give_five_attempts)
{
	struct brk_store *a = open_ok(), *b = open_ok();
	static struct racer r[64];
	const char *alice[2] = { "addr:10.0.0.3", "user:alice" };
	int through = 0;

	race(r, 64, a, b, throttle, "user:alice", NULL);
	for (int i = 0; i < 64; i++) {
		cr_assert(r[i].rc == 0 || r[i].rc == -EUSERS, "attempt %d: %d", i, r[i].rc);
		through += r[i].rc == 0;
	}
	cr_assert_eq(through, 5, "%d of 64 attempts went through", through);
	/* Blocked for the window from the last failure, then a fresh start. */
	cr_assert_eq(brk_store_throttle_take(a, alice, 2, 5, 60000, 60999), -EUSERS);
	cr_assert_eq(brk_store_throttle_take(b, alice, 2, 5, 60000, 61000), 0);
	/* A success takes its failure back: four more go through, not five. */
	const char *carol[2] = { "addr:10.0.0.4", "user:carol" };
	for (int i = 0; i < 5; i++)
		cr_assert_eq(brk_store_throttle_take(a, carol, 2, 5, 60000, 70000), 0);
	cr_assert_eq(brk_store_throttle_take(b, carol, 2, 5, 60000, 70000), -EUSERS);
	cr_assert_eq(brk_store_throttle_forgive(b, carol, 2), 0);
	cr_assert_eq(brk_store_throttle_take(a, carol, 2, 5, 60000, 70000), 0);
	cr_assert_eq(brk_store_throttle_take(a, carol, 2, 5, 60000, 70000), -EUSERS);
	/* A blocked key counts nothing for the other key of the attempt. */
	const char *dave[2] = { "addr:10.0.0.4", "user:dave" };
	cr_assert_eq(brk_store_throttle_take(a, dave, 2, 5, 60000, 70000), -EUSERS);
	const char *dave2[2] = { "addr:10.0.0.5", "user:dave" };
	for (int i = 0; i < 5; i++)
		cr_assert_eq(brk_store_throttle_take(b, dave2, 2, 5, 60000, 70000), 0, "%d", i);
	/* Purged a day after the last failure (whatever window a take then
	 * names: here two days, which would still block carol). */
	int64_t later = 70000 + 24LL * 3600 * 1000;
	cr_assert_eq(brk_store_throttle_take(a, carol, 2, 5, 2 * 86400000LL, later), -EUSERS);
	cr_assert_eq(brk_store_purge(a, later), 0);
	cr_assert_eq(brk_store_throttle_take(a, carol, 2, 5, 2 * 86400000LL, later), 0);
	brk_store_close(a);
	brk_store_close(b);
}

Test(store, brokers_are_seen_and_sessions_name_their_starter)
{
	struct brk_store *st = open_ok();
	struct brk_assign_req req = { .pool = "office", .user = "alice", .now_ms = 1000,
				      .broker = "b1:42:cafe" };
	struct brk_session s, again;
	int64_t seen = 0;
	int reconnect;

	cr_assert_eq(brk_store_broker_seen(st, "b1:42:cafe", &seen), -ENOENT);
	cr_assert_eq(brk_store_broker_beat(st, "b1:42:cafe", 1000), 0);
	cr_assert_eq(brk_store_broker_beat(st, "b1:42:cafe", 2000), 0);
	cr_assert_eq(brk_store_broker_seen(st, "b1:42:cafe", &seen), 0);
	cr_assert_eq(seen, 2000);
	put_static_pool(st, "office", 2);
	cr_assert_eq(brk_store_assign(st, &req, &s, &reconnect), 0);
	cr_assert_str_eq(s.starter, "b1:42:cafe");
	cr_assert_eq(brk_store_session_get(st, s.id, &again), 0);
	cr_assert_str_eq(again.starter, "b1:42:cafe");
	/* A broker quiet for a day is forgotten. */
	cr_assert_eq(brk_store_purge(st, 2000 + 24LL * 3600 * 1000), 0);
	cr_assert_eq(brk_store_broker_seen(st, "b1:42:cafe", &seen), -ENOENT);
	brk_store_close(st);
}

Test(store, a_ticket_is_redeemed_once_whichever_broker_gets_it)
{
	struct brk_store *a = open_ok(), *b = open_ok();
	struct brk_ticket t = { .session_id = 7, .user = "alice", .expires_ms = 1000000 };
	static struct racer r[32];
	int taken = 0;

	cr_assert_eq(brk_store_ticket_put(a, "once", &t), 0);
	race(r, 32, a, b, take_ticket, NULL, "once");
	for (int i = 0; i < 32; i++) {
		cr_assert(r[i].rc == 0 || r[i].rc == -ENOENT, "take %d: %d", i, r[i].rc);
		taken += r[i].rc == 0;
	}
	cr_assert_eq(taken, 1, "the ticket was taken %d times", taken);
	brk_store_close(a);
	brk_store_close(b);
}

static int mode_of(const char *suffix)
{
	char p[160];
	struct stat sb;

	snprintf(p, sizeof(p), "%s%s", path, suffix);
	cr_assert_eq(stat(p, &sb), 0, "%s: %s", p, strerror(errno));
	return (int)(sb.st_mode & 0777);
}

Test(store_sqlite, files_are_owner_only_new_or_old)
{
	struct brk_token t = { .user = "alice", .expires_ms = 1 };
	struct brk_store *st;
	sqlite3 *db;

	/* New: whatever the umask, the database and its WAL files are 0600. */
	umask(022);
	st = open_ok();
	cr_assert_eq(brk_store_token_put(st, "h1", &t), 0); /* a write: the WAL is there */
	cr_assert_eq(mode_of(""), 0600, "db is %o", mode_of(""));
	cr_assert_eq(mode_of("-wal"), 0600, "-wal is %o", mode_of("-wal"));
	cr_assert_eq(mode_of("-shm"), 0600, "-shm is %o", mode_of("-shm"));
	cr_assert_eq(umask(022), 022, "the umask is given back");
	brk_store_close(st);

	/* Old: a database an older broker left world-readable, with its WAL. */
	unlink(path);
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(
		sqlite3_exec(db, "PRAGMA journal_mode = WAL; CREATE TABLE x (y)", NULL, NULL, NULL),
		SQLITE_OK);
	cr_assert_eq(mode_of(""), 0644);
	cr_assert_eq(mode_of("-wal"), 0644);
	st = open_ok(); /* while the other connection keeps the WAL open */
	cr_assert_eq(mode_of(""), 0600, "db is %o", mode_of(""));
	cr_assert_eq(mode_of("-wal"), 0600, "-wal is %o", mode_of("-wal"));
	cr_assert_eq(mode_of("-shm"), 0600, "-shm is %o", mode_of("-shm"));
	brk_store_close(st);
	sqlite3_close(db);
}

Test(store_sqlite, a_ticket_whose_delete_fails_is_refused_for_good, .timeout = 60)
{
	struct brk_ticket t = { .session_id = 7, .user = "alice", .expires_ms = 1000000 }, out;
	struct brk_store *st = open_ok();
	sqlite3 *db;

	cr_assert_eq(brk_store_ticket_put(st, "locked", &t), 0);
	cr_assert_eq(brk_store_ticket_put(st, "later", &t), 0);
	/* Another connection holds the write lock: the DELETE fails (after
	 * the store's busy timeout), the SELECT before it does not. */
	cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	cr_assert_eq(brk_store_ticket_take(st, "locked", 1000, &out), -EIO);
	cr_assert_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	/* The row is still there, the ticket is not valid again. */
	cr_assert_eq(brk_store_ticket_take(st, "locked", 2000, &out), -ENOENT);
	cr_assert_eq(brk_store_ticket_take(st, "locked", 3000, &out), -ENOENT);
	/* The store works again for the others. */
	cr_assert_eq(brk_store_ticket_take(st, "later", 3000, &out), 0);
	cr_assert_eq(out.session_id, 7);
	cr_assert_eq(brk_store_ticket_take(st, "later", 3000, &out), -ENOENT);
	brk_store_close(st);
}

/* The fuzzer's reset (fuzz_broker_api.c): an in-memory store put back to
 * a snapshot forgets what came after it, and keeps working. */
Test(store_sqlite, a_snapshot_restored_forgets_what_came_after)
{
	char err[512];
	struct brk_store *st = brk_store_open("sqlite::memory:", err, sizeof(err));
	struct brk_pool p = { 0 };
	void *snap = NULL;
	size_t len = 0;

	cr_assert_not_null(st, "%s", err);
	put_static_pool(st, "before", 1);
	cr_assert_eq(brk_store_snapshot(st, &snap, &len), 0);
	cr_assert_gt(len, 0);
	cr_assert_eq(brk_store_is(st, snap, len), 0); /* not restored yet: cannot tell */
	put_static_pool(st, "after", 1);
	cr_assert_eq(brk_store_pool_get(st, "after", &p), 0);
	brk_pool_clear(&p);
	for (int round = 0; round < 3; round++) {
		cr_assert_eq(brk_store_restore(st, snap, len), 0);
		cr_assert_eq(brk_store_is(st, snap, len), 1, "round %d", round);
		cr_assert_eq(brk_store_pool_get(st, "after", &p), -ENOENT, "round %d", round);
		cr_assert_eq(brk_store_pool_get(st, "before", &p), 0);
		brk_pool_clear(&p);
		cr_assert_eq(brk_store_is(st, snap, len), 1, "reads change nothing");
		put_static_pool(st, "after", 1); /* writable again */
		cr_assert_eq(brk_store_is(st, snap, len), 0, "round %d", round);
	}
	free(snap);
	brk_store_close(st);
}
