#!/bin/bash
# sessiond's network side killed (kill -9) while desktops run, then sessiond
# restarted with a root side that is slow to adopt them: the broker must
# still list every session live afterwards (the restarted agent reports
# nothing before its root side has said what it adopted, never an empty or
# partial list), every desktop keeps running, and every user reconnects to
# their own.  Then a start in flight when the network side is killed: its
# monitor, finding nobody to report to, ends what it started.
#
# The root side is made slow for real: strace (as a detached tracer)
# holds each pidfd_open of the adoption for 0.7 s, as a loaded machine or a
# stopped process would.  Needs root and strace.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

command -v strace >/dev/null || fail "this test needs strace (Debian package strace)"
be_setup
sd_setup
POOLS="deskA deskB deskC"
for p in $POOLS; do
	be_conf_append "
[pool $p]
kind = desktop
driver = xvnc
hosts = host1
users = $SD_USER, $SD_USER2
geometry = 1024x768"
done
be_conf_append "
[pool xterm]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host1
users = $SD_USER"
# A pool nobody uses until the last part: its start is the one in flight.
be_conf_append "
[pool deskD]
kind = desktop
driver = xvnc
hosts = host1
users = $SD_USER
geometry = 800x600"
# Not what this test is about: a ticket outlives a slow redeem on a loaded
# machine.
sed -i 's/^ticket_ttl = .*/ticket_ttl = 60s/' "$T/portico.conf"
be_start
ADMIN=$(login carol carol-pw)
sd_start
TOKEN1=$(login "$SD_USER" user-pw)
TOKEN2=$(login "$SD_USER2" user2-pw)
[ ${#TOKEN1} = 43 ] && [ ${#TOKEN2} = 43 ] || fail "the test users cannot log in"

declare -A ID BACKEND
# sessiond started (in SD_PID) with each call of SYSCALL held for USECONDS by
# strace, a detached tracer that follows every process sessiond forks.
sd_start_slow() { # SYSCALL USECONDS
	local e args=()
	sd_env
	for e in "${SD_ENV[@]}"; do args+=(-E "$e"); done
	strace -D -f --seccomp-bpf -qq -o /dev/null -e trace="$1" -e inject="$1":delay_enter="$2" \
		"${args[@]}" "$SD_BIN" -c "$T/portico.conf" >>"$T/sessiond.log" 2>&1 &
	SD_PID=$!
}
redeem() { # TICKET: backend and secret into RB, RS
	api POST /gateway/redeem "{\"ticket\":\"$1\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
	expect 200
	RB=$(jq -r .backend "$T/out")
	RS=$(jq -r .secret "$T/out")
}
# The desktop at backend RB, with secret RS, is USER's: a real VNC client
# logs in and sees the desktop named after its user.
is_theirs() { # USER
	local out
	out=$("$PROBE" "${RB#unix:}" "$RS") || fail "the VNC client could not log in to $RB"
	grep -q "($1)" <<<"$out" || fail "the desktop at $RB is not $1's: $out"
}
session_field() { # ID FIELD
	api GET "/admin/sessions?state=all" "" "$ADMIN" | jq -r ".sessions[] | select(.id == $1) | .$2"
}
live_ids() {
	api GET "/admin/sessions?state=live" "" "$ADMIN" | jq -r '[.sessions[] | select(.state != "ended") | .id] | sort | join(" ")'
}

# --- six desktops, two users; and an app that will end unseen -------------------
api POST /resources/xterm/launch "" "$TOKEN1" >/dev/null
expect 200
APP=$(jq -r .session.id "$T/out")
for u in 1 2; do
	user=$SD_USER token=$TOKEN1
	[ $u = 2 ] && user=$SD_USER2 token=$TOKEN2
	for p in $POOLS; do
		api POST "/resources/$p/launch" "" "$token" >/dev/null
		expect 200
		ID[$u$p]=$(jq -r .session.id "$T/out")
		redeem "$(jq -r .ticket "$T/out")"
		BACKEND[$u$p]=$RB
		is_theirs "$user"
	done
done
ALL=$(printf '%s\n' "${ID[@]}" | sort -n | tr '\n' ' ' | sed 's/ $//')
[ "$(live_ids)" = "$APP $ALL" ] || fail "live before the kill: $(live_ids), expected $APP $ALL"
displays() { pgrep -d' ' Xvnc -u "$SD_USER,$SD_USER2" | tr ' ' '\n' | sort -n | tr '\n' ' '; }
[ "$(displays | wc -w)" = 7 ] || fail "$(displays | wc -w) displays run, expected 7"
echo "ok: six desktops of two users: $ALL"

# The broker ends a live session its host no longer reports only once it is
# 30 s old (broker/hosts.c, RECONCILE_GRACE_MS): wait past that, so that a
# stale report from the restarted agent would end them.
sleep 31

# --- kill -9 of the network side --------------------------------------------------
# Killed with an answer of the root side unread, as in a storm: the network
# side is stopped while the app's program exits (its end goes into the
# socket), then killed.  The root side reads ECONNRESET, not a message.
NET=$(pgrep -P "$SD_PID" -x portico-session) || fail "no network side of sessiond"
XTERM=
for p in $(pgrep -u "$SD_USER" -x xterm); do
	grep -qz "^PORTICO_SESSION=$APP\$" "/proc/$p/environ" && XTERM=$p
done
[ -n "$XTERM" ] || fail "no xterm of session $APP"
kill -STOP "$NET"
kill "$XTERM"
ended=0
wait_for 10 eval '[ ! -e "$T/run/state/'"$APP"'" ]' && ended=1
kill -KILL "$NET" # a stopped network side would keep sessiond from stopping
[ $ended = 1 ] || fail "the app's monitor did not end"
wait_for 10 eval '[ "$(displays | wc -w)" = 6 ]' || fail "the app's display outlived it: $(displays)"
XVNC=$(displays)
wait_for 10 eval '! kill -0 '"$SD_PID"' 2>/dev/null' || fail "the root side outlived its network side"
wait "$SD_PID" 2>/dev/null
grep -q "the network side has gone away" "$T/sessiond.log" ||
	fail "the root side did not say its network side went away: $(tail -5 "$T/sessiond.log")"
grep -q "malformed message from the network side" "$T/sessiond.log" &&
	fail "a killed network side was logged as a malformed message: $(grep malformed "$T/sessiond.log")"
pgrep -u "$SD_USER" Xvnc >/dev/null && pgrep -u "$SD_USER2" Xvnc >/dev/null ||
	fail "the desktops died with the network side"
echo "ok: network side killed; its root side says it went away"

# --- restarted, with a slow root side ---------------------------------------------
REG0=$(grep -c "session host host1 registered" "$T/broker.log")
ADOPT0=$(grep -c "the root side has reported what runs here" "$T/sessiond.log")
sd_start_slow pidfd_open 700000
t0=$(date +%s%N)
# While it adopts (six times 0.7 s), the agent tells the broker nothing.
wait_for 10 eval 'pgrep -P '"$SD_PID"' -x portico-session >/dev/null' || fail "no network side after the restart"
sleep 1.5
[ "$(grep -c "the root side has reported what runs here" "$T/sessiond.log")" = "$ADOPT0" ] ||
	fail "the slow root side was not slow: $(tail -5 "$T/sessiond.log")"
[ "$(grep -c "session host host1 registered" "$T/broker.log")" = "$REG0" ] ||
	fail "the agent registered before its root side had reported what it adopted"
wait_for 30 eval '[ "$(grep -c "session host host1 registered" "$T/broker.log")" -gt '"$REG0"' ]' ||
	fail "the restarted agent did not register: $(tail -5 "$T/sessiond.log")"
echo "   adopted and registered after $((($(date +%s%N) - t0) / 1000000)) ms"
grep -q "the root side has reported what runs here (6 sessions)" "$T/sessiond.log" ||
	fail "adoption: $(grep "reported what runs" "$T/sessiond.log")"
# Several heartbeats (500 ms) after the register: nothing ends.
sleep 2.5
# The app's end was lost with the network side: the broker learns it from
# the register (it is not reported), and ends that one alone.
for id in $ALL; do
	grep -q "session $id of .* no longer runs it" "$T/broker.log" &&
		fail "the broker ended adopted session $id: $(grep "no longer runs" "$T/broker.log")"
done
[ "$(live_ids)" = "$ALL" ] || fail "live after the restart: '$(live_ids)', expected $ALL"
[ "$(session_field "$APP" state)" = ended ] || fail "the app that ended is $(session_field "$APP" state)"
sd_api GET /sessions >/dev/null
[ "$(jq -r '[.sessions[].id] | sort | join(" ")' "$T/out")" = "$ALL" ] ||
	fail "sessiond runs $(cat "$T/out")"
[ "$(displays)" = "$XVNC" ] ||
	fail "the displays changed: $(pgrep -a Xvnc -u "$SD_USER,$SD_USER2")"
echo "ok: every session still live, every desktop still running"

# --- every user reconnects to their own ---------------------------------------------
for u in 1 2; do
	user=$SD_USER token=$TOKEN1
	[ $u = 2 ] && user=$SD_USER2 token=$TOKEN2
	for p in $POOLS; do
		api POST "/resources/$p/launch" "" "$token" >/dev/null
		expect 200
		[ "$(jq -r .session.id "$T/out")" = "${ID[$u$p]}" ] && [ "$(jq -r .reconnect "$T/out")" = true ] ||
			fail "$user in $p: $(cat "$T/out"), expected a reconnect to ${ID[$u$p]}"
		redeem "$(jq -r .ticket "$T/out")"
		[ "$RB" = "${BACKEND[$u$p]}" ] || fail "$user in $p reconnected to $RB, not ${BACKEND[$u$p]}"
		is_theirs "$user"
	done
done
echo "ok: every user reconnects to their own desktops"

# --- the network side killed while a start is in flight -------------------------------
# The root side that forked the start's monitor exits with its network side,
# and the one that replaces it looks for state files before the monitor has
# written its own: nobody would ever stop that session, and the broker,
# whose call failed, has ended it.  The monitor must end it itself when it
# finds nobody to report its start to.  strace holds the monitor's fchown
# of the session's directory (after PAM has opened the session: pam_wrapper
# here loses its files when the root side exits) for 3 s, so the start is
# in flight for seconds; the restarted sessiond is not traced.
sd_stop
REG0=$(grep -c "session host host1 registered" "$T/broker.log")
sd_start_slow fchown 3000000
wait_for 30 eval '[ "$(grep -c "session host host1 registered" "$T/broker.log")" -gt '"$REG0"' ]' ||
	fail "the traced sessiond did not register: $(tail -5 "$T/sessiond.log")"
curl -s -o "$T/late.out" -w '%{http_code}' --cacert "$T/tls/server.pem" -X POST \
	-H "Authorization: Bearer $TOKEN1" "$B/resources/deskD/launch" >"$T/late.status" &
LATE_CURL=$!
late_id() { api GET "/admin/sessions?state=live" "" "$ADMIN" | jq -r '.sessions[] | select(.pool == "deskD" and .state == "starting") | .id'; }
LATE=
wait_for 10 eval 'LATE=$(late_id); [ -n "$LATE" ]' || fail "the launch in deskD did not reach the host"
wait_for 10 eval 'pgrep -x pt-session -P '"$SD_PID"' >/dev/null' ||
	fail "no monitor for session $LATE: $(grep -a -v "^ *$" "$T/sessiond.log" | tail -8)"
REG0=$(grep -c "session host host1 registered" "$T/broker.log")
NET=$(pgrep -P "$SD_PID" -x portico-session) || fail "no network side of sessiond"
kill -KILL "$NET"
wait_for 10 eval '! kill -0 '"$SD_PID"' 2>/dev/null' || fail "the root side outlived its network side"
wait "$SD_PID" 2>/dev/null
SD_PID=
[ ! -e "$T/run/state/$LATE" ] || fail "session $LATE wrote its state before the kill: the start was not in flight"
sd_start
wait_for 30 eval '[ "$(grep -c "session host host1 registered" "$T/broker.log")" -gt '"$REG0"' ]' ||
	fail "sessiond did not register after the kill: $(tail -5 "$T/sessiond.log")"
wait "$LATE_CURL"
[ "$(cat "$T/late.status")" != 200 ] || fail "a launch whose host went away was answered 200: $(cat "$T/late.out")"
echo "   the launch in flight was answered $(cat "$T/late.status") $(jq -r .error "$T/late.out" 2>/dev/null)"
# The monitor goes on (fchown held), finds the root side gone, ends it all.
wait_for 30 eval 'grep -q "session $LATE of $SD_USER ended: sessiond went away while it started" "$T/sessiond.log"' ||
	fail "the orphaned start's monitor did not end it: $(grep "session $LATE" "$T/sessiond.log" | tail -5)"
late_xvnc() {
	for p in $(pgrep -x Xvnc); do
		tr '\0' '\n' <"/proc/$p/cmdline" 2>/dev/null | grep -qx "$T/run/sessions/$LATE/passwd" && echo "$p"
	done
}
wait_for 10 eval '[ -z "$(late_xvnc)" ]' || fail "the orphaned start's display still runs: $(late_xvnc)"
[ ! -e "$T/run/state/$LATE" ] || fail "the orphaned start's state is left on the host: $(cat "$T/run/state/$LATE")"
[ ! -e "$T/run/sessions/$LATE" ] || fail "the orphaned start's directory is left on the host"
[ "$(session_field "$LATE" state)" = ended ] || fail "session $LATE is $(session_field "$LATE" state) at the broker"
sd_api GET /sessions >/dev/null
[ "$(jq -r '[.sessions[].id] | sort | join(" ")' "$T/out")" = "$ALL" ] ||
	fail "sessiond runs $(cat "$T/out"), expected $ALL"
[ "$(displays)" = "$XVNC" ] || fail "the displays changed: $(pgrep -a Xvnc -u "$SD_USER,$SD_USER2")"
# And the user's next launch starts a desktop that is theirs.
api POST /resources/deskD/launch "" "$TOKEN1" >/dev/null
expect 200
[ "$(jq -r .session.id "$T/out")" != "$LATE" ] || fail "the ended session $LATE was handed out again"
redeem "$(jq -r .ticket "$T/out")"
is_theirs "$SD_USER"
echo "ok: a start in flight when the network side died ends on the host too"
echo "ok: sessiond restart"
