#!/bin/bash
# The shipped systemd units (etc/systemd/) and service users
# (etc/sysusers.d/): systemd's own parser finds nothing to say about the
# units as `make install` writes them (systemd-analyze verify works without
# a running systemd), each has the sandbox the documentation promises, the
# gateway's open-file limit holds the documented defaults, and
# systemd-sysusers makes the users the configuration names by default.
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
has broker "ReadWritePaths=/var/lib/portico -/etc/portico/tls"
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
