#!/bin/bash
# portico-sessiond's desktop VMs: a tiny golden image built here (Debian's
# kernel, a busybox initramfs), real QEMU (TCG), a real VNC client on the
# VM's console; per-session overlays thrown away at logoff, a persistent
# user's overlay kept and handed back; bad images refused clearly.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

be_setup
sd_setup
tests/integration/make-golden.sh "$T/golden.qcow2" || fail "cannot build the golden image"
chmod 644 "$T/golden.qcow2"
head -c 65536 /dev/urandom >"$T/corrupt.qcow2"
chmod 644 "$T/corrupt.qcow2"
# The images are the test's own: image_dir is its directory (root's).
be_conf_append "vm_user = $SD_SVC
image_dir = $T
vm_accel = tcg
vm_memory = 256

[pool vm]
kind = desktop
driver = qemu
image = $T/golden.qcow2
hosts = host1
users = $SD_USER, ghost

[pool vmp]
kind = desktop
driver = qemu
policy = persistent
image = $T/golden.qcow2
hosts = host1
users = $SD_USER

[pool vmspare]
kind = desktop
driver = qemu
image = $T/golden.qcow2
hosts = host1
users = $SD_USER
min_spare = 1
max_vms = 2

[pool vmbad]
driver = qemu
image = $T/corrupt.qcow2
hosts = host1
users = $SD_USER

[pool vmgone]
driver = qemu
image = $T/nonexistent.qcow2
hosts = host1
users = $SD_USER"
be_start
ADMIN=$(login carol carol-pw)
sd_start
USER_TOKEN=$(login "$SD_USER" user-pw)

redeem() {
	api POST /gateway/redeem "{\"ticket\":\"$1\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
	expect 200
	BACKEND=$(jq -r .backend "$T/out")
	SECRET=$(jq -r .secret "$T/out")
}
no_vm() { ! pgrep -u "$SD_SVC" -f "name ${1:-vm} \\(" >/dev/null; } # no VM of pool $1

