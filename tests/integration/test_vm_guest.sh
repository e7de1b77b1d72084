#!/bin/bash
# Desktop VMs reached through the guest's own RDP server: the golden image
# of `make guest-image` (Debian 12, xrdp, qemu-guest-agent) under real QEMU
# (TCG), a real broker, sessiond and gateway, xfreerdp under Xvfb.
#   - a spare VM is ready only once its guest agent answered and its xrdp
#     answers; a user launches and gets it, with single sign-on (the
#     user's password set in the guest through the agent);
#   - xfreerdp through the gateway, with a ticket and through the login
#     step, lands on the user's own desktop in the guest;
#   - the next user gets the refilled spare;
#   - a guest reaches neither the host's broker and sessiond nor another
#     guest;
#   - logoff shuts the guest down through its agent and throws the overlay
#     away; a persistent user's disk comes back with their files;
#   - a guest whose server never answers is thrown away after the pool's
#     boot_timeout, the reason logged, and replaced.
# TCG is slow: the image is booted as few times as the checks allow.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

. tests/integration/vm_env.sh

vm_setup "[pool vdi]
driver = qemu
protocol = rdp
sso = yes
image = @IMAGE@
hosts = host1
users = alice, bob
min_spare = 1
max_vms = 3

[pool vdip]
driver = qemu
protocol = rdp
sso = yes
policy = persistent
image = @IMAGE@
hosts = host1
users = alice"

spares() { sd_api GET /sessions | jq -c "[.spares[] | select(.pool == \"$1\")]"; }
spare_ready() { spares "${1:-vdi}" | jq -er '[.[] | select(.ready)][0].id'; }
qga_of() { echo "$T/run/sessions/$1/qga.sock"; } # the VM's directory is its first id's
in_guest() { local s=$1; shift; timeout 90 $QGA "$(qga_of "$s")" exec "$@"; }

# runs_in_guest VM_DIR_ID USER: USER has processes in the guest (a session)
runs_in_guest() {
	in_guest "$1" /bin/sh -c 'for d in /proc/[0-9]*; do [ "$(stat -c %U "$d" 2>/dev/null)" = "$0" ] && exit 0; done; exit 1' "$2" >/dev/null 2>&1
}

