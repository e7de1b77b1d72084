#!/bin/bash
# pg_env.sh, the PostgreSQL cluster the store tests start (issue 14): what
# the broker and the tests rely on, checked with real connections.  The
# cluster answers the portico role with its password on a unix socket only,
# to other local users too; keeps its data over a restart and a SIGKILL;
# and leaves nothing behind, whether the test cleans up or its shell dies.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/pg_env.sh
T=$(mktemp -d /tmp/portico-pg-test.XXXXXX)
trap 'kill -KILL ${holder:-} ${child:-} ${failer:-} 2>/dev/null; pg_cleanup; rm -rf "$T"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}
PSQL=$PG_BIN/psql
# sql URL SQL: psql as the broker connects, never prompting; output in $out
sql() {
	out=$("$PSQL" -X -w -q -At -v ON_ERROR_STOP=1 "$1" -c "$2" 2>&1 </dev/null)
}
# alive PID...: one of them runs (a zombie does not)
alive() {
	local p
	for p in "$@"; do _pg_alive "$p" && return 0; done
	return 1
}
# cluster_pids: the postmaster and its children
cluster_pids() {
	local pm
	read -r pm <"$PG_DIR/data/postmaster.pid" || fail "no postmaster.pid"
	echo "$pm" $(pgrep -P "$pm")
}

# --- setup -------------------------------------------------------------------------
pg_setup >"$T/setup.out" 2>&1
[ -s "$T/setup.out" ] && fail "pg_setup was not quiet: $(cat "$T/setup.out")"
[ "$PG_URL" = "postgresql:///portico?host=$PG_DIR&user=portico&passfile=$PG_PASSFILE" ] ||
	fail "PG_URL is $PG_URL"
case "$PG_URL" in *"$PG_PASSWORD"*) fail "the password is in PG_URL" ;; esac
[ "$(stat -c '%U %a' "$PG_DIR")" = "postgres 711" ] || fail "PG_DIR is $(stat -c '%U %a' "$PG_DIR")"
[ "$(stat -c '%U %a' "$PG_PASSFILE")" = "root 600" ] || fail "the passfile is $(stat -c '%U %a' "$PG_PASSFILE")"
pm=$(cluster_pids | cut -d' ' -f1)
dir=$PG_DIR
pg_setup
[ "$PG_DIR" = "$dir" ] && [ "$(cluster_pids | cut -d' ' -f1)" = "$pm" ] || fail "a second pg_setup made another cluster"
echo "ok: pg_setup, quiet; a second call changes nothing"

# --- who may connect -------------------------------------------------------------
sql "$PG_URL" 'select current_user, current_database()' || fail "psql \$PG_URL as root: $out"
[ "$out" = "portico|portico" ] || fail "select current_user: $out"
# psql from PATH too (Debian's wrapper), as an engineer would type it
out=$(psql -X -w "$PG_URL" -Atc 'select 1' 2>&1 </dev/null) && [ "$out" = 1 ] || fail "psql on PATH: $out"
echo "ok: root connects with PG_URL and the passfile"

echo "*:*:*:portico:not-the-password" >"$T/bad.pass" && chmod 600 "$T/bad.pass"
sql "postgresql:///portico?host=$PG_DIR&user=portico&passfile=$T/bad.pass" 'select 1' &&
	fail "a wrong password was let in: $out"
grep -q 'password authentication failed for user "portico"' <<<"$out" || fail "a wrong password: $out"
sql "postgresql:///portico?host=$PG_DIR&user=portico&passfile=/nonexistent" 'select 1' &&
	fail "no password was let in: $out"
grep -q 'no password supplied' <<<"$out" || fail "no password: $out"
# root is not the superuser: peer authentication for postgres only
sql "postgresql:///portico?host=$PG_DIR&user=postgres" 'select 1' && fail "root connected as postgres: $out"
grep -q 'Peer authentication failed for user "postgres"' <<<"$out" || fail "root as postgres: $out"
sql "postgresql:///postgres?host=$PG_DIR&user=nosuchrole&passfile=$PG_PASSFILE" 'select 1' &&
	fail "an unknown role connected: $out"
echo "ok: a wrong password, none, root as postgres and an unknown role are refused"

# Unix socket only: the postmaster listens on no TCP or UDP port, on the
# socket in PG_DIR, and port 5432 of 127.0.0.1 refuses unless someone
# else's server holds it.
[ "$(pg_psql 'show listen_addresses')" = "" ] || fail "listen_addresses: $(pg_psql 'show listen_addresses')"
inet=$(ss -H -lntup | grep "pid=$pm,")
[ -z "$inet" ] || fail "the postmaster listens on the network: $inet"
ss -H -xlp | grep -F "$PG_DIR/.s.PGSQL.5432 " | grep -q "pid=$pm," ||
	fail "no socket in PG_DIR: $(ss -H -xlp | grep -F "$PG_DIR")"
