#!/bin/bash
# The tests' own harness (lib.sh): what every other test relies on when it
# cleans up.  Each case runs a small script that sources lib.sh as a test
# does and sets its EXIT trap through the wrapper.
set -u
cd "$(dirname "$0")/../.." || exit 1
LIB=$PWD/tests/integration/lib.sh
T=$(mktemp -d /tmp/portico-lib-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# A forked copy of the test killed before it execs (a background command, or
# pt_stop's watchdog when the process stops at once) must not run the test's
# cleanup: once it stopped CI's daemons and removed the test's directory
# while the test went on.
cat >"$T/fork.sh" <<SH
. "$LIB"
trap 'echo "cleanup in \$BASHPID" >>"$T/cleanups"' EXIT
for _ in \$(seq 1 20); do
	x=\$(sleep 5) &
	kill -TERM \$!
done
wait
for _ in \$(seq 1 20); do
	sleep 0.01 &
	pt_stop \$! "a short sleep" 5
done
echo "main \$BASHPID" >"$T/main"
SH
bash "$T/fork.sh" 2>"$T/err" || fail "the script failed: $(tail -3 "$T/err")"
[ "$(wc -l <"$T/cleanups")" = 1 ] || fail "the cleanup ran $(wc -l <"$T/cleanups") times: $(cat "$T/cleanups")"
[ "$(cut -d' ' -f3 "$T/cleanups")" = "$(cut -d' ' -f2 "$T/main")" ] ||
	fail "the cleanup ran in another shell than the test's: $(cat "$T/cleanups")"
echo "ok: the cleanup runs once, in the test's own shell"

# A trap set inside a subshell of its own runs there.
bash -c ". '$LIB'; ( trap 'echo inner' EXIT; true ); true" >"$T/out" || fail "exit status $?"
[ "$(cat "$T/out")" = inner ] || fail "a subshell's own trap: $(cat "$T/out")"
echo "ok: a subshell's own trap runs"

# trap -p EXIT shows the trap; it does not replace it with "-p".
bash -c ". '$LIB'; trap 'echo bye' EXIT; trap -p EXIT >/dev/null; true" >"$T/out" 2>&1
[ "$(cat "$T/out")" = bye ] || fail "trap -p EXIT changed the trap: $(cat "$T/out")"
echo "ok: trap -p EXIT"

# The exit status: the test's own, or 1 after a failed stop.
bash -c ". '$LIB'; trap 'true' EXIT; exit 3"
[ $? = 3 ] || fail "the test's exit status was lost"
bash -c ". '$LIB'; trap 'true' EXIT; bash -c 'trap \"\" TERM; sleep 30' & sleep 0.2; pt_stop \$! stubborn 1" >"$T/out"
rc=$?
[ $rc = 1 ] && grep -q "FAIL: stubborn (pid [0-9]*) did not stop within 1s of SIGTERM: killed with SIGKILL" "$T/out" ||
	fail "a process that ignores SIGTERM: status $rc, $(cat "$T/out")"
echo "ok: a stop that needs SIGKILL fails the test"
echo "ok: lib"
