#!/bin/bash
# rdp.sh - the gateway's RDP passthrough benchmark (run by make bench; needs
# root for xrdp): figures and ratios beside a peer in the same run, never a
# verdict.
#
#   BUILD=build tests/bench/rdp.sh
#
# 1. Passthrough bulk.  build/bench/rdp-bulk plays both ends: its client
#    opens like an RDP client (an X.224 Connection Request with
#    "Cookie: msts=<ticket>", a fresh ticket from launch.rdp per run), the
#    gateway redeems the ticket at the broker, connects to the pool's
#    backend (rdp-bulk serve), forwards the rewritten request and splices;
#    the backend then sends BULK_BYTES, every byte checked by the client.
#    The same stream goes through haproxy (mode tcp, nbthread 1, option
#    splice-auto, as in relay.sh) and straight to the backend.  Figures:
#    GB/s (first byte to EOF) and relay CPU seconds per GB (utime+stime of
#    the gateway or haproxy process from /proc/PID/stat around the whole
#    connection, the gateway's ticket redeem included).  The relay runs on
#    core CPU_RELAY, client and backend on CPU_LOAD; best of REPEAT runs,
#    the three taking turns.
#
# 2. Connection to first frame.  Real xrdp (vnc-any module, an Xvnc with an
#    xterm behind it, TLS security) and a real client, xfreerdp under Xvfb,
#    ROUNDS times each direct, through the gateway with a fresh ticket
#    (fetched before the clock starts: the user already holds the .rdp
#    file) and through haproxy (mode tcp, no ticket), taking turns, after
#    one unrecorded round each.  The clock starts when xfreerdp is launched
#    and stops when xfreerdp first paints an update into its window: with
#    /log-filters:com.freerdp.client.x11:TRACE it logs "xf_lock_x11_: ...
#    from xf_sw_end_paint" only when a server update left a non-empty
#    region to put on screen (fast-path or slow-path alike).  stdbuf -oL
#    makes it write each log line as it happens and this script stamps the
#    line when it reads it ($EPOCHREALTIME, microseconds), so the
#    resolution is well under a millisecond.  FreeRDP's own log time stamps
#    are not used: WinPR 2.x takes their seconds and milliseconds from
#    different clocks, so they run backwards at second boundaries.  The
#    same way, "connection request" is the time from xfreerdp logging
#    "RequestedProtocols" (it sends the X.224 Connection Request) to its
#    logging "RDP_NEG_RSP" (it read the Confirm): through the gateway, that
#    is where the gateway works (parsing, the redeem at the broker over
#    HTTPS, the backend connect, the forwarded request).
#    Beware: xfreerdp 2.x runs the rest of the connection sequence in a
#    loop that reads what has arrived and then sleeps 100 ms, so the first
#    frame comes in 100 ms steps, and one more hop on the path (any relay)
#    makes it miss steps that a direct loopback connection sometimes makes.
#    haproxy is there to show that part.
#
# Environment (defaults in brackets):
#   BUILD        build directory [build]
#   BULK_BYTES   bytes per bulk run [4000000000]
#   REPEAT       bulk runs per path; the best counts [3]
#   ROUNDS       first-frame rounds per path [10]
#   CPU_RELAY    core for the gateway and haproxy [0]
#   CPU_LOAD     core for the bulk client and backend [1]
#   KEEP_TMP     1 keeps the temporary directory (configs, logs)
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
BULK_BYTES=${BULK_BYTES:-4000000000}
REPEAT=${REPEAT:-3}
ROUNDS=${ROUNDS:-10}
CPU_RELAY=${CPU_RELAY:-0}
CPU_LOAD=${CPU_LOAD:-1}
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh # wait_for
. tests/integration/xrdp_env.sh
RB=$BUILD/bench/rdp-bulk

