#!/bin/bash
# noVNC's way in, /ws/vnc on the gateway's HTTPS front, with a real Xvnc
# and a WebSocket client written out by hand (tests/tools/ws-rfb.py) so
# that it can also lie:
#  - a ticket from the portal (launched through the gateway, so bound to
#    the browser's address) opens the session: RFB 3.8, security None
#    inside the authenticated TLS, the backend's own ServerInit and its
#    pixels; the broker hears connect and disconnect;
#  - the same ticket again, one from another address, a forged one: the
#    SecurityResult's reason and the WebSocket's close frame (1008) say why;
#  - a handshake that is not WebSocket 13, another site's Origin, no
#    ticket: an HTTP refusal;
#  - frames that lie (unmasked, 2^62 bytes long, RSV bits, text, a long
#    ping, half a header): each closed with its RFC 6455 code and a log
#    line, and a good client is served afterwards.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

be_setup
HP=$(free_port)
XPORT=$(free_port)
be_gateway_conf - - user=nobody https_listen=127.0.0.1:$HP
be_conf_append "
[pool desk]
driver = static
hosts = 127.0.0.1:$XPORT
users = alice"
Xvnc -displayfd 1 -interface 127.0.0.1 -rfbport "$XPORT" -SecurityTypes None -desktop wsdesk \
	-geometry 320x240 -nolisten tcp >"$T/xvnc.display" 2>"$T/xvnc.log" &
XVNC_PID=$!
be_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
cleanup() {
	kill $GW_PID $XVNC_PID 2>/dev/null
	wait $GW_PID 2>/dev/null
	be_cleanup
}
trap cleanup EXIT
for _ in $(seq 1 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$HP") 2>/dev/null && break
	sleep 0.1
done
P=https://127.0.0.1:$HP
WS=(/usr/bin/python3 tests/tools/ws-rfb.py 127.0.0.1 "$HP")

# A browser at 127.0.0.2 signs in and launches through the portal's API.
J=$T/jar
C=(curl -s --cacert "$T/tls/rdp.pem" --interface 127.0.0.2 -b "$J" -c "$J" -H "Origin: $P")
"${C[@]}" -o /dev/null "$P/"
CSRF=$(awk '$6 == "portico_csrf" {print $7}' "$J")
"${C[@]}" -o /dev/null -H "X-CSRF-Token: $CSRF" "$P/api/v1/login" -d '{"username":"alice","password":"alice-pw"}'
launch() {
	"${C[@]}" -H "X-CSRF-Token: $CSRF" "$P/api/v1/resources/desk/launch" -d '{}' | jq -r '.ticket // empty'
}
TK=$(launch)
[ ${#TK} = 43 ] || fail "no ticket from the portal's launch"

# Bound to the browser's address: from another, refused, and spent.
out=$("${WS[@]}" rfb "$TK")
[[ $out == "refused ticket refused"*$'\n'"close 1008 ticket refused"* ]] || fail "a ticket from another address: $out"
TK=$(launch)
out=$(WS_SRC=127.0.0.2 "${WS[@]}" rfb "$TK" 2>&1)
[[ $out =~ ^serverinit\ 320\ 240\ wsdesk$'\n'update\ [1-9][0-9]*\ rects$ ]] || fail "the session through /ws/vnc: $out"
grep -q "vnc 127.0.0.2 user alice: connected to session" "$T/gateway.log" || fail "no connect line"
for _ in $(seq 1 50); do
	grep -q "vnc 127.0.0.2 user alice: session .* disconnected" "$T/gateway.log" && break
	sleep 0.1
done
grep -q "vnc 127.0.0.2 user alice: session .* disconnected" "$T/gateway.log" || fail "no disconnect line"
# Used once: the same ticket again is refused with the reason.
out=$(WS_SRC=127.0.0.2 "${WS[@]}" rfb "$TK" 2>&1)
[[ $out == *"close 1008 ticket refused (unknown, used or expired)"* ]] || fail "a ticket used twice: $out"
out=$(WS_SRC=127.0.0.2 "${WS[@]}" rfb "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
[[ $out == *"close 1008 ticket refused"* ]] || fail "a forged ticket: $out"

# Handshakes that are not noVNC's.
[ "$("${WS[@]}" nokey)" = "http 400" ] || fail "no Sec-WebSocket-Key"
[ "$("${WS[@]}" version)" = "http 426 13" ] || fail "WebSocket version 8"
[ "$("${WS[@]}" origin https://evil.example "$(launch)")" = "http 403" ] || fail "another site's Origin"
[ "$("${WS[@]}" origin "$P" short)" = "http 400" ] || fail "a malformed ticket"
st=$(curl -s --cacert "$T/tls/rdp.pem" -o /dev/null -w '%{http_code}' "$P/ws/vnc?ticket=$TK")
[ "$st" = 400 ] || fail "a plain GET of /ws/vnc: HTTP $st"

# Frames that lie.
for c in "unmasked:close 1002" "biglen:close 1009" "rsv:close 1002" "text:close 1003" \
	"bigping:close 1002" "truncated:closed" "ping:pong hello"; do
	out=$("${WS[@]}" "${c%%:*}")
	[[ $out == "${c#*:}"* ]] || fail "${c%%:*}: '$out', not '${c#*:}'"
done
grep -q "vnc 127.0.0.1: WebSocket: unmasked frame from a client" "$T/gateway.log" ||
	fail "no log line for an unmasked frame"
pt_running $GW_PID || fail "the gateway died"
TK=$(launch)
out=$(WS_SRC=127.0.0.2 "${WS[@]}" rfb "$TK" 2>&1)
[[ $out =~ ^serverinit\ 320\ 240\ wsdesk$'\n'update\ [1-9][0-9]*\ rects$ ]] || fail "a good client afterwards: $out"
echo ok
