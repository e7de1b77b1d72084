#!/bin/bash
# A session host's heartbeat and the broker's own starts agree (issue 13,
# faults that lose nothing).  A real portico-sessiond (host1); the test
# freezes its network side with SIGSTOP to hold a start where it wants it,
# and speaks for host1 with host1's own certificate meanwhile (a heartbeat
# is what the frozen sessiond would have sent).
#  - a heartbeat that reports a session running before its start call has
#    returned (the start's answer was slower than the next beat): the start
#    is a success, the user gets their session, nothing is stopped;
#  - starts that wait in host1's queue (max_starts_per_host = 1) for longer
#    than the 30 s the broker gives an unreported session: heartbeats that
#    do not list them (they have not reached the host yet) do not end them;
#    each start gets its own answer (host1 is frozen: unavailable).
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

be_setup
sd_setup
for i in $(seq 1 8); do be_user "q$i" "qpw$i" $((6100 + i)) queued; done
be_conf_append "
[pool desk]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host1
users = $SD_USER
groups = queued"
sed -i "s|^login_window = .*|&\nmax_starts_per_host = 1\nmax_start_queue = 8\nstart_timeout = 90s|" \
	"$T/portico.conf"
be_start
ADMIN=$(login carol carol-pw)
sd_start
trap sd_cleanup EXIT
NET=$(pgrep -P "$SD_PID" -x portico-session)
[ -n "$NET" ] || fail "no network side of host1"

# beat JSON-SESSIONS: a heartbeat as host1 (its certificate).
beat() {
	STATUS=$(curl -s -o "$T/beat.out" -w '%{http_code}' --cacert "$T/tls/server.pem" \
		--cert "$T/pki/host1.pem" --key "$T/pki/host1.key" -X POST \
		-H 'Content-Type: application/json' \
		--data-binary "{\"name\":\"host1\",\"load\":0,\"mem_free_kb\":0,\"sessions\":$1}" \
		"$B/hosts/heartbeat")
	[ "$STATUS" = 200 ] || fail "heartbeat as host1: HTTP $STATUS $(cat "$T/beat.out")"
}
sessions() { api GET "/admin/sessions?state=all" "" "$ADMIN" >/dev/null; cat "$T/out"; }

# --- 1. the heartbeat tells first -------------------------------------------------
U=$(login "$SD_USER" user-pw)
[ ${#U} = 43 ] || fail "$SD_USER could not log in"
kill -STOP "$NET" || fail "cannot freeze host1"
curl -s -o "$T/launch1.out" -w '%{http_code}' --max-time 60 --cacert "$T/tls/server.pem" \
	-X POST -H "Authorization: Bearer $U" "$B/resources/desk/launch" >"$T/launch1.status" &
LPID=$!
id=
for _ in $(seq 1 30); do
	id=$(sessions | jq -r --arg u "$SD_USER" '.sessions[] | select(.user == $u and .state == "starting") | .id')
	[ -n "$id" ] && break
	sleep 0.1
done
[ -n "$id" ] || { kill -CONT "$NET"; fail "no starting session of $SD_USER: $(sessions)"; }
# What host1 will answer (drv_xvnc.c: the display's socket in the session's directory).
backend="unix:$T/run/sessions/$id/vnc.sock"
beat "[{\"id\":$id,\"backend\":\"$backend\",\"secret\":\"\"}]"
[ "$(sessions | jq -r --argjson id "$id" '.sessions[] | select(.id == $id) | .state')" = ready ] ||
	{ kill -CONT "$NET"; fail "the heartbeat did not mark session $id ready: $(sessions)"; }
kill -CONT "$NET"
wait "$LPID"
[ "$(cat "$T/launch1.status")" = 200 ] ||
	fail "a start the heartbeat reported first: HTTP $(cat "$T/launch1.status") $(cat "$T/launch1.out")"
[ "$(jq -r .session.id "$T/launch1.out")" = "$id" ] || fail "launch answered another session: $(cat "$T/launch1.out")"
sleep 2 # four heartbeats of the real host1
st=$(sessions | jq -r --argjson id "$id" '.sessions[] | select(.id == $id) | "\(.state) \(.end_reason)"')
case "$st" in ready* | active*) ;; *) fail "session $id after its start: $st" ;; esac
pgrep -u "$SD_USER" -x xterm >/dev/null || fail "the xterm of $SD_USER was stopped"
grep -q "session $id.*ended while starting" "$T/broker.log" && fail "the broker stopped session $id"
echo "ok: a start that the heartbeat reported first is the user's"

# --- 2. starts queued longer than the grace ------------------------------------------
kill -STOP "$NET" || fail "cannot freeze host1"
pids=()
for i in $(seq 1 8); do
	tok=$(login "q$i" "qpw$i")
	[ ${#tok} = 43 ] || { kill -CONT "$NET"; fail "q$i could not log in"; }
	curl -s -o "$T/q$i.out" -w '%{http_code}' --max-time 120 --cacert "$T/tls/server.pem" \
		-X POST -H "Authorization: Bearer $tok" "$B/resources/desk/launch" >"$T/q$i.status" &
	pids+=($!)
done
# host1 (frozen) beats on through the test's hand, listing what it runs:
# the queued starts are not among them.
start=$(date +%s)
while :; do
	beat "[{\"id\":$id,\"backend\":\"$backend\",\"secret\":\"\"}]"
	left=0
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=$((left + 1)); done
	[ "$left" = 0 ] && break
	[ $(($(date +%s) - start)) -lt 150 ] || { kill -CONT "$NET"; fail "the queued starts did not end"; }
	sleep 1
done
kill -CONT "$NET"
took=$(($(date +%s) - start))
echo "   8 starts answered in $took s"
[ "$took" -ge 35 ] || fail "the starts did not wait past the 30 s grace ($took s): the test proves nothing"
for i in $(seq 1 8); do
	st=$(cat "$T/q$i.status") code=$(jq -r .error "$T/q$i.out")
	[ "$st $code" = "503 host_unavailable" ] || fail "q$i: HTTP $st $(cat "$T/q$i.out")"
done
ended=$(sessions | jq -r '[.sessions[] | select(.user | startswith("q")) | .end_reason] | group_by(.) | map("\(.[0]): \(length)") | join(", ")')
echo "   the queued sessions ended: $ended"
[ "$ended" = "session host unavailable: 8" ] ||
	fail "queued starts were ended by a heartbeat, not by their own start: $ended"
st=$(sessions | jq -r --argjson id "$id" '.sessions[] | select(.id == $id) | .state')
[ "$st" != ended ] || fail "session $id ended meanwhile"
echo "ok: heartbeats leave starts still queued alone"

be_stop
[ "$BE_RC" = 0 ] || fail "the broker's exit status is $BE_RC"
echo "ok: broker reconcile"
