#!/bin/bash
# The shipped systemd units (etc/systemd/) and service users
# (etc/sysusers.d/): systemd's own parser finds nothing to say about the
# units as `make install` writes them (systemd-analyze verify works without
# a running systemd), each has the sandbox the documentation promises, the
# gateway's open-file limit holds the documented defaults, and
# systemd-sysusers makes the users the configuration names by default.
# The install as a product: the configuration, PAM files and logrotate's
# file go to SYSCONFDIR once and a second install keeps an admin's;
# systemd-tmpfiles makes the directories the daemons write with the owners
# and modes they need; logrotate reads its file and rotates an audit trail
# as its service user, then asks the daemon to reopen it.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
BUILD=${BUILD:-build}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing (make deps installs systemd)"

# --- make install writes the units, with ExecStart where it put the binaries -----------
make --no-print-directory -s BUILD="$BUILD" SAN="${SAN:-}" install DESTDIR="$T/root" PREFIX=/opt/pt \
	>"$T/install.log" 2>&1 || fail "make install: $(tail -5 "$T/install.log")"
U=$T/root/opt/pt/lib/systemd/system
for d in broker gateway sessiond; do
	[ -f "$U/portico-$d.service" ] || fail "make install did not install portico-$d.service"
	grep -qx "ExecStart=/opt/pt/bin/portico-$d -c /etc/portico/portico.conf" "$U/portico-$d.service" ||
		fail "portico-$d.service: $(grep ExecStart= "$U/portico-$d.service")"
	[ -x "$T/root/opt/pt/bin/portico-$d" ] || fail "no portico-$d installed"
done
[ -f "$T/root/opt/pt/lib/sysusers.d/portico.conf" ] || fail "make install did not install the sysusers file"
[ -f "$T/root/opt/pt/lib/tmpfiles.d/portico.conf" ] || fail "make install did not install the tmpfiles file"
# What an admin edits goes to SYSCONFDIR (/etc), under DESTDIR.
for f in portico/portico.conf:640 portico/xsession:755 pam.d/portico:644 pam.d/portico-session:644 \
	logrotate.d/portico:644; do
	[ "$(stat -c %a "$T/root/etc/${f%:*}" 2>/dev/null)" = "${f#*:}" ] ||
		fail "make install: /etc/${f%:*} is not there with mode ${f#*:}: $(ls -l "$T/root/etc/${f%:*}" 2>&1)"
done
cmp -s etc/portico.conf "$T/root/etc/portico/portico.conf" || fail "the installed configuration is not etc/portico.conf"
grep -q "^install: $T/root/etc/pam.d/portico$" "$T/install.log" || fail "make install did not say what it wrote: $(cat "$T/install.log")"

# --- a second install keeps what the admin changed ------------------------------------------
echo "; the admin's" >>"$T/root/etc/portico/portico.conf"
echo "auth required pam_deny.so" >"$T/root/etc/pam.d/portico"
rm "$T/root/etc/logrotate.d/portico"
make --no-print-directory -s BUILD="$BUILD" SAN="${SAN:-}" install DESTDIR="$T/root" PREFIX=/opt/pt \
	>"$T/install2.log" 2>&1 || fail "a second make install: $(tail -5 "$T/install2.log")"
tail -1 "$T/root/etc/portico/portico.conf" | grep -qx "; the admin's" || fail "a second install overwrote the configuration"
grep -qx "auth required pam_deny.so" "$T/root/etc/pam.d/portico" || fail "a second install overwrote the PAM file"
grep -q "^install: $T/root/etc/portico/portico.conf exists: kept as it is (the shipped one is etc/portico.conf)$" \
	"$T/install2.log" || fail "a second install did not say it kept the configuration: $(cat "$T/install2.log")"
grep -q "^install: $T/root/etc/pam.d/portico exists: kept" "$T/install2.log" || fail "nor the PAM file: $(cat "$T/install2.log")"
cmp -s etc/logrotate.d/portico "$T/root/etc/logrotate.d/portico" || fail "a missing file was not installed again"
cmp -s etc/portico.conf "$T/root/opt/pt/etc/portico/portico.conf.sample" || fail "the sample is not the release's"
echo "ok: make install: SYSCONFDIR once, an admin's files kept"

