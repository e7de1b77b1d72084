#!/bin/bash
# Prometheus metrics (issue 16): a broker, a session host and a gateway,
# each with metrics_listen on loopback.  A failed and a good sign-in, a
# launch that starts a real Xvnc session, a VNC viewer through the gateway
# (a ticket, a password, a wrong password) and an idle connection that runs
# out of handshake time; the numbers a scraper reads move as they should,
# and every daemon's whole exposition parses with Debian's
# python3-prometheus-client.  Then hostile clients of the metrics listener
# (garbage, oversized headers, a slowloris, wrong method and path, a flood
# of connections): each is answered or closed, and the daemon still serves.
# An address that cannot be bound stops the daemon with a line saying so.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

/usr/bin/python3 -c 'import prometheus_client.parser' 2>/dev/null ||
	fail "python3-prometheus-client is not installed (make deps)"

be_setup
sd_setup
GW_PORT=$(free_port)
BM=$(free_port) GM=$(free_port) SM=$(free_port) HP=$(free_port)
be_gateway_conf "$GW_PORT" - public_host=gateway.test user="$SD_SVC" handshake_timeout=2s \
	max_pending_per_addr=50 metrics_listen="127.0.0.1:$GM" https_listen="127.0.0.1:$HP"
sed -i "/^\[broker\]/a metrics_listen = 127.0.0.1:$BM" "$T/portico.conf"
sed -i "/^\[sessiond\]/a metrics_listen = 127.0.0.1:$SM" "$T/portico.conf"
be_conf_append "
[pool xterm]
kind = app
driver = xvnc
command = /usr/bin/xterm -geometry 80x24+10+10
hosts = host1
users = $SD_USER
geometry = 640x480"
be_start
ADMIN=$(login carol carol-pw) # sd_start watches the hosts with it: a first good sign-in
sd_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
trap 'kill $GW_PID 2>/dev/null; wait $GW_PID 2>/dev/null; sd_cleanup' EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$GW_PORT) 2>/dev/null" ||
	fail "the gateway does not listen: $(cat "$T/gateway.log")"
GW=127.0.0.1:$GW_PORT
CA=$T/pki/ca.pem

# scrape PORT: the exposition (and its headers in $T/headers)
scrape() { curl -s -m 5 -D "$T/headers" "http://127.0.0.1:$1/metrics"; }
# value PORT 'name{labels}': the sample's value as a scraper reads it, "" if absent
value() {
	scrape "$1" | awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print "" }'
}
# want PORT 'name{labels}' VALUE: it reads VALUE (within 8 s: the broker's store gauges are
# read every 5 s)
want() {
	local got
	for _ in $(seq 1 40); do
		got=$(value "$1" "$2")
		[ "$got" = "$3" ] && return 0
		sleep 0.2
	done
	fail "$2 at :$1 reads '${got}', not $3"
}
# the whole exposition, parsed as Prometheus does; prints "families samples"
parse() {
	scrape "$1" >"$T/expo" || fail "no answer from :$1"
	/usr/bin/python3 - "$T/expo" <<'PY' || fail "the exposition of :$1 does not parse: $(head -c 2000 "$T/expo")"
import sys
from prometheus_client.parser import text_string_to_metric_families
text = open(sys.argv[1]).read()
fams = list(text_string_to_metric_families(text))
names = {f.name for f in fams}
assert len(names) == len(fams), "a family twice"
for f in fams:
    assert f.documentation, f.name + " has no HELP"
    assert f.type in ("counter", "gauge", "histogram"), f.name + " " + f.type
print(len(fams), sum(len(f.samples) for f in fams))
PY
}

for p in "$BM" "$GM" "$SM"; do
	wait_for 5 scrape "$p" >/dev/null || fail "no metrics on :$p"
	grep -qi '^content-type: text/plain; version=0.0.4' "$T/headers" ||
		fail "content type at :$p: $(cat "$T/headers")"
done
want "$BM" 'portico_build_info{version="0.16",daemon="broker"}' 1
want "$GM" 'portico_build_info{version="0.16",daemon="gateway"}' 1
want "$SM" 'portico_build_info{version="0.16",daemon="sessiond"}' 1
want "$BM" 'portico_logins_total{result="failure"}' 0
want "$BM" 'portico_logins_total{result="success"}' 1
echo "ok: three listeners, text format 0.0.4"

