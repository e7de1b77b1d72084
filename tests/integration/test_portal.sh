#!/bin/bash
# The web portal and desktops in the browser (issue 15), as a user sees
# them: a real broker (PAM through pam_wrapper + pam_matrix), a session host
# running real Xvnc desktops, the gateway's HTTPS front serving web/ and
# Debian's noVNC, and Debian's Chromium, headless, driven by playwright-core
# (tests/web/portal.mjs):
#  - sign in (a wrong password first: the refusal in role=alert), the
#    user's resources with kind and protocol, an RDP one's .rdp file and
#    xfreerdp command with real tickets;
#  - a VNC desktop opened by keyboard: the noVNC canvas shows the session's
#    pixels, compared with a direct connection to the session; the window
#    resized, the session follows; keys and the clipboard both ways;
#  - a reload reconnects to the same session, pixels again; Disconnect,
#    Reconnect, Log off; a pool without capacity, hostile resource names
#    and a forged ticket refused on the page; sign out; a phone's width;
#  - CSRF: a signed-in browser's POST without the token is refused (curl).
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

NODE=${NODE:-node}
command -v "$NODE" >/dev/null || fail "node (Node.js 20) is needed for the browser test"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is needed: make deps"
[ -f /usr/share/novnc/core/rfb.js ] || fail "Debian's noVNC is needed: make deps"
[ -d tests/web/node_modules/playwright-core ] || fail "playwright-core is not installed: make deps (npm ci in tests/web)"

be_setup
sd_setup
HP=$(free_port)
be_gateway_conf "$(free_port)" "$(free_port)" user="$SD_SVC" https_listen=127.0.0.1:$HP handshake_timeout=10s
# The xfreerdp command's ticket is checked after the browser is done.
sed -i 's/^ticket_ttl = .*/ticket_ttl = 10m/' "$T/portico.conf"
be_conf_append "
[pool desk]
kind = desktop
driver = xvnc
hosts = host1
users = $SD_USER

[pool remote]
kind = desktop
protocol = rdp
driver = static
hosts = 127.0.0.1:$(free_port)
users = $SD_USER

[pool full]
driver = xvnc
hosts = host9
users = $SD_USER"
be_start
ADMIN=$(login carol carol-pw)
sd_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
cleanup() {
	pt_stop "$GW_PID" "the gateway"
	sd_cleanup
}
trap cleanup EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$HP) 2>/dev/null" ||
	fail "the gateway's HTTPS front does not listen: $(tail -5 "$T/gateway.log")"
P=https://127.0.0.1:$HP

# A direct connection to a session, past the gateway: its socket and the
# secret the broker keeps for it.
probe=$PROBE
[ "${probe#/}" = "$probe" ] && probe=$PWD/$probe
cat >"$T/direct.sh" <<EOF
#!/bin/bash
secret=\$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select secret from sessions where id=?", (int(sys.argv[2]),)).fetchone()[0])' "$T/db/portico.db" "\$1") || exit 1
exec "$probe" "$T/run/sessions/\$1/vnc.sock" "\$secret" 10
EOF
chmod 755 "$T/direct.sh"

# An administrator's actions on a session (the API portico-admin uses).
cat >"$T/admin.sh" <<EOF
#!/bin/bash
args=(-sf -o /dev/null --cacert "$T/tls/server.pem" -H "Authorization: Bearer $ADMIN" -X POST)
case \$1 in
message) args+=(-H 'Content-Type: application/json' --data-binary "\$(jq -n --arg t "\$3" '{text: \$t}')") ;;
disconnect) ;;
*) exit 2 ;;
esac
exec curl "\${args[@]}" "$B/admin/sessions/\$2/\$1"
EOF
chmod 755 "$T/admin.sh"

# --- the browser ----------------------------------------------------------------------
PT_URL=$P PT_USER=$SD_USER PT_PASSWORD=user-pw PT_VNC=desk PT_RDP=remote PT_FULL=full \
	PT_DIRECT=$T/direct.sh PT_ADMIN=$T/admin.sh PT_OUT=$T/web timeout 600 "$NODE" tests/web/portal.mjs >"$T/browser.out" 2>&1
