#!/bin/bash
# portico connect for RDP through the RD Gateway, with real pieces (a
# broker, the gateway's HTTPS front, xrdp showing an Xvnc, xfreerdp 2.11
# under Xvfb): the ticket reaches xfreerdp in a private .rdp file (0600, in
# a 0700 directory), never on a command line other users can read (ps),
# and the file is gone when xfreerdp ends; the gateway's certificate is
# checked against the configured CA and the system's: one the CA issued
# connects, and xfreerdp is held to it; a self-signed one (same name) or
# another CA's is refused with a message naming the CA and no viewer
# starts; a name the certificate does not hold is refused too.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh # wait_for
. tests/integration/xrdp_env.sh

be_setup
HP=$(free_port)
XRDP_PORT=$(free_port)
VNC_PORT=$(free_port)
be_gateway_conf - - user=nobody https_listen=127.0.0.1:$HP handshake_timeout=10s
be_conf_append "
[pool rdesk]
kind = desktop
protocol = rdp
driver = static
hosts = 127.0.0.1:$XRDP_PORT
users = alice"
# Slow machines: a ticket must outlive an xfreerdp start.
sed -i "s|^ticket_ttl = .*|ticket_ttl = 60s|" "$T/portico.conf"
# What RD Gateway clients see ([tls] cert): the CA's certificate for the
# gateway (gw1, names 127.0.0.1, localhost, gateway.test).
cp "$T/pki/gw1.pem" "$T/tls/rdp.pem"
cp "$T/pki/gw1.key" "$T/tls/rdp.key"
be_start
xrdp_vnc_desktop "$VNC_PORT"
xrdp_start "$XRDP_PORT" vnc-any "$(xrdp_vnc_any "$VNC_PORT")"

gw_start() {
	"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
	GW=$!
	wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$HP) 2>/dev/null" || fail "the gateway does not listen: $(tail -3 "$T/gateway.log")"
}
gw_start
Xvfb -displayfd 1 -screen 0 1024x768x24 -nolisten tcp >"$T/xvfb.display" 2>/dev/null &
XVFB=$!
PC=
trap 'kill $PC $GW $XVFB $XTERM $XVNC 2>/dev/null; kill -- -$XRDP 2>/dev/null; wait $GW 2>/dev/null; be_cleanup' EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$XRDP_PORT) 2>/dev/null" || fail "xrdp does not listen: $(cat "$T/xrdp.out")"
wait_for 5 test -s "$T/xvfb.display" || fail "Xvfb"
XD=:$(cat "$T/xvfb.display")

CA=$T/pki/ca.pem
mkdir -p "$T/home" "$T/run"
chmod 700 "$T/run"
P=(env HOME="$T/home" XDG_RUNTIME_DIR="$T/run" DISPLAY="$XD" "$(realpath "$BUILD")/bin/portico")
"${P[@]}" --broker "https://127.0.0.1:$PORT" --ca "$CA" login alice <<<alice-pw >/dev/null || fail "portico login"
painted() {
	DISPLAY=$XD xwd -root -silent >"$T/screen.xwd"
	python3 tests/tools/xwd-painted.py "$T/screen.xwd"
}
# viewers: the xfreerdp processes running as portico's children
viewers() { pgrep -P "$PC" -x xfreerdp; }

# --- the gateway's certificate from the CA: the desktop shows --------------------------
"${P[@]}" connect rdesk </dev/null >"$T/connect.log" 2>&1 &
PC=$!
seen=""
for _ in $(seq 1 25); do
	sleep 1
	seen=$(painted)
	[ "${seen##*painted=}" -gt 10000 ] && break
	kill -0 $PC 2>/dev/null || break
done
echo "   portico connect through the RD Gateway: $seen"
[ "${seen##*painted=}" -gt 10000 ] ||
	fail "portico connect showed no desktop: $seen $(grep -a 'ERROR\|portico' "$T/connect.log" | tail -4)"
