#!/bin/bash
# Run every libFuzzer target for SECONDS seconds each, on its committed seed
# corpus (tests/fuzz/corpus/<target>/, read only) and a working corpus in
# the fuzz build directory (what the run learns, kept between runs).
#   tests/fuzz/run.sh SECONDS [target...]
# A crash leaves its input in $FUZZ_BUILD/crashes/<target>/ and fails.
set -u
cd "$(dirname "$0")/../.."
secs=${1:?usage: tests/fuzz/run.sh SECONDS [target...]}
shift
FUZZ_BUILD=${FUZZ_BUILD:-build-fuzz}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//'))
fail=0
for t in "${targets[@]}"; do
	bin=$FUZZ_BUILD/fuzz/$t
	[ -x "$bin" ] || { echo "fuzz: $bin not built (make fuzz)"; fail=1; continue; }
	work=$FUZZ_BUILD/corpus/$t crashes=$FUZZ_BUILD/crashes/$t
	mkdir -p "$work" "$crashes" "tests/fuzz/corpus/$t"
	log=$FUZZ_BUILD/$t.log
	# halt_on_error: the first report ends the run; detect_leaks stays on.
	if ASAN_OPTIONS=halt_on_error=1:allocator_may_return_null=1 \
	   UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	   "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$crashes/" -print_final_stats=1 \
		"$work" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		echo "fuzz: $t: ${runs:-?} inputs in ${secs}s, nothing found"
	else
		echo "fuzz: $t: FAILED (input in $crashes/; log $log):"
		grep -E "ERROR|runtime error|SUMMARY|Test unit written" "$log" | head -5 | sed 's/^/  /'
		fail=1
	fi
done
exit $fail
