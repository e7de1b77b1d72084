#!/bin/bash
# The whole site side by side (issue 14): two brokers on one PostgreSQL,
# two gateways and one session host, each given both brokers.  A user
# reaches the same session through either gateway; a ticket one broker
# issued takes the user in through a gateway that asks the other; one
# broker killed with SIGKILL during a storm of launches: the launches carry
# on through the other, gateways and the host move to it, and afterwards no
# session is lost, doubled, or left starting.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh
. tests/integration/pg_env.sh
[ -x "$PROBE" ] || fail "$PROBE is not built (make BUILD=$BUILD $PROBE)"

be_setup
sd_setup
pg_setup
pg_passfile_for 64990
sed -i "s|^store = .*|store = ${PG_URL_FOR//&/\\&}|; s|^gateways = gw1$|gateways = gw1, gw2|" "$T/portico.conf"
# start_timeout short: a start a dead broker left is ended after twice it
# and 30 s (docs/ha.md).
sed -i "s|^login_window = .*|&\nstart_timeout = 10s|" "$T/portico.conf"
GW1_PORT=$(free_port)
be_gateway_conf "$GW1_PORT" - user="$SD_SVC"
for p in 1 2 3 4 5 6; do
	be_conf_append "
[pool x$p]
kind = app
driver = xvnc
command = /usr/bin/xterm -geometry 40x10
hosts = host1
users = $SD_USER, $SD_USER2"
done
PORT2=$(free_port)
B1=$B
B2="https://127.0.0.1:$PORT2/api/v1"
# Gateways and the host: both brokers, gw1 and the host the first first.
LIST="https://127.0.0.1:$PORT, https://127.0.0.1:$PORT2"
sed -i "s|^broker = https://127.0.0.1:$PORT\$|broker = $LIST|" "$T/portico.conf"
[ "$(grep -c "^broker = $LIST\$" "$T/portico.conf")" = 2 ] || fail "broker lines: $(grep ^broker "$T/portico.conf")"
# gw2: its own certificate and port, the brokers the other way round.
"$BUILD/bin/portico-admin" pki issue "$T/pki" --role gateway gw2 --san 127.0.0.1 >/dev/null || fail "pki gw2"
GW2_PORT=$(free_port)
sed "s|^cert = $T/pki/gw1.pem|cert = $T/pki/gw2.pem|; s|^key = $T/pki/gw1.key|key = $T/pki/gw2.key|;
	s|^vnc_listen = 127.0.0.1:$GW1_PORT|vnc_listen = 127.0.0.1:$GW2_PORT|;
	s|^broker = $LIST\$|broker = https://127.0.0.1:$PORT2, https://127.0.0.1:$PORT|" \
	"$T/portico.conf" >"$T/gw2.conf"
grep -q "^vnc_listen = 127.0.0.1:$GW2_PORT" "$T/gw2.conf" && grep -q "gw2.pem" "$T/gw2.conf" || fail "gw2.conf"

be_start
be_start2
ADMIN=$(login carol carol-pw)
sd_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW1_PID=$!
"$BUILD/bin/portico-gateway" -c "$T/gw2.conf" >>"$T/gateway2.log" 2>&1 &
GW2_PID=$!
trap 'kill $GW1_PID $GW2_PID ${BEAT_PID:-} 2>/dev/null; wait $GW1_PID $GW2_PID 2>/dev/null; sd_cleanup; pg_cleanup' EXIT
for p in $GW1_PORT $GW2_PORT; do
	wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null" || fail "a gateway does not listen on $p"
done
CA=$T/pki/ca.pem
probe() { "$PROBE" -u "$2" -C "$CA" "127.0.0.1:$1" "$3" 2>"$T/probe.err"; }
live() { B=$1 api GET "/admin/sessions?state=live" "" "$ADMIN" >/dev/null; }

# --- one session, through either gateway --------------------------------------------
painted() { out=$(probe "$GW1_PORT" "$SD_USER#x1" user-pw) && [ "$(sed -n 's/.*painted=\([0-9]*\).*/\1/p' <<<"$out")" -gt 500 ]; }
wait_for 10 painted || fail "through gw1: $(cat "$T/probe.err") $(tail -3 "$T/gateway.log")"
out2=$(probe "$GW2_PORT" "$SD_USER#x1" user-pw) || fail "through gw2: $(cat "$T/probe.err") $(tail -3 "$T/gateway2.log")"
[ "${out2##*hash=}" = "${out##*hash=}" ] || fail "gw2 shows another screen: $out2 / $out"
live "$B2"
[ "$(jq '.sessions | length' "$T/out")" = 1 ] || fail "two gateways made two sessions: $(cat "$T/out")"
echo "ok: one session through either gateway"

# --- a ticket of broker 2, taken through gw1 (which asks broker 1) ------------------
TOKEN=$(B=$B2 login "$SD_USER" user-pw)
TICKET=$(B=$B2 api POST /resources/x1/launch "" "$TOKEN" | jq -r .ticket)
out3=$(probe "$GW1_PORT" ticket "$TICKET") || fail "broker 2's ticket through gw1: $(cat "$T/probe.err")"
[ "${out3##*hash=}" = "${out##*hash=}" ] || fail "the ticket led elsewhere: $out3"
probe "$GW2_PORT" ticket "$TICKET" >/dev/null && fail "a ticket was taken twice"
echo "ok: a ticket of one broker through a gateway of the other"

