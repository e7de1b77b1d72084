#!/bin/bash
# tests/run-tests.sh's closing line names what failed, not only how many
# (a Criterion test by suite::name, an integration test by its name), and
# the run exits non-zero; when all pass, the line has the totals alone.
# Run on stand-ins: a Criterion-like binary, two integration scripts, no
# fuzz target.
set -u
cd "$(dirname "$0")/../.."
T=$(mktemp -d /tmp/portico-runner.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}
cat >"$T/unit-fake" <<'SH'
#!/bin/bash
echo "[----] tests/unit/fake/test_x.c:7: Assertion Failed"
echo "[FAIL] suite::broken: (0.00s)"
echo "[====] Synthesis: Tested: 3 | Passing: 2 | Failing: 1 | Crashing: 0 "
exit 1
SH
cat >"$T/unit-good" <<'SH'
#!/bin/bash
echo "[====] Synthesis: Tested: 2 | Passing: 2 | Failing: 0 | Crashing: 0 "
SH
printf '#!/bin/bash\necho ok: fine\n' >"$T/test_good.sh"
printf '#!/bin/bash\necho "FAIL: on purpose"\nexit 1\n' >"$T/test_bad.sh"
chmod +x "$T"/unit-*

out=$(PT_INTEGRATION_TESTS="$T/test_good.sh $T/test_bad.sh" PT_FUZZ_TARGETS= \
	tests/run-tests.sh "$T/unit-fake" "$T/unit-good" 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "a failed run exited $rc"
last=$(tail -1 <<<"$out")
[ "$last" = "tests: 5 passed, 2 failed: unit-fake suite::broken, test_bad" ] ||
	fail "the last line: '$last'"

out=$(PT_INTEGRATION_TESTS="$T/test_good.sh" PT_FUZZ_TARGETS= tests/run-tests.sh "$T/unit-good" 2>&1)
rc=$?
[ "$rc" = 0 ] && [ "$(tail -1 <<<"$out")" = "tests: 3 passed, 0 failed" ] ||
	fail "a good run: exit $rc, '$(tail -1 <<<"$out")'"
echo "ok: the runner names what failed"

# Each integration test's time, and the slowest named before the totals.
printf '#!/bin/bash\nsleep 2\necho ok: slow\n' >"$T/test_slow.sh"
out=$(PT_INTEGRATION_TESTS="$T/test_good.sh $T/test_slow.sh" PT_FUZZ_TARGETS= tests/run-tests.sh 2>&1)
grep -Eq '^   \(test_slow: [23] s\)$' <<<"$out" || fail "no time for test_slow: $out"
grep -Eq '^slowest: test_slow [23] s, test_good [01] s$' <<<"$out" || fail "no slowest line: $out"
echo "ok: the runner shows where the time goes"
