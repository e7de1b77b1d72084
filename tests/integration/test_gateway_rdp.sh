#!/bin/bash
# The gateway's RDP path with real pieces: xfreerdp (under Xvfb) with a
# ticket as its load-balance info -> portico-gateway -> xrdp, whose vnc-any
# module shows a real Xvnc desktop.  TLS runs end to end between xfreerdp
# and xrdp; the gateway only reads the Connection Request.  NLA end to end
# with FreeRDP's shadow server as the desktop.  Then xfreerdp with a user
# name and password and no ticket: the gateway's login step, the Server
# Redirection, the same desktop; its refusals; hostile clients.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh # wait_for
. tests/integration/xrdp_env.sh

be_setup
RDP_PORT=$(free_port)
XRDP_PORT=$(free_port)
VNC_PORT=$(free_port)
GWV_PORT=$(free_port)
NLA_PORT=$(free_port)
sed -i "s|^rdp_listen = 0.0.0.0:13389|rdp_listen = 127.0.0.1:$RDP_PORT|; s|^vnc_listen = 0.0.0.0:15900|vnc_listen = 127.0.0.1:$GWV_PORT|" "$T/portico.conf"
sed -i "s|^public_host = gateway.test|public_host = 127.0.0.1\nbroker = https://127.0.0.1:$PORT\nuser = portico\nhandshake_timeout = 3s\nrdp_max_logins = 5|" "$T/portico.conf"
sed -i "s|^key  = .*|&\nca   = $T/pki/ca.pem|" "$T/portico.conf"
be_conf_append "
[pool rdesk]
kind = desktop
protocol = rdp
driver = static
hosts = 127.0.0.1:$XRDP_PORT
users = alice

[pool rnla]
kind = desktop
protocol = rdp
driver = static
hosts = 127.0.0.1:$NLA_PORT
users = alice"
be_start

# The desktop: an Xvnc with an xterm, shown by xrdp's vnc-any module.
xrdp_vnc_desktop "$VNC_PORT"
xrdp_start "$XRDP_PORT" vnc-any "$(xrdp_vnc_any "$VNC_PORT")"
# The gateway drops to "portico", a user of the test's nss_wrapper world.
env LD_PRELOAD="$NSS_WRAPPER_LIB" NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
	NSS_WRAPPER_DISABLE_DEEPBIND=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
	"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW=$!
Xvfb -displayfd 1 -screen 0 1024x768x24 -nolisten tcp >"$T/xvfb.display" 2>/dev/null &
XVFB=$!
# A desktop that requires NLA: FreeRDP's shadow server showing the same
# Xvnc, checking NTLM against its SAM file.
winpr-hash -u alice -p alice-pw -f sam >"$T/sam" || fail "winpr-hash"
mkdir -p "$T/shadow"
(cd "$T/shadow" && HOME=$T/shadow DISPLAY=:$(cat "$T/xvnc.display") exec setsid freerdp-shadow-cli \
	/port:$NLA_PORT /bind-address:127.0.0.1 /sec:nla -sec-tls -sec-rdp "/sam-file:$T/sam" +auth) \
	>"$T/shadow.log" 2>&1 &
SHADOW=$!
trap 'kill $GW $XVFB $XTERM $XVNC 2>/dev/null; kill -- -$XRDP -$SHADOW 2>/dev/null; wait $GW 2>/dev/null; be_cleanup' EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$RDP_PORT) 2>/dev/null" || fail "the gateway does not listen on RDP: $(cat "$T/gateway.log")"
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$XRDP_PORT) 2>/dev/null" || fail "xrdp does not listen: $(cat "$T/xrdp.out")"
wait_for 5 test -s "$T/xvfb.display" || fail "Xvfb"
wait_for 10 eval "(exec 3<>/dev/tcp/127.0.0.1/$NLA_PORT) 2>/dev/null" || fail "the shadow server does not listen: $(tail -5 "$T/shadow.log")"
XD=:$(cat "$T/xvfb.display")