if [ -n "$(ss -H -ltn 'sport = :5432')" ]; then
	echo "  (something else listens on port 5432: its refusal not checked)"
else
	sql "host=127.0.0.1 port=5432 user=portico dbname=portico passfile=$PG_PASSFILE" 'select 1' &&
		fail "TCP 127.0.0.1:5432 let us in: $out"
	grep -q 'Connection refused' <<<"$out" || fail "TCP 127.0.0.1:5432: $out"
fi
echo "ok: a unix socket only, no TCP"

# Another local user: with a passfile of its own, not with root's; and it
# cannot list PG_DIR.  The broker's nss_wrapper user has no /etc/passwd
# entry: a numeric uid.
pg_passfile_for nobody
[ "$(stat -c '%U %a' "$PG_PASSFILE_FOR")" = "nobody 600" ] || fail "nobody's passfile: $(stat -c '%U %a' "$PG_PASSFILE_FOR")"
out=$(runuser -u nobody -- "$PSQL" -X -w "$PG_URL_FOR" -Atc 'select current_user' 2>&1 </dev/null) &&
	[ "$out" = portico ] || fail "nobody with its passfile: $out"
out=$(runuser -u nobody -- "$PSQL" -X -w "$PG_URL" -Atc 'select 1' 2>&1 </dev/null) &&
	fail "nobody connected with root's passfile: $out"
runuser -u nobody -- ls "$PG_DIR" >/dev/null 2>&1 && fail "nobody can list PG_DIR"
pg_passfile_for 64990
out=$(setpriv --reuid=64990 --regid=64990 --clear-groups "$PSQL" -X -w "$PG_URL_FOR" -Atc 'select current_user' 2>&1 </dev/null) &&
	[ "$out" = portico ] || fail "uid 64990 with its passfile: $out"
echo "ok: other local users connect with pg_passfile_for's copy only"

# --- stop, start, restart, crash --------------------------------------------------
sql "$PG_URL" "create table kept (v text); insert into kept values ('before restart')" || fail "create: $out"
pg_restart >"$T/restart.out" 2>&1
[ -s "$T/restart.out" ] && fail "pg_restart was not quiet: $(cat "$T/restart.out")"
alive "$pm" && fail "pg_restart left the old postmaster ($pm) running"
sql "$PG_URL" 'select v from kept' && [ "$out" = "before restart" ] || fail "after pg_restart: $out"
pm=$(cluster_pids | cut -d' ' -f1)
echo "ok: pg_restart keeps the data"

pg_stop
pg_stop || fail "a second pg_stop failed"
sql "$PG_URL" 'select 1' && fail "connected to a stopped server: $out"
pg_start
pg_start || fail "a second pg_start failed"
sql "$PG_URL" 'select count(*) from kept' && [ "$out" = 1 ] || fail "after pg_stop, pg_start: $out"
echo "ok: pg_stop and pg_start, each twice"

