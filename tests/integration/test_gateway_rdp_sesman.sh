#!/bin/bash
# The gateway's RDP path to a real xrdp host: xrdp with xrdp-sesman
# starting Xvnc sessions for a real user (PAM through Debian's pam_unix: the
# user is made with useradd and removed after).  A published application
# over RDP: the client's alternate shell goes through the gateway's login
# step and the redirection unchanged, and sesman runs it as the session's
# only program; a second connection (with a ticket) lands in the same xrdp
# session.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh
. tests/integration/xrdp_env.sh

SESMAN_PORT=3350 # xrdp reads it from /etc/xrdp/sesman.ini, whatever -c says
ss -ltn | grep -q ":$SESMAN_PORT " &&
	fail "port $SESMAN_PORT is taken (a system xrdp-sesman?): this test runs its own"
be_setup
sd_setup
echo "$SD_USER:user-pw" | chpasswd || fail "chpasswd"
RDP_PORT=$(free_port)
XRDP_PORT=$(free_port)
be_gateway_conf - "$RDP_PORT" user="$SD_SVC"
be_conf_append "
[pool clock]
kind = app
protocol = rdp
driver = static
command = /usr/bin/xclock -digital -geometry 200x40+0+0
hosts = 127.0.0.1:$XRDP_PORT
users = $SD_USER"
be_start

# sesman counts any socket or lock file of an X display as a running server
# and starts no session when its range (X11DisplayOffset and the next 50) has
# none free: xrdp then shows its own log window.  On a shared host, other
# tests' X servers and the files of killed ones may fill 10 to 60; and the
# Xvnc of Portico's sessions (-displayfd) take the lowest free displays, so
# one may take the display sesman chose before sesman's Xvnc starts when a
# storm of sessions runs beside this test.  Its range starts at 1000, far
# above them, or above the highest display that has a file.
XOFF=1000
for f in /tmp/.X11-unix/X* /tmp/.X*-lock; do
	n=${f##*/.X11-unix/X} n=${n#/tmp/.X} n=${n%-lock}
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge "$XOFF" ] && XOFF=$((n + 1))
done
sed -e "s|^LogFile=xrdp-sesman.log|LogFile=$T/sesman.log|" -e "s|^EnableSyslog=true|EnableSyslog=false|" \
	-e "s|^X11DisplayOffset=10\$|X11DisplayOffset=$XOFF|" /etc/xrdp/sesman.ini >"$T/sesman.ini"
grep -qx "X11DisplayOffset=$XOFF" "$T/sesman.ini" || fail "no X11DisplayOffset=10 in /etc/xrdp/sesman.ini"
mkdir -p /run/xrdp
setsid xrdp-sesman -n -c "$T/sesman.ini" >"$T/sesman.out" 2>&1 &
SESMAN=$!
xrdp_start "$XRDP_PORT" Xvnc # sesman's Xvnc sessions
# The gateway drops to the host's service user, a real one.
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW=$!
Xvfb -displayfd 1 -screen 0 1024x768x24 -nolisten tcp >"$T/xvfb.display" 2>/dev/null &
XVFB=$!
trap 'kill $GW $XVFB 2>/dev/null; kill -- -$XRDP -$SESMAN 2>/dev/null; wait $GW 2>/dev/null; sd_cleanup' EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$RDP_PORT) 2>/dev/null" || fail "the gateway does not listen on RDP: $(cat "$T/gateway.log")"
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$XRDP_PORT) 2>/dev/null" || fail "xrdp does not listen: $(cat "$T/xrdp.out")"
wait_for 5 eval "ss -ltn | grep -q ':$SESMAN_PORT '" || fail "xrdp-sesman does not listen: $(cat "$T/sesman.out")"
wait_for 5 test -s "$T/xvfb.display" || fail "Xvfb"
XD=:$(cat "$T/xvfb.display")
grep -q "issued by \[tls\] ca" "$T/gateway.log" && fail "a certificate of the test's CA for the login step"

shot() { # SECONDS XFREERDP-ARGS...: xfreerdp through the gateway; what it painted
	local wait=$1
	shift
	DISPLAY=$XD timeout 30 xfreerdp /v:127.0.0.1:$RDP_PORT /cert:ignore /size:800x600 /bpp:32 "$@" \
		>"$T/rdp.log" 2>&1 &
	local p=$!
	sleep "$wait"
	DISPLAY=$XD xwd -root -silent >"$T/screen.xwd"
	kill $p 2>/dev/null
	wait $p 2>/dev/null
	python3 tests/tools/xwd-painted.py "$T/screen.xwd"
}
box_w() { local b=${1#*box=}; echo "${b%%x*}"; }
box_h() { local b=${1#*box=}; b=${b#*x}; echo "${b%% *}"; }

# The login step with an alternate shell: only xclock is on the screen.
seen=$(shot 12 "/u:$SD_USER#clock" /p:user-pw /shell:"/usr/bin/xclock -digital -geometry 200x40+0+0")
echo "   the clock through the login step: $seen"
grep -q "user $SD_USER: logged in, redirected to session" "$T/gateway.log" || fail "no redirection: $(tail -3 "$T/gateway.log")"
[ "${seen##*painted=}" -gt 500 ] || fail "nothing on the screen: $seen $(tail -3 "$T/rdp.log") $(tail -5 "$T/sesman.log")"
[ "$(box_w "$seen")" -le 220 ] && [ "$(box_h "$seen")" -le 60 ] ||
	fail "more than the one program on the screen: $seen $(tail -3 "$T/sesman.log")"
pgrep -u "$SD_USER" -x xclock >/dev/null || fail "no xclock of the user's: $(tail -5 "$T/sesman.log")"
pgrep -u "$SD_USER" -f startwm >/dev/null && fail "a desktop started beside the application"
XVNC_PID=$(pgrep -u "$SD_USER" -x Xvnc) || fail "no Xvnc for the user"
echo "ok: an application over RDP, alternate shell through the login step"

# A second connection, with a ticket from the broker's .rdp file (which
# carries the alternate shell): the same xrdp session, the same Xvnc.
TOKEN=$(login "$SD_USER" user-pw)
api GET /resources/clock/launch.rdp "" "$TOKEN" >/dev/null
expect 200
grep -q "^alternate shell:s:/usr/bin/xclock -digital -geometry 200x40+0+0"$'\r'"$" "$T/out" || fail ".rdp without the alternate shell: $(cat "$T/out")"
TICKET=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
seen=$(shot 8 "/load-balance-info:Cookie: msts=$TICKET" "/u:$SD_USER" /p:user-pw \
	/shell:"/usr/bin/xclock -digital -geometry 200x40+0+0")
echo "   the clock again, with a ticket: $seen"
[ "${seen##*painted=}" -gt 500 ] || fail "nothing on the screen the second time: $seen $(tail -3 "$T/rdp.log")"
[ "$(pgrep -u "$SD_USER" -x Xvnc)" = "$XVNC_PID" ] || fail "a new xrdp session instead of the same one: $(pgrep -u "$SD_USER" -a Xvnc)"
[ "$(pgrep -u "$SD_USER" -x xclock | wc -l)" = 1 ] || fail "a second xclock"
echo "ok: the second connection reconnects to the same xrdp session"
