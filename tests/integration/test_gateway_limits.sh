#!/bin/bash
# portico-gateway's limits with real pieces.
#  - Started under `prlimit --nofile=256:256`, it clamps max_connections to
#    what 256 descriptors allow (8 per relayed session, 6 more per RDP login
#    step, 64 besides: (256 - 64 - 6*4) / 8 = 21) and says so; connection 22
#    is closed at once, the first 21 are served, one of them a real session
#    through libvncclient to a real Xvnc, and nothing fails for want of a
#    descriptor.
#  - Per-source caps on connections that have not logged in
#    (max_pending_per_addr): one IPv4 address, or one IPv6 /64, VNC and RDP
#    together, from addresses of a private network namespace (unshare -n):
#    a source at its cap does not keep another from connecting.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
PROBE=$BUILD/tests/tools/vnc-probe
[ "$(id -u)" = 0 ] || fail "needs root (unshare -n, addresses on its loopback); CI runs as root"

be_setup
GW_PORT=$(free_port)
RDP_PORT=$(free_port)
XPORT=$(free_port)
be_gateway_conf "$GW_PORT" "$RDP_PORT" public_host=gateway.test user=nobody rdp_max_logins=4 \
	max_pending_per_addr=1000 handshake_timeout=60s
be_conf_append "
[pool limits]
driver = static
hosts = 127.0.0.1:$XPORT
users = alice"
Xvnc -displayfd 1 -interface 127.0.0.1 -rfbport "$XPORT" -SecurityTypes None \
	-geometry 320x240 -nolisten tcp >"$T/xvnc.display" 2>"$T/xvnc.log" &
XVNC_PID=$!
be_start
cleanup() {
	kill $GW_PID $XVNC_PID ${PROBE_PID:-} ${KEEP_PID:-} 2>/dev/null
	wait $GW_PID 2>/dev/null
	be_cleanup
}
trap cleanup EXIT

