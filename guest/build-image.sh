#!/bin/bash
# build-image.sh OUT.qcow2 - Portico's golden desktop VM image: Debian 12
# (bookworm) with IceWM, xterm, xrdp (Xvnc sessions) and the QEMU guest
# agent, built with mmdebstrap from Debian's packages. The disk is made
# without mounting anything: an MBR (syslinux's mbr.bin), a FAT boot
# partition (kernel, initramfs, syslinux, written with mtools) and an ext4
# root made with mke2fs -d. OUT appears only when the build succeeded.
# Runs as root (mmdebstrap's root mode; the files keep their owners).
# MIRROR and SECURITY_MIRROR override Debian's mirrors. guest/README.md.
set -eu

# What the image holds, with their dependencies only (no recommends).
PACKAGES=(
	systemd-sysv udev passwd          # init, devices, useradd for the broker
	dbus                              # logind: the agent's guest-shutdown
	linux-image-cloud-amd64           # virtio drivers, boots fast under TCG
	initramfs-tools
	qemu-guest-agent                  # readiness, accounts (guest-exec)
	xrdp tigervnc-standalone-server   # RDP server, one Xvnc per session
	icewm xterm fonts-dejavu-core     # the desktop
)
SUITE=bookworm
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
BOOT_MB=64      # FAT boot partition: kernel + initramfs + ldlinux
DISK_MB=4096    # virtual size; the qcow2 holds only what is written
CMDLINE="root=/dev/vda2 rw rootflags=noatime console=ttyS0 quiet"

die() { echo "build-image: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: build-image.sh OUT.qcow2"
out=$1
[ "$(id -u)" -eq 0 ] || die "must run as root (mmdebstrap --mode=root keeps file owners for mke2fs -d)"
for t in mmdebstrap mke2fs mkfs.vfat syslinux mcopy qemu-img; do
	command -v "$t" >/dev/null || die "$t not found (make deps)"
done
mbr=/usr/lib/syslinux/mbr/mbr.bin
[ -r "$mbr" ] || die "$mbr not found (syslinux-common)"
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$(dirname "$out")"
w=$(mktemp -d "$(dirname "$out")/.desktop.XXXXXX")
trap 'rm -rf "$w"' EXIT
start=$(date +%s)

include=$(printf '%s,' "${PACKAGES[@]}")
mmdebstrap --mode=root --variant=apt --format=directory \
	--aptopt='APT::Install-Recommends "false"' \
	--dpkgopt=force-unsafe-io --dpkgopt="$here/files/setup/etc/dpkg/dpkg.cfg.d/portico-small" \
	--setup-hook="cp -R --preserve=mode '$here/files/setup/.' \"\$1/\"" \
	--include="${include%,}" \
	--customize-hook="cp -R --preserve=mode '$here/files/root/.' \"\$1/\"" \
	--customize-hook="'$here/customize.sh' \"\$1\"" \
	"$SUITE" "$w/root" \
	"deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
	"deb $SECURITY_MIRROR $SUITE-security main"
# mmdebstrap's own settings for the build; the image keeps files/setup's.
rm -f "$w/root/etc/dpkg/dpkg.cfg.d/99mmdebstrap" "$w/root/etc/apt/apt.conf.d/99mmdebstrap"

# The kernel and initramfs move to the boot partition.
kernel=$(ls "$w/root/boot"/vmlinuz-* | sort -V | tail -n 1)
initrd=$(ls "$w/root/boot"/initrd.img-* | sort -V | tail -n 1)
mv "$kernel" "$w/vmlinuz"
mv "$initrd" "$w/initrd.img"
rm -rf "$w/root/boot/"* "$w/root/vmlinuz" "$w/root/vmlinuz.old" \
	"$w/root/initrd.img" "$w/root/initrd.img.old"
cat >"$w/syslinux.cfg" <<CFG
DEFAULT desktop
PROMPT 0
TIMEOUT 0
LABEL desktop
  KERNEL vmlinuz
  APPEND initrd=initrd.img $CMDLINE
CFG

# The disk: MBR, partition 1 FAT (active) from sector 2048, partition 2
# ext4 to the end.
disk=$w/disk.img
boot_start=2048
boot_sectors=$((BOOT_MB * 2048))
root_start=$((boot_start + boot_sectors))
root_sectors=$((DISK_MB * 2048 - root_start))
truncate -s "${DISK_MB}M" "$disk"
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# status, CHS (LBA only: fe ff ff), type, CHS, first sector, sectors
entry() { printf "\\x$1\\xfe\\xff\\xff\\x$2\\xfe\\xff\\xff$(le32 "$3")$(le32 "$4")"; }
dd if="$mbr" of="$disk" bs=440 count=1 conv=notrunc status=none
{ entry 80 0e "$boot_start" "$boot_sectors"; entry 00 83 "$root_start" "$root_sectors"; } |
	dd of="$disk" bs=1 seek=446 conv=notrunc status=none
printf '\x55\xaa' | dd of="$disk" bs=1 seek=510 conv=notrunc status=none

mkfs.vfat -F 16 -n PORTICOBOOT --offset "$boot_start" -h "$boot_start" "$disk" $((boot_sectors / 2)) >/dev/null
syslinux --install --offset $((boot_start * 512)) "$disk"
for f in vmlinuz initrd.img syslinux.cfg; do
	MTOOLS_SKIP_CHECK=1 mcopy -i "$disk@@$((boot_start * 512))" "$w/$f" "::$f"
done
# Inode tables and journal zeroed now (holes in the file, nothing in the
# qcow2), so that no VM spends its boot on ext4's lazy initialisation.
mke2fs -q -F -t ext4 -L portico-root -d "$w/root" -m 1 \
	-E offset=$((root_start * 512)),lazy_itable_init=0,lazy_journal_init=0 \
	"$disk" $((root_sectors / 2))k

qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$disk" "$w/desktop.qcow2"
chmod 0644 "$w/desktop.qcow2"
mv -f "$w/desktop.qcow2" "$out"
echo "build-image: $out: $(du -m --apparent-size "$out" | cut -f1) MB (root file system $(du -sm "$w/root" | cut -f1) MB) in $(($(date +%s) - start)) s"
