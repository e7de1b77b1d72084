#!/usr/bin/env bash
# relay.sh - the relay benchmark: Portico's relay (build/bench/relay-bench)
# against haproxy (mode tcp) and nginx (stream), measured in one run with one
# load generator on the same backend and the same certificate.
#
#   BUILD=build tests/bench/relay.sh        (what `make bench` runs)
#
# Builds nothing: `make all` has put bench-backend, bench-loadgen and
# relay-bench in $BUILD/bench/.  Figures: bulk MB/s (2 GiB backend->client on
# one TLS connection), relay CPU seconds per GB, full TLS handshakes per
# second, added round-trip latency of 64-byte messages (through the relay
# minus direct to the backend), KiB of relay memory per idle TLS connection,
# and bulk MB/s on plain TCP (Portico's splice path).  Prints one table with
# the ratio of Portico to the best peer, then one `key: value` line per
# figure.  Not a timed test: the exit status says whether the run worked,
# never whether a target was met.
#
# Environment (defaults in brackets):
#   BUILD        build directory [build]
#   RELAYS       relays to measure, in order [portico counted haproxy nginx];
#                counted is Portico's relay counting every byte into its
#                metrics as the gateway does (relay-bench --metrics), its
#                /metrics scraped every second: what counting costs
#   CPU_RELAY    core for the relays [0]
#   CPU_LOAD     core for the load generator and the backend [1]
#   BULK_BYTES   bytes per bulk transfer [2147483648]
#   HS_SECONDS   seconds of handshakes [5]
#   LAT_COUNT    latency round trips per round [20000]
#   LAT_ROUNDS   latency rounds, relays taking turns; medians count [3]
#   IDLE_CONNS   idle TLS connections [2000]
#   REPEAT       runs of bulk, handshake and latency; the best counts [2]
#   KEEP_TMP     1 keeps the temporary directory (configs, logs)
set -euo pipefail

BUILD=${BUILD:-build}
RELAYS=${RELAYS:-"portico counted haproxy nginx"}
CPU_RELAY=${CPU_RELAY:-0}
CPU_LOAD=${CPU_LOAD:-1}
BULK_BYTES=${BULK_BYTES:-2147483648}
HS_SECONDS=${HS_SECONDS:-5}
LAT_COUNT=${LAT_COUNT:-20000}
LAT_ROUNDS=${LAT_ROUNDS:-3}
LAT_ROUNDS_TEXT=
IDLE_CONNS=${IDLE_CONNS:-2000}
REPEAT=${REPEAT:-2}
KEEP_TMP=${KEEP_TMP:-0}

. "$(dirname "$0")/haproxy.sh"
# The TLS 1.3 suites every relay is told to use, in server-preference order.
SUITES=$HAPROXY_SUITES
NGINX_STREAM_MODULE=/usr/lib/nginx/modules/ngx_stream_module.so

BACKEND=$BUILD/bench/bench-backend
LOADGEN=$BUILD/bench/bench-loadgen
RELAYBENCH=$BUILD/bench/relay-bench

TMP=
PIDS=()
declare -A R=()        # results: R[figure.relay]
declare -A INFO=()     # per-relay notes (negotiated suite, tickets)
USED_PORTS=" "

log() { printf 'relay.sh: %s\n' "$*" >&2; }
die() {
	printf 'relay.sh: error: %s\n' "$*" >&2
	exit 1
}

