#!/bin/bash
# Control that takes effect at once: an admin's disconnect, logoff and
# message, a session's timeout, and a host drained with --now reach the
# gateway that carries the viewer within 2 s (its long-poll on
# GET /gateway/control, not its next input report, which this gateway sends
# only every 10 minutes), and the gateway closes that connection with the
# reason logged; a browser hears the reason in the close frame and gets
# messages as text frames.  Real pieces: the broker, a session host with Xvnc,
# the gateway, libvncclient (vnc-probe -w) and a WebSocket client.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

be_setup
sd_setup
GW_PORT=$(free_port)
HP=$(free_port)
be_gateway_conf "$GW_PORT" - user="$SD_SVC" https_listen=127.0.0.1:$HP input_report=10m \
	max_pending_per_addr=50
XPORT=$(free_port)
Xvnc -displayfd 1 -interface 127.0.0.1 -rfbport "$XPORT" -SecurityTypes None -desktop ctl \
	-geometry 320x240 -nolisten tcp >"$T/xvnc.display" 2>"$T/xvnc.log" &
XVNC_PID=$!
be_conf_append "
[pool desk]
driver = static
hosts = 127.0.0.1:$XPORT
users = $SD_USER
max_sessions_per_user = 10

[pool short]
driver = static
hosts = 127.0.0.1:$XPORT
users = $SD_USER
max_duration = 3s

[pool xterm]
kind = app
driver = xvnc
command = /usr/bin/xterm -geometry 80x24+10+10
hosts = host1
users = $SD_USER
geometry = 320x240"
be_start
ADMIN=$(login carol carol-pw)
sd_start
start_gw() {
	"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
	GW_PID=$!
	wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$GW_PORT) 2>/dev/null" ||
		fail "the gateway does not listen: $(tail -5 "$T/gateway.log")"
}
start_gw
trap 'kill $GW_PID $XVNC_PID $PROBE_PID 2>/dev/null; wait $GW_PID 2>/dev/null; sd_cleanup' EXIT
PROBE_PID=
CA=$T/pki/ca.pem
GW=127.0.0.1:$GW_PORT
ms() { date +%s%3N; }

# hold POOL: a viewer logged in through the gateway, staying connected
# (vnc-probe -w: exit 3 when the gateway ends the connection).
hold() {
	"$PROBE" -w -u "$SD_USER#$1" -C "$CA" "$GW" user-pw >"$T/probe.out" 2>"$T/probe.err" &
	PROBE_PID=$!
	wait_for 20 grep -q "^connected" "$T/probe.out" || fail "no viewer on $1: $(cat "$T/probe.err") $(tail -3 "$T/gateway.log")"
}
# gone WHAT: the viewer ended within 2 s of T0 (ms), by the gateway (exit 3).
gone() {
	local rc end
	for _ in $(seq 1 40); do kill -0 "$PROBE_PID" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$PROBE_PID" 2>/dev/null && fail "$1: the viewer is still connected after 2 s"
	end=$(ms)
	wait "$PROBE_PID"
	rc=$?
	PROBE_PID=
	[ "$rc" = 3 ] || fail "$1: the viewer ended with $rc, not 'connection lost': $(cat "$T/probe.err")"
	echo "   $1: the viewer was closed $((end - T0)) ms after the action"
}
live_id() { # live_id POOL: the live session of the pool
	api GET "/admin/sessions?state=live&pool=$1" "" "$ADMIN" | jq -r '.sessions[0].id // empty'
}

# The gateway's long-poll is under way before anything is asked of it.
wait_for 5 grep -q "GET /api/v1/gateway/control" "$T/broker.log" 2>/dev/null || true

# --- an admin's disconnect closes the VNC viewer at once -------------------------------
hold desk
S=$(live_id desk)
[ -n "$S" ] || fail "no live session in desk"
T0=$(ms)
api POST "/admin/sessions/$S/disconnect" "" "$ADMIN" >/dev/null
expect 200
gone "disconnect"
grep -q "vnc 127.0.0.1 user $SD_USER: session $S: disconnect (disconnected by an administrator (carol))" "$T/gateway.log" ||
	fail "the gateway did not log why: $(tail -3 "$T/gateway.log")"
[ "$(api GET "/admin/sessions?state=all&pool=desk" "" "$ADMIN" | jq -r ".sessions[] | select(.id == $S) | .state")" = disconnected ] ||
	fail "the session is not disconnected: $(cat "$T/out")"

