#!/bin/sh
# customize.sh ROOT - mmdebstrap's customize hook for the Portico desktop
# image (build-image.sh): the settings that are edits of files packages own,
# the services a boot runs, and what must not be shared by every clone.
set -eu
root=$1

# xrdp: TLS only (its key is made on each boot: portico-xrdp-cert.service),
# users who send their name and password land in an Xvnc session without
# the login dialog, logs to the journal only.
sed -i -e 's/^security_layer=.*/security_layer=tls/' \
	-e 's/^autorun=.*/autorun=Xvnc/' \
	-e 's/^certificate=.*/certificate=/' -e 's/^key_file=.*/key_file=/' \
	"$root/etc/xrdp/xrdp.ini"
# rsakeys.ini stays: xrdp will not start without it, but with TLS only it
# is never used (it serves RDP's old "standard security").
rm -f "$root/etc/xrdp/cert.pem" "$root/etc/xrdp/key.pem" \
	"$root/etc/ssl/private/ssl-cert-snakeoil.key" "$root/etc/ssl/certs/ssl-cert-snakeoil.pem"

chroot "$root" systemctl enable systemd-networkd.service portico-xrdp-cert.service >/dev/null 2>&1
# What a boot under emulation does not need (every unit costs about a
# second of the one emulated CPU): timers, first-boot prompts, waiting for
# the network (xrdp listens on every address anyway), gettys on the screen
# (root is locked), kernel file systems and modules nothing here uses, the
# remount of / (the kernel mounts it read-write), the random seed (the
# kernel's is enough, and clones must not share one), system users (made
# when the image was built), the journal's flush (it stays in memory).
chroot "$root" systemctl mask \
	apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
	e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer \
	systemd-tmpfiles-clean.timer \
	systemd-networkd-wait-online.service systemd-firstboot.service \
	systemd-pstore.service getty@tty1.service getty-static.service \
	dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount \
	sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount \
	proc-sys-fs-binfmt_misc.automount systemd-binfmt.service \
	modprobe@dm_mod.service modprobe@loop.service modprobe@configfs.service \
	modprobe@fuse.service modprobe@drm.service modprobe@efi_pstore.service \
	systemd-remount-fs.service systemd-random-seed.service \
	systemd-sysusers.service systemd-journal-flush.service \
	systemd-network-generator.service systemd-update-utmp.service \
	systemd-update-utmp-runlevel.service >/dev/null 2>&1
# Generators for what the image has not: encrypted or GPT-discovered disks,
# hibernation, offline updates, rc.local and System V scripts.
mkdir -p "$root/etc/systemd/system-generators"
for g in systemd-gpt-auto-generator systemd-cryptsetup-generator \
	systemd-veritysetup-generator systemd-integritysetup-generator \
	systemd-hibernate-resume-generator systemd-system-update-generator \
	systemd-rc-local-generator systemd-sysv-generator; do
	ln -sf /dev/null "$root/etc/systemd/system-generators/$g"
done
# The kernel and initramfs live on the boot partition, not in /boot: an
# upgrade of them means building the image again (guest/README.md).
chroot "$root" apt-mark hold linux-image-cloud-amd64 >/dev/null

# Each clone makes its own machine id, random seed, SSH-less, log-less.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id" "$root/var/lib/systemd/random-seed"
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin \
	"$root/var/cache/apt/archives/"*.deb "$root/var/log/apt/"* "$root/var/cache/debconf/"*-old \
	"$root/var/cache/ldconfig/aux-cache" "$root/tmp/"*
# Logs emptied, not removed: xrdp, which runs as its own user, cannot make
# its log file again.
find "$root/var/log" -type f -exec truncate -s 0 {} +
