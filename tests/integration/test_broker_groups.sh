#!/bin/bash
# A pool given to a large group: the group's entry lists every member (an
# LDAP group of thousands), longer than any fixed buffer.  Its members see
# and launch the pool; a member of a group too large to read would lose it
# without a word.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

be_setup
# 1,500 members of "everyone": its group line is about 24 KB, past the
# first buffer the broker tries (16 KB) too.
for i in $(seq -w 1 1500); do be_user "groupmember$i" "pw$i" $((10000 + 10#$i)) everyone; done
be_conf_append "
[pool big]
driver = static
hosts = $BACKEND_A
groups = everyone
max_sessions_per_host = 10"
be_start
line=$(grep '^everyone:' "$T/group")
[ ${#line} -gt 20000 ] || fail "the group line is only ${#line} bytes"
for u in groupmember0001 groupmember1500; do
	tok=$(login "$u" "pw${u#groupmember}")
	[ ${#tok} = 43 ] || fail "$u could not log in"
	api GET /resources "" "$tok" >/dev/null
	expect 200
	jq -e '.resources[] | select(.name == "big")' "$T/out" >/dev/null ||
		fail "$u, a member of a ${#line}-byte group, does not see its pool: $(cat "$T/out")"
	api POST /resources/big/launch "" "$tok" >/dev/null
	expect 200
done
# Not a member: not the pool's.
tok=$(login alice alice-pw)
api POST /resources/big/launch "" "$tok" >/dev/null
expect 404
grep -q "cannot be read" "$T/broker.log" && fail "a group could not be read: $(grep "cannot be read" "$T/broker.log")"
echo "ok: a pool of a ${#line}-byte group"
