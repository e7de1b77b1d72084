#!/bin/bash
# Run every test binary given on the command line (Criterion), then every
# integration test script, and print one closing line with the totals.
# Exits non-zero when anything failed.
set -u
cd "$(dirname "$0")/.."

export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

passed=0 failed=0 status=0
for t in "$@"; do
	echo "== $t"
	out=$(mktemp)
	"$t" --jobs "${JOBS:-2}" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -a 'Synthesis:' "$out" | tail -n 1)
	rm -f "$out"
	p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")
	f=$(sed -n 's/.*Failing: \([0-9]*\).*Crashing: \([0-9]*\).*/\1 \2/p' <<<"$line")
	passed=$((passed + ${p:-0}))
	for n in $f; do failed=$((failed + n)); done
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		status=1
		[ -z "$line" ] && failed=$((failed + 1)) && echo "$t: no result (exit $rc)"
	fi
done

# Each integration test gets a directory for its sanitizer reports
# (tests/integration/lib.sh: the tests that source it fail on a report
# themselves; this catches the others' too) and a time limit, so that a
# process that never stops cannot stall the run.
PT_LIB_NO_SETUP=1
. tests/integration/lib.sh
for t in tests/integration/test_*.sh; do
	[ -e "$t" ] || continue
	echo "== $t"
	dir=$(mktemp -d /tmp/portico-san.XXXXXX)
	(pt_san_env "$dir" && exec timeout -k 30 "${TEST_TIMEOUT:-1200}" bash "$t")
	rc=$?
	[ "$rc" = 124 ] && echo "FAIL: $t did not end within ${TEST_TIMEOUT:-1200}s"
	if [ "$rc" = 0 ] && ! pt_san_scan "$dir"/report.*; then rc=1; fi
	rm -rf "$dir"
	if [ "$rc" = 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
done

# Every fuzz target for a few seconds on its seed corpus: a regression in a
# parser shows here (make fuzz-run SECONDS=N for longer runs).
for t in tests/fuzz/fuzz_*.c; do
	[ -e "$t" ] || continue
	t=$(basename "$t" .c)
	echo "== fuzz $t"
	if tests/fuzz/run.sh "${FUZZ_SECONDS:-3}" "$t"; then passed=$((passed + 1)); else failed=$((failed + 1)); status=1; fi
done

echo "tests: $passed passed, $failed failed"
exit $status
