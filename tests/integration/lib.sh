# lib.sh - sourced by every integration test that starts Portico's programs
# (broker_env.sh sources it; a test that starts daemons without the env
# scripts sources it itself).  Two promises of issue 13:
#
#  - Any sanitizer report in any daemon's output fails the test that started
#    it.  AddressSanitizer and LeakSanitizer write their reports to files of
#    their own in $PT_SAN_DIR (log_path), whatever the process did with its
#    stderr and whoever it runs as; UndefinedBehaviorSanitizer (GCC's runtime
#    ignores log_path) and ThreadSanitizer write to stderr, so the daemons'
#    logs are read too.  At the test's exit, whatever its EXIT trap, a report
#    prints its first lines and the test fails.
#  - No stop hangs forever: pt_stop sends SIGTERM, waits a grace period,
#    then SIGKILLs and fails the test with a line that says so (a process
#    that deadlocks at exit, as LeakSanitizer's check once did, is one).
#
#   pt_san_scan FILE...      print the first lines of every report in FILE...
#                            (missing files are skipped); 1 if there was one
#   pt_stop PID NAME [SECS]  SIGTERM, wait SECS (PT_STOP_GRACE, 30), SIGKILL;
#                            sets PT_RC to the exit status, 1 if it was killed
#   pt_fail_later MESSAGE    the test fails at exit (cleanups still run)
#   pt_running PID           alive and not a zombie
#
# Each test's EXIT trap, however the test sets it, runs pt_exit after its own
# commands: `trap` is wrapped below for that (the tests set their traps
# themselves and some run more cleanup after the env scripts'), so the exit
# status reflects the reports and failed stops found by then.  Only in the
# shell that set it: bash runs an inherited EXIT trap in a forked subshell
# that a signal ends before it execs (`cmd &` killed early, pt_stop's own
# watchdog once), and there it would stop the test's daemons and remove its
# directory while the test went on (CI, test_sessiond_busy).

[ -n "${PT_LIB_SH:-}" ] && return 0
PT_LIB_SH=1
PT_FAILED_LATER=0

# A report's first line, as each sanitizer prints it.  A UBSan report is
# "file:line:col: runtime error: ..."; SUMMARY lines end every report.
PT_SAN_RE='(ERROR|WARNING): [A-Za-z]*Sanitizer|SUMMARY: [A-Za-z]*Sanitizer|[^ ]+:[0-9]+:[0-9]+: runtime error: |AddressSanitizer:DEADLYSIGNAL'

PT_SAN_SEEN=
pt_san_scan() {
	local f line found=0
	for f in "$@"; do
		[ -f "$f" ] || continue
		line=$(grep -a -n -m 1 -E "$PT_SAN_RE" "$f" | cut -d: -f1) || continue
		[ -n "$line" ] || continue
		found=1
		# A log read at each stop and again at the end: one print is enough.
		case "$PT_SAN_SEEN" in *"|$f|"*) continue ;; esac
		PT_SAN_SEEN="$PT_SAN_SEEN|$f|"
		echo "FAIL: a sanitizer report in $f:"
		tail -n +"$line" "$f" | head -n "${PT_SAN_LINES:-20}" | sed 's/^/  | /'
	done
	return $found
}

# pt_running PID: alive and not yet a zombie (kill -0 succeeds on a zombie
# until its parent waits for it).
pt_running() {
	[ -d "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

pt_fail_later() {
	echo "FAIL: $*"
	PT_FAILED_LATER=1
}

pt_stop() {
	local pid=$1 name=$2 grace=${3:-${PT_STOP_GRACE:-30}} flag wd
	PT_RC=0
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	# A watchdog, a process of its own (a subshell would inherit the test's
	# EXIT trap): `wait` cannot time out.  A zombie counts as stopped.
	flag=$(mktemp "$PT_SAN_DIR/.stop.XXXXXX")
	bash -c 'for _ in $(seq 1 $(($3 * 10))); do
			[ -d "/proc/$1" ] && [ "$(cut -d" " -f3 "/proc/$1/stat" 2>/dev/null)" != Z ] || exit 0
			sleep 0.1
		done
		echo killed >"$2"
		pkill -KILL -P "$1"
		kill -KILL "$1"' watchdog "$pid" "$flag" "$grace" 2>/dev/null &
	wd=$!
	wait "$pid" 2>/dev/null
	PT_RC=$?
	# SIGKILL: a watchdog killed before it has exec'd is still a copy of
	# this shell, and SIGTERM would run the test's EXIT trap in it.
	kill -KILL "$wd" 2>/dev/null
	wait "$wd" 2>/dev/null
	if [ -s "$flag" ]; then
		pt_fail_later "$name (pid $pid) did not stop within ${grace}s of SIGTERM: killed with SIGKILL"
		PT_RC=1
	fi
	rm -f "$flag"
}

# The end of every test: reports in the report files and in the logs
# pt_san_scan was not given yet (PT_LOGS: more files to read at exit).
pt_exit() {
	local rc=$1
	pt_san_scan "$PT_SAN_DIR"/report.* ${PT_LOGS:-} || rc=1
	[ "$PT_FAILED_LATER" = 0 ] || rc=1
	if [ "${PT_SAN_OWN:-0}" = 1 ]; then
		if compgen -G "$PT_SAN_DIR/report.*" >/dev/null; then
			echo "  (reports kept in $PT_SAN_DIR)"
		else
			rm -rf "$PT_SAN_DIR"
		fi
	fi
	exit "$rc"
}

# pt_san_env DIR: the sanitizers' options for a process whose reports go
# to DIR (DIR/report.<program>.<pid>).  Later options win, so these
# override a log_path set before; LSAN_OPTIONS too, as ASan's leak check
# reads its common flags there too.
pt_san_env() {
	chmod 1777 "$1"
	export PT_SAN_DIR=$1
	export ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$1/report:log_exe_name=1"
	export LSAN_OPTIONS="${LSAN_OPTIONS:-}:log_path=$1/report:log_exe_name=1"
}

# tests/run-tests.sh reads the functions alone (PT_LIB_NO_SETUP=1) and
# gives each test a directory of its own (PT_SAN_DIR).
if [ -z "${PT_LIB_NO_SETUP:-}" ]; then
	if [ -z "${PT_SAN_DIR:-}" ]; then
		PT_SAN_OWN=1
		pt_san_env "$(mktemp -d /tmp/portico-san.XXXXXX)"
	else
		pt_san_env "$PT_SAN_DIR"
	fi
	# See the top: an EXIT trap set by the test runs its commands, then
	# pt_exit with the status the test was leaving with.
	trap() {
		[ "${1:-}" = -- ] && shift
		# (`trap -p EXIT`, `trap - EXIT`: options, not a command)
		if [ $# = 2 ] && { [ "$2" = EXIT ] || [ "$2" = 0 ]; } && [ "${1#-}" = "$1" ]; then
			builtin trap "pt_rc=\$?; [ \"\$BASHPID\" = $BASHPID ] || exit \$pt_rc"$'\n'"$1"$'\n''pt_exit "$pt_rc"' EXIT
		else
			builtin trap "$@"
		fi
	}
	trap : EXIT
fi

# wait_for SECONDS CMD...: poll CMD every 0.1 s
wait_for() {
	local n=$(($1 * 10))
	shift
	for _ in $(seq 1 "$n"); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
