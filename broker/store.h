/*
 * store.h - the broker's only door to persistence.
 *
 * Every function blocks (SQL) and must run off the event loop thread; the
 * broker calls them from libuv's thread pool.  A store handle may be used by
 * several threads at once: implementations serialise what needs it.
 *
 * The interface speaks only C types of its own (no SQLite or libpq types):
 * store_sqlite.c and store_pg.c are interchangeable (store.c picks one by
 * the URI; store_impl.h).  Times are
 * milliseconds since the epoch (int64_t).  Functions return 0 or a negative
 * errno: -ENOENT (no such row), -EEXIST (already there), -ENOSPC (no capacity),
 * -EDQUOT (the user's session limit), -EAGAIN (the store cannot be used
 * now: its disk full or failing, read-only, locked; nothing was changed,
 * and the same call works once the cause is gone, without a restart),
 * -EIO (the database failed otherwise).  On PostgreSQL -EAGAIN is also the
 * database unreachable, restarting, read-only (a standby) or a deadlock.  The reason is in
 * brk_store_error(): for -EAGAIN it starts with words for users ("its disk
 * is full").
 */
#ifndef BROKER_STORE_H
#define BROKER_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "portico/conf.h"

struct brk_store;

/* uri: "sqlite:/path/to/file.db" or "postgresql://user@host/db?..." (libpq's
 * own URI; no password in it: ~/.pgpass or passfile=).  Creates the schema
 * when absent, migrates an older one (in one transaction; on PostgreSQL
 * under an advisory lock, so brokers starting together migrate once),
 * refuses a newer one.  A SQLite database and its journal files are made
 * owner-only (0600), new or old.  NULL with err set. */
struct brk_store *brk_store_open(const char *uri, char *err, size_t errlen);
void brk_store_close(struct brk_store *st); /* NULL-safe */
/* The last error text of this thread's most recent failing call. */
const char *brk_store_error(struct brk_store *st);

/* --- pools -------------------------------------------------------------- */

/* A pool row: the [pool] keys plus what only the store knows. */
struct brk_pool {
	struct pt_pool_conf c; /* c.name, c.line unused (0) */
	int drained;	       /* takes reconnects only */
	int from_config;       /* loaded from the file (1) or made by the API (0) */
};

/* Insert or replace; create_only: -EEXIST when it exists. */
int brk_store_pool_put(struct brk_store *st, const struct brk_pool *p, int create_only);
int brk_store_pool_get(struct brk_store *st, const char *name, struct brk_pool *out);
/* All pools, sorted by name; free with brk_pools_free. */
int brk_store_pool_list(struct brk_store *st, struct brk_pool **out, size_t *n);
/* -EBUSY while it has live sessions. */
int brk_store_pool_delete(struct brk_store *st, const char *name);
int brk_store_pool_set_drained(struct brk_store *st, const char *name, int drained);
void brk_pool_clear(struct brk_pool *p); /* frees what the strings own */
void brk_pools_free(struct brk_pool *p, size_t n);

/* --- hosts -------------------------------------------------------------- */

/* A session host (portico-sessiond) or a static backend (name = address). */
struct brk_host {
	char name[128];
	char address[256]; /* where the broker reaches its sessiond (https://h:p) */
	int sessiond;	   /* 1: a registered sessiond, 0: a static backend */
	int drained;
	int64_t last_seen_ms; /* last register or heartbeat */
	int64_t sessions;     /* live sessions the store counts on it */
	int64_t mem_free_kb;  /* from heartbeats */
	double load;	      /* from heartbeats (1-minute load average) */
};

/* A sessiond registers (insert or update address, last_seen). */
int brk_store_host_register(struct brk_store *st, const char *name, const char *address,
			    int64_t now_ms);
int brk_store_host_heartbeat(struct brk_store *st, const char *name, double load,
			     int64_t mem_free_kb, int64_t now_ms);
int brk_store_host_list(struct brk_store *st, struct brk_host **out, size_t *n);
/* One host by name; -ENOENT when it has no row. */
int brk_store_host_get(struct brk_store *st, const char *name, struct brk_host *out);
/* Works for sessiond hosts and static backends alike (a static backend row
 * is created on demand). */
int brk_store_host_set_drained(struct brk_store *st, const char *name, int drained);

/* --- sessions ------------------------------------------------------------ */

enum brk_state {
	BRK_STARTING = 0, /* assigned, sessiond still starting it */
	BRK_READY,	  /* running, nobody connected yet */
	BRK_ACTIVE,	  /* a gateway reports a client connected */
	BRK_DISCONNECTED, /* running, client gone */
	BRK_ENDED,
};

