#!/bin/bash
# A session host that stops answering stalls nothing but its own starts
# (issue 13).  Two real portico-sessiond hosts beside the broker; host2's
# network side is frozen with SIGSTOP while ten users launch into its
# pool at once.  The broker runs with libuv's default 4 threads, fewer than
# the starts, as a broker whose starts held its threads would stall.
#  - host2's starts: max_starts_per_host = 1 runs, max_start_queue = 5
#    wait, the other four are refused at once ("too many starts waiting for
#    host host2, try again"); the six that went to the host answer, one at
#    a time, that it is unavailable (each call gives up after libcurl's
#    5 s connect timeout, TLS handshake included: a frozen host completes
#    TCP handshakes in its kernel and never answers the TLS one), and leave
#    no session behind (one at a time: 30 s of pending starts, long enough
#    for the checks below on a loaded machine; test_hostq.c has a cap of 2);
#  - meanwhile logins, launches and redeems on a static pool, listings and
#    a launch on host1 (a real xterm in Xvnc) each answer within 5 s, and
#    all of them while host2's starts are still pending;
#  - host2 thawed takes starts again;
#  - stopping the broker with starts pending on a frozen host: it answers
#    the waiting one, waits for the running ones and exits cleanly.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

BOUND_MS=5000 # a correctness bound: promptly, not a benchmark
be_setup
sd_setup
for i in $(seq 1 10); do be_user "f$i" "fpw$i" $((6000 + i)) crowd; done
be_conf_append "
[pool frozen]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host2
users = $SD_USER2
groups = crowd

[pool healthy]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host1
users = $SD_USER"
# The keys under test, in [broker] (appended sections come after it).
sed -i "s|^login_window = .*|&\nmax_starts_per_host = 1\nmax_start_queue = 5\nstart_timeout = 60s|" \
	"$T/portico.conf"
"$BUILD/bin/portico-admin" pki issue "$T/pki" --role host host2 --san 127.0.0.1 \
	>/dev/null || fail "pki issue host2"
SD2_PORT=$(free_port)
sed -e "s|^listen = 127.0.0.1:$SD_PORT\$|listen = 127.0.0.1:$SD2_PORT|" -e 's|^name = host1$|name = host2|' \
	-e "s|/host1\\.|/host2.|" -e "s|^run_dir = .*|run_dir = $T/run2|" \
	-e "s|^state_dir = .*|state_dir = $T/state2|" "$T/portico.conf" >"$T/host2.conf"
grep -q "^name = host2$" "$T/host2.conf" && grep -q "^listen = 127.0.0.1:$SD2_PORT$" "$T/host2.conf" ||
	fail "host2's configuration"

# libuv's default: a start that held one of these would be felt at once.
export UV_THREADPOOL_SIZE=4
be_start
unset UV_THREADPOOL_SIZE
ADMIN=$(login carol carol-pw)
sd_start

