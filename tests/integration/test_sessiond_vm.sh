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
be_conf_append "vm_user = $SD_SVC
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
no_vm() { ! pgrep -u "$SD_SVC" -f qemu-system >/dev/null; }

# --- a VM session, for a user the host does not know ------------------------------
GHOST=$(login ghost ghost-pw)
api POST /resources/vm/launch "" "$GHOST" >/dev/null
expect 200
S1=$(jq -r .session.id "$T/out")
redeem "$(jq -r .ticket "$T/out")"
[ "$(stat -c %U "${BACKEND#unix:}")" = "$SD_SVC" ] || fail "console socket owner"
out=$("$PROBE" "${BACKEND#unix:}" "$SECRET") || fail "no VNC console on the VM"
echo "   $out"
grep -q "name=QEMU (vm (ghost))" <<<"$out" || fail "console name: $out"
painted() { out=$("$PROBE" "${BACKEND#unix:}" "$SECRET") && [ "$(sed -n 's/.*painted=\([0-9]*\).*/\1/p' <<<"$out")" -gt 0 ]; }
wait_for 30 painted || fail "the VM's console stays blank: $out"
"$PROBE" "${BACKEND#unix:}" wrong-pw 2>/dev/null && fail "the console took a wrong password"
[ -f "$T/state/vms/vm/$S1.qcow2" ] || fail "no overlay for session $S1"
# The guest boots: its console changes from the BIOS screen to the kernel's.
booted() { [ "$("$PROBE" "${BACKEND#unix:}" "$SECRET" | sed 's/.*hash=//')" != "$first" ]; }
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
wait_for 10 no_vm || fail "QEMU still runs after logoff"
[ -f "$disk" ] || fail "the persistent disk went with the session"
api POST /resources/vmp/launch "" "$USER_TOKEN" >/dev/null
expect 200
S3=$(jq -r .session.id "$T/out")
[ "$S3" != "$S2" ] || fail "the same session id after logoff"
[ "$(stat -c %i "$disk")" = "$inode" ] || fail "the persistent disk was made anew"
grep -q "session $S3: $SD_USER's own disk" "$T/sessiond.log" || fail "no log line for the reused disk"
api POST "/sessions/$S3/logoff" "" "$USER_TOKEN" >/dev/null
wait_for 10 no_vm || fail "QEMU still runs after logoff"
echo "ok: persistent disk"

# --- bad images ------------------------------------------------------------------------
api POST /resources/vmbad/launch "" "$USER_TOKEN" >/dev/null
expect 502 start_failed
grep -q "is not a usable disk image" "$T/out" || fail "corrupt image: $(cat "$T/out")"
api POST /resources/vmgone/launch "" "$USER_TOKEN" >/dev/null
expect 502 start_failed
grep -q "nonexistent.qcow2 cannot be read: No such file or directory" "$T/out" || fail "missing image: $(cat "$T/out")"
wait_for 3 no_vm || fail "a failed VM start left QEMU running"
[ -z "$(ls "$T/state/vms/vmbad" 2>/dev/null)" ] || fail "a failed start left $(ls "$T/state/vms/vmbad")"
[ -z "$(ls "$T/run/sessions")" ] || fail "a failed start left $(ls "$T/run/sessions")"
echo "ok: bad images"
echo "ok: sessiond VMs"