# --- the broker: sign-ins, a launch, the store's gauges ----------------------------
[ -z "$(login "$SD_USER" wrong-pw)" ] || fail "a wrong password got in"
want "$BM" 'portico_logins_total{result="failure"}' 1
want "$BM" 'portico_logins_total{result="success"}' 1
TOKEN=$(login "$SD_USER" user-pw)
[ -n "$TOKEN" ] || fail "login"
want "$BM" 'portico_logins_total{result="success"}' 2
want "$BM" 'portico_logins_total{result="failure"}' 1
# Three PAM conversations: carol's, the wrong password, the good one.
want "$BM" 'portico_pam_seconds_count' 3
api POST /resources/xterm/launch "" "$TOKEN" >/dev/null
[ "$STATUS" = 200 ] || fail "launch: $STATUS $(cat "$T/out")"
TICKET=$(jq -r .ticket "$T/out")
want "$BM" 'portico_launches_total{pool="xterm",result="ok"}' 1
want "$BM" 'portico_launch_seconds_count' 1
api POST /resources/nosuchpool/launch "" "$TOKEN" >/dev/null
want "$BM" 'portico_launches_total{pool="",result="not_found"}' 1
want "$BM" 'portico_sessions{pool="xterm",state="ready"}' 1
want "$BM" 'portico_sessions{pool="xterm",state="active"}' 0
want "$BM" 'portico_session_hosts{state="up"}' 1
[ -n "$(value "$BM" 'portico_session_host_load{host="host1"}')" ] || fail "no load for host1"
want "$BM" 'portico_broker_requests_total{route="/resources/:name/launch",status="200"}' 1
echo "ok: broker: logins by result, launches by pool, sessions by pool and state, hosts"

# --- sessiond: the start -------------------------------------------------------
want "$SM" 'portico_sessiond_starts_total{kind="app",result="ok"}' 1
want "$SM" 'portico_sessiond_start_seconds_count' 1
want "$SM" 'portico_sessiond_sessions{kind="app",state="running"}' 1
want "$SM" 'portico_sessiond_sessions{kind="app",state="starting"}' 0
echo "ok: sessiond: starts by kind and result, sessions by kind and state"

# --- the gateway: a viewer through it, refusals -----------------------------------
out=$("$PROBE" -u ticket -C "$CA" "$GW" "$TICKET" 2>"$T/probe.err") ||
	fail "ticket through the gateway: $(cat "$T/probe.err") $(tail -5 "$T/gateway.log")"
want "$BM" 'portico_tickets_redeemed_total{result="ok"}' 1
# (the wait for its port above was its first connection)
want "$GM" 'portico_gateway_connections_opened_total{protocol="vnc"}' 2
# The viewer has left: the relay's bytes are counted, as many as the gateway's own
# line about the connection says (an xterm's screen compresses to a few hundred).
wait_for 5 grep -q "session [0-9]* disconnected" "$T/gateway.log" || fail "no disconnect logged"
line=$(grep -o "disconnected ([a-z]*), [0-9]* up, [0-9]* down" "$T/gateway.log" | head -1)
down=$(value "$GM" 'portico_relay_bytes_total{protocol="vnc",direction="down"}')
up=$(value "$GM" 'portico_relay_bytes_total{protocol="vnc",direction="up"}')
[ "${down:-0}" -gt 100 ] && [ "${up:-0}" -gt 0 ] && [ "$line" = "disconnected (closed), $up up, $down down" ] ||
	fail "relayed bytes: up '$up', down '$down'; the gateway says '$line' ($out)"
"$PROBE" -u ticket -C "$CA" "$GW" "$TICKET" >/dev/null 2>&1 && fail "a used ticket was taken"
want "$BM" 'portico_tickets_redeemed_total{result="refused"}' 1
want "$GM" 'portico_gateway_refused_total{reason="login_failed"}' 1
"$PROBE" -u "$SD_USER#xterm" -C "$CA" "$GW" user-pw >/dev/null 2>"$T/probe.err" ||
	fail "password through the gateway: $(cat "$T/probe.err")"
