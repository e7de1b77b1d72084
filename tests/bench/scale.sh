#!/bin/bash
# scale.sh - thousands of held sessions in one portico-gateway beside
# haproxy holding the same (run by make bench; needs root: the gateway
# drops to its user, and open-file limits are raised with prlimit).
#
#   BUILD=build tests/bench/scale.sh
#
# A real broker (PAM through pam_wrapper + pam_matrix) with static pools in
# front of two synthetic backends (bench-backend -g vnc: an RFB 3.8 server;
# -g rdp: an X.224 server), and one gateway.  build/bench/scale-client
# holds SESSIONS sessions through it, half VNC (VeNCrypt X509Plain, "user#
# pool" and a password: the broker's PAM and launch, then the backend's
# handshake, then the relay: TLS to the client, plain to the backend) and
# half RDP (a ticket from the broker's launch in an X.224 Connection
# Request: the passthrough, spliced).  Session i is user s(i % 100) in pool
# v(i / 100) or r(i / 100): every session is a different one at the broker.
# Each held session then sends 8 bytes every INTERVAL_MS and the backend
# echoes them: a few bytes a second each way.  The peer is haproxy 2.6
# (nbthread 1) holding the same sessions to the same backends: the VNC half
# through a TLS-terminating frontend (`bind ... ssl crt`, the relay
# benchmark's), the RDP half through a plain one (option splice-auto, as
# rdp.sh has it); its clients speak RFB or X.224 to the backend directly.
#
# Figures, for the gateway and haproxy, ratios gateway / haproxy:
#  - memory per session: RSS delta of the relay process over the VNC half,
#    over the RDP half, over both (KiB; kernel socket and pipe memory not
#    included);
#  - CPU of idle traffic: utime+stime of the relay process over IDLE_SECONDS
#    while every session trickles (percent of one core, and microseconds
#    per echo the clients got back: a starved client core sends fewer), and
#    the echo round trip of the held sessions meanwhile (p50/p99);
#  - new-login latency while they are held: LOGINS new VNC sessions one
#    after another, each from a new HTTPS connection to the broker (POST
#    /login, POST launch, a ticket) through the gateway (VeNCrypt, the
#    ticket redeemed, the backend's handshake) to the backend's ServerInit;
#    through haproxy: connect, TLS, RFB to ServerInit (no broker: what a
#    proxy without logins costs);
#  - bulk: BULK_SESSIONS held VNC sessions (TLS) at once, then as many RDP
#    ones (splice), each asking for BULK_BYTES; MB/s (all bytes over first
#    request to last byte) and relay CPU-s/GB (the other held sessions send
#    nothing meanwhile).
# The relays run on core CPU_RELAY, everything else (backends, clients,
# broker) on CPU_LOAD.
#
# Descriptors: a held session takes one in each client and backend, two in
# haproxy, and in the gateway two (TLS) or six (splice: two duplicates and
# two pipes); the gateway clamps max_connections to its open-file limit at
# GW_FDS_PER_CONN (8) each.  The script raises the hard limit of every
# process it starts with prlimit (root with CAP_SYS_RESOURCE); where that
# is refused it holds as many sessions as the limit lets both relays hold,
# and says so.
#
# Environment (defaults in brackets):
#   BUILD          build directory [build]
#   SESSIONS       sessions to hold, half VNC, half RDP [10000]
#   INTERVAL_MS    a held session's message period [1000]
#   IDLE_SECONDS   CPU window while they are held [20]
#   LOGINS         new logins timed while they are held [50]
#   BULK_SESSIONS  held sessions of each kind in the bulk run [100]
#   BULK_BYTES     bytes each of them asks for [10000000]
#   CONCURRENCY    sessions being opened at a time [64]
#   CPU_RELAY      core for the gateway and haproxy [0]
#   CPU_LOAD       core for everything else [1]
#   FIT            1: hold what the open-file limits allow; 0: ask for
#                  SESSIONS anyway (the gateway's log says what it refused) [1]
#   KEEP_TMP       1 keeps the temporary directory (configs, logs)
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
SESSIONS=${SESSIONS:-10000}
INTERVAL_MS=${INTERVAL_MS:-1000}
IDLE_SECONDS=${IDLE_SECONDS:-20}
LOGINS=${LOGINS:-50}
BULK_SESSIONS=${BULK_SESSIONS:-100}
BULK_BYTES=${BULK_BYTES:-10000000}
CONCURRENCY=${CONCURRENCY:-64}
CPU_RELAY=${CPU_RELAY:-0}
CPU_LOAD=${CPU_LOAD:-1}
FIT=${FIT:-1}
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh # wait_for
. tests/bench/haproxy.sh
SC=$BUILD/bench/scale-client
BB=$BUILD/bench/bench-backend
USERS=100 # per pool; session i: user i % USERS, pool i / USERS