# --- a browser: a message as a text frame, then a logoff with its reason ----------------
TK=$(api POST /resources/desk/launch '{}' "$(login "$SD_USER" user-pw)" | jq -r '.ticket // empty')
[ ${#TK} = 43 ] || fail "no ticket: $(cat "$T/out")"
/usr/bin/python3 tests/tools/ws-rfb.py 127.0.0.1 "$HP" hold "$TK" >"$T/ws.out" 2>&1 &
WS_PID=$!
wait_for 10 grep -q "^update" "$T/ws.out" || fail "no browser session: $(cat "$T/ws.out")"
S=$(live_id desk)
T0=$(ms)
api POST "/admin/sessions/$S/message" '{"text":"The server restarts at 18:00.\nSave your work."}' "$ADMIN" >/dev/null
expect 200
wait_for 2 grep -q '^text ' "$T/ws.out" || fail "the message did not reach the browser within 2 s: $(cat "$T/ws.out")"
[ "$(sed -n 's/^text //p' "$T/ws.out" | jq -r .text)" = $'The server restarts at 18:00.\nSave your work.' ] ||
	fail "the message as the browser got it: $(cat "$T/ws.out")"
echo "   message: in the browser $(($(ms) - T0)) ms after the action"
grep -q "session $S: message sent to the browser" "$T/gateway.log" || fail "no log line for the message"
T0=$(ms)
api POST "/admin/sessions/$S/logoff" "" "$ADMIN" >/dev/null
expect 200
wait_for 2 grep -q '^close' "$T/ws.out" || fail "the browser was not closed within 2 s: $(cat "$T/ws.out")"
grep -qx "close 4000 logged off by an administrator (carol)" "$T/ws.out" || fail "the browser's close frame: $(cat "$T/ws.out")"
echo "   logoff: the browser was closed $(($(ms) - T0)) ms after the action"
wait "$WS_PID"
# A message to a VNC viewer has no channel: said in the log, not lost silently.
hold desk
S=$(live_id desk)
api POST "/admin/sessions/$S/message" '{"text":"hello"}' "$ADMIN" >/dev/null
expect 200
wait_for 2 grep -q "session $S: message not sent to this viewer" "$T/gateway.log" || fail "no log line for a message a viewer cannot show"
# A user's own logoff (the portal's "log off") closes the viewer too.
T0=$(ms)
api POST "/sessions/$S/logoff" "" "$(login "$SD_USER" user-pw)" >/dev/null
expect 200
gone "the user's logoff"

# --- a session's timeout ----------------------------------------------------------------
hold short
S=$(live_id short)
T0=$(($(api GET "/admin/sessions?state=live&pool=short" "" "$ADMIN" | jq -r '.sessions[0].created_ms') + 3000))
for _ in $(seq 1 60); do kill -0 "$PROBE_PID" 2>/dev/null || break; sleep 0.1; done
gone "max_duration"
grep -q "session $S: timeout" "$T/gateway.log" || fail "the gateway did not say it was a timeout: $(tail -3 "$T/gateway.log")"

# --- a message to a stock VNC viewer: a notice on the session's own screen --------------
hold xterm
S=$(live_id xterm)
secret=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select secret from sessions where id=?", (int(sys.argv[2]),)).fetchone()[0])' "$T/db/portico.db" "$S")
screen() { "$PROBE" "$T/run/sessions/$S/vnc.sock" "$secret" 2>/dev/null | sed -n 's/.*hash=//p'; }
# The xterm draws itself a moment after the session starts: a still screen first.
for _ in $(seq 1 30); do
	before=$(screen)
	sleep 0.3
	[ -n "$before" ] && [ "$before" = "$(screen)" ] && break
done
T0=$(ms)
api POST "/admin/sessions/$S/message" '{"text":"-file /etc/shadow\nThe host restarts in 5 minutes."}' "$ADMIN" >/dev/null
expect 200
wait_for 5 grep -q "session $S: a notice shown to $SD_USER" "$T/sessiond.log" ||
	fail "sessiond did not show the notice: $(grep -a "notice\|message" "$T/sessiond.log" "$T/broker.log" | tail -3)"
pgrep -u "$SD_USER" -x xmessage >/dev/null || fail "no notice window runs as the session's user"
wait_for 5 eval '[ "$(screen)" != "$before" ]' || fail "the session's screen did not change with the notice"
echo "   message: on the session's screen $(($(ms) - T0)) ms after the action (stock viewers see it there)"
# The text is the window's, never its options (it goes on fd 3, not argv).
pgrep -u "$SD_USER" -a xmessage | grep -q "shadow" && fail "the notice's text reached xmessage's command line"
grep -q "session $S: message not sent to this viewer" "$T/gateway.log" || fail "the gateway's line for a VNC viewer"
for body in '{"text":""}' '{"text":"a\u0007b"}' '{}'; do
	sd_api POST "/sessions/$S/message" "$body" >/dev/null
	[ "$STATUS" = 400 ] || fail "sessiond took notice $body: $STATUS"
done
sd_api POST "/sessions/999999/message" '{"text":"x"}' >/dev/null
[ "$STATUS" = 404 ] || fail "sessiond took a notice for no session: $STATUS"
sd_api GET "/sessions/$S/message" >/dev/null
[ "$STATUS" = 405 ] || fail "GET on a notice: $STATUS"

# --- a host drained with --now ----------------------------------------------------------
T0=$(ms)
api POST "/admin/hosts/host1/drain?now=1" "" "$ADMIN" >/dev/null
expect 200
gone "drain --now"
[ "$(api GET "/admin/sessions?state=all&pool=xterm" "" "$ADMIN" | jq -r ".sessions[] | select(.id == $S) | .end_reason")" = "host drained now" ] ||
	fail "the session did not end as drained: $(cat "$T/out")"
api GET /admin/hosts "" "$ADMIN" | jq -e '.hosts[] | select(.name == "host1") | .drained == true' >/dev/null ||
	fail "host1 is not drained: $(cat "$T/out")"
api POST "/admin/hosts/host1/undrain?now=1" "" "$ADMIN" >/dev/null
expect 400 bad_request

# --- hostile and malformed --------------------------------------------------------------
for q in "after=abc" "after=-5" "after=99999999999999999999999" "wait=61" "wait=-1" "after=1&wait=x"; do
	api GET "/gateway/control?$q" "" "$GW_SECRET" >/dev/null
	expect 400 bad_request
done
api GET "/gateway/control?after=0&wait=0" "" "$ADMIN" >/dev/null
expect 403
api GET "/gateway/control?after=0&wait=0" >/dev/null
expect 401
# wait=0 answers at once; after=-1 says where "now" is and nothing before.
api GET "/gateway/control?after=-1&wait=0" "" "$GW_SECRET" >/dev/null
expect 200
jq -e '(.control | length) == 0 and .next > 0' "$T/out" >/dev/null || fail "after=-1: $(cat "$T/out")"
api GET "/gateway/control?after=0&wait=0" "" "$GW_SECRET" >/dev/null
jq -e '[.control[].action] | index("disconnect") != null and index("message") != null and index("timeout") != null and index("drain") != null' "$T/out" >/dev/null ||
	fail "the rows: $(cat "$T/out")"
S=$(live_id desk || true)
for body in '{}' '{"text":""}' '{"text":5}' '{"text":"a\u0001b"}' "{\"text\":\"$(head -c 401 /dev/zero | tr '\0' x)\"}" 'not json'; do
	api POST "/admin/sessions/1/message" "$body" "$ADMIN" >/dev/null
	[ "$STATUS" = 400 ] || fail "message body $body: $STATUS $(cat "$T/out")"
done
api POST "/admin/sessions/999999/message" '{"text":"x"}' "$ADMIN" >/dev/null
expect 404 no_such_session
"$BUILD/bin/portico-admin" session message 12x hello >/dev/null 2>&1
[ $? = 2 ] || fail "portico-admin session message with a bad id is not a usage error"
"$BUILD/bin/portico-admin" session message 12 >/dev/null 2>&1
[ $? = 2 ] || fail "portico-admin session message without text is not a usage error"
"$BUILD/bin/portico-admin" host drain host1 --later >/dev/null 2>&1
[ $? = 2 ] || fail "portico-admin host drain --later is not a usage error"

# --- a broker that restarts: the gateway says so once, then carries on --------------------
be_stop
sleep 2
be_start
ADMIN=$(login carol carol-pw)
hold desk
S=$(live_id desk)
wait_for 10 grep -q "control: the broker answers again" "$T/gateway.log" ||
	fail "the gateway's long-poll did not come back: $(grep control "$T/gateway.log")"
[ "$(grep -c "control: cannot reach the broker" "$T/gateway.log")" = 1 ] ||
	fail "the broker's absence is not said once: $(grep control "$T/gateway.log")"
T0=$(ms)
api POST "/admin/sessions/$S/disconnect" "" "$ADMIN" >/dev/null
gone "disconnect after the broker restarted"

# --- stopping does not wait out a held long-poll ---------------------------------------------
T0=$(ms)
kill -TERM "$GW_PID"
wait "$GW_PID"
[ $(($(ms) - T0)) -lt 3000 ] || fail "the gateway took $(($(ms) - T0)) ms to stop with its long-poll held"
api GET "/gateway/control?after=-1&wait=0" "" "$GW_SECRET" >/dev/null
NEXT=$(jq -r .next "$T/out")
T0=$(ms)
curl -s -o /dev/null --cacert "$T/tls/server.pem" -H "Authorization: Bearer $GW_SECRET" \
	"$B/gateway/control?after=$NEXT&wait=60" &
CURL_PID=$!
sleep 0.5
be_stop
[ $(($(ms) - T0)) -lt 3500 ] || fail "the broker took $(($(ms) - T0)) ms to stop with a long-poll held"
wait "$CURL_PID"
echo "ok: control takes effect at once"
