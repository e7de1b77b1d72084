#!/bin/bash
# Brokers side by side (issue 14), as the clients see them: a gateway, a
# session host, portico and portico-admin given a list of broker URLs go on
# to the next one when one is dead or answers 503, follow a host name with
# several addresses, name every URL tried when none answers, and never send
# a POST to another broker once it went out unanswered.  One real broker;
# the others are a closed port and tests/tools/https-stub.py (a broker that
# answers 503, or one that resets the connection after reading a request).
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

STUB=tests/tools/https-stub.py
NSSW=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so
[ -x "$PROBE" ] || fail "$PROBE is not built (make BUILD=$BUILD $PROBE)"

be_setup
# The broker's certificate also names brokers.test (and 127.0.0.2), the host
# name with two addresses below; same CA, same CN, so nothing else of the
# test's world changes (pki issue writes over nothing: a copy of the CA).
cp -r "$T/pki" "$T/pki2"
rm "$T/pki2/127.0.0.1.pem" "$T/pki2/127.0.0.1.key"
"$BUILD/bin/portico-admin" pki issue "$T/pki2" --role broker 127.0.0.1 \
	--san localhost,127.0.0.2,brokers.test >/dev/null || fail "pki issue"
cp "$T/pki2/127.0.0.1.pem" "$T/tls/server.pem"
cp "$T/pki2/127.0.0.1.key" "$T/tls/server.key"
sd_setup
GW_PORT=$(free_port)
be_gateway_conf "$GW_PORT" - user="$SD_SVC"
be_conf_append "
[pool xterm]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host1
users = $SD_USER"
LIVE=https://127.0.0.1:$PORT
DEAD=$(free_port)
DEAD2=$(free_port)
[ "$DEAD" != "$DEAD2" ] || DEAD2=$((DEAD + 1))
# The gateway's and the session host's broker: a dead one first.  Its host
# differs from the live one's (whose certificate's CN is 127.0.0.1): the
# session host takes a broker's certificate whose CN is the host of any URL
# of its list, so the broker's calls to it (the launches below) get in.
LIST="https://localhost:$DEAD, $LIVE"
sed -i "s|^broker = $LIVE\$|broker = $LIST|" "$T/portico.conf"
[ "$(grep -c "^broker = $LIST\$" "$T/portico.conf")" = 2 ] || fail "the broker lines: $(grep ^broker "$T/portico.conf")"

# stub NAME MODE ADDR PORT [CERT KEY]: a stub broker (with the broker's
# certificate unless told); the requests it read in $T/NAME.req
STUB_PIDS=()
stub() {
	: >"$T/$1.req"
	python3 "$STUB" "${5:-$T/tls/server.pem}" "${6:-$T/tls/server.key}" "$3" "$4" "$2" "$1" \
		"$T/$1.req" >"$T/$1.out" 2>&1 &
	STUB_PIDS+=($!)
	wait_for 5 grep -q listening "$T/$1.out" || fail "stub $1: $(cat "$T/$1.out")"
}

be_start
ADMIN=$(login carol carol-pw)
[ -n "$ADMIN" ] || fail "admin login"
sd_start # waits until host1 is registered
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
trap 'kill $GW_PID ${STUB_PIDS[*]} 2>/dev/null; wait $GW_PID 2>/dev/null; sd_cleanup' EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$GW_PORT) 2>/dev/null" || fail "the gateway does not listen: $(cat "$T/gateway.log")"
CA=$T/pki/ca.pem

# --- a session host and a gateway with a dead broker first ----------------------------
grep -q "$LIVE answered after https://localhost:$DEAD: .*Connection refused" "$T/sessiond.log" ||
	fail "sessiond did not say it went on: $(tail -5 "$T/sessiond.log")"
out=$("$PROBE" -u "$SD_USER#xterm" -C "$CA" "127.0.0.1:$GW_PORT" user-pw 2>"$T/probe.err") ||
	fail "a login through the gateway: $(cat "$T/probe.err") $(tail -5 "$T/gateway.log")"
