#!/bin/bash
# The HTTPS server's connection limits (lib/httpd.c) with the real broker
# and the real session agent:
#  - a source (127.0.0.2) at its cap of connections not authenticated has
#    its own idle ones closed for new ones, then its extra connections
#    refused at accept with a log line, while 127.0.0.1 is served;
#  - a source holding every slot with idle keep-alive connections does not
#    keep 127.0.0.1 from logging in: its oldest idle one is closed instead;
#    with nothing idle, a full server refuses;
#  - garbage, bytes that are not HTTP, 20 KiB of headers, a slowloris and
#    truncated TLS are each closed while the server serves others, and
#    20,000 requests sent ahead on one connection are answered in order;
#  - portico-sessiond's server has the same caps from [sessiond].
# The clients that hold and trickle are tests/tools/https-hostile.py.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

be_setup
sed -i "s|^login_window = 1m|&\nmax_connections = 16\nmax_connections_per_source = 4|" "$T/portico.conf"
be_start
grep -q 'max_connections: 16' "$T/broker.log" || fail "the broker did not log its connection cap"

# The hostile client, driven one command at a time.
client() {
	coproc HH { /usr/bin/python3 tests/tools/https-hostile.py 127.0.0.1 "$1"; }
}
client "$PORT"
say() {
	echo "$*" >&"${HH[1]}"
	read -r -t 90 REPLY <&"${HH[0]}" || fail "the hostile client did not answer '$*'"
}
# want COMMAND EXPECTED: the client's answer to COMMAND is EXPECTED
want() {
	say "$1"
	[ "$REPLY" = "$2" ] || fail "'$1' answered '$REPLY', not '$2'"
}
want_re() {
	say "$1"
	[[ $REPLY =~ $2 ]] || fail "'$1' answered '$REPLY'"
}
# logs_in WHEN: alice logs in from 127.0.0.1 and gets her token (its own
# curl: api() would show the last answer again when curl gets none)
logs_in() {
	local st
	rm -f "$T/login.out"
	st=$(curl -s -o "$T/login.out" -w '%{http_code}' --cacert "$T/tls/server.pem" "$B/login" \
		-d '{"username":"alice","password":"alice-pw"}')
	[ "$st" = 200 ] && [ "$(jq -r '.token | length' "$T/login.out")" = 43 ] ||
		fail "alice could not log in from 127.0.0.1 ($1): HTTP $st $(cat "$T/login.out" 2>/dev/null)"
}
ALICE=$(login alice alice-pw)
[ ${#ALICE} = 43 ] || fail "alice could not log in"

# --- the cap per source --------------------------------------------------------
# Four idle connections that never authenticated (401 answered, kept alive).
for i in 1 2 3 4; do want "open u$i idle 127.0.0.2 /api/v1/resources" "u$i 401"; done
# At its cap, the source's own oldest idle connection makes room for a new one.
want "open h1 half 127.0.0.2" "h1 open"
want "check u1 u2 u3 u4" "u1 closed u2 open u3 open u4 open"
grep -q 'its source is at its cap' "$T/broker.log" || fail "no line for the idle connection closed"
for i in 2 3 4; do want "open h$i half 127.0.0.2" "h$i open"; done
want "check u2 u3 u4" "u2 closed u3 closed u4 closed"
# Four half-open TLS connections and none idle: the fifth is refused at accept.
want "open h5 half 127.0.0.2" "h5 closed"
want "open t1 tcp 127.0.0.2" "t1 closed"
grep -q '127.0.0.2: 4 connections not authenticated from 127.0.0.2 already (the cap per source): refused' \
	"$T/broker.log" || fail "no line for the refusal"
want "check h1 h2 h3 h4" "h1 open h2 open h3 open h4 open"
# Another source is not affected.
logs_in "127.0.0.2 at its cap"
echo "ok: the cap per source"

# --- idle keep-alives hold every slot ---------------------------------------------
# 127.0.0.2 fills the server: 12 idle keep-alives that authenticated (they
# no longer count against it) and 4 half-open ones (its cap).
want "close h1 h2 h3 h4" closed
for i in $(seq 1 12); do want "open a$i idle 127.0.0.2 /api/v1/resources $ALICE" "a$i 200"; done
for i in 1 2 3 4; do want "open h$i half 127.0.0.2" "h$i open"; done
want "open a13 idle 127.0.0.2 /api/v1/resources $ALICE" "a13 closed"
# 127.0.0.1 logs in all the same: the oldest idle connection goes.
logs_in "every slot held by 127.0.0.2"
want "check a1 a2 h1" "a1 closed a2 open h1 open"
grep -q 'the server is near its cap' "$T/broker.log" || fail "no line for the idle connection closed"
# Idle ones that never authenticated go before those that did.
want "open u5 idle 127.0.0.3 /api/v1/resources" "u5 401"
logs_in "every slot held again"
want "check u5 a2" "u5 closed a2 open"
# With nothing idle, a full server refuses: 16 half-open connections from
# four sources, and 127.0.0.1 cannot get in.
want "close h1 h2 h3 h4 $(echo a{2..12})" closed
for s in 3 4 5 6; do
	for i in 1 2 3 4; do want "open f$s$i half 127.0.0.$s" "f$s$i open"; done
done
STATUS=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/tls/server.pem" "$B/login" \
	-d '{"username":"alice","password":"alice-pw"}')
[ "$STATUS" = 000 ] || fail "a full server with nothing idle answered HTTP $STATUS"
grep -q '127.0.0.1: 16 connections open, none idle (the cap): refused' "$T/broker.log" ||
	fail "no line for the refusal of a full server"
want "close f31 f32 f33 f34" closed
sleep 0.5
logs_in "after four connections closed"
want "close $(echo f4{1..4} f5{1..4} f6{1..4})" closed
echo "ok: idle keep-alives are closed first"

# --- hostile clients ----------------------------------------------------------------
# Slow ones in the background (10 s for a request, 20 s for a handshake and
# the request after it), quick ones meanwhile.
H="/usr/bin/python3 tests/tools/https-hostile.py 127.0.0.1 $PORT"
pids=()
for c in slowloris truncated midrecord; do
	echo "$c 127.0.0.2" | $H >"$T/$c.out" 2>&1 &
	pids+=($!)
done
# (Quick means well before any timeout: this machine may be loaded.)
want_re "garbage 127.0.0.2" '^closed after [0-4]\.[0-9] s$'
want_re "notls 127.0.0.2" '^closed after [0-4]\.[0-9] s$'
grep -q '127.0.0.2: not HTTP' "$T/broker.log" || fail "no line for bytes that are not HTTP"
want_re "bigheader 127.0.0.2" '^431, closed after [0-4]\.[0-9] s$'
# 20,000 requests in one go on one connection: each answered, in order.
want "pipeline 127.0.0.2 20000" "20000 answers in order"
logs_in "beside a slowloris and truncated TLS"
wait "${pids[@]}"
[[ $(cat "$T/slowloris.out") =~ ^408,\ closed\ after\ (9|1[0-5])\.[0-9]\ s$ ]] ||
	fail "slowloris: $(cat "$T/slowloris.out")"
for c in truncated midrecord; do
	[[ $(cat "$T/$c.out") =~ ^closed\ after\ (19|2[0-5])\.[0-9]\ s$ ]] || fail "$c: $(cat "$T/$c.out")"
done
logs_in "after the hostile clients"
kill -0 "$BE_PID" 2>/dev/null || fail "the broker died"
echo "ok: hostile clients are closed, others served"

# --- portico-sessiond's server has the same caps -----------------------------------
echo quit >&"${HH[1]}"
wait "$HH_PID"
. tests/integration/sessiond_env.sh
be_stop
sd_setup
be_conf_append "max_connections = 8
max_connections_per_source = 3"
be_start
ADMIN=$(login carol carol-pw)
sd_start
grep -q '\[sessiond\] max_connections: 8' "$T/sessiond.log" || fail "sessiond did not log its connection cap"
client "$SD_PORT"
# The broker's credential authenticates: five idle keep-alives that no
# longer count, then three half-open ones (the cap), and the server is full.
for i in 1 2 3 4 5; do want "open k$i idle 127.0.0.2 /api/v1/sessions $BROKER_SECRET" "k$i 200"; done
for i in 1 2 3; do want "open s$i half 127.0.0.2" "s$i open"; done
want "open s4 half 127.0.0.2" "s4 closed"
grep -q '127.0.0.2: 3 connections not authenticated from 127.0.0.2 already (the cap per source): refused' \
	"$T/sessiond.log" || fail "sessiond: no line for the refusal"
sd_api GET /sessions >/dev/null
[ "$STATUS" = 200 ] || fail "the broker's call from 127.0.0.1 got HTTP $STATUS"
want "check k1 k2 s1" "k1 closed k2 open s1 open"
echo quit >&"${HH[1]}"
wait "$HH_PID"
echo "ok: sessiond's caps"