# While xfreerdp runs: its file is private, and no command line holds the ticket.
f=$(ls "$T"/run/portico-*/connect.rdp 2>/dev/null)
[ -n "$f" ] && [ "$(wc -l <<<"$f")" = 1 ] || fail "no one .rdp file in \$XDG_RUNTIME_DIR: $(ls -laR "$T/run")"
[ "$(stat -c %a "$f")" = 600 ] || fail "the .rdp file is $(stat -c %a "$f")"
[ "$(stat -c %a "$(dirname "$f")")" = 700 ] || fail "its directory is $(stat -c %a "$(dirname "$f")")"
ticket=$(sed -n 's/^gatewayaccesstoken:s:\(.*\)\r$/\1/p' "$f")
[ ${#ticket} = 43 ] || fail "no ticket in the .rdp file: $(cat "$f")"
grep -q "^gatewayhostname:s:127.0.0.1:$HP"$'\r'"$" "$f" && grep -q "^full address:s:127.0.0.1:$XRDP_PORT"$'\r'"$" "$f" ||
	fail "the .rdp file: $(cat "$f")"
args=$(ps -eo args)
grep -q "xfreerdp $f /cert:deny,fingerprint:sha256:" <<<"$args" || fail "xfreerdp's command line: $(grep xfreerdp <<<"$args")"
grep -qF "$ticket" <<<"$args" && fail "the ticket is on a command line: $(grep -F "$ticket" <<<"$args")"
# The fingerprint xfreerdp accepts is the gateway's certificate's.
want=$(openssl x509 -in "$T/pki/gw1.pem" -noout -fingerprint -sha256 | sed 's/.*=//' | tr 'A-F' 'a-f')
grep -q "fingerprint:sha256:$want\$" <<<"$(grep "xfreerdp $f" <<<"$args")" || fail "xfreerdp does not pin $want: $(grep xfreerdp <<<"$args")"
# A TERM to portico (a session manager's, a user's ^C) ends xfreerdp, and
# the file goes with it.
v=$(viewers)
[ -n "$v" ] || fail "xfreerdp is not portico's child"
kill -TERM $PC
wait_for 10 eval "! kill -0 $PC 2>/dev/null" || fail "portico did not end on TERM"
kill -0 "$v" 2>/dev/null && fail "xfreerdp outlived portico"
[ -e "$f" ] && fail "the .rdp file outlived xfreerdp"
[ -z "$(ls "$T/run")" ] || fail "left in \$XDG_RUNTIME_DIR: $(ls -la "$T/run")"
grep -q "rdg 127.0.0.1 user alice: connected to session .* at 127.0.0.1:$XRDP_PORT" "$T/gateway.log" ||
	fail "the gateway did not connect alice: $(tail -3 "$T/gateway.log")"
echo "ok: the ticket in a private .rdp file, the gateway checked against the CA"

# xfreerdp leaving on its own: portico says what it said and the file goes.
printf '#!/bin/sh\nls -l "$1" > %s/viewer.seen; echo "$2" >> %s/viewer.seen; exit 3\n' "$T" "$T" >"$T/fake-viewer"
chmod 755 "$T/fake-viewer"
"${P[@]}" connect rdesk --viewer "$T/fake-viewer" </dev/null >/dev/null 2>&1
[ $? = 3 ] || fail "portico did not exit with the viewer's status"
grep -q "^-rw------- .* $T/run/portico-[A-Za-z0-9]*/connect.rdp$" "$T/viewer.seen" || fail "the viewer saw: $(cat "$T/viewer.seen")"
[ -z "$(ls "$T/run")" ] || fail "left after the viewer: $(ls -la "$T/run")"
# Without $XDG_RUNTIME_DIR: /tmp, the same way.
out=$(env -u XDG_RUNTIME_DIR HOME="$T/home" "$BUILD/bin/portico" connect rdesk --viewer "$T/fake-viewer" </dev/null 2>&1)
grep -q "^-rw------- .* /tmp/portico-[A-Za-z0-9]*/connect.rdp$" "$T/viewer.seen" || fail "without XDG_RUNTIME_DIR: $(cat "$T/viewer.seen") $out"
d=$(sed -n 's|.* \(/tmp/portico-[A-Za-z0-9]*\)/connect.rdp$|\1|p' "$T/viewer.seen")
[ -e "$d" ] && fail "$d was left behind"
# A viewer that does not exist: said, and nothing left.
out=$("${P[@]}" connect rdesk --viewer /nonexistent/xfreerdp </dev/null 2>&1)
[ $? = 1 ] && grep -q "cannot run /nonexistent/xfreerdp" <<<"$out" || fail "a missing viewer: $out"
[ -z "$(ls "$T/run")" ] || fail "left after a missing viewer: $(ls -la "$T/run")"
echo "ok: the file goes whatever way the viewer ends"

# xfreerdp itself holds to the pin: the same file with another fingerprint
# (as a gateway swapped after portico's check would show) is denied, with
# no question asked.
zero=$(printf '00:%.0s' $(seq 31))00
printf '#!/bin/sh
exec timeout 20 xfreerdp "$1" /cert:deny,fingerprint:sha256:%s >%s/pin.log 2>&1
' "$zero" "$T" \
	>"$T/pin-viewer"
chmod 755 "$T/pin-viewer"
"${P[@]}" connect rdesk --viewer "$T/pin-viewer" </dev/null >/dev/null 2>&1
rc=$?
[ $rc != 0 ] && [ $rc != 124 ] || fail "xfreerdp with another fingerprint: exit $rc: $(grep -a ERROR "$T/pin.log" | tail -3)"
grep -aq "ERRCONNECT_TLS_CONNECT_FAILED\|certificate" "$T/pin.log" || fail "xfreerdp did not refuse the certificate: $(tail -5 "$T/pin.log")"
seen=$(painted)
[ "${seen##*painted=}" -lt 1000 ] || fail "a desktop showed with another fingerprint: $seen"
echo "ok: xfreerdp denies any other certificate"

# --- a gateway whose certificate the CA did not issue: refused, no viewer ------------------
kill $GW
wait $GW 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout "$T/tls/rdp.key" -out "$T/tls/rdp.pem" 2>/dev/null ||
	fail "a self-signed certificate"
gw_start
rm -f "$T/viewer.seen"
out=$("${P[@]}" connect rdesk --viewer "$T/fake-viewer" </dev/null 2>&1)
rc=$?
[ $rc = 1 ] || fail "a self-signed gateway: exit $rc: $out"
grep -q "^portico: the RD Gateway at 127.0.0.1:$HP is not trusted: its certificate does not verify against the CA $CA or the system's CAs (self-signed certificate); not connecting$" <<<"$out" ||
	fail "a self-signed gateway: $out"
[ -e "$T/viewer.seen" ] && fail "the viewer started for a gateway that is not trusted"
[ -z "$(ls "$T/run")" ] || fail "left after a refusal: $(ls -la "$T/run")"
# What client/README.md tells users of such a gateway: that certificate
# added to the file they give --ca.
cat "$CA" "$T/tls/rdp.pem" >"$T/mine.pem"
out=$("${P[@]}" --ca "$T/mine.pem" connect rdesk --viewer "$T/fake-viewer" </dev/null 2>&1)
[ $? = 3 ] || fail "the self-signed certificate in the user's CA file: $out"
rm -f "$T/viewer.seen"
# Another CA's certificate is no better than none.
"$BUILD/bin/portico-admin" pki init "$T/pki2" >/dev/null || fail "pki init 2"
"$BUILD/bin/portico-admin" pki issue "$T/pki2" --role gateway gw1 --san 127.0.0.1 >/dev/null || fail "pki issue 2"
kill $GW
wait $GW 2>/dev/null
cp "$T/pki2/gw1.pem" "$T/tls/rdp.pem"
cp "$T/pki2/gw1.key" "$T/tls/rdp.key"
gw_start
out=$("${P[@]}" connect rdesk --viewer "$T/fake-viewer" </dev/null 2>&1)
[ $? = 1 ] && grep -q "is not trusted: its certificate does not verify against the CA $CA or the system's CAs (unable to get local issuer certificate)" <<<"$out" ||
	fail "another CA's gateway: $out"
[ -e "$T/viewer.seen" ] && fail "the viewer started for another CA's gateway"
# ... unless the system trusts that CA (OpenSSL's default store, here
# through SSL_CERT_FILE): a gateway's public certificate is usually from a
# CA the machine trusts, not from Portico's (docs/security.md).
out=$(SSL_CERT_FILE=$T/pki2/ca.pem "${P[@]}" connect rdesk --viewer "$T/fake-viewer" </dev/null 2>&1)
[ $? = 3 ] || fail "a gateway of a CA the system trusts: $out"
want=$(openssl x509 -in "$T/pki2/gw1.pem" -noout -fingerprint -sha256 | sed 's/.*=//' | tr 'A-F' 'a-f')
grep -qx "/cert:deny,fingerprint:sha256:$want" "$T/viewer.seen" || fail "the viewer was given: $(cat "$T/viewer.seen")"
rm -f "$T/viewer.seen"
# The CA's certificate for another name: refused by name.
"$BUILD/bin/portico-admin" pki issue "$T/pki" --role gateway gw9 --san gw9.test >/dev/null || fail "pki issue gw9"
kill $GW
wait $GW 2>/dev/null
cp "$T/pki/gw9.pem" "$T/tls/rdp.pem"
cp "$T/pki/gw9.key" "$T/tls/rdp.key"
gw_start
out=$("${P[@]}" connect rdesk --viewer "$T/fake-viewer" </dev/null 2>&1)
[ $? = 1 ] && grep -q "is not trusted: its certificate does not verify against the CA $CA or the system's CAs (IP address mismatch)" <<<"$out" ||
	fail "a certificate for another name: $out"
[ -e "$T/viewer.seen" ] && fail "the viewer started for a certificate of another name"
# A gateway that is down: said.
kill $GW
wait $GW 2>/dev/null
out=$("${P[@]}" connect rdesk --viewer "$T/fake-viewer" </dev/null 2>&1)
[ $? = 1 ] && grep -q "^portico: cannot reach the RD Gateway at 127.0.0.1:$HP: Connection refused$" <<<"$out" ||
	fail "a gateway that is down: $out"
[ -z "$(ls "$T/run")" ] || fail "left after refusals: $(ls -la "$T/run")"
echo "ok: a gateway the CA does not vouch for is refused"
