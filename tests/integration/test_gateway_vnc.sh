#!/bin/bash
# portico-gateway's VNC path with real pieces: a broker, a session host
# running real Xvnc sessions, and libvncclient logging in with VeNCrypt
# X509Plain through the gateway; what it sees is compared with a direct
# connection to the session.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

be_setup
sd_setup
GW_PORT=$(free_port)
be_gateway_conf "$GW_PORT" "$(free_port)" public_host=gateway.test user="$SD_SVC" handshake_timeout=3s \
	max_pending_per_addr=50 input_report=500ms
# A static VNC backend the test owns (and kills).
STATIC_PORT=$(free_port)
Xvnc -displayfd 1 -interface 127.0.0.1 -rfbport "$STATIC_PORT" -SecurityTypes None \
	-geometry 320x240 -nolisten tcp >"$T/static.display" 2>"$T/static.log" &
STATIC_PID=$!
be_conf_append "
[pool xterm]
kind = app
driver = xvnc
command = /usr/bin/xterm -geometry 80x24+10+10
hosts = host1
users = $SD_USER, $SD_USER2
geometry = 640x480

[pool shared]
driver = static
hosts = 127.0.0.1:$STATIC_PORT
users = $SD_USER"
be_start
ADMIN=$(login carol carol-pw)
sd_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
trap 'kill $GW_PID $STATIC_PID 2>/dev/null; wait $GW_PID 2>/dev/null; sd_cleanup' EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$GW_PORT) 2>/dev/null" || fail "the gateway does not listen: $(cat "$T/gateway.log")"
GW=127.0.0.1:$GW_PORT
CA=$T/pki/ca.pem
gwprobe() { "$PROBE" -u "$1" -C "$CA" "$GW" "$2" 2>"$T/probe.err"; }
# The session's own secret, as the broker keeps it (to connect directly).
sqlite_secret() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select secret from sessions where id=?", (int(sys.argv[2]),)).fetchone()[0])' "$T/db/portico.db" "$1"; }

# --- a user logs in at the gateway: PAM, launch, the session's screen -------------
out=$(gwprobe "$SD_USER#xterm" user-pw) || fail "login through the gateway: $(cat "$T/probe.err") $(tail -5 "$T/gateway.log")"
grep -q "size=640x480 " <<<"$out" || fail "geometry through the gateway: $out"
api GET "/admin/sessions?state=live" "" "$ADMIN" >/dev/null
S1=$(jq -r '.sessions[0].id' "$T/out")
# The xterm draws itself a moment after the session starts.
painted() { out=$(gwprobe "$SD_USER#xterm" user-pw) && [ "$(sed -n 's/.*painted=\([0-9]*\).*/\1/p' <<<"$out")" -gt 1000 ]; }
wait_for 5 painted || fail "nothing on the screen through the gateway: $out $(cat "$T/probe.err")"
echo "   through the gateway: $out"
# What a direct connection to the session sees, pixel for pixel.
direct=$("$PROBE" "$T/run/sessions/$S1/vnc.sock" "$(sqlite_secret "$S1")") || fail "direct connection"
[ "${direct##*hash=}" = "${out##*hash=}" ] || fail "the gateway shows another screen than the session: $out / $direct"
# The same session again: the same screen, pixel for pixel.
out2=$(gwprobe "$SD_USER#xterm" user-pw) || fail "second login: $(cat "$T/probe.err")"
[ "${out2##*hash=}" = "${out##*hash=}" ] || fail "reconnect shows another screen: $out2"
api GET "/admin/sessions?state=live" "" "$ADMIN" >/dev/null
[ "$(jq '.sessions | length' "$T/out")" = 1 ] || fail "reconnect made another session: $(cat "$T/out")"
echo "ok: login through the gateway and reconnect"

# --- tickets ----------------------------------------------------------------------
TOKEN=$(login "$SD_USER" user-pw)
TICKET=$(api POST /resources/xterm/launch "" "$TOKEN" | jq -r .ticket)
out3=$(gwprobe ticket "$TICKET") || fail "ticket login: $(cat "$T/probe.err")"
[ "${out3##*hash=}" = "${out##*hash=}" ] || fail "the ticket led elsewhere: $out3"
gwprobe ticket "$TICKET" >/dev/null && fail "a used ticket was taken"
grep -q "login failed" "$T/probe.err" || fail "used ticket: $(cat "$T/probe.err")"
OLD=$(api POST /resources/xterm/launch "" "$TOKEN" | jq -r .ticket)
sleep 6 # ticket_ttl = 5s
gwprobe ticket "$OLD" >/dev/null && fail "an expired ticket was taken"
grep -q "login failed" "$T/probe.err" || fail "expired ticket: $(cat "$T/probe.err")"
echo "ok: tickets"

