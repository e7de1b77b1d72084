#!/bin/bash
# portico-sessiond when its root side does not keep up (issue 13): the
# root side is stopped (SIGSTOP) while requests arrive.  The network side
# keeps them in order and sends them once the root side reads again: every
# start it accepted is answered, none is lost or doubled, and it does not
# exit.  Past its bound it refuses with 503 "host busy", and takes requests
# again once the root side has caught up.  Stopping sessiond while a call
# to the broker is in flight waits for that call before anything it reads
# is freed.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

be_setup
sd_setup
# The broker is one source: 200 starts at once from it must all connect.
be_conf_append "max_connections = 512
max_connections_per_source = 512

[pool desk]
kind = desktop
driver = xvnc
hosts = host1
users = $SD_USER

[pool desk2]
kind = desktop
driver = xvnc
hosts = host1
users = $SD_USER"
be_start
ADMIN=$(login carol carol-pw)
sd_start
USER_TOKEN=$(login "$SD_USER" user-pw)
NET=$(pgrep -P "$SD_PID" -x portico-session) || fail "no network side"
curl_sd() { # curl to sessiond with the broker's secret
	curl -sS --cacert "$T/pki/ca.pem" -H "Authorization: Bearer $BROKER_SECRET" "$@"
}
net_alive() {
	kill -0 "$NET" 2>/dev/null || fail "the network side exited: $(grep -E 'sessiond|fatal|error' "$T/sessiond.log" | tail -3)"
}
resume_root() { kill -CONT "$SD_PID" 2>/dev/null; }
trap 'resume_root; sd_cleanup' EXIT

# --- many starts while the root side is stopped --------------------------------------
# 200 starts (each a datagram of about 2 KiB, more than the socket holds)
# for root, which the root side refuses once it reads them; one of them
# asked twice (a retry); and two real desktops through the broker.
mkdir -p "$T/storm"
# One curl for the 201 starts, all in parallel (200 curl processes take a
# minute to start on a loaded machine).
for i in $(seq 1001 1200) again; do
	id=$i
	[ "$i" = again ] && id=1100
	[ "$i" = 1001 ] || echo next
	cat <<CFG
url = "$SD/sessions"
cacert = "$T/pki/ca.pem"
header = "Authorization: Bearer $BROKER_SECRET"
header = "Content-Type: application/json"
data-binary = "{\\"id\\":$id,\\"user\\":\\"root\\",\\"pool\\":{\\"name\\":\\"p\\",\\"kind\\":\\"desktop\\",\\"driver\\":\\"xvnc\\"}}"
output = "$T/storm/$i"
write-out = "%{http_code} $i\\n"
max-time = 300
CFG
done >"$T/storm.cfg"
kill -STOP "$SD_PID"
pids=()
curl -s --parallel --parallel-max 300 -K "$T/storm.cfg" >"$T/storm/codes" 2>"$T/storm/err" &
pids+=($!)
for p in desk desk2; do
	curl -s --max-time 300 --cacert "$T/tls/server.pem" -H "Authorization: Bearer $USER_TOKEN" \
		-o "$T/storm/launch-$p" -w '%{http_code}' -X POST "$B/resources/$p/launch" \
		>"$T/storm/launch-$p.status" &
	pids+=($!)
done
# Until all 202 starts have reached the network side (the retry of 1100
# joins the first).
wait_for 100 eval '[ "$(grep -c "starting session" "$T/sessiond.log")" -ge 202 ]' ||
	fail "only $(grep -c "starting session" "$T/sessiond.log") of 202 starts arrived: $(head -c 300 "$T/storm/err")"
sleep 1
net_alive
[ ! -s "$T/storm/codes" ] && [ -z "$(cat "$T"/storm/launch-*.status)" ] ||
	fail "answers came while the root side was stopped: $(head -3 "$T/storm/codes")"
resume_root
wait "${pids[@]}" # (not sessiond's and the broker's)
net_alive
[ "$(grep -c '^422 ' "$T/storm/codes")" = 201 ] || fail "answers to the 201 starts: $(cut -d' ' -f1 "$T/storm/codes" | sort | uniq -c)"
for i in $(seq 1001 1200) again; do
	grep -q "sessions never run as root" "$T/storm/$i" || fail "start $i: $(cat "$T/storm/$i")"
done
for p in desk desk2; do
	[ "$(cat "$T/storm/launch-$p.status")" = 200 ] || fail "launch $p: $(cat "$T/storm/launch-$p.status") $(cat "$T/storm/launch-$p")"
