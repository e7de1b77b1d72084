#!/bin/bash
# The audit trail ([broker] and [gateway] audit_log): one JSON object per
# line for sign-ins (result, user, address, via which front), launches and
# reconnects, tickets redeemed (by which gateway, from where, to which
# backend), connections relayed and ended, sessions ended with their reason,
# and admin actions with the values before and after; never a password or a
# ticket.  The file is 0600 and reopened on SIGHUP (a rotation); portico-admin
# audit reads it back, through the broker's API or from a file.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

be_setup
HP=$(free_port)
VP=$(free_port)
XPORT=$(free_port)
mkdir -p "$T/audit"
chmod 0777 "$T/audit" # the daemons write it as the users they run as
be_gateway_conf "$VP" - user=nobody https_listen=127.0.0.1:$HP audit_log=$T/audit/gateway.log
sed -i "s|^login_attempts = 1000|login_attempts = 3\naudit_log = $T/audit/broker.log|" "$T/portico.conf"
be_conf_append "
[pool desk]
driver = static
hosts = 127.0.0.1:$XPORT
users = alice, bob"
Xvnc -displayfd 1 -interface 127.0.0.1 -rfbport "$XPORT" -SecurityTypes None -desktop audited \
	-geometry 320x240 -nolisten tcp >"$T/xvnc.display" 2>"$T/xvnc.log" &
XVNC_PID=$!
be_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
trap 'kill $GW_PID $XVNC_PID 2>/dev/null; wait $GW_PID 2>/dev/null; be_cleanup' EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$HP) 2>/dev/null" || fail "the gateway: $(tail -3 "$T/gateway.log")"
BL=$T/audit/broker.log
GL=$T/audit/gateway.log
# rec FILE JQ-FILTER: the records the filter selects (one per line)
rec() { jq -c "select($2)" "$1"; }
has() { [ -n "$(rec "$1" "$2")" ] || fail "no record ($2) in $(basename "$1"): $(tail -5 "$1")"; }

# --- sign-ins --------------------------------------------------------------------------
ALICE=$(login alice alice-pw)
api POST /login '{"username":"bob","password":"wrong"}' >/dev/null
# Guesses from another address (the throttle counts per address too).
for _ in 1 2 3 4; do
	st=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 --cacert "$T/tls/server.pem" \
		-H 'Content-Type: application/json' -d '{"username":"mallory","password":"guess"}' "$B/login")
done
[ "$st" = 429 ] || fail "the fourth guess was not throttled: $st"
ADMIN=$(login carol carol-pw)
has "$BL" '.event == "login" and .result == "success" and .user == "alice" and .addr == "127.0.0.1" and .via == "api"'
has "$BL" '.event == "login" and .result == "failure" and .user == "bob"'
has "$BL" '.event == "login" and .result == "throttled" and .user == "mallory" and .addr == "127.0.0.2"'
[ "$(stat -c %a "$BL")" = 600 ] || fail "the broker's trail is $(stat -c %a "$BL"), not 0600"
head -1 "$BL" | jq -e 'keys_unsorted[0:2] == ["ts","daemon"] and .daemon == "broker"' >/dev/null ||
	fail "a record does not begin with ts and daemon: $(head -1 "$BL")"