# ---------------------------------------------------------------- cleanup
cleanup() {
	local rc=$? pid i
	trap - EXIT INT TERM
	exec 7>&- 2>/dev/null || true # the idle load generator's stdin
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for ((i = 0; i < 40; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	if [[ -n $TMP ]]; then
		if [[ $KEEP_TMP == 1 ]]; then
			log "kept $TMP"
		else
			rm -rf "$TMP"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

forget_pid() {
	local keep=() p
	for p in "${PIDS[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	PIDS=("${keep[@]}")
}

# ---------------------------------------------------------------- helpers
# Any socket, in any state, whose local port is $1.
port_in_use() {
	local hex
	hex=$(printf ':%04X' "$1")
	awk -v h="$hex" 'FNR > 1 && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

listening() {
	local hex
	hex=$(printf ':%04X' "$1")
	awk -v h="$hex" 'FNR > 1 && $4 == "0A" && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# A free port below the ephemeral range (32768), so that no outgoing
# connection of this benchmark can take it.
pick_port() {
	local p i
	for ((i = 0; i < 500; i++)); do
		p=$((20000 + RANDOM % 12768))
		[[ $USED_PORTS == *" $p "* ]] && continue
		port_in_use "$p" && continue
		USED_PORTS+="$p "
		echo "$p"
		return 0
	done
	die "no free TCP port found in 20000-32767"
}

# wait_listen PORT PID NAME LOGFILE: the process must be listening within
# 10 s and stay alive, else its log is shown.
wait_listen() {
	local port=$1 pid=$2 name=$3 logf=$4 end=$((SECONDS + 10))
	while ((SECONDS <= end)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			[[ -s $logf ]] && tail -n 20 "$logf" >&2
			die "$name exited during start-up (its log, if any, is above)"
		fi
		listening "$port" && return 0
		sleep 0.05
	done
	[[ -s $logf ]] && tail -n 20 "$logf" >&2
	die "$name is not listening on 127.0.0.1:$port after 10 s"
}

# utime + stime of a process, in clock ticks (all its threads).
cpu_ticks() {
	local stat rest f
	stat=$(<"/proc/$1/stat") || die "process $1 is gone"
	rest=${stat##*) }
	read -ra f <<<"$rest"
	echo $((f[11] + f[12]))
}

rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" || die "process $1 is gone"
}

# "busy total" jiffies of one core; steal counts as neither.
core_jiffies() {
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}

# "steal total" jiffies of one core: time the hypervisor gave to others.
steal_jiffies() {
	awk -v c="cpu$1" '$1 == c { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat
}

# busy_pct "BEFORE" "AFTER" (two core_jiffies or steal_jiffies outputs)
busy_pct() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		split(a, x, " "); split(b, y, " ")
		t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# kv FILE KEY: the value of KEY=... in a load generator's output.
kv() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# loadgen OUT TIMEOUT ARGS...: one pinned run of the load generator.
loadgen() {
	local out=$1 limit=$2 rc=0
	shift 2
	timeout --foreground "$limit" taskset -c "$CPU_LOAD" "$LOADGEN" "$@" >"$out" 2>"$out.err" || rc=$?
	if ((rc != 0)); then
		((rc == 130 || rc == 143)) && exit "$rc" # interrupted: the trap cleans up
		[[ -s $out.err ]] && cat "$out.err" >&2
		((rc == 124)) && die "load generator timed out after ${limit}s: $*"
		die "load generator failed (status $rc): $*"
	fi
}

# better HIGHER|LOWER OLD NEW: succeeds when NEW beats OLD (or OLD is unset).
better() {
	[[ -z $2 ]] && return 0
	if [[ $1 == HIGHER ]]; then
		awk -v a="$2" -v b="$3" 'BEGIN { exit !(b > a) }'
	else
		awk -v a="$2" -v b="$3" 'BEGIN { exit !(b < a) }'
	fi
}

# ---------------------------------------------------------------- relays
# start_relay NAME tls|plain PORT: starts the relay pinned to CPU_RELAY and
# sets RELAY_PID (the process to signal) and RELAY_WORKER (the one that
# carries the connections: nginx's worker, else the same process).
start_relay() {
	local name=$1 mode=$2 port=$3 dir=$TMP/$1-$2 i
	mkdir -p "$dir"
	RELAY_LOG=$dir/log
	case $name in
	portico)
		if [[ $mode == tls ]]; then
			taskset -c "$CPU_RELAY" "$RELAYBENCH" -l "$port" -b "$BACKEND_PORT" \
				--cert "$TMP/cert.pem" --key "$TMP/key.pem" >"$RELAY_LOG" 2>&1 &
		else
			taskset -c "$CPU_RELAY" "$RELAYBENCH" -l "$port" -b "$BACKEND_PORT" \
				--plain >"$RELAY_LOG" 2>&1 &
		fi
		RELAY_PID=$!
		;;
	counted)
		local mport
		mport=$(pick_port)
		if [[ $mode == tls ]]; then
			taskset -c "$CPU_RELAY" "$RELAYBENCH" -l "$port" -b "$BACKEND_PORT" \
				--cert "$TMP/cert.pem" --key "$TMP/key.pem" --metrics "127.0.0.1:$mport" \
				>"$RELAY_LOG" 2>&1 &
		else
			taskset -c "$CPU_RELAY" "$RELAYBENCH" -l "$port" -b "$BACKEND_PORT" \
				--plain --metrics "127.0.0.1:$mport" >"$RELAY_LOG" 2>&1 &
		fi
		RELAY_PID=$!
		# Scraped as Prometheus would, once a second (on the load core).
		(while sleep 1; do
			taskset -c "$CPU_LOAD" curl -s -o /dev/null "http://127.0.0.1:$mport/metrics" || true
		done) >/dev/null 2>&1 &
		SCRAPER_PID=$!
		;;
	haproxy)
		write_haproxy_conf "$mode" "$port" >"$dir/haproxy.cfg"
		taskset -c "$CPU_RELAY" "$HAPROXY" -f "$dir/haproxy.cfg" -db >"$RELAY_LOG" 2>&1 &
		RELAY_PID=$!
		;;
	nginx)
		write_nginx_conf "$mode" "$port" "$dir" >"$dir/nginx.conf"
		taskset -c "$CPU_RELAY" "$NGINX" -p "$dir/" -c "$dir/nginx.conf" \
			-e "$dir/error.log" >"$RELAY_LOG" 2>&1 &
		RELAY_PID=$!
		RELAY_LOG=$dir/error.log
		;;
	esac
	PIDS+=("$RELAY_PID")
	wait_listen "$port" "$RELAY_PID" "$name ($mode)" "$RELAY_LOG"
	RELAY_WORKER=$RELAY_PID
	if [[ $name == nginx ]]; then
		RELAY_WORKER=
		for ((i = 0; i < 100; i++)); do
			RELAY_WORKER=$(pgrep -P "$RELAY_PID" | head -n 1) || true
			[[ -n $RELAY_WORKER ]] && break
			sleep 0.05
		done
		[[ -n $RELAY_WORKER ]] || die "nginx started no worker process"
		PIDS+=("$RELAY_WORKER")
	fi
}

stop_relay() {
	local pid i
	if [[ -n ${SCRAPER_PID:-} ]]; then
		kill "$SCRAPER_PID" 2>/dev/null || true
		wait "$SCRAPER_PID" 2>/dev/null || true
		SCRAPER_PID=
	fi
	kill -TERM "$RELAY_PID" 2>/dev/null || true
	for pid in "$RELAY_PID" "$RELAY_WORKER"; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
		forget_pid "$pid"
	done
	wait "$RELAY_PID" 2>/dev/null || true
}

# haproxy (haproxy.sh): the one PEM; the plain variant gets `option
# splice-auto`, haproxy's own splice path.
write_haproxy_conf() {
	local mode=$1 port=$2
	haproxy_head $((IDLE_CONNS + 1000))
	cat <<EOF
frontend fe
EOF
	if [[ $mode == tls ]]; then
		echo "    bind 127.0.0.1:$port ssl crt $TMP/haproxy.pem"
	else
		echo "    bind 127.0.0.1:$port"
		echo "    option splice-auto"
	fi
	cat <<EOF
    default_backend be

backend be
    server backend 127.0.0.1:$BACKEND_PORT
EOF
}

# nginx: one worker, the stream module, proxy_buffer_size at its default
# (16k); TLS 1.3 tickets really off through OpenSSL's NumTickets.
write_nginx_conf() {
	local mode=$1 port=$2 dir=$3
	cat <<EOF
load_module $NGINX_STREAM_MODULE;
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $((IDLE_CONNS * 2 + 1000));
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections $((IDLE_CONNS * 2 + 500));
}

stream {
    server {
EOF
	if [[ $mode == tls ]]; then
		cat <<EOF
        listen 127.0.0.1:$port ssl;
        ssl_certificate $TMP/cert.pem;
        ssl_certificate_key $TMP/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_prefer_server_ciphers on;
        ssl_conf_command Ciphersuites $SUITES;
        ssl_conf_command NumTickets 0;
        ssl_session_tickets off;
        ssl_session_cache off;
EOF
	else
		echo "        listen 127.0.0.1:$port;"
	fi
	cat <<EOF
        proxy_pass 127.0.0.1:$BACKEND_PORT;
        proxy_buffer_size 16k;
    }
}
EOF
}

# ---------------------------------------------------------------- phases
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Latency: every relay up at once, LAT_ROUNDS rounds in which direct and
# each relay take turns; a relay's added p50 (p99) is the median over the
# rounds of its p50 (p99) minus direct's in the same round, so that a
# change in the machine's load between rounds moves both.
phase_latency_all() {
	local name round out p50 p99 dp50 dp99
	declare -A port=() pid=() a50=() a99=() r50=() r99=()
	for name in $RELAYS; do
		port[$name]=$(pick_port)
		start_relay "$name" tls "${port[$name]}"
		pid[$name]=$RELAY_PID
	done
	for ((round = 0; round < LAT_ROUNDS; round++)); do
		out=$TMP/direct-latency.out
		loadgen "$out" 120 -m latency -p "$BACKEND_PORT" --plain -n "$LAT_COUNT"
		dp50=$(kv "$out" rtt_p50_us)
		dp99=$(kv "$out" rtt_p99_us)
		r50[direct]+=" $dp50"
		r99[direct]+=" $dp99"
		for name in $RELAYS; do
			out=$TMP/$name-latency.out
			loadgen "$out" 120 -m latency -p "${port[$name]}" -n "$LAT_COUNT"
			p50=$(kv "$out" rtt_p50_us)
			p99=$(kv "$out" rtt_p99_us)
			r50[$name]+=" $p50"
			r99[$name]+=" $p99"
			a50[$name]+=" $(calc %.1f "$p50 - $dp50")"
			a99[$name]+=" $(calc %.1f "$p99 - $dp99")"
			INFO[tls.$name]="$(kv "$out" protocol) $(kv "$out" cipher) $(kv "$out" group)"
			INFO[tickets.$name]=$(kv "$out" session_tickets)
		done
		log "latency round $((round + 1)): direct p50 $dp50 us;$(for name in $RELAYS; do
			printf ' %s +%s' "$name" "${a50[$name]##* }"; done)"
	done
	# shellcheck disable=SC2086 # lists of figures, split on purpose
	{
		R[rtt_p50.direct]=$(median ${r50[direct]})
		R[rtt_p99.direct]=$(median ${r99[direct]})
		for name in $RELAYS; do
			R[rtt_p50.$name]=$(median ${r50[$name]})
			R[rtt_p99.$name]=$(median ${r99[$name]})
			R[added_p50.$name]=$(median ${a50[$name]})
			R[added_p99.$name]=$(median ${a99[$name]})
			LAT_ROUNDS_TEXT+="$name added p50 by round:${a50[$name]} us, p99:${a99[$name]} us; "
			log "$name: latency p50 ${R[rtt_p50.$name]} us, p99 ${R[rtt_p99.$name]} us;" \
				"added p50 ${R[added_p50.$name]} us, p99 ${R[added_p99.$name]} us (medians)"
		done
	}
	for name in $RELAYS; do
		RELAY_PID=${pid[$name]}
		RELAY_WORKER=${pid[$name]}
		[[ $name == nginx ]] && RELAY_WORKER=$(pgrep -P "${pid[$name]}" | head -n 1)
		stop_relay
	done
}