done
# Each request reached the root side once: one refusal per id, 1100's once
# (the retry waited for the same answer).
n=$(grep -c "session 1100 of root refused" "$T/sessiond.log")
[ "$n" = 1 ] || fail "session 1100 was refused $n times by the root side"
[ "$(grep -c "of root refused: sessions never run as root" "$T/sessiond.log")" = 200 ] ||
	fail "the root side refused $(grep -c "of root refused" "$T/sessiond.log") of 200 starts"
sd_api GET /sessions >/dev/null
[ "$(jq '.sessions | length' "$T/out")" = 2 ] || fail "sessiond lists $(cat "$T/out")"
[ "$(jq '[.sessions[].id] | unique | length' "$T/out")" = 2 ] || fail "a session listed twice: $(cat "$T/out")"
[ "$(pgrep -c -u "$SD_USER" Xvnc)" = 2 ] || fail "$(pgrep -c -u "$SD_USER" Xvnc) displays for 2 desktops"
echo "ok: 201 starts and 2 launches while the root side was stopped, each answered once"

# --- past the bound: host busy, then service again ------------------------------------
S1=$(jq -r .session.id "$T/storm/launch-desk")
kill -STOP "$SD_PID"
# One connection, 1500 stops of one running session: the socket fills,
# then the queue (1024), then the network side refuses.
urls=()
for _ in $(seq 1 1500); do urls+=(-o /dev/null "$SD/sessions/$S1"); done
curl_sd --max-time 60 -X DELETE -w '%{http_code}\n' "${urls[@]}" >"$T/stops"
net_alive
ok=$(grep -c '^200$' "$T/stops")
busy=$(grep -c '^503$' "$T/stops")
echo "   1500 stops with the root side stopped: $ok taken, $busy refused"
[ $((ok + busy)) = 1500 ] || fail "other answers to the stops: $(sort "$T/stops" | uniq -c)"
[ "$ok" -ge 1024 ] || fail "only $ok stops were taken"
[ "$busy" -ge 1 ] || fail "no stop was refused: the queue has no bound"
# What the refusal says.
curl_sd -X DELETE -o "$T/out" -w '%{http_code}' "$SD/sessions/$S1" >"$T/status"
[ "$(cat "$T/status")" = 503 ] && [ "$(jq -r .error "$T/out")" = busy ] &&
	jq -r .message "$T/out" | grep -q "^host busy: 1024 requests wait for host1's root side" ||
	fail "the refusal: $(cat "$T/status") $(cat "$T/out")"
grep -q "the root side is not keeping up: 1024 requests wait for it" "$T/sessiond.log" ||
	fail "no log line about the busy root side"
resume_root
wait_for 20 grep -q "the root side has caught up" "$T/sessiond.log" || fail "the queue never drained"
net_alive
# The session ended once, as asked; the other runs on.
wait_for 10 eval '[ "$(sd_api GET /sessions | jq ".sessions | length")" = 1 ]' || fail "sessiond lists $(cat "$T/out")"
# (the network side's line; its monitor says so once too)
ended=$(grep -c "sessiond\[$NET\]: info: session $S1 of $SD_USER ended" "$T/sessiond.log")
[ "$ended" = 1 ] || fail "session $S1 ended $ended times"
[ "$(pgrep -c -u "$SD_USER" Xvnc)" = 1 ] || fail "$(pgrep -c -u "$SD_USER" Xvnc) displays left of 2 minus 1"
sd_api DELETE "/sessions/$S1" >/dev/null
expect 404 no_such_session
echo "ok: host busy past 1024 waiting requests, and service again"

# --- stopping with a call to the broker in flight -------------------------------------
# The broker stopped: the next heartbeat hangs on it (up to 10 s).
S2=$(jq -r .session.id "$T/storm/launch-desk2")
BPID=$(pgrep -P "$BE_PID" || true)
kill -STOP "$BE_PID" $BPID
sleep 1.5
t0=$(date +%s%N)
sd_stop
ms=$((($(date +%s%N) - t0) / 1000000))
kill -CONT "$BE_PID" $BPID
grep -q "waiting for 1 call to the broker to end" "$T/sessiond.log" || fail "the stop did not wait for its call: $(tail -5 "$T/sessiond.log")"
tail -3 "$T/sessiond.log" | grep -q "stopped" || fail "sessiond did not stop cleanly: $(tail -5 "$T/sessiond.log")"
echo "   stop with a call in flight: ${ms} ms"
pgrep -u "$SD_USER" Xvnc >/dev/null || fail "the desktop died with sessiond"
sd_start
wait_for 5 eval '[ "$(sd_api GET /sessions | jq -r ".sessions[0].id")" = "$S2" ]' || fail "not adopted: $(cat "$T/out")"
echo "ok: stop waits for its call to the broker"
echo "ok: sessiond busy"
