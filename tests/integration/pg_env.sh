# pg_env.sh - sourced by tests that need a PostgreSQL server (issue 14: the
# broker's PostgreSQL store): a private PostgreSQL 15 cluster of the test's
# own, reachable only through a unix socket in a directory of its own.
#
# The cluster lives in PG_DIR (mktemp -d /tmp/portico-pg.XXXXXX, owned by
# postgres, mode 0711: postgres cannot enter the test's $T, and other local
# users, such as the service user the broker drops to, must reach the socket;
# the role's password protects it).  The server and initdb refuse root, so
# they run as postgres (runuser); the tests run as root.
#
#   pg_setup             initdb, start, role "portico" with a random password,
#                        database "portico" owned by it, a passfile; exports
#                        PG_DIR, PG_PASSFILE (root's, 0600) and
#                        PG_URL=postgresql:///portico?host=$PG_DIR&user=portico&passfile=$PG_PASSFILE
#                        (no password in the URL); sets PG_PASSWORD (not
#                        exported); a second call does nothing
#   pg_passfile_for OWNER   a copy of the passfile owned by OWNER (a user name
#                        or a numeric uid, as chown takes it: the broker's
#                        nss_wrapper user "portico" is 64990), mode 0600, in
#                        PG_DIR; sets PG_PASSFILE_FOR (its path) and PG_URL_FOR
#                        (PG_URL with that passfile)
#   pg_stop              fast shutdown, waits (nothing if it is not running)
#   pg_start             the same data again, waits until it accepts
#                        connections (nothing if it is running)
#   pg_restart           pg_stop then pg_start
#   pg_kill9             SIGKILL to the postmaster, as a crash; waits until
#                        its children are gone too (they notice its death;
#                        after 10 s they are killed), so pg_start can follow
#   pg_psql [SQL...]     psql as postgres (superuser, peer) in database
#                        portico, -X -q -At -v ON_ERROR_STOP=1, one -c per
#                        argument (none: SQL from stdin); prints the rows.
#                        Its status is psql's and it does not end the test
#                        (meant for $(...) and for errors a test expects).
#                        What it creates belongs to postgres: SET ROLE
#                        portico first for what the broker must own
#   pg_cleanup           stop (immediate), remove PG_DIR, end the watcher;
#                        a second call does nothing
#
# A watcher (setsid, a program of its own: it holds none of the test's
# output and runs none of its traps) polls the test's shell ($$ at
# pg_setup) and, once that is gone or a zombie, even after a SIGKILL, stops
# the cluster (immediate) and removes PG_DIR.  Everything is quiet on
# success; a failure prints the tail of the server's log and of the
# commands' output, then ends the test through its `fail` (else exit 1).

[ -n "${PG_ENV_SH:-}" ] && return 0
PG_ENV_SH=1
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# Each shell that sources this file has a cluster of its own: a PG_DIR
# exported by a parent test is not ours to use or remove.
PG_DIR=

_pg_fail() {
	local f
	for f in "$PG_DIR/cmd.log" "$PG_DIR/server.log"; do
		[ -s "$f" ] && tail -n 15 "$f" | sed "s|^|  $(basename "$f" .log): |"
	done
	if declare -F fail >/dev/null; then
		fail "postgres: $*"
	fi
	echo "FAIL: postgres: $*"
	exit 1
}

# _pg_as CMD...: CMD as postgres, from / (it may not enter the test's cwd).
_pg_as() {
	(cd / && exec env -u LD_PRELOAD runuser -u postgres -- "$@")
}

# _pg_ctl ARGS...: pg_ctl on the cluster, its output to cmd.log.
_pg_ctl() {
	_pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" "$@" >>"$PG_DIR/cmd.log" 2>&1
}