# --- refusals say why, and never whether a user exists ---------------------------------
gwprobe "$SD_USER#xterm" wrong-pw >/dev/null && fail "a wrong password got in"
grep -q "login failed" "$T/probe.err" || fail "wrong password: $(cat "$T/probe.err")"
gwprobe "nobody#xterm" x >/dev/null && fail "an unknown user got in"
grep -q "login failed" "$T/probe.err" || fail "unknown user: $(cat "$T/probe.err")"
echo "ok: refusals"

# --- the broker hears connect, disconnect and bytes -----------------------------------
sleep 0.5
api GET "/admin/sessions?state=all" "" "$ADMIN" >/dev/null
[ "$(jq -r ".sessions[] | select(.id == $S1) | .state" "$T/out")" = disconnected ] ||
	fail "session state after the viewers left: $(cat "$T/out")"
[ "$(jq -r ".sessions[] | select(.id == $S1) | .bytes_down" "$T/out")" -gt 1000 ] ||
	fail "no bytes counted: $(cat "$T/out")"
echo "ok: events"

# --- TigerVNC's viewer under Xvfb ---------------------------------------------------------
Xvfb -displayfd 1 -screen 0 800x600x24 -nolisten tcp >"$T/xvfb.display" 2>/dev/null &
XVFB_PID=$!
wait_for 5 test -s "$T/xvfb.display" || fail "Xvfb did not start"
XD=:$(cat "$T/xvfb.display")
blank=$(DISPLAY=$XD xwd -root -silent >"$T/blank.xwd" && python3 tests/tools/xwd-painted.py "$T/blank.xwd")
DISPLAY=$XD VNC_USERNAME="$SD_USER#xterm" VNC_PASSWORD=user-pw xtigervncviewer \
	-SecurityTypes X509Plain -X509CA "$CA" -X509CRL /dev/null -Shared=0 \
	"127.0.0.1::$GW_PORT" >"$T/viewer.log" 2>&1 &
VIEWER=$!
trap 'kill $VIEWER $XVFB_PID $GW_PID $STATIC_PID 2>/dev/null; wait $GW_PID 2>/dev/null; sd_cleanup' EXIT
n0=$(grep -c "connected to session" "$T/gateway.log")
wait_for 10 eval '[ "$(grep -c "connected to session" "$T/gateway.log")" -gt "$n0" ]' ||
	fail "the TigerVNC viewer did not get through: $(cat "$T/viewer.log") $(tail -3 "$T/gateway.log")"
viewer_sees() {
	DISPLAY=$XD xwd -root -silent >"$T/screen.xwd" || return 1
	seen=$(python3 tests/tools/xwd-painted.py "$T/screen.xwd")
	[ "${seen##*painted=}" -gt 100000 ]
}
wait_for 10 viewer_sees || fail "the viewer's screen stays blank: $seen (blank: $blank)"
echo "   TigerVNC viewer: $seen on its screen (before: $blank)"
# The viewer's window shows the session's pixels: as many lit as the
# framebuffer has (the rest of its screen is black).
[ "${seen##*painted=}" = "$(sed -n 's/.*painted=\([0-9]*\).*/\1/p' <<<"$out")" ] ||
	fail "the viewer shows $seen, the session has $out"
# Shared=0 from the viewer did not drop the other viewers: a probe still gets in alongside.
gwprobe "$SD_USER#xterm" user-pw >/dev/null || fail "a second viewer beside TigerVNC: $(cat "$T/probe.err")"
kill -0 $VIEWER || fail "the TigerVNC viewer was dropped: $(cat "$T/viewer.log")"
kill $VIEWER $XVFB_PID
wait $VIEWER $XVFB_PID 2>/dev/null
echo "ok: TigerVNC viewer"

