#!/bin/bash
# A login storm (everyone at nine o'clock) is slowed, not refused: 150 users
# log in at once through a PAM stack that takes 1 s a conversation (pam_exec
# of a script that also counts how many conversations run at once).  The
# broker gives PAM at most [broker] max_logins at once (its PAM processes);
# the others wait for a free one.  Every user gets a token, PAM never runs
# more than max_logins at once, and the broker still answers requests that
# need no PAM meanwhile.  Then a flood beyond max_login_queue: those beyond
# are refused at once with 503 busy, the rest log in.
#
# max_logins is 16 here, not its 64: pam_wrapper gives each PAM process a
# directory of its own named /tmp/pam.X (one character), so it cannot run
# more than about 60 at once on a machine (broker_env.sh sets 32).
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

N=150
HOLD=1 # seconds PAM takes, each conversation
MAX=16
be_setup
sed -i "s|^max_logins = .*|max_logins = $MAX|" "$T/portico.conf"
for i in $(seq 1 $N); do be_user "s$i" "pw-s$i" $((7000 + i)) staff; done
# The script runs as the PAM process's child (root): it counts the
# conversations running now and the most ever seen, under one lock.
cat >"$T/slow-pam" <<SH
#!/bin/sh
exec 9>>"$T/pam.lock"
flock 9
now=\$((\$(cat "$T/pam.now" 2>/dev/null || echo 0) + 1))
echo \$now >"$T/pam.now"
[ \$now -gt \$(cat "$T/pam.max" 2>/dev/null || echo 0) ] && echo \$now >"$T/pam.max"
flock -u 9
sleep \$(cat "$T/pam.hold")
flock 9
echo \$((\$(cat "$T/pam.now") - 1)) >"$T/pam.now"
echo x >>"$T/pam.calls"
SH
chmod 755 "$T/slow-pam"
echo $HOLD >"$T/pam.hold"
cat >"$T/pam/portico" <<PAM
auth    requisite pam_exec.so quiet $T/slow-pam
auth    required $PAM_MATRIX passdb=$T/passdb
account required $PAM_MATRIX passdb=$T/passdb
PAM
be_start
ALICE=$(login alice alice-pw)
[ ${#ALICE} = 43 ] || fail "alice could not log in before the storm: $(cat "$T/out")"
rm -f "$T/pam.max" "$T/pam.calls"

mkdir -p "$T/s"
pids=()
t0=$(date +%s%N)
for i in $(seq 1 $N); do
	curl -s -o "$T/s/login$i" -w '%{http_code}' --max-time 120 --cacert "$T/tls/server.pem" \
		-H 'Content-Type: application/json' \
		--data-binary "{\"username\":\"s$i\",\"password\":\"pw-s$i\"}" "$B/login" >"$T/s/code$i" &
	pids+=($!)
done
# Meanwhile the broker answers what does not need PAM.
sleep 1
t1=$(date +%s%N)
api GET /resources "" "$ALICE" >/dev/null
list_ms=$((($(date +%s%N) - t1) / 1000000))
[ "$STATUS" = 200 ] || fail "alice's GET /resources during the storm: HTTP $STATUS $(cat "$T/out")"
wait "${pids[@]}"
took=$((($(date +%s%N) - t0) / 1000000))

refused=0
for i in $(seq 1 $N); do
	code=$(cat "$T/s/code$i")
	body=$(cat "$T/s/login$i" 2>/dev/null)
	if [ "$code" != 200 ] || ! [[ $body =~ \"token\":\ ?\"[A-Za-z0-9_-]{43}\" ]]; then
		refused=$((refused + 1))
		[ $refused -le 3 ] && echo "   s$i: HTTP $code $body"
	fi
done
max=$(cat "$T/pam.max")
calls=$(wc -l <"$T/pam.calls")
echo "   $N logins in $((took / 1000)).$(((took % 1000) / 100)) s; PAM ran $calls, at most $max at once; alice's listing took $list_ms ms meanwhile"
[ "$refused" = 0 ] || fail "$refused of $N users were not logged in"
[ "$calls" = "$N" ] || fail "PAM ran $calls conversations for $N logins"
[ "$max" -le $MAX ] || fail "PAM ran $max conversations at once: more than max_logins = $MAX"
[ "$max" -ge 2 ] || fail "the logins never ran side by side (at most $max at once)"
echo "ok: a login storm beyond the PAM processes waits its turn: every user logged in"

# Each token works: the users' own listings.
for i in 1 75 $N; do
	tok=$(jq -r .token "$T/s/login$i")
	api GET /resources "" "$tok" >/dev/null
	expect 200
done
echo "ok: the storm's tokens work"

# --- beyond the queue ---------------------------------------------------------------
# max_logins = 4 and max_login_queue = 10; 30 logins at once, 3 s each in
# PAM: 14 are taken (4 with PAM, 10 waiting), 16 are refused at once.
be_stop
sed -i "s|^max_logins = .*|max_logins = 4\nmax_login_queue = 10|" "$T/portico.conf"
echo 3 >"$T/pam.hold"
be_start
pids=()
for i in $(seq 1 30); do
	curl -s -o "$T/s/flood$i" -w '%{http_code} %{time_total}' --max-time 120 \
		--cacert "$T/tls/server.pem" -H 'Content-Type: application/json' \
		--data-binary "{\"username\":\"s$i\",\"password\":\"pw-s$i\"}" "$B/login" >"$T/s/fcode$i" &
	pids+=($!)
done
wait "${pids[@]}"
ok=0 busy=0 slow_busy=0
for i in $(seq 1 30); do
	read -r code secs <"$T/s/fcode$i"
	body=$(cat "$T/s/flood$i" 2>/dev/null)
	case $code in
	200) ok=$((ok + 1)) ;;
	503)
		[ "$(jq -r .message <<<"$body")" = "too many logins at once: try again" ] ||
			fail "s$i: 503 with $body"
		busy=$((busy + 1))
		# At once: not after waiting for PAM (which takes 3 s).
		[ "${secs%.*}" -lt 3 ] || slow_busy=$((slow_busy + 1))
		;;
	*) fail "s$i: HTTP $code $body" ;;
	esac
done
echo "   30 logins with 4 + 10 places: $ok logged in, $busy refused"
[ $((ok + busy)) = 30 ] || fail "answers missing"
[ "$ok" -ge 14 ] || fail "only $ok logged in: 14 places were there"
[ "$busy" -ge 1 ] || fail "no login was refused beyond the queue"
[ "$slow_busy" = 0 ] || fail "$slow_busy refusals came only after PAM's time"
echo "ok: beyond max_login_queue, logins are refused at once with 503 busy"
echo "ok: login storm"
