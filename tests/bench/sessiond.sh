#!/bin/bash
# sessiond.sh - the session agent's benchmark (run by make bench; needs
# root): time from a launch request at the broker to the first framebuffer
# update a real VNC client (libvncclient) gets from the new session, for an
# application in a cold Xvnc, a desktop in a cold Xvnc, a VM handed out from
# a spare and a VM started cold (TCG); then the memory an idle session
# costs (PSS of its processes).  Figures, not verdicts.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh
ROUNDS=${ROUNDS:-10}

be_setup
sd_setup
tests/integration/make-golden.sh "$T/golden.qcow2" || fail "golden image"
chmod 644 "$T/golden.qcow2"
# The golden image is the benchmark's own: image_dir is its directory.
be_conf_append "vm_user = $SD_SVC
image_dir = $T
vm_accel = ${VM_ACCEL:-tcg}
vm_memory = 256

[pool app]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host1
users = $SD_USER
max_sessions_per_host = 1000

[pool desk]
kind = desktop
driver = xvnc
hosts = host1
users = $SD_USER

[pool vmspare]
driver = qemu
image = $T/golden.qcow2
hosts = host1
users = $SD_USER
min_spare = 1
max_vms = 4

[pool vmcold]
driver = qemu
image = $T/golden.qcow2
hosts = host1
users = $SD_USER"
# Ten more app pools, for ten idle sessions of one user at once.
for i in $(seq 1 10); do
	be_conf_append "
[pool idle$i]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host1
users = $SD_USER"
done
be_start
ADMIN=$(login carol carol-pw)
sd_start
TOKEN=$(login "$SD_USER" user-pw)

ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
# one POOL: launch, redeem, first update; prints ms; logs off
one() {
	local t0 sid
	t0=$(date +%s%N)
	api POST "/resources/$1/launch" "" "$TOKEN" >/dev/null
	[ "$STATUS" = 200 ] || fail "launch $1: $(cat "$T/out")"
	sid=$(jq -r .session.id "$T/out")
	api POST /gateway/redeem "{\"ticket\":\"$(jq -r .ticket "$T/out")\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
	"$PROBE" -1 "$(jq -r .backend "$T/out" | sed 's/^unix://')" "$(jq -r .secret "$T/out")" >/dev/null ||
		fail "no framebuffer from $1"
	ms "$t0"
	api POST "/sessions/$sid/logoff" "" "$TOKEN" >/dev/null
}
spare_ready() { sd_api GET /sessions | jq -e '[.spares[] | select(.pool == "vmspare" and .ready)] | length > 0' >/dev/null; }
stats() { # label values...: p50 and max
	local label=$1
	shift
	printf '%s\n' "$@" | sort -n | awk -v l="$label" '{ v[NR] = $1 } END {
		printf "%-44s p50 %5d ms   max %5d ms   (%d runs)\n", l, v[int((NR + 1) / 2)], v[NR], NR }'
}

echo
echo "session agent benchmark (launch request to first framebuffer update)"
r=()
for _ in $(seq 1 "$ROUNDS"); do r+=("$(one app)"); sleep 0.3; done
stats "app (xterm) in a cold Xvnc, target 400" "${r[@]}"
r=()
for _ in $(seq 1 "$ROUNDS"); do r+=("$(one desk)"); sleep 0.3; done
stats "desktop in a cold Xvnc" "${r[@]}"
r=()
for _ in $(seq 1 "$ROUNDS"); do
	wait_for 60 spare_ready || fail "no spare VM"
	sleep "${SPARE_SETTLE:-10}" # booted ahead of demand: its guest is idle by now
	r+=("$(one vmspare)")
done
stats "VM from a booted spare, target 300" "${r[@]}"
r=()
for _ in $(seq 1 3); do r+=("$(one vmcold)"); done
stats "VM started cold ($(grep -m1 '^vm_accel' "$T/portico.conf" | cut -d' ' -f3))" "${r[@]}"

# Memory of idle sessions: PSS of every process of each, 10 of each kind.
pss() { # pids...: total PSS in KiB
	local t=0 p
	for p in "$@"; do t=$((t + $(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done
	echo "$t"
}
for i in $(seq 1 10); do
	api POST "/resources/idle$i/launch" "" "$TOKEN" >/dev/null
	[ "$STATUS" = 200 ] || fail "idle$i: $(cat "$T/out")"
done
sleep 2
n=$(pgrep -u "$SD_USER" -c Xvnc)
kib=$(pss $(pgrep -u "$SD_USER"))
echo "idle app session (Xvnc + xterm, $n at once):       $((kib / n)) KiB PSS each"
mon=$(pss $(pgrep -x pt-session))
echo "session monitors (root):                          $((mon / $(pgrep -c -x pt-session))) KiB PSS each"
vm=$(pgrep -u "$SD_SVC" -f 'name vmspare' | head -1)
[ -n "$vm" ] && echo "idle VM (QEMU, 256 MiB guest, booted):           $(pss "$vm") KiB PSS"
