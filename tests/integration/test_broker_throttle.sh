#!/bin/bash
# Throttling: 3 failures within the window lock the source out before PAM
# runs, even for the right password; the lock wears off.  Attempts count
# when they start: 64 at once get at most login_attempts PAM calls; the
# user's counter ignores case; successes are forgiven.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

be_setup
sed -i 's/^login_attempts = .*/login_attempts = 3/; s/^login_window = .*/login_window = 3s/' "$T/portico.conf"
be_start

for i in 1 2 3; do
	api POST /login '{"username":"bob","password":"wrong"}' >/dev/null
	expect 401 login_failed
done
api POST /login '{"username":"bob","password":"bob-pw"}' >/dev/null
expect 429 throttled
grep -q 'auth throttled user=bob rhost=127.0.0.1' "$T/broker.log" || fail "no throttle log line"
sleep 3.5
tok=$(login bob bob-pw)
[ ${#tok} = 43 ] || fail "bob is still locked out after the window: $(cat "$T/out")"
echo "ok: throttling kicks in and recovers"

# --- attempts count when they start -------------------------------------------------
# 64 wrong passwords for one name at once, login_attempts = 5: at most 5
# reach PAM (each PAM answer is one "auth failure" line), the rest are
# throttled before it.
be_stop
sed -i 's/^login_attempts = .*/login_attempts = 5/; s/^login_window = .*/login_window = 1m/' "$T/portico.conf"
be_start
pam_calls() { grep -c "auth failure user=$1 " "$T/broker.log"; }
n0=$(pam_calls bob)
pids=()
for i in $(seq 1 64); do
	curl -s -o /dev/null -w '%{http_code}\n' --cacert "$T/tls/server.pem" \
		-d '{"username":"bob","password":"wrong"}' "$B/login" >"$T/par$i" &
	pids+=($!)
done
wait "${pids[@]}"
calls=$(($(pam_calls bob) - n0))
s401=$(cat "$T"/par* | grep -c '^401$')
s429=$(cat "$T"/par* | grep -c '^429$')
echo "   64 parallel wrong passwords: $calls PAM calls, $s401 x 401, $s429 x 429"
[ "$calls" -ge 1 ] && [ "$calls" -le 5 ] || fail "$calls attempts reached PAM, not 1 to 5"
[ "$s401" = "$calls" ] && [ $((s401 + s429)) = 64 ] || fail "answers: $(sort "$T"/par* | uniq -c | tr '\n' ' ')"
echo "ok: 64 parallel attempts, at most login_attempts reach PAM"

# The same name in another case is the same user: "Alice" and "alice" share
# a counter (each from another address, so only the user's counter counts).
for i in 1 2 3; do
	api POST /gateway/authorize "{\"username\":\"Alice\",\"password\":\"wrong\",\"client_addr\":\"192.0.2.$i\"}" "$GW_SECRET" >/dev/null
	expect 401 login_failed
done
for i in 4 5; do
	api POST /gateway/authorize "{\"username\":\"alice\",\"password\":\"wrong\",\"client_addr\":\"192.0.2.$i\"}" "$GW_SECRET" >/dev/null
	expect 401 login_failed
done
api POST /gateway/authorize '{"username":"alice","password":"alice-pw","client_addr":"192.0.2.6"}' "$GW_SECRET" >/dev/null
expect 429 throttled
# A success gives its attempt back: dave logs in more often than
# login_attempts (at the gateway: 127.0.0.1 is locked by now) and is never
# throttled.
for i in $(seq 1 8); do
	api POST /gateway/authorize '{"username":"dave","password":"dave-pw","client_addr":"192.0.2.50"}' "$GW_SECRET" >/dev/null
	expect 200
done
echo "ok: Alice and alice share a counter; successes are forgiven"
