#!/bin/bash
# A gateway killed with kill -9 says nothing about the relays it held; the
# next start of it does (issue 13, faults that lose nothing).  A viewer
# (libvncclient's vnc-probe) on a real Xvnc through the gateway (its own
# certificate, CN gw1), then:
#  - kill -9 of the gateway: the broker still has the session active (no
#    disconnect could be sent);
#  - the gateway restarted: it tells the broker ("started"), which marks the
#    session disconnected (admin API) and logs how many;
#  - the viewer reconnects through the new gateway to the same session,
#    which is active again and stays so across the next restart's report
#    only if connected after it;
#  - killed and restarted once more with nobody reconnecting, the session
#    ends by the pool's disconnect_timeout;
#  - the event's hostile forms: a user's token, a session_id beside
#    "started", no event.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
PROBE=$BUILD/tests/tools/vnc-probe

be_setup
GW_PORT=$(free_port)
XPORT=$(free_port)
be_gateway_conf "$GW_PORT" - user=nobody handshake_timeout=20s
be_conf_append "
[pool desk]
driver = static
hosts = 127.0.0.1:$XPORT
users = alice
disconnect_timeout = 4s"
sed -i "s|^ticket_ttl = .*|ticket_ttl = 60s|" "$T/portico.conf"
Xvnc -displayfd 1 -interface 127.0.0.1 -rfbport "$XPORT" -SecurityTypes None \
	-geometry 320x240 -nolisten tcp >"$T/xvnc.display" 2>"$T/xvnc.log" &
XVNC_PID=$!
be_start
GW_PID=
gw_start() {
	"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
	GW_PID=$!
	for _ in $(seq 1 50); do
		(exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	fail "the gateway does not listen: $(tail -3 "$T/gateway.log")"
}
gw_kill9() {
	kill -KILL "$GW_PID"
	wait "$GW_PID" 2>/dev/null
	GW_PID=
}
cleanup() {
	kill ${GW_PID:-} $XVNC_PID ${VIEWER:-} 2>/dev/null
	wait ${GW_PID:-} 2>/dev/null
	be_cleanup
}
trap cleanup EXIT
GW=127.0.0.1:$GW_PORT
CA=$T/pki/ca.pem
ADMIN=$(login carol carol-pw)
updates() { grep -c '^update' "$T/viewer.out"; }
# state: the desk session's "id state end_reason" (the only one there is).
state() {
	api GET "/admin/sessions?state=all" "" "$ADMIN" >/dev/null
	jq -r '[.sessions[] | select(.pool == "desk")] | if length == 1 then .[0] | "\(.id) \(.state) \(.end_reason // "")" else "\(length) sessions" end' "$T/out"
}
viewer() {
	"$PROBE" -w -u "alice#desk" -C "$CA" "$GW" alice-pw >"$T/viewer.out" 2>&1 &
	VIEWER=$!
	for _ in $(seq 1 100); do
		[ "$(updates)" -ge 2 ] && return 0
		sleep 0.1
	done
	fail "the viewer: $(cat "$T/viewer.out") $(tail -3 "$T/gateway.log")"
}
wait_state() { # SECONDS WANT
	local n=$(($1 * 5))
	for _ in $(seq 1 "$n"); do
		[ "$(state)" = "$2" ] && return 0
		sleep 0.2
	done
	return 1
}

gw_start
viewer
read -r ID st _ <<<"$(state)"
[ "$st" = active ] || fail "the session through the gateway: $(state)"
echo "ok: session $ID active through the gateway"

# --- kill -9: nobody tells the broker ---------------------------------------------
gw_kill9
wait "$VIEWER" 2>/dev/null
VIEWER=
sleep 1
[ "$(state)" = "$ID active " ] || fail "after kill -9 of the gateway: $(state)"
gw_start
wait_state 10 "$ID disconnected " || fail "the restarted gateway's report: $(state)"
grep -q "gateway gw1 started: 1 sessions connected through it are disconnected" "$T/broker.log" ||
	fail "no broker line for the restart: $(grep -i gateway "$T/broker.log" | tail -3)"
grep -q "cannot tell the broker\|refused this gateway's start" "$T/gateway.log" &&
	fail "the gateway's report: $(grep -m1 "cannot tell\|refused this" "$T/gateway.log")"
echo "ok: the restarted gateway's report marks session $ID disconnected"

# --- the user comes back ----------------------------------------------------------------
viewer
wait_state 10 "$ID active " || fail "the reconnect: $(state)"
grep -q "^connected" "$T/viewer.out" || fail "the viewer after reconnecting: $(cat "$T/viewer.out")"
echo "ok: the viewer reconnects to session $ID"

# --- killed again, nobody comes back: disconnect_timeout (4 s) ends it ---------------------
gw_kill9
wait "$VIEWER" 2>/dev/null
VIEWER=
[ "$(state)" = "$ID active " ] || fail "after the second kill -9: $(state)"
gw_start
wait_state 10 "$ID disconnected " || fail "the second restart's report: $(state)"
wait_state 15 "$ID ended disconnect timeout" || fail "disconnect_timeout did not apply: $(state)"
echo "ok: with nobody back, the session ends by disconnect_timeout"

# --- the event's hostile forms --------------------------------------------------------------
ALICE=$(login alice alice-pw)
api POST /gateway/events '{"event":"started"}' "$ALICE" >/dev/null
expect 403 forbidden
api POST /gateway/events '{"event":"started"}' >/dev/null
expect 401
api POST /gateway/events "{\"event\":\"started\",\"session_id\":$ID}" "$GW_SECRET" >/dev/null
expect 400 bad_request
api POST /gateway/events '{"session_id":1}' "$GW_SECRET" >/dev/null
expect 400 bad_request
api POST /gateway/events '{"event":"started","at_ms":"soon"}' "$GW_SECRET" >/dev/null
expect 200
[ "$(jq .disconnected "$T/out")" = 0 ] || fail "a started event of nobody's: $(cat "$T/out")"
api POST /gateway/events '["started"]' "$GW_SECRET" >/dev/null
expect 400
echo "ok: hostile forms of the event"

kill -TERM "$GW_PID"
wait "$GW_PID"
rc=$?
GW_PID=
[ $rc = 0 ] || fail "the gateway stopped with status $rc: $(tail -5 "$T/gateway.log")"
grep -q "AddressSanitizer\|LeakSanitizer\|runtime error" "$T/gateway.log" &&
	fail "a sanitizer report: $(grep -m3 "Sanitizer\|runtime error" "$T/gateway.log")"
be_stop
[ "$BE_RC" = 0 ] || fail "the broker's exit status is $BE_RC"
echo "ok: gateway restart"
