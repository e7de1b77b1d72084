#!/bin/bash
# portico-sessiond on a real session host: the broker starts an xterm app
# and a desktop through it (real PAM session, real Xvnc, a real VNC client
# looks at them), sessions end when their program exits or by timeout,
# a restarted sessiond adopts what runs, what killed X servers left in /tmp
# blocks no display, and bad requests leave nothing.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

be_setup
sd_setup
be_conf_append "
[pool xterm]
kind = app
driver = xvnc
command = /usr/bin/xterm -geometry 80x24+10+10
hosts = host1
users = $SD_USER, ghost, $SD_REFUSED
geometry = 1024x768

[pool desk]
kind = desktop
driver = xvnc
hosts = host1
users = $SD_USER
disconnect_timeout = 2s

[pool brief]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host1
users = $SD_USER
max_duration = 8s

[pool quiet]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host1
users = $SD_USER
idle_timeout = 8s

[pool broken]
kind = app
driver = xvnc
command = /nonexistent/program --flag
hosts = host1
users = $SD_USER"
# Tickets live 5 s in broker_env.sh; a start on a loaded 2-core machine
# can take longer than that before the ticket is redeemed.  Not what this
# test is about.
sed -i 's/^ticket_ttl = .*/ticket_ttl = 60s/' "$T/portico.conf"
be_start
ADMIN=$(login carol carol-pw)
sd_start
USER_TOKEN=$(login "$SD_USER" user-pw)
[ ${#USER_TOKEN} = 43 ] || fail "the test user cannot log in"

redeem() { # TICKET: redeem as the gateway; backend and secret into BACKEND, SECRET
	api POST /gateway/redeem "{\"ticket\":\"$1\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
	expect 200
	BACKEND=$(jq -r .backend "$T/out")
	SECRET=$(jq -r .secret "$T/out")
}
session_state() { # ID
	api GET "/admin/sessions?state=all" "" "$ADMIN" | jq -r ".sessions[] | select(.id == $1) | .state"
}
session_field() { # ID FIELD
	api GET "/admin/sessions?state=all" "" "$ADMIN" | jq -r ".sessions[] | select(.id == $1) | .$2"
}
no_processes() { ! pgrep -u "$SD_USER" >/dev/null; }

# --- an app session ------------------------------------------------------------
api POST /resources/xterm/launch '{"geometry":"800x600"}' "$USER_TOKEN" >/dev/null
expect 200
S1=$(jq -r .session.id "$T/out")
[ "$(jq -r .session.state "$T/out")" = ready ] || fail "launch: $(cat "$T/out")"
redeem "$(jq -r .ticket "$T/out")"
case $BACKEND in unix:"$T"/run/sessions/"$S1"/vnc.sock) ;; *) fail "backend $BACKEND" ;; esac
[ ${#SECRET} = 8 ] || fail "secret '$SECRET'"
sock=${BACKEND#unix:}
[ "$(stat -c '%U %a' "$sock")" = "$SD_SVC 600" ] || fail "socket is $(stat -c '%U %a' "$sock")"
out=$("$PROBE" "$sock" "$SECRET") || fail "the VNC client could not log in to the session"
echo "   $out"
grep -q "size=800x600 " <<<"$out" || fail "geometry: $out"
painted=$(sed -n 's/.*painted=\([0-9]*\).*/\1/p' <<<"$out")
[ "$painted" -gt 1000 ] || fail "the xterm is not on the screen: $out"
"$PROBE" "$sock" wrong-pw 2>/dev/null && fail "a wrong VNC password was accepted"
# Somebody else than the gateway's user cannot open the socket.
su -s /bin/sh "$SD_USER" -c "python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' $sock" 2>/dev/null &&
	fail "the session's user could open the console socket"
# The program runs as the user, with the user's groups, in a clean environment.
xpid=$(pgrep -n -u "$SD_USER" -x xterm) || fail "no xterm of $SD_USER"
grep -qz "^PORTICO_SESSION=$S1\$" "/proc/$xpid/environ" || fail "xterm $xpid is not session $S1's"
grep -q "^Groups:.*\b$SD_GID\b" "/proc/$xpid/status" || fail "supplementary group missing: $(grep Groups "/proc/$xpid/status")"
[ "$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$xpid/status")" = "$(id -u "$SD_USER")$(id -u "$SD_USER")$(id -u "$SD_USER")$(id -u "$SD_USER")" ] ||
	fail "xterm does not run as the user alone"
env_of=$(tr '\0' '\n' <"/proc/$xpid/environ")
grep -q "^HOME=$T/home-$SD_USER$" <<<"$env_of" || fail "HOME: $env_of"
grep -q "^DISPLAY=:" <<<"$env_of" || fail "DISPLAY: $env_of"
grep -qE "^(LD_PRELOAD|PAM_WRAPPER|NSS_WRAPPER|ASAN_OPTIONS)" <<<"$env_of" && fail "sessiond's environment leaked: $env_of"
# The program exits: the session ends within a second.
t0=$(date +%s%N)
kill "$xpid"
wait_for 1 eval '[ "$(session_state '"$S1"')" = ended ]' || fail "session $S1 still $(session_state "$S1") after its program exited"
echo "   app exit to ended: $((($(date +%s%N) - t0) / 1000000)) ms"
api GET "/admin/sessions?state=all" "" "$ADMIN" >/dev/null
[ "$(jq -r ".sessions[] | select(.id == $S1) | .end_reason" "$T/out")" = "application exited" ] ||
	fail "end reason: $(cat "$T/out")"
wait_for 3 no_processes || fail "processes of $SD_USER left: $(pgrep -u "$SD_USER" -l)"
[ ! -e "$T/run/sessions/$S1" ] || fail "the session directory was left behind"
echo "ok: app session"

# --- a desktop: reconnect, disconnect timeout ---------------------------------------
api POST /resources/desk/launch "" "$USER_TOKEN" >/dev/null
expect 200
S2=$(jq -r .session.id "$T/out")
redeem "$(jq -r .ticket "$T/out")"
B2=$BACKEND
"$PROBE" "${B2#unix:}" "$SECRET" >/dev/null || fail "desktop not reachable"
api POST /resources/desk/launch "" "$USER_TOKEN" >/dev/null
[ "$(jq -r .session.id "$T/out")" = "$S2" ] && [ "$(jq -r .reconnect "$T/out")" = true ] ||
	fail "reconnect: $(cat "$T/out")"
redeem "$(jq -r .ticket "$T/out")"
[ "$BACKEND" = "$B2" ] || fail "reconnect gave another display: $BACKEND"
[ "$(sd_api GET /sessions | jq '.sessions | length')" = 1 ] || fail "sessiond runs $(cat "$T/out")"
echo "ok: desktop and reconnect"

# --- sessiond restarted: adopted, none lost, none doubled ---------------------------
sd_kill9
pgrep -u "$SD_USER" Xvnc >/dev/null || fail "the desktop died with sessiond"
REG0=$(grep -c "session host host1 registered" "$T/broker.log")
sd_start
wait_for 20 eval '[ "$(grep -c "session host host1 registered" "$T/broker.log")" -gt '"$REG0"' ]' ||
	fail "the restarted sessiond did not register: $(tail -5 "$T/sessiond.log")"
wait_for 5 eval '[ "$(sd_api GET /sessions | jq ".sessions | length")" = 1 ]' || fail "not adopted: $(cat "$T/out")"
[ "$(jq -r '.sessions[0].id' "$T/out")" = "$S2" ] || fail "adopted the wrong session: $(cat "$T/out")"
sleep 1.5 # several heartbeats
[ "$(session_state "$S2")" = ready ] || fail "session $S2 is $(session_state "$S2") after the restart"
[ "$(pgrep -u "$SD_USER" -c Xvnc)" = 1 ] || fail "$(pgrep -u "$SD_USER" -c Xvnc) displays after the restart"
grep -q "session $S2 of $SD_USER adopted" "$T/sessiond.log" || fail "no adoption line"
echo "ok: restart adopts"

# The broker killed and started again: the session is still there, still
# running, and the host keeps reporting it.
be_kill9
be_start
sleep 1.5
[ "$(session_state "$S2")" = ready ] || fail "after a broker restart session $S2 is $(session_state "$S2")"
pgrep -u "$SD_USER" Xvnc >/dev/null || fail "the desktop died with the broker"
echo "ok: broker restart"

# Disconnect timeout (2 s): the broker ends it and the host stops it.
api POST /gateway/events "{\"session_id\":$S2,\"event\":\"connect\"}" "$GW_SECRET" >/dev/null
api POST /gateway/events "{\"session_id\":$S2,\"event\":\"disconnect\"}" "$GW_SECRET" >/dev/null
expect 200
wait_for 20 eval '[ "$(session_state '"$S2"')" = ended ]' || fail "disconnect timeout did not end $S2"
wait_for 5 no_processes || fail "the desktop still runs after its timeout"
[ "$(sd_api GET /sessions | jq '.sessions | length')" = 0 ] || fail "sessiond still lists $(cat "$T/out")"
echo "ok: disconnect timeout"

# Maximum duration and idle timeout (input reported by the gateway), both
# 8 s: longer than a start takes on a loaded 2-core machine (both count
# from the session's creation, start included).  Judged by the broker's
# own clock (created_ms, last_input_ms, ended_ms), not by this script's
# pace: each ends neither early nor much late.
api POST /resources/brief/launch "" "$USER_TOKEN" >/dev/null
expect 200
S3=$(jq -r .session.id "$T/out")
api POST /resources/quiet/launch "" "$USER_TOKEN" >/dev/null
expect 200
S4=$(jq -r .session.id "$T/out")
# Input every 0.5 s keeps S4 alive past its idle_timeout since creation.
for i in $(seq 1 100); do
	api POST /gateway/events "{\"session_id\":$S4,\"event\":\"input\"}" "$GW_SECRET" >/dev/null
	expect 200
	created=$(session_field "$S4" created_ms)
	last=$(session_field "$S4" last_input_ms)
	[ $((last - created)) -ge 10000 ] && break
	[ "$i" = 100 ] && fail "the broker does not record $S4's input: $(cat "$T/out")"
	sleep 0.5
done
[ "$(session_state "$S4")" = ready ] || fail "input did not keep $S4 alive"
wait_for 30 eval '[ "$(session_state '"$S3"')" = ended ]' || fail "max_duration did not end $S3"
wait_for 30 eval '[ "$(session_state '"$S4"')" = ended ]' || fail "idle_timeout did not end $S4"
api GET "/admin/sessions?state=all" "" "$ADMIN" >/dev/null
[ "$(jq -r ".sessions[] | select(.id == $S3) | .end_reason" "$T/out")" = "maximum duration" ] || fail "reason of $S3"
[ "$(jq -r ".sessions[] | select(.id == $S4) | .end_reason" "$T/out")" = "idle timeout" ] || fail "reason of $S4"
lived=$(jq -r ".sessions[] | select(.id == $S3) | .ended_ms - .created_ms" "$T/out")
idle=$(jq -r ".sessions[] | select(.id == $S4) | .ended_ms - .last_input_ms" "$T/out")
echo "   max_duration 8 s ended after $lived ms; idle_timeout 8 s after $idle ms idle"
[ "$lived" -ge 8000 ] && [ "$lived" -lt 20000 ] || fail "max_duration of 8 s ended $S3 after $lived ms"
[ "$idle" -ge 8000 ] && [ "$idle" -lt 20000 ] || fail "idle_timeout of 8 s ended $S4 after $idle ms idle"
wait_for 5 no_processes || fail "timed-out sessions still run"
echo "ok: maximum duration and idle timeout"

# --- a keymap a killed X server left in /tmp blocks no display ---------------------
# An X server of another user, killed as it started, left the keymap it
# compiled, /tmp/server-N.xkm, for each display a new session would take
# next (the lowest ones on which no X server listens: Xvnc -displayfd
# takes no lock file): that user's files, which this session's X server
# cannot replace in sticky /tmp.
PLANTED=()
trap 'rm -f "${PLANTED[@]}"; sd_cleanup' EXIT
declare -A XLIVE=()
while read -r n; do XLIVE[$n]=1; done < <(awk '$4 == "00010000" && match($8, /\/tmp\/\.X11-unix\/X[0-9]+$/) { print substr($8, RSTART + 16) }' /proc/net/unix)
for n in $(seq 0 300); do
	[ -n "${XLIVE[$n]:-}" ] && continue
	[ -e "/tmp/server-$n.xkm" ] && continue
	echo stale >"/tmp/server-$n.xkm"
	chown "$SD_USER2" "/tmp/server-$n.xkm"
	PLANTED+=("/tmp/server-$n.xkm")
	[ ${#PLANTED[@]} = 5 ] && break
done
api POST /resources/xterm/launch "" "$USER_TOKEN" >/dev/null
expect 200
S5=$(jq -r .session.id "$T/out")
redeem "$(jq -r .ticket "$T/out")"
out=$("$PROBE" "${BACKEND#unix:}" "$SECRET") || fail "the VNC client could not log in to session $S5"
[ "$(sed -n 's/.*painted=\([0-9]*\).*/\1/p' <<<"$out")" -gt 1000 ] || fail "the xterm is not on the screen: $out"
xpid=$(pgrep -n -u "$SD_USER" -x xterm) || fail "no xterm of $SD_USER"
display=$(tr '\0' '\n' <"/proc/$xpid/environ" | sed -n 's/^DISPLAY=:\([0-9]*\).*/\1/p')
[[ " ${PLANTED[*]} " == *" /tmp/server-$display.xkm "* ]] ||
	fail "the session took display :$display, none of those given a stale keymap (${PLANTED[*]})"
for f in "${PLANTED[@]}"; do
	[ ! -e "$f" ] || fail "$f, left by a dead X server, is still there"
done
grep -q "removed /tmp/server-$display.xkm, left by an X server of uid $(id -u "$SD_USER2")" "$T/sessiond.log" ||
	fail "sessiond did not say what it removed: $(grep "server-" "$T/sessiond.log" | tail -3)"
kill "$xpid"
wait_for 5 eval '[ "$(session_state '"$S5"')" = ended ]' || fail "session $S5 still $(session_state "$S5")"
echo "ok: display :$display free of the keymap a killed X server left"

# --- launch failures reach the user, leave nothing ---------------------------------
GHOST=$(login ghost ghost-pw)
api POST /resources/xterm/launch "" "$GHOST" >/dev/null
expect 502 start_failed
grep -q "user ghost does not exist on host1" "$T/out" || fail "unknown user: $(cat "$T/out")"
api POST /resources/broken/launch "" "$USER_TOKEN" >/dev/null
expect 502 start_failed
grep -q "/nonexistent/program: no such program" "$T/out" || fail "missing program: $(cat "$T/out")"
REFUSED=$(login "$SD_REFUSED" refused-pw)
api POST /resources/xterm/launch "" "$REFUSED" >/dev/null
expect 502 start_failed
grep -q "PAM refused the account of $SD_REFUSED" "$T/out" || fail "PAM refusal: $(cat "$T/out")"
api GET "/admin/sessions?state=live" "" "$ADMIN" >/dev/null
[ "$(jq '.sessions | length' "$T/out")" = 0 ] || fail "failed starts left live sessions: $(cat "$T/out")"
wait_for 3 no_processes || fail "a failed start left processes"
[ -z "$(ls "$T/run/sessions")" ] || fail "a failed start left $(ls "$T/run/sessions")"
[ -z "$(ls "$T/run/state")" ] || fail "a failed start left state $(ls "$T/run/state")"
echo "ok: launch failures"

# --- hostile requests to sessiond --------------------------------------------------
STATUS=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/pki/ca.pem" "$SD/sessions")
[ "$STATUS" = 401 ] || fail "no credentials: $STATUS"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/pki/ca.pem" -H "Authorization: Bearer $ADMIN" "$SD/sessions")
[ "$STATUS" = 401 ] || fail "a user's token: $STATUS"
sd_api POST /sessions '{"id":' >/dev/null
expect 400 bad_json
sd_api POST /sessions '[1,2]' >/dev/null
expect 400 bad_json
sd_api POST /sessions '{"id":-4,"user":"x","pool":{"name":"p"}}' >/dev/null
expect 400 bad_request
sd_api POST /sessions "{\"id\":99,\"user\":\"../../etc\",\"pool\":{\"name\":\"p\",\"kind\":\"app\",\"driver\":\"xvnc\",\"command\":\"/bin/true\"}}" >/dev/null
expect 400 bad_request
sd_api POST /sessions "{\"id\":99,\"user\":\"$SD_USER\",\"pool\":{\"name\":\"p\",\"kind\":\"app\",\"driver\":\"xvnc\"}}" >/dev/null
expect 400 bad_request
sd_api POST /sessions "{\"id\":99,\"user\":\"$SD_USER\",\"geometry\":\"99999x1\",\"pool\":{\"name\":\"p\",\"kind\":\"desktop\",\"driver\":\"xvnc\"}}" >/dev/null
expect 400 bad_geometry
sd_api POST /sessions "{\"id\":99,\"user\":\"root\",\"pool\":{\"name\":\"p\",\"kind\":\"desktop\",\"driver\":\"xvnc\"}}" >/dev/null
expect 422 start_failed
grep -q "never run as root" "$T/out" || fail "root session: $(cat "$T/out")"
sd_api DELETE /sessions/12345 >/dev/null
expect 404 no_such_session
sd_api DELETE /sessions/abc >/dev/null
expect 400 bad_id
sd_api PUT /sessions >/dev/null
expect 405
head -c 200000 /dev/zero | tr '\0' 'a' >"$T/big"
STATUS=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/pki/ca.pem" -H "Authorization: Bearer $BROKER_SECRET" --data-binary @"$T/big" "$SD/sessions")
[ "$STATUS" = 413 ] || fail "huge body: $STATUS"
printf 'GET / HTTP/1.1\r\n\r\n' | timeout 5 nc -q 2 127.0.0.1 "$SD_PORT" >/dev/null 2>&1
kill -0 "$SD_PID" || fail "sessiond died of hostile input"
[ "$(sd_api GET /sessions | jq '.sessions | length')" = 0 ] || fail "sessiond runs $(cat "$T/out")"
wait_for 3 no_processes || fail "hostile requests left processes"
echo "ok: hostile input"
echo "ok: sessiond"
