#!/bin/bash
# make demo: the whole of Portico on loopback, in the foreground.
#
# Starts portico-broker, portico-sessiond and portico-gateway with a demo
# user with a printed password, a desktop pool and an application pool on
# the session host, an RDP desktop pool on an xrdp host, and prints how to
# connect.  Ctrl-C stops everything and removes what it made.
#
# The daemons trust each other as in production (docs/admin.md): a CA of
# the demo's own made with `portico-admin pki`, one certificate per node
# (the broker "broker", the gateway "gw1", the session host "demo-host"),
# no shared secret.  The gateway shows RDP clients a self-signed
# certificate of its own making ([tls] cert), which no node trusts.
#
# Nothing of the system changes: the demo user, the "portico" service user
# and the PAM services live in the demo's own directory (nss_wrapper and
# pam_wrapper point the daemons at them); the demo user's sessions run
# under a uid that no system account has.
#
# The RDP desktop stands for an existing xrdp (or Windows) host: xrdp, whose
# vnc-any module shows an Xvnc desktop the demo starts as the demo user.
# (xrdp keeps its pid file in /run/xrdp, the one trace outside DEMO_DIR.)
#
# Ports: DEMO_BROKER_PORT (8443), DEMO_SESSIOND_PORT (8444), DEMO_VNC_PORT
# (5900), DEMO_RDP_PORT (3389), DEMO_XRDP_PORT (3390); a busy one is
# replaced by a free one.  DEMO_DIR: where to keep it all (a new directory
# under /tmp).
set -u
BUILD=${BUILD:-build}
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=$TOP/$BUILD/bin
NSS=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so
PAMW=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so
MATRIX=/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so
SECMOD=/usr/lib/x86_64-linux-gnu/security

