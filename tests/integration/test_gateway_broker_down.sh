#!/bin/bash
# The broker unreachable, with real pieces: relays are running (a VNC
# viewer, libvncclient's vnc-probe, on a real Xvnc through the gateway; an
# RDP passthrough with a ticket to an echo backend), then the broker is
# killed (SIGKILL, both processes).
#  - New logins are refused with a message the client shows: a VNC viewer's
#    SecurityResult reason, xfreerdp's ErrorInfo at the login step, an
#    X.224 negotiation failure for a ticket.
#  - The running relays carry on: the viewer still gets framebuffer
#    updates, bytes still go both ways on the RDP relay.
#  - The gateway logs each refusal and each report it could not make.
#  - When the broker is back, logins work again, without touching the
#    gateway; and the relays that carried on are reported when they end.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
PROBE=$BUILD/tests/tools/vnc-probe

be_setup
GW_PORT=$(free_port)
RDP_PORT=$(free_port)
XPORT=$(free_port)
ECHO_PORT=$(free_port)
be_gateway_conf "$GW_PORT" "$RDP_PORT" user=nobody handshake_timeout=20s input_report=500ms
be_conf_append "
[pool desk]
driver = static
hosts = 127.0.0.1:$XPORT
users = alice

[pool rdesk]
protocol = rdp
driver = static
hosts = 127.0.0.1:$ECHO_PORT
users = alice"
# Slow machines: a ticket must outlive a python start.
sed -i "s|^ticket_ttl = .*|ticket_ttl = 60s|" "$T/portico.conf"
Xvnc -displayfd 1 -interface 127.0.0.1 -rfbport "$XPORT" -SecurityTypes None \
	-geometry 320x240 -nolisten tcp >"$T/xvnc.display" 2>"$T/xvnc.log" &
XVNC_PID=$!
# The RDP "desktop": every byte back as it came (the passthrough relays
# whatever follows the Connection Request).
python3 -c '
import socket, sys, threading
srv = socket.create_server(("127.0.0.1", int(sys.argv[1])))
def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
while True:
    c, _ = srv.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
