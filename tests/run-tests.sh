#!/bin/bash
# Run every test binary given on the command line (Criterion), then every
# integration test script and every fuzz target, and print one closing line
# with the totals and the names of what failed ("tests: 315 passed, 2
# failed: test_gateway_rdg, unit-lib httpd_reader::a_post_with_a_body").
# Exits non-zero when anything failed.  PT_INTEGRATION_TESTS and
# PT_FUZZ_TARGETS (space-separated) replace the lists it finds itself
# (tests/integration/test_run_tests.sh runs it so).
set -u
cd "$(dirname "$0")/.."

export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

passed=0 failed=0 status=0 names=()
for t in "$@"; do
	echo "== $t"
	out=$(mktemp)
	"$t" --jobs "${JOBS:-2}" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -a 'Synthesis:' "$out" | tail -n 1)
	# Criterion's "[FAIL] suite::name: (0.00s)" lines name the tests.
	while read -r n; do
		names+=("$(basename "$t") $n")
	done < <(sed -n 's/^.*\[FAIL\] \([^: ]*::[^: ]*\).*/\1/p' "$out" | sort -u)
	rm -f "$out"
	p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")
	f=$(sed -n 's/.*Failing: \([0-9]*\).*Crashing: \([0-9]*\).*/\1 \2/p' <<<"$line")
	passed=$((passed + ${p:-0}))
	for n in $f; do failed=$((failed + n)); done
	if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
		status=1
		[ -z "$line" ] && failed=$((failed + 1)) && echo "$t: no result (exit $rc)" &&
			names+=("$(basename "$t") (no result)")
	fi
done

# Each integration test gets a directory for its sanitizer reports
# (tests/integration/lib.sh: the tests that source it fail on a report
# themselves; this catches the others' too) and a time limit, so that a
# process that never stops cannot stall the run.
PT_LIB_NO_SETUP=1
. tests/integration/lib.sh
times=()
for t in ${PT_INTEGRATION_TESTS-tests/integration/test_*.sh}; do
	[ -e "$t" ] || continue
	echo "== $t"
	dir=$(mktemp -d /tmp/portico-san.XXXXXX)
	t0=$SECONDS
	(pt_san_env "$dir" && exec timeout -k 30 "${TEST_TIMEOUT:-1200}" bash "$t")
	rc=$?
	# Where make check's time goes (CI allows 90 min; it should stay
	# well under 30).
	echo "   ($(basename "$t" .sh): $((SECONDS - t0)) s)"
	times+=("$((SECONDS - t0)) $(basename "$t" .sh)")
	[ "$rc" = 124 ] && echo "FAIL: $t did not end within ${TEST_TIMEOUT:-1200}s"
	if [ "$rc" = 0 ] && ! pt_san_scan "$dir"/report.*; then rc=1; fi
	rm -rf "$dir"
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1)) status=1
		names+=("$(basename "$t" .sh)")
	fi
done

# Every fuzz target for a few seconds on its seed corpus: a regression in a
# parser shows here (make fuzz-run SECONDS=N for longer runs).
for t in ${PT_FUZZ_TARGETS-tests/fuzz/fuzz_*.c}; do
	[ -e "$t" ] || continue
	t=$(basename "$t" .c)
	echo "== fuzz $t"
	if tests/fuzz/run.sh "${FUZZ_SECONDS:-3}" "$t"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1)) status=1
		names+=("$t")
	fi
done

# The slowest integration tests, for whoever watches the run's length.
if [ ${#times[@]} -gt 0 ]; then
	echo "slowest: $(printf '%s\n' "${times[@]}" | sort -rn | head -8 | awk '{ printf "%s%s %d s", s, $2, $1; s = ", " }')"
fi
if [ ${#names[@]} -gt 0 ]; then
	list=$(printf ', %s' "${names[@]}")
	echo "tests: $passed passed, $failed failed: ${list:2}"
else
	echo "tests: $passed passed, $failed failed"
fi
exit $status
