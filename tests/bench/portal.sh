#!/bin/bash
# portal.sh - browser sign-in to first noVNC frame through the gateway's
# HTTPS front (run by make bench), beside a native VNC client's login to
# first frame through the gateway's VNC listener, in the same run; figures
# and ratios, never a verdict.
#
#   BUILD=build tests/bench/portal.sh
#
# A real broker (PAM through pam_wrapper + pam_matrix), a static pool on a
# real Xvnc with an xterm on it (so that a first frame is not all black),
# the gateway with https_listen (the portal, noVNC, /ws/vnc) and
# vnc_listen.
#  - browser: Debian's Chromium, headless, driven by playwright-core
#    (tests/web/bench-first-frame.mjs, which says exactly what it times):
#    a fresh browser context each round (no cookies, no cache), after one
#    unrecorded round.  What the user waits for, in three parts: loading
#    the portal's page up to the sign-in form; from clicking "Sign in"
#    (the fields filled in before: typing is not counted) to the resource
#    listed; from clicking the VNC resource (desktop.html, noVNC's
#    modules, the launch, /ws/vnc, RFB through the gateway, the first
#    update) to the first noVNC frame on the canvas that is not all black;
#    and their sum;
#  - native: tests/tools/vnc-probe (libvncclient) on the gateway's VNC
#    listener, VeNCrypt X509Plain with user "alice#desk" and the password
#    (PAM at the broker, the launch, the redeem, the backend's handshake),
#    from launching the probe to its first framebuffer update (-1); the
#    client a user of a VNC viewer has, the peer of the browser's path;
#  - direct: the same probe straight to Xvnc (no gateway, no login): the
#    floor.
# Native and direct run after each browser round (taking turns).  Printed:
# p50 and p95 (nearest rank) of each, and the browser's over native's.
#
# Environment (defaults in brackets):
#   BUILD        build directory [build]
#   ROUNDS       recorded rounds [20]
#   NODE         node (Node.js 20) [node]
#   PT_TRACE     1: the browser's driver prints where each round's wait went
#                (see tests/web/bench-first-frame.mjs; not for the figures)
#   KEEP_TMP     1 keeps the temporary directory (configs, logs)
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-20}
NODE=${NODE:-node}
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh # wait_for, PROBE
. tests/integration/xrdp_env.sh     # xrdp_vnc_desktop

for x in "$BUILD/bin/portico-gateway" "$BUILD/bin/portico-broker" "$PROBE"; do
	[ -x "$x" ] || { echo "portal.sh: $x is not built (make BUILD=$BUILD all $PROBE)" >&2; exit 1; }
done
command -v "$NODE" >/dev/null || { echo "portal.sh: node (Node.js 20) is needed" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "portal.sh: /usr/bin/chromium is needed: make deps" >&2; exit 1; }
[ -f /usr/share/novnc/core/rfb.js ] || { echo "portal.sh: Debian's noVNC is needed: make deps" >&2; exit 1; }
[ -d tests/web/node_modules/playwright-core ] ||
	{ echo "portal.sh: playwright-core is not installed: make deps (npm ci in tests/web)" >&2; exit 1; }
for x in Xvnc xterm; do
	command -v "$x" >/dev/null || { echo "portal.sh: $x is not installed (make deps)" >&2; exit 1; }
done

PIDS=()
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
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
# pct P VALUES...: the P-th percentile, nearest rank
pct() {
	local p=$1
	shift
	printf '%s\n' "$@" | sort -n | awk -v p="$p" '{ v[NR] = $1 } END { r = int((p * NR + 99) / 100); if (r < 1) r = 1; print v[r] }'
}

be_setup
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
HP=$(free_port)
VP=$(free_port)
XPORT=$(free_port)
be_gateway_conf "$VP" - user=nobody "https_listen=127.0.0.1:$HP"
be_conf_append "
[pool desk]
driver = static
hosts = 127.0.0.1:$XPORT
users = alice"
xrdp_vnc_desktop "$XPORT"
PIDS+=("$XVNC" "$XTERM")
be_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW=$!
PIDS+=("$GW")
wait_for 5 listens "$HP" || fail "the gateway's HTTPS front does not listen: $(tail -5 "$T/gateway.log")"
wait_for 5 listens "$VP" || fail "the gateway's VNC listener does not listen: $(tail -5 "$T/gateway.log")"
wait_for 5 listens "$XPORT" || fail "Xvnc does not listen: $(cat "$T/xvnc.log")"

