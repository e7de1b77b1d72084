#!/bin/bash
# 200 users launch at once into a pool with room for 100 (2 backends x 50):
# exactly 100 sessions, 100 clear refusals, no backend over its limit.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

be_setup
for i in $(seq -w 1 200); do be_user "u$i" "pw$i" $((5000 + 10#$i)) crowd; done
be_conf_append "
[pool crowd]
driver = static
hosts = $BACKEND_A, $BACKEND_B
groups = crowd
max_sessions_per_host = 50"
be_start

for i in $(seq -w 1 200); do
	tok=$(login "u$i" "pw$i")
	[ ${#tok} = 43 ] || fail "u$i could not log in"
	echo "$tok" >"$T/tok$i"
done
pids=()
for i in $(seq -w 1 200); do
	curl -s -o "$T/launch$i" -w '%{http_code}\n' --cacert "$T/tls/server.pem" -X POST \
		-H "Authorization: Bearer $(cat "$T/tok$i")" "$B/resources/crowd/launch" >"$T/status$i" &
	pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the broker is a background job too
ok=$(cat "$T"/status* | grep -c '^200$')
full=$(cat "$T"/status* | grep -c '^503$')
echo "   200 concurrent launches: $ok sessions, $full refusals"
for i in $(seq -w 1 200); do
	case $(cat "$T/status$i") in
	200 | 503) ;;
	*) echo "   launch $i: HTTP $(cat "$T/status$i"): $(cat "$T/launch$i")" ;;
	esac
done
[ "$ok" = 100 ] || fail "$ok launches succeeded, not 100"
[ "$full" = 100 ] || fail "$full launches were refused, not 100"
for f in "$T"/launch*; do
	if grep -q '"error"' "$f"; then
		[ "$(jq -r .message "$f")" = "no session available in pool crowd" ] || fail "refusal: $(cat "$f")"
	fi
done
a=$(cat "$T"/launch* | jq -r 'select(.session) | .session.host' | grep -c "^$BACKEND_A$")
b=$(cat "$T"/launch* | jq -r 'select(.session) | .session.host' | grep -c "^$BACKEND_B$")
[ "$a" = 50 ] && [ "$b" = 50 ] || fail "backends hold $a and $b sessions"
ids=$(cat "$T"/launch* | jq -r 'select(.session) | .session.id' | sort -u | wc -l)
[ "$ids" = 100 ] || fail "$ids distinct sessions for 100 launches"
echo "ok: capacity"
