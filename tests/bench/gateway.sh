#!/bin/bash
# gateway.sh - the gateway's VNC benchmark (run by make bench; needs root):
# for an already running Xvnc session, the time from connecting to the
# first framebuffer update through the gateway (TLS, user and password
# checked by the broker through PAM, the backend's handshake) beside a
# direct connection to the session; then a bulk framebuffer stream (raw
# encoding, whole 1920x1080 frames back to back) through the gateway's
# relay beside the same stream direct.  Figures and ratios, not verdicts.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh
ROUNDS=${ROUNDS:-20}

be_setup
sd_setup
GW_PORT=$(free_port)
be_gateway_conf "$GW_PORT" "$(free_port)" public_host=gateway.test user="$SD_SVC"
be_conf_append "
[pool big]
kind = app
driver = xvnc
command = /usr/bin/xterm -geometry 200x60+0+0
hosts = host1
users = $SD_USER
geometry = 1920x1080"
be_start
ADMIN=$(login carol carol-pw)
sd_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
trap 'kill $GW_PID 2>/dev/null; wait $GW_PID 2>/dev/null; sd_cleanup' EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$GW_PORT) 2>/dev/null" || fail "the gateway does not listen"
TOKEN=$(login "$SD_USER" user-pw)
api POST /resources/big/launch "" "$TOKEN" >/dev/null
api POST /gateway/redeem "{\"ticket\":\"$(jq -r .ticket "$T/out")\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
SOCK=$(jq -r .backend "$T/out" | sed 's/^unix://')
SECRET=$(jq -r .secret "$T/out")
sleep 1
via() { "$PROBE" "$@" -u "$SD_USER#big" -C "$T/pki/ca.pem" "127.0.0.1:$GW_PORT" user-pw; }
direct() { "$PROBE" "$@" "$SOCK" "$SECRET"; }
ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
p50() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo
echo "gateway VNC benchmark (a running 1920x1080 Xvnc session)"
d=() g=()
for _ in $(seq 1 "$ROUNDS"); do
	t=$(date +%s%N); direct -1 >/dev/null || fail "direct"; d+=("$(ms "$t")")
	t=$(date +%s%N); via -1 >/dev/null || fail "via the gateway"; g+=("$(ms "$t")")
done
pd=$(p50 "${d[@]}") pg=$(p50 "${g[@]}")
echo "login to first framebuffer, direct:        p50 $pd ms"
echo "login to first framebuffer, via gateway:   p50 $pg ms (+$((pg - pd)) ms, target +100)"
bd=$(direct -b 5 | sed 's/.*mbytes_per_s=//')
bg=$(via -b 5 | sed 's/.*mbytes_per_s=//')
echo "bulk raw frames, direct:                   $bd MB/s"
echo "bulk raw frames, via gateway:              $bg MB/s ($(echo "scale=2; $bg / $bd" | bc -l)x direct)"