PIDS=() # ended at exit, in reverse order
cleanup() {
	local i
	trap - EXIT INT TERM
	exec 7>&- 8>&- 2>/dev/null
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null
	done
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		wait "${PIDS[i]}" 2>/dev/null
	done
	be_cleanup
}
say() { echo "scale.sh: $*" >&2; }
die() {
	echo "scale.sh: error: $*" >&2
	exit 1
}
listens() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ticks() { # PID: utime + stime in clock ticks
	local s
	s=$(<"/proc/$1/stat") || die "process $1 is gone"
	s=${s##*) }
	# shellcheck disable=SC2086 # the fields, split on purpose
	set -- $s
	echo $((${12} + ${13}))
}
rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" || die "process $1 is gone"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
kv() { sed -n "s/^$2=//p" "$1" | tail -n 1; }
steal() { awk -v c="cpu$1" '$1 == c { print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'; }

for x in "$SC" "$BB" "$BUILD/bin/portico-gateway" "$BUILD/bin/portico-broker"; do
	[ -x "$x" ] || die "$x is not built (make all)"
done
HAPROXY=$(PATH=$PATH:/usr/sbin:/sbin command -v haproxy) || die "haproxy is not installed (make deps)"
command -v prlimit >/dev/null || die "prlimit is missing (util-linux)"
[ "$(id -u)" = 0 ] || die "run as root (the gateway drops to its user)"
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------- limits
NV=$((SESSIONS / 2))
NR=$((SESSIONS - NV))
# What each process needs: the gateway what its clamp asks (8 per
# connection and its headroom), haproxy two per session, a client or a
# backend one per session; a margin for the rest.
GW_MAX=$((SESSIONS + LOGINS + 50))
NEED=$((GW_MAX * 8 + 64 + 6 + 100))
if prlimit --pid $$ --nofile="$NEED:$NEED" 2>/dev/null; then
	NOFILE=$NEED
	LIMIT_NOTE="open-file limit raised to $NEED for every process"
else
	NOFILE=$(ulimit -Hn)
	prlimit --pid $$ --nofile="$NOFILE:$NOFILE" 2>/dev/null
	# What both relays can hold: the gateway's clamp, haproxy's two each.
	fit=$(((NOFILE - 64 - 6) / 8 - LOGINS - 10))
	hfit=$(((NOFILE - 200) / 2))
	((hfit < fit)) && fit=$hfit
	LIMIT_NOTE="open-file hard limit $NOFILE cannot be raised here (no CAP_SYS_RESOURCE): the gateway admits $(((NOFILE - 70) / 8)) connections (8 descriptors each)"
	if [ "$FIT" = 1 ] && ((fit < SESSIONS)); then
		LIMIT_NOTE="$LIMIT_NOTE; holding $fit sessions instead of $SESSIONS"
		SESSIONS=$fit
		NV=$((SESSIONS / 2))
		NR=$((SESSIONS - NV))
		GW_MAX=$((SESSIONS + LOGINS + 50))
	fi
	say "$LIMIT_NOTE"
fi
((NV <= USERS * 100 && NR <= USERS * 100)) || die "SESSIONS above $((USERS * 200))"
PV=$(((NV + USERS - 1) / USERS)) # pools per kind
PR=$(((NR + USERS - 1) / USERS))

# ---------------------------------------------------------------- set-up
be_setup
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
for ((u = 0; u < USERS; u++)); do be_user "$(printf s%03d "$u")" scale-pw $((10000 + u)) scale; done
for ((u = 0; u < LOGINS; u++)); do be_user "$(printf n%03d "$u")" scale-pw $((20000 + u)) fresh; done
VNC_PORT=$(free_port)
RDP_PORT=$(free_port)
BV_PORT=$(free_port)
BR_PORT=$(free_port)
HV_PORT=$(free_port)
HR_PORT=$(free_port)
be_gateway_conf "$VNC_PORT" "$RDP_PORT" user=portico max_connections="$GW_MAX" max_pending=2000 \
	max_pending_per_addr=2000 rdp_max_logins=1
sed -i "s|^ticket_ttl = .*|ticket_ttl = 1h|; s|^login_window = .*|login_window = 1s|" "$T/portico.conf"
{
	for ((p = 0; p < PV; p++)); do
		printf '\n[pool v%02d]\nkind = desktop\nprotocol = vnc\ndriver = static\nhosts = 127.0.0.1:%s\ngroups = scale\nmax_sessions_per_host = 100000\n' "$p" "$BV_PORT"
	done
	for ((p = 0; p < PR; p++)); do
		printf '\n[pool r%02d]\nkind = desktop\nprotocol = rdp\ndriver = static\nhosts = 127.0.0.1:%s\ngroups = scale\nmax_sessions_per_host = 100000\n' "$p" "$BR_PORT"
	done
	printf '\n[pool fresh00]\nkind = desktop\nprotocol = vnc\ndriver = static\nhosts = 127.0.0.1:%s\ngroups = fresh\nmax_sessions_per_host = 100000\n' "$BV_PORT"
} >>"$T/portico.conf"

# Every process this script starts inherits its limit (raised above when
# allowed); the broker is pinned with the clients.
be_start
taskset -pc "$CPU_LOAD" "$BE_PID" >/dev/null
for p in $(pgrep -P "$BE_PID"); do taskset -pc "$CPU_LOAD" "$p" >/dev/null; done
taskset -c "$CPU_LOAD" "$BB" -g vnc -p "$BV_PORT" >"$T/backend-vnc.log" 2>&1 &
PIDS+=("$!")
taskset -c "$CPU_LOAD" "$BB" -g rdp -p "$BR_PORT" >"$T/backend-rdp.log" 2>&1 &
PIDS+=("$!")
wait_for 5 listens "$BV_PORT" || die "bench-backend (vnc) does not listen: $(cat "$T/backend-vnc.log")"
wait_for 5 listens "$BR_PORT" || die "bench-backend (rdp) does not listen: $(cat "$T/backend-rdp.log")"
BROKER=https://127.0.0.1:$PORT

{
	haproxy_head $((SESSIONS + LOGINS + 100))
	cat <<EOF
frontend fe_vnc
    bind 127.0.0.1:$HV_PORT ssl crt $T/haproxy.pem
    default_backend be_vnc

backend be_vnc
    server vnc 127.0.0.1:$BV_PORT

frontend fe_rdp
    bind 127.0.0.1:$HR_PORT
    option splice-auto
    default_backend be_rdp

backend be_rdp
    server rdp 127.0.0.1:$BR_PORT
EOF
} >"$T/haproxy.cfg"
# haproxy shows the gateway's certificate (an ECDSA P-256 one from the test's CA).
cat "$T/pki/gw1.pem" "$T/pki/gw1.key" >"$T/haproxy.pem"

declare -A R=()

# hold NAME KIND PORT N FD [ARGS...]: a scale-client holding N sessions,
# its commands on fd FD (7 or 8); waits for "ready".
hold() {
	local name=$1 kind=$2 port=$3 n=$4 fd=$5 out=$T/hold-$1.out i
	shift 5
	rm -f "$T/fifo-$name"
	mkfifo "$T/fifo-$name"
	taskset -c "$CPU_LOAD" "$SC" hold -k "$kind" -p "$port" -n "$n" -s 8 -c "$CONCURRENCY" \
		-i "$INTERVAL_MS" -U "$USERS" "$@" <"$T/fifo-$name" >"$out" 2>"$out.err" &
	HOLD_PID=$!
	PIDS+=("$HOLD_PID")
	eval "exec $fd>\"$T/fifo-$name\""
	for ((i = 0; i < 6000; i++)); do
		grep -qx ready "$out" 2>/dev/null && break
		kill -0 "$HOLD_PID" 2>/dev/null || die "$name: the client failed: $(cat "$out.err")"
		sleep 0.1
	done
	grep -qx ready "$out" || die "$name: not ready after 600 s"
	say "$name: $(kv "$out" held) held, $(kv "$out" failed) failed in $(kv "$out" seconds) s$(
		[ -s "$out.err" ] && echo "; $(head -c 300 "$out.err" | tr '\n' ' ')")"
}