grep -q "name=xterm ($SD_USER)" <<<"$out" || fail "the gateway led to: $out"
grep -q "$LIVE answered after https://localhost:$DEAD: " "$T/gateway.log" ||
	fail "the gateway did not say it went on: $(tail -5 "$T/gateway.log")"
# Once it has gone on, it stays with the broker that answers: a second
# login adds no line (the first URL of the list is not tried again).
n=$(grep -c "answered after" "$T/gateway.log")
"$PROBE" -u "$SD_USER#xterm" -C "$CA" "127.0.0.1:$GW_PORT" user-pw >/dev/null 2>&1 || fail "second login"
[ "$(grep -c "answered after" "$T/gateway.log")" = "$n" ] || fail "the gateway went back to the dead broker"
echo "ok: a session host registers and a gateway logs users in with a dead broker first"

# --- portico and portico-admin ----------------------------------------------------------
export HOME=$T/client-home XDG_CONFIG_HOME=
mkdir -p "$HOME" "$T/admin-home"
P="$BUILD/bin/portico"
A="$BUILD/bin/portico-admin"
out=$(echo user-pw | "$P" --broker "$LIST" --ca "$CA" login "$SD_USER" 2>&1) || fail "login: $out"
grep -q "logged in to $LIST as $SD_USER" <<<"$out" || fail "login said: $out"
out=$("$P" list 2>&1) || fail "list: $out"
grep -qE "^xterm +app +vnc +(-|ready|active|disconnected)$" <<<"$out" || fail "list: $out"
out=$(echo carol-pw | HOME=$T/admin-home "$A" --broker "$LIST" --ca "$CA" login carol 2>&1) ||
	fail "admin login: $out"
out=$(HOME=$T/admin-home "$A" host list 2>&1) || fail "host list: $out"
grep -qE "^host1 +sessiond " <<<"$out" || fail "host list: $out"
out=$(HOME=$T/admin-home "$A" pool list 2>&1) || fail "pool list: $out"
grep -qE "^xterm +app +vnc +xvnc +host1 " <<<"$out" || fail "pool list: $out"
echo "ok: portico logs in and lists, portico-admin lists, a dead broker first"

# --- a broker that answers 503 is skipped; 503 from all: the last one's words ----------------
S1=$(free_port)
stub busy1 503 127.0.0.1 "$S1"
out=$(echo user-pw | "$P" --broker "https://127.0.0.1:$S1, $LIVE" --ca "$CA" login "$SD_USER" 2>&1) ||
	fail "login past a 503: $out"
grep -q "^POST /api/v1/login$" "$T/busy1.req" || fail "the 503 broker was not asked first: $(cat "$T/busy1.req")"
out=$("$P" list 2>&1) && grep -q "^xterm " <<<"$out" || fail "list past a 503: $out"
grep -q "^GET /api/v1/resources$" "$T/busy1.req" || fail "the list did not start at the 503 broker"
S2=$(free_port)
stub busy2 503 127.0.0.1 "$S2"
out=$(echo user-pw | "$P" --broker "https://127.0.0.1:$S1, https://127.0.0.1:$S2" --ca "$CA" login "$SD_USER" 2>&1)
rc=$?
[ $rc = 1 ] && [ "$out" = "portico: busy2: the database is unavailable" ] || fail "503 from both ($rc): $out"
echo "ok: a broker answering 503 is skipped; when all do, the last one's message is shown"

# --- none answers: each URL named with its reason ------------------------------------------------
out=$(echo user-pw | "$P" --broker "https://127.0.0.1:$DEAD, https://127.0.0.1:$DEAD2" --ca "$CA" login "$SD_USER" 2>&1)
rc=$?
[ $rc = 1 ] || fail "all dead: exit $rc: $out"
grep -qE "^portico: cannot reach any broker: https://127.0.0.1:$DEAD: .*Connection refused\); https://127.0.0.1:$DEAD2: .*Connection refused\)$" <<<"$out" ||
	fail "all dead: $out"
