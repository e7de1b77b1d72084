#!/bin/bash
# The gateway's HTTPS front ([gateway] https_listen) as curl and hostile
# clients see it, with the real broker behind it:
#  - the portal's files and noVNC's, byte for byte, with the security
#    headers on every answer (CSP without unsafe-inline, HSTS,
#    X-Frame-Options DENY) and the CSRF cookie on pages; nothing outside
#    the two trees, however the path is written;
#  - the broker's user routes under /api/v1/ and nothing else: a browser's
#    session in an HttpOnly, Secure, SameSite=Strict cookie whose token the
#    page never sees, every POST refused without the CSRF token or from
#    another origin; a program's own bearer passed as it is;
#  - the broker hears the client's address (Forwarded), which it takes only
#    from a gateway's credential and only on users' routes;
#  - malformed, oversized, trickled and 1,000 bad connections: each closed
#    or refused while a good client is served afterwards;
#  - the broker down: a readable 503.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

be_setup
HP=$(free_port)
be_gateway_conf - - user=nobody https_listen=127.0.0.1:$HP handshake_timeout=6s max_pending_per_addr=4
be_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
cleanup() {
	kill $GW_PID 2>/dev/null
	wait $GW_PID 2>/dev/null
	be_cleanup
}
trap cleanup EXIT
for _ in $(seq 1 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$HP") 2>/dev/null && break
	sleep 0.1
done
# The HTTPS front's certificate is [tls] cert, made self-signed for
# public_host (127.0.0.1) at the gateway's first start.
C=(curl -s --cacert "$T/tls/rdp.pem")
P=https://127.0.0.1:$HP
grep -q "https: serving .* files" "$T/gateway.log" || fail "the gateway did not say what it serves"

# get PATH [curl args]: status in $ST, headers in $T/h, body in $T/b
get() {
	local path=$1
	shift
	ST=$("${C[@]}" -D "$T/h" -o "$T/b" -w '%{http_code}' "$@" "$P$path")
}
hdr() { grep -i "^$1:" "$T/h" | head -1 | cut -d' ' -f2- | tr -d '\r'; }

# --- files ------------------------------------------------------------------------------
get /
[ "$ST" = 200 ] && grep -q 'name="username"' "$T/b" && grep -q 'name="password"' "$T/b" ||
	fail "the portal's page: HTTP $ST"
cmp -s "$T/b" web/index.html || fail "/ is not web/index.html"
csp=$(hdr Content-Security-Policy)
[[ $csp == *"default-src 'self'"* && $csp == *"frame-ancestors 'none'"* && $csp != *unsafe-inline* ]] ||
	fail "CSP: '$csp'"
[[ $(hdr Strict-Transport-Security) == max-age=* ]] || fail "no HSTS"
[ "$(hdr X-Frame-Options)" = DENY ] || fail "X-Frame-Options: $(hdr X-Frame-Options)"
[ "$(hdr X-Content-Type-Options)" = nosniff ] || fail "no nosniff"
cookie=$(hdr Set-Cookie)
[[ $cookie =~ ^portico_csrf=[0-9a-f]{32}\;\ Path=/\;\ Secure\;\ SameSite=Strict$ ]] ||
	fail "the CSRF cookie: '$cookie'"
get /novnc/core/rfb.js
[ "$ST" = 200 ] && cmp -s "$T/b" /usr/share/novnc/core/rfb.js || fail "noVNC's rfb.js: HTTP $ST"
[[ $(hdr Content-Type) == text/javascript* ]] || fail "rfb.js as $(hdr Content-Type)"
[ -n "$(hdr Content-Security-Policy)" ] || fail "no CSP on a script"
get /portal.css
[ "$ST" = 200 ] && [[ $(hdr Content-Type) == text/css* ]] || fail "portal.css: HTTP $ST $(hdr Content-Type)"
ST=$("${C[@]}" -I -o "$T/b" -w '%{http_code}' "$P/")
[ "$ST" = 200 ] && grep -qi "^content-length: $(stat -c %s web/index.html)" "$T/b" || fail "HEAD /: $ST"
get /no-such-file.html
[ "$ST" = 404 ] || fail "a missing file: HTTP $ST"
get / -X POST -d x
[ "$ST" = 405 ] && [ "$(hdr Allow)" = "GET, HEAD" ] || fail "POST /: HTTP $ST"
# Nothing outside the trees, however it is written.
for p in /../../../../etc/passwd /novnc/../../../../etc/passwd /%2e%2e/%2e%2e/etc/passwd \
	/novnc/%2e%2e%2f%2e%2e%2fetc%2fpasswd /..%2f..%2f..%2fetc/passwd '/%00' /%zz /novnc/ /.hidden; do
	get "$p" --path-as-is
	[[ $ST == 4?? ]] && ! grep -q "root:" "$T/b" || fail "$p: HTTP $ST $(head -c 100 "$T/b")"
done

# --- the broker's user routes: a browser ------------------------------------------------
J=$T/jar
get / -c "$J"
CSRF=$(awk '$6 == "portico_csrf" {print $7}' "$J")
[ ${#CSRF} = 32 ] || fail "no CSRF cookie in the jar"
login_body='{"username":"alice","password":"alice-pw"}'
B_ARGS=(-b "$J" -c "$J" -H "Origin: $P" -H 'Content-Type: application/json')
get /api/v1/login "${B_ARGS[@]}" -d "$login_body"
[ "$ST" = 403 ] && [ "$(jq -r .error "$T/b")" = csrf ] || fail "a login without X-CSRF-Token: HTTP $ST"
get /api/v1/login -b "$J" -H "Origin: https://evil.example" -H "X-CSRF-Token: $CSRF" -d "$login_body"
[ "$ST" = 403 ] && grep -q "another site" "$T/b" || fail "a login from another origin: HTTP $ST"
get /api/v1/login "${B_ARGS[@]}" -H "X-CSRF-Token: ${CSRF}0" -d "$login_body"
[ "$ST" = 403 ] || fail "a wrong X-CSRF-Token: HTTP $ST"
get /api/v1/login "${B_ARGS[@]}" -H "X-CSRF-Token: $CSRF" -d "$login_body"
[ "$ST" = 200 ] && [ "$(jq -r .user "$T/b")" = alice ] || fail "a browser's login: HTTP $ST $(cat "$T/b")"
[ "$(jq -r 'has("token")' "$T/b")" = false ] || fail "the page saw the token: $(cat "$T/b")"
cookie=$(grep -i '^set-cookie: portico_session=' "$T/h" | tr -d '\r')
[[ $cookie =~ portico_session=[A-Za-z0-9_-]{43}\;\ Path=/\;\ Max-Age=28800\;\ Secure\;\ HttpOnly\;\ SameSite=Strict ]] ||
	fail "the session cookie: '$cookie'"
get /api/v1/resources "${B_ARGS[@]}"
[ "$ST" = 200 ] && [ "$(jq -r '[.resources[].name] | sort | join(",")' "$T/b")" = apps,office ] ||
	fail "resources with the cookie: HTTP $ST $(cat "$T/b")"
[ "$(hdr Cache-Control)" = no-store ] || fail "an API answer may be cached: $(hdr Cache-Control)"
get /api/v1/resources/office/launch "${B_ARGS[@]}" -d '{}'
[ "$ST" = 403 ] || fail "a launch without X-CSRF-Token: HTTP $ST"
get /api/v1/resources/office/launch "${B_ARGS[@]}" -H "X-CSRF-Token: $CSRF" -d '{}'
[ "$ST" = 200 ] && [ "$(jq -r '.ticket | length' "$T/b")" = 43 ] || fail "a launch: HTTP $ST $(cat "$T/b")"
get /api/v1/resources/apps/launch.rdp "${B_ARGS[@]}"
[ "$ST" = 200 ] && grep -q "^full address:s:" "$T/b" && [[ $(hdr Content-Type) == application/x-rdp* ]] ||
	fail "launch.rdp: HTTP $ST $(hdr Content-Type)"
get /api/v1/logout "${B_ARGS[@]}" -H "X-CSRF-Token: $CSRF" -X POST
[ "$ST" = 200 ] && grep -qi '^set-cookie: portico_session=;.*Max-Age=0' "$T/h" || fail "logout: HTTP $ST"
get /api/v1/resources "${B_ARGS[@]}"
[ "$ST" = 401 ] || fail "resources after logout: HTTP $ST"

# --- a program: its own bearer ----------------------------------------------------------
get /api/v1/login -d "$login_body"
[ "$ST" = 200 ] && [ "$(jq -r '.token | length' "$T/b")" = 43 ] || fail "a program's login: HTTP $ST"
TOK=$(jq -r .token "$T/b")
get /api/v1/resources -H "Authorization: Bearer $TOK"
[ "$ST" = 200 ] || fail "resources with a bearer: HTTP $ST"
get /api/v1/sessions -H "Authorization: Bearer $TOK"
[ "$ST" = 200 ] && [ "$(jq -r '[.sessions[].pool] | sort | join(",")' "$T/b")" = apps,office ] ||
	fail "sessions: HTTP $ST $(cat "$T/b")"
# Users' routes only: not the admins', gateways' or hosts'.
ADMIN=$(login carol carol-pw)
for r in "GET /api/v1/admin/pools" "POST /api/v1/gateway/redeem" "POST /api/v1/hosts/heartbeat" \
	"GET /api/v1/nope"; do
	get "${r#* }" -X "${r%% *}" -H "Authorization: Bearer $ADMIN" -d '{}'
	[ "$ST" = 404 ] && grep -q "routes of users only" "$T/b" || fail "$r through the gateway: HTTP $ST"
done
get /api/v1/login
[ "$ST" = 405 ] || fail "GET login: HTTP $ST"

# --- Forwarded: the client's address, from a gateway only -------------------------------
"${C[@]}" --interface 127.0.0.2 -o /dev/null "$P/api/v1/login" -d '{"username":"bob","password":"bob-pw"}'
grep -q "login user=bob rhost=127.0.0.2" "$T/broker.log" || fail "the broker did not hear the client's address"
bc() { ST=$(curl -s --cacert "$T/tls/server.pem" -o "$T/b" -w '%{http_code}' "$@"); }
bc "$B/login" -H "Forwarded: for=192.0.2.7" -d '{"username":"bob","password":"bob-pw"}'
[ "$ST" = 403 ] && grep -q "only from a gateway" "$T/b" || fail "Forwarded from a user: HTTP $ST"
bc "$B/login" -H "Forwarded: for=192.0.2.7" -H "Portico-Gateway: wrong" -d '{"username":"bob","password":"bob-pw"}'
[ "$ST" = 403 ] || fail "Forwarded with a wrong secret: HTTP $ST"
bc "$B/login" -H "Forwarded: for=192.0.2.7" -H "Portico-Gateway: $HOST_SECRET" -d '{"username":"bob","password":"bob-pw"}'
[ "$ST" = 403 ] || fail "Forwarded with a host's secret: HTTP $ST"
for f in "for=nonsense" "for=192.0.2.7, for=198.51.100.1" "by=192.0.2.7" "for=" 'for="[::1' "for=1.2.3.4.5"; do
	bc "$B/login" -H "Forwarded: $f" -H "Portico-Gateway: $GW_SECRET" -d '{"username":"bob","password":"bob-pw"}'
	[ "$ST" = 400 ] && grep -q bad_forwarded "$T/b" || fail "Forwarded: $f: HTTP $ST"
done
bc "$B/gateway/redeem" -H "Forwarded: for=192.0.2.7" -H "Portico-Gateway: $GW_SECRET" -d '{}'
[ "$ST" = 403 ] && grep -q "routes of users" "$T/b" || fail "a forwarded gateway route: HTTP $ST"
bc "$B/login" -H 'Forwarded: for="[2001:db8::7]"' -H "Portico-Gateway: $GW_SECRET" -d '{"username":"bob","password":"bob-pw"}'
[ "$ST" = 200 ] && grep -q "login user=bob rhost=2001:db8::7" "$T/broker.log" || fail "Forwarded IPv6: HTTP $ST"

# --- hostile clients --------------------------------------------------------------------
coproc HH { /usr/bin/python3 tests/tools/https-hostile.py 127.0.0.1 "$HP"; }
say() {
	echo "$*" >&"${HH[1]}"
	read -r -t 90 REPLY <&"${HH[0]}" || fail "the hostile client did not answer '$*'"
}
say "garbage 127.0.0.3"
[[ $REPLY == "closed after"* ]] || fail "garbage: $REPLY"
say "notls 127.0.0.3"
[[ $REPLY == "closed after"* ]] || fail "not HTTP in TLS: $REPLY"
say "bigheader 127.0.0.3"
[[ $REPLY == "431, closed after"* ]] || fail "20 KiB of headers: $REPLY"
say "slowloris 127.0.0.3"
[[ $REPLY =~ ^None,\ closed\ after\ [6-8]\. ]] || fail "a slowloris (handshake_timeout 6 s): $REPLY"
say "truncated 127.0.0.3"
[[ $REPLY =~ ^closed\ after\ [6-8]\. ]] || fail "half a ClientHello: $REPLY"
say "midrecord 127.0.0.3"
[[ $REPLY == "closed after"* ]] || fail "half a TLS record: $REPLY"
say "pipeline 127.0.0.3 2000"
[ "$REPLY" = "2000 answers in order" ] || fail "2000 requests sent ahead: $REPLY"
# The pending cap per source (max_pending_per_addr 4): a fifth is refused,
# other sources are served.
for i in 1 2 3 4; do
	say "open p$i tcp 127.0.0.4"
	[ "$REPLY" = "p$i open" ] || fail "connection $i of 127.0.0.4: $REPLY"
done
say "open p5 tcp 127.0.0.4"
[ "$REPLY" = "p5 closed" ] || fail "a fifth pending connection from one source: $REPLY"
grep -q "https 127.0.0.4: too many connections (max_pending_per_addr): refused" "$T/gateway.log" ||
	fail "no log line for the refusal"
get /api/v1/resources -H "Authorization: Bearer $TOK"
[ "$ST" = 200 ] || fail "127.0.0.1 while 127.0.0.4 is at its cap: HTTP $ST"
say "close p1 p2 p3 p4"
echo quit >&"${HH[1]}"

# Raw requests that lie, each over TLS: a clear status, then closed.
raw() {
	printf '%b' "$1" | timeout 10 openssl s_client -quiet -connect "127.0.0.1:$HP" 2>/dev/null | head -1 | tr -d '\r'
}
[[ $(raw 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n') == "HTTP/1.1 400"* ]] || fail "a negative Content-Length"
[[ $(raw 'POST /api/v1/login HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n') == "HTTP/1.1 413"* ]] ||
	fail "a body too long"
[[ $(raw "GET /$(head -c 3000 /dev/zero | tr '\0' a) HTTP/1.1\r\nHost: a\r\n\r\n") == "HTTP/1.1 414"* ]] ||
	fail "a URL too long"
[[ $(raw 'RDG_OUT_DATA / HTTP/1.1\r\nHost: a\r\n\r\n') == "HTTP/1.1 404"* ]] || fail "RDG_OUT_DATA on /"
[[ $(raw 'GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n') == "HTTP/1.1 404"* ]] ||
	fail "an Upgrade on /"
[[ $(raw 'GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n') == "HTTP/1.1 400"* ]] ||
	fail "chunked and Content-Length"
# 1,000 bad connections, then a good client is served.
/usr/bin/python3 - "$HP" <<'EOF' || fail "1,000 bad connections"
import socket, ssl, sys
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
for i in range(1000):
    s = socket.create_connection(("127.0.0.1", port))
    if i % 2:
        s.sendall(b"\x16\x03\x01\xff\xff" + bytes(range(256)))
    else:
        t = ctx.wrap_socket(s)
        t.sendall(b"GET /%s HTTP/1.1\r\n\x00\r\n\r\n" % (b"x" * i))
        s = t
    s.close()
EOF
get /api/v1/resources -H "Authorization: Bearer $TOK"
[ "$ST" = 200 ] || fail "a good client after 1,000 bad connections: HTTP $ST"
pt_running $GW_PID || fail "the gateway died"

# --- without noVNC, without the portal's files -------------------------------------------
HP2=$(free_port)
sed -e "s|^https_listen = .*|https_listen = 127.0.0.1:$HP2|" -e "s|^web_root = .*|&\nnovnc_root = $T/no-novnc|" \
	"$T/portico.conf" >"$T/nonovnc.conf"
"$BUILD/bin/portico-gateway" -c "$T/nonovnc.conf" >>"$T/gateway2.log" 2>&1 &
GW2=$!
for _ in $(seq 1 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$HP2") 2>/dev/null && break
	sleep 0.1
done
grep -q "novnc_root: .*no-novnc: No such file or directory: VNC desktops will not open in browsers" \
	"$T/gateway2.log" || fail "no warning without noVNC: $(cat "$T/gateway2.log")"
st=$("${C[@]}" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$HP2/")
st2=$("${C[@]}" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$HP2/novnc/core/rfb.js")
[ "$st $st2" = "200 404" ] || fail "the portal without noVNC: $st $st2"
pt_stop $GW2 "the gateway without noVNC"
sed -i "s|^web_root = .*|web_root = $T/no-web|" "$T/nonovnc.conf"
out=$(timeout 20 "$BUILD/bin/portico-gateway" -c "$T/nonovnc.conf" 2>&1)
[ $? = 1 ] && grep -q "web_root: $T/no-web: No such file or directory" <<<"$out" ||
	fail "a gateway without its portal's files: $out"

# --- the broker down: a readable 503 -----------------------------------------------------
be_stop
get /api/v1/resources -H "Authorization: Bearer $TOK"
[ "$ST" = 503 ] && [ "$(jq -r .message "$T/b")" = "the service is unavailable: try again later" ] ||
	fail "the broker down: HTTP $ST $(cat "$T/b")"
get /
[ "$ST" = 200 ] || fail "the portal's page with the broker down: HTTP $ST"
echo "ok"