# --- a VM session, for a user the host does not know ------------------------------
GHOST=$(login ghost ghost-pw)
api POST /resources/vm/launch "" "$GHOST" >/dev/null
expect 200
S1=$(jq -r .session.id "$T/out")
redeem "$(jq -r .ticket "$T/out")"
[ "$(stat -c %U "${BACKEND#unix:}")" = "$SD_SVC" ] || fail "console socket owner"
# The console comes up with the BIOS and changes size as the guest boots;
# a client may be cut off by a resize, so it tries again.
painted() { out=$("$PROBE" "${BACKEND#unix:}" "$SECRET" 2>/dev/null) && [ "$(sed -n 's/.*painted=\([0-9]*\).*/\1/p' <<<"$out")" -gt 0 ]; }
wait_for 30 painted || fail "the VM's console stays blank or unreachable: $out"
echo "   $out"
grep -q "name=QEMU (vm (ghost))" <<<"$out" || fail "console name: $out"
"$PROBE" "${BACKEND#unix:}" wrong-pw 2>/dev/null && fail "the console took a wrong password"
[ -f "$T/state/vms/vm/$S1.qcow2" ] || fail "no overlay for session $S1"
# The guest boots: its console changes from the BIOS screen to the kernel's.
booted() { local h; h=$("$PROBE" "${BACKEND#unix:}" "$SECRET" 2>/dev/null) && [ "${h##*hash=}" != "$first" ]; }
first=$(sed 's/.*hash=//' <<<"$out")
wait_for 60 booted || fail "the VM's console never changed"
api POST "/sessions/$S1/logoff" "" "$GHOST" >/dev/null
expect 200
wait_for 10 no_vm || fail "QEMU still runs after logoff"
wait_for 5 eval '[ ! -e "$T/state/vms/vm/$S1.qcow2" ]' || fail "the overlay of a non-persistent VM was kept"
echo "ok: VM session, logoff throws the overlay away"

# --- persistent: the user's own disk, back again ------------------------------------
api POST /resources/vmp/launch "" "$USER_TOKEN" >/dev/null
expect 200
S2=$(jq -r .session.id "$T/out")
disk="$T/state/vms/vmp/user-$SD_USER.qcow2"
[ -f "$disk" ] || fail "no persistent disk $disk"
inode=$(stat -c %i "$disk")
api POST "/sessions/$S2/logoff" "" "$USER_TOKEN" >/dev/null
wait_for 10 no_vm vmp || fail "QEMU still runs after logoff"
[ -f "$disk" ] || fail "the persistent disk went with the session"
api POST /resources/vmp/launch "" "$USER_TOKEN" >/dev/null
expect 200
S3=$(jq -r .session.id "$T/out")
[ "$S3" != "$S2" ] || fail "the same session id after logoff"
[ "$(stat -c %i "$disk")" = "$inode" ] || fail "the persistent disk was made anew"
grep -q "session $S3: $SD_USER's own disk" "$T/sessiond.log" || fail "no log line for the reused disk"
api POST "/sessions/$S3/logoff" "" "$USER_TOKEN" >/dev/null
wait_for 10 no_vm vmp || fail "QEMU still runs after logoff"
echo "ok: persistent disk"

# --- spare VMs: booted ahead, handed out at once, refilled -----------------------------
spare_ready() { # prints the id of a ready spare of vmspare
	sd_api GET /sessions | jq -er '[.spares[] | select(.pool == "vmspare" and .ready)][0].id'
}
wait_for 30 spare_ready >/dev/null || fail "no spare VM booted: $(cat "$T/out")"
SPARE=$(spare_ready)
sleep 3 # let it boot a little: a spare is for a user who should see a desktop
t0=$(date +%s%N)
api POST /resources/vmspare/launch "" "$USER_TOKEN" >/dev/null
expect 200
echo "   launch from a spare VM: $((($(date +%s%N) - t0) / 1000000)) ms"
S4=$(jq -r .session.id "$T/out")
redeem "$(jq -r .ticket "$T/out")"
case $BACKEND in unix:"$T/run/sessions/$SPARE/vnc.sock") ;; *) fail "not the spare: $BACKEND (spare $SPARE)" ;; esac
grep -q "spare VM $SPARE of pool vmspare is now session $S4 of $SD_USER" "$T/sessiond.log" || fail "no hand-over line"
"$PROBE" "${BACKEND#unix:}" "$SECRET" >/dev/null || fail "the handed-over VM's console"
[ "$(sd_api GET /sessions | jq "[.sessions[] | select(.id == $S4)] | length")" = 1 ] || fail "sessiond does not list session $S4"
# Refilled in the background, up to max_vms = 2 (this session and one spare).
wait_for 30 eval '[ -n "$(spare_ready)" ] && [ "$(spare_ready)" != "$SPARE" ]' || fail "the spare was not refilled"
sleep 1
[ "$(pgrep -u "$SD_SVC" -c -f 'name vmspare')" = 2 ] || fail "$(pgrep -u "$SD_SVC" -c -f 'name vmspare') VMs of vmspare, want 2"
# A second user: the spare; a third would exceed max_vms... the broker's
# pool has room, so this host's cap is what holds.
api POST "/sessions/$S4/logoff" "" "$USER_TOKEN" >/dev/null
expect 200
wait_for 10 eval '[ "$(pgrep -u "$SD_SVC" -c -f "name vmspare")" = 1 ]' || fail "the logged-off VM still runs"
echo "ok: spare VMs"

# --- bad images ------------------------------------------------------------------------
api POST /resources/vmbad/launch "" "$USER_TOKEN" >/dev/null
expect 502 start_failed
grep -q "is not a usable disk image" "$T/out" || fail "corrupt image: $(cat "$T/out")"
api POST /resources/vmgone/launch "" "$USER_TOKEN" >/dev/null
expect 502 start_failed
grep -q "nonexistent.qcow2 cannot be read: No such file or directory" "$T/out" || fail "missing image: $(cat "$T/out")"
wait_for 3 no_vm vmbad && wait_for 3 no_vm vmgone || fail "a failed VM start left QEMU running"
[ -z "$(ls "$T/state/vms/vmbad" 2>/dev/null)" ] || fail "a failed start left $(ls "$T/state/vms/vmbad")"
left=$(ls "$T/run/sessions" | grep -v '^[0-9]\{16\}$') # spare VMs have 16-digit ids
[ -z "$left" ] || fail "a failed start left $left"
echo "ok: bad images"
echo "ok: sessiond VMs"