# --- systemd-analyze verify: silent on the units, loud on a broken one ---------------------
# verify exits 0 on an unknown key or a value it ignores, and says so: any
# line it prints is a fault.  The units as installed, pointed at the binaries
# of this build (verify checks that ExecStart is executable).
mkdir -p "$T/units"
for f in "$U"/*.service; do
	sed "s|/opt/pt/bin/|$PWD/$BUILD/bin/|" "$f" >"$T/units/$(basename "$f")"
done
verify() { out=$(cd "$T" && systemd-analyze verify "$@" 2>&1) && [ -z "$out" ]; }
verify "$T"/units/*.service || fail "systemd-analyze verify: $out"
mkdir -p "$T/bad"
sed 's/^ProtectSystem=strict/ProtectSystm=strict/' "$T/units/portico-gateway.service" >"$T/bad/portico-gateway.service"
verify "$T/bad/portico-gateway.service" && fail "verify did not see a misspelt key"
grep -q "Unknown key 'ProtectSystm'" <<<"$out" || fail "verify on a misspelt key: $out"
echo "ok: systemd-analyze verify"

# --- the sandbox of each -----------------------------------------------------------------------
has() { grep -qx "$2" "$T/units/portico-$1.service" || fail "portico-$1.service has no '$2'"; }
hasnt() { ! grep -q "^$2" "$T/units/portico-$1.service" || fail "portico-$1.service sets $2 ($3)"; }
# caps UNIT CAP...: the bounding set is exactly these
caps() {
	local u=$1 have want
	shift
	have=$(sed -n 's/^CapabilityBoundingSet=//p' "$T/units/portico-$u.service" | tr ' ' '\n' | sort | xargs)
	want=$(printf '%s\n' "$@" | sort | xargs)
	[ "$have" = "$want" ] || fail "portico-$u.service: CapabilityBoundingSet is '$have', not '$want'"
}
for u in broker gateway sessiond; do
	has $u "Restart=on-failure"
	has $u "WantedBy=multi-user.target"
done
for u in broker gateway; do
	for p in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes ProtectHome=yes PrivateDevices=yes \
		RestrictSUIDSGID=yes RestrictNamespaces=yes; do
		has $u "$p"
	done
done
has broker "ReadWritePaths=/var/lib/portico -/etc/portico/tls -/var/log/portico/broker"
has gateway "ReadWritePaths=-/etc/portico/tls -/var/log/portico/gateway"
# Reload = SIGHUP to the main process: the audit trail is reopened.
has broker 'ExecReload=/bin/kill -HUP $MAINPID'
has gateway 'ExecReload=/bin/kill -HUP $MAINPID'
caps broker CAP_SETUID CAP_SETGID CAP_KILL CAP_AUDIT_WRITE
caps gateway CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID
# The session agent: what it sets holds for the sessions it starts.
has sessiond "KillMode=process"
hasnt sessiond NoNewPrivileges "a screen locker's unix_chkpwd, sudo and passwd in the sessions"
hasnt sessiond ProtectHome "desktops run in the homes"
hasnt sessiond PrivateTmp "sessions outlive a restart, a private /tmp does not"
hasnt sessiond "ProtectSystem=strict" "desktops write in /tmp, /var/tmp and /run/user"
caps sessiond CAP_SETUID CAP_SETGID CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_KILL \
	CAP_AUDIT_WRITE CAP_AUDIT_CONTROL CAP_SYS_RESOURCE
echo "ok: each unit's sandbox"

# --- the gateway's open-file limit holds the documented defaults ----------------------------
# What the gateway needs at max_connections and rdp_max_logins as
# etc/portico.conf documents them, by its own figures (gateway/gateway.h).
# def SECTION KEY: the documented default
def() { awk -v s="[$1]" -v k="$2" '/^\[/ { in_s = ($0 == s) } in_s && $1 == k && $2 == "=" { print $3 }' etc/portico.conf; }
fds() { sed -n "s/^#define $1 \([0-9]*\).*/\1/p" gateway/gateway.h; }
need=$(($(def gateway max_connections) * $(fds GW_FDS_PER_CONN) + $(def gateway rdp_max_logins) * $(fds GW_FDS_PER_LOGIN) + $(fds GW_FDS_HEADROOM)))
[ "$need" -ge 80000 ] || fail "the figures of the gateway's needs: $need"
lim=$(sed -n 's/^LimitNOFILE=\([0-9:]*\)$/\1/p' "$T/units/portico-gateway.service")
[ "${lim##*:}" -ge "$need" ] || fail "the gateway's LimitNOFILE=$lim is below the $need descriptors of its defaults"
[ "${lim%%:*}" -ge "$need" ] || fail "the gateway's soft LimitNOFILE=$lim is below $need"
# The broker and the agent: one descriptor per HTTPS connection, and more
# than as many again for the rest (the store, calls to hosts, sessions).
for u in broker sessiond; do
	lim=$(sed -n 's/^LimitNOFILE=\([0-9:]*\)$/\1/p' "$T/units/portico-$u.service")
	n=$(def $u max_connections)
	[ -n "$n" ] && [ "${lim##*:}" -ge $((2 * n + 1024)) ] ||
		fail "portico-$u.service: LimitNOFILE=$lim for max_connections $n"