rc=$?
sed 's/^/   /' "$T/browser.out"
if [ "$rc" != 0 ]; then
	keep=$(mktemp -d /tmp/portico-portal.XXXXXX)
	cp -r "$T/web" "$T"/*.log "$keep/" 2>/dev/null
	fail "the browser test failed (exit $rc; its screenshot and the logs are in $keep)"
fi
R=$T/web/results.json
S1=$(jq -r .session "$R")
echo "ok: the browser test"

# --- what the browser did, as the broker saw it -------------------------------------------
# The xfreerdp command and the .rdp file carry real tickets, each once.
for which in rdp_ticket rdp_file_ticket; do
	t=$(jq -r ".$which" "$R")
	api POST /gateway/redeem "{\"ticket\":\"$t\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
	expect 200
	[ "$(jq -r .pool "$T/out")" = remote ] && [ "$(jq -r .user "$T/out")" = "$SD_USER" ] ||
		fail "the $which led to $(cat "$T/out")"
	api POST /gateway/redeem "{\"ticket\":\"$t\",\"client_addr\":\"127.0.0.1\"}" "$GW_SECRET" >/dev/null
	expect 403 invalid_ticket
done
echo "ok: the RDP resource's command and .rdp file carry real tickets"
# Log off ended the session the page showed, on the host too.
api GET "/admin/sessions?state=all" "" "$ADMIN" >/dev/null
[ "$(jq -r ".sessions[] | select(.id == $S1) | .state" "$T/out")" = ended ] ||
	fail "session $S1 after Log off: $(cat "$T/out")"
wait_for 10 eval "[ ! -e '$T/run/sessions/$S1' ]" || fail "session $S1 still runs on the host after Log off"
echo "ok: Log off ended session $S1"

# --- CSRF: a signed-in browser's POSTs without the token are refused ---------------------
C=(curl -s -k -b "$T/jar" -c "$T/jar")
"${C[@]}" -o /dev/null "$P/"
csrf=$(awk '$6 == "portico_csrf" { print $7 }' "$T/jar")
[ -n "$csrf" ] || fail "no portico_csrf cookie from the portal's page"
st=$("${C[@]}" -o "$T/b" -w '%{http_code}' -H "X-CSRF-Token: $csrf" "$P/api/v1/login" \
	-d "{\"username\":\"$SD_USER\",\"password\":\"user-pw\"}")
[ "$st" = 200 ] && ! jq -e 'has("token")' "$T/b" >/dev/null || fail "login with the CSRF token: $st $(cat "$T/b")"
# A session to log off, as a browser would start it.
st=$("${C[@]}" -o "$T/b" -w '%{http_code}' -H "X-CSRF-Token: $csrf" "$P/api/v1/resources/remote/launch" -d '{}')
[ "$st" = 200 ] || fail "launch with the CSRF token: $st $(cat "$T/b")"
S2=$(jq -r .session.id "$T/b")
for hdr in "" "X-CSRF-Token: " "X-CSRF-Token: ${csrf}x" "X-CSRF-Token: $(head -c 20000 /dev/zero | tr '\0' a)" \
	"X-CSRF-Token: $csrf, $csrf"; do
	h=()
	[ -n "$hdr" ] && h=(-H "$hdr")
	st=$("${C[@]}" -o "$T/b" -w '%{http_code}' "${h[@]}" "$P/api/v1/sessions/$S2/logoff" -d '{}')
	case $st in 403 | 431) ;; *) fail "a logoff with '${hdr:0:40}' answered $st: $(cat "$T/b")" ;; esac
	[ "$st" = 431 ] || [ "$(jq -r .error "$T/b")" = csrf ] || fail "a logoff with '${hdr:0:40}': $(cat "$T/b")"
done
# Another site's page, or one whose token is not the browser's cookie.
st=$(curl -s -k -o "$T/b" -w '%{http_code}' -H "Origin: $P" -H "X-CSRF-Token: $csrf" "$P/api/v1/login" \
	-d "{\"username\":\"$SD_USER\",\"password\":\"user-pw\"}")
[ "$st" = 403 ] && [ "$(jq -r .error "$T/b")" = csrf ] || fail "a login whose token matches no cookie: $st $(cat "$T/b")"
st=$("${C[@]}" -o "$T/b" -w '%{http_code}' -H "Origin: https://evil.example" -H "X-CSRF-Token: $csrf" \
	"$P/api/v1/sessions/$S2/logoff" -d '{}')
[ "$st" = 403 ] || fail "a logoff from another origin answered $st: $(cat "$T/b")"
api GET "/admin/sessions?state=live" "" "$ADMIN" >/dev/null
[ "$(jq -r ".sessions[] | select(.id == $S2) | .state" "$T/out")" = ready ] ||
	fail "a refused logoff ended session $S2: $(cat "$T/out")"
st=$("${C[@]}" -o "$T/b" -w '%{http_code}' -H "X-CSRF-Token: $csrf" "$P/api/v1/sessions/$S2/logoff" -d '{}')
[ "$st" = 200 ] || fail "the same logoff with the token: $st $(cat "$T/b")"
echo "ok: CSRF: POSTs without the cookie's token refused, with it served"

pt_running "$GW_PID" || fail "the gateway died"
echo "ok: portal"
