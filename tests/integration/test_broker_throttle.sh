#!/bin/bash
# Throttling: 3 failures within the window lock the source out before PAM
# runs, even for the right password; the lock wears off.
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