want "$BM" 'portico_logins_total{result="success"}' 3
"$PROBE" -u "$SD_USER#xterm" -C "$CA" "$GW" wrong-pw >/dev/null 2>&1 && fail "a wrong password got in"
want "$BM" 'portico_logins_total{result="failure"}' 2
want "$GM" 'portico_gateway_refused_total{reason="login_failed"}' 2
want "$GM" 'portico_gateway_connections_opened_total{protocol="vnc"}' 5
# A connection while it waits for its handshake is pending; then it runs out of time.
exec 7<>"/dev/tcp/127.0.0.1/$GW_PORT"
want "$GM" 'portico_gateway_connections{protocol="vnc",state="pending"}' 1
want "$GM" 'portico_gateway_refused_total{reason="handshake_timeout"}' 1
want "$GM" 'portico_gateway_connections{protocol="vnc",state="pending"}' 0
exec 7<&-
# The relayed bytes grow with a viewer that stays: counted as they move, not at the end.
before=$(value "$GM" 'portico_relay_bytes_total{protocol="vnc",direction="down"}')
"$PROBE" -b 4 -u "$SD_USER#xterm" -C "$CA" "$GW" user-pw >/dev/null 2>&1 &
VIEWER=$!
want "$GM" 'portico_gateway_connections{protocol="vnc",state="relaying"}' 1
sleep 1 # raw frames, one after the other: megabytes a second
mid=$(value "$GM" 'portico_relay_bytes_total{protocol="vnc",direction="down"}')
[ "$mid" -gt $((before + 1000000)) ] || fail "bytes of an open relay not counted: $before then $mid"
wait $VIEWER
want "$GM" 'portico_gateway_connections{protocol="vnc",state="relaying"}' 0
want "$BM" 'portico_sessions{pool="xterm",state="disconnected"}' 1
# A browser's VNC (noVNC's WebSocket through the HTTPS front) counts as ws, its HTTPS
# connection as https; a ticket used already as bad_ticket.
api POST /resources/xterm/launch "" "$TOKEN" >/dev/null
TK=$(jq -r .ticket "$T/out")
out=$(/usr/bin/python3 tests/tools/ws-rfb.py 127.0.0.1 "$HP" rfb "$TK")
grep -q "^update" <<<"$out" || fail "noVNC's handshake through the HTTPS front: $out"
want "$GM" 'portico_gateway_connections_opened_total{protocol="https"}' 1
want "$GM" 'portico_gateway_connections_opened_total{protocol="ws"}' 1
[ "$(value "$GM" 'portico_relay_bytes_total{protocol="ws",direction="down"}')" -gt 0 ] ||
	fail "no ws bytes: $(scrape "$GM" | grep 'protocol="ws"')"
out=$(/usr/bin/python3 tests/tools/ws-rfb.py 127.0.0.1 "$HP" rfb "$TK")
grep -q "^refused" <<<"$out" || fail "a used ticket through the HTTPS front: $out"
want "$GM" 'portico_gateway_refused_total{reason="bad_ticket"}' 1
echo "ok: gateway: connections by protocol and state, relayed bytes while they move, refusals by reason"

# --- every exposition parses ----------------------------------------------------------
for p in "$BM" "$GM" "$SM"; do
	n=$(parse "$p") || exit 1
	cp "$T/expo" "$T/expo.$p"
	echo "   :$p parses: $n (families samples)"
