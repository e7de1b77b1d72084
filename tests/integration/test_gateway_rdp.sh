#!/bin/bash
# The gateway's RDP path with real pieces: xfreerdp (under Xvfb) with a
# ticket as its load-balance info -> portico-gateway -> xrdp, whose vnc-any
# module shows a real Xvnc desktop.  TLS runs end to end between xfreerdp
# and xrdp; the gateway only reads the Connection Request.  NLA end to end
# with FreeRDP's shadow server as the desktop.  Then xfreerdp with a user
# name and password and no ticket: the gateway's login step, the Server
# Redirection, the same desktop; its refusals; hostile clients.  A login
# process holds no credential (not in its environment, its memory or its
# files), and one that turns hostile is ended.
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
be_gateway_conf "$GWV_PORT" "$RDP_PORT" user=portico handshake_timeout=3s rdp_max_logins=5
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
# Its environment holds a secret of the operator's, which its login
# processes must not inherit.
CANARY=canary-$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')
env LD_PRELOAD="$NSS_WRAPPER_LIB" NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
	NSS_WRAPPER_DISABLE_DEEPBIND=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
	PORTICO_OPERATOR_SECRET="$CANARY" "$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
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
grep -q "generated a self-signed .* in $T/tls/rdp.pem (key $T/tls/rdp.key) for RDP clients" "$T/gateway.log" ||
	fail "no line for the RDP login step's certificate: $(head -5 "$T/gateway.log")"
grep -q "issued by \[tls\] ca" "$T/gateway.log" && fail "a certificate of the test's CA for the login step"
# A certificate that [tls] ca issued (a node's key) for the login step: the
# gateway refuses to start and says why.
sed -e "s|^cert = $T/tls/rdp.pem|cert = $T/pki/gw1.pem|" -e "s|^key  = $T/tls/rdp.key|key  = $T/pki/gw1.key|" \
	-e "s|^rdp_listen = .*|rdp_listen = 127.0.0.1:$(free_port)|" -e "s|^vnc_listen = .*|vnc_listen =|" \
	"$T/portico.conf" >"$T/nodecert.conf"
out=$(timeout 10 "$BUILD/bin/portico-gateway" -c "$T/nodecert.conf" 2>&1) &&
	fail "the gateway started with a node's certificate for RDP clients"
grep -q "certificate \[tls\] cert $T/pki/gw1.pem is issued by \[tls\] ca" <<<"$out" ||
	fail "the refusal does not say why: $out"

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

# An administrator's disconnect closes the spliced relay within 2 s.
ADMIN=$(login carol carol-pw)
api GET /resources/rdesk/launch.rdp "" "$ALICE" >/dev/null
TICKET=$(sed -n 's/^loadbalanceinfo:s:Cookie: msts=\(.*\)\r$/\1/p' "$T/out")
DISPLAY=$XD xfreerdp /v:127.0.0.1:$RDP_PORT /cert:ignore /size:800x600 "/load-balance-info:Cookie: msts=$TICKET" \
	/u:demo /p:demo >"$T/rdp.log" 2>&1 </dev/null &
RDP_PID=$!
for _ in $(seq 1 100); do
	[ "$(grep -c "connected to session .* at 127.0.0.1:$XRDP_PORT" "$T/gateway.log")" -ge 2 ] && break
	sleep 0.1
done
sleep 2 # the desktop up
disconnect_closes rdesk $RDP_PID rdp
echo "ok: an administrator's disconnect closes xfreerdp's connection in $TOOK"

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
r=$($H logins 200)
[ "$r" = done ] || fail "200 dropped logins: $r (login processes: $(logins))"
wait_for 10 eval '[ "$(logins)" = 0 ]' || fail "login processes stay behind: $(logins)"
# rdp_max_logins (5 here): the sixth login at once is refused at once.
r=$($H held 5)
[ "$r" = "negotiation failure 2" ] || fail "a sixth login at once was taken: $r"
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