# Memory per idle connection: RSS of the relay process before and after
# IDLE_CONNS connections that each completed a handshake and one echo.
phase_idle() {
	local name=$1 port=$2 out=$TMP/$1-idle.out pid i rss0 rss1 end
	rss0=$(rss_kib "$RELAY_WORKER")
	rm -f "$TMP/hold"
	mkfifo "$TMP/hold"
	taskset -c "$CPU_LOAD" "$LOADGEN" -m idle -p "$port" -n "$IDLE_CONNS" \
		<"$TMP/hold" >"$out" 2>"$out.err" &
	pid=$!
	PIDS+=("$pid")
	exec 7>"$TMP/hold" # held open: its EOF tells the load generator to go
	end=$((SECONDS + 120))
	while ((SECONDS <= end)); do
		grep -qx ready "$out" 2>/dev/null && break
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$out.err" >&2
			die "$name: idle load generator failed"
		fi
		sleep 0.1
	done
	grep -qx ready "$out" || die "$name: $IDLE_CONNS idle connections not up after 120 s"
	sleep 1 # let the relay finish whatever it does after the last echo
	rss1=$(rss_kib "$RELAY_WORKER")
	exec 7>&-
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	forget_pid "$pid"
	R[idle_kib.$name]=$(calc %.2f "($rss1 - $rss0) / $IDLE_CONNS")
	log "$name: RSS $rss0 KiB -> $rss1 KiB with $IDLE_CONNS idle connections"
}