done
echo "   the gateway needs $need descriptors at the defaults; LimitNOFILE=$(sed -n 's/^LimitNOFILE=//p' "$T/units/portico-gateway.service")"
echo "ok: open-file limits"

# --- systemd-sysusers makes the default users -----------------------------------------------
mkdir -p "$T/sys/etc"
systemd-sysusers --root="$T/sys" - <etc/sysusers.d/portico.conf >"$T/sysusers.log" 2>&1 ||
	fail "systemd-sysusers: $(cat "$T/sysusers.log")"
for u in portico-broker portico-gateway portico-sessiond portico-vm; do
	line=$(grep "^$u:" "$T/sys/etc/passwd") || fail "sysusers made no $u: $(cat "$T/sysusers.log")"
	[ "$(cut -d: -f7 <<<"$line")" = /usr/sbin/nologin ] || fail "$u can log in: $line"
	[ "$(cut -d: -f3 <<<"$line")" -lt 1000 ] || fail "$u is no system user: $line"
done
grep -q '^kvm:x:[0-9]*:portico-vm$' "$T/sys/etc/group" || fail "portico-vm is not in group kvm: $(cat "$T/sys/etc/group")"
grep -q '^portico-admin:' "$T/sys/etc/group" || fail "no group portico-admin"
# ... and they are the configuration's defaults: the users an empty
# configuration names are the ones sysusers made, each its own.
users=$(sed -n 's/^\(user\|gateway_user\|vm_user\) = \(.*\)$/\2/p' etc/portico.conf | sort -u | xargs)
[ "$users" = "portico-broker portico-gateway portico-sessiond portico-vm" ] ||
	fail "etc/portico.conf names the users '$users'"
for u in $users; do grep -q "^$u:" "$T/sys/etc/passwd" || fail "sysusers does not make $u"; done
echo "ok: service users"

# --- systemd-tmpfiles makes the directories, with their users --------------------------------
# In the installed tree: the users first (the installed sysusers file), then
# the installed tmpfiles file; tmpfiles looks the names up in that root.
R=$T/root
systemd-tmpfiles --create --root="$R" "$R/opt/pt/lib/tmpfiles.d/portico.conf" >"$T/tmpfiles0.log" 2>&1 &&
	fail "systemd-tmpfiles made the directories of users that do not exist yet: $(ls -lnR "$R/var/log")"
systemd-sysusers --root="$R" "$R/opt/pt/lib/sysusers.d/portico.conf" >"$T/sysusers-root.log" 2>&1 ||
	fail "systemd-sysusers --root: $(cat "$T/sysusers-root.log")"
systemd-tmpfiles --create --root="$R" "$R/opt/pt/lib/tmpfiles.d/portico.conf" >"$T/tmpfiles.log" 2>&1 ||
	fail "systemd-tmpfiles --create: $(cat "$T/tmpfiles.log")"
[ -s "$T/tmpfiles.log" ] && fail "systemd-tmpfiles said: $(cat "$T/tmpfiles.log")"
id_of() { sed -n "s/^$1:x:\([0-9]*\):.*/\1/p" "$R/etc/$2"; }
# dir PATH MODE USER GROUP: made with that mode and owners (by the root's names)
dir() {
	local uid=0 gid=0 have
	[ "$3" = root ] || uid=$(id_of "$3" passwd)
	[ "$4" = root ] || gid=$(id_of "$4" group)
	have=$(stat -c '%a %u %g' "$R$1" 2>/dev/null) || fail "systemd-tmpfiles made no $1"
	[ "$have" = "$2 $uid $gid" ] || fail "$1 is '$have' (mode uid gid), not '$2 $uid $gid' ($3:$4)"
}
dir /var/lib/portico 1775 root portico-broker
dir /run/portico 755 root root
dir /etc/portico/tls 755 root root
dir /var/log/portico 755 root root
dir /var/log/portico/broker 750 portico-broker portico-broker
dir /var/log/portico/gateway 750 portico-gateway portico-gateway
# The broker's unit makes its store's directory the same way (a machine
# where tmpfiles has not run yet).
grep -qx "ExecStartPre=+/usr/bin/install -d -m 1775 -o root -g portico-broker /var/lib/portico" \
	"$T/units/portico-broker.service" || fail "the broker's unit makes /var/lib/portico otherwise"
# Each daemon may write its audit directory in its sandbox.
for u in broker gateway; do
	grep -q "^ReadWritePaths=.* -/var/log/portico/$u$" "$T/units/portico-$u.service" ||
		fail "portico-$u.service cannot write /var/log/portico/$u"
done
echo "ok: systemd-tmpfiles"