out=$(echo user-pw | "$P" --broker "https://127.0.0.1:$DEAD, https://127.0.0.1:$S1" --ca "$CA" login "$SD_USER" 2>&1)
[ $? = 1 ] && grep -qE "^portico: cannot reach any broker: https://127.0.0.1:$DEAD: .*Connection refused\); https://127.0.0.1:$S1: HTTP 503 \(busy1: the database is unavailable\)$" <<<"$out" ||
	fail "dead and 503: $out"
# One URL: the message of before.
out=$(echo user-pw | "$P" --broker "https://127.0.0.1:$DEAD" --ca "$CA" login "$SD_USER" 2>&1)
[ $? = 1 ] && grep -qE "^portico: cannot reach the broker: https://127.0.0.1:$DEAD: .*Connection refused\)$" <<<"$out" ||
	fail "one dead broker: $out"
echo "ok: when none answers, each URL is named with its reason"

# --- sent but not answered: a POST is not sent again, a GET is ---------------------------------
R=$(free_port)
stub reset reset 127.0.0.1 "$R"
logins=$(grep -c "login user=$SD_USER " "$T/broker.log")
out=$(echo user-pw | "$P" --broker "https://127.0.0.1:$R, $LIVE" --ca "$CA" login "$SD_USER" 2>&1)
rc=$?
grep -q "^POST /api/v1/login$" "$T/reset.req" || fail "the resetting broker did not read the login: $(cat "$T/reset.req")"
[ $rc = 1 ] && grep -q "^portico: cannot reach any broker: https://127.0.0.1:$R: .*(a POST is not sent again to another server: this one may have carried it out)$" <<<"$out" ||
	fail "a POST reset after it was read ($rc): $out"
sleep 0.5
[ "$(grep -c "login user=$SD_USER " "$T/broker.log")" = "$logins" ] ||
	fail "the POST was sent again to the second broker: $(grep "login user=$SD_USER " "$T/broker.log" | tail -2)"
# A GET (the saved login, pointed at the same list) goes on to the next.
echo user-pw | "$P" --broker "$LIVE" --ca "$CA" login "$SD_USER" >/dev/null 2>&1 || fail "login"
sed -i "s|^broker = .*|broker = https://127.0.0.1:$R, $LIVE|" "$HOME/.config/portico/token"
out=$("$P" list 2>&1) && grep -q "^xterm " <<<"$out" || fail "a GET past a reset: $out"
grep -q "^GET /api/v1/resources$" "$T/reset.req" || fail "the GET did not go to the resetting broker first"
echo "ok: a POST that went out unanswered is not sent to another broker; a GET is"

# --- one host name, several addresses (nss_wrapper's hosts file) ------------------------------
printf '127.0.0.2 brokers.test\n127.0.0.1 brokers.test\n127.0.0.2 other.test\n127.0.0.1 other.test\n' >"$T/hosts"
nssw() {
	env LD_PRELOAD="$NSSW" NSS_WRAPPER_HOSTS="$T/hosts" NSS_WRAPPER_DISABLE_DEEPBIND=1 \
		ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" "$@"
}
# 127.0.0.2 refuses: libcurl goes to the next address by itself.
out=$(echo user-pw | nssw "$P" --broker "https://brokers.test:$PORT" --ca "$CA" login "$SD_USER" 2>&1) ||
	fail "a name whose first address is dead: $out"
grep -q "logged in to https://brokers.test:$PORT as $SD_USER" <<<"$out" || fail "login said: $out"
# 127.0.0.2 answers 503: the other address is asked, the certificate
# checked against the name.
stub busyname 503 127.0.0.2 "$PORT"
out=$(echo user-pw | nssw "$P" --broker "https://brokers.test:$PORT" --ca "$CA" login "$SD_USER" 2>&1) ||
	fail "a name whose first address answers 503: $out $(cat "$T/busyname.req")"
