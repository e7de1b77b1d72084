#!/bin/bash
# vm.sh - desktop VMs through the guest's own RDP server (run by make bench;
# needs root and the image of make guest-image): figures, never verdicts.
#
#   BUILD=build ROUNDS=3 tests/bench/vm.sh
#
# 1. Cold boot to ready: from sessiond's request for a spare VM to the VM
#    being ready (its guest agent answers, then its xrdp answers an X.224
#    Connection Request), and the guest agent's part of it, as sessiond
#    logs them; under TCG, and under KVM where /dev/kvm is there and a
#    guest boots with it (the line says why not otherwise).
# 2. Launch to first frame from a ready spare: the clock starts before the
#    user's launch.rdp request at the broker (which hands over the spare:
#    with sso, the user's account and password set in the guest through
#    its agent) and stops when xfreerdp, started with the ticket as soon as
#    the answer is in, first paints an update from the guest's xrdp (its
#    TRACE line from xf_sw_end_paint, stamped as tests/bench/rdp.sh does).
#    Each round takes a fresh ready spare (the pool refills in between).
#    The launch's own share (the broker's answer) is printed beside it.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh
ROUNDS=${ROUNDS:-3}

IMAGE=$BUILD/images/desktop.qcow2
case $IMAGE in /*) ;; *) IMAGE=$PWD/$IMAGE ;; esac
[ -f "$IMAGE" ] || { echo "vm.sh: no guest image $IMAGE (make guest-image)" >&2; exit 1; }

be_setup
sd_setup
ln "$IMAGE" "$T/desktop.qcow2" 2>/dev/null || cp "$IMAGE" "$T/desktop.qcow2" || fail "image"
chmod 644 "$T/desktop.qcow2"
RDP_PORT=$(free_port)
be_gateway_conf - "$RDP_PORT" user=portico
be_conf_append "vm_user = $SD_SVC
image_dir = $T
vm_accel = tcg
vm_memory = 768

[pool vdi]
driver = qemu
protocol = rdp
sso = yes
image = $T/desktop.qcow2
hosts = host1
users = alice
min_spare = 1
max_vms = 3"
be_start
sd_start
env LD_PRELOAD="$NSS_WRAPPER_LIB" NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
	NSS_WRAPPER_DISABLE_DEEPBIND=1 "$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW=$!
Xvfb -displayfd 1 -screen 0 1024x768x24 -nolisten tcp >"$T/xvfb.display" 2>/dev/null &
XVFB=$!
trap 'kill $GW $XVFB 2>/dev/null; wait $GW 2>/dev/null; sd_cleanup' EXIT
wait_for 5 test -s "$T/xvfb.display" || fail "Xvfb"
XD=:$(cat "$T/xvfb.display")
ALICE=$(login alice alice-pw)
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
spare_ready() { sd_api GET /sessions | jq -er '[.spares[] | select(.pool == "vdi" and .ready)][0].id'; }
# ready ID: "READY AGENT" seconds from sessiond's log
ready() {
	local a r
	a=$(sed -n "s/.*spare VM $1 of pool vdi: the guest agent answered after \([0-9.]*\) s.*/\1/p" "$T/sessiond.log")
	r=$(sed -n "s/.*spare VM $1 of pool vdi: the guest's RDP server answers: ready after \([0-9.]*\) s.*/\1/p" "$T/sessiond.log")
	echo "$r $a"
}

# ------------------------------------------------------------- 1. cold boot
wait_for 600 spare_ready >/dev/null || fail "no spare became ready: $(tail -5 "$T/sessiond.log")"
read -r R A <<<"$(ready "$(spare_ready)")"
echo "vm: cold boot to ready under TCG: ${R} s (guest agent answered after ${A} s)"

# ------------------------------------------------------ 2. launch to frame
# first_frame: "LAUNCH FRAME" ms, from before the launch request
first_frame() {
	local t0 tl t1='' line fd pid tk
	t0=$EPOCHREALTIME
	api GET /resources/vdi/launch.rdp "" "$ALICE" >/dev/null
	tl=$EPOCHREALTIME
	[ "$STATUS" = 200 ] || return 1
	tk=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
	exec {fd}< <(DISPLAY=$XD exec stdbuf -oL timeout 30 xfreerdp /v:127.0.0.1:$RDP_PORT /cert:ignore \
		/size:800x600 /u:alice /p:alice-pw "/load-balance-info:Cookie: msts=$tk" \
		/log-filters:com.freerdp.client.x11:TRACE 2>&1)
	pid=$!
	while IFS= read -r -u "$fd" line; do
		case $line in
		*"from xf_sw_end_paint"* | *"from xf_hw_end_paint"*)
			t1=$EPOCHREALTIME
			break
			;;
		esac
	done
	kill "$pid" 2>/dev/null
	exec {fd}<&-
	wait "$pid" 2>/dev/null
	[ -n "$t1" ] || return 1
	calc "%.0f %.0f" "(${tl/./} - ${t0/./}) / 1000, (${t1/./} - ${t0/./}) / 1000"
}
frames=() launches=()
for i in $(seq "$ROUNDS"); do
	wait_for 600 spare_ready >/dev/null || fail "the pool did not refill"
	sp=$(spare_ready)
	r=$(first_frame) || fail "xfreerdp painted nothing from the guest: $(tail -3 "$T/gateway.log")"
	read -r l f <<<"$r"
	echo "vm: round $i: launch from ready spare $sp ${l} ms, to xfreerdp's first frame ${f} ms"
	launches+=("$l") frames+=("$f")
	s=$(api GET /sessions "" "$ALICE" | jq -r '.sessions[] | select(.pool == "vdi") | .id')
	api POST "/sessions/$s/logoff" "" "$ALICE" >/dev/null
	wait_for 60 eval '[ -z "$(api GET /sessions "" "$ALICE" | jq -r ".sessions[] | select(.pool == \"vdi\") | .id")" ]' || fail "logoff"
done
med() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "vm: launch to first RDP frame from a ready spare (median of $ROUNDS): $(med "${frames[@]}") ms, of which the launch $(med "${launches[@]}") ms (target: 1000 ms)"

# ------------------------------------------------------------- KVM, if any
if [ -w /dev/kvm ]; then
	# No spare left to adopt: the next one boots under KVM.
	ADMIN=$(login carol carol-pw)
	api PATCH /admin/pools/vdi '{"min_spare":0}' "$ADMIN" >/dev/null
	wait_for 60 eval '[ "$(sd_api GET /sessions | jq ".spares | length")" = 0 ]' || fail "spares left"
	sd_stop
	sed -i "s/^vm_accel = tcg/vm_accel = kvm/" "$T/portico.conf"
	n0=$(grep -c "the guest's RDP server answers" "$T/sessiond.log")
	sd_start
	api PATCH /admin/pools/vdi '{"min_spare":1}' "$ADMIN" >/dev/null
	if wait_for 300 eval '[ "$(grep -c "the guest'"'"'s RDP server answers" "$T/sessiond.log")" -gt "$n0" ]'; then
		read -r R A <<<"$(ready "$(spare_ready)")"
		echo "vm: cold boot to ready under KVM: ${R} s (guest agent answered after ${A} s)"
	else
		echo "vm: cold boot under KVM: no guest became ready within 300 s ($(grep -a "spare VM" "$T/sessiond.log" | tail -n 1 | cut -c1-200))"
	fi
else
	echo "vm: cold boot under KVM: not measured (this machine has no /dev/kvm)"
fi