# await OUT KEY N: wait until OUT has more than N lines KEY=...
await() {
	local i
	for ((i = 0; i < 3000; i++)); do
		(($(grep -c "^$2=" "$1") > $3)) && return 0
		sleep 0.1
	done
	die "no $2 in $1 after 300 s"
}

# command FD OUT KEY TEXT: send a command, wait for KEY in OUT.
command() {
	local before
	before=$(grep -c "^$3=" "$2")
	echo "$4" >&"$1"
	await "$2" "$3" "$before"
}

# measure NAME RELAY-PID: the phases, results in R[*.NAME]
measure() {
	local name=$1 pid=$2 r0 r1 r2 t0 t1 s0 s1 out
	sleep 1
	r0=$(rss "$pid")
	if [ "$name" = gateway ]; then
		hold "$name-vnc" gw-vnc "$VNC_PORT" "$NV" 7 --user-prefix s --pool-prefix v
	else
		hold "$name-vnc" tls-vnc "$HV_PORT" "$NV" 7
	fi
	sleep 2
	r1=$(rss "$pid")
	if [ "$name" = gateway ]; then
		hold "$name-rdp" gw-rdp "$RDP_PORT" "$NR" 8 --user-prefix s --pool-prefix r \
			-b "$BROKER" --cacert "$T/tls/server.pem"
	else
		hold "$name-rdp" plain-rdp "$HR_PORT" "$NR" 8
	fi
	sleep 2
	r2=$(rss "$pid")
	R[held_vnc.$name]=$(kv "$T/hold-$name-vnc.out" held)
	R[held_rdp.$name]=$(kv "$T/hold-$name-rdp.out" held)
	R[kib_vnc.$name]=$(calc %.1f "($r1 - $r0) / ${R[held_vnc.$name]}")
	R[kib_rdp.$name]=$(calc %.1f "($r2 - $r1) / ${R[held_rdp.$name]}")
	R[kib_all.$name]=$(calc %.1f "($r2 - $r0) / (${R[held_vnc.$name]} + ${R[held_rdp.$name]})")
	R[rss_mib.$name]=$(calc %.1f "$r2 / 1024")
	say "$name: RSS $r0 -> $r1 (VNC) -> $r2 KiB (RDP)"

	# Idle traffic.
	command 7 "$T/hold-$name-vnc.out" held stats
	command 8 "$T/hold-$name-rdp.out" held stats
	t0=$(ticks "$pid")
	s0=$(steal "$CPU_RELAY")
	sleep "$IDLE_SECONDS"
	t1=$(ticks "$pid")
	s1=$(steal "$CPU_RELAY")
	command 7 "$T/hold-$name-vnc.out" held stats
	command 8 "$T/hold-$name-rdp.out" held stats
	R[idle_cpu.$name]=$(calc %.1f "100 * ($t1 - $t0) / $CLK_TCK / $IDLE_SECONDS")
	# Per echo (two relayed messages): clients starved of CPU send fewer.
	R[idle_us.$name]=$(calc %.1f "($t1 - $t0) / $CLK_TCK * 1e6 / ($(kv "$T/hold-$name-vnc.out" echoes) + $(kv "$T/hold-$name-rdp.out" echoes) + 1)")
	R[idle_steal.$name]=$(pct "$s0" "$s1")
	for k in vnc rdp; do
		out=$T/hold-$name-$k.out
		R[echo_p50_$k.$name]=$(calc %.2f "$(kv "$out" echo_p50_us) / 1000")
		R[echo_p99_$k.$name]=$(calc %.2f "$(kv "$out" echo_p99_us) / 1000")
		R[late_$k.$name]=$(kv "$out" late)
		R[ended_$k.$name]=$(kv "$out" ended)
	done
	say "$name: idle traffic ${R[idle_cpu.$name]}% of a core; echo p50 ${R[echo_p50_vnc.$name]} / ${R[echo_p50_rdp.$name]} ms"

	# New logins while they are held.
	out=$T/login-$name.out
	if [ "$name" = gateway ]; then
		taskset -c "$CPU_LOAD" "$SC" login -k gw-vnc -p "$VNC_PORT" -n "$LOGINS" -U "$LOGINS" \
			--user-prefix n --pool-prefix fresh -b "$BROKER" --cacert "$T/tls/server.pem" \
			>"$out" 2>"$out.err" || die "$name: logins failed: $(cat "$out.err")"
	else
		taskset -c "$CPU_LOAD" "$SC" login -k tls-vnc -p "$HV_PORT" -n "$LOGINS" \
			>"$out" 2>"$out.err" || die "$name: logins failed: $(cat "$out.err")"
	fi
	R[login_p50.$name]=$(kv "$out" login_p50_ms)
	R[login_p99.$name]=$(kv "$out" login_p99_ms)
	say "$name: new logins p50 ${R[login_p50.$name]} ms, p99 ${R[login_p99.$name]} ms"

	# Bulk on held sessions, VNC (TLS) then RDP; the others hold still
	# meanwhile, so that the relay's CPU is the bulk's.
	command 7 "$T/hold-$name-vnc.out" quiet quiet
	command 8 "$T/hold-$name-rdp.out" quiet quiet
	sleep 1
	for k in vnc rdp; do
		local fd=7
		[ $k = rdp ] && fd=8
		out=$T/hold-$name-$k.out
		t0=$(ticks "$pid")
		command "$fd" "$out" bulk_started "bulk $BULK_SESSIONS $BULK_BYTES"
		[ "$(kv "$out" bulk_started)" -gt 0 ] || die "$name: no held $k session for the bulk run"
		await "$out" bulk_mbps 0
		t1=$(ticks "$pid")
		R[bulk_mbps_$k.$name]=$(kv "$out" bulk_mbps)
		R[bulk_n_$k.$name]=$(kv "$out" bulk_sessions)
		R[bulk_cpu_$k.$name]=$(calc %.3f "($t1 - $t0) / $CLK_TCK / ($(kv "$out" bulk_bytes) / 1e9)")
		[ "$(kv "$out" bulk_lost)" = 0 ] || die "$name: $(kv "$out" bulk_lost) bulk sessions lost"
		say "$name: bulk $k on ${R[bulk_n_$k.$name]} sessions: ${R[bulk_mbps_$k.$name]} MB/s," \
			"${R[bulk_cpu_$k.$name]} CPU-s/GB"
	done
	command 7 "$T/hold-$name-vnc.out" quiet resume
	command 8 "$T/hold-$name-rdp.out" quiet resume
	command 7 "$T/hold-$name-vnc.out" held stats
	command 8 "$T/hold-$name-rdp.out" held stats
	R[ended.$name]=$(($(kv "$T/hold-$name-vnc.out" ended) + $(kv "$T/hold-$name-rdp.out" ended)))
	exec 7>&- 8>&-
}