# desktop SESSION_DIR_ID USER XFREERDP-ARGS...: xfreerdp through the gateway
# until the guest runs USER's desktop and the client painted it.
desktop() {
	local dir=$1 user=$2 i painted=0 n0
	shift 2
	# The guest is looked at once the gateway relays the user's connection:
	# its agent's channel takes one client, which the hand-over needs first.
	n0=$(grep -c "user $user: connected to session" "$T/gateway.log")
	DISPLAY=$XD xfreerdp /v:127.0.0.1:$RDP_PORT /cert:ignore /size:800x600 "$@" >"$T/rdp.log" 2>&1 &
	local p=$!
	for i in $(seq 60); do
		sleep 1
		kill -0 $p 2>/dev/null || break
		[ "$(grep -c "user $user: connected to session" "$T/gateway.log")" -gt "$n0" ] || continue
		runs_in_guest "$dir" "$user" || continue
		DISPLAY=$XD xwd -root -silent >"$T/screen.xwd"
		seen=$(python3 tests/tools/xwd-painted.py "$T/screen.xwd")
		painted=${seen##*painted=}
		[ "$painted" -gt 10000 ] && break
	done
	kill $p 2>/dev/null
	wait $p 2>/dev/null
	[ "$painted" -gt 10000 ] || fail "no desktop of $user: $seen $(tail -5 "$T/rdp.log") $(tail -3 "$T/gateway.log")"
	echo "   $user's desktop in the guest after ${i}s: $seen"
}

# --- a spare boots; ready only once its agent and its xrdp answer ----------------
wait_for 30 eval '[ "$(spares vdi | jq length)" -ge 1 ]' || fail "no spare VM: $(sd_api GET /sessions)"
A=$(spares vdi | jq -r '.[0].id')
[ "$(spares vdi | jq -r '.[0].ready')" = false ] || fail "a spare ready before its guest booted"
t0=$(date +%s)
wait_for 300 spare_ready >/dev/null || fail "the spare never became ready: $(tail -5 "$T/sessiond.log")"
echo "   spare VM booted to ready in $(($(date +%s) - t0)) s under TCG"
agent=$(grep -n "spare VM $A of pool vdi: the guest agent answered after" "$T/sessiond.log" | head -n 1 | cut -d: -f1)
rdp=$(grep -n "spare VM $A of pool vdi: the guest's RDP server answers: ready after" "$T/sessiond.log" | head -n 1 | cut -d: -f1)
ready=$(grep -n "spare VM $A of pool vdi is ready" "$T/sessiond.log" | head -n 1 | cut -d: -f1)
[ -n "$agent" ] && [ -n "$rdp" ] && [ -n "$ready" ] && [ "$agent" -lt "$rdp" ] && [ "$rdp" -lt "$ready" ] ||
	fail "ready before the guest agent and xrdp answered: $(grep "spare VM $A" "$T/sessiond.log")"
grep "spare VM $A of pool vdi: the guest's RDP server answers" "$T/sessiond.log" | grep -q "guest address 10.0.2.15, reached at 127.0.0.1:$(port_of "$A")" ||
	fail "the guest's address from its agent: $(grep "spare VM $A" "$T/sessiond.log")"
echo "ok: a spare VM is ready once its guest agent and its RDP server answer"

# --- alice takes it: sso, then xfreerdp with a ticket ------------------------------
t0=$(date +%s%N)
api GET /resources/vdi/launch.rdp "" "$ALICE" >/dev/null
expect 200
echo "   launch from the ready spare: $((($(date +%s%N) - t0) / 1000000)) ms"
TICKET=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
S1=$(api GET /sessions "" "$ALICE" | jq -r '.sessions[] | select(.pool == "vdi") | .id')
grep -q "spare VM $A of pool vdi is now session $S1 of alice" "$T/sessiond.log" || fail "alice did not get the spare"
grep -q "session $S1: alice's password set in the guest (single sign-on)" "$T/sessiond.log" ||
	fail "no sso: $(tail -5 "$T/sessiond.log")"
grep -q "alice-pw" "$T/sessiond.log" "$T/broker.log" && fail "a password in a log"
in_guest "$A" /usr/bin/getent passwd alice >/dev/null || fail "no account for alice in the guest"
desktop "$A" alice "/load-balance-info:Cookie: msts=$TICKET" /u:alice /p:alice-pw
grep -q "connected to session $S1 at 127.0.0.1:$(port_of "$A")" "$T/gateway.log" || fail "no connect line: $(tail -3 "$T/gateway.log")"
echo "ok: alice's desktop in the guest through the gateway, with a ticket, signed on with her password"

# --- a guest reaches nothing of the host's, nor another guest -------------------------
wait_for 30 eval '[ -n "$(spares vdi | jq -r ".[0].id // empty")" ]' || fail "the spare was not refilled"
VB=$(spares vdi | jq -r '.[0].id')
[ "$VB" != "$A" ] || fail "the same spare twice"
wait_for 30 eval '[ -n "$(port_of "$VB")" ]' || fail "the new spare has no forwarded port"
reach() { in_guest "$A" /usr/bin/timeout 5 /bin/bash -c "exec 3<>/dev/tcp/$1/$2" >/dev/null 2>&1; }
reach 127.0.0.1 3389 || fail "the check cannot reach the guest's own xrdp"
reach 10.0.2.2 "$PORT" && fail "the guest reached the broker"
reach 10.0.2.2 "$SD_PORT" && fail "the guest reached sessiond"
reach 10.0.2.2 "$(port_of "$VB")" && fail "the guest reached another guest"
reach 10.0.2.2 "$RDP_PORT" && fail "the guest reached the gateway"
echo "ok: the guest reaches neither the broker, sessiond, the gateway nor another guest"

# --- bob, through the login step, gets the refilled spare -----------------------------
wait_for 300 eval '[ "$(spare_ready)" = "$VB" ]' || fail "the refilled spare never became ready"
desktop "$VB" bob "/u:bob#vdi" /p:bob-pw
grep -q "rdp 127.0.0.1 user bob: logged in, redirected to session" "$T/gateway.log" || fail "no redirection line"
grep -q "spare VM $VB of pool vdi is now session .* of bob" "$T/sessiond.log" || fail "bob did not get the refilled spare"
echo "ok: the next user gets the refilled spare, through the login step"

# --- logoff: the guest shuts down, the overlay goes ----------------------------------
[ -f "$T/state/vms/vdi/$A.qcow2" ] || fail "no overlay for alice's VM"
api POST "/sessions/$S1/logoff" "" "$ALICE" >/dev/null
expect 200
wait_for 60 eval "grep -q 'session $S1: the guest shut down in' '$T/sessiond.log'" ||
	fail "the guest was not shut down through its agent: $(grep "session $S1" "$T/sessiond.log" | tail -3)"
wait_for 10 eval '[ ! -e "$T/state/vms/vdi/$A.qcow2" ]' || fail "the overlay of a non-persistent VM was kept"
echo "ok: logoff shuts the guest down and throws its overlay away"

# --- a persistent user's disk, with their files --------------------------------------
api POST /resources/vdip/launch "" "$ALICE" >/dev/null
expect 200
S2=$(jq -r .session.id "$T/out")
in_guest "$S2" /bin/sh -c 'echo "kept $0" >/home/alice/notes.txt && chown alice /home/alice/notes.txt && sync' "$S2" ||
	fail "cannot write alice's file in the guest"
api POST "/sessions/$S2/logoff" "" "$ALICE" >/dev/null
wait_for 60 eval "grep -q 'session $S2: the guest shut down in' '$T/sessiond.log'" || fail "the persistent guest was not shut down"
wait_for 10 eval '! pgrep -f "name vdip \\(" >/dev/null' || fail "QEMU still runs after logoff"
[ -f "$T/state/vms/vdip/user-alice.qcow2" ] || fail "the persistent disk went with the session"
api POST /resources/vdip/launch "" "$ALICE" >/dev/null
expect 200
S3=$(jq -r .session.id "$T/out")
[ "$(in_guest "$S3" /bin/cat /home/alice/notes.txt)" = "kept $S2" ] || fail "alice's file is not on her disk"
echo "ok: a persistent user gets their disk back with their files"
api POST "/sessions/$S3/logoff" "" "$ALICE" >/dev/null

# --- a guest whose server never answers is replaced after boot_timeout -------------------
# Its agent answers (the same image), its RDP server is looked for on a
# port where nothing listens; the boot timeout leaves the agent time.
took=$(sed -n "s/.*spare VM $A of pool vdi: the guest agent answered after \([0-9]*\).*/\1/p" "$T/sessiond.log")
bt=$((took * 2 + 20))
api POST /admin/pools "{\"name\":\"dead\",\"driver\":\"qemu\",\"protocol\":\"rdp\",\"guest_port\":3390,\"boot_timeout\":\"${bt}s\",\"image\":\"$T/desktop.qcow2\",\"hosts\":[\"host1\"],\"users\":[\"alice\"],\"min_spare\":1}" "$ADMIN" >/dev/null
expect 201
wait_for 60 eval '[ "$(spares dead | jq length)" -ge 1 ]' || fail "no spare for the dead pool"
D1=$(spares dead | jq -r '.[0].id')
wait_for $((bt + 60)) eval "grep -q 'spare VM $D1 of pool dead: not ready within $bt s (its guest agent answered, but not its RDP server on port 3390): thrown away' '$T/sessiond.log'" ||
	fail "the dead guest was not thrown away: $(grep "spare VM $D1" "$T/sessiond.log")"
wait_for 30 eval '[ "$(spares dead | jq -r ".[0].id // empty")" -gt "$D1" ] 2>/dev/null' || fail "the dead spare was not replaced"
spares dead | jq -e '.[0].ready == false' >/dev/null || fail "a replacement ready without its server"
api DELETE /admin/pools/dead "" "$ADMIN" >/dev/null
echo "ok: a guest whose server never answers is thrown away after boot_timeout and replaced"
echo "ok: desktop VMs through the guest's own RDP server"
