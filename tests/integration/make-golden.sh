#!/bin/bash
# make-golden.sh OUT.qcow2 - a tiny bootable desktop-VM image for tests,
# built from what the machine has (nothing downloaded): Debian's kernel, a
# busybox initramfs, syslinux on a FAT disk (written with mtools, no mount).
# The VM boots to a shell on its console and prints "portico test vm".
set -eu
out=$1
kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1)
[ -n "$kernel" ] || { echo "make-golden: no kernel in /boot (linux-image-amd64)" >&2; exit 1; }
[ -x /bin/busybox ] || { echo "make-golden: no /bin/busybox (busybox-static)" >&2; exit 1; }
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/root/bin" "$w/root/proc" "$w/root/sys" "$w/root/dev"
cp /bin/busybox "$w/root/bin/busybox"
cat >"$w/root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
clear
echo "portico test vm"
echo
exec setsid cttyhack sh
INIT
chmod 755 "$w/root/init"
(cd "$w/root" && find . | cpio -o -H newc --quiet | gzip -1) >"$w/initrd.gz"
cat >"$w/syslinux.cfg" <<'CFG'
DEFAULT vm
PROMPT 0
TIMEOUT 0
LABEL vm
  KERNEL vmlinuz
  APPEND initrd=initrd.gz console=tty0 quiet loglevel=1
CFG
size_kb=$(( ($(stat -c %s "$kernel") + $(stat -c %s "$w/initrd.gz")) / 1024 + 4096 ))
mkfs.vfat -C "$w/disk.img" "$size_kb" >/dev/null
syslinux --install "$w/disk.img"
MTOOLS_SKIP_CHECK=1 mcopy -i "$w/disk.img" "$kernel" ::vmlinuz
MTOOLS_SKIP_CHECK=1 mcopy -i "$w/disk.img" "$w/initrd.gz" ::initrd.gz
MTOOLS_SKIP_CHECK=1 mcopy -i "$w/disk.img" "$w/syslinux.cfg" ::syslinux.cfg
qemu-img convert -q -f raw -O qcow2 "$w/disk.img" "$out"