# ---------------------------------------------------------------- gateway
# The gateway drops to "portico", a user of the test's nss_wrapper world.
taskset -c "$CPU_RELAY" env LD_PRELOAD="$NSS_WRAPPER_LIB" NSS_WRAPPER_PASSWD="$T/passwd" \
	NSS_WRAPPER_GROUP="$T/group" NSS_WRAPPER_DISABLE_DEEPBIND=1 \
	"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW=$!
PIDS+=("$GW")
wait_for 5 listens "$VNC_PORT" || die "the gateway does not listen: $(cat "$T/gateway.log")"
wait_for 5 listens "$RDP_PORT" || die "the gateway does not listen on RDP: $(cat "$T/gateway.log")"
GW_NOTE=$(grep -m1 "max_connections:" "$T/gateway.log")
[ -n "$GW_NOTE" ] && say "gateway: $GW_NOTE"
# One login first: the broker's and the gateway's first connections are set-up, not sessions.
taskset -c "$CPU_LOAD" "$SC" login -k gw-vnc -p "$VNC_PORT" -n 1 -U 1 --user-prefix n --pool-prefix fresh \
	-b "$BROKER" --cacert "$T/tls/server.pem" >/dev/null 2>"$T/warmup.err" ||
	die "the first login failed: $(cat "$T/warmup.err") $(tail -n 5 "$T/gateway.log")"