struct brk_session {
	int64_t id;
	char pool[72];
	char user[264];
	char host[128];	   /* host name (sessiond) or backend address (static) */
	char backend[256]; /* host:port or unix:/path the gateway connects to */
	char secret[128];  /* backend VNC password etc.; empty when none */
	char client_addr[64];
	int state; /* enum brk_state */
	int64_t created_ms, updated_ms;
	int64_t connected_ms, disconnected_ms, last_input_ms, ended_ms;
	char end_reason[64]; /* "logoff", "idle timeout", "disconnect timeout", ... */
	int64_t bytes_up, bytes_down;
	char starter[64]; /* the broker that made it (brk_assign_req.broker), "" before */
};

struct brk_assign_req {
	const char *pool;
	const char *user;
	const char *client_addr;
	int64_t now_ms;
	const char *broker; /* this broker's id (brk_store_broker_beat); NULL: "" */
};

/* Reconnect or assign, in one transaction: the user's live session in the
 * pool when there is one (*reconnect = 1, even on a drained host); otherwise
 * a new session row (state STARTING on sessiond hosts, READY on static
 * backends) on the host brk_assign_pick() chooses among the pool's hosts that
 * are not drained, have room (sessions < max_sessions_per_host) and, for
 * sessiond hosts, were seen in the last 60 s.  -ENOENT: no such pool;
 * -ENOSPC: no host has room; -EDQUOT: the user has max_sessions_per_user
 * live sessions in the pool already. */
int brk_store_assign(struct brk_store *st, const struct brk_assign_req *req,
		     struct brk_session *out, int *reconnect);

int brk_store_session_get(struct brk_store *st, int64_t id, struct brk_session *out);

struct brk_session_filter {
	const char *pool; /* NULL: any */
	const char *user; /* NULL: any */
	const char *host; /* NULL: any */
	int state;	  /* -1: any; -2: any live (not ENDED) */
	int limit;	  /* 0: no limit */
};
/* Newest first; free with free(). */
int brk_store_session_list(struct brk_store *st, const struct brk_session_filter *f,
			   struct brk_session **out, size_t *n);

/* The sessiond started it: set backend and secret, STARTING -> READY. */
int brk_store_session_ready(struct brk_store *st, int64_t id, const char *backend,
			    const char *secret, int64_t now_ms);
/* A gateway event: "connect" (-> ACTIVE, connected_ms), "disconnect"
 * (-> DISCONNECTED, disconnected_ms), "input" (last_input_ms); bytes are the
 * connection's running totals, added to the session's.  -ENOENT for an
 * ended or unknown session. */
int brk_store_session_event(struct brk_store *st, int64_t id, const char *event, int64_t at_ms,
			    int64_t bytes_up, int64_t bytes_down);
/* The gateway (its certificate's CN, "" for the shared gateway_secret)
 * that reported the live session's last "connect". */
int brk_store_session_gateway(struct brk_store *st, int64_t id, const char *gateway);
/* That gateway (re)started at now_ms: the sessions it last reported
 * connected (ACTIVE) before then lost their relays with it -> DISCONNECTED
 * at now_ms, so that disconnect_timeout applies.  *n: how many. */
int brk_store_gateway_started(struct brk_store *st, const char *gateway, int64_t now_ms, int *n);
/* -> ENDED with a reason; ending an ended session is 0 and changes nothing.
 * *ended (when not NULL): 1 when this call ended it, 0 when it was ended
 * already (another broker's sweep, say). */
int brk_store_session_end(struct brk_store *st, int64_t id, const char *reason, int64_t now_ms,
			  int *ended);

/* Live sessions past a timeout of their pool at now_ms: disconnected longer
 * than disconnect_timeout, no input for idle_timeout, older than
 * max_duration (a 0 timeout never fires).  reasons[i] names which. */
int brk_store_session_expired(struct brk_store *st, int64_t now_ms, struct brk_session **out,
			      const char ***reasons, size_t *n);

/* --- tickets and tokens (stored by their SHA-256, hex) ------------------- */

/* sealed: the user's password encrypted under a key derived from the ticket
 * or token itself (broker/seal.h), "" when none; the store alone cannot
 * open it. */
#define BRK_SEALED_MAX 1024

struct brk_ticket {
	int64_t session_id;
	char user[264];
	char client_addr[64]; /* empty: not bound */
	int64_t expires_ms;
	char sealed[BRK_SEALED_MAX];
};

