#!/bin/bash
# broker.sh - the broker's benchmark (run by make bench after relay.sh).
#
#  1. bench-broker: store-level launch latency with 10,000 sessions and
#     1,000 hosts on SQLite and, beside it in the same run, on PostgreSQL
#     (a private cluster, pg_env.sh), and the assignment decision alone.
#  2. Logins and launches per second through real brokers over HTTPS, PAM
#     through pam_wrapper + pam_matrix: one broker on SQLite, one broker on
#     PostgreSQL, and two brokers on that same database with the load split
#     across both (every other request to each).  The client is one curl
#     (--parallel, CONC kept-alive connections in all, so TLS handshakes
#     hardly count), the same load in each case.  Logins: NU users, each
#     once per round.  Launches: each of the NU users (logged in) launches a
#     new session (not a reconnect) into one static pool with a seat for
#     every one; the sessions are deleted (SQL) between rounds.  The cases
#     take turns in rounds (A B C, then C B A, ROUNDS times), and a rate is
#     all of a case's requests over all of its time, so that a change in
#     the machine's load moves every case.  CPU per request of the brokers,
#     PostgreSQL and the client, and how busy the machine was, say where
#     the time went.
#
# Figures, not verdicts.  The PostgreSQL parts need root (pg_env.sh runs
# the server as postgres); without it only the SQLite figures are printed.
# Knobs: NU (users, 1000), CONC (connections, 16), NSRC (the clients'
# source addresses, CONC), POOLS (the users spread over that many pools,
# 1), ROUNDS (2), KEEP_TMP=1 (keep $T, print the rounds).
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
NU=${NU:-1000}
CONC=${CONC:-16}
ROUNDS=${ROUNDS:-2}
NSRC=${NSRC:-$CONC}
POOLS=${POOLS:-1}
. tests/integration/broker_env.sh
. tests/integration/pg_env.sh

echo
echo "broker benchmark"
PG=0
[ "$(id -u)" = 0 ] && PG=1

be_setup
cleanup() {
	[ -n "${PGB1_PID:-}" ] && pt_stop "$PGB1_PID" "PostgreSQL broker 1"
	[ -n "${PGB2_PID:-}" ] && pt_stop "$PGB2_PID" "PostgreSQL broker 2"
	PGB1_PID=''
	PGB2_PID=''
	be_cleanup
	pg_cleanup
}
trap cleanup EXIT

# --- 1. the store alone -----------------------------------------------------------
if [ $PG = 1 ]; then
	pg_setup
	pg_psql "CREATE DATABASE bench_store OWNER portico" || fail "cannot create bench_store"
	"$BUILD/bench/bench-broker" "${PG_URL/\/portico\?//bench_store?}" || fail "bench-broker"
	pg_psql "DROP DATABASE bench_store" || fail "cannot drop bench_store"
else
	"$BUILD/bench/bench-broker" || fail "bench-broker"
	echo "(not root: no PostgreSQL figures)"
fi