# A row committed just before the crash is there after it (a commit reaches
# the OS before it returns: synchronous_commit stays on).
sql "$PG_URL" "insert into kept values ('before kill')" || fail "insert: $out"
pids=$(cluster_pids)
pg_kill9
# shellcheck disable=SC2086
alive $pids && fail "pg_kill9 left processes of the cluster: $(ps -o pid,stat,args -p "${pids// /,}")"
sql "$PG_URL" 'select 1' && fail "connected after pg_kill9: $out"
pg_start
grep -q 'database system was interrupted\|not properly shut down' "$PG_DIR/server.log" ||
	fail "no crash recovery in the log: $(tail -5 "$PG_DIR/server.log")"
sql "$PG_URL" "select string_agg(v, ',' order by v) from kept" && [ "$out" = "before kill,before restart" ] ||
	fail "after pg_kill9, pg_start: $out"
echo "ok: pg_kill9 is a crash; pg_start recovers with the data"

# --- nothing outlives the test -------------------------------------------------------
# child.sh MODE: a test of its own that sets a cluster up, says where, then
# dies by SIGKILL (wait) or fails the way a broken test would (fail).  The
# two run side by side.
cat >"$T/child.sh" <<SH
. tests/integration/pg_env.sh
mode=\$1
trap 'echo "trap in \$BASHPID" >>"$T/traps.\$mode"' EXIT
pg_setup
read -r pm <"\$PG_DIR/data/postmaster.pid"
echo "\$\$ \$PG_DIR \$(cat "\$PG_DIR/watcher.pid") \$pm \$(pgrep -P "\$pm")" >"$T/child.\$mode.tmp"
mv "$T/child.\$mode.tmp" "$T/child.\$mode"
if [ "\$mode" = fail ]; then
	echo 'no_such_setting = 1' >>"\$PG_DIR/data/postgresql.conf"
	pg_restart
	echo "pg_restart returned"
fi
sleep 60
SH
# gone WHAT DIR PID...: within 15 s no PID runs and DIR is gone
gone() {
	local what=$1 d=$2
	shift 2
	for _ in $(seq 1 150); do
		! alive "$@" && [ ! -e "$d" ] && return 0
		sleep 0.1
	done
	fail "$what: left $(ls -d "$d" 2>/dev/null) $(ps -o pid=,stat=,args= -p "$(tr ' ' , <<<"$*")")"
}
# no_fd_of FILE PID...: none of PID... holds FILE open
no_fd_of() {
	local f=$1 p
	shift
	for p in "$@"; do
		find "/proc/$p/fd" -lname "$f" 2>/dev/null | grep -q . && fail "pid $p holds $f open"
	done
	return 0
}

bash "$T/child.sh" fail >"$T/failed.out" 2>&1 </dev/null &
failer=$!
# The child's parent never reaps it (sleep): killed, it stays a zombie, as
# a test's shell does until the runner waits for it.
bash -c 'bash "$1" wait >"$2.out" 2>"$2.err" & exec sleep 60' holder "$T/child.sh" "$T/killed" &
holder=$!
for _ in $(seq 1 300); do
	[ -s "$T/child.wait" ] && break
	alive "$holder" || fail "the child's parent ended"
	sleep 0.1
done
[ -s "$T/child.wait" ] || fail "the child did not set up its cluster in 30 s: $(cat "$T/killed.out" "$T/killed.err")"
read -r child cdir wpid cpids <"$T/child.wait"
# shellcheck disable=SC2086
no_fd_of "$T/killed.out" $wpid $cpids
# shellcheck disable=SC2086
no_fd_of "$T/killed.err" $wpid $cpids
alive "$wpid" || fail "the child's watcher does not run"
kill -KILL "$child"
# shellcheck disable=SC2086
gone "a test's shell killed by SIGKILL" "$cdir" $wpid $cpids
[ "$(cut -d' ' -f3 "/proc/$child/stat" 2>/dev/null)" = Z ] || fail "the killed child was no zombie: the case was not tried"
{
	kill -KILL "$holder"
	wait "$holder"
} 2>/dev/null
holder=
child=
[ -e "$T/traps.wait" ] && fail "the killed test's EXIT trap ran elsewhere: $(cat "$T/traps.wait")"
echo "ok: a test's shell killed by SIGKILL: its cluster and watcher are gone in 15 s; they held none of its output"

wait "$failer"
rc=$?
failer=
[ "$rc" = 1 ] || fail "a failed pg_restart: exit status $rc: $(cat "$T/failed.out")"
grep -q '^FAIL: postgres: the server did not start' "$T/failed.out" &&
	grep -q 'server: .*unrecognized configuration parameter "no_such_setting"' "$T/failed.out" ||
	fail "a failed pg_restart said: $(cat "$T/failed.out")"
grep -q 'pg_restart returned' "$T/failed.out" && fail "the test went on after a failed pg_restart"
read -r cpid cdir wpid cpids <"$T/child.fail"
[ "$(cat "$T/traps.fail")" = "trap in $cpid" ] || fail "the failed test's EXIT trap: $(cat "$T/traps.fail")"
# shellcheck disable=SC2086
gone "a test that failed" "$cdir" $wpid $cpids
echo "ok: a failure prints the server's log and ends the test; its cluster is gone after it"

# --- pg_cleanup ----------------------------------------------------------------------
pids=$(cluster_pids)
wpid=$(cat "$PG_DIR/watcher.pid")
dir=$PG_DIR
pg_cleanup >"$T/cleanup.out" 2>&1
[ -s "$T/cleanup.out" ] && fail "pg_cleanup was not quiet: $(cat "$T/cleanup.out")"
# shellcheck disable=SC2086
alive $pids $wpid && fail "pg_cleanup left $(ps -o pid=,stat=,args= -p "$(tr ' ' , <<<"$pids $wpid")")"
[ -e "$dir" ] && fail "pg_cleanup left $dir"
pg_cleanup || fail "a second pg_cleanup failed"
out=$(pg_psql 'select 1' 2>&1) && fail "pg_psql after pg_cleanup: $out"
[ "$out" = "pg_psql before pg_setup" ] || fail "pg_psql after pg_cleanup said: $out"
echo "ok: pg_cleanup leaves no process and no directory; twice is fine"
echo "ok: pg_env"
