#!/bin/bash
# The broker's store on a disk that fills up (a small tmpfs of its own):
# logins and launches are refused with a clear message (HTTP 503, and what
# portico prints), what can be read still is, nothing is corrupted or lost
# (every row from before, every login answered 200), and service resumes
# by itself when space returns, without a restart.  Needs root (mount).
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

[ "$(id -u)" = 0 ] || fail "this test mounts a tmpfs: it needs root (CI runs as root)"
be_setup
mount -t tmpfs -o size=4m,mode=0755 portico-test "$T/db" || fail "cannot mount a tmpfs on $T/db"
chown 64990:64990 "$T/db"
trap 'be_stop; umount "$T/db"; [ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"' EXIT
be_conf_append "
[pool desk]
driver = static
hosts = $BACKEND_A
users = alice, bob, dave
max_sessions_per_host = 100"
be_start
DB=$T/db/portico.db
FULL_MSG="the broker cannot use its store now (its disk is full): try again later"
export HOME=$T/client-home XDG_CONFIG_HOME=
mkdir -p "$HOME"
P="$BUILD/bin/portico"
portico() { "$P" --broker "https://127.0.0.1:$PORT" --ca "$T/tls/server.pem" "$@"; }
ADMIN=$(login carol carol-pw)
ALICE=$(login alice alice-pw)
BOB=$(login bob bob-pw)
[ ${#ADMIN} = 43 ] && [ ${#ALICE} = 43 ] && [ ${#BOB} = 43 ] || fail "logins before the disk filled"
api POST /resources/office/launch "" "$ALICE" >/dev/null
expect 200
S1=$(jq -r .session.id "$T/out")
api POST /resources/desk/launch "" "$BOB" >/dev/null
expect 200
S2=$(jq -r .session.id "$T/out")
# What the store holds before: every row must still be there after.
snapshot() {
	sqlite3 -readonly "$DB" "SELECT 'session', id, pool, user_name, host, state FROM sessions
		UNION ALL SELECT 'pool', name, conf, drained, '', '' FROM pools
		UNION ALL SELECT 'token', hash, user_name, admin, expires_ms, '' FROM tokens
		UNION ALL SELECT 'host', name, address, drained, '', '' FROM hosts" | sort
}
snapshot >"$T/before"
[ "$(grep -c '^token' "$T/before")" = 3 ] && [ "$(grep -c '^session' "$T/before")" = 2 ] ||
	fail "the snapshot: $(cat "$T/before")"

# --- the disk full --------------------------------------------------------------------
dd if=/dev/zero of="$T/db/filler" bs=64k >/dev/null 2>&1
[ "$(df --output=avail "$T/db" | tail -1)" -lt 8 ] || fail "the tmpfs did not fill: $(df "$T/db")"
api POST /login '{"username":"dave","password":"dave-pw"}' >/dev/null
expect 503 store_unavailable
[ "$(jq -r .message "$T/out")" = "$FULL_MSG" ] || fail "login refused with: $(cat "$T/out")"
out=$(echo alice-pw | portico login alice 2>&1)
[ $? = 1 ] && grep -qF "portico: $FULL_MSG" <<<"$out" || fail "portico login printed: $out"
# A new session, and a reconnect (its ticket must be stored too).
api POST /resources/desk/launch "" "$ALICE" >/dev/null
expect 503 store_unavailable
[ "$(jq -r .message "$T/out")" = "$FULL_MSG" ] || fail "launch refused with: $(cat "$T/out")"
api POST /resources/office/launch "" "$ALICE" >/dev/null
expect 503 store_unavailable
api POST /gateway/events "{\"session_id\":$S1,\"event\":\"connect\"}" "$GW_SECRET" >/dev/null
expect 503 store_unavailable
# The thin client with a saved login: the same words.
mkdir -p "$HOME/.config/portico"
printf 'broker = https://127.0.0.1:%s\nca = %s\ntoken = %s\n' "$PORT" "$T/tls/server.pem" "$BOB" \
	>"$HOME/.config/portico/token"
chmod 600 "$HOME/.config/portico/token"
out=$("$P" connect office --print 2>&1)
[ $? = 1 ] && grep -qxF "portico: $FULL_MSG" <<<"$out" || fail "portico connect printed: $out"
# What is stored can still be read: sessions, resources, an admin's view.
api GET /resources "" "$BOB" >/dev/null
expect 200
[ "$(jq -r '.resources[] | select(.name == "desk") | .session.id' "$T/out")" = "$S2" ] ||
	fail "bob's resources while the disk is full: $(cat "$T/out")"
api GET "/admin/sessions?state=live" "" "$ADMIN" >/dev/null
expect 200
[ "$(jq '.sessions | length' "$T/out")" = 2 ] || fail "admin sessions while full: $(cat "$T/out")"
kill -0 "$BE_PID" || fail "the broker died of a full disk"
grep -q "store: its disk is full" "$T/broker.log" || fail "the log does not say the disk is full"
echo "ok: a full disk refuses logins and launches with a clear message, reads go on"

# --- space returns: service resumes by itself -------------------------------------------
rm -f "$T/db/filler"
api POST /login '{"username":"dave","password":"dave-pw"}' >/dev/null
expect 200
DAVE=$(jq -r .token "$T/out")
out=$(echo alice-pw | portico login alice 2>&1) || fail "portico login after space returned: $out"
api POST /resources/desk/launch "" "$ALICE" >/dev/null
expect 200
S3=$(jq -r .session.id "$T/out")
[ "$(jq -r .reconnect "$T/out")" = false ] || fail "a new session expected: $(cat "$T/out")"
api POST /resources/office/launch "" "$ALICE" >/dev/null
expect 200
[ "$(jq -r .session.id "$T/out")" = "$S1" ] || fail "alice's office session is not $S1: $(cat "$T/out")"
api POST /gateway/events "{\"session_id\":$S1,\"event\":\"connect\"}" "$GW_SECRET" >/dev/null
expect 200
echo "ok: service resumes when space returns, without a restart"

# --- the disk fills in the middle of a burst ----------------------------------------------
# Room for a few writes, then 40 logins and 3 launches at once (two
# reconnects, one new session): each is
# answered 200 (and then really stored) or 503 with the message; no 500.
avail=$(df --block-size=1K --output=avail "$T/db" | tail -1)
dd if=/dev/zero of="$T/db/filler" bs=1K count=$((avail - 48)) >/dev/null 2>&1
pids=()
for i in $(seq 1 40); do
	curl -s -o "$T/burst$i" -w '%{http_code}\n' --cacert "$T/tls/server.pem" \
		-H 'Content-Type: application/json' \
		--data-binary '{"username":"dave","password":"dave-pw"}' "$B/login" >"$T/bstatus$i" &
	pids+=($!)
done
for who in "$ALICE" "$BOB" "$DAVE"; do
	i=$((i + 1))
	curl -s -o "$T/burst$i" -w '%{http_code}\n' --cacert "$T/tls/server.pem" -X POST \
		-H "Authorization: Bearer $who" "$B/resources/desk/launch" >"$T/bstatus$i" &
	pids+=($!)
done
wait "${pids[@]}"
ok=0 full=0
for i in $(seq 1 43); do
	case $(cat "$T/bstatus$i") in
	200) ok=$((ok + 1)) ;;
	503)
		full=$((full + 1))
		[ "$(jq -r .message "$T/burst$i")" = "$FULL_MSG" ] || fail "burst $i: $(cat "$T/burst$i")"
		;;
	*) fail "burst $i: HTTP $(cat "$T/bstatus$i"): $(cat "$T/burst$i")" ;;
	esac
