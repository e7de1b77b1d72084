#!/bin/bash
# Two brokers on one PostgreSQL (issue 14): 200 users launch at once, half
# through each broker, into 100 seats and get exactly 100 sessions; a token
# and a ticket a broker issued work on the other; a user reconnects to the
# same session through either; PostgreSQL restarted under load gives 503s
# meanwhile and both brokers recover without a restart of their own; one
# broker killed with SIGKILL loses nothing; 64 wrong passwords at once,
# half on each broker, reach PAM at most login_attempts times in all.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/pg_env.sh

be_setup
for i in $(seq -w 1 200); do be_user "u$i" "pw$i" $((5000 + 10#$i)) crowd; done
be_conf_append "
[pool crowd]
driver = static
hosts = $BACKEND_A, $BACKEND_B
groups = crowd
max_sessions_per_host = 50

[pool short]
driver = static
hosts = $BACKEND_A
groups = crowd
max_sessions_per_host = 100
max_duration = 3s"
pg_setup
pg_passfile_for 64990 # the broker's network side runs as "portico"
sed -i "s|^store = .*|store = ${PG_URL_FOR//&/\\&}|" "$T/portico.conf"
sed -i "s|^login_attempts = .*|login_attempts = 5|" "$T/portico.conf"
B1=$B
trap 'be_cleanup; pg_cleanup' EXIT

# api through broker N: call N METHOD PATH [BODY] [AUTH]
call() {
	local n=$1
	shift
	if [ "$n" = 2 ]; then B=$B2 api "$@"; else B=$B1 api "$@"; fi
}

be_start
be_start2
[ "$(pg_psql "SELECT value FROM meta WHERE key = 'schema_version'")" = 7 ] ||
	fail "schema version: $(pg_psql "SELECT * FROM meta")"
echo "ok: two brokers on one database, its schema made once"

# --- 200 launches through two brokers into 100 seats ---------------------------
# Each user logs in on one broker and launches on the other: a token works on
# every broker.
for i in $(seq -w 1 200); do
	tok=$(B=$([ $((10#$i % 2)) = 0 ] && echo "$B1" || echo "$B2") login "u$i" "pw$i")
	[ ${#tok} = 43 ] || fail "u$i could not log in"
	echo "$tok" >"$T/tok$i"
done
pids=()
for i in $(seq -w 1 200); do
	b=$([ $((10#$i % 2)) = 0 ] && echo "$B2" || echo "$B1")
	curl -s -o "$T/launch$i" -w '%{http_code}\n' --cacert "$T/tls/server.pem" -X POST \
		-H "Authorization: Bearer $(cat "$T/tok$i")" "$b/resources/crowd/launch" >"$T/status$i" &
	pids+=($!)
done
wait "${pids[@]}"
ok=$(cat "$T"/status* | grep -c '^200$')
full=$(cat "$T"/status* | grep -c '^503$')
echo "   200 concurrent launches on two brokers: $ok sessions, $full refusals"
for i in $(seq -w 1 200); do
	case $(cat "$T/status$i") in
	200 | 503) ;;
	*) echo "   launch $i: HTTP $(cat "$T/status$i"): $(cat "$T/launch$i")" ;;
	esac
done
[ "$ok" = 100 ] && [ "$full" = 100 ] || fail "$ok sessions and $full refusals, not 100 and 100"
a=$(cat "$T"/launch* | jq -r 'select(.session) | .session.host' | grep -c "^$BACKEND_A$")
[ "$a" = 50 ] || fail "the first backend holds $a sessions, not 50"
[ "$(pg_psql "SELECT COUNT(*) FROM sessions WHERE state < 4")" = 100 ] ||
	fail "the database holds $(pg_psql "SELECT COUNT(*) FROM sessions WHERE state < 4") live sessions"
echo "ok: 200 launches into 100 seats through two brokers"

# --- a user's session, ticket and token on either broker -------------------------
first=$(ls "$T"/launch* | while read -r f; do jq -e .session >/dev/null 2>&1 <"$f" && echo "$f" && break; done)
i=${first##*launch}
sid=$(jq -r .session.id "$first")
tok=$(cat "$T/tok$i")
for n in 1 2; do
	call $n POST /resources/crowd/launch "" "$tok" >/dev/null
	expect 200
	[ "$(jq -r .session.id "$T/out")" = "$sid" ] || fail "broker $n gave u$i another session: $(cat "$T/out")"
done
ticket=$(jq -r .ticket "$T/out") # issued by broker 2
call 1 POST /gateway/redeem "{\"ticket\":\"$ticket\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
expect 200
[ "$(jq -r .session_id "$T/out")" = "$sid" ] || fail "redeemed through broker 1: $(cat "$T/out")"
call 2 POST /gateway/redeem "{\"ticket\":\"$ticket\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
expect 403 invalid_ticket
call 1 POST /logout "" "$tok" >/dev/null
gone=$i # logged out
call 2 GET /resources "" "$tok" >/dev/null
expect 401
echo "ok: a user's session, ticket and logout hold on either broker"

# --- control rows written on one broker reach a gateway's long-poll on the other -----
ADMIN=$(B=$B2 login carol carol-pw)
call 1 GET "/gateway/control?after=-1&wait=0" "" "$GW_SECRET" >/dev/null
expect 200
next=$(jq -r .next "$T/out")
curl -s -o "$T/poll" --cacert "$T/tls/server.pem" -H "Authorization: Bearer $GW_SECRET" \
	"$B1/gateway/control?after=$next&wait=20" &
POLL=$!
sleep 0.5
T0=$(date +%s%3N)
call 2 POST "/admin/sessions/$sid/message" '{"text":"from broker 2"}' "$ADMIN" >/dev/null
expect 200
wait $POLL
took=$(($(date +%s%3N) - T0))
jq -e ".control[0].session_id == $sid and .control[0].action == \"message\" and .control[0].text == \"from broker 2\"" "$T/poll" >/dev/null ||
	fail "broker 1's long-poll: $(cat "$T/poll")"
[ "$took" -lt 2000 ] || fail "broker 2's row reached broker 1's long-poll after $took ms"
echo "ok: a row written through broker 2 reached a long-poll on broker 1 in $took ms"

# --- both brokers sweep: each timed-out session ends once ----------------------------
for i in $(seq -w 101 120); do
	b=$([ $((10#$i % 2)) = 0 ] && echo "$B1" || echo "$B2")
	B=$b api POST /resources/short/launch "" "$(cat "$T/tok$i")" >/dev/null
	expect 200
done
ids=$(pg_psql "SELECT id FROM sessions WHERE pool = 'short' AND state < 4")
[ "$(wc -w <<<"$ids")" = 20 ] || fail "20 launches into short gave $(wc -w <<<"$ids") sessions"
wait_ended() { [ "$(pg_psql "SELECT COUNT(*) FROM sessions WHERE pool = 'short' AND state < 4")" = 0 ]; }
for _ in $(seq 1 100); do wait_ended && break; sleep 0.1; done
wait_ended || fail "the short sessions did not end"
for id in $ids; do
	n=$(cat "$T/broker.log" "$T/broker2.log" | grep -c "session $id of u[0-9]* in pool short ended: maximum duration")
	[ "$n" = 1 ] || fail "session $id ended $n times in the brokers' logs"
done
[ "$(pg_psql "SELECT COUNT(*) FROM sessions WHERE pool = 'short' AND end_reason = 'maximum duration'")" = 20 ] ||
	fail "end reasons: $(pg_psql "SELECT end_reason, COUNT(*) FROM sessions WHERE pool = 'short' GROUP BY 1")"
echo "   sessions ended by broker 1's sweep: $(grep -c "in pool short ended" "$T/broker.log"), by broker 2's: $(grep -c "in pool short ended" "$T/broker2.log")"
echo "ok: both brokers sweep, each session ends once"

# --- PostgreSQL restarted under load ----------------------------------------------
# Launches (reconnects of the 100) run on both brokers through the restart,
# by users still logged in.
load() {
	local n=0
	while [ ! -f "$T/stop-load" ]; do
		for i in $(seq -f %03g 1 2 40); do
			[ "$i" = "$gone" ] && continue
			b=$([ $((n % 2)) = 0 ] && echo "$B1" || echo "$B2")
			curl -s -o /dev/null -w '%{http_code}\n' --max-time 20 --cacert "$T/tls/server.pem" \
				-X POST -H "Authorization: Bearer $(cat "$T/tok$i")" \
				"$b/resources/crowd/launch" >>"$T/load.codes"
			n=$((n + 1))
		done
	done
}
load &
LOAD_PID=$!
sleep 1
pg_stop
call 1 GET /resources "" "$(cat "$T/tok003")" >/dev/null
expect 503 store_unavailable
call 2 POST /resources/crowd/launch "" "$(cat "$T/tok004")" >/dev/null
expect 503 store_unavailable
grep -q "the database is unreachable" "$T/out" || fail "the refusal's words: $(cat "$T/out")"
sleep 2
pg_start
t0=$(date +%s%N)
for n in 1 2; do
	for _ in $(seq 1 100); do
		call $n GET /resources "" "$(cat "$T/tok003")" >/dev/null
		[ "$STATUS" = 200 ] && break
		sleep 0.1
	done
	[ "$STATUS" = 200 ] || fail "broker $n did not recover: $STATUS $(cat "$T/out")"
done
echo "   both brokers answered again $((($(date +%s%N) - t0) / 1000000)) ms after PostgreSQL did"
touch "$T/stop-load"
wait "$LOAD_PID"
codes=$(sort "$T/load.codes" | uniq -c | tr '\n' ' ')
echo "   answers under load: $codes"
grep -qv '^\(200\|503\)$' "$T/load.codes" && fail "answers other than 200 and 503 under load: $codes"
grep -q '^503$' "$T/load.codes" || fail "no 503 while the database was down: $codes"
kill -0 "$BE_PID" && kill -0 "$B2_PID" || fail "a broker exited"
[ "$(pg_psql "SELECT COUNT(*) FROM sessions WHERE state < 4")" = 100 ] ||
	fail "after the restart: $(pg_psql "SELECT COUNT(*) FROM sessions WHERE state < 4") live sessions"
echo "ok: PostgreSQL restarted under load: 503 meanwhile, both brokers recovered by themselves"

# --- one broker killed: the other carries on, nothing lost or doubled ----------
pkill -KILL -P "$B2_PID"
kill -KILL "$B2_PID"
wait "$B2_PID" 2>/dev/null
B2_PID=
for i in 003 005 007; do
	call 1 POST /resources/crowd/launch "" "$(cat "$T/tok$i")" >/dev/null
	[ "$STATUS" = 200 ] || [ "$STATUS" = 503 ] || fail "u$i after broker 2 died: $STATUS $(cat "$T/out")"
done
be_start2
[ "$(pg_psql "SELECT COUNT(*) FROM (SELECT pool, user_name FROM sessions WHERE state < 4
	GROUP BY pool, user_name HAVING COUNT(*) > 1) d")" = 0 ] || fail "a user holds two live sessions"
[ "$(pg_psql "SELECT COUNT(*) FROM sessions WHERE state < 4")" = 100 ] ||
	fail "after broker 2 was killed: $(pg_psql "SELECT COUNT(*) FROM sessions WHERE state < 4") live sessions"
echo "ok: one broker killed, the other carried on, nothing lost or doubled"
# --- 64 guesses at once on two brokers -------------------------------------------------
# Each broker alone would let login_attempts (5) through: the database's
# counter lets 5 through in all.  (Last: it locks 127.0.0.1 out.)
pam_calls() { cat "$T/broker.log" "$T/broker2.log" | grep -c "auth failure user=u150 "; }
n0=$(pam_calls)
pids=()
for i in $(seq 1 64); do
	b=$([ $((i % 2)) = 0 ] && echo "$B1" || echo "$B2")
	curl -s -o /dev/null -w '%{http_code}\n' --cacert "$T/tls/server.pem" \
		-d '{"username":"u150","password":"wrong"}' "$b/login" >"$T/guess$i" &
	pids+=($!)
done
wait "${pids[@]}"
calls=$(($(pam_calls) - n0))
s401=$(cat "$T"/guess* | grep -c '^401$')
s429=$(cat "$T"/guess* | grep -c '^429$')
echo "   64 wrong passwords on two brokers: $calls PAM calls, $s401 x 401, $s429 x 429"
[ "$calls" -ge 1 ] && [ "$calls" -le 5 ] || fail "$calls attempts reached PAM, not 1 to 5"
[ "$s401" = "$calls" ] && [ $((s401 + s429)) = 64 ] || fail "answers: $(sort "$T"/guess* | uniq -c | tr '\n' ' ')"
grep -q "auth throttled user=u150 rhost=127.0.0.1 (every broker)" "$T/broker.log" "$T/broker2.log" ||
	fail "no broker was stopped by the shared counter"
echo "ok: 64 guesses on two brokers, at most login_attempts reach PAM"
echo "ok: brokers on PostgreSQL"