PIDS=() # killed at exit, in reverse order
XRDP=
cleanup() {
	local i
	trap - EXIT INT TERM
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null
	done
	[ -n "$XRDP" ] && kill -- -"$XRDP" 2>/dev/null # xrdp and its session children
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		wait "${PIDS[i]}" 2>/dev/null
	done
	[ -n "$XRDP" ] && wait "$XRDP" 2>/dev/null
	be_cleanup
}
listens() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ticks() { # PID: utime + stime in clock ticks
	local s
	s=$(<"/proc/$1/stat") || fail "process $1 is gone"
	s=${s##*) }
	# shellcheck disable=SC2086 # the fields, split on purpose
	set -- $s
	echo $((${12} + ${13}))
}
core() { # CPU: "busy total" jiffies of one core (steal counts as neither)
	awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat
}
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
p50() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
min() { printf '%s\n' "$@" | sort -n | head -n 1; }
max() { printf '%s\n' "$@" | sort -n | tail -n 1; }

for x in "$RB" "$BUILD/bin/portico-gateway" "$BUILD/bin/portico-broker"; do
	[ -x "$x" ] || { echo "rdp.sh: $x is not built (make all)" >&2; exit 1; }
done
HAPROXY=$(PATH=$PATH:/usr/sbin:/sbin command -v haproxy) || { echo "rdp.sh: haproxy is not installed (make deps)" >&2; exit 1; }
for x in xrdp Xvnc Xvfb xfreerdp xterm stdbuf taskset; do
	command -v "$x" >/dev/null || { echo "rdp.sh: $x is not installed (make deps)" >&2; exit 1; }
done
CLK_TCK=$(getconf CLK_TCK)

be_setup
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
RDP_PORT=$(free_port)
XRDP_PORT=$(free_port)
VNC_PORT=$(free_port)
BULK_PORT=$(free_port)
HAP_PORT=$(free_port)
HAPR_PORT=$(free_port)
be_gateway_conf "$(free_port)" "$RDP_PORT" user=portico
be_conf_append "
[pool bulk]
kind = desktop
protocol = rdp
driver = static
hosts = 127.0.0.1:$BULK_PORT
users = alice

[pool rdesk]
kind = desktop
protocol = rdp
driver = static
hosts = 127.0.0.1:$XRDP_PORT
users = alice"
be_start

taskset -c "$CPU_LOAD" "$RB" serve -p "$BULK_PORT" -b "$BULK_BYTES" 2>"$T/bulk-backend.log" &
PIDS+=("$!")
cat >"$T/haproxy.cfg" <<EOF
global
    nbthread 1
    tune.bufsize 16384

defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m

frontend fe
    bind 127.0.0.1:$HAP_PORT
    option splice-auto
    default_backend be

backend be
    server backend 127.0.0.1:$BULK_PORT

frontend fe_rdp
    bind 127.0.0.1:$HAPR_PORT
    default_backend be_rdp

backend be_rdp
    server xrdp 127.0.0.1:$XRDP_PORT
EOF
taskset -c "$CPU_RELAY" "$HAPROXY" -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
HAP=$!
PIDS+=("$HAP")

# The desktop: an Xvnc with an xterm, shown by xrdp's vnc-any module.
xrdp_vnc_desktop "$VNC_PORT"
PIDS+=("$XVNC" "$XTERM")
xrdp_start "$XRDP_PORT" vnc-any "$(xrdp_vnc_any "$VNC_PORT")"
Xvfb -displayfd 1 -screen 0 1024x768x24 -nolisten tcp >"$T/xvfb.display" 2>/dev/null &
PIDS+=("$!")
# The gateway drops to "portico", a user of the test's nss_wrapper world.
taskset -c "$CPU_RELAY" env LD_PRELOAD="$NSS_WRAPPER_LIB" NSS_WRAPPER_PASSWD="$T/passwd" \
	NSS_WRAPPER_GROUP="$T/group" NSS_WRAPPER_DISABLE_DEEPBIND=1 \
	"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW=$!
PIDS+=("$GW")
wait_for 5 listens "$RDP_PORT" || fail "the gateway does not listen on RDP: $(cat "$T/gateway.log")"
wait_for 5 listens "$XRDP_PORT" || fail "xrdp does not listen: $(cat "$T/xrdp.out")"
wait_for 5 listens "$BULK_PORT" || fail "rdp-bulk does not listen: $(cat "$T/bulk-backend.log")"
wait_for 5 listens "$HAP_PORT" || fail "haproxy does not listen: $(cat "$T/haproxy.log")"
wait_for 5 test -s "$T/xvfb.display" || fail "Xvfb did not start"
XD=:$(cat "$T/xvfb.display")
ALICE=$(login alice alice-pw)
[ -n "$ALICE" ] || fail "alice cannot log in"

ticket() { # POOL: TK = a fresh ticket from the pool's .rdp file
	api GET "/resources/$1/launch.rdp" "" "$ALICE" >/dev/null
	TK=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
	[ ${#TK} = 43 ] || fail "no ticket in the .rdp file of $1: $(cat "$T/out")"
}

# ---------------------------------------------------------------- bulk
declare -A GBPS CPU BUSY LOAD
bulk() { # NAME PORT RELAY-PID [TICKET]
	local name=$1 port=$2 pid=$3 c0=0 c1=0 out=$T/bulk-$1.out g cpu busy l0 l1 load
	[ -n "$pid" ] && c0=$(ticks "$pid")
	l0=$(core "$CPU_LOAD")
	taskset -c "$CPU_LOAD" "$RB" get -p "$port" -b "$BULK_BYTES" ${4:+-t "$4"} >"$out" 2>"$out.err" ||
		fail "bulk $name: $(cat "$out.err") $(tail -n 3 "$T/gateway.log")"
	[ -n "$pid" ] && c1=$(ticks "$pid")
	l1=$(core "$CPU_LOAD")
	load=$(awk -v a="$l0" -v b="$l1" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2]) }')
	g=$(calc %.2f "$(sed -n 's/^mbps=//p' "$out") / 1000")
	cpu=$(calc %.3f "($c1 - $c0) / $CLK_TCK / ($BULK_BYTES / 1e9)")
	busy=$(calc %.0f "100 * ($c1 - $c0) / $CLK_TCK / $(sed -n 's/^seconds=//p' "$out")")
	if [ -n "$pid" ]; then
		echo "rdp.sh: bulk $name: $g GB/s, $cpu CPU-s/GB, relay busy $busy% of its core," \
			"client and backend core $load% busy" >&2
	else
		echo "rdp.sh: bulk $name: $g GB/s, client and backend core $load% busy" >&2
	fi
	if [ -z "${GBPS[$name]:-}" ] || awk -v a="${GBPS[$name]}" -v b="$g" 'BEGIN { exit !(b > a) }'; then
		GBPS[$name]=$g
		CPU[$name]=$cpu
		BUSY[$name]=$busy
		LOAD[$name]=$load
	fi
}
for _ in $(seq 1 "$REPEAT"); do
	bulk direct "$BULK_PORT" ""
	ticket bulk
	bulk gateway "$RDP_PORT" "$GW" "$TK"
	bulk haproxy "$HAP_PORT" "$HAP"
done
n=$(grep -c "disconnected (closed), [0-9]* up, $BULK_BYTES down, spliced" "$T/gateway.log")
[ "$n" = "$REPEAT" ] || fail "$n of $REPEAT gateway runs were spliced: $(grep disconnected "$T/gateway.log")"
grep -q "^cr [0-9]* Cookie: mstshash=alice$" "$T/bulk-backend.log" ||
	fail "the backend did not get the rewritten request: $(cat "$T/bulk-backend.log")"

# ---------------------------------------------------------------- first frame
# first_frame XFREERDP-ARGS...: "CONFIRM FRAME": ms from sending the X.224
# Connection Request to the Confirm, and from launch to the first painted
# update
first_frame() {
	local t0 t1='' tr='' tc='' line fd pid
	t0=$EPOCHREALTIME
	exec {fd}< <(DISPLAY=$XD exec stdbuf -oL timeout 20 xfreerdp /cert:ignore /size:800x600 \
		/u:demo /p:demo /log-filters:com.freerdp.core.nego:DEBUG,com.freerdp.client.x11:TRACE \
		"$@" 2>&1)
	pid=$!
	while IFS= read -r -u "$fd" line; do
		case $line in
		*"- RequestedProtocols: "*)
			tr=$EPOCHREALTIME
			;;
		*"- RDP_NEG_RSP")
			tc=$EPOCHREALTIME
			;;
		*"from xf_sw_end_paint"* | *"from xf_hw_end_paint"*)
			t1=$EPOCHREALTIME
			break
			;;
		esac
	done
	kill "$pid" 2>/dev/null
	exec {fd}<&-
	wait "$pid" 2>/dev/null
	[ -n "$t1" ] && [ -n "$tr" ] && [ -n "$tc" ] || return 1
	calc "%.1f %.0f" "(${tc/./} - ${tr/./}) / 1000, (${t1/./} - ${t0/./}) / 1000"
}
# One unrecorded round each: the first start of xfreerdp, xrdp and the
# gateway's broker connection.
first_frame "/v:127.0.0.1:$XRDP_PORT" >/dev/null || fail "xfreerdp painted nothing direct (warm-up)"
ticket rdesk
first_frame "/v:127.0.0.1:$RDP_PORT" "/load-balance-info:Cookie: msts=$TK" >/dev/null ||
	fail "xfreerdp painted nothing through the gateway (warm-up): $(tail -n 3 "$T/gateway.log")"