# --- logrotate: the installed file parses, and rotates as the service user ---------------------
command -v logrotate >/dev/null || fail "logrotate is missing (apt-get install logrotate)"
# logrotate resolves `su` users on this machine: run it in a mount namespace
# of its own where /etc/passwd and /etc/group are this machine's plus the
# service users (nothing outside the namespace changes).
mkdir -p "$T/lr/etc"
cp /etc/passwd /etc/group "$T/lr/etc/"
systemd-sysusers --root="$T/lr" "$R/opt/pt/lib/sysusers.d/portico.conf" >/dev/null 2>&1 ||
	fail "systemd-sysusers for logrotate"
# in_ns CMD...: CMD with the service users known
in_ns() {
	unshare -m sh -c 'mount --bind "$0/passwd" /etc/passwd && mount --bind "$0/group" /etc/group && exec "$@"' \
		"$T/lr/etc" "$@"
}
in_ns true || fail "unshare -m (a mount namespace) is needed to run logrotate with the service users"
lr_debug() { out=$(cd "$T" && in_ns logrotate -d -s "$T/lr/state" "$1" 2>&1) && ! grep -qi "error" <<<"$out"; }
lr_debug "$R/etc/logrotate.d/portico" || fail "logrotate -d on the installed file: $out"
for f in /var/log/portico/broker/audit.log /var/log/portico/gateway/audit.log; do
	grep -q "^considering log $f$" <<<"$out" || fail "logrotate does not consider $f: $out"
done
# Each directory is its daemon's: logrotate works in it as that user.
for u in broker gateway; do
	awk -v f="/var/log/portico/$u/audit.log {" -v u="$u" '$0 == f { in_b = 1 } in_b && $1 == "su" { ok = ($2 == "portico-" u && $3 == "portico-" u); in_b = 0 } END { exit !ok }' \
		"$R/etc/logrotate.d/portico" || fail "logrotate does not rotate /var/log/portico/$u as portico-$u"
done
sed 's/^\tweekly$/\tweakly/' "$R/etc/logrotate.d/portico" >"$T/lr/bad"
lr_debug "$T/lr/bad" && fail "logrotate -d did not see a misspelt directive: $out"
# A real rotation, of the installed file with its paths under $T: the file
# is renamed (not copied, not recreated: the daemon makes the new one) by
# the directory's user, and the daemon is reloaded only when it runs
# (systemctl here records what it was asked).
mkdir -p "$T/lr/log/broker" "$T/lr/log/gateway" "$T/lr/bin"
for u in broker gateway; do
	printf '{"event":"login"}\n' >"$T/lr/log/$u/audit.log"
	chown -R "$(sed -n "s/^portico-$u:x:\([0-9]*\):\([0-9]*\):.*/\1:\2/p" "$T/lr/etc/passwd")" "$T/lr/log/$u"
	chmod 0750 "$T/lr/log/$u"
	chmod 0600 "$T/lr/log/$u/audit.log"
done
uid=$(sed -n 's/^portico-broker:x:\([0-9]*\):.*/\1/p' "$T/lr/etc/passwd")
printf '#!/bin/sh\necho "$*" >>%s/systemctl.calls\n[ "$1" != is-active ] || [ "$3" = portico-broker.service ]\n' "$T/lr" \
	>"$T/lr/bin/systemctl"
chmod 755 "$T/lr/bin/systemctl"
sed "s|/var/log/portico/|$T/lr/log/|" "$R/etc/logrotate.d/portico" >"$T/lr/portico"
chmod 755 "$T" "$T/lr" "$T/lr/log"
PATH=$T/lr/bin:$PATH in_ns logrotate -f -s "$T/lr/state" "$T/lr/portico" >"$T/lr/run.log" 2>&1 ||
	fail "logrotate -f: $(cat "$T/lr/run.log")"
[ -e "$T/lr/log/broker/audit.log" ] && fail "logrotate made a new audit.log (the daemon makes it, 0600)"
[ "$(cat "$T/lr/log/broker/audit.log.1" 2>/dev/null)" = '{"event":"login"}' ] ||
	fail "the audit trail was not rotated to audit.log.1: $(ls -l "$T/lr/log/broker") $(cat "$T/lr/run.log")"
[ "$(stat -c '%a %u' "$T/lr/log/broker/audit.log.1")" = "600 $uid" ] ||
	fail "the rotated file is $(stat -c '%a %u' "$T/lr/log/broker/audit.log.1")"
grep -qx "reload portico-broker.service" "$T/lr/systemctl.calls" ||
	fail "logrotate did not reload the broker: $(cat "$T/lr/systemctl.calls" 2>&1)"
grep -q "reload portico-gateway" "$T/lr/systemctl.calls" && fail "logrotate reloaded a gateway that was not running"
echo "ok: logrotate"