SD2_PID=
sd2_net() { pgrep -P "$SD2_PID" -x portico-session; }
load_cleanup() {
	if [ -n "$SD2_PID" ]; then
		kill -CONT $(sd2_net) 2>/dev/null
		pt_stop "$SD2_PID" "sessiond host2"
		pt_san_scan "$T/sessiond2.log" || PT_FAILED_LATER=1
	fi
	for f in "$T"/run2/state/*; do
		[ -f "$f" ] || continue
		m=$(awk '$1 == "monitor" { print $2 }' "$f")
		[ -n "$m" ] && [ "$(cat "/proc/$m/comm" 2>/dev/null)" = pt-session ] && kill -KILL "$m"
	done
	sd_cleanup
}
trap load_cleanup EXIT
env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so PAM_WRAPPER=1 \
	PAM_WRAPPER_SERVICE_DIR="$T/sdpam" PAM_WRAPPER_DISABLE_DEEPBIND=1 \
	UID_WRAPPER_DISABLE_DEEPBIND=1 NSS_WRAPPER_DISABLE_DEEPBIND=1 \
	ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
	"$SD_BIN" -c "$T/host2.conf" >>"$T/sessiond2.log" 2>&1 &
SD2_PID=$!
host2_seen() {
	curl -s --cacert "$T/tls/server.pem" -H "Authorization: Bearer $ADMIN" "$B/admin/hosts" |
		jq -e '.hosts[] | select(.name == "host2" and .last_seen_ms > 0)' >/dev/null 2>&1
}
wait_for 10 host2_seen || fail "host2 did not register: $(tail -5 "$T/sessiond2.log")"
[ -n "$(sd2_net)" ] || fail "no network side of host2"

ALICE=$(login alice alice-pw)
U1=$(login "$SD_USER" user-pw)
U2=$(login "$SD_USER2" user2-pw)
for i in $(seq 1 10); do
	tok=$(login "f$i" "fpw$i")
	[ ${#tok} = 43 ] || fail "f$i could not log in"
	echo "$tok" >"$T/ftok$i"
done

# timed NAME METHOD PATH [BODY] [AUTH]: one call, its status, body and
# time in ms into $T/timed/NAME.{status,out,ms}; fails past BOUND_MS.
mkdir -p "$T/timed"
timed() {
	local name=$1 method=$2 path=$3 body=${4:-} auth=${5:-} t
	local args=(-s -o "$T/timed/$name.out" -w '%{http_code} %{time_total}' --max-time 60
		--cacert "$T/tls/server.pem" -X "$method")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	[ -n "$auth" ] && args+=(-H "Authorization: Bearer $auth")
	read -r STATUS t < <(curl "${args[@]}" "$B$path")
	MS=$((10#${t%.*} * 1000 + 10#${t#*.} / 1000)) # curl prints seconds with 6 decimals
	echo "$STATUS" >"$T/timed/$name.status"
	echo "$MS" >"$T/timed/$name.ms"
	echo "   $name: HTTP $STATUS in $MS ms"
	[ "$MS" -le "$BOUND_MS" ] || fail "$name took $MS ms while host2 is frozen"
}

# --- host2 stops answering ------------------------------------------------------
kill -STOP "$(sd2_net)" || fail "cannot freeze host2"
start=$(date +%s%N)
pids=()
for i in $(seq 1 10); do
	(
		curl -s -o "$T/frozen$i.out" -w '%{http_code} %{time_total}' --max-time 120 \
			--cacert "$T/tls/server.pem" -X POST -H "Authorization: Bearer $(cat "$T/ftok$i")" \
			"$B/resources/frozen/launch" >"$T/frozen$i.status.new"
		echo $(($(date +%s%N) / 1000000)) >"$T/frozen$i.end" # when the answer came
		mv "$T/frozen$i.status.new" "$T/frozen$i.status"
	) &
	pids+=($!)
done
# Until every launch has its session row (one start runs, five wait, four
# were refused), the admin's listing, each answer within the bound.
for n in $(seq 1 50); do
	timed "admin_sessions_$n" GET "/admin/sessions?state=all" "" "$ADMIN"
	[ "$STATUS" = 200 ] || fail "admin sessions: $(cat "$T/timed/admin_sessions_$n.out")"
	[ "$(jq '[.sessions[] | select(.pool == "frozen")] | length' "$T/timed/admin_sessions_$n.out")" = 10 ] && break
	[ "$n" = 50 ] && fail "the ten launches did not reach the broker"
	sleep 0.1
done

timed login POST /login '{"username":"bob","password":"bob-pw"}'
[ "$STATUS" = 200 ] || fail "login: $(cat "$T/timed/login.out")"
timed resources GET /resources "" "$ALICE"
[ "$STATUS" = 200 ] || fail "resources: $(cat "$T/timed/resources.out")"
timed launch_static POST /resources/office/launch "" "$ALICE"
[ "$STATUS" = 200 ] || fail "a launch on a static pool: $(cat "$T/timed/launch_static.out")"
ticket=$(jq -r .ticket "$T/timed/launch_static.out")
timed redeem POST /gateway/redeem "{\"ticket\":\"$ticket\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET"
[ "$STATUS" = 200 ] || fail "redeem: $(cat "$T/timed/redeem.out")"
timed admin_sessions GET "/admin/sessions?state=all" "" "$ADMIN"
[ "$STATUS" = 200 ] || fail "admin sessions: $(cat "$T/timed/admin_sessions.out")"
timed admin_hosts GET /admin/hosts "" "$ADMIN"
[ "$STATUS" = 200 ] || fail "admin hosts"
timed launch_host1 POST /resources/healthy/launch "" "$U1"
[ "$STATUS" = 200 ] || fail "a launch on host1: $(cat "$T/timed/launch_host1.out")"
[ "$(jq -r .session.state "$T/timed/launch_host1.out")" = ready ] || fail "host1: $(cat "$T/timed/launch_host1.out")"
pgrep -u "$SD_USER" -x xterm >/dev/null || fail "no xterm of $SD_USER on host1"
checked=$((($(date +%s%N) - start) / 1000000))
pending=$(for i in $(seq 1 10); do [ -s "$T/frozen$i.status" ] || echo "$i"; done | wc -l)
echo "   every check answered within $((checked)) ms of the freeze; $pending starts on host2 still pending then"
[ "$pending" -ge 1 ] || fail "host2's starts ended before the checks did: the test proves nothing"

wait "${pids[@]}"
refused=0 unavailable=0
for i in $(seq 1 10); do
	read -r st t <"$T/frozen$i.status"
	ms=$((10#${t%.*} * 1000 + 10#${t#*.} / 1000))
	code=$(jq -r .error "$T/frozen$i.out") msg=$(jq -r .message "$T/frozen$i.out")
	echo "   f$i: HTTP $st in $ms ms: $msg"
	case "$st $code" in
	"503 host_busy")
		[ "$msg" = "too many starts waiting for host host2, try again in a moment" ] || fail "refusal: $msg"
		[ "$ms" -le "$BOUND_MS" ] || fail "a refusal took $ms ms"
		refused=$((refused + 1))
		;;
	"503 host_unavailable")
		[ "$msg" = "cannot start your session in pool frozen: session host unavailable" ] ||
			fail "a frozen host's answer: $msg"
		unavailable=$((unavailable + 1))
		cat "$T/frozen$i.end" >>"$T/unavailable.end"
		;;
	*) fail "f$i: HTTP $st: $(cat "$T/frozen$i.out")" ;;
	esac
done
[ "$refused" = 4 ] && [ "$unavailable" = 6 ] ||
	fail "$refused starts refused and $unavailable timed out, not 4 and 6 (cap 1, queue 5)"
# One at a time: each answer comes one timeout after the one before (each
# call waits out the same 5 s).
mapfile -t ms < <(sort -n "$T/unavailable.end")
for k in 1 2 3 4 5; do
	[ $((ms[k] - ms[k - 1])) -ge 3000 ] ||
		fail "more than one start ran on host2 at once: answers $((ms[k] - ms[k - 1])) ms apart"
done
echo "ok: a frozen host holds only its own starts"

api GET "/admin/sessions?state=all" "" "$ADMIN" >/dev/null
left=$(jq '[.sessions[] | select(.pool == "frozen" and .state != "ended")] | length' "$T/out")
[ "$left" = 0 ] || fail "$left sessions of host2 are not ended: $(cat "$T/out")"
reasons=$(jq -r '[.sessions[] | select(.pool == "frozen") | .end_reason] | unique | join(", ")' "$T/out")
[ "$reasons" = "session host unavailable, start refused" ] || fail "end reasons: $reasons"
grep -q "session host host2 unreachable" "$T/broker.log" || grep -q "host2 unreachable" "$T/broker.log" ||
	fail "the broker's log does not say host2 was unreachable"

# --- thawed, host2 takes starts again --------------------------------------------
kill -CONT "$(sd2_net)"
api POST /resources/frozen/launch "" "$U2" >/dev/null
expect 200
[ "$(jq -r .session.state "$T/out")" = ready ] || fail "after the thaw: $(cat "$T/out")"
echo "ok: a thawed host takes starts again"

# --- stopping with starts pending on a frozen host ---------------------------------
kill -STOP "$(sd2_net)"
pids=()
for i in 1 2 3; do
	curl -s -o "$T/stop$i.out" --max-time 60 --cacert "$T/tls/server.pem" -X POST \
		-H "Authorization: Bearer $(cat "$T/ftok$i")" "$B/resources/frozen/launch" &
	pids+=($!)
done
three_starting() {
	api GET "/admin/sessions?state=starting" "" "$ADMIN" | jq -e '[.sessions[] | select(.pool == "frozen")] | length == 3' >/dev/null
}
wait_for 10 three_starting || fail "the three starts did not reach the broker: $(cat "$T/out")"
t0=$(date +%s%N)
be_stop
stop_ms=$((($(date +%s%N) - t0) / 1000000))
echo "   the broker stopped in $stop_ms ms with 1 start running and 2 waiting"
[ "$BE_RC" = 0 ] || fail "the broker's exit status is $BE_RC"
# The three launches, and maybe a heartbeat of host1's.
grep -qE "waiting for [3-9] requests, 3 calls to session hosts \(2 of them waiting: not made\)" "$T/broker.log" ||
	fail "the stop did not wait for the starts: $(grep -E 'waiting|stopp' "$T/broker.log" | tail -3)"
grep -q "stopped" "$T/broker.log" || fail "no 'stopped' line"
wait "${pids[@]}" # not a bare wait: the session hosts are background jobs too
kill -CONT "$(sd2_net)" || fail "host2's network side is gone: $(tail -3 "$T/sessiond2.log")"
echo "ok: stop waits for the starts in flight"
echo "ok: broker load"