# --- 2. real brokers --------------------------------------------------------------
# Groups of 100 users (group g: users 100g+1 to 100g+100): the broker
# reads a group's entry into 8 KiB (roles.c), which a group of about 600
# members overflows.  Pool p (POOLS of them, static, on two backends with
# room for everyone) is for the groups g with g % POOLS = p.
NG=$(((NU + 99) / 100))
[ "$POOLS" -ge 1 ] && [ "$POOLS" -le "$NG" ] || fail "POOLS must be 1 to $NG"
for i in $(seq -f %04g 1 "$NU"); do be_user "u$i" "pw$i" $((10000 + 10#$i)) "g$(((10#$i - 1) / 100))"; done
for p in $(seq 0 $((POOLS - 1))); do
	be_conf_append "
[pool crowd$p]
driver = static
hosts = $BACKEND_A, $BACKEND_B
groups = $(seq -s ', ' -f 'g%g' "$p" "$POOLS" $((NG - 1)))
max_sessions_per_host = 100000"
done
# Three brokers: be_start's on SQLite, and two on PostgreSQL (the same
# configuration but for their port and store).
be_start
URL1=$B
if [ $PG = 1 ]; then
	pg_passfile_for 64990 # the broker's network side runs as "portico"
	for n in 1 2; do
		port=$(free_port)
		sed "s|^listen = 127.0.0.1:$PORT\$|listen = 127.0.0.1:$port|; s|^store = .*|store = ${PG_URL_FOR//&/\\&}|" \
			"$T/portico.conf" >"$T/pg$n.conf"
		be_exec "$T/pg$n.conf" "$T/pg$n.log"
		eval "PGB${n}_PID=$!"
		eval "PGURL$n=https://127.0.0.1:$port/api/v1"
		be_listening "https://127.0.0.1:$port/api/v1" "$!" "PostgreSQL broker $n"
	done
fi
# Untimed: each broker's connections to its store made, its code paged in.
for u in $URL1 ${PGURL1:-} ${PGURL2:-}; do
	for _ in $(seq 1 32); do echo "url = \"$u/login\""; done >"$T/warm.cfg"
	curl -s --parallel --parallel-max 16 -o /dev/null --cacert "$T/tls/server.pem" \
		-H 'Content-Type: application/json' -d '{"username":"u0001","password":"pw0001"}' \
		-K "$T/warm.cfg" >/dev/null 2>&1
done

# tree_pids PID...: PID and its descendants.
tree_pids() {
	local p
	for p in "$@"; do
		echo "$p"
		# shellcheck disable=SC2046
		tree_pids $(pgrep -P "$p")
	done
}
# cpu_ticks PID...: utime + stime of those that run, in clock ticks.
cpu_ticks() {
	local p s t=0
	for p in "$@"; do
		read -r s 2>/dev/null <"/proc/$p/stat" || continue
		s=${s##*) }
		# shellcheck disable=SC2086
		set -- $s
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}
# machine: busy and all jiffies of the whole machine (every core).
machine() {
	local u n s i w q sq st
	read -r _ u n s i w q sq st _ </proc/stat
	echo "$((u + n + s + q + sq + st)) $((u + n + s + i + w + q + sq + st))"
}
HZ=$(getconf CLK_TCK)

# curl_cfg KIND TOKDIR URL...: one transfer per user, KIND login or launch,
# to the URLs in turn, user i from source address 127.0.0.(2 + i % NSRC):
# users come from several machines, not all through one throttle row of
# the store, but no more than there are connections (curl reuses a
# connection only for a transfer from its address: one address per user
# would make nearly every request a TLS handshake).  A login's answer goes
# to TOKDIR/u<i>, where a launch takes its token from.
curl_cfg() {
	local kind=$1 tok=$2
	shift 2
	awk -v kind="$kind" -v nu="$NU" -v nsrc="$NSRC" -v pools="$POOLS" -v t="$T" -v tokdir="$tok" -v urls="$*" 'BEGIN {
		n = split(urls, u, " ")
		for (i = 1; i <= nu; i++) {
			id = sprintf("%04d", i)
			if (i > 1)
				print "next"
			printf "interface = 127.0.0.%d\n", 2 + i % nsrc
			if (kind == "login") {
				printf "url = \"%s/login\"\n", u[1 + i % n]
				print "header = \"Content-Type: application/json\""
				printf "data = \"{\\\"username\\\":\\\"u%s\\\",\\\"password\\\":\\\"pw%s\\\"}\"\n", id, id
				printf "output = \"%s/u%s\"\n", tokdir, id
			} else {
				f = tokdir "/u" id
				tok = ""
				if ((getline line <f) > 0 && match(line, /"token": *"[^"]*"/)) {
					tok = substr(line, RSTART, RLENGTH)
					sub(/^"token": *"/, "", tok)
					sub(/"$/, "", tok)
				}
				close(f)
				printf "url = \"%s/resources/crowd%d/launch\"\n", u[1 + i % n],
				       int((i - 1) / 100) % pools
				print "request = POST"
				printf "header = \"Authorization: Bearer %s\"\n", tok
				print "output = /dev/null"
			}
			printf "cacert = \"%s/tls/server.pem\"\n", t
			print "silent"
			print "write-out = \"%{http_code} %{num_connects}\\n\""
		}
	}'
}

# live_sessions CASE: the live sessions in that case's store.
live_sessions() {
	if [ "$1" = sqlite ]; then
		sqlite3 "$T/db/portico.db" "SELECT COUNT(*) FROM sessions WHERE state < 4"
	else
		pg_psql "SELECT COUNT(*) FROM sessions WHERE state < 4"
	fi
}

# run CASE KIND BROKER_PIDS -- URL...: one round of one case; appends
# "case kind n ok connections microseconds broker_ticks pg_ticks client_ms
# busy_ticks all_ticks pam_ticks" to $T/results.  A broker's first process
# is its PAM process (root), its child the network side.
run() {
	local case=$1 kind=$2 top=() pids=() urls=() tok pg=() t0 t1 m0 m1 b0 b1 a0 a1 g0 g1 c
	local ok conns live mb0 mt0 mb1 mt1
	shift 2
	while [ "$1" != -- ]; do top+=("$1") && shift; done
	shift
	urls=("$@")
	tok=$T/tok-sqlite
	[ "$case" = sqlite ] || tok=$T/tok-pg
	mkdir -p "$tok"
	curl_cfg "$kind" "$tok" "${urls[@]}" >"$T/curl.cfg"
	mapfile -t pids < <(tree_pids "${top[@]}")
	[ $PG = 1 ] && mapfile -t pg < <(tree_pids "$(head -1 "$PG_DIR/data/postmaster.pid")")
	b0=$(cpu_ticks "${pids[@]}")
	a0=$(cpu_ticks "${top[@]}")
	g0=$(cpu_ticks "${pg[@]}")
	m0=$(machine)
	t0=$(date +%s%N)
	c=$( (curl -s --parallel --parallel-immediate --parallel-max "$CONC" -K "$T/curl.cfg" >"$T/codes" 2>"$T/curl.err"
		times) | tail -1)
	t1=$(date +%s%N)
	m1=$(machine)
	b1=$(cpu_ticks "${pids[@]}")
	a1=$(cpu_ticks "${top[@]}")
	g1=$(cpu_ticks "${pg[@]}")
	ok=$(grep -c '^200 ' "$T/codes")
	conns=$(awk '{ s += $2 } END { print s + 0 }' "$T/codes")
	[ "$ok" = "$NU" ] || fail "$case $kind: $ok of $NU answered 200: $(sort "$T/codes" | uniq -c | sort -rn | head -3 | tr '\n' ' ') $(head -c 300 "$T/curl.err")"
	if [ "$kind" = launch ]; then
		live=$(live_sessions "$case")
		[ "$live" = "$NU" ] || fail "$case: $NU launches left $live live sessions, not $NU new ones"
	fi
	# bash's times: children's "XmY.YYYs XmY.YYYs"
	c=$(echo "$c" | awk '{ split($1, a, /[ms]/); split($2, b, /[ms]/); printf "%d", (a[1] * 60 + a[2] + b[1] * 60 + b[2]) * 1000 }')
	read -r mb0 mt0 <<<"$m0"
	read -r mb1 mt1 <<<"$m1"
	echo "$case $kind $NU $ok $conns $(((t1 - t0) / 1000)) $((b1 - b0)) $((g1 - g0)) $c $((mb1 - mb0)) $((mt1 - mt0)) $((a1 - a0))" >>"$T/results"
}

# empty_pool: the launches' sessions gone, for the next round's launches
# (no broker keeps sessions in memory).
empty_pool() {
	if [ $PG = 1 ]; then
		pg_psql "DELETE FROM tickets" "DELETE FROM sessions" || fail "cannot empty the PostgreSQL pool"
	fi
	sqlite3 "$T/db/portico.db" "DELETE FROM tickets; DELETE FROM sessions;" || fail "cannot empty the SQLite pool"
}

# case_args CASE: its brokers' pids, "--", their URLs.
case_args() {
	case $1 in
	sqlite) echo "$BE_PID -- $URL1" ;;
	pg1) echo "$PGB1_PID -- $PGURL1" ;;
	pg2) echo "$PGB1_PID $PGB2_PID -- $PGURL1 $PGURL2" ;;
	esac
}
CASES="sqlite"
[ $PG = 1 ] && CASES="sqlite pg1 pg2"
order=""
for _ in $(seq 1 "$ROUNDS"); do
	order+=" $CASES $(echo "$CASES" | tr ' ' '\n' | tac | tr '\n' ' ')"
done
: >"$T/results"
for kind in login launch; do
	for c in $order; do
		[ "$kind" = launch ] && empty_pool
		# shellcheck disable=SC2046
		run "$c" "$kind" $(case_args "$c")
	done
done
[ "${KEEP_TMP:-0}" = 1 ] && cat "$T/results"

# The figures: per case, all its rounds together.  CPU per request: the
# brokers' processes (network side and PAM; the PAM process also alone),
# PostgreSQL's (every backend) and the client's (curl); their sum bounds
# what the machine's cores can serve ("ceiling": cores over it).  "other"
# is the rest of the machine's busy time per request: kernel work charged
# to no process, and whatever else ran on the machine meanwhile.
echo "real brokers over HTTPS: $NU users from $NSRC addresses, $CONC kept-alive connections" \
	"(curl --parallel), $POOLS pool(s), rounds:$order"
awk -v hz="$HZ" -v pg="$PG" -v cores="$(nproc)" '
{
	k = $1 " " $2
	n[k] += $3; conns[k] += $5; us[k] += $6; br[k] += $7; db[k] += $8; cl[k] += $9
	busy[k] += $10; tot[k] += $11; pam[k] += $12
}
function ms(ticks, k) { return ticks * 1000 / hz / n[k] }
function rate(k) { return n[k] / (us[k] / 1e6) }
END {
	split("sqlite pg1 pg2", cs, " ")
	name["sqlite"] = "sqlite_1_broker"; name["pg1"] = "pg_1_broker"; name["pg2"] = "pg_2_brokers"
	split("login launch", ks, " ")
	plural["login"] = "logins"; plural["launch"] = "launches"
	for (j = 1; j <= 2; j++) {
		for (i = 1; i <= 3; i++) {
			k = cs[i] " " ks[j]
			if (!(k in n))
				continue
			own = ms(br[k], k) + ms(db[k], k) + cl[k] / n[k]
			printf "%s_per_s %s: %.0f   (CPU ms per %s: brokers %.2f (PAM %.2f)" \
			       " + postgres %.2f + client %.2f = %.2f, ceiling %.0f/s on %d cores;" \
			       " other %.2f; machine busy %.0f%%; %d connections)\n",
			       plural[ks[j]], name[cs[i]], rate(k), ks[j], ms(br[k], k), ms(pam[k], k),
			       ms(db[k], k), cl[k] / n[k], own, cores * 1000 / own, cores,
			       busy[k] * 1000 / hz / n[k] - own, 100 * busy[k] / tot[k], conns[k]
		}
		if (pg) {
			printf "%s_pg_2_over_1: %.2f\n", plural[ks[j]],
			       rate(cs[3] " " ks[j]) / rate(cs[2] " " ks[j])
			printf "%s_pg_1_over_sqlite: %.2f\n", plural[ks[j]],
			       rate(cs[2] " " ks[j]) / rate(cs[1] " " ks[j])
		}
	}
}' "$T/results"