die() { echo "demo: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run it as root (sessions start as their users, as on a real session host)"
for f in "$BIN/portico-broker" "$BIN/portico-sessiond" "$BIN/portico-gateway" "$BIN/portico" "$BIN/portico-admin" "$NSS" "$PAMW" "$MATRIX"; do
	[ -e "$f" ] || die "$f is missing: run 'make demo' (it installs and builds what is needed)"
done

busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port() { # wanted port, or a free one below 32768
	local p=$1
	if busy "$p"; then
		for _ in $(seq 1 200); do
			p=$((20000 + RANDOM % 12000))
			busy "$p" || break
		done
	fi
	echo "$p"
}
BP=$(port "${DEMO_BROKER_PORT:-8443}")
SP=$(port "${DEMO_SESSIOND_PORT:-8444}")
VP=$(port "${DEMO_VNC_PORT:-5900}")
RP=$(port "${DEMO_RDP_PORT:-3389}")
HP=$(port "${DEMO_HTTPS_PORT:-8445}")
XP=$(port "${DEMO_XRDP_PORT:-3390}")
D=${DEMO_DIR:-$(mktemp -d /tmp/portico-demo.XXXXXX)}
mkdir -p "$D"/{tls,db,pam,run,state,home}
chmod 755 "$D"

PIDS=() NAMES=()
# Running and not yet a zombie (kill -0 succeeds on a zombie).
running() { [ -d "/proc/$1" ] && [ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "demo: stopping"
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	[ -n "${XRDP_PID:-}" ] && kill -TERM -- -"$XRDP_PID" 2>/dev/null
	# A program that does not stop is a bug: it is named and killed, so that
	# Ctrl-C always ends the demo.
	local i left
	for _ in $(seq 1 "$((${DEMO_STOP_GRACE:-30} * 10))"); do
		left=0
		for p in "${PIDS[@]}"; do running "$p" && left=1; done
		[ "$left" = 0 ] && break
		sleep 0.1
	done
	for i in "${!PIDS[@]}"; do
		running "${PIDS[$i]}" || continue
		echo "demo: ${NAMES[$i]} (pid ${PIDS[$i]}) did not stop within ${DEMO_STOP_GRACE:-30}s of SIGTERM: killed" >&2
		pkill -KILL -P "${PIDS[$i]}" 2>/dev/null
		kill -KILL "${PIDS[$i]}" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	# Sessions outlive the agent by design: end the demo's.
	for f in "$D"/run/state/*; do
		[ -f "$f" ] || continue
		m=$(awk '$1 == "monitor" { print $2 }' "$f")
		[ -n "$m" ] && [ "$(cat "/proc/$m/comm" 2>/dev/null)" = pt-session ] && kill -TERM "$m"
	done
	for _ in $(seq 1 30); do pgrep -U 64991 >/dev/null || break; sleep 0.1; done
	pkill -KILL -U 64991 2>/dev/null
	for _ in $(seq 1 30); do pgrep -U 64991 >/dev/null || break; sleep 0.1; done
	rm -rf "$D"
	echo "demo: stopped, $D removed"
	exit 0
}
trap cleanup INT TERM EXIT

# --- a CA and one certificate per node: portico-admin pki --------------------------------
pki() { "$BIN/portico-admin" pki "$@" >/dev/null || die "portico-admin pki $1 failed"; }
pki init "$D/pki"
pki issue "$D/pki" --role broker broker --san 127.0.0.1,localhost
pki issue "$D/pki" --role gateway gw1 --san 127.0.0.1,localhost
pki issue "$D/pki" --role host demo-host --san 127.0.0.1,localhost
# The daemons read their keys as root; their unprivileged sides, ca.pem.
chmod 755 "$D/pki"

# --- users, groups, PAM: the demo's own ---------------------------------------------------
PASSWORD=$(openssl rand -base64 12 | tr -d '/+=' | cut -c1-12)
cat >"$D/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
portico:x:64990:64990:Portico:/nonexistent:/usr/sbin/nologin
demo:x:64991:64991:Portico demo user:$D/home/demo:/bin/sh
EOF
cat >"$D/group" <<EOF
root:x:0:
portico:x:64990:
demo:x:64991:
staff:x:64992:demo
portico-admin:x:64993:demo
EOF
mkdir -p "$D/home/demo"
chown 64991:64991 "$D/home/demo"
chown 64990:64990 "$D/db"
echo "demo:$PASSWORD:portico" >"$D/pam/passdb"
cat >"$D/pam/portico" <<EOF
auth    required $MATRIX passdb=$D/pam/passdb
account required $MATRIX passdb=$D/pam/passdb
EOF
# Sessions: the broker's PAM login already checked the demo account; the
# session service only opens and closes (no system stack is involved).
cat >"$D/pam/portico-session" <<EOF
auth    required $SECMOD/pam_permit.so
account required $SECMOD/pam_permit.so
session required $SECMOD/pam_permit.so
EOF
printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$D/pam/other"

# --- the configuration ---------------------------------------------------------------------
cat >"$D/portico.conf" <<EOF
; Portico demo ($D), made by etc/demo.sh
[tls]
; What RDP clients see at the gateway's login step: made by the gateway,
; self-signed, trusted by no node.
cert = $D/tls/rdp.pem
key  = $D/tls/rdp.key
ca   = $D/pki/ca.pem

[broker]
cert = $D/pki/broker.pem
key = $D/pki/broker.key
gateways = gw1
listen = 127.0.0.1:$BP
store = sqlite:$D/db/portico.db
pam_service = portico
user = portico
admin_group = portico-admin
fail_delay = 1s

[gateway]
cert = $D/pki/gw1.pem
key = $D/pki/gw1.key
broker = https://127.0.0.1:$BP
vnc_listen = 127.0.0.1:$VP
rdp_listen = 127.0.0.1:$RP
https_listen = 127.0.0.1:$HP
web_root = $TOP/web
public_host = 127.0.0.1
user = portico

[sessiond]
cert = $D/pki/demo-host.pem
key = $D/pki/demo-host.key
broker_name = broker
broker = https://127.0.0.1:$BP
listen = 127.0.0.1:$SP
name = demo-host
user = portico
gateway_user = portico
vm_user = portico
run_dir = $D/run
state_dir = $D/state
xsession = $TOP/etc/xsession
; The demo's user has a uid above UID_MAX, so that it can be no real
; user's: name it, as a site does a system account that is a kiosk user.
allow_users = demo

[pool desktop]
kind = desktop
driver = xvnc
hosts = demo-host
groups = staff
geometry = 1280x800
disconnect_timeout = 1h

[pool clock]
kind = app
driver = xvnc
command = /usr/bin/xclock -update 1
hosts = demo-host
users = demo
geometry = 400x400

[pool rdesktop]
kind = desktop
protocol = rdp
driver = static
hosts = 127.0.0.1:$XP
users = demo
EOF

run() { # NAME BINARY: start a daemon in the demo's world
	env LD_PRELOAD="$PAMW $NSS" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$D/pam" \
		PAM_WRAPPER_DISABLE_DEEPBIND=1 NSS_WRAPPER_DISABLE_DEEPBIND=1 UID_WRAPPER_DISABLE_DEEPBIND=1 \
		NSS_WRAPPER_PASSWD="$D/passwd" NSS_WRAPPER_GROUP="$D/group" \
		ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		"$BIN/$2" -c "$D/portico.conf" > >(sed -u "s/^/[$1] /") 2>&1 &
	PIDS+=($!) NAMES+=("$2")
}
run broker portico-broker
for _ in $(seq 1 50); do busy "$BP" && break; sleep 0.1; done
busy "$BP" || die "the broker did not start"
run sessiond portico-sessiond
run gateway portico-gateway # it makes $D/tls/rdp.pem
for _ in $(seq 1 50); do busy "$VP" && busy "$RP" && busy "$HP" && break; sleep 0.1; done
busy "$VP" && busy "$RP" && busy "$HP" || die "the gateway did not start"
# What portico checks the RD Gateway's certificate against: the nodes' CA
# and the gateway's self-signed public certificate.
cat "$D/pki/ca.pem" "$D/tls/rdp.pem" >"$D/client-ca.pem"

# --- the xrdp host: xrdp showing an Xvnc desktop of the demo user's ---------------------
command -v xrdp >/dev/null && command -v Xvnc >/dev/null || die "xrdp or Xvnc is missing: run 'make demo'"
XVP=$(port 25901)
VNCPW=$(openssl rand -hex 4)
printf '%s' "$VNCPW" | openssl enc -des-ecb -nopad -K e84ad660c4721ae0 -provider legacy \
	-provider default >"$D/xrdp-host.vncpasswd" 2>/dev/null || die "cannot write the VNC password"
chown 64991 "$D/xrdp-host.vncpasswd"
chmod 600 "$D/xrdp-host.vncpasswd"
setpriv --reuid 64991 --regid 64991 --clear-groups env HOME="$D/home/demo" \
	Xvnc -displayfd 3 -interface 127.0.0.1 -rfbport "$XVP" -SecurityTypes VncAuth \
	-rfbauth "$D/xrdp-host.vncpasswd" -geometry 1280x800 -nolisten tcp 3>"$D/xrdp-host.display" \
	>"$D/xrdp-host.log" 2>&1 &
PIDS+=($!) NAMES+=("the xrdp host's Xvnc")
for _ in $(seq 1 50); do [ -s "$D/xrdp-host.display" ] && break; sleep 0.1; done
[ -s "$D/xrdp-host.display" ] || die "the xrdp host's Xvnc did not start: $(cat "$D/xrdp-host.log")"
setpriv --reuid 64991 --regid 64991 --clear-groups env HOME="$D/home/demo" \
	DISPLAY=":$(cat "$D/xrdp-host.display")" sh "$TOP/etc/xsession" >/dev/null 2>&1 &
# xrdp presents the gateway's RDP certificate too: clients reach it through
# the gateway's address, and the client's first connection (the gateway's
# login step) and its second (xrdp, after the redirection) must show them
# the same one.
sed -e "s|^port=3389|port=tcp://127.0.0.1:$XP|" -e "s|^security_layer=negotiate|security_layer=tls|" \
	-e "s|^certificate=|certificate=$D/tls/rdp.pem|" -e "s|^key_file=|key_file=$D/tls/rdp.key|" \
	-e "s|^autorun=|autorun=demo-desktop|" -e "s|^LogFile=xrdp.log|LogFile=$D/xrdp.log|" \
	-e "s|^EnableSyslog=true|EnableSyslog=false|" /etc/xrdp/xrdp.ini >"$D/xrdp.ini"
printf '\n[demo-desktop]\nname=demo-desktop\nlib=libvnc.so\nip=127.0.0.1\nport=%s\nusername=na\npassword=%s\n' \
	"$XVP" "$VNCPW" >>"$D/xrdp.ini"
chmod 600 "$D/xrdp.ini"
mkdir -p /run/xrdp
setsid xrdp -n -c "$D/xrdp.ini" >"$D/xrdp.out" 2>&1 &
XRDP_PID=$!
for _ in $(seq 1 50); do busy "$SP" && busy "$XP" && break; sleep 0.1; done
busy "$XP" || die "xrdp did not start: $(cat "$D/xrdp.out")"
sleep 1

cat <<EOF

==============================================================================
 Portico is running on 127.0.0.1 (Ctrl-C stops it and removes $D)

   broker API   https://127.0.0.1:$BP/api/v1     (CA: $D/pki/ca.pem)
   web portal   https://127.0.0.1:$HP/       (self-signed: $D/tls/rdp.pem)
   VNC gateway  127.0.0.1:$VP
   RDP gateway  127.0.0.1:$RP
   user         demo   password $PASSWORD   (also an administrator)
   pools        desktop (an Xvnc desktop), clock (xclock, a published app),
                rdesktop (an RDP desktop on an xrdp host)

 In a browser: https://127.0.0.1:$HP/ , sign in as demo, open "desktop"
 (noVNC in the page) or take "rdesktop"'s .rdp file (RD Gateway on 443's
 stand-in, port $HP).

 With the thin client:
   $BIN/portico --broker https://127.0.0.1:$BP --ca $D/pki/ca.pem login demo
   $BIN/portico list
   $BIN/portico connect desktop          (opens TigerVNC's viewer)
   $BIN/portico --ca $D/client-ca.pem connect rdesktop
                                         (opens xfreerdp through the RD Gateway,
                                         whose self-signed certificate is in
                                         $D/client-ca.pem beside the CA)

 With TigerVNC's viewer alone (user#pool, the password above):
   VNC_USERNAME='demo#clock' VNC_PASSWORD='$PASSWORD' \\
     xtigervncviewer -SecurityTypes X509Plain -X509CA $D/pki/ca.pem 127.0.0.1::$VP

 The console:
   $BIN/portico-admin --broker https://127.0.0.1:$BP --ca $D/pki/ca.pem login demo
   $BIN/portico-admin status

 With xfreerdp alone (user#pool, the password above; the gateway logs you
 in and redirects xfreerdp to the desktop):
   xfreerdp /v:127.0.0.1:$RP /u:'demo#rdesktop' /p:'$PASSWORD' /cert:tofu
==============================================================================

EOF
wait