first_frame "/v:127.0.0.1:$HAPR_PORT" >/dev/null || fail "xfreerdp painted nothing through haproxy (warm-up)"
dc=() df=() gc=() gf=() hc=() hf=()
for _ in $(seq 1 "$ROUNDS"); do
	r=$(first_frame "/v:127.0.0.1:$XRDP_PORT") || fail "xfreerdp painted nothing direct"
	dc+=("${r% *}") df+=("${r#* }")
	ticket rdesk
	r=$(first_frame "/v:127.0.0.1:$RDP_PORT" "/load-balance-info:Cookie: msts=$TK") ||
		fail "xfreerdp painted nothing through the gateway: $(tail -n 3 "$T/gateway.log")"
	gc+=("${r% *}") gf+=("${r#* }")
	r=$(first_frame "/v:127.0.0.1:$HAPR_PORT") || fail "xfreerdp painted nothing through haproxy"
	hc+=("${r% *}") hf+=("${r#* }")
done
n=$(grep -c "connected to session .* at 127.0.0.1:$XRDP_PORT" "$T/gateway.log")
[ "$n" = $((ROUNDS + 1)) ] || fail "$n of $((ROUNDS + 1)) xfreerdp runs went through the gateway"
echo "rdp.sh: first frame direct (ms): ${df[*]}" >&2
echo "rdp.sh: first frame via the gateway (ms): ${gf[*]}" >&2
echo "rdp.sh: first frame via haproxy (ms): ${hf[*]}" >&2
echo "rdp.sh: connection request direct (ms): ${dc[*]}" >&2
echo "rdp.sh: connection request via the gateway (ms): ${gc[*]}" >&2
echo "rdp.sh: connection request via haproxy (ms): ${hc[*]}" >&2