ALICE=$(login alice alice-pw)
shot() { # XFREERDP-ARGS...: xfreerdp through the gateway for a few seconds; what it painted
	DISPLAY=$XD timeout 10 xfreerdp /v:127.0.0.1:$RDP_PORT /cert:ignore /size:800x600 "$@" \
		>"$T/rdp.log" 2>&1 &
	local p=$!
	sleep 6
	DISPLAY=$XD xwd -root -silent >"$T/screen.xwd"
	kill $p 2>/dev/null
	wait $p 2>/dev/null
	python3 tests/tools/xwd-painted.py "$T/screen.xwd"
}
rdp() { shot "/load-balance-info:Cookie: msts=$1" /u:demo /p:demo; } # TICKET
api GET /resources/rdesk/launch.rdp "" "$ALICE" >/dev/null
expect 200
grep -q "^full address:s:127.0.0.1:$RDP_PORT" "$T/out" || fail ".rdp: $(cat "$T/out")"
TICKET=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
[ ${#TICKET} = 43 ] || fail "no ticket in the .rdp file: $(cat "$T/out")"
seen=$(rdp "$TICKET")
echo "   xfreerdp through the gateway: $seen"
[ "${seen##*painted=}" -gt 10000 ] || fail "the desktop did not appear: $seen $(tail -5 "$T/rdp.log") $(tail -3 "$T/gateway.log")"
grep -q "connected to session .* at 127.0.0.1:$XRDP_PORT" "$T/gateway.log" || fail "no connect line"
grep -q "disconnected .*spliced" "$T/gateway.log" || fail "the bytes did not take the splice path: $(tail -3 "$T/gateway.log")"
echo "ok: xfreerdp with a ticket"

# A used ticket, a forged one, no ticket at all: a negotiation failure.
seen=$(rdp "$TICKET")
[ "${seen##*painted=}" -lt 1000 ] || fail "a used ticket got through: $seen"
grep -q "refused: the ticket is not valid" "$T/gateway.log" || fail "no refusal line for a used ticket"
# A ticket is bound to the address that asked for it: the same ticket from
# 127.0.0.2 is refused (and spent).
api GET /resources/rdesk/launch.rdp "" "$ALICE" >/dev/null
TICKET=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
[ "$(python3 tests/tools/rdp-hostile.py 127.0.0.1 $RDP_PORT from 127.0.0.2 "$TICKET")" = "negotiation failure 2" ] ||
	fail "a ticket from another address was taken"
grep -q "rdp 127.0.0.2: refused: the ticket is not valid" "$T/gateway.log" || fail "no refusal line for another address"
[ "$(python3 tests/tools/rdp-hostile.py 127.0.0.1 $RDP_PORT from 127.0.0.1 "$TICKET")" = "negotiation failure 2" ] ||
	fail "a ticket tried from another address stayed valid"

# NLA end to end: the gateway passes CredSSP through untouched, the
# desktop checks the password.
api GET /resources/rnla/launch.rdp "" "$ALICE" >/dev/null
TICKET=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
seen=$(shot "/load-balance-info:Cookie: msts=$TICKET" /u:alice /p:alice-pw /sec:nla)
echo "   xfreerdp with NLA to the desktop: $seen"
[ "${seen##*painted=}" -gt 10000 ] || fail "no desktop over NLA: $seen $(tail -5 "$T/rdp.log") $(tail -3 "$T/gateway.log")"
api GET /resources/rnla/launch.rdp "" "$ALICE" >/dev/null
TICKET=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
seen=$(shot "/load-balance-info:Cookie: msts=$TICKET" /u:alice /p:wrong /sec:nla)
[ "${seen##*painted=}" -lt 1000 ] || fail "a wrong password got through NLA: $seen"
# It was the desktop that refused, in CredSSP.
grep -q "client authentication failure" "$T/shadow.log" || fail "the desktop did not check the password: $(tail -3 "$T/shadow.log")"
echo "ok: NLA end to end"

# No ticket: the user name and password go to the gateway's login step,
# which redirects the client (with a ticket) to the same desktop.
n0=$(grep -c "connected to session .* at 127.0.0.1:$XRDP_PORT" "$T/gateway.log")
seen=$(shot "/u:alice#rdesk" /p:alice-pw)
echo "   xfreerdp with a password: $seen"
[ "${seen##*painted=}" -gt 10000 ] || fail "no desktop after the login step: $seen $(tail -5 "$T/rdp.log") $(tail -5 "$T/gateway.log")"
grep -q "rdp 127.0.0.1 user alice: logged in, redirected to session" "$T/gateway.log" || fail "no redirection line"
[ "$(grep -c "connected to session .* at 127.0.0.1:$XRDP_PORT" "$T/gateway.log")" -gt "$n0" ] || fail "the redirected client did not reach xrdp"
# ... and to a desktop that requires NLA: TLS with the gateway first, NLA
# with the desktop after the redirection.
seen=$(shot "/u:alice#rnla" /p:alice-pw)
[ "${seen##*painted=}" -gt 10000 ] || fail "no NLA desktop after the login step: $seen $(tail -5 "$T/rdp.log")"
# The domain field may name the pool instead.
seen=$(shot /u:alice /d:rdesk /p:alice-pw)
[ "${seen##*painted=}" -gt 10000 ] || fail "no desktop with the pool as the domain: $seen $(tail -3 "$T/gateway.log")"
echo "ok: login at the gateway, then the redirection"

# Refusals are an ErrorInfo the client shows, and its exit status.
login_err() { # EXPECTED-TEXT XFREERDP-ARGS...  (xfreerdp 2 exits 131 whatever the error)
	local text=$1 t0 rc
	shift
	t0=$(date +%s%N)
	DISPLAY=$XD timeout 20 xfreerdp /v:127.0.0.1:$RDP_PORT /cert:ignore "$@" >"$T/rdp.log" 2>&1 </dev/null
	rc=$?
	ELAPSED_MS=$((($(date +%s%N) - t0) / 1000000))
	[ $rc != 0 ] && [ $rc != 124 ] || fail "xfreerdp $*: exit $rc: $(tail -3 "$T/rdp.log")"
	grep -q "$text" "$T/rdp.log" || fail "xfreerdp $*: no '$text' shown: $(tail -3 "$T/rdp.log")"
}
login_err "insufficient access privileges" "/u:alice#rdesk" /p:wrong
[ "$ELAPSED_MS" -ge 300 ] || fail "a wrong password was refused before the fixed delay: $ELAPSED_MS ms"
grep -q "rdp 127.0.0.1 user alice#rdesk: refused: login failed" "$T/gateway.log" || fail "no refusal line: $(tail -2 "$T/gateway.log")"
login_err "insufficient access privileges" "/u:nobody#rdesk" /p:wrong
login_err "requires that the user enter their credentials" "/u:alice#rdesk" /p:
grep -q "rdp 127.0.0.1 user alice#rdesk: refused: no password in the client's logon info" "$T/gateway.log" || fail "no line for a missing password"
login_err "The server denied the connection" /u:alice /p:alice-pw
grep -q "user alice: refused: you have several desktops" "$T/gateway.log" || fail "no line for a missing pool"
echo "ok: refusals at the login step"
# Hostile clients on the RDP port.
H="python3 tests/tools/rdp-hostile.py 127.0.0.1 $RDP_PORT"
for c in http tls lie bigcookie nocrlf; do
	[ "$($H $c)" = closed ] || fail "RDP $c: $($H $c)"
done
r=$($H truncated)
case $r in "closed after 3 s" | "closed after 4 s") ;; *) fail "a truncated request: $r" ;; esac
[ "$($H noticket)" = "confirm protocol 1" ] || fail "no ticket: $($H noticket)"
[ "$($H rdponly)" = "negotiation failure 1" ] || fail "standard RDP security only: $($H rdponly)"
[ "$($H notls)" = closed ] || fail "no TLS after the confirm: $($H notls)"
[ "$($H tlsjunk)" = closed ] || fail "a malformed MCS Connect Initial in TLS: $($H tlsjunk)"
r=$($H stall)
case $r in "closed after 2 s" | "closed after 3 s") ;; *) fail "a login step that stalls: $r" ;; esac
# max_pending_per_addr (20): VNC and RDP connections that have not logged in.
[ "$($H hold 20)" = "the next one closed at once" ] || fail "the 21st silent connection from one address was kept"
wait_for 5 eval '[ "$($H hold 19)" = "the next one kept" ]' || fail "the per-address limit did not free up"
logins() { pgrep -P $GW -f -- --rdp-login | wc -l; } # login processes running
[ "$($H logins 200)" = done ] || fail "200 dropped logins"
wait_for 10 eval '[ "$(logins)" = 0 ]' || fail "login processes stay behind: $(logins)"
# rdp_max_logins (5 here): the sixth login at once is refused at once.
[ "$($H held 5)" = "negotiation failure 2" ] || fail "a sixth login at once was taken"
grep -q "refused: too many logins under way (rdp_max_logins)" "$T/gateway.log" || fail "no line for rdp_max_logins"
wait_for 10 eval '[ "$(logins)" = 0 ]' || fail "login processes stay behind: $(logins)"
[ "$($H forged)" = "negotiation failure 2" ] || fail "a forged ticket: $($H forged)"
[ "$($H many 1000)" = done ] || fail "1000 bad connections"
kill -0 $GW || fail "the gateway died of hostile input"
# ... and a good client is served after them.
api GET /resources/rdesk/launch.rdp "" "$ALICE" >/dev/null
TICKET=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
seen=$(rdp "$TICKET")
[ "${seen##*painted=}" -gt 10000 ] || fail "no desktop after the hostile clients: $seen"
echo "ok: hostile input"