int brk_store_ticket_put(struct brk_store *st, const char *hash, const struct brk_ticket *t);
/* Single use: returns and deletes it under one lock; -ENOENT when
 * unknown, used or expired (expired ones are deleted too).  -EIO when the
 * DELETE failed: the ticket is refused, and refused again until it expires
 * (remembered in memory: a restart forgets it). */
int brk_store_ticket_take(struct brk_store *st, const char *hash, int64_t now_ms,
			  struct brk_ticket *out);

struct brk_token {
	char user[264];
	int admin;
	int64_t expires_ms;
	char sealed[BRK_SEALED_MAX];
};

int brk_store_token_put(struct brk_store *st, const char *hash, const struct brk_token *t);
/* -ENOENT when unknown or expired. */
int brk_store_token_get(struct brk_store *st, const char *hash, int64_t now_ms,
			struct brk_token *out);
int brk_store_token_delete(struct brk_store *st, const char *hash);
/* Delete expired tickets and tokens, and throttle counters and brokers
 * quiet for a day (login_window's most). */
int brk_store_purge(struct brk_store *st, int64_t now_ms);

/* --- control: what gateways do to a session's connection at once ----------- */

/* One row: seq numbers them in the order they were written. */
struct brk_control {
	int64_t seq, session_id, at_ms;
	char action[16]; /* disconnect, logoff, timeout, drain, message */
	char text[512];	 /* why (for the log), or the message to the user */
};

int brk_store_control_add(struct brk_store *st, int64_t session_id, const char *action,
			  const char *text, int64_t at_ms);
/* The rows after seq `after`, oldest first, at most BRK_CONTROL_MAX (free
 * *out), and the highest seq written (0: none yet). */
int brk_store_control_since(struct brk_store *st, int64_t after, struct brk_control **out,
			    size_t *n, int64_t *last);

/* --- login throttling shared by every broker on the store ---------------- */

/* One login attempt of each of the n keys (a source address, a user name),
 * counted as a failure now, all or none: 0 when none of them has had
 * `limit` failures whose last was less than window_ms ago; -EUSERS when
 * one has (nothing is counted).  A key's failures start again from 0 once
 * it has had none for window_ms.  Atomic on the database: brokers racing
 * for one key let at most `limit` attempts through together. */
int brk_store_throttle_take(struct brk_store *st, const char *const *keys, size_t n, int limit,
			    int64_t window_ms, int64_t now_ms);
/* The attempt succeeded: one failure of each key taken back. */
int brk_store_throttle_forgive(struct brk_store *st, const char *const *keys, size_t n);
/* --- brokers sharing the store --------------------------------------------- */

/* Broker id is alive at now_ms (each broker every sweep). */
int brk_store_broker_beat(struct brk_store *st, const char *id, int64_t now_ms);
/* When broker id was last alive; -ENOENT when never. */
int brk_store_broker_seen(struct brk_store *st, const char *id, int64_t *seen_ms);

/* Whether other brokers may share this store (PostgreSQL): 1 or 0. */
int brk_store_shared(const struct brk_store *st);

/* For tests and fuzzing: the whole database as bytes (malloc'd, *len), and
 * the database put back to such bytes (what only memory held is forgotten
 * too).  A fuzzer starts each input from the same state this way, in
 * microseconds.  0 or -errno. */
int brk_store_snapshot(struct brk_store *st, void **buf, size_t *len);
int brk_store_restore(struct brk_store *st, const void *buf, size_t len);
/* Whether the database is still byte for byte such a snapshot (and holds
 * nothing in memory only), so that a fuzzer restores only after an input
 * wrote: a restore makes SQLite parse the whole schema again.  1 or 0
 * (0 too when it cannot tell). */
int brk_store_is(struct brk_store *st, const void *buf, size_t len);

/* --- the assignment decision (assign.c, pure, no SQL) ------------------- */

struct brk_candidate {
	const char *host;
	int64_t sessions; /* live sessions on it now */
	int64_t capacity; /* max_sessions_per_host */
};

/* Index into c[0..n) of the host to use, or -1 when none has room.
 * least-loaded: fewest sessions (ties: first); round-robin: the first with
 * room after *cursor (updated); persistent: `previous` when it has room,
 * else least-loaded. */
int brk_assign_pick(int policy, const struct brk_candidate *c, size_t n, int64_t *cursor,
		    const char *previous);

#endif
