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
#    Beside it, the peer: the same client straight to a ready spare's xrdp
#    (its forwarded port, no broker, no gateway, an account made through
#    the agent beforehand), which is the guest's own share of the figure.
# 2. Launch to first frame from a ready spare: the clock starts before the
#    user's launch.rdp request at the broker (which hands over the spare:
#    with sso, the user's account and password set in the guest through
#    its agent) and stops when xfreerdp, started with the ticket as soon as
#    the answer is in, first paints an update from the guest's xrdp (its
#    TRACE line from xf_sw_end_paint, stamped as tests/bench/rdp.sh does).
#    Each round takes a fresh ready spare (the pool refills in between)
#    that has sat ready SETTLE seconds (20), as spares wait for their
#    users: one just ready is still finishing its boot on the guest's one
#    emulated CPU, which doubles the hand-over's time under TCG.
#    The launch's own share (the broker's answer) is printed beside it.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh
ROUNDS=${ROUNDS:-3}
SETTLE=${SETTLE:-20} # s a spare sits ready before a round

. tests/integration/vm_env.sh

vm_setup "[pool vdi]
driver = qemu
protocol = rdp
sso = yes
image = @IMAGE@
hosts = host1
users = alice
min_spare = 1
max_vms = 3"
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
# paint T0 XFREERDP-ARGS...: ms from T0 ($EPOCHREALTIME) to xfreerdp's
# first painted update
paint() {
	local t0=$1 t1='' line fd pid
	shift
	exec {fd}< <(DISPLAY=$XD exec stdbuf -oL timeout 30 xfreerdp /cert:ignore /size:800x600 "$@" \
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
	calc "%.0f" "(${t1/./} - ${t0/./}) / 1000"
}
# first_frame: "LAUNCH FRAME" ms, from before the launch request
first_frame() {
	local t0 tl f tk
	t0=$EPOCHREALTIME
	api GET /resources/vdi/launch.rdp "" "$ALICE" >/dev/null
	tl=$EPOCHREALTIME
	[ "$STATUS" = 200 ] || return 1
	tk=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
	f=$(paint "$t0" /v:127.0.0.1:$RDP_PORT /u:alice /p:alice-pw "/load-balance-info:Cookie: msts=$tk") || return 1
	calc "%.0f %.0f" "(${tl/./} - ${t0/./}) / 1000, $f"
}
# direct ID: ms from starting xfreerdp straight at spare ID's forwarded
# port to its first frame, as carol (made through the agent first)
direct() {
	local sock=$T/run/sessions/$1/qga.sock port
	port=$(port_of "$1")
	$QGA "$sock" exec /bin/sh -c 'id carol >/dev/null 2>&1 || useradd -m carol; echo carol:carol-pw | chpasswd' >/dev/null || return 1
	paint "$EPOCHREALTIME" /v:127.0.0.1:$port /u:carol /p:carol-pw
}
frames=() launches=() directs=()
for i in $(seq "$ROUNDS"); do
	wait_for 600 spare_ready >/dev/null || fail "the pool did not refill"
	sp=$(spare_ready)
	# A spare waits for its user: one just ready is still finishing its
	# boot (and the guest has one emulated CPU).
	sleep "$SETTLE"
	d=$(direct "$sp") || fail "xfreerdp painted nothing straight from the guest"
	# carol's session ends: the guest's one emulated CPU is alice's again
	$QGA "$T/run/sessions/$sp/qga.sock" exec /bin/sh -c 'for d in /proc/[0-9]*; do [ "$(stat -c %U "$d" 2>/dev/null)" = carol ] && kill -9 "${d#/proc/}" 2>/dev/null; done; exit 0' >/dev/null
	sleep 3
	r=$(first_frame) || fail "xfreerdp painted nothing from the guest: $(tail -3 "$T/gateway.log")"
	read -r l f <<<"$r"
	s=$(api GET /sessions "" "$ALICE" | jq -r '.sessions[] | select(.pool == "vdi") | .id')
	sso=$(sed -n "s/.*session $s: alice's password set in the guest (single sign-on) in \([0-9]*\) ms (the account \([0-9]*\) ms).*/\1 ms, the account \2 ms/p" "$T/sessiond.log")
	echo "vm: round $i: launch from ready spare $sp ${l} ms (sso in the guest: ${sso:-none}), to xfreerdp's first frame ${f} ms; straight to the guest ${d} ms"
	launches+=("$l") frames+=("$f") directs+=("$d")
	api POST "/sessions/$s/logoff" "" "$ALICE" >/dev/null
	wait_for 60 eval '[ -z "$(api GET /sessions "" "$ALICE" | jq -r ".sessions[] | select(.pool == \"vdi\") | .id")" ]' || fail "logoff"
done
med() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
fm=$(med "${frames[@]}") dm=$(med "${directs[@]}")
echo "vm: launch to first RDP frame from a ready spare (median of $ROUNDS): $fm ms, of which the launch $(med "${launches[@]}") ms (target: 1000 ms)"
echo "vm: xfreerdp straight to a ready guest's xrdp (median): $dm ms; Portico's launch and gateway add $((fm - dm)) ms (ratio $(calc "%.2f" "$fm / $dm"))"

# ------------------------------------------------------------- KVM, if any
if [ -w /dev/kvm ]; then
	# No spare left to adopt: the next one boots under KVM.
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