# The peer, run by the browser's driver after each of its rounds: each
# probe timed from its launch to its exit after the first update.
probe_abs=$PROBE
[ "${probe_abs#/}" = "$probe_abs" ] && probe_abs=$PWD/$probe_abs
cat >"$T/peer.sh" <<EOF
#!/bin/bash
us() { echo \$((\$(date +%s%N) / 1000)); }
t=\$(us)
"$probe_abs" -1 -u "alice#desk" -C "$T/pki/ca.pem" "127.0.0.1:$VP" alice-pw >"$T/native.out" 2>&1 ||
	{ echo "native: \$(cat "$T/native.out")" >&2; exit 1; }
n=\$((\$(us) - t))
t=\$(us)
"$probe_abs" -1 "127.0.0.1:$XPORT" "" >"$T/direct.out" 2>&1 || { echo "direct: \$(cat "$T/direct.out")" >&2; exit 1; }
d=\$((\$(us) - t))
awk -v n="\$n" -v d="\$d" 'BEGIN { printf "native=%.1f direct=%.1f\n", n / 1000, d / 1000 }'
EOF
chmod 755 "$T/peer.sh"

PT_URL=https://127.0.0.1:$HP PT_USER=alice PT_PASSWORD=alice-pw PT_VNC=desk PT_ROUNDS=$ROUNDS \
	PT_PEER=$T/peer.sh timeout $((120 + 30 * ROUNDS)) "$NODE" tests/web/bench-first-frame.mjs >"$T/browser.out" 2>&1
rc=$?
sed 's/^/portal.sh: /' "$T/browser.out" >&2
[ "$rc" = 0 ] || fail "the browser's rounds failed (exit $rc): $(tail -n 3 "$T/gateway.log")"
n=$(grep -c '^round [0-9]' "$T/browser.out")
[ "$n" = "$ROUNDS" ] || fail "$n of $ROUNDS rounds recorded"
# Every round went through the gateway: the browser's and the probe's.
n=$(grep -c "vnc 127.0.0.1 user alice: connected to session" "$T/gateway.log")
[ "$n" = $((2 * (ROUNDS + 1))) ] || fail "$n of $((2 * (ROUNDS + 1))) sessions connected through the gateway"

col() { sed -n "s/^round [0-9][0-9]* .*\\b$1=\\([0-9.]*\\).*/\\1/p" "$T/browser.out"; }
mapfile -t total < <(col total)
mapfile -t form < <(col form)
mapfile -t signin < <(col signin)
mapfile -t frame < <(col frame)
mapfile -t native < <(col native)
mapfile -t direct < <(col direct)
draws=$(grep -c '^round [0-9].* src=draw' "$T/browser.out")
size=$(sed -n 's/^round [0-9].* size=\([0-9x]*\).*/\1/p' "$T/browser.out" | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')

fig() { # LABEL ARRAY-NAME: "p50 A ms, p95 B ms"
	local -n a=$2
	printf '%-44s p50 %s ms, p95 %s ms\n' "$1" "$(pct 50 "${a[@]}")" "$(pct 95 "${a[@]}")"
}
tp50=$(pct 50 "${total[@]}") tp95=$(pct 95 "${total[@]}")
fp50=$(pct 50 "${frame[@]}") fp95=$(pct 95 "${frame[@]}")
np50=$(pct 50 "${native[@]}") np95=$(pct 95 "${native[@]}")
echo
echo "gateway HTTPS front: browser sign-in to first noVNC frame beside a native VNC client's login to"
echo "first frame, both through the gateway; $ROUNDS rounds each after one unrecorded, taking turns;"
echo "Chromium $(/usr/bin/chromium --version 2>/dev/null | awk '{ print $2 }') headless, a fresh context per round;" \
	"noVNC $(dpkg-query -W -f='${Version}' novnc 2>/dev/null); Xvnc with an xterm, $size;" \
	"first frame seen at noVNC's draw in $draws of $ROUNDS rounds (else by the 100 ms poll)"
fig "browser, the user's waits (sum):" total
fig "  page load to sign-in form:" form
fig "  sign-in click (PAM) to resource listed:" signin
fig "  resource click to first frame:" frame
fig "native VNC client via the gateway (login):" native
fig "direct to Xvnc (no gateway, no login):" direct
echo "browser / native, the user's waits:          p50 $(calc %.1f "$tp50 / $np50")x, p95 $(calc %.1f "$tp95 / $np95")x" \
	"($(calc %+.0f "$tp50 - $np50") ms at p50)"
echo "browser click-to-frame / native:             p50 $(calc %.1f "$fp50 / $np50")x, p95 $(calc %.1f "$fp95 / $np95")x" \
	"($(calc %+.0f "$fp50 - $np50") ms at p50)"