# --- two users at once, each on their own session -------------------------------------
last_input() { api GET "/admin/sessions?state=live" "" "$ADMIN" | jq -r "[.sessions[] | select(.user == \"$SD_USER\" and .pool == \"xterm\")][0].last_input_ms // 0"; }
before=$(last_input)
"$PROBE" -w -u "$SD_USER#xterm" -C "$CA" "$GW" user-pw >"$T/w1" 2>&1 &
W1=$!
out_b=$(gwprobe "$SD_USER2#xterm" user2-pw) || fail "second user: $(cat "$T/probe.err")"
grep -q "name=xterm ($SD_USER2)" <<<"$out_b" || fail "the second user reached $out_b"
wait_for 5 grep -q connected "$T/w1" || fail "first user: $(cat "$T/w1")"
# The viewer's messages count as input: the broker hears of it while the
# viewer is still connected (every input_report).
wait_for 3 eval '[ "$(last_input)" -gt "$before" ]' || fail "no input reported: $(cat "$T/out")"
kill -0 $W1 || fail "the first viewer left early"
kill $W1 2>/dev/null
wait $W1 2>/dev/null
api GET "/admin/sessions?state=live" "" "$ADMIN" >/dev/null
[ "$(jq "[.sessions[] | select(.pool == \"xterm\")] | length" "$T/out")" = 2 ] || fail "sessions: $(cat "$T/out")"
echo "ok: two users"

# --- hostile clients --------------------------------------------------------------------
H="python3 tests/tools/rfb-hostile.py 127.0.0.1 $GW_PORT"
[ "$($H version)" = closed ] || fail "RFB 4.0 was not closed"
r=$($H rfb33)
grep -q "refused: RFB 3.3 is not supported" <<<"$r" || fail "RFB 3.3: $r"
r=$($H sectype)
grep -q "refused: only VeNCrypt" <<<"$r" || fail "security type 2: $r"
[ "$($H vencrypt)" = vencrypt-refused ] || fail "VeNCrypt 0.1 accepted"
[ "$($H subtype)" = subtype-refused ] || fail "VeNCrypt subtype 99 accepted"
# Anonymous TLS is off unless vnc_anon_tls says otherwise.
[ "$($H offered)" = "offered 262" ] || fail "offered: $($H offered)"
[ "$($H tlsplain)" = subtype-refused ] || fail "TLSPlain accepted while off"
[ "$($H tlsgarbage)" = closed ] || fail "TLS garbage"
r=$($H bigname)
[ "$r" = "refused: login failed" ] || fail "a 1 MB user name: $r"
r=$($H nul)
[ "$r" = "refused: login failed" ] || fail "a NUL in the user name: $r"
r=$($H silent)
case $r in "closed after 3 s" | "closed after 4 s") ;; *) fail "a silent client: $r" ;; esac
r=$($H midway)
case $r in "closed after 3 s" | "closed after 4 s") ;; *) fail "a client that stopped midway: $r" ;; esac
# Connections not logged in yet: 50 from one address, the 51st refused.
[ "$($H hold 50)" = closed ] || fail "the 51st pending connection was served"
sleep 0.5
[ "$($H hold 10)" = banner ] || fail "the held connections were not let go"
[ "$($H garbage 1000)" = done ] || fail "1000 bad handshakes"
kill -0 "$GW_PID" || fail "the gateway died of hostile input"
out4=$(gwprobe "$SD_USER#xterm" user-pw) || fail "a good client after 1000 bad ones: $(cat "$T/probe.err")"
echo "ok: hostile input"

# --- the backend dies mid-session: the client is told, the session is disconnected ----------
"$PROBE" -w -u "$SD_USER#shared" -C "$CA" "$GW" user-pw >"$T/w2" 2>&1 &
W2=$!
wait_for 5 grep -q connected "$T/w2" || fail "static backend: $(cat "$T/w2") $(tail -3 "$T/gateway.log")"
api GET "/admin/sessions?pool=shared" "" "$ADMIN" >/dev/null
S5=$(jq -r '.sessions[0].id' "$T/out")
[ "$(jq -r '.sessions[0].state' "$T/out")" = active ] || fail "not active: $(cat "$T/out")"
kill "$STATIC_PID"
wait $W2
[ $? = 3 ] && grep -q "connection lost" "$T/w2" || fail "the client was not told: $(cat "$T/w2")"
wait_for 3 eval '[ "$(api GET "/admin/sessions?pool=shared" "" "$ADMIN" | jq -r ".sessions[0].state")" = disconnected ]' ||
	fail "session $S5 not marked disconnected: $(cat "$T/out")"
echo "ok: backend died"

kill -0 "$GW_PID" || fail "the gateway died"
echo "ok: gateway vnc"
