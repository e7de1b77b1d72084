#!/bin/bash
# portico-broker through real HTTPS (curl), real PAM (pam_wrapper +
# pam_matrix), real SQLite: login, timing, throttling, launch, reconnect,
# capacity under 200 concurrent launches, drain, persistent policy, tickets,
# admin API, kill -9 and restart, hostile input.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

be_setup
be_conf_append "
[pool sticky]
driver = static
policy = persistent
hosts = $BACKEND_A, $BACKEND_B
users = alice, bob
max_sessions_per_host = 10

[pool notepad]
kind = app
protocol = rdp
driver = static
command = ||notepad
hosts = 127.0.0.1:5998
users = bob"
be_start

# --- login --------------------------------------------------------------
ALICE=$(login alice alice-pw)
[ ${#ALICE} = 43 ] || fail "alice could not log in: $(cat "$T/out")"
api POST /login '{"username":"alice","password":"wrong"}' >/dev/null
expect 401 login_failed
api POST /login '{"username":"nobody","password":"x"}' >/dev/null
expect 401 login_failed
[ "$(jq -r .message "$T/out")" = "login failed" ] || fail "the refusal says more than 'login failed'"
grep -q 'auth failure user=nobody rhost=127.0.0.1' "$T/broker.log" || fail "no fail2ban line"
api GET /resources "" "$ALICE" >/dev/null
expect 200
[ "$(jq -r '[.resources[].name] | sort | join(",")' "$T/out")" = "apps,office,sticky" ] ||
	fail "alice's resources: $(cat "$T/out")"
DAVE=$(login dave dave-pw)
api GET /resources "" "$DAVE" >/dev/null
[ "$(jq -r '[.resources[].name] | join(",")' "$T/out")" = "apps" ] || fail "dave sees $(cat "$T/out")"
api GET /resources "" "not-a-token" >/dev/null
expect 401 unauthenticated
echo "ok: login"

# --- failed logins take the same time, known user or not ------------------
known=0 unknown=0
for i in $(seq 1 20); do
	t=$(curl -s -o /dev/null -w '%{time_total}' --cacert "$T/tls/server.pem" \
		"$B/login" -d '{"username":"bob","password":"nope"}')
	known=$(echo "$known + $t" | bc -l)
	t=$(curl -s -o /dev/null -w '%{time_total}' --cacert "$T/tls/server.pem" \
		"$B/login" -d "{\"username\":\"ghost$i\",\"password\":\"nope\"}")
	unknown=$(echo "$unknown + $t" | bc -l)
done
diff_ms=$(echo "d = ($known - $unknown) * 1000 / 20; if (d < 0) d = -d; d" | bc -l)
mean_ms=$(echo "$known * 1000 / 20" | bc -l)
echo "   failed login: known user $(printf %.1f "$mean_ms") ms on average, difference $(printf %.1f "$diff_ms") ms"
[ "$(echo "$diff_ms < 50" | bc)" = 1 ] || fail "known and unknown users differ by $diff_ms ms"
[ "$(echo "$mean_ms >= 300" | bc)" = 1 ] || fail "a failed login took $mean_ms ms, less than fail_delay"
echo "ok: failure timing"

# --- launch, reconnect, entitlement -----------------------------------------
api POST /resources/office/launch "" "$ALICE" >/dev/null
expect 200
S1=$(jq -r .session.id "$T/out")
T1=$(jq -r .ticket "$T/out")
[ "$(jq -r .gateway "$T/out")" = "gateway.test:15900" ] || fail "gateway address: $(cat "$T/out")"
[ "$(jq -r .reconnect "$T/out")" = false ] || fail "first launch is a reconnect"
api POST /resources/office/launch "" "$ALICE" >/dev/null
expect 200
[ "$(jq -r .session.id "$T/out")" = "$S1" ] || fail "reconnect gave another session"
[ "$(jq -r .reconnect "$T/out")" = true ] || fail "reconnect not reported"
api POST /resources/office/launch "" "$DAVE" >/dev/null
expect 404 no_such_resource
api POST /resources/nosuch/launch "" "$DAVE" >/dev/null
expect 404 no_such_resource
api GET /resources/apps/launch.rdp "" "$ALICE" >/dev/null
expect 200
grep -q "^loadbalanceinfo:s:Cookie: msts=" "$T/out" || fail "no loadbalanceinfo in .rdp"
grep -q "^full address:s:gateway.test:13389" "$T/out" || fail "no full address in .rdp"
grep -q "^alternate shell:s:/usr/bin/xterm" "$T/out" || fail "no alternate shell in .rdp"
# A RemoteApp of a Windows RDS host ("||alias"): the RemoteApp fields, no
# alternate shell; the launch answer names it for xfreerdp's /app:.
BOB=$(login bob bob-pw)
api GET /resources/notepad/launch.rdp "" "$BOB" >/dev/null
expect 200
grep -q "^remoteapplicationmode:i:1"$'\r'"$" "$T/out" && grep -q "^remoteapplicationprogram:s:||notepad"$'\r'"$" "$T/out" &&
	grep -q "^remoteapplicationname:s:notepad"$'\r'"$" "$T/out" || fail "no RemoteApp fields in .rdp: $(cat "$T/out")"
grep -q "^alternate shell" "$T/out" && fail "an alternate shell beside RemoteApp: $(cat "$T/out")"
api POST /resources/notepad/launch "" "$BOB" >/dev/null
expect 200
[ "$(jq -r .command "$T/out")" = "||notepad" ] || fail "launch answer: $(cat "$T/out")"
api POST /resources/apps/launch "" "$ALICE" >/dev/null
[ "$(jq -r .command "$T/out")" = "/usr/bin/xterm" ] || fail "an app's launch answer has no command: $(cat "$T/out")"
api POST /resources/office/launch "" "$ALICE" >/dev/null
[ "$(jq -r .command "$T/out")" = null ] || fail "a desktop's launch answer has a command: $(cat "$T/out")"
echo "ok: launch and reconnect"

# --- tickets ------------------------------------------------------------------
# A fresh one (a reconnect to S1): ticket_ttl is 5 s, and the launches above
# take longer than that on a loaded machine.
T1=$(api POST /resources/office/launch "" "$ALICE" | jq -r .ticket)
api POST /gateway/redeem "{\"ticket\":\"$T1\",\"client_addr\":\"127.0.0.1\"}" wrong-secret >/dev/null
expect 401 unauthenticated
api POST /gateway/redeem "{\"ticket\":\"$T1\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
expect 200
[ "$(jq -r .user "$T/out")" = alice ] || fail "redeem user: $(cat "$T/out")"
[ "$(jq -r .session_id "$T/out")" = "$S1" ] || fail "redeem session: $(cat "$T/out")"
api POST /gateway/redeem "{\"ticket\":\"$T1\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
expect 403 invalid_ticket
used=$(cat "$T/out")
api POST /gateway/redeem '{"ticket":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}' "$GW_SECRET" >/dev/null
expect 403 invalid_ticket
[ "$(cat "$T/out")" = "$used" ] || fail "an unknown ticket is answered differently from a used one"
T2=$(api POST /resources/office/launch "" "$ALICE" | jq -r .ticket)
api POST /gateway/redeem "{\"ticket\":\"$T2\",\"client_addr\":\"192.0.2.99\"}" "$GW_SECRET" >/dev/null
expect 403 invalid_ticket
T3=$(api POST /resources/office/launch "" "$ALICE" | jq -r .ticket)
sleep 6
api POST /gateway/redeem "{\"ticket\":\"$T3\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
expect 403 invalid_ticket
[ "$(cat "$T/out")" = "$used" ] || fail "an expired ticket is answered differently"
echo "ok: tickets"

# --- gateway events and the session state -------------------------------------
api POST /gateway/events "{\"session_id\":$S1,\"event\":\"connect\",\"bytes_up\":10,\"bytes_down\":20}" "$GW_SECRET" >/dev/null
expect 200
api GET /sessions "" "$ALICE" >/dev/null
[ "$(jq -r ".sessions[] | select(.id == $S1) | .state" "$T/out")" = active ] || fail "not active: $(cat "$T/out")"
api POST /gateway/events "{\"session_id\":$S1,\"event\":\"disconnect\"}" "$GW_SECRET" >/dev/null
api GET /sessions "" "$ALICE" >/dev/null
[ "$(jq -r ".sessions[] | select(.id == $S1) | .state" "$T/out")" = disconnected ] || fail "not disconnected"
api POST /gateway/events '{"session_id":999999,"event":"connect"}' "$GW_SECRET" >/dev/null
expect 404
echo "ok: events"

# --- gateway/authorize ------------------------------------------------------------
api POST /gateway/authorize '{"username":"bob#office","password":"bob-pw","client_addr":"192.0.2.7"}' "$GW_SECRET" >/dev/null
expect 200
[ "$(jq -r .user "$T/out")" = bob ] || fail "authorize: $(cat "$T/out")"
[ "$(jq -r '.ticket | length' "$T/out")" = 43 ] || fail "authorize gave no ticket"
api POST /gateway/authorize '{"username":"bob","password":"bad","client_addr":"192.0.2.7"}' "$GW_SECRET" >/dev/null
expect 401 login_failed
api POST /gateway/authorize '{"username":"alice","password":"alice-pw","client_addr":"192.0.2.7"}' "$GW_SECRET" >/dev/null
expect 409 pool_needed
echo "ok: authorize"

# --- admin ------------------------------------------------------------------------
CAROL=$(login carol carol-pw)
api GET /admin/pools "" "$ALICE" >/dev/null
expect 403 forbidden
api GET /admin/pools "" "$CAROL" >/dev/null
expect 200
api POST /admin/pools '{"name":"calc","kind":"app","command":"/usr/bin/xcalc","driver":"static","hosts":["127.0.0.1:5999"],"users":["dave"],"idle_timeout":"30m"}' "$CAROL" >/dev/null
expect 201
[ "$(jq -r .idle_timeout "$T/out")" = 30m ] || fail "created pool: $(cat "$T/out")"
api POST /admin/pools '{"name":"calc2","kind":"app","driver":"static","hosts":["127.0.0.1:5999"]}' "$CAROL" >/dev/null
expect 400 bad_pool
grep -q "needs 'command'" "$T/out" || fail "bad pool message: $(cat "$T/out")"
api POST /admin/pools '{"name":"calc","kind":"app","command":"/x","driver":"static","hosts":["127.0.0.1:5999"]}' "$CAROL" >/dev/null
expect 409 exists
api PUT /admin/pools/calc '{"command":"/usr/bin/galculator","max_sessions_per_user":"lots"}' "$CAROL" >/dev/null
expect 400 bad_pool
api PUT /admin/pools/calc '{"command":"/usr/bin/galculator"}' "$CAROL" >/dev/null
expect 200
[ "$(jq -r .command "$T/out")" = /usr/bin/galculator ] || fail "update: $(cat "$T/out")"
DAVE=$(login dave dave-pw)
api GET /resources "" "$DAVE" >/dev/null
[ "$(jq -r '[.resources[].name] | sort | join(",")' "$T/out")" = "apps,calc" ] || fail "dave after publish: $(cat "$T/out")"
api GET "/admin/sessions?user=alice" "" "$CAROL" >/dev/null
expect 200
[ "$(jq -r '.sessions | length' "$T/out")" -ge 1 ] || fail "admin sees no sessions of alice"
api POST "/admin/sessions/$S1/logoff" "" "$CAROL" >/dev/null
expect 200
[ "$(jq -r .state "$T/out")" = ended ] || fail "logoff: $(cat "$T/out")"
api GET "/admin/sessions?state=ended" "" "$CAROL" >/dev/null
[ "$(jq -r ".sessions[] | select(.id == $S1) | .end_reason" "$T/out")" = "logoff by admin" ] || fail "end reason"
api DELETE /admin/pools/calc "" "$CAROL" >/dev/null
expect 200
echo "ok: admin"

# --- drain and the persistent policy ---------------------------------------------
BOB=$(login bob bob-pw)
api POST /resources/office/launch "" "$BOB" >/dev/null
expect 200
SB=$(jq -r .session.id "$T/out")
api POST /admin/pools/office/drain "" "$CAROL" >/dev/null
expect 200
api POST /resources/office/launch "" "$BOB" >/dev/null
expect 200
[ "$(jq -r .session.id "$T/out")" = "$SB" ] || fail "a drained pool refused a reconnect"
ALICE=$(login alice alice-pw)
api POST /resources/office/launch "" "$ALICE" >/dev/null
expect 503 no_capacity
grep -q "no session available in pool office" "$T/out" || fail "message: $(cat "$T/out")"
api POST /admin/pools/office/undrain "" "$CAROL" >/dev/null
api POST /resources/sticky/launch "" "$ALICE" >/dev/null
expect 200
SS=$(jq -r .session.id "$T/out")
HS=$(jq -r .session.host "$T/out")
api POST "/sessions/$SS/logoff" "" "$ALICE" >/dev/null
expect 200
for i in 1 2 3; do
	api POST /resources/sticky/launch "" "$ALICE" >/dev/null
	[ "$(jq -r .session.host "$T/out")" = "$HS" ] || fail "persistent policy moved alice from $HS"
	api POST "/sessions/$(jq -r .session.id "$T/out")/logoff" "" "$ALICE" >/dev/null
done
echo "ok: drain and persistent"

# --- kill -9 and restart ---------------------------------------------------------
api GET /admin/sessions "" "$CAROL" >/dev/null
before=$(jq -c '[.sessions[] | {id, state, host}]' "$T/out")
T4=$(api POST /resources/office/launch "" "$BOB" | jq -r .ticket)
be_kill9
be_start
api GET /admin/sessions "" "$CAROL" >/dev/null
expect 200
after=$(jq -c '[.sessions[] | {id, state, host}]' "$T/out")
[ "$before" = "$after" ] || fail "sessions changed across kill -9: $before / $after"
api POST /gateway/redeem "{\"ticket\":\"$T4\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
expect 200
echo "ok: kill -9 and restart"

# --- hostile input ------------------------------------------------------------------
api POST /login '{"username":' >/dev/null
expect 400 bad_json
api POST /login '[1,2,3]' >/dev/null
expect 400 bad_json
api POST /login '{"username":"a","username":"b","password":"x"}' >/dev/null
expect 400 bad_json
head -c 200000 /dev/zero | tr '\0' a >"$T/big"
STATUS=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/server.pem" --data-binary @"$T/big" "$B/login")
expect 413
STATUS=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/server.pem" -H "X-Junk: $(head -c 20000 /dev/zero | tr '\0' b)" "$B/resources")
expect 431
STATUS=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/server.pem" "$B/resources/$(head -c 3000 /dev/zero | tr '\0' c)/launch")
[ "$STATUS" = 414 ] || [ "$STATUS" = 400 ] || fail "a 3000-byte URL got $STATUS"
api GET /login >/dev/null
expect 405
api DELETE /resources "" "$BOB" >/dev/null
expect 405
api POST /resources/..%2F..%2Fetc%2Fpasswd/launch "" "$BOB" >/dev/null
expect 400 bad_name
api POST /resources/../launch "" "$BOB" >/dev/null
[ "$STATUS" = 400 ] || [ "$STATUS" = 404 ] || fail "'..' as a pool name got $STATUS"
api GET /admin/pools/..%00 "" "$CAROL" >/dev/null
expect 400 bad_name
api POST /login "{\"username\":\"$(head -c 100000 /dev/zero | tr '\0' u)\",\"password\":\"x\"}" >/dev/null
[ "$STATUS" = 401 ] || [ "$STATUS" = 413 ] || fail "a 100 kB user name got $STATUS"
# A client that sends half a request and stops: 408 after the request timeout.
exec 5< <( (printf 'POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"user'; sleep 15) |
	timeout 14 openssl s_client -quiet -connect 127.0.0.1:$PORT 2>/dev/null)
slow=$(timeout 14 head -n 1 <&5)
exec 5<&-
case "$slow" in *408*) ;; *) fail "a slow client got '$slow' instead of 408" ;; esac
# Not HTTP at all, and not TLS at all.
printf 'SSH-2.0-junk\r\n\r\n' | timeout 5 openssl s_client -quiet -connect 127.0.0.1:$PORT >/dev/null 2>&1
head -c 4096 /dev/urandom | timeout 5 bash -c "cat > /dev/tcp/127.0.0.1/$PORT" 2>/dev/null
api GET /resources "" "$BOB" >/dev/null
expect 200
echo "ok: hostile input"

be_stop
[ "$BE_RC" = 0 ] || fail "the broker exited $BE_RC on SIGTERM"
grep -q "stopped" "$T/broker.log" || fail "no 'stopped' line"
echo "ok: broker"