# --- a launch, its ticket redeemed through the browser path, the connection ------------
TK=$(api POST /resources/desk/launch '{}' "$ALICE" | jq -r .ticket)
S=$(jq -r .session.id "$T/out")
has "$BL" ".event == \"launch\" and .user == \"alice\" and .pool == \"desk\" and .session == $S"
out=$(/usr/bin/python3 tests/tools/ws-rfb.py 127.0.0.1 "$HP" rfb "$TK")
[[ $out == serverinit* ]] || fail "the browser path: $out"
has "$BL" ".event == \"redeem\" and .result == \"success\" and .session == $S and .addr == \"127.0.0.1\" and .backend == \"127.0.0.1:$XPORT\""
wait_for 5 grep -q '"event":"disconnect"' "$GL" || fail "no disconnect in the gateway's trail: $(cat "$GL")"
has "$GL" ".event == \"connect\" and .protocol == \"vnc-ws\" and .user == \"alice\" and .session == $S"
has "$GL" ".event == \"disconnect\" and .session == $S and .bytes_down > 0 and .reason != null"
[ "$(stat -c %a "$GL")" = 600 ] || fail "the gateway's trail is not 0600"
# The same ticket again: refused, and said.
/usr/bin/python3 tests/tools/ws-rfb.py 127.0.0.1 "$HP" rfb "$TK" >/dev/null
has "$BL" '.event == "redeem" and .result == "refused"'
# A reconnect.
api POST /resources/desk/launch '{}' "$ALICE" >/dev/null
has "$BL" ".event == \"reconnect\" and .session == $S"

# --- admin actions: who, what, before and after --------------------------------------------
api POST /admin/pools/desk/drain "" "$ADMIN" >/dev/null
expect 200
has "$BL" '.event == "admin" and .admin == "carol" and .action == "POST /api/v1/admin/pools/desk/drain" and .before.drained == false and .after.drained == true and .status == 200'
api PATCH /admin/pools/desk '{"idle_timeout":"45m"}' "$ADMIN" >/dev/null
has "$BL" '.event == "admin" and .body.idle_timeout == "45m" and .before.idle_timeout != "45m" and .after.idle_timeout == "45m"'
api POST /admin/pools/desk/undrain "" "$ADMIN" >/dev/null
api POST "/admin/sessions/$S/message" '{"text":"going down at noon"}' "$ADMIN" >/dev/null
has "$BL" ".event == \"admin\" and .body.text == \"going down at noon\" and .before.id == $S"
api POST "/admin/sessions/$S/logoff" "" "$ADMIN" >/dev/null
has "$BL" ".event == \"admin\" and .before.state != \"ended\" and .after.state == \"ended\""
has "$BL" ".event == \"session_end\" and .session == $S and .reason == \"logoff by admin\" and .user == \"alice\""
# A refused admin action is recorded with its status.
api DELETE /admin/pools/nosuch "" "$ADMIN" >/dev/null
has "$BL" '.event == "admin" and .status == 404 and .before == null'
# Reading is not an action.
[ -z "$(rec "$BL" '.event == "admin" and (.action | startswith("GET"))')" ] || fail "a GET was recorded as an admin action"

# --- never a password, a ticket or a session's secret --------------------------------------
for secret in alice-pw carol-pw wrong guess "$TK" "$GW_SECRET" "$ALICE" "$ADMIN"; do
	grep -qF -- "$secret" "$BL" "$GL" && fail "the trail holds a secret ($secret)"
done
sqlite3 "$T/db/portico.db" "select secret from sessions" 2>/dev/null | while read -r sec; do
	[ -n "$sec" ] && grep -qF -- "$sec" "$BL" "$GL" && fail "the trail holds a session's secret"
done
echo "ok: sign-ins, launches, tickets, connections, admin actions; no secrets"

# --- portico-admin audit: through the API, from a file -------------------------------------
A="$BUILD/bin/portico-admin"
adm() { HOME=$T/admin-home "$A" "$@"; }
mkdir -p "$T/admin-home"
echo carol-pw | adm --broker "https://127.0.0.1:$PORT" --ca "$T/tls/server.pem" login carol >/dev/null 2>&1 ||
	fail "portico-admin login"