# --- max_connections clamped to the open-file limit ------------------------------------
prlimit --nofile=256:256 "$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
for _ in $(seq 1 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null && break
	sleep 0.1
done
# (The VNC listener is up before the line is written: wait for it.)
for _ in $(seq 1 50); do
	grep -q "max_connections: 21 (open-file limit 256" "$T/gateway.log" && break
	sleep 0.1
done
grep -q "max_connections: 21 (open-file limit 256, 8 per connection); raise LimitNOFILE= to allow 10000" \
	"$T/gateway.log" || fail "no line for the clamped max_connections: $(cat "$T/gateway.log")"
H="python3 tests/tools/rfb-hostile.py 127.0.0.1 $GW_PORT"
r=$($H cap 21)
[ "$r" = "21 served, then closed" ] || fail "max_connections 21: $r"
grep -q "vnc 127.0.0.1: too many connections (max_connections): refused" "$T/gateway.log" ||
	fail "no line for the refused connection"
echo "ok: 256 descriptors: max_connections 21, the 22nd closed at once"
# 20 silent ones and a real session: the cap is full, VNC and RDP alike.
sleep 0.5
$H keep 20 127.0.0.1 45 >"$T/keep.out" &
KEEP_PID=$!
sleep 2
"$PROBE" -w -u "alice#limits" -C "$T/pki/ca.pem" "127.0.0.1:$GW_PORT" alice-pw >"$T/probe.out" 2>&1 &
PROBE_PID=$!
for _ in $(seq 1 100); do
	grep -q connected "$T/probe.out" && break
	sleep 0.1
done
grep -q connected "$T/probe.out" || fail "a session within the cap: $(cat "$T/probe.out") $(grep -v "handshake timed out" "$T/gateway.log" | tail -5)"
r=$($H cap 0)
[ "$r" = "0 served, then closed" ] || fail "a VNC connection over the cap: $r"
r=$(python3 tests/tools/rdp-hostile.py 127.0.0.1 $RDP_PORT hold 0)
[ "$r" = "the next one closed at once" ] || fail "an RDP connection over the cap: $r"
kill $PROBE_PID
wait $PROBE_PID 2>/dev/null
PROBE_PID=
sleep 0.5
r=$($H cap 0)
[ "$r" = "0 served, then banner" ] || fail "a slot freed by the session's end: $r"
kill $KEEP_PID 2>/dev/null
wait $KEEP_PID 2>/dev/null
grep -qi "too many open files\|cannot accept" "$T/gateway.log" && fail "the gateway ran out of descriptors: $(grep -i "too many open\|cannot accept" "$T/gateway.log" | head -3)"
kill -0 $GW_PID || fail "the gateway died"
kill -TERM $GW_PID
wait $GW_PID
rc=$?
[ $rc = 0 ] || fail "the gateway stopped with $rc: $(tail -5 "$T/gateway.log")"
grep -q "session .* disconnected" "$T/gateway.log" || fail "no disconnect line for the session"
tail -1 "$T/gateway.log" | grep -q "stopped" || fail "not stopped cleanly: $(tail -3 "$T/gateway.log")"
echo "ok: a session at the cap, VNC and RDP refused over it, a freed slot taken again"

# --- per-source caps, from addresses of a private network --------------------------------
sed -e "s|^vnc_listen = .*|vnc_listen = [::]:$GW_PORT|" -e "s|^rdp_listen = .*|rdp_listen = [::]:$RDP_PORT|" \
	-e "s|^max_pending_per_addr = .*|max_pending_per_addr = 5|" "$T/portico.conf" >"$T/ns.conf"
cat >"$T/ns.sh" <<NS
set -u
fail() { echo "FAIL: \$*"; exit 1; }
ip link set lo up
for a in 2001:db8:0:1::1 2001:db8:0:1::2 2001:db8:0:2::1; do ip -6 addr add \$a/64 dev lo nodad; done
"$BUILD/bin/portico-gateway" -c "$T/ns.conf" >>"$T/ns-gateway.log" 2>&1 &
GW=\$!
trap 'kill \$GW 2>/dev/null; wait \$GW 2>/dev/null' EXIT
for _ in \$(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$GW_PORT) 2>/dev/null && break; sleep 0.1; done
V4="python3 tests/tools/rfb-hostile.py 127.0.0.1 $GW_PORT"
V6="python3 tests/tools/rfb-hostile.py 2001:db8:0:1::1 $GW_PORT"
R6="python3 tests/tools/rdp-hostile.py 2001:db8:0:1::1 $RDP_PORT"
# One IPv4 address: 5, the sixth refused; another address is not.
r=\$(\$V4 hold 5 127.0.0.2)
[ "\$r" = closed ] || fail "the sixth from 127.0.0.2: \$r"
r=\$(\$V4 hold 5 127.0.0.2 127.0.0.3)
[ "\$r" = banner ] || fail "127.0.0.3 while 127.0.0.2 is at its cap: \$r"
echo "ok: per IPv4 address"
# One IPv6 /64: two addresses of it share the cap; another /64 does not.
r=\$(\$V6 hold 5 2001:db8:0:1::1 2001:db8:0:1::2)
[ "\$r" = closed ] || fail "a second address of the same /64: \$r"
r=\$(\$V6 hold 5 2001:db8:0:1::1 2001:db8:0:2::1)
[ "\$r" = banner ] || fail "another /64 while the first is at its cap: \$r"
echo "ok: per IPv6 /64"
# VNC and RDP count together.
\$V6 keep 3 2001:db8:0:1::2 4 >/dev/null &
K=\$!
sleep 1.5
r=\$(\$R6 hold 2 2001:db8:0:1::1)
[ "\$r" = "the next one closed at once" ] || fail "RDP after 3 VNC and 2 RDP from one /64: \$r"
r=\$(\$R6 hold 0 2001:db8:0:2::1)
[ "\$r" = "the next one kept" ] || fail "RDP from another /64: \$r"
wait \$K
# All let go: the count is back to zero.
sleep 0.5
r=\$(\$V6 hold 4 2001:db8:0:1::2)
[ "\$r" = banner ] || fail "the /64's count after its connections left: \$r"
grep -q "vnc 2001:db8:0:1::2: too many connections (max_pending_per_addr): refused" "$T/ns-gateway.log" ||
	fail "no line for a refusal per source"
grep -q "rdp 2001:db8:0:1::1: too many connections (max_pending_per_addr): refused" "$T/ns-gateway.log" ||
	fail "no line for an RDP refusal per source"
kill -0 \$GW || fail "the gateway died"
echo "ok: VNC and RDP together per source"
NS
unshare -n bash "$T/ns.sh" || fail "per-source caps: $(tail -5 "$T/ns-gateway.log")"
echo "ok: gateway limits"