# ---------------------------------------------------------------- report
echo
echo "gateway RDP benchmark: passthrough with a ticket beside $("$HAPROXY" -v | awk 'NR == 1 { print "haproxy " $3 }') (mode tcp)"
echo "bulk: $BULK_BYTES B backend->client on one connection, every byte checked; best of $REPEAT;" \
	"relays on core $CPU_RELAY, client and backend on core $CPU_LOAD; GB = 10^9 B"
echo "bulk GB/s, direct:                        ${GBPS[direct]} (client and backend core ${LOAD[direct]}% busy)"
echo "bulk GB/s, via gateway (splice):          ${GBPS[gateway]} ($(calc %.2f "${GBPS[gateway]} / ${GBPS[direct]}")x direct, $(calc %.2f "${GBPS[gateway]} / ${GBPS[haproxy]}")x haproxy; target >= 2; client and backend core ${LOAD[gateway]}% busy)"
echo "bulk GB/s, via haproxy (splice-auto):     ${GBPS[haproxy]} ($(calc %.2f "${GBPS[haproxy]} / ${GBPS[direct]}")x direct; client and backend core ${LOAD[haproxy]}% busy)"
echo "relay CPU-s/GB, gateway:                  ${CPU[gateway]} ($(calc %.2f "${CPU[gateway]} / ${CPU[haproxy]}")x haproxy; target < 1x); its core ${BUSY[gateway]}% busy"
echo "relay CPU-s/GB, haproxy:                  ${CPU[haproxy]}; its core ${BUSY[haproxy]}% busy"
pdf=$(p50 "${df[@]}") pgf=$(p50 "${gf[@]}") phf=$(p50 "${hf[@]}")
pdc=$(p50 "${dc[@]}") pgc=$(p50 "${gc[@]}") phc=$(p50 "${hc[@]}")
echo "first frame: ms from launching xfreerdp to its first painted update; connection request: ms from"
echo "xfreerdp sending the X.224 Connection Request to its reading the Confirm; xrdp vnc-any, TLS"
echo "security, $ROUNDS rounds per path, p50 (min-max)"
echo "first frame, direct:                      $pdf ms ($(min "${df[@]}")-$(max "${df[@]}"))"
echo "first frame, via gateway (ticket):        $pgf ms ($(min "${gf[@]}")-$(max "${gf[@]}")); $(calc %+.0f "$pgf - $pdf") ms; target <= +50"
echo "first frame, via haproxy (mode tcp):      $phf ms ($(min "${hf[@]}")-$(max "${hf[@]}")); $(calc %+.0f "$phf - $pdf") ms"
echo "connection request, direct:               $pdc ms ($(min "${dc[@]}")-$(max "${dc[@]}"))"
echo "connection request, via gateway:          $pgc ms ($(min "${gc[@]}")-$(max "${gc[@]}")); $(calc %+.1f "$pgc - $pdc") ms"
echo "connection request, via haproxy:          $phc ms ($(min "${hc[@]}")-$(max "${hc[@]}")); $(calc %+.1f "$phc - $pdc") ms"
