#!/bin/bash
# The RD Gateway on the gateway's HTTPS front (/remoteDesktopGateway/) with
# real pieces: xfreerdp 2.11 under Xvfb opens the broker's launch.rdp as it
# is (gatewayhostname, gatewayaccesstoken = a one-time ticket) and shows the
# desktop of a real xrdp (its vnc-any module on an Xvnc with an xterm),
# with the WebSocket transport and the legacy HTTP one; TLS runs end to end
# inside the tunnel, and NLA too (FreeRDP's shadow server checks the
# password).  Refusals a user reads: a used ticket and a client without a
# token get a service message; a channel to another host than the ticket's
# is E_PROXY_RAP_ACCESSDENIED.  Hostile clients (tests/tools/rdg-client.py):
# packets out of order, lengths that lie, bad chunks, an IN with no OUT;
# a good client is served afterwards.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh # wait_for
. tests/integration/xrdp_env.sh

be_setup
HP=$(free_port)
XRDP_PORT=$(free_port)
VNC_PORT=$(free_port)
NLA_PORT=$(free_port)
be_gateway_conf - - user=nobody https_listen=127.0.0.1:$HP handshake_timeout=10s rdg_keepalive=1s
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
users = alice

[pool desk]
driver = static
hosts = 127.0.0.1:$VNC_PORT
users = alice"
# Slow machines: a ticket must outlive an xfreerdp start.
sed -i "s|^ticket_ttl = .*|ticket_ttl = 60s|" "$T/portico.conf"
# What RD Gateway clients see ([tls] cert): the CA's certificate for the
# gateway (portico connect checks it against the CA).
cp "$T/pki/gw1.pem" "$T/tls/rdp.pem"
cp "$T/pki/gw1.key" "$T/tls/rdp.key"
be_start
xrdp_vnc_desktop "$VNC_PORT"
xrdp_start "$XRDP_PORT" vnc-any "$(xrdp_vnc_any "$VNC_PORT")"
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW=$!
Xvfb -displayfd 1 -screen 0 1024x768x24 -nolisten tcp >"$T/xvfb.display" 2>/dev/null &
XVFB=$!
winpr-hash -u alice -p alice-pw -f sam >"$T/sam" || fail "winpr-hash"
mkdir -p "$T/shadow"
(cd "$T/shadow" && HOME=$T/shadow DISPLAY=:$(cat "$T/xvnc.display") exec setsid freerdp-shadow-cli \
	/port:$NLA_PORT /bind-address:127.0.0.1 /sec:nla -sec-tls -sec-rdp "/sam-file:$T/sam" +auth) \
	>"$T/shadow.log" 2>&1 &
SHADOW=$!
trap 'kill $GW $XVFB $XTERM $XVNC 2>/dev/null; kill -- -$XRDP -$SHADOW 2>/dev/null; wait $GW 2>/dev/null; be_cleanup' EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$HP) 2>/dev/null" || fail "the gateway does not listen: $(cat "$T/gateway.log")"
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$XRDP_PORT) 2>/dev/null" || fail "xrdp does not listen: $(cat "$T/xrdp.out")"
wait_for 10 eval "(exec 3<>/dev/tcp/127.0.0.1/$NLA_PORT) 2>/dev/null" || fail "the shadow server does not listen"
wait_for 5 test -s "$T/xvfb.display" || fail "Xvfb"
XD=:$(cat "$T/xvfb.display")
ALICE=$(login alice alice-pw)

# rdp_file POOL: the broker's launch.rdp for POOL in $T/launch.rdp
rdp_file() {
	api GET "/resources/$1/launch.rdp" "" "$ALICE" >"$T/launch.rdp"
	expect 200
}
# shot XFREERDP-ARGS...: xfreerdp for a few seconds (a .rdp file first:
# xfreerdp takes it only there); what it painted (its log in $T/rdp.log)
# (until the desktop shows, xfreerdp leaves, or 25 s: a loaded machine, a
# sanitizer build, take their time).
shot() {
	DISPLAY=$XD timeout 30 stdbuf -o0 -e0 xfreerdp "$@" /cert:ignore /size:800x600 </dev/null >"$T/rdp.log" 2>&1 &
	local p=$! seen="" i
	for i in $(seq 1 25); do
		sleep 1
		DISPLAY=$XD xwd -root -silent >"$T/screen.xwd"
		seen=$(python3 tests/tools/xwd-painted.py "$T/screen.xwd")
		[ "${seen##*painted=}" -gt 10000 ] && break
		kill -0 $p 2>/dev/null || break
	done
	# A desktop shows for a while: what a user sees, not a flash.
	[ "${seen##*painted=}" -gt 10000 ] && sleep 1
	kill $p 2>/dev/null
	wait $p 2>/dev/null
	echo "$seen"
}
token() { sed -n 's/^gatewayaccesstoken:s:\(.*\)\r$/\1/p' "$T/launch.rdp"; }

