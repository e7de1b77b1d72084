#!/bin/bash
# portico-broker's store on disk: the SQLite files are owner-only, new or
# left more open by an older broker; a ticket whose DELETE fails (another
# process holds the database's write lock) is refused, and stays refused.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

be_setup
# Tickets must outlive the lock below (held past the 5 s busy timeout).
sed -i 's/^ticket_ttl = .*/ticket_ttl = 60s/' "$T/portico.conf"
be_start

modes() { stat -c '%n %a' "$T"/db/portico.db* | sed "s|$T/db/||" | sort | tr '\n' ' '; }
ALICE=$(login alice alice-pw)
[ ${#ALICE} = 43 ] || fail "alice could not log in"
[ "$(modes)" = "portico.db 600 portico.db-shm 600 portico.db-wal 600 " ] ||
	fail "a new store's files: $(modes)"
be_stop
chmod 644 "$T"/db/portico.db*
be_start
[ "$(modes)" = "portico.db 600 portico.db-shm 600 portico.db-wal 600 " ] ||
	fail "an old store's files: $(modes)"
echo "ok: the store's files are 0600"

# --- a ticket whose DELETE fails ---------------------------------------------------
TK=$(api POST /resources/office/launch "" "$ALICE" | jq -r .ticket)
[ ${#TK} = 43 ] || fail "launch: $(cat "$T/out")"
TK2=$(api POST /resources/office/launch "" "$ALICE" | jq -r .ticket)
# Another process takes the write lock and keeps it until the redeem is
# answered (past the broker's 5 s busy timeout, perhaps twice: the sweep may
# wait for the lock first): the broker still reads the ticket, its DELETE
# fails.
python3 -c '
import os, sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
for _ in range(300):
    if os.path.exists(sys.argv[3]):
        break
    time.sleep(0.1)
c.execute("COMMIT")' "$T/db/portico.db" "$T/locked" "$T/release" &
LOCKER=$!
for _ in $(seq 1 50); do [ -e "$T/locked" ] && break; sleep 0.1; done
[ -e "$T/locked" ] || fail "could not lock the store"
api POST /gateway/redeem "{\"ticket\":\"$TK\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
touch "$T/release"
expect 500 internal
grep -q "store: .*locked" "$T/broker.log" || fail "the store's failure is not logged"
wait "$LOCKER" || fail "the locking process failed"
# The row is still in the database, but the ticket was presented once.
n=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM tickets").fetchone()[0])' "$T/db/portico.db")
[ "$n" -ge 1 ] || fail "the failed DELETE deleted the ticket after all: the test proves nothing"
api POST /gateway/redeem "{\"ticket\":\"$TK\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
expect 403 invalid_ticket
api POST /gateway/redeem "{\"ticket\":\"$TK2\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
expect 200
echo "ok: ticket redeem with the store locked: refused, then refused again"

be_stop
[ "$BE_RC" = 0 ] || fail "the broker exited $BE_RC"
echo "ok: broker store"