phase_handshake() {
	local name=$1 port=$2 out=$TMP/$1-handshake.out run t0 t1 c0r c1r c0l c1l hs rate
	for ((run = 0; run < REPEAT; run++)); do
		t0=$(cpu_ticks "$RELAY_WORKER")
		c0r=$(core_jiffies "$CPU_RELAY")
		c0l=$(core_jiffies "$CPU_LOAD")
		loadgen "$out" $((HS_SECONDS + 60)) -m handshake -p "$port" -t "$HS_SECONDS"
		t1=$(cpu_ticks "$RELAY_WORKER")
		c1r=$(core_jiffies "$CPU_RELAY")
		c1l=$(core_jiffies "$CPU_LOAD")
		hs=$(kv "$out" handshakes)
		rate=$(kv "$out" handshakes_per_s)
		if better HIGHER "${R[hs_rate.$name]:-}" "$rate"; then
			R[hs_rate.$name]=$rate
			R[hs_cpu_ms.$name]=$(calc %.3f "($t1 - $t0) / $CLK_TCK * 1000 / $hs")
			R[hs_busy_relay.$name]=$(busy_pct "$c0r" "$c1r")
			R[hs_busy_load.$name]=$(busy_pct "$c0l" "$c1l")
			R[hs_errors.$name]=$(kv "$out" errors)
		fi
	done
	log "$name: ${R[hs_rate.$name]} handshakes/s (relay core ${R[hs_busy_relay.$name]}% busy," \
		"load core ${R[hs_busy_load.$name]}% busy)"
}

