#!/bin/bash
# make demo's script: it starts the whole system on loopback, its nodes
# trusting each other by their certificates alone (no shared secret), a
# real VNC client reaches the demo's desktop and application through the
# gateway with the printed password, and Ctrl-C (SIGINT) stops everything
# and removes what it made.  A sanitizer report in any daemon's output
# fails it (lib.sh), and it cannot hang: a demo that does not stop within
# DEMO_STOP_GRACE (30 s) of Ctrl-C fails it, and is then killed with all
# it started.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
BUILD=${BUILD:-build}
GRACE=${DEMO_STOP_GRACE:-30}
fail() { echo "FAIL: $*"; [ -f "${OUT:-}" ] && tail -20 "$OUT" | sed 's/^/  demo: /'; exit 1; }
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
OUT=$(mktemp)
DIR=/tmp/portico-demo-test.$$
VP=$(free_port)
RP=$(free_port)
HP=$(free_port)
# A background job of a script starts with SIGINT ignored, and bash cannot
# trap a signal ignored on entry: restore it, as a terminal's Ctrl-C finds it.
DEMO_BROKER_PORT=$(free_port) DEMO_SESSIOND_PORT=$(free_port) DEMO_VNC_PORT=$VP DEMO_RDP_PORT=$RP DEMO_HTTPS_PORT=$HP DEMO_XRDP_PORT=$(free_port) DEMO_DIR=$DIR \
	python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])' \
	bash etc/demo.sh >"$OUT" 2>&1 &
