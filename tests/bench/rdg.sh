#!/bin/bash
# rdg.sh - the gateway's RD Gateway bulk benchmark (run by make bench):
# the same bulk stream through the RD Gateway on https_listen and through
# the plain RDP passthrough of the same gateway, with peers measured in the
# same run; figures and ratios, never a verdict.
#
#   BUILD=build tests/bench/rdg.sh
#
# The backend is build/bench/rdp-bulk serve (the pool's one static host):
# it reads an X.224 Connection Request, then sends BULK_BYTES, byte i being
# 1 + i % 251; every client checks every byte and the count.  Paths:
#  - direct: rdp-bulk get straight to the backend (the client's ceiling);
#  - passthrough: rdp-bulk get on rdp_listen with "Cookie: msts=<ticket>"
#    (a ticket from POST launch per run): redeem, backend connect, splice;
#  - RD Gateway, WebSocket: build/bench/rdg-bulk ws on https_listen, as
#    xfreerdp 2.11 does it (docs/rdg.md): TLS, RDG_OUT_DATA with the
#    Upgrade, HANDSHAKE_REQUEST, TUNNEL_CREATE with the PAA cookie = the
#    gatewayaccesstoken of launch.rdp (fetched per run), TUNNEL_AUTH,
#    CHANNEL_CREATE to the file's "full address", then DATA: the
#    Connection Request out, the stream back in DATA packets in binary
#    frames in TLS;
#  - RD Gateway, legacy HTTP: rdg-bulk http, the same over RDG_OUT_DATA
#    (200 and the seed, then the packets) and a chunked RDG_IN_DATA;
#  - TLS relay: rdg-bulk tls through build/bench/relay-bench, libportico's
#    TLS stream and relay as the gateway runs them (relay.sh), on the
#    gateway's certificate: TLS ended and relayed plain, no tunnel.  The
#    RD Gateway does that plus the framing (WebSocket or HTTP, RDG DATA
#    packets), so the ratio of the two is what the framing costs;
#  - haproxy TLS: the same through haproxy (mode tcp, nbthread 1,
#    "bind ... ssl crt", the gateway's certificate and TLS 1.3 suites): a
#    mature relay's price for TLS alone.
# Figures: GB/s (first payload byte to the last), relay CPU seconds per GB
# (utime+stime of the gateway or haproxy process from /proc/PID/stat around
# the whole client run: TLS handshake, HTTP, the redeem, the tunnel), the
# relay's core busy, the client's and backend's core busy, and setup ms
# (TCP connect to the first payload byte).  The relays run on core
# CPU_RELAY, client and backend on CPU_LOAD; the paths take turns, REPEAT
# runs each; GB/s and the busy figures are the fastest run's, CPU-s/GB and
# setup the lowest of the runs (a neighbour on the shared cores only ever
# raises them).  The broker (which redeems tickets) is not pinned
# and not counted.
#
# Environment (defaults in brackets):
#   BUILD        build directory [build]
#   BULK_BYTES   bytes per bulk run [2000000000]
#   REPEAT       bulk runs per path; the best counts [3]
#   CPU_RELAY    core for the gateway and haproxy [0]
#   CPU_LOAD     core for the clients and the backend [1]
#   KEEP_TMP     1 keeps the temporary directory (configs, logs)
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
BULK_BYTES=${BULK_BYTES:-2000000000}
REPEAT=${REPEAT:-3}
CPU_RELAY=${CPU_RELAY:-0}
CPU_LOAD=${CPU_LOAD:-1}
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh # wait_for
RB=$BUILD/bench/rdp-bulk
RG=$BUILD/bench/rdg-bulk
RLB=$BUILD/bench/relay-bench