# phase_bulk NAME PORT tls|plain: KEY prefix bulk or plain.
phase_bulk() {
	local name=$1 port=$2 mode=$3 key=bulk out=$TMP/$1-$3-bulk.out run t0 t1 c0r c1r c0l c1l
	local mbps bytes args=()
	if [[ $mode == plain ]]; then
		key=plain
		args=(--plain)
	fi
	for ((run = 0; run < REPEAT; run++)); do
		t0=$(cpu_ticks "$RELAY_WORKER")
		c0r=$(core_jiffies "$CPU_RELAY")
		c0l=$(core_jiffies "$CPU_LOAD")
		loadgen "$out" 300 -m bulk -p "$port" -b "$BULK_BYTES" "${args[@]}"
		t1=$(cpu_ticks "$RELAY_WORKER")
		c1r=$(core_jiffies "$CPU_RELAY")
		c1l=$(core_jiffies "$CPU_LOAD")
		mbps=$(kv "$out" mbps)
		bytes=$(kv "$out" bytes)
		if better HIGHER "${R[${key}_mbps.$name]:-}" "$mbps"; then
			R[${key}_mbps.$name]=$mbps
			R[${key}_cpu.$name]=$(calc %.3f "($t1 - $t0) / $CLK_TCK / ($bytes / 1e9)")
			R[${key}_busy_relay.$name]=$(busy_pct "$c0r" "$c1r")
			R[${key}_busy_load.$name]=$(busy_pct "$c0l" "$c1l")
		fi
	done
	log "$name ($mode): bulk ${R[${key}_mbps.$name]} MB/s," \
		"${R[${key}_cpu.$name]} CPU-s/GB (relay core ${R[${key}_busy_relay.$name]}% busy," \
		"load core ${R[${key}_busy_load.$name]}% busy)"
}