DEMO=$!
Xvfb -displayfd 1 -screen 0 1024x768x24 -nolisten tcp >"$OUT.xvfb" 2>/dev/null &
XVFB=$!
# Whatever happened: the demo stopped (SIGKILL to it and all it started
# after the grace period), its output read for sanitizer reports.
demo_down() {
	kill $XVFB 2>/dev/null
	if [ -n "$DEMO" ]; then
		pt_stop "$DEMO" "the demo" $((GRACE + 15))
		pkill -KILL -f "$DIR/portico.conf"
		pkill -KILL -f "$DIR/xrdp.ini"
		pkill -KILL -U 64991
		rm -rf "$DIR"
	fi
	pt_san_scan "$OUT" || PT_FAILED_LATER=1
	rm -f "$OUT" "$OUT".*
}
trap demo_down EXIT
for _ in $(seq 1 100); do grep -q "Portico is running" "$OUT" && break; sleep 0.1; done
grep -q "Portico is running" "$OUT" || fail "the demo did not start"
PW=$(sed -n 's/.*user         demo   password \([^ ]*\) .*/\1/p' "$OUT")
[ ${#PW} -ge 8 ] || fail "no password printed"
# Per-node certificates, as in production: no secret in the configuration,
# so everything below (a gateway's calls, the session host's) rides on them.
grep -E "^[a-z_]*secret *=" "$DIR/portico.conf" && fail "the demo configures a shared secret"
grep -q "^gateways = gw1$" "$DIR/portico.conf" || fail "the demo names no gateway by certificate"
grep -q "xtigervncviewer -SecurityTypes X509Plain -X509CA $DIR/pki/ca.pem 127.0.0.1::$VP" "$OUT" ||
	fail "the printed viewer command"
# The printed portal serves its sign-in page, with the printed certificate.
url=$(sed -n 's|.*web portal   \(https://[^ ]*\) .*|\1|p' "$OUT")
[ "$url" = "https://127.0.0.1:$HP/" ] || fail "the printed portal: '$url'"
curl -sf --cacert "$DIR/tls/rdp.pem" "$url" | grep -q 'name="password"' || fail "the portal's page"
probe() { "$BUILD/tests/tools/vnc-probe" -u "demo#$1" -C "$DIR/pki/ca.pem" "127.0.0.1:$VP" "$PW" 2>&1; }
out=$(probe clock) || fail "clock: $out"
grep -q "name=clock (demo)" <<<"$out" || fail "clock: $out"
painted() { out=$(probe desktop) && [ "$(sed -n 's/.*painted=\([0-9]*\).*/\1/p' <<<"$out")" -gt 1000 ]; }
for _ in $(seq 1 30); do painted && break; sleep 0.2; done
painted || fail "the demo desktop shows nothing: $out"
echo "   demo desktop: $out"
# The printed thin-client commands work as printed.
mkdir -p "$DIR/client"
HOME=$DIR/client "$BUILD/bin/portico" --broker "$(sed -n 's|.*broker API   \(https://[^ ]*\)/api/v1.*|\1|p' "$OUT")" \
	--ca "$DIR/pki/ca.pem" login demo <<<"$PW" >/dev/null || fail "portico login with the printed password"
HOME=$DIR/client "$BUILD/bin/portico" list | grep -q "^desktop " || fail "portico list"
HOME=$DIR/client "$BUILD/bin/portico" list | grep -qE "^rdesktop +desktop +rdp " || fail "no RDP desktop in portico list"
# The printed xfreerdp command, as printed, under Xvfb: the gateway logs
# it in and redirects it to the xrdp host's desktop.
line=$(grep -E "^ +xfreerdp /v:127.0.0.1:$RP " "$OUT") || fail "no xfreerdp command printed"
for _ in $(seq 1 50); do [ -s "$OUT.xvfb" ] && break; sleep 0.1; done
(cd "$DIR/client" && HOME=$DIR/client DISPLAY=:$(cat "$OUT.xvfb") timeout 12 bash -c "exec $line /size:800x600" \
	>"$OUT.rdp" 2>&1) &
RDPC=$!
sleep 8
DISPLAY=:$(cat "$OUT.xvfb") xwd -root -silent >"$OUT.xwd"
kill $RDPC 2>/dev/null
wait $RDPC 2>/dev/null
seen=$(python3 tests/tools/xwd-painted.py "$OUT.xwd")
echo "   demo RDP desktop: $seen"
[ "${seen##*painted=}" -gt 10000 ] || fail "the printed xfreerdp command shows nothing: $seen $(tail -5 "$OUT.rdp")"
# The printed `portico connect rdesktop`, with the printed CA file: it
# checks the RD Gateway's certificate and opens xfreerdp through it.
ca=$(sed -n 's|.*portico --ca \([^ ]*\) connect rdesktop.*|\1|p' "$OUT")
[ -s "$ca" ] || fail "no CA file printed for portico connect rdesktop: '$ca'"
(cd "$DIR/client" && HOME=$DIR/client DISPLAY=:$(cat "$OUT.xvfb") exec "$BUILD/bin/portico" --ca "$ca" \
	connect rdesktop </dev/null >"$OUT.pc" 2>&1) &
RDPC=$!
for _ in $(seq 1 20); do
	sleep 1
	DISPLAY=:$(cat "$OUT.xvfb") xwd -root -silent >"$OUT.xwd"
	seen=$(python3 tests/tools/xwd-painted.py "$OUT.xwd")
	[ "${seen##*painted=}" -gt 10000 ] && break
	kill -0 $RDPC 2>/dev/null || break
done
kill $RDPC 2>/dev/null
wait $RDPC 2>/dev/null
echo "   portico connect rdesktop: $seen"
[ "${seen##*painted=}" -gt 10000 ] || fail "the printed portico connect rdesktop shows nothing: $(tail -5 "$OUT.pc")"
kill -INT $DEMO
for _ in $(seq 1 $((GRACE * 10 + 150))); do pt_running $DEMO || break; sleep 0.1; done
pt_running $DEMO && fail "the demo did not stop within $((GRACE + 15))s of Ctrl-C"
wait $DEMO
DEMO=
grep "did not stop within" "$OUT" && fail "a program of the demo's did not stop on Ctrl-C"
grep -q "demo: stopped, $DIR removed" "$OUT" || fail "no goodbye"
[ ! -e "$DIR" ] || fail "$DIR was left behind"
pgrep -U 64991 >/dev/null && fail "demo sessions still run"
pgrep -f "$DIR/portico.conf" >/dev/null && fail "demo daemons still run"
pgrep -f "$DIR/xrdp.ini" >/dev/null && fail "the demo's xrdp still runs"
echo "ok: make demo"