' "$ECHO_PORT" &
ECHO_PID=$!
be_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
cleanup() {
	kill $GW_PID $XVNC_PID $ECHO_PID ${VIEWER:-} ${XVFB_PID:-} 2>/dev/null
	[ -n "${RELAY_PID:-}" ] && kill $RELAY_PID 2>/dev/null
	wait $GW_PID 2>/dev/null
	be_cleanup
}
trap cleanup EXIT
for _ in $(seq 1 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null && break
	sleep 0.1
done
GW=127.0.0.1:$GW_PORT
CA=$T/pki/ca.pem
updates() { grep -c '^update' "$T/viewer.out"; }

# --- relays running: a viewer, and an RDP passthrough ------------------------------------
"$PROBE" -w -u "alice#desk" -C "$CA" "$GW" alice-pw >"$T/viewer.out" 2>&1 &
VIEWER=$!
for _ in $(seq 1 100); do
	[ "$(updates)" -ge 2 ] && break
	sleep 0.1
done
[ "$(updates)" -ge 2 ] || fail "the viewer: $(cat "$T/viewer.out") $(tail -3 "$T/gateway.log")"
ALICE=$(login alice alice-pw)
TICKET=$(api POST /resources/rdesk/launch "" "$ALICE" | jq -r .ticket)
[ ${#TICKET} = 43 ] || fail "no RDP ticket: $(cat "$T/out")"
coproc RELAY { python3 tests/tools/rdp-hostile.py 127.0.0.1 "$RDP_PORT" relay "$TICKET" 2>&1; }
RELAY_PID=$RELAY_PID
read -r -t 60 line <&"${RELAY[0]}" || fail "the RDP relay did not start: $(tail -3 "$T/gateway.log")"
[ "$line" = "relayed Cookie: mstshash=alice" ] || fail "the RDP relay: $line: $(grep rdp "$T/gateway.log" | tail -3)"
echo before >&"${RELAY[1]}"
read -r -t 30 line <&"${RELAY[0]}"
[ "$line" = "echo before" ] || fail "bytes over the RDP relay: $line"
api GET "/admin/sessions?state=live" "" "$(login carol carol-pw)" >/dev/null
[ "$(jq '[.sessions[] | select(.state == "active")] | length' "$T/out")" = 2 ] ||
	fail "two active sessions expected: $(cat "$T/out")"
echo "ok: a VNC and an RDP relay running"

# --- the broker goes --------------------------------------------------------------------
be_kill9
n0=$(updates)
# A viewer logging in is told why, in words it shows.
out=$("$PROBE" -u "alice#desk" -C "$CA" "$GW" alice-pw 2>&1) && fail "a login without a broker: $out"
grep -q "the service is unavailable: try again later" <<<"$out" || fail "what a viewer is told: $out"
grep -q "vnc 127.0.0.1 user alice#desk: refused: broker unreachable" "$T/gateway.log" ||
	fail "no refusal line: $(tail -3 "$T/gateway.log")"
# A ticket cannot be redeemed: the client gets a negotiation failure.
r=$(python3 tests/tools/rdp-hostile.py 127.0.0.1 "$RDP_PORT" from 127.0.0.1 "$TICKET")
[ "$r" = "negotiation failure 2" ] || fail "a ticket without a broker: $r"
grep -q "rdp 127.0.0.1: refused: the broker is unreachable" "$T/gateway.log" ||
	fail "no refusal line for the ticket: $(tail -3 "$T/gateway.log")"
# xfreerdp with a password: an ErrorInfo it shows.
Xvfb -displayfd 1 -screen 0 800x600x24 -nolisten tcp >"$T/xvfb.display" 2>/dev/null &
XVFB_PID=$!
for _ in $(seq 1 50); do
	[ -s "$T/xvfb.display" ] && break
	sleep 0.1
done
DISPLAY=:$(cat "$T/xvfb.display") timeout 30 xfreerdp /v:127.0.0.1:$RDP_PORT /cert:ignore \
	"/u:alice#rdesk" /p:alice-pw >"$T/rdp.log" 2>&1 </dev/null
grep -q "There are no available endpoints in the pool managed by the Connection Broker" "$T/rdp.log" ||
	fail "what xfreerdp shows without a broker: $(tail -3 "$T/rdp.log")"
grep -q "rdp 127.0.0.1 user alice#rdesk: refused: the broker is unreachable" "$T/gateway.log" ||
	fail "no refusal line for the login step: $(tail -3 "$T/gateway.log")"
echo "ok: new logins refused with a message the client shows"
# Meanwhile the relays carry on.
for _ in $(seq 1 50); do
	[ "$(updates)" -ge $((n0 + 3)) ] && break
	sleep 0.1
done
[ "$(updates)" -ge $((n0 + 3)) ] || fail "the viewer got no updates without the broker: $(tail -2 "$T/viewer.out")"
kill -0 $VIEWER || fail "the viewer was dropped"
echo during >&"${RELAY[1]}"
read -r -t 30 line <&"${RELAY[0]}"
[ "$line" = "echo during" ] || fail "bytes over the RDP relay without the broker: $line"
# Input reports it could not make are said, not lost silently.
sleep 1
grep -q "cannot report to the broker" "$T/gateway.log" || fail "no line for a report that could not be made"
echo "ok: the relays carry on ($(updates) updates so far)"

# --- the broker comes back ----------------------------------------------------------------
be_start
out=$("$PROBE" -u "alice#desk" -C "$CA" "$GW" alice-pw 2>&1) || fail "a login once the broker is back: $out"
grep -q "size=320x240" <<<"$out" || fail "the screen once the broker is back: $out"
echo again >&"${RELAY[1]}"
read -r -t 30 line <&"${RELAY[0]}"
[ "$line" = "echo again" ] || fail "the RDP relay after the broker came back: $line"
# The relays that carried on end, and the broker hears it.
exec {RELAY[1]}>&-
kill $VIEWER
wait $VIEWER 2>/dev/null
VIEWER=
wait_idle() { api GET "/admin/sessions?state=all" "" "$(login carol carol-pw)" |
	jq -e '[.sessions[] | select(.state == "active")] | length == 0' >/dev/null; }
for _ in $(seq 1 50); do
	wait_idle && break
	sleep 0.2
done
wait_idle || fail "sessions still active after their relays ended: $(cat "$T/out")"
kill -0 $GW_PID || fail "the gateway died"
echo "ok: logins work again once the broker is back"

# --- stopping with relays open: each end reaches the broker ---------------------------------
"$PROBE" -w -u "alice#desk" -C "$CA" "$GW" alice-pw >"$T/viewer.out" 2>&1 &
VIEWER=$!
TICKET=$(api POST /resources/rdesk/launch "" "$ALICE" | jq -r .ticket)
coproc RELAY2 { python3 tests/tools/rdp-hostile.py 127.0.0.1 "$RDP_PORT" relay "$TICKET" 2>&1; }
RELAY_PID=$RELAY2_PID
read -r -t 60 line <&"${RELAY2[0]}"
[ "$line" = "relayed Cookie: mstshash=alice" ] || fail "the second RDP relay: $line"
for _ in $(seq 1 100); do
	[ "$(updates)" -ge 1 ] && break
	sleep 0.1
done
ADMIN=$(login carol carol-pw)
api GET "/admin/sessions?state=live" "" "$ADMIN" >/dev/null
[ "$(jq '[.sessions[] | select(.state == "active")] | length' "$T/out")" = 2 ] ||
	fail "two active sessions before the stop: $(cat "$T/out")"
kill -TERM $GW_PID
wait $GW_PID
rc=$?
[ $rc = 0 ] || fail "the gateway stopped with status $rc: $(tail -5 "$T/gateway.log")"
tail -1 "$T/gateway.log" | grep -q ": stopped$" || fail "the last line is not 'stopped': $(tail -3 "$T/gateway.log")"
grep -q "vnc 127.0.0.1 user alice: session [0-9]* disconnected (operation canceled)" "$T/gateway.log" ||
	fail "no disconnect line for the VNC relay at stop"
grep -q "rdp 127.0.0.1 user alice: session [0-9]* disconnected (operation canceled)" "$T/gateway.log" ||
	fail "no disconnect line for the RDP relay at stop"
api GET "/admin/sessions?state=all" "" "$ADMIN" >/dev/null
[ "$(jq '[.sessions[] | select(.state == "active")] | length' "$T/out")" = 0 ] ||
	fail "the broker did not hear the disconnects made at stop: $(cat "$T/out")"
grep -q "AddressSanitizer\|LeakSanitizer\|runtime error" "$T/gateway.log" &&
	fail "a sanitizer report: $(grep -m3 "Sanitizer\|runtime error" "$T/gateway.log")"
echo "ok: stopping with a VNC and an RDP relay open: both disconnects reached the broker"
echo "ok: gateway broker down"