measure() {
	local name=$1 port
	port=$(pick_port)
	log "$name: TLS on 127.0.0.1:$port"
	start_relay "$name" tls "$port"
	# One connection that warms the relay up first, so that the idle
	# figure holds per-connection memory, not one-time set-up.  Idle
	# before handshakes and bulk, whose freed memory an allocator or pool
	# would hand to the idle connections for free.
	loadgen "$TMP/$name-warmup.out" 120 -m latency -p "$port" -n 200
	phase_idle "$name" "$port"
	phase_handshake "$name" "$port"
	phase_bulk "$name" "$port" tls
	stop_relay

	port=$(pick_port)
	log "$name: plain on 127.0.0.1:$port"
	start_relay "$name" plain "$port"
	phase_bulk "$name" "$port" plain
	stop_relay
}

# ---------------------------------------------------------------- report
# ratio FIGURE HIGHER|LOWER: Portico over the best of haproxy and nginx.
ratio() {
	local fig=$1 dir=$2 p=${R[$1.portico]:-} h=${R[$1.haproxy]:-} n=${R[$1.nginx]:-}
	[[ -n $p && (-n $h || -n $n) ]] || {
		echo -
		return
	}
	awk -v p="$p" -v h="$h" -v n="$n" -v d="$dir" 'BEGIN {
		best = ""
		if (h != "") best = h
		if (n != "" && (best == "" || (d == "HIGHER" ? n > best : n < best))) best = n
		if (best <= 0) { print "n/a"; exit }
		printf "%.2f", p / best }'
}