out=$(adm audit --user alice --since 1h) || fail "audit: $out"
grep -qE "^TIME +EVENT +RESULT +USER +ADDRESS +DETAIL" <<<"$out" || fail "the table's header: $out"
grep -qE " login +success +alice +127\.0\.0\.1 +via=api" <<<"$out" || fail "alice's sign-in in the table: $out"
grep -qE " launch +success +alice +127\.0\.0\.1 +pool=desk session=$S" <<<"$out" || fail "alice's launch: $out"
grep -q "bob" <<<"$out" && fail "--user alice shows bob: $out"
out=$(adm --json audit --event admin) || fail "audit --json: $out"
[ "$(jq '[.records[] | select(.admin == "carol")] | length' <<<"$out")" -ge 5 ] || fail "--event admin --json: $out"
[ "$(jq '[.records[] | select(.event != "admin")] | length' <<<"$out")" = 0 ] || fail "--event admin shows others"
out=$(adm --json audit --limit 2) && [ "$(jq '.records | length' <<<"$out")" = 2 ] || fail "--limit 2: $out"
out=$(adm --json audit --since 2099-01-01) && [ "$(jq '.records | length' <<<"$out")" = 0 ] || fail "--since in the future: $out"
# A file read here: the gateway's trail, with a line that is not a record.
cp "$GL" "$T/gw-copy.log"
echo 'not json {' >>"$T/gw-copy.log"
out=$(adm audit --file "$T/gw-copy.log" --user alice 2>"$T/err") || fail "audit --file: $out"
grep -qE " connect +- +alice +127\.0\.0\.1 +session=$S backend=127\.0\.0\.1:$XPORT protocol=vnc-ws" <<<"$out" || fail "the gateway's trail: $out"
grep -q "1 line of .* is not a record" "$T/err" || fail "the skipped line is not said: $(cat "$T/err")"
out=$(adm audit --file "$T/nonexistent" 2>&1)
[ $? = 1 ] && grep -q "cannot read the audit log" <<<"$out" || fail "a missing file: $out"
for args in "--since yesterday" "--since 2026-13" "--limit 0" "--limit 99999" "--user" "--bogus x" "--user a b"; do
	out=$(adm audit $args 2>&1)
	[ $? = 2 ] || fail "'portico-admin audit $args' is not a usage error: $out"
done
for q in "since=yesterday" "limit=0" "limit=x" "since=2026-12-06T1"; do
	api GET "/admin/audit?$q" "" "$ADMIN" >/dev/null
	expect 400 bad_request
done
api GET /admin/audit "" "$ALICE" >/dev/null
expect 403
echo "ok: portico-admin audit"

# --- a rotation: SIGHUP reopens; both files are read back ------------------------------------
mv "$BL" "$BL.1"
mv "$GL" "$GL.1"
kill -HUP "$BE_PID" "$GW_PID"
wait_for 5 grep -q "audit: reopened" "$T/broker.log" || fail "the broker did not reopen its trail: $(tail -3 "$T/broker.log")"
wait_for 5 grep -q "audit: reopened" "$T/gateway.log" || fail "the gateway did not reopen its trail"
kill -0 "$BE_PID" "$GW_PID" || fail "SIGHUP stopped a daemon"
login bob bob-pw >/dev/null
has "$BL" '.event == "login" and .user == "bob" and .result == "success"'
[ "$(stat -c %a "$BL")" = 600 ] || fail "the reopened trail is not 0600"
grep -q '"user":"bob","addr":"127.0.0.1","via":"api","status":200' "$BL.1" && fail "a record went to the rotated file"
out=$(adm --json audit --user alice) || fail "audit after the rotation"
[ "$(jq '[.records[] | select(.event == "launch")] | length' <<<"$out")" -ge 1 ] || fail "the rotated file is not read back: $out"
echo "ok: SIGHUP reopens the trail"

# --- a trail others may read is refused at start --------------------------------------------
be_stop
chmod 0644 "$BL"
: >"$T/refused.log"
be_exec "$T/portico.conf" "$T/refused.log" # in the test's PAM world, as be_start
pid=$!
wait_for 10 eval '! kill -0 $pid 2>/dev/null' || { kill -9 $pid; fail "a broker with a 0644 trail did not stop"; }
wait $pid
rc=$?
[ $rc != 0 ] && grep -q "is not a regular file of mode 0600" "$T/refused.log" ||
	fail "a 0644 trail was taken (exit $rc): $(cat "$T/refused.log")"
echo "ok: a trail others may read is refused"