STEAL0=$(steal "$CPU_RELAY")
measure gateway "$GW"
REFUSED=$(grep -c "too many connections" "$T/gateway.log")
kill "$GW"
wait "$GW" 2>/dev/null

# ---------------------------------------------------------------- haproxy
taskset -c "$CPU_RELAY" "$HAPROXY" -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
HAP=$!
PIDS+=("$HAP")
wait_for 5 listens "$HV_PORT" || die "haproxy does not listen: $(cat "$T/haproxy.log")"
taskset -c "$CPU_LOAD" "$SC" login -k tls-vnc -p "$HV_PORT" -n 1 >/dev/null 2>"$T/warmup.err" ||
	die "the first connection through haproxy failed: $(cat "$T/warmup.err")"
measure haproxy "$HAP"
STEAL=$(pct "$STEAL0" "$(steal "$CPU_RELAY")")

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
row() { # LABEL FIGURE UNIT
	printf '%-44s %10s %10s  %s\n' "$1" "${R[$2.gateway]}" "${R[$2.haproxy]}" "$(ratio "${R[$2.gateway]}" "${R[$2.haproxy]}")"
}
echo
echo "scale benchmark: one portico-gateway beside $("$HAPROXY" -v | awk 'NR == 1 { print "haproxy " $3 }') (nbthread 1)"
echo "sessions: ${R[held_vnc.gateway]} VNC + ${R[held_rdp.gateway]} RDP held through the gateway," \
	"${R[held_vnc.haproxy]} + ${R[held_rdp.haproxy]} through haproxy (asked: $NV + $NR);" \
	"8 B each way every $INTERVAL_MS ms per session"