done
echo "   burst into a filling disk: $ok stored, $full refused"
[ "$full" -gt 0 ] || fail "the disk never filled during the burst"
rm -f "$T/db/filler"
# Every login answered 200 was stored: its token works.
for i in $(seq 1 40); do
	[ "$(cat "$T/bstatus$i")" = 200 ] || continue
	api GET /resources "" "$(jq -r .token "$T/burst$i")" >/dev/null
	expect 200
done
for i in 41 42 43; do
	[ "$(cat "$T/bstatus$i")" = 200 ] || continue
	id=$(jq -r .session.id "$T/burst$i")
	api GET "/admin/sessions?state=live" "" "$ADMIN" >/dev/null
	jq -e ".sessions[] | select(.id == $id)" "$T/out" >/dev/null || fail "launch $i answered 200, session $id is not stored"
done
api POST /login '{"username":"dave","password":"dave-pw"}' >/dev/null
expect 200
echo "ok: a disk that fills mid-burst: every answer 200 or the message, every 200 stored"

# --- nothing corrupted, nothing lost, nothing doubled ---------------------------------------
be_stop
[ "$BE_RC" = 0 ] || fail "the broker exited $BE_RC"
[ "$(sqlite3 "$DB" 'PRAGMA integrity_check')" = ok ] || fail "integrity: $(sqlite3 "$DB" 'PRAGMA integrity_check')"
snapshot >"$T/after"
missing=$(comm -23 "$T/before" "$T/after" | grep -v "^session|$S1|") # S1 became active (state 2)
[ -z "$missing" ] || fail "rows lost or changed: $missing"
grep -q "^session|$S1|office|alice|$BACKEND_A|2$" "$T/after" || fail "session $S1: $(grep "|$S1|" "$T/after")"
# The refused launches left no row: alice has her two sessions, no more.
[ "$(sqlite3 "$DB" "SELECT COUNT(*) FROM sessions WHERE user_name = 'alice'")" = 2 ] ||
	fail "alice has $(sqlite3 "$DB" "SELECT id, pool, state FROM sessions WHERE user_name = 'alice'")"
grep -q "^session|$S3|desk|alice|" "$T/after" || fail "session $S3 lost"
[ ! -e "$DB-journal" ] || fail "a rollback journal was left behind"
# And a broker started on it works.
be_start
api POST /login '{"username":"alice","password":"alice-pw"}' >/dev/null
expect 200
be_stop
[ "$BE_RC" = 0 ] || fail "the broker exited $BE_RC"
grep -iE "AddressSanitizer|runtime error|LeakSanitizer" "$T/broker.log" && fail "a sanitizer report"
echo "ok: integrity, every row from before, nothing doubled"
echo "ok: faults diskfull"