# _pg_alive PID: it runs (a zombie, its parent init, does not).
_pg_alive() {
	local st
	read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	st=${st##*) }
	[ "${st%% *}" != Z ]
}

# _pg_gone PID...: waits (10 s at most) until no PID runs; 1 if one still
# does (a zombie counts as gone after 10 s: init may never reap it).
_pg_gone() {
	local p
	for _ in $(seq 1 100); do
		for p in "$@"; do
			[ -d "/proc/$p" ] && break
			p=
		done
		[ -z "$p" ] && return 0
		sleep 0.1
	done
	for p in "$@"; do
		_pg_alive "$p" && return 1
	done
	return 0
}

# _pg_pid: the postmaster's pid if it runs (status 1 if not).
_pg_pid() {
	local pid
	[ -n "$PG_DIR" ] && read -r pid 2>/dev/null <"$PG_DIR/data/postmaster.pid" &&
		_pg_alive "$pid" && echo "$pid"
}

# The watcher's program: dir, bin, the test's pid and its start time.
# shellcheck disable=SC2016
_PG_WATCHER='dir=$1 bin=$2 pid=$3 start=$4
echo $$ >"$dir/watcher.pid" || exit 0
while [ -d "$dir" ]; do
	read -r s <"/proc/$pid/stat" || break
	set -- ${s##*) }
	[ "$1" != Z ] && [ "${20}" = "$start" ] || break
	sleep 0.5
done
[ -d "$dir" ] || exit 0
cd / || exit 1
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop
read -r pm <"$dir/data/postmaster.pid" && kill -KILL "$pm"
rm -rf "$dir"'

_pg_watch() {
	local s
	read -r s <"/proc/$$/stat"
	s=${s##*) }
	# shellcheck disable=SC2086
	set -- $s
	setsid -f bash -c "$_PG_WATCHER" pg-watcher "$PG_DIR" "$PG_BIN" "$$" "${20}" \
		</dev/null >/dev/null 2>&1 || _pg_fail "no watcher"
	for _ in $(seq 1 50); do
		[ -s "$PG_DIR/watcher.pid" ] && return 0
		sleep 0.1
	done
	_pg_fail "the watcher did not start"
}

# _pg_initdb: the cluster's files, unix socket only, made for speed.
_pg_initdb() {
	_pg_as "$PG_BIN/initdb" --no-sync --no-instructions -U postgres -E UTF8 --locale=C \
		--auth-local=peer --auth-host=reject -D "$PG_DIR/data" >>"$PG_DIR/cmd.log" 2>&1 ||
		_pg_fail "initdb failed"
	# synchronous_commit stays on: with fsync off a commit costs a write(),
	# and a row committed before pg_kill9 must be there after it.
	cat >>"$PG_DIR/data/postgresql.conf" <<EOF || _pg_fail "cannot write postgresql.conf"
# pg_env.sh: a test's private cluster
listen_addresses = ''
unix_socket_directories = '$PG_DIR'
unix_socket_permissions = 0777
port = 5432
max_connections = 100
shared_buffers = 16MB
huge_pages = off
fsync = off
synchronous_commit = on
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
EOF
	printf 'local all postgres peer\nlocal all all scram-sha-256\n' \
		>"$PG_DIR/data/pg_hba.conf" || _pg_fail "cannot write pg_hba.conf"
}

pg_setup() {
	local pw
	[ -n "$PG_DIR" ] && [ -d "$PG_DIR" ] && return 0
	PG_DIR=$(mktemp -d /tmp/portico-pg.XXXXXX) || _pg_fail "mktemp"
	chown postgres:postgres "$PG_DIR" && chmod 0711 "$PG_DIR" || _pg_fail "chown $PG_DIR"
	export PG_DIR
	_pg_watch
	_pg_initdb
	pg_start
	pw=$(od -An -tx1 -N18 /dev/urandom | tr -d ' \n')
	[ ${#pw} = 36 ] || _pg_fail "no random password"
	printf "CREATE ROLE portico LOGIN PASSWORD '%s';\nCREATE DATABASE portico OWNER portico;\n" "$pw" |
		_pg_as "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p 5432 -U postgres -d postgres \
			>>"$PG_DIR/cmd.log" 2>&1 || _pg_fail "cannot create the role and the database"
	# shellcheck disable=SC2034 # for the tests
	PG_PASSWORD=$pw
	export PG_PASSFILE=$PG_DIR/passfile
	(umask 077 && echo "*:*:*:portico:$pw" >"$PG_PASSFILE") || _pg_fail "cannot write $PG_PASSFILE"
	export PG_URL="postgresql:///portico?host=$PG_DIR&user=portico&passfile=$PG_PASSFILE"
}

pg_passfile_for() {
	local owner=$1
	[ -n "$PG_DIR" ] && [ -f "${PG_PASSFILE:-}" ] || _pg_fail "pg_passfile_for before pg_setup"
	PG_PASSFILE_FOR=$PG_DIR/passfile.$(printf %s "$owner" | tr -c 'A-Za-z0-9_.-' _)
	rm -f "$PG_PASSFILE_FOR"
	(umask 077 && cp "$PG_PASSFILE" "$PG_PASSFILE_FOR") &&
		chown "$owner" "$PG_PASSFILE_FOR" || _pg_fail "cannot give a passfile to $owner"
	export PG_PASSFILE_FOR
	export PG_URL_FOR="postgresql:///portico?host=$PG_DIR&user=portico&passfile=$PG_PASSFILE_FOR"
}

pg_start() {
	local pid
	[ -n "$PG_DIR" ] && [ -d "$PG_DIR/data" ] || _pg_fail "pg_start before pg_setup"
	_pg_pid >/dev/null && return 0
	# A dead postmaster is a zombie until init reaps it (here about once a
	# second; some inits never do), and postgres takes its lock file for a
	# live server's.
	if read -r pid 2>/dev/null <"$PG_DIR/data/postmaster.pid"; then
		_pg_gone "$pid"
		[ -d "/proc/$pid" ] && rm -f "$PG_DIR/data/postmaster.pid"
	fi
	_pg_ctl start -w -t 60 -l "$PG_DIR/server.log" || _pg_fail "the server did not start"
	_pg_as "$PG_BIN/pg_isready" -q -h "$PG_DIR" -p 5432 -d postgres -t 30 ||
		_pg_fail "the server does not accept connections"
}

pg_stop() {
	_pg_pid >/dev/null || return 0
	_pg_ctl stop -m fast -w -t 60 || _pg_fail "the server did not stop"
}

pg_restart() {
	pg_stop
	pg_start
}

pg_kill9() {
	local pid kids
	pid=$(_pg_pid) || return 0
	kids=$(pgrep -P "$pid")
	kill -KILL "$pid"
	# shellcheck disable=SC2086
	_pg_gone $kids || kill -KILL $kids 2>/dev/null
	_pg_gone "$pid"
}

pg_psql() {
	local a args=()
	# Never the default socket: that would be some other server.
	[ -n "$PG_DIR" ] || { echo "pg_psql before pg_setup" >&2 && return 2; }
	for a in "$@"; do args+=(-c "$a"); done
	_pg_as "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$PG_DIR" -p 5432 -U postgres \
		-d portico "${args[@]}"
}

pg_cleanup() {
	local w
	[ -n "$PG_DIR" ] && [ -d "$PG_DIR" ] || return 0
	read -r w 2>/dev/null <"$PG_DIR/watcher.pid" && kill -KILL "$w" 2>/dev/null
	_pg_pid >/dev/null && _pg_ctl stop -m immediate -w -t 30
	w=$(_pg_pid) && kill -KILL "$w"
	rm -rf "$PG_DIR" || _pg_fail "cannot remove $PG_DIR"
	PG_DIR=
}
