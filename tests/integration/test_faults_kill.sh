#!/bin/bash
# kill -9 of the broker, of the gateway and of sessiond's network side at
# random moments during a storm of 200 launches (100 real users, each a
# desktop and a published application, real Xvnc sessions), each restarted
# after it; some users watch their desktop through the gateway meanwhile.
# Then: no session row lost or doubled (the broker's list, what sessiond
# reports and the Xvnc processes that run agree, one to one), no desktop
# orphaned, every session a user was given still theirs, and every user
# reconnects to their own sessions (the same ids; for a sample, a real VNC
# client through the gateway reaches that user's desktop).
#
# The kills' moments come from a seeded RNG: FAULTS_SEED=N replays the
# same plan (the daemons' own timing still varies).  Needs root.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

N=100 # users; two launches each
WAVE=10 # users let go at once (the storm comes in waves)
SEED=${FAULTS_SEED:-$(($(date +%s%N) % 1000000007))}
echo "   seed $SEED (replay: FAULTS_SEED=$SEED)"
RANDOM=$SEED
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$(date +%s)
# Checks that do not stop the test: every finding of one run is reported.
FINDINGS=()
soft_fail() {
	echo "FAIL: $*"
	FINDINGS+=("$*")
}

be_setup
sd_setup
TAG=$(($$ % 100000))
USERS=()
for i in $(seq 1 $N); do USERS+=("f${TAG}u$i"); done
storm_cleanup() {
	touch "$T/s/stop" 2>/dev/null
	[ -n "${GW_PID:-}" ] && kill -KILL "$GW_PID" 2>/dev/null
	jobs -p | xargs -r kill -KILL 2>/dev/null
	for u in "${USERS[@]}"; do pkill -KILL -u "$u" 2>/dev/null; done
	sd_cleanup_then_users
}
sd_cleanup_then_users() {
	sd_stop
	for f in "$T"/run/state/*; do
		[ -f "$f" ] || continue
		m=$(awk '$1 == "monitor" { print $2 }' "$f")
		[ -n "$m" ] && [ "$(cat "/proc/$m/comm" 2>/dev/null)" = pt-session ] && kill -KILL "$m"
	done
	for u in "${USERS[@]}"; do pkill -KILL -u "$u" 2>/dev/null; done
	for _ in $(seq 1 50); do
		pgrep -u "$(
			IFS=,
			echo "${USERS[*]}"
		)" >/dev/null 2>&1 || break
		sleep 0.1
	done
	for u in "${USERS[@]}"; do userdel "$u" >/dev/null 2>&1; done
	sd_cleanup
}
trap storm_cleanup EXIT
for i in $(seq 1 $N); do
	u=${USERS[$((i - 1))]}
	useradd -M -d /nonexistent -s /bin/sh "$u" || fail "useradd $u"
	be_user "$u" "pw-$u" $((6000 + i)) storm
done
GW_PORT=$(free_port)
be_gateway_conf "$GW_PORT" "$(free_port)" user="$SD_SVC"
sed -i "s|^ticket_ttl = 5s|ticket_ttl = 30s|" "$T/portico.conf"
sed -i "s|^\[broker\]|&\nmax_starts_per_host = 8\nmax_start_queue = 256|" "$T/portico.conf"
be_conf_append "
[pool desk]
kind = desktop
driver = xvnc
hosts = host1
groups = storm
max_sessions_per_host = 1000

[pool clock]
kind = app
driver = xvnc
command = /usr/bin/xclock
hosts = host1
groups = storm
max_sessions_per_host = 1000"
be_start
ADMIN=$(login carol carol-pw)
sd_start

gw_start() {
	"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
	GW_PID=$!
	wait_for 10 eval "(exec 3<>/dev/tcp/127.0.0.1/$GW_PORT) 2>/dev/null" || fail "the gateway does not listen"
}
gw_start
echo "   setup: $(($(date +%s) - T0)) s"

# --- logins (before the storm: tokens must outlive the broker's kills) ---------------
# Bash's own regex and read, not jq, per user: 200 forks of jq cost more
# than the storm on a loaded machine.
mkdir -p "$T/s"
pids=()
for i in $(seq 1 $N); do
	u=${USERS[$((i - 1))]}
	curl -s -o "$T/s/login$i" --cacert "$T/tls/server.pem" -H 'Content-Type: application/json' \
		--data-binary "{\"username\":\"$u\",\"password\":\"pw-$u\"}" "$B/login" &
	pids+=($!)
done
wait "${pids[@]}"
TOK=()
for i in $(seq 1 $N); do
	read -r body <"$T/s/login$i"
	[[ $body =~ \"token\":\ ?\"([A-Za-z0-9_-]{43})\" ]] || fail "user $i could not log in: $body"
	TOK[i]=${BASH_REMATCH[1]}
done

# --- the storm -------------------------------------------------------------------------
# One job per user: launch the desktop, then the application; retry what a
# client retries (no answer while the broker is down: 000; 5xx; 409) until
# 200, each answer noted.  Every 4th user then watches the desktop through
# the gateway (vnc-probe -w) until the storm is over.  Each 200's session
# id is kept: the session a user was given must survive.
launch() { # I POOL OUT: one launch; prints the HTTP status (000: no answer)
	curl -s -o "$3" -w '%{http_code}' --max-time 150 --cacert "$T/tls/server.pem" -X POST \
		-H "Authorization: Bearer ${TOK[$1]}" "$B/resources/$2/launch"
}
storm_user() { # I
	local i=$1 pool code body
	# The storm comes in waves (WAVE users each), so that every fault
	# lands with launches in flight however fast this machine is.
	local gate
	while read -r gate 2>/dev/null <"$T/s/gate"; [ "${gate:-0}" -lt $(((i - 1) / WAVE + 1)) ]; do
		[ $SECONDS -lt $STORM_END ] || return 1
		sleep 1 # 100 waiting users: a finer poll is load of its own
	done
	for pool in desk clock; do
		while :; do
			: >"$T/s/$i.$pool.out"
			code=$(launch "$i" $pool "$T/s/$i.$pool.out")
			body=
			read -r -d '' body <"$T/s/$i.$pool.out"
			if [ "$code" = 200 ] && [[ $body =~ \"session\":\ ?\{\"id\":\ ?([0-9]+) ]]; then
				echo "${BASH_REMATCH[1]}" >>"$T/s/$i.$pool.given"
				break
			fi
			[[ $body =~ \"error\":\ ?\"([a-z_]+)\" ]] || BASH_REMATCH=(x "")
			echo "$pool $code ${BASH_REMATCH[1]}" >>"$T/s/$i.retries"
			case $code in
			000 | 5?? | 409) ;;
			*) return 1 ;; # a refusal no retry mends
			esac
			[ $SECONDS -lt $STORM_END ] || return 1
			sleep 0.$((RANDOM % 5 + 1))
		done
	done
	[ $((i % 4)) = 0 ] && watch_user "$i" &
	return 0
}
# A user who watches the desktop through the gateway: a fresh ticket (a
# reconnect), then vnc-probe -w until the connection ends.  A relay the
# gateway's kill cuts is not taken up again: that user has gone away, and
# the session must not stay "active".
watch_user() { # I
	local i=$1 code rc
	while [ $SECONDS -lt $STORM_END ] && [ ! -e "$T/s/stop" ]; do
		: >"$T/s/$i.w.out"
		code=$(launch "$i" desk "$T/s/$i.w.out")
		if [ "$code" = 200 ] && [[ $(<"$T/s/$i.w.out") =~ \"ticket\":\ ?\"([A-Za-z0-9_-]{43})\" ]]; then
			"$PROBE" -w -u ticket -C "$T/pki/ca.pem" "127.0.0.1:$GW_PORT" "${BASH_REMATCH[1]}" \
				>>"$T/s/$i.watch" 2>&1 &
			echo $! >"$T/s/$i.watch.pid"
			wait $!
			rc=$?
			echo "exit $rc" >>"$T/s/$i.watch"
			[ $rc = 3 ] || [ -e "$T/s/stop" ] && return 0 # cut, or the end
		fi
		sleep 0.5
	done
}
given() { # how many launches have been answered 200 so far
	local g=("$T"/s/*.given)
	[ -e "${g[0]}" ] && echo ${#g[@]} || echo 0
}
echo 0 >"$T/s/gate"
storm_start=$(date +%s%N)
STORM_END=$((SECONDS + ${FAULTS_STORM_MAX:-480})) # a storm that does not converge fails
spids=()
for i in $(seq 1 $N); do
	storm_user "$i" &
	spids+=($!)
done

# The faults: each daemon twice, in an order from the seed, each in a wave
# of the storm the seed picks (below).
kill_broker() {
	be_kill9
	sleep 0.$((RANDOM % 10))
	be_start
}
kill_gateway() {
	kill -KILL "$GW_PID"
	wait "$GW_PID" 2>/dev/null
	sleep 0.$((RANDOM % 10))
	gw_start
}
kill_sessiond_net() {
	local net
	net=$(pgrep -P "$SD_PID" -x portico-session) || fail "no network side of sessiond"
	kill -KILL "$net"
	# The root side sees its network side die and exits (systemd would
	# restart it); its sessions' monitors keep running.
	wait "$SD_PID" 2>/dev/null
	SD_PID=
	sleep 0.$((RANDOM % 10))
	sd_start
	wait_for 10 eval "(exec 3<>/dev/tcp/127.0.0.1/$SD_PORT) 2>/dev/null" || fail "sessiond does not listen"
}
plan=(broker gateway sessiond_net broker gateway sessiond_net)
for k in 5 4 3 2 1; do # Fisher-Yates on the seed
	j=$((RANDOM % (k + 1)))
	tmp=${plan[$k]} plan[$k]=${plan[$j]} plan[$j]=$tmp
done
# Each fault goes with a wave of its own, picked by the seed among all but
# the last, and strikes 0 to 1.9 s after that wave was let go: while its
# launches (and those of the waves before still retrying) are in flight.
# The next wave goes once half of this one's launches are answered.
waves=$(((N + WAVE - 1) / WAVE))
fw=($(seq 1 $((waves - 1))))
for k in $(seq $((${#fw[@]} - 1)) -1 1); do # Fisher-Yates on the seed
	j=$((RANDOM % (k + 1)))
	tmp=${fw[$k]} fw[$k]=${fw[$j]} fw[$j]=$tmp
done
declare -A fault_at
for k in 0 1 2 3 4 5; do fault_at[${fw[$k]}]=${plan[$k]}; done
for w in $(seq 1 $waves); do
	echo "$w" >"$T/s/gate.new" && mv "$T/s/gate.new" "$T/s/gate" # whole, never half written
	if [ -n "${fault_at[$w]:-}" ]; then
		f=${fault_at[$w]}
		sleep "$((RANDOM % 2)).$((RANDOM % 10))"
		at=$((($(date +%s%N) - storm_start) / 1000000))
		"kill_$f"
		echo "   kill -9 $f at $at ms into the storm (wave $w of $waves; $(given) of $((N * 2)) launches answered then), restarted"
	fi
	half=$(((w - 1) * WAVE * 2 + WAVE))
	while [ "$(given)" -lt "$half" ] && [ $SECONDS -lt $STORM_END ]; do sleep 0.2; done
done
wait "${spids[@]}"
storm_ms=$((($(date +%s%N) - storm_start) / 1000000))
for i in $(seq 1 $N); do
	for pool in desk clock; do
		[ -s "$T/s/$i.$pool.given" ] || fail "user $i never got a $pool session in ${FAULTS_STORM_MAX:-480} s: $(tail -3 "$T/s/$i.retries" | tr '\n' ';') ($(given) of $((N * 2)) launches answered; retries: $(cat "$T"/s/*.retries | awk '{ print $2, $3 }' | sort | uniq -c | sort -rn | head -3 | tr '\n' ';'))"
	done
done
cat "$T"/s/*.retries 2>/dev/null >"$T/retries"
echo "   storm: $((N * 2)) launches answered in $storm_ms ms; $(wc -l <"$T/retries") retries ($(awk '{ print $2, $3 }' "$T/retries" | sort | uniq -c | sort -rn | awk '{ printf "%s%s x %s %s", s, $1, $2, $3; s = ", " }'))"
# What a client had to retry is what a fault explains: no answer while
# the broker was down, 503 (the host or the broker restarting, a start
# still on its way).  A 409 or 502 is a launch the faults did not cause.
bad=$(awk '$2 !~ /^(000|503)$/' "$T/retries" | sort | uniq -c)
[ -z "$bad" ] || soft_fail "launches refused for no fault's sake: $bad"
echo "ok: a storm of $((N * 2)) launches through 6 kills (${plan[*]})"

# --- the watchers end; every session settles ---------------------------------------------
# Watchers that were cut (exit 3: the gateway was killed under them) and
# those still watching, who now close their viewers.
touch "$T/s/stop"
cut=$(grep -l "^exit 3$" "$T"/s/*.watch 2>/dev/null | wc -l)
watching=0
for f in "$T"/s/*.watch.pid; do kill "$(<"$f")" 2>/dev/null && watching=$((watching + 1)); done
echo "   viewers through the gateway: $cut cut by its kills, $watching closed after the storm"
sessions_json() { curl -s --cacert "$T/tls/server.pem" -H "Authorization: Bearer $ADMIN" "$B/admin/sessions?state=$1"; }
settled() {
	sessions_json live >"$T/live.json" || return 1
	sd_api GET /sessions >"$T/sd.json" || return 1
	[ "$STATUS" = 200 ] || return 1
	# Nothing still starting, and the host and the broker agree.
	[ "$(jq '[.sessions[] | select(.state == "starting")] | length' "$T/live.json")" = 0 ] &&
		[ "$(jq -r '.sessions[].id' "$T/live.json" | sort -n)" = "$(jq -r '.sessions[].id' "$T/sd.json" | sort -n)" ]
}
t=$(date +%s)
wait_for 60 settled || soft_fail "the broker and sessiond do not agree after 60 s: broker $(jq -c '[.sessions[] | [.id, .state]]' "$T/live.json"), host $(jq -c '[.sessions[].id]' "$T/sd.json")"
echo "   settled in $(($(date +%s) - t)) s"

# --- nothing lost, nothing doubled, nothing orphaned ----------------------------------------
sessions_json all >"$T/all.json"
jq -r '.sessions[] | select(.state != "ended") | "\(.user) \(.pool) \(.id)"' "$T/all.json" | sort >"$T/live.txt"
jq -r '.sessions[] | "\(.id) \(.state) \(.end_reason // "")"' "$T/all.json" >"$T/states.txt"
[ "$(wc -l <"$T/live.txt")" = $((N * 2)) ] || soft_fail "$(wc -l <"$T/live.txt") live sessions for $((N * 2)) launches"
doubled=$(awk '{ print $1, $2 }' "$T/live.txt" | uniq -d)
[ -z "$doubled" ] || soft_fail "users with two live sessions in a pool: $doubled"
declare -A LIVE STATE
while read -r u pool id; do LIVE[$u.$pool]=$id; done <"$T/live.txt"
while read -r id st why; do STATE[$id]="$st $why"; done <"$T/states.txt"
lost=()
: >"$T/want.txt"
for i in $(seq 1 $N); do
	u=${USERS[$((i - 1))]}
	for pool in desk clock; do
		id=${LIVE[$u.$pool]:-}
		[ -n "$id" ] && echo "$id $u" >>"$T/want.txt"
		# Every session the user was given is the one that lives: an
		# answer 200 whose session later ended is a loss.
		while read -r g; do
			[ "$g" = "$id" ] || lost+=("$u $pool: given $g (now ${STATE[$g]:-unknown}), live ${id:-none}")
		done <"$T/s/$i.$pool.given"
	done
done
[ ${#lost[@]} = 0 ] || soft_fail "${#lost[@]} sessions given to users were lost: ${lost[*]:0:5}"
# The processes: one Xvnc per live session, run as its user; none else.
: >"$T/xvnc.txt"
for p in $(pgrep -x Xvnc); do
	mapfile -d '' args 2>/dev/null <"/proc/$p/cmdline" || continue
	for a in "${args[@]}"; do
		[[ $a =~ ^$T/run/sessions/([0-9]+)/passwd$ ]] || continue
		echo "${BASH_REMATCH[1]} $(stat -c %U "/proc/$p")" >>"$T/xvnc.txt"
	done
done
sort -n "$T/want.txt" >"$T/want.sorted"
sort -n "$T/xvnc.txt" >"$T/xvnc.sorted"
diff "$T/want.sorted" "$T/xvnc.sorted" >"$T/xvnc.diff" ||
	soft_fail "Xvnc processes and live sessions differ (< live without its Xvnc, > an Xvnc of no live session): $(grep '^[<>]' "$T/xvnc.diff" | head -10 | tr '\n' ' ')"
# What the broker ended is gone from the host: no state file left.
for id in $(awk '$2 == "ended" { print $1 }' "$T/states.txt"); do
	[ ! -e "$T/run/state/$id" ] || soft_fail "session $id ended at the broker, its state is still on the host"
done
echo "   $(awk '$2 == "ended"' "$T/states.txt" | wc -l) sessions ended on the way: $(awk '$2 == "ended" { $1 = $2 = ""; print }' "$T/states.txt" | sort | uniq -c | tr -s ' ' | tr '\n' ';')"
# Nobody watches any more: no session may still count as connected.
wait_for 5 eval '[ "$(sessions_json live | jq "[.sessions[] | select(.state == \"active\")] | length")" = 0 ]' ||
	soft_fail "sessions still 'active' with no client connected (their gateway was killed): $(sessions_json live | jq -c '[.sessions[] | select(.state == "active") | .id]')"
echo "   checked: one row and one Xvnc per session, none lost, doubled or orphaned"

# --- every user reconnects to their own sessions --------------------------------------------
pids=()
for i in $(seq 1 $N); do
	for pool in desk clock; do
		launch "$i" $pool "$T/s/$i.$pool.again" >"$T/s/$i.$pool.again.code" &
		pids+=($!)
	done
done
wait "${pids[@]}"
wrong=()
for i in $(seq 1 $N); do
	u=${USERS[$((i - 1))]}
	for pool in desk clock; do
		read -r -d '' body <"$T/s/$i.$pool.again"
		[[ $(<"$T/s/$i.$pool.again.code") = 200 && $body =~ \"session\":\ ?\{\"id\":\ ?([0-9]+) &&
			${BASH_REMATCH[1]} = "${LIVE[$u.$pool]:-}" && $body =~ \"reconnect\":\ ?true ]] ||
			wrong+=("$u $pool: $body")
	done
done
[ ${#wrong[@]} = 0 ] || soft_fail "${#wrong[@]} reconnects did not give the user's own session: ${wrong[*]:0:3}"
# A sample through the gateway: each reaches that user's own desktop (a
# fresh ticket each: tickets live 30 s).
for _ in $(seq 1 8); do
	i=$((RANDOM % N + 1))
	u=${USERS[$((i - 1))]}
	launch "$i" desk "$T/s/$i.desk.sample" >/dev/null
	[[ $(<"$T/s/$i.desk.sample") =~ \"ticket\":\ ?\"([A-Za-z0-9_-]{43})\" ]] ||
		soft_fail "$u's launch for the sample: $(<"$T/s/$i.desk.sample")"
	out=$("$PROBE" -u ticket -C "$T/pki/ca.pem" "127.0.0.1:$GW_PORT" "${BASH_REMATCH[1]}" 2>&1) ||
		soft_fail "$u's desktop through the gateway: $out"
	grep -q "name=desk ($u) " <<<"$out" || soft_fail "$u reached: $out"
done
echo "   checked: every user reconnects to their own sessions; a sample reaches them through the gateway"
grep -h -iE "AddressSanitizer|runtime error|LeakSanitizer" "$T"/*.log && soft_fail "a sanitizer report"
echo "   run time $(($(date +%s) - T0)) s (load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end)"
[ ${#FINDINGS[@]} = 0 ] || fail "${#FINDINGS[@]} checks failed (above)"
echo "ok: faults kill"