# A login process holds no credential.  It is scanned while it waits for a
# client's TLS: its environment (the gateway's holds $CANARY), its whole
# memory (what fd 4 brought it, and all it made of that) and its open
# files.  The scan must find the key it serves RDP with, or it proves
# nothing.
wait_for 10 eval '[ "$(logins)" = 0 ]' || fail "login processes stay behind: $(logins)"
python3 tests/tools/rdp-hostile.py 127.0.0.1 $RDP_PORT confirmed >"$T/stall.out" &
HOSTILE=$!
# Confirmed: the process has its parameters and speaks RDP.
wait_for 5 grep -q "^confirm protocol 1$" "$T/stall.out" || fail "no login step for the stalled client: $(cat "$T/stall.out")"
LP=$(pgrep -P $GW -f -- --rdp-login)
kill -STOP "$LP" || fail "no login process to scan" # held still while it is read
r=$(python3 - "$LP" "$T" "$CANARY" "$GW_SECRET" "$HOST_SECRET" "$BROKER_SECRET" \
	"127.0.0.1:$PORT" <<'PY'
import base64, os, sys
pid, T, secrets = sys.argv[1], sys.argv[2], sys.argv[3:]
def pem(path):  # a PEM key's base64 lines
    return [l.strip().encode() for l in open(path) if l.strip() and not l.startswith("-----")]
def key(path):  # ... and its DER
    return pem(path) + [base64.b64decode(b"".join(pem(path)))]
env = open(f"/proc/{pid}/environ", "rb").read()
mem = []
with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as m:
    for line in maps:
        lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
        if line.split()[1][0] != "r" or hi - lo > 1 << 30:  # skip a sanitizer's shadow
            continue
        try:
            m.seek(lo)
            mem.append(m.read(hi - lo))
        except OSError:
            pass
mem = b"".join(mem)
found = [s for s in secrets if s.encode() in env or s.encode() in mem]
for name in ("ca", "gw1", "127.0.0.1"):  # the test's CA, the gateway's and the broker's keys
    if any(k in mem for k in key(f"{T}/pki/{name}.key")):
        found.append(f"{T}/pki/{name}.key")
fds = [os.readlink(f"/proc/{pid}/fd/{f}") for f in os.listdir(f"/proc/{pid}/fd")]
found += [f for f in fds if f.startswith((f"{T}/pki", f"{T}/db", f"{T}/portico.conf"))]
if not mem or not all(k in mem for k in pem(f"{T}/tls/rdp.key")):
    found.append("(not even the RDP key: the scan is broken)")
print(" ".join(found) or "none")
PY
)
kill -CONT "$LP"
[ "$r" = none ] || fail "a login process holds: $r"
kill $HOSTILE 2>/dev/null
wait $HOSTILE 2>/dev/null
wait_for 10 eval '[ "$(logins)" = 0 ]' || fail "login processes stay behind: $(logins)"
# Nor can a login process (the gateway's user too) read the gateway's
# memory: the gateway is not dumpable, so its /proc files are root's.
[ "$(ps -o uid= -p "$GW" | tr -d ' ')" != 0 ] || fail "the gateway runs as root"
[ "$(stat -c %u "/proc/$GW/mem")" = 0 ] || fail "the gateway's memory is its user's to read"
echo "ok: a login process holds no credential"

# What a login process asks is answered by the gateway, which asks the
# broker; a login process that sends anything else, or more, is ended with
# a line, and the gateway serves on.
child() { # CASE [ARGS]: rdp-hostile's child CASE from a login process's socket
	wait_for 10 eval '[ "$(logins)" = 0 ]' || fail "login processes stay behind: $(logins)"
	python3 tests/tools/rdp-hostile.py 127.0.0.1 $RDP_PORT stall >"$T/stall.out" &
	HOSTILE=$!
	wait_for 5 eval '[ "$(logins)" = 1 ]' || fail "no login process for the stalled client"
	python3 tests/tools/rdp-hostile.py child "$(pgrep -P $GW -f -- --rdp-login)" "$@"
}
r=$(child ask alice alice-pw rdesk)
[ "$r" = "session_id ticket user" ] || fail "a login process's question: $r"
wait $HOSTILE
grep -q ": ended$" "$T/gateway.log" && fail "a login process that asked was ended: $(grep ": ended$" "$T/gateway.log")"
r=$(child ask alice wrong rdesk)
[ "$r" = "refused credentials" ] || fail "a wrong password asked by a login process: $r"
wait $HOSTILE
grep -q "rdp 127.0.0.1 user alice: refused: login failed" "$T/gateway.log" || fail "no refusal line for a login process's question"
hostile_child() { # CASE LOG-TEXT
	local n0 text="the login process $2: ended"
	n0=$(grep -c "$text" "$T/gateway.log")
	[ "$(child "$1")" = sent ] || fail "rdp-hostile child $1"
	wait_for 5 eval '[ "$(grep -c "$text" "$T/gateway.log")" -gt "$n0" ]' ||
		fail "child $1: no line '$text': $(tail -3 "$T/gateway.log")"
	wait $HOSTILE
	grep -q "^closed after [01] s$" "$T/stall.out" || fail "child $1: its client: $(cat "$T/stall.out")"
	wait_for 5 eval '[ "$(logins)" = 0 ]' || fail "child $1: the login process was not ended"
}
hostile_child garbage "sent a malformed request"
hostile_child big "sent a request over 8192 bytes"
hostile_child addr "sent a malformed request"
hostile_child long "sent a malformed request"
hostile_child nul "sent a malformed request"
hostile_child twice "sent a second request"
sleep 1 # the broker's answer to the first comes for a process that is gone
kill -0 $GW || fail "the gateway died of a hostile login process"
grep "died of signal" "$T/gateway.log" | grep -vq "signal 9" && fail "a login process died of a fault"
seen=$(shot "/u:alice#rdesk" /p:alice-pw)
[ "${seen##*painted=}" -gt 10000 ] || fail "no login after the hostile login processes: $seen"
echo "ok: a hostile login process"

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