# Every login process ended by itself (a fault, or a sanitizer's report,
# would be a line of the gateway's).
grep "the login process" "$T/gateway.log" && fail "a login process failed"
# A login process that dies (a fault in FreeRDP's parsing would look the
# same) ends that login only: a line, and the gateway serves on.
python3 tests/tools/rdp-hostile.py 127.0.0.1 $RDP_PORT stall >"$T/stall.out" &
HOSTILE=$!
wait_for 5 eval '[ "$(logins)" = 1 ]' || fail "no login process for the stalled client: $(logins) $(pgrep -a -P $GW) $(tail -3 "$T/gateway.log")"
kill -KILL "$(pgrep -P $GW -f -- --rdp-login)"
wait_for 5 eval 'grep -q "the login process died of signal 9" "$T/gateway.log"' || fail "no line for a login process that died"
wait $HOSTILE
grep -q "^closed after 0 s$" "$T/stall.out" || fail "the client of a dead login process: $(cat "$T/stall.out")"
kill -0 $GW || fail "the gateway died with its login process"
[ "$($H noticket)" = "confirm protocol 1" ] || fail "no login step after a login process died"
echo "ok: a login process that dies"

# Stopping while a login step is under way: the gateway stops cleanly (and
# under the sanitizers, without a leak); the login process follows.
python3 tests/tools/rdp-hostile.py 127.0.0.1 $RDP_PORT stall >/dev/null &
HOSTILE=$!
wait_for 5 eval '[ "$(logins)" = 1 ]' || fail "no login process for the stalled client: $(logins) $(pgrep -a -P $GW) $(tail -3 "$T/gateway.log")"
kill -TERM $GW
wait_for 5 eval '! kill -0 $GW 2>/dev/null' || fail "the gateway did not stop with a login under way"
wait $GW
rc=$?
kill $HOSTILE 2>/dev/null
wait_for 5 eval '! pgrep -f -- "--rdp-login" >/dev/null' || fail "a login process outlived the gateway"
[ $rc = 0 ] || fail "the gateway stopped with status $rc: $(tail -3 "$T/gateway.log")"
grep -q "stopped$" "$T/gateway.log" || fail "no 'stopped' line: $(tail -3 "$T/gateway.log")"
echo "ok: stopping during a login"
echo "ok: gateway rdp"