print_report() {
	local rows fig label dir target r relay line ossl
	# figure|label|better|target
	rows=(
		"bulk_mbps|bulk MB/s (TLS)|HIGHER|target >= 1.30x"
		"bulk_cpu|relay CPU-s/GB (TLS)|LOWER|target <= 0.6 CPU-s/GB"
		"hs_rate|TLS handshakes/s|HIGHER|target >= 1.00x"
		"added_p50|added p50 us (64 B echo)|LOWER|target <= 1.00x"
		"added_p99|added p99 us (64 B echo)|LOWER|"
		"idle_kib|KiB per idle TLS conn|LOWER|target <= 12 KiB"
		"hs_cpu_ms|relay CPU ms/handshake|LOWER|"
		"plain_mbps|plain bulk MB/s (splice)|HIGHER|"
		"plain_cpu|plain relay CPU-s/GB|LOWER|"
	)
	ossl=$(openssl version 2>/dev/null || echo unknown)
	echo
	echo "relay benchmark: Portico relay-bench vs $HAPROXY_VERSION vs $NGINX_VERSION"
	echo "pinning: relays on core $CPU_RELAY; load generator and backend on core $CPU_LOAD (taskset)"
	echo "openssl: $ossl; ECDSA P-256 self-signed certificate, the same for all relays"
	for relay in $RELAYS; do
		echo "negotiated ($relay): ${INFO[tls.$relay]:-?}; TLS 1.3 session tickets per connection: ${INFO[tickets.$relay]:-?}"
	done
	echo "peers: haproxy nbthread 1, tune.bufsize 16384 (default), no-tls-tickets and" \
		"tune.ssl.cachesize 0 (2.6 has no way to stop TLS 1.3 tickets), plain with option" \
		"splice-auto; nginx worker_processes 1, proxy_buffer_size 16k (default)," \
		"ssl_conf_command NumTickets 0; all: server preference, $SUITES"
	echo "steal (time the hypervisor took) during the run: core $CPU_RELAY" \
		"$(busy_pct "$STEAL0_RELAY" "$(steal_jiffies "$CPU_RELAY")")%, core $CPU_LOAD" \
		"$(busy_pct "$STEAL0_LOAD" "$(steal_jiffies "$CPU_LOAD")")%"
	echo "units: MB = 10^6 B, GB = 10^9 B, KiB = 1024 B; bulk = $BULK_BYTES B backend->client on one" \
		"connection; latency = $LAT_COUNT round trips of 64 B per round, $LAT_ROUNDS rounds with the" \
		"relays taking turns, added = through the relay minus direct in the same round, median of the" \
		"rounds (direct p50 ${R[rtt_p50.direct]} us, p99 ${R[rtt_p99.direct]} us); idle = relay RSS" \
		"delta over $IDLE_CONNS connections (kernel socket memory not included); runs per other" \
		"figure: $REPEAT (best kept)"
	echo "latency rounds: $LAT_ROUNDS_TEXT"
	echo
	printf '%-28s %10s %10s %10s  %s\n' figure portico haproxy nginx "portico / best peer"
	for line in "${rows[@]}"; do
		IFS='|' read -r fig label dir target <<<"$line"
		r=$(ratio "$fig" "$dir")
		[[ $r != - && $r != n/a ]] && r=${r}x
		printf '%-28s %10s %10s %10s  %s\n' "$label" "${R[$fig.portico]:--}" \
			"${R[$fig.haproxy]:--}" "${R[$fig.nginx]:--}" \
			"$r (${dir,,} is better${target:+; $target})"
	done
	if [[ " $RELAYS " == *" counted "* ]]; then
		echo
		echo "counting: the same relay counting every byte into its metrics as the gateway does" \
			"(relay-bench --metrics, /metrics scraped every second)"
		printf '%-28s %10s %10s  %s\n' figure portico counted "counted / portico"
		for line in "${rows[@]}"; do
			IFS='|' read -r fig label dir target <<<"$line"
			printf '%-28s %10s %10s  %s\n' "$label" "${R[$fig.portico]:--}" "${R[$fig.counted]:--}" \
				"$(awk -v p="${R[$fig.portico]:-}" -v c="${R[$fig.counted]:-}" \
					'BEGIN { if (p == "" || c == "" || p <= 0) print "-"; else printf "%.3f", c / p }')"
		done
	fi
	echo
	for line in "${rows[@]}"; do
		IFS='|' read -r fig label dir target <<<"$line"
		for relay in portico counted haproxy nginx; do
			echo "$fig.$relay: ${R[$fig.$relay]:--}"
		done
		echo "$fig.ratio: $(ratio "$fig" "$dir")"
	done
	for relay in $RELAYS; do
		for fig in hs_busy_relay hs_busy_load bulk_busy_relay bulk_busy_load hs_errors; do
			echo "$fig.$relay: ${R[$fig.$relay]:--}"
		done
	done
	echo "rtt_p50.direct: ${R[rtt_p50.direct]}"
	echo "rtt_p99.direct: ${R[rtt_p99.direct]}"
	for relay in $RELAYS; do
		if [[ ${R[hs_busy_load.$relay]:-0} -ge 95 && ${R[hs_busy_relay.$relay]:-0} -lt 95 ]]; then
			echo "note: during $relay's handshakes the load-generator core was" \
				"${R[hs_busy_load.$relay]}% busy and the relay core ${R[hs_busy_relay.$relay]}%:" \
				"handshakes/s is bounded by the client there; relay CPU ms/handshake is the fairer figure"
		fi
	done
}