echo "limits: ${LIMIT_NOTE}; connections the gateway refused: $REFUSED"
echo "pinning: relays on core $CPU_RELAY; clients, backends and the broker on core $CPU_LOAD;" \
	"steal on core $CPU_RELAY during the run: $STEAL%; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-44s %10s %10s  %s\n' figure gateway haproxy "gateway / haproxy"
row "KiB per held VNC session (TLS)" kib_vnc
row "KiB per held RDP session (plain/splice)" kib_rdp
row "KiB per held session, all" kib_all
row "relay RSS with all held (MiB)" rss_mib
row "CPU of idle traffic (% of a core)" idle_cpu
row "relay CPU us per echo (2 messages relayed)" idle_us
row "held echo p50 ms, VNC" echo_p50_vnc
row "held echo p99 ms, VNC" echo_p99_vnc
row "held echo p50 ms, RDP" echo_p50_rdp
row "held echo p99 ms, RDP" echo_p99_rdp
row "new login p50 ms (gateway: broker+PAM+ticket)" login_p50
row "new login p99 ms" login_p99
row "bulk MB/s, $BULK_SESSIONS VNC (TLS)" bulk_mbps_vnc
row "bulk relay CPU-s/GB, VNC (TLS)" bulk_cpu_vnc
row "bulk MB/s, $BULK_SESSIONS RDP (plain)" bulk_mbps_rdp
row "bulk relay CPU-s/GB, RDP (plain)" bulk_cpu_rdp
echo "messages not echoed within their period (late), gateway: ${R[late_vnc.gateway]} VNC," \
	"${R[late_rdp.gateway]} RDP; haproxy: ${R[late_vnc.haproxy]}, ${R[late_rdp.haproxy]}"
echo "held sessions that ended during the run: gateway ${R[ended.gateway]}, haproxy ${R[ended.haproxy]}"