# --- broker 1 killed during a storm of launches -----------------------------------------
# 8 launches at once (4 pools x 2 users), half on each broker; broker 1 dies
# while they run.  What broker 1 never answered, the user launches again on
# broker 2, as the client would.
TOKEN2=$(B=$B1 login "$SD_USER2" user2-pw)
[ ${#TOKEN2} = 43 ] || fail "$SD_USER2 could not log in"
declare -A tok=([$SD_USER]=$TOKEN [$SD_USER2]=$TOKEN2)
pids=()
n=0
for p in 1 2 3 4; do
	for u in "$SD_USER" "$SD_USER2"; do
		b=$([ $((n % 2)) = 0 ] && echo "$B1" || echo "$B2")
		curl -s -o "$T/storm-$p-$u" -w '%{http_code}' --max-time 60 --cacert "$T/tls/server.pem" -X POST \
			-H "Authorization: Bearer ${tok[$u]}" "$b/resources/x$p/launch" >"$T/storm-$p-$u.status" &
		pids+=($!)
		n=$((n + 1))
	done
done
sleep 0.3
pkill -KILL -P "$BE_PID"
kill -KILL "$BE_PID"
wait "$BE_PID" 2>/dev/null
BE_PID=
wait "${pids[@]}"
t_killed=$(date +%s%N)
codes=$(for f in "$T"/storm-*.status; do cat "$f"; echo; done | sort | uniq -c | tr '\n' ' ')
echo "   the storm's answers with broker 1 killed: $codes"
for p in 1 2 3 4; do
	for u in "$SD_USER" "$SD_USER2"; do
		for _ in $(seq 1 40); do
			[ "$(cat "$T/storm-$p-$u.status")" = 200 ] && break
			# No answer (broker 1 died), or "still starting": again on broker 2.
			curl -s -o "$T/storm-$p-$u" -w '%{http_code}' --max-time 60 --cacert "$T/tls/server.pem" -X POST \
				-H "Authorization: Bearer ${tok[$u]}" "$B2/resources/x$p/launch" >"$T/storm-$p-$u.status"
			[ "$(cat "$T/storm-$p-$u.status")" = 200 ] || sleep 1
		done
		[ "$(cat "$T/storm-$p-$u.status")" = 200 ] || fail "x$p for $u: $(cat "$T/storm-$p-$u.status") $(cat "$T/storm-$p-$u")"
	done
done
echo "   every user had their sessions $((($(date +%s%N) - t_killed) / 1000000)) ms after broker 1 died"
echo "ok: every launch carried on through broker 2"

# Afterwards: 8 live sessions, one per pool and user, none starting, each
# running on the host (one Xvnc each: none started twice).
settled() {
	live "$B2"
	[ "$(jq '[.sessions[] | select(.state == "starting")] | length' "$T/out")" = 0 ]
}
wait_for 90 settled || fail "sessions left starting: $(jq -c '[.sessions[] | select(.state == "starting") | .id]' "$T/out")"
[ "$(jq '.sessions | length' "$T/out")" = 8 ] || fail "$(jq '.sessions | length' "$T/out") live sessions, not 8: $(jq -c '[.sessions[] | [.pool, .user, .state]]' "$T/out")"
[ "$(jq '[.sessions[] | [.pool, .user]] | unique | length' "$T/out")" = 8 ] || fail "a pool and user twice"
wait_for 10 eval '[ "$(sd_api GET /sessions | jq ".sessions | length")" = 8 ]' ||
	fail "the host runs $(sd_api GET /sessions | jq '.sessions | length') sessions, not 8"
x=$(($(pgrep -c -u "$SD_USER" Xvnc) + $(pgrep -c -u "$SD_USER2" Xvnc)))
[ "$x" = 8 ] || fail "$x Xvnc for 8 sessions"
echo "   of broker 1's starts, broker 2 finished $(grep -c "is running (reported by the host)" "$T/broker2.log") from host1's heartbeats and ended $(grep -c "its start never reached host1 (the broker that made it is gone)" "$T/broker2.log") that never reached it"
echo "ok: nothing lost, doubled or left starting"

# The gateways and the host moved to broker 2.
out4=$(probe "$GW1_PORT" "$SD_USER#x2" user-pw) || fail "gw1 after broker 1 died: $(cat "$T/probe.err") $(tail -3 "$T/gateway.log")"
B=$B2 api GET /admin/hosts "" "$ADMIN" >/dev/null
seen=$(jq -r '.hosts[] | select(.name == "host1") | .last_seen_ms' "$T/out")
sleep 1.5
B=$B2 api GET /admin/hosts "" "$ADMIN" >/dev/null
[ "$(jq -r '.hosts[] | select(.name == "host1") | .last_seen_ms' "$T/out")" -gt "$seen" ] ||
	fail "host1's heartbeats do not reach broker 2: $(cat "$T/out")"
echo "ok: gateways and the session host moved to broker 2"

# --- starts whose broker is gone, and one whose broker lives -----------------------
# Made as a broker would make them, then gone before it called the host:
# x5's by a broker that is gone, x6's by one that still beats (a loop
# here stands in for it).  The host has neither.
now_ms() { date +%s%3N; }
# start_row POOL BROKER: prints the session's id (host1's next heartbeat
# may end it at once).
start_row() {
	pg_psql "INSERT INTO sessions (pool, user_name, host, state, created_ms, updated_ms, starter)
		VALUES ('$1', '$SD_USER', 'host1', 0, $(now_ms), $(now_ms), '$2') RETURNING id"
}
x5=$(start_row x5 gone:1:00000000) && [ -n "$x5" ] || fail "insert x5"
pg_psql "INSERT INTO brokers VALUES ('alive:2:00000000', $(now_ms))" || fail "insert a broker"
(while [ -d "$T" ] && [ ! -f "$T/stop-beating" ]; do
	pg_psql "UPDATE brokers SET seen_ms = $(now_ms) WHERE id = 'alive:2:00000000'"
	sleep 0.5
done) &
BEAT_PID=$!
x6=$(start_row x6 alive:2:00000000) && [ -n "$x6" ] || fail "insert x6"
# launched POOL: the user's launch on broker 2, again until it is answered
# 200 (30 s at most).
launched() {
	for _ in $(seq 1 60); do
		B=$B2 api POST "/resources/$1/launch" "" "$TOKEN" >/dev/null
		[ "$STATUS" = 200 ] && return
		sleep 0.5
	done
	expect 200
}
t0=$(date +%s%N)
# (host1 beats every 500 ms: the first launch may find it ended already)
launched x5
echo "   a start whose broker is gone was ended, and the user's launch went through, after $((($(date +%s%N) - t0) / 1000000)) ms"
grep -q "session $x5 of $SD_USER ended: its start never reached host1 (the broker that made it is gone)" "$T/broker2.log" ||
	fail "no log line for session $x5"
[ "$(jq -r .session.id "$T/out")" != "$x5" ] || fail "the gone broker's session was given to the user"
sleep 3 # six heartbeats of host1
B=$B2 api POST /resources/x6/launch "" "$TOKEN" >/dev/null
expect 503 starting
touch "$T/stop-beating"
wait "$BEAT_PID"
t0=$(date +%s%N)
launched x6
grep -q "session $x6 of $SD_USER ended: its start never reached host1 (the broker that made it is gone)" "$T/broker2.log" ||
	fail "no log line for session $x6"
echo "   a live broker's start was left alone; ended $((($(date +%s%N) - t0) / 1000000)) ms after that broker stopped"
echo "ok: a start is its broker's while it lives, and ended once it is gone"

# --- what a heartbeat says it starts, hostile -------------------------------------
# As host1 (its certificate), listing what it runs: a starting list that is
# not a list, holds what is not a session, is huge or deeply nested changes
# nothing and is answered.
live "$B2"
n_live=$(jq '.sessions | length' "$T/out")
runs=$(jq -c '[.sessions[] | {id}]' "$T/out")
beat() {
	printf '{"name":"host1","load":0,"mem_free_kb":0,"sessions":%s,"starting":%s}' "$runs" "$1" >"$T/beat.json"
	STATUS=$(curl -s -o "$T/beat.out" -w '%{http_code}' --cacert "$T/tls/server.pem" \
		--cert "$T/pki/host1.pem" --key "$T/pki/host1.key" -X POST -H 'Content-Type: application/json' \
		--data-binary @"$T/beat.json" "$B2/hosts/heartbeat")
}
big=$(seq 1 3000 | sed 's/.*/{"id":&}/' | paste -sd, -)
huge=$(seq 1 20000 | sed 's/.*/{"id":&}/' | paste -sd, -)
deep=$(printf '[%.0s' $(seq 1 5000))$(printf ']%.0s' $(seq 1 5000))
for bad in '"starting"' '7' 'null' '{"id":1}' '[1,"a",null,true,{"id":"x"},{"id":1e300},{"id":-1},{}]' "[$big]" "[$huge]" "$deep"; do
	beat "$bad"
	case $STATUS in
	200) ;;
	413) [ ${#bad} -gt 100000 ] || fail "a heartbeat of ${#bad} bytes was too large" ;;
	400) jq -r .error "$T/beat.out" | grep -qx "bad_request\|bad_json" || fail "a heartbeat's starting ${bad:0:40}: $(head -c 200 "$T/beat.out")" ;;
	*) fail "a heartbeat's starting ${bad:0:40}: HTTP $STATUS $(head -c 200 "$T/beat.out")" ;;
	esac
done
live "$B2"
[ "$(jq '.sessions | length' "$T/out")" = "$n_live" ] || fail "hostile heartbeats changed the live sessions: $n_live -> $(jq '.sessions | length' "$T/out")"
kill -0 "$B2_PID" || fail "broker 2 died"
echo "ok: hostile starting lists in heartbeats"
echo "ok: ha"