# --- the .rdp file --------------------------------------------------------------------
rdp_file rdesk
for line in "full address:s:127.0.0.1:$XRDP_PORT" "gatewayhostname:s:127.0.0.1:$HP" \
	"gatewayusagemethod:i:1" "gatewaycredentialssource:i:5" "gatewayprofileusagemethod:i:1"; do
	grep -q "^$line"$'\r'"$" "$T/launch.rdp" || fail ".rdp lacks '$line': $(cat "$T/launch.rdp")"
done
tok=$(token)
[ ${#tok} = 43 ] || fail "no access token in the .rdp file"
grep -q "^loadbalanceinfo" "$T/launch.rdp" && fail "the ticket is in the .rdp file twice"
api POST /resources/rdesk/launch '{}' "$ALICE" >/dev/null
[ "$(jq -r .rd_gateway "$T/out")" = "127.0.0.1:$HP" ] && [ "$(jq -r .target "$T/out")" = "127.0.0.1:$XRDP_PORT" ] ||
	fail "the launch answer's rd_gateway and target: $(cat "$T/out")"

# --- xfreerdp opens the file as it is: WebSocket, then legacy HTTP ---------------------
for mode in ${RDG_MODES:-websocket legacy}; do
	rdp_file rdesk
	args=("$T/launch.rdp" /u:demo /p:demo)
	[ $mode = legacy ] && args+=("/gt:http,no-websockets")
	seen=$(shot "${args[@]}")
	echo "   xfreerdp through the RD Gateway ($mode): $seen"
	[ "${seen##*painted=}" -gt 10000 ] ||
		fail "no desktop through the RD Gateway ($mode): $seen $(grep -a ERROR "$T/rdp.log" | tail -3) $(tail -3 "$T/gateway.log")"
done
[ "$(grep -c "rdg 127.0.0.1 user alice: connected to session .* at 127.0.0.1:$XRDP_PORT" "$T/gateway.log")" = 2 ] ||
	fail "no connect lines: $(tail -5 "$T/gateway.log")"
echo "ok: xfreerdp opens launch.rdp through the RD Gateway"

# --- an administrator's disconnect closes xfreerdp's tunnel within 2 s ------------------
ADMIN=$(login carol carol-pw)
rdp_file rdesk
DISPLAY=$XD stdbuf -o0 -e0 xfreerdp "$T/launch.rdp" /u:demo /p:demo /cert:ignore /size:800x600 </dev/null >"$T/rdp.log" 2>&1 &
RDP_PID=$!
for _ in $(seq 1 25); do
	sleep 1
	DISPLAY=$XD xwd -root -silent >"$T/screen.xwd"
	seen=$(python3 tests/tools/xwd-painted.py "$T/screen.xwd")
	[ "${seen##*painted=}" -gt 10000 ] && break
done
[ "${seen##*painted=}" -gt 10000 ] || fail "no desktop to disconnect: $seen"
disconnect_closes rdesk $RDP_PID rdg
echo "ok: an administrator's disconnect closes the RD Gateway tunnel in $TOOK"

# portico connect takes the same way: its command line, and the desktop.
mkdir -p "$T/home"
P=(env HOME="$T/home" "$(realpath "$BUILD")/bin/portico")
"${P[@]}" --broker "https://127.0.0.1:$PORT" --ca "$T/pki/ca.pem" login alice <<<alice-pw >/dev/null ||
	fail "portico login"
out=$("${P[@]}" connect rdesk --print 2>/dev/null)
[[ $out =~ ^xfreerdp\ /v:127\.0\.0\.1:$XRDP_PORT\ /g:127\.0\.0\.1:$HP\ /gat:[A-Za-z0-9_-]{43}\ /cert:tofu$'\n' ]] ||
	fail "portico connect --print: $out"
grep -q "^gatewayaccesstoken:s:" <<<"$out" || fail "portico connect --print shows no .rdp file with a token: $out"
# portico waits for xfreerdp and passes a TERM on to it.
(cd "$T/home" && DISPLAY=$XD exec "${P[@]}" connect rdesk </dev/null >"$T/connect.log" 2>&1) &
pc=$!
for _ in $(seq 1 25); do
	sleep 1
	DISPLAY=$XD xwd -root -silent >"$T/screen.xwd"
	seen=$(python3 tests/tools/xwd-painted.py "$T/screen.xwd")
	[ "${seen##*painted=}" -gt 10000 ] && break
	kill -0 $pc 2>/dev/null || break
done
kill $pc 2>/dev/null
wait $pc 2>/dev/null
echo "   portico connect through the RD Gateway: $seen"
[ "${seen##*painted=}" -gt 10000 ] || fail "portico connect showed no desktop: $seen $(grep -a ERROR "$T/connect.log" | tail -3)"

# NLA end to end, inside the tunnel: the desktop checks the password.
rdp_file rnla
seen=$(shot "$T/launch.rdp" /u:alice /p:alice-pw /sec:nla)
echo "   xfreerdp with NLA through the RD Gateway: $seen"
[ "${seen##*painted=}" -gt 10000 ] || fail "no desktop over NLA through the RD Gateway: $seen"
rdp_file rnla
seen=$(shot "$T/launch.rdp" /u:alice /p:wrong /sec:nla)
[ "${seen##*painted=}" -lt 1000 ] || fail "a wrong password got through NLA: $seen"
grep -q "client authentication failure" "$T/shadow.log" || fail "the desktop did not check the password"
echo "ok: NLA end to end inside the tunnel"

# --- refusals a user reads ---------------------------------------------------------------
# The same file again: its ticket is spent.
seen=$(shot "$T/launch.rdp" /u:alice /p:alice-pw)
[ "${seen##*painted=}" -lt 1000 ] || fail "a used ticket got through: $seen"
grep -aq "Your access token was refused (unknown, used or expired)" "$T/rdp.log" ||
	fail "xfreerdp did not show why a used ticket was refused: $(grep -a ERROR "$T/rdp.log" | tail -3)"
# Another target than the ticket's: never an open proxy.
rdp_file rdesk
sed -i "s|^full address:s:.*|full address:s:127.0.0.1:$NLA_PORT\r|" "$T/launch.rdp"
seen=$(shot "$T/launch.rdp" /u:demo /p:demo)
[ "${seen##*painted=}" -lt 1000 ] || fail "a channel to another host got through: $seen"
grep -aq "E_PROXY_RAP_ACCESSDENIED" "$T/rdp.log" || fail "xfreerdp did not show E_PROXY_RAP_ACCESSDENIED"
grep -q "a channel to 127.0.0.1:$NLA_PORT refused: the ticket is for 127.0.0.1:$XRDP_PORT" "$T/gateway.log" ||
	fail "no log line for the other target"
# No token: xfreerdp with a gateway password (NTLM) is told what to do.
seen=$(shot /v:127.0.0.1:$XRDP_PORT /g:127.0.0.1:$HP /gu:alice /gp:alice-pw /u:demo /p:demo)
[ "${seen##*painted=}" -lt 1000 ] || fail "a client without a token got through: $seen"
grep -aq "open the desktop's .rdp file from the Portico portal" "$T/rdp.log" ||
	fail "xfreerdp without a token was not told what to do: $(grep -a 'ERROR\|message' "$T/rdp.log" | tail -4)"
echo "ok: refusals"

# --- hostile clients --------------------------------------------------------------------
RC=(/usr/bin/python3 tests/tools/rdg-client.py 127.0.0.1 "$HP")
ticket() { rdp_file "$1" && token; }
for tr in ws legacy; do
	# The whole conversation by hand: the RDP server answers inside.
	out=$("${RC[@]}" $tr tunnel "$(ticket rdesk)" "127.0.0.1:$XRDP_PORT")
	[ "$out" = $'HANDSHAKE_RESPONSE 0\nTUNNEL_RESPONSE 0\nTUNNEL_AUTH_RESPONSE 0\nCHANNEL_RESPONSE 0\nDATA 19' ] ||
		fail "$tr: a tunnel by hand: $out"
	# A quiet tunnel hears a keepalive (rdg_keepalive 1 s).
	out=$("${RC[@]}" $tr keepalive "$(ticket rdesk)" "127.0.0.1:$XRDP_PORT")
	[[ $out == *"DATA 19"$'\n'"KEEPALIVE" ]] || fail "$tr: no keepalive in a quiet tunnel: $out"
	# mstsc may write the port into the name: the same target.
	out=$(RDG_NAME=127.0.0.1:$XRDP_PORT "${RC[@]}" $tr tunnel "$(ticket rdesk)" "127.0.0.1:$XRDP_PORT")
	[[ $out == *"CHANNEL_RESPONSE 0"$'\n'"DATA 19" ]] || fail "$tr: host:port as the name: $out"
	out=$(RDG_NAME=127.0.0.1:$NLA_PORT "${RC[@]}" $tr tunnel "$(ticket rdesk)" "127.0.0.1:$XRDP_PORT")
	[[ $out == *"CHANNEL_RESPONSE 800759da"* ]] || fail "$tr: another port in the name: $out"
	# A ticket for a VNC desktop is no RDP channel.
	out=$("${RC[@]}" $tr tunnel "$(api POST /resources/desk/launch '{}' "$ALICE" | jq -r .ticket)" "127.0.0.1:$VNC_PORT")
	[[ $out == *"SERVICE_MESSAGE This ticket is not for an RDP desktop."*"CLOSE_CHANNEL 800759d8"* ]] ||
		fail "$tr: a VNC ticket: $out"
	# Each answered as far as it was right, then ended; none gets a channel.
	for c in order twice badlen hugectl unknown earlydata badutf16; do
		out=$("${RC[@]}" $tr $c "$(ticket rdesk)")
		[[ $out == "HANDSHAKE_RESPONSE 0"$'\n'* && $out == *closed ]] || fail "$tr $c: $out"
		[[ $out == *"CHANNEL_RESPONSE 0"* || $out == *DATA* ]] && fail "$tr $c opened a channel: $out"
	done
	out=$("${RC[@]}" $tr twice "$(ticket rdesk)")
	[[ $out == *"TUNNEL_RESPONSE 800759"* ]] || fail "$tr: a second TUNNEL_CREATE was not refused: $out"
done
out=$("${RC[@]}" legacy badchunk)
[[ $out == *closed ]] || fail "a bad chunk: $out"
[ "$("${RC[@]}" legacy inonly)" = "http 404" ] || fail "RDG_IN_DATA with no RDG_OUT_DATA"
grep -q "RDG_IN_DATA for no tunnel waiting: refused" "$T/gateway.log" || fail "no log line for a lone RDG_IN_DATA"
# The legacy pair must come from one source.
out=$(RDG_IN_SRC=127.0.0.2 "${RC[@]}" legacy tunnel "$(ticket rdesk)" "127.0.0.1:$XRDP_PORT")
[ "$out" = "http 404" ] || fail "a legacy IN from another source than its OUT: $out"
# A ticket is bound to the address that asked for it.
out=$(RDG_SRC=127.0.0.2 "${RC[@]}" ws tunnel "$(ticket rdesk)" "127.0.0.1:$XRDP_PORT")
[[ $out == *"SERVICE_MESSAGE Your access token was refused"*"CLOSE_CHANNEL 800759f8" ]] ||
	fail "a ticket from another address: $out"
pt_running $GW || fail "the gateway died"
rdp_file rdesk
seen=$(shot "$T/launch.rdp" /u:demo /p:demo)
[ "${seen##*painted=}" -gt 10000 ] ||
	fail "a good client after the hostile ones: $seen $(grep -a ERROR "$T/rdp.log" | tail -3) $(tail -5 "$T/gateway.log")"
echo "ok: hostile clients"