done
echo "ok: prometheus_client parses every daemon's exposition"
# What an admin reads about them: every family is in docs/operations.md, and every
# metric the Grafana dashboard asks for is one a daemon serves.
for f in $(cat "$T"/expo.* | sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p' | sort -u); do
	grep -q "\`$f\`" docs/operations.md || fail "$f is not in docs/operations.md"
done
python3 -m json.tool etc/grafana/portico.json >/dev/null || fail "etc/grafana/portico.json is not JSON"
for m in $(jq -r '.panels[].targets[].expr' etc/grafana/portico.json | grep -o 'portico_[a-z_]*' | sort -u); do
	grep -q "^${m%_bucket}[{ ]\|^# TYPE ${m%_bucket} " "$T"/expo.* || fail "the dashboard asks for $m, which no daemon serves"
done
echo "ok: every family documented, every dashboard query served"

# --- hostile clients of the metrics listener ---------------------------------------------
/usr/bin/python3 - "$GM" <<'PY' || fail "hostile clients"
import socket, sys, time
port = int(sys.argv[1])

def talk(data, wait=3.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        if data:
            s.sendall(data)
        out = b""
        while True:
            try:
                b = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                break
            if not b:
                break
            out += b
        return out
    finally:
        s.close()

def status(out):
    return out.split(b"\r\n", 1)[0].decode(errors="replace")

checks = [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"),
    (b"GET /metrics/../etc HTTP/1.1\r\n\r\n", "HTTP/1.1 404"),
    (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405"),
    (b"DELETE /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 405"),
    (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", "HTTP/1.1 431"),
    (b"GET /" + b"m" * 5000 + b" HTTP/1.1\r\n\r\n", "HTTP/1.1 414"),
    (b"GET /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", "HTTP/1.1 413"),
]
for req, want in checks:
    got = status(talk(req))
    assert got.startswith(want), (req[:40], got)
head = talk(b"POST /metrics HTTP/1.1\r\n\r\n")
assert b"\r\nAllow: GET\r\n" in head, head
# Not HTTP at all: closed without an answer, or a 400.
for junk in (b"\x16\x03\x01\x00\xa5\x01\x00\x00", b"GARBAGE\r\n\r\n", b"GET\r\n\r\n"):
    got = talk(junk)
    assert got == b"" or status(got).startswith("HTTP/1.1 400"), (junk, got[:60])
# A slowloris: a byte a second never makes a request; closed within the 10 s.
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(1.0)
start, closed = time.time(), False
s.sendall(b"GET /metrics HTTP/1.1\r\n")
while time.time() - start < 14:
    try:
        s.sendall(b"X")
        if s.recv(100) == b"":
            closed = True
            break
    except socket.timeout:
        continue
    except (ConnectionResetError, BrokenPipeError):
        closed = True
        break
assert closed, "a slowloris kept its connection past the timeout"
print("   slowloris closed after %.1f s" % (time.time() - start))
# A flood: past the cap, new connections are closed at once; the first are kept.
flood = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
time.sleep(0.5)
closed = 0
for f in flood:
    f.setblocking(False)
    try:
        if f.recv(1) == b"":
            closed += 1
    except BlockingIOError:
        pass
    except ConnectionResetError:
        closed += 1
assert 20 <= closed <= 24, "closed %d of 40" % closed
for f in flood:
    f.close()
time.sleep(0.3)
ok = talk(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
assert status(ok) == "HTTP/1.1 200 OK" and b"portico_build_info" in ok, ok[:200]
print("   flood: %d of 40 closed at once (16 kept), served after" % closed)
PY
kill -0 "$GW_PID" || fail "the gateway died"
[ "$(value "$GM" 'portico_build_info{version="0.16",daemon="gateway"}')" = 1 ] ||
	fail "the gateway's metrics no longer answer"
# Its other listener never noticed.
"$PROBE" -u "$SD_USER#xterm" -C "$CA" "$GW" user-pw >/dev/null 2>"$T/probe.err" ||
	fail "VNC after the hostile clients: $(cat "$T/probe.err")"
echo "ok: hostile metrics clients answered or closed, the daemon still serves"

# --- an address that cannot be bound --------------------------------------------------
sed "s|^vnc_listen = .*|vnc_listen = 127.0.0.1:$(free_port)|; s|^https_listen = .*|https_listen =|; s|^metrics_listen = 127.0.0.1:$GM|metrics_listen = 127.0.0.1:$BM|" \
	"$T/portico.conf" >"$T/busy.conf"
timeout 10 "$BUILD/bin/portico-gateway" -c "$T/busy.conf" >"$T/busy.log" 2>&1 && fail "a second gateway started"
grep -q "metrics_listen: cannot listen for metrics on 127.0.0.1:$BM: address already in use" "$T/busy.log" ||
	fail "no clear error for a busy address: $(cat "$T/busy.log")"
sed "s|^metrics_listen = 127.0.0.1:$GM|metrics_listen = nonsense:port|" "$T/portico.conf" >"$T/bad.conf"
"$BUILD/bin/portico-gateway" -t -c "$T/bad.conf" >"$T/bad.log" 2>&1 && fail "a malformed address was taken"
grep -q "metrics_listen" "$T/bad.log" || fail "malformed address: $(cat "$T/bad.log")"
echo "ok: a busy or malformed metrics address stops the daemon with a line saying so"