grep -q "^POST /api/v1/login$" "$T/busyname.req" || fail "the 503 address was not asked first: $(cat "$T/busyname.req")"
out=$(nssw "$P" list 2>&1) && grep -q "^xterm " <<<"$out" || fail "list by name: $out"
[ "$(grep -c "^GET /api/v1/resources$" "$T/busyname.req")" = 1 ] || fail "the list did not start at the 503 address"
# A pinned address is still checked against the name: other.test's 503
# comes from a stub whose certificate carries that name, the broker's at
# 127.0.0.1 does not carry it.
kill "${STUB_PIDS[-1]}"
wait "${STUB_PIDS[-1]}" 2>/dev/null
"$BUILD/bin/portico-admin" pki issue "$T/pki2" --role broker other.test >/dev/null || fail "pki issue other.test"
stub othername 503 127.0.0.2 "$PORT" "$T/pki2/other.test.pem" "$T/pki2/other.test.key"
out=$(echo user-pw | nssw "$P" --broker "https://other.test:$PORT" --ca "$CA" login "$SD_USER" 2>&1)
[ $? = 1 ] && grep -qF "portico: cannot reach the broker: https://other.test:$PORT: HTTP 503 (othername: the database is unavailable); https://other.test:$PORT (127.0.0.1): SSL: no alternative certificate subject name matches target host name 'other.test'" <<<"$out" ||
	fail "a pinned address with a certificate for another name: $out"
grep -q "^POST /api/v1/login$" "$T/othername.req" || fail "other.test's 503 address was not asked"
echo "ok: a host name with several addresses: past a dead one (libcurl) and past a 503 (pinned)"

# --- bad lists are refused where they are given ----------------------------------------------
long=$(printf 'https://b%.0s' $(seq 1 1300))
seventeen=$(for i in $(seq 1 17); do printf 'https://b%d:8443,' "$i"; done)
seventeen=${seventeen%,}
for case in "http://b1:8443|'http://b1:8443' is not https://" \
	"https://b1:8443, http://b2:8443|URL 2 of 2, 'http://b2:8443', is not https://" \
	"https://b1:8443,,https://b2:8443|URL 2 of 3 is empty" \
	"https://b1:8443 https://b2:8443|'https://b1:8443 https://b2:8443' has a blank inside" \
	"https://b1:8443/x?y|'https://b1:8443/x?y' has a query or a fragment" \
	"https://b1:8443/api, https://b1:8443/api|URL 2 of 2, 'https://b1:8443/api', is listed twice" \
	"https://[::1:8443|'https://[::1:8443' has an IPv6 address without its closing ']'" \
	"$seventeen|17 URLs: at most 16" \
	" , |URL 1 of 2 is empty"; do
	val=${case%%|*} want=${case#*|}
	out=$("$P" --broker "$val" list 2>&1)
	[ $? = 2 ] && grep -qF "portico: --broker: $want" <<<"$out" || fail "--broker '$val': $out"
done
out=$("$P" --broker "$long" list 2>&1)
[ $? = 2 ] && grep -q "portico: --broker is too long" <<<"$out" || fail "a 10 KB --broker: $out"
mkdir -p "$T/bad-home/.config/portico"
echo "broker = https://b1:8443, http://b2:8443" >"$T/bad-home/.config/portico/config"
out=$(HOME=$T/bad-home "$A" pool list 2>&1)
[ $? = 1 ] && grep -qF "bad broker in ~/.config/portico: URL 2 of 2, 'http://b2:8443', is not https://" <<<"$out" ||
	fail "a bad list in the config file: $out"
# The daemons: at start (-t), naming the file, line and URL.
cp "$T/portico.conf" "$T/bad.conf"
sed -i "s|^broker = $LIST\$|broker = $LIVE, https://127.0.0.1:$DEAD/api?x|" "$T/bad.conf"
for d in gateway sessiond; do
	out=$("$BUILD/bin/portico-$d" -c "$T/bad.conf" -t 2>&1)
	[ $? != 0 ] && grep -qF "bad value for 'broker': URL 2 of 2, 'https://127.0.0.1:$DEAD/api?x', has a query or a fragment" <<<"$out" ||
		fail "portico-$d -t on a bad list: $out"
done
echo "ok: bad lists are refused by the clients and the daemons, naming the URL"
echo "PASS"