# ---------------------------------------------------------------- main
[[ -x $BACKEND && -x $LOADGEN ]] || die "$BACKEND or $LOADGEN not built (run make all)"
for relay in $RELAYS; do
	case $relay in
	portico | counted) [[ -x $RELAYBENCH ]] || die "relay-bench not built ($RELAYBENCH missing; run make all)" ;;
	haproxy)
		HAPROXY=$(PATH=$PATH:/usr/sbin:/sbin command -v haproxy) || die "haproxy not installed (make deps)"
		;;
	nginx)
		NGINX=$(PATH=$PATH:/usr/sbin:/sbin command -v nginx) || die "nginx not installed (make deps)"
		[[ -r $NGINX_STREAM_MODULE ]] || die "$NGINX_STREAM_MODULE missing (libnginx-mod-stream)"
		;;
	*) die "unknown relay '$relay' in RELAYS (portico, haproxy, nginx)" ;;
	esac
done
HAPROXY_VERSION=haproxy
NGINX_VERSION=nginx
[[ -n ${HAPROXY:-} ]] && HAPROXY_VERSION=$("$HAPROXY" -v | awk 'NR == 1 { print "haproxy " $3 }')
[[ -n ${NGINX:-} ]] && NGINX_VERSION=$("$NGINX" -v 2>&1 | sed -n 's|^nginx version: nginx/|nginx |p')
command -v openssl >/dev/null || die "the openssl command is missing"
command -v taskset >/dev/null || die "taskset is missing (util-linux)"
if ! taskset -c "$CPU_RELAY" true 2>/dev/null || ! taskset -c "$CPU_LOAD" true 2>/dev/null; then
	die "cannot pin to cores $CPU_RELAY and $CPU_LOAD (set CPU_RELAY and CPU_LOAD)"
fi
[[ $CPU_RELAY != "$CPU_LOAD" ]] || die "CPU_RELAY and CPU_LOAD must differ"
CLK_TCK=$(getconf CLK_TCK)

# Each idle connection costs the relay two descriptors and the load
# generator and the backend one each.
need=$((IDLE_CONNS * 2 + 200))
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < need)); then
	die "open-file hard limit $hard is below the $need this needs (lower IDLE_CONNS or raise it)"
fi
soft=$(ulimit -Sn)
if [[ $soft != unlimited ]] && ((soft < need)); then
	if [[ $hard == unlimited ]]; then ulimit -n $((need > 65536 ? need : 65536)); else ulimit -n "$hard"; fi
fi

STEAL0_RELAY=$(steal_jiffies "$CPU_RELAY")
STEAL0_LOAD=$(steal_jiffies "$CPU_LOAD")
TMP=$(mktemp -d "${TMPDIR:-/tmp}/portico-relay-bench.XXXXXX")
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$TMP/key.pem" -out "$TMP/cert.pem" -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 >"$TMP/openssl.log" 2>&1 ||
	{
		cat "$TMP/openssl.log" >&2
		die "certificate generation failed"
	}
cat "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/haproxy.pem"

BACKEND_PORT=$(pick_port)
taskset -c "$CPU_LOAD" "$BACKEND" -p "$BACKEND_PORT" >"$TMP/backend.log" 2>&1 &
BACKEND_PID=$!
PIDS+=("$BACKEND_PID")
wait_listen "$BACKEND_PORT" "$BACKEND_PID" bench-backend "$TMP/backend.log"
log "backend on 127.0.0.1:$BACKEND_PORT; relays pinned to core $CPU_RELAY," \
	"load generator and backend to core $CPU_LOAD"

phase_latency_all
for relay in $RELAYS; do
	measure "$relay"
done
kill -0 "$BACKEND_PID" 2>/dev/null || {
	cat "$TMP/backend.log" >&2
	die "bench-backend died during the run"
}
print_report