PIDS=() # killed at exit, in reverse order
cleanup() {
	local i
	trap - EXIT INT TERM
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill "${PIDS[i]}" 2>/dev/null
	done
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		wait "${PIDS[i]}" 2>/dev/null
	done
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

for x in "$RB" "$RG" "$RLB" "$BUILD/bin/portico-gateway" "$BUILD/bin/portico-broker"; do
	[ -x "$x" ] || { echo "rdg.sh: $x is not built (make BUILD=$BUILD all)" >&2; exit 1; }
done
HAPROXY=$(PATH=$PATH:/usr/sbin:/sbin command -v haproxy) || { echo "rdg.sh: haproxy is not installed (make deps)" >&2; exit 1; }
for x in taskset jq curl; do
	command -v "$x" >/dev/null || { echo "rdg.sh: $x is not installed (make deps)" >&2; exit 1; }
done
CLK_TCK=$(getconf CLK_TCK)

be_setup
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
RDP_PORT=$(free_port)
HTTPS_PORT=$(free_port)
BULK_PORT=$(free_port)
HAP_PORT=$(free_port)
RLB_PORT=$(free_port)
be_gateway_conf - "$RDP_PORT" user=portico "https_listen=127.0.0.1:$HTTPS_PORT"
be_conf_append "
[pool bulk]
kind = desktop
protocol = rdp
driver = static
hosts = 127.0.0.1:$BULK_PORT
users = alice"
be_start

taskset -c "$CPU_LOAD" "$RB" serve -p "$BULK_PORT" -b "$BULK_BYTES" 2>"$T/bulk-backend.log" &
PIDS+=("$!")
# The gateway drops to "portico", a user of the test's nss_wrapper world.
# It makes [tls] cert ($T/tls/rdp.pem, self-signed for public_host) at
# start: what browsers and RD Gateway clients see.
taskset -c "$CPU_RELAY" env LD_PRELOAD="$NSS_WRAPPER_LIB" NSS_WRAPPER_PASSWD="$T/passwd" \
	NSS_WRAPPER_GROUP="$T/group" NSS_WRAPPER_DISABLE_DEEPBIND=1 \
	"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW=$!
PIDS+=("$GW")
wait_for 5 listens "$HTTPS_PORT" || fail "the gateway does not listen on HTTPS: $(cat "$T/gateway.log")"
wait_for 5 listens "$RDP_PORT" || fail "the gateway does not listen on RDP: $(cat "$T/gateway.log")"
wait_for 5 listens "$BULK_PORT" || fail "rdp-bulk does not listen: $(cat "$T/bulk-backend.log")"
CA=$T/tls/rdp.pem
# haproxy on the gateway's own certificate and TLS 1.3 suites (etc/portico.conf's
# defaults, server preference on both), so both TLS relays do the same TLS.
cat "$T/tls/rdp.pem" "$T/tls/rdp.key" >"$T/haproxy.pem"
cat >"$T/haproxy.cfg" <<EOF
global
    nbthread 1
    tune.bufsize 16384
    tune.ssl.cachesize 0
    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    mode tcp
    timeout connect 5s
    timeout client 10m
    timeout server 10m

frontend fe
    bind 127.0.0.1:$HAP_PORT ssl crt $T/haproxy.pem
    default_backend be

backend be
    server backend 127.0.0.1:$BULK_PORT
EOF
taskset -c "$CPU_RELAY" "$HAPROXY" -f "$T/haproxy.cfg" -db >"$T/haproxy.log" 2>&1 &
HAP=$!
PIDS+=("$HAP")
wait_for 5 listens "$HAP_PORT" || fail "haproxy does not listen: $(cat "$T/haproxy.log")"
taskset -c "$CPU_RELAY" "$RLB" -l "$RLB_PORT" -b "$BULK_PORT" --cert "$T/tls/rdp.pem" \
	--key "$T/tls/rdp.key" >"$T/relay-bench.log" 2>&1 &
RLBP=$!
PIDS+=("$RLBP")
wait_for 5 listens "$RLB_PORT" || fail "relay-bench does not listen: $(cat "$T/relay-bench.log")"
ALICE=$(login alice alice-pw)
[ -n "$ALICE" ] || fail "alice cannot log in"

# A fresh ticket for each run, as a user's client would hold: the launch
# answer's for the passthrough, the .rdp file's gatewayaccesstoken and
# full address for the RD Gateway.
ticket() { # TK
	api POST /resources/bulk/launch "" "$ALICE" >/dev/null
	TK=$(jq -r '.ticket // empty' "$T/out")
	[ ${#TK} = 43 ] || fail "no ticket in the launch answer: $(cat "$T/out")"
}
rdp_file() { # TK, TARGET
	api GET /resources/bulk/launch.rdp "" "$ALICE" >/dev/null
	TK=$(sed -n 's/^gatewayaccesstoken:s:\(.*\)\r$/\1/p' "$T/out")
	TARGET=$(sed -n 's/^full address:s:\(.*\)\r$/\1/p' "$T/out")
	[ ${#TK} = 43 ] && [ -n "$TARGET" ] || fail "no RD Gateway token in the .rdp file: $(cat "$T/out")"
}

# ---------------------------------------------------------------- bulk
declare -A GBPS CPU BUSY LOAD SETUP CIPHER
bulk() { # NAME RELAY-PID COMMAND...
	local name=$1 pid=$2 c0=0 c1=0 out=$T/bulk-$1.out g cpu busy l0 l1 load s
	shift 2
	[ -n "$pid" ] && c0=$(ticks "$pid")
	l0=$(core "$CPU_LOAD")
	taskset -c "$CPU_LOAD" "$@" >"$out" 2>"$out.err" ||
		fail "bulk $name: $(cat "$out.err") $(tail -n 3 "$T/gateway.log")"
	[ -n "$pid" ] && c1=$(ticks "$pid")
	l1=$(core "$CPU_LOAD")
	load=$(awk -v a="$l0" -v b="$l1" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2]) }')
	g=$(calc %.2f "$(sed -n 's/^mbps=//p' "$out") / 1000")
	cpu=$(calc %.3f "($c1 - $c0) / $CLK_TCK / ($BULK_BYTES / 1e9)")
	busy=$(calc %.0f "100 * ($c1 - $c0) / $CLK_TCK / $(sed -n 's/^seconds=//p' "$out")")
	s=$(sed -n 's/^setup_ms=//p' "$out")
	if [ -n "$pid" ]; then
		echo "rdg.sh: bulk $name: $g GB/s, $cpu CPU-s/GB, relay busy $busy% of its core," \
			"client and backend core $load% busy, setup $s ms" >&2
	else
		echo "rdg.sh: bulk $name: $g GB/s, client and backend core $load% busy, setup $s ms" >&2
	fi
	if [ -z "${GBPS[$name]:-}" ] || awk -v a="${GBPS[$name]}" -v b="$g" 'BEGIN { exit !(b > a) }'; then
		GBPS[$name]=$g
		BUSY[$name]=$busy
		LOAD[$name]=$load
		CIPHER[$name]=$(sed -n 's/^cipher=//p' "$out")
	fi
	# The lowest CPU per GB and setup of the runs, each on its own: what
	# another process on the shared cores adds only ever raises them.
	if [ -z "${CPU[$name]:-}" ] || awk -v a="${CPU[$name]}" -v b="$cpu" 'BEGIN { exit !(b < a) }'; then
		CPU[$name]=$cpu
	fi
	if [ -z "${SETUP[$name]:-}" ] || awk -v a="${SETUP[$name]}" -v b="$s" 'BEGIN { exit !(b < a) }'; then
		SETUP[$name]=$s
	fi
}
for _ in $(seq 1 "$REPEAT"); do
	bulk direct "" "$RB" get -p "$BULK_PORT" -b "$BULK_BYTES"
	ticket
	bulk passthrough "$GW" "$RB" get -p "$RDP_PORT" -b "$BULK_BYTES" -t "$TK"
	rdp_file
	bulk rdg-ws "$GW" "$RG" ws -p "$HTTPS_PORT" -b "$BULK_BYTES" -t "$TK" -T "$TARGET" -C "$CA"
	rdp_file
	bulk rdg-http "$GW" "$RG" http -p "$HTTPS_PORT" -b "$BULK_BYTES" -t "$TK" -T "$TARGET" -C "$CA"
	bulk tls-relay "$RLBP" "$RG" tls -p "$RLB_PORT" -b "$BULK_BYTES" -C "$CA"
	bulk haproxy-tls "$HAP" "$RG" tls -p "$HAP_PORT" -b "$BULK_BYTES" -C "$CA"
done
# What the gateway says it carried: every run relayed whole, the
# passthrough spliced, the tunnels through the RD Gateway's relay.
n=$(grep -c "rdp 127.0.0.1 user alice: session [0-9]* disconnected (closed), [0-9]* up, $BULK_BYTES down, spliced" "$T/gateway.log")
[ "$n" = "$REPEAT" ] || fail "$n of $REPEAT passthrough runs were spliced: $(grep disconnected "$T/gateway.log")"
n=$(grep -c "rdg 127.0.0.1 user alice: session [0-9]* disconnected (closed), [0-9]* up, $BULK_BYTES down$" "$T/gateway.log")
[ "$n" = $((2 * REPEAT)) ] || fail "$n of $((2 * REPEAT)) RD Gateway runs were relayed whole: $(grep disconnected "$T/gateway.log")"
n=$(grep -c "^cr [0-9]* Cookie: mstshash=" "$T/bulk-backend.log")
[ "$n" = $((6 * REPEAT)) ] || fail "the backend took $n Connection Requests, not $((6 * REPEAT)): $(cat "$T/bulk-backend.log")"

# ---------------------------------------------------------------- report
r() { calc %.2f "$1 / $2"; }
vs() { # NAME FIGURE-ARRAY: "Ax passthrough, Bx TLS relay, Cx haproxy TLS"
	local -n f=$2
	echo "$(r "${f[$1]}" "${f[passthrough]}")x passthrough, $(r "${f[$1]}" "${f[tls-relay]}")x TLS relay, $(r "${f[$1]}" "${f[haproxy-tls]}")x haproxy TLS"
}
echo
echo "gateway RD Gateway benchmark: the tunnel (WebSocket and legacy HTTP transports) beside the RDP"
echo "passthrough of the same gateway, libportico's TLS relay (relay-bench) and $("$HAPROXY" -v | awk 'NR == 1 { print "haproxy " $3 }') ending TLS"
echo "bulk: $BULK_BYTES B backend->client on one connection, every byte checked; best of $REPEAT" \
	"(GB/s: the fastest run; CPU-s/GB: the lowest);" \
	"relays on core $CPU_RELAY, client and backend on core $CPU_LOAD; GB = 10^9 B;" \
	"TLS: ${CIPHER[rdg-ws]} (gateway), ${CIPHER[tls-relay]} (TLS relay), ${CIPHER[haproxy-tls]} (haproxy)"
echo "bulk GB/s, direct:                          ${GBPS[direct]} (client and backend core ${LOAD[direct]}% busy)"
echo "bulk GB/s, passthrough (splice):            ${GBPS[passthrough]} ($(r "${GBPS[passthrough]}" "${GBPS[direct]}")x direct; client and backend core ${LOAD[passthrough]}% busy)"
echo "bulk GB/s, RD Gateway WebSocket:            ${GBPS[rdg-ws]} ($(vs rdg-ws GBPS); client and backend core ${LOAD[rdg-ws]}% busy)"
echo "bulk GB/s, RD Gateway legacy HTTP:          ${GBPS[rdg-http]} ($(vs rdg-http GBPS); client and backend core ${LOAD[rdg-http]}% busy)"
echo "bulk GB/s, TLS relay (no tunnel):           ${GBPS[tls-relay]} (client and backend core ${LOAD[tls-relay]}% busy)"
echo "bulk GB/s, haproxy TLS (no tunnel):         ${GBPS[haproxy-tls]} (client and backend core ${LOAD[haproxy-tls]}% busy)"
echo "relay CPU-s/GB, passthrough:                ${CPU[passthrough]}; its core ${BUSY[passthrough]}% busy"
echo "relay CPU-s/GB, RD Gateway WebSocket:       ${CPU[rdg-ws]} ($(vs rdg-ws CPU)); its core ${BUSY[rdg-ws]}% busy"
echo "relay CPU-s/GB, RD Gateway legacy HTTP:     ${CPU[rdg-http]} ($(vs rdg-http CPU)); its core ${BUSY[rdg-http]}% busy"
echo "relay CPU-s/GB, TLS relay (no tunnel):      ${CPU[tls-relay]}; its core ${BUSY[tls-relay]}% busy"
echo "relay CPU-s/GB, haproxy TLS (no tunnel):    ${CPU[haproxy-tls]}; its core ${BUSY[haproxy-tls]}% busy"
echo "setup ms (connect to first byte, lowest of $REPEAT): direct ${SETUP[direct]}, passthrough ${SETUP[passthrough]}," \
	"RD Gateway WebSocket ${SETUP[rdg-ws]}, legacy HTTP ${SETUP[rdg-http]}, TLS relay ${SETUP[tls-relay]}, haproxy TLS ${SETUP[haproxy-tls]}"
