#!/bin/bash
# Multi-factor sign-in through PAM: pam_matrix checks the password and
# pam_oath (libpam-oath) a one-time code (HOTP from oathtool), both under
# pam_wrapper.  POST /login answers 401 "challenge" with PAM's question; the
# answer continues the same PAM conversation.  The right code gives a token;
# a wrong code fails after the same fixed delay as a wrong password; a code
# is good once; a challenge is good once, from its own address only, for
# 60 s; hostile bodies are refused and the broker keeps serving; challenges
# waiting from one address are capped; `portico login` and `portico-admin
# login` ask for the code, and so does the web portal in Chromium
# (tests/web/portal_mfa.mjs, through the gateway's HTTPS front); a gateway's
# VNC login (one password) is refused with a message that sends the user to
# the portal; hostile messages on the PAM socket (tests/tools/ipc-inject).
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh

PAM_OATH=/lib/x86_64-linux-gnu/security/pam_oath.so
[ -f "$PAM_OATH" ] && command -v oathtool >/dev/null ||
	{ echo "FAIL: libpam-oath and oathtool are needed (apt-get install libpam-oath oathtool)"; exit 1; }

be_setup
KEY=3132333435363738393031323334353637383930 # RFC 4226's test secret
printf 'HOTP alice - %s\nHOTP bob - %s\n' "$KEY" "$KEY" >"$T/users.oath"
chmod 600 "$T/users.oath"
cat >"$T/pam/portico" <<PAM
auth    required $PAM_MATRIX passdb=$T/passdb
auth    required $PAM_OATH usersfile=$T/users.oath window=5
account required $PAM_MATRIX passdb=$T/passdb
PAM
sed -i 's/^fail_delay = .*/fail_delay = 1s/' "$T/portico.conf"
# The default max_logins (broker_env.sh lowers it for pam_wrapper): the cap
# on one address's challenges below is a quarter of it.
sed -i 's/^max_logins = .*/max_logins = 64/' "$T/portico.conf"
be_start
code() { oathtool --hotp "$KEY" -c "$1"; }

# challenge USER PASSWORD [CURL ARGS...]: the first step; sets CH (the id)
# and checks the answer's form.
challenge() {
	local u=$1 p=$2
	shift 2
	STATUS=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/server.pem" "$@" \
		-H 'Content-Type: application/json' --data-binary "{\"username\":\"$u\",\"password\":\"$p\"}" "$B/login")
	expect 401 challenge
	CH=$(jq -r .challenge "$T/out")
	[ ${#CH} = 43 ] || fail "challenge id '$CH' is not 256 bits of base64url"
	[ "$(jq -r .echo "$T/out")" = false ] || fail "an OTP prompt must not echo: $(cat "$T/out")"
	jq -r .prompt "$T/out" | grep -q "One-time password (OATH) for \`$u'" ||
		fail "PAM's prompt is not passed on: $(cat "$T/out")"
}
# answer ID ANSWER [CURL ARGS...]: the second step; sets STATUS and ELAPSED (s)
answer() {
	local id=$1 a=$2
	shift 2
	local t0=$(date +%s.%N)
	STATUS=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/server.pem" "$@" \
		-H 'Content-Type: application/json' --data-binary "{\"challenge\":\"$id\",\"answer\":\"$a\"}" "$B/login")
	ELAPSED=$(echo "$(date +%s.%N) - $t0" | bc)
}

# --- an expired challenge: asked first, answered at the end (> 60 s) ------------------
challenge bob bob-pw
CH_OLD=$CH
T_OLD=$(date +%s)

# --- password, then the right code: a token --------------------------------------------
challenge alice alice-pw
answer "$CH" "$(code 0)"
expect 200
tok=$(jq -r .token "$T/out")
[ ${#tok} = 43 ] || fail "no token after the right code: $(cat "$T/out")"
api GET /sessions "" "$tok" >/dev/null
expect 200
grep -q "login user=alice rhost=127.0.0.1" "$T/broker.log" || fail "no login line"
echo "ok: password then the right one-time code gives a token"

# --- a challenge is single use ---------------------------------------------------------
answer "$CH" "$(code 1)"
expect 401 login_failed
echo "ok: a challenge answered once cannot be answered again"

# --- a replayed code fails -------------------------------------------------------------
challenge alice alice-pw
answer "$CH" "$(code 0)"
expect 401 login_failed
echo "ok: a replayed code is refused"

# --- a wrong code and a wrong password take the same fixed time ------------------------
challenge alice alice-pw
answer "$CH" 000000
expect 401 login_failed
t_code=$ELAPSED
challenge alice wrong-pw # the challenge comes all the same: no oracle
answer "$CH" "$(code 1)"
expect 401 login_failed
t_pw=$ELAPSED
echo "   wrong code: ${t_code}s, wrong password: ${t_pw}s (fail_delay 1s)"
for t in "$t_code" "$t_pw"; do
	[ "$(echo "$t >= 0.95 && $t < 1.6" | bc)" = 1 ] || fail "a failure took ${t}s, not fail_delay (1s) and its jitter"
done
[ "$(echo "d = $t_code - $t_pw; d < 0.25 && d > -0.25" | bc)" = 1 ] ||
	fail "a wrong code (${t_code}s) and a wrong password (${t_pw}s) can be told apart"
# pam_oath took code 1 beside the wrong password (a required stack runs
# on): the next good one is 2.
challenge alice alice-pw
answer "$CH" "$(code 2)"
expect 200
echo "ok: a wrong code fails after the fixed delay, as a wrong password does"

# --- bound to the address that got it --------------------------------------------------
challenge alice alice-pw
answer "$CH" "$(code 3)" --interface 127.0.0.2
expect 401 login_failed
answer "$CH" "$(code 3)"
expect 401 login_failed
grep -q "was answered from 127.0.0.2, not from 127.0.0.1: cancelled" "$T/broker.log" ||
	fail "no log line for a challenge answered from elsewhere"
echo "ok: a challenge answered from another address is refused and spent"

# --- hostile bodies --------------------------------------------------------------------
challenge alice alice-pw
LIVE=$CH
for body in '{"challenge":"'"$LIVE"'"}' '{"challenge":42,"answer":"1"}' \
	'{"challenge":"'"$LIVE"'","answer":123456}' '{"challenge":null,"answer":"x"}'; do
	api POST /login "$body" >/dev/null
	expect 400 bad_request
done
for id in "" x "$(printf 'A%.0s' $(seq 1 43))" "$(printf 'A%.0s' $(seq 1 5000))" "${LIVE}x"; do
	answer "$id" 123456
	expect 401 login_failed
done
# Those did not spend the live one (missing or malformed answers).
answer "$LIVE" "$(code 3)"
expect 200
challenge alice alice-pw
answer "$CH" "$(head -c 3000 /dev/zero | tr '\0' 9)"
expect 401 login_failed
answer "$CH" "$(code 4)"
expect 401 login_failed
tok=$(login dave dave-pw)
[ -z "$tok" ] && [ "$STATUS" = 401 ] ||
	fail "the broker stopped serving after hostile bodies: $STATUS $(cat "$T/out")"
echo "ok: malformed and hostile challenge bodies get 400 or 401, the broker keeps serving"

# --- challenges waiting from one address are capped ----------------------------------
# Each holds a root PAM process for up to a minute: one address gets a
# quarter of max_logins (16 of 64), then 503; other addresses go on.
for i in $(seq 1 16); do
	challenge alice alice-pw --interface 127.0.0.3
done
api_from3() {
	STATUS=$(curl -s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/server.pem" --interface 127.0.0.3 \
		--data-binary '{"username":"alice","password":"alice-pw"}' "$B/login")
}
api_from3
expect 503 busy
challenge alice alice-pw
echo "ok: at most 16 challenges wait from one address; others still get theirs"

# --- portico login asks for the code --------------------------------------------------
export HOME=$T/client-home XDG_CONFIG_HOME=
mkdir -p "$HOME" "$T/admin-home"
P="$BUILD/bin/portico --broker https://127.0.0.1:$PORT --ca $T/tls/server.pem"
out=$(printf 'alice-pw\n%s\n' "$(code 4)" | $P login alice 2>&1) || fail "portico login with a code: $out"
grep -q "logged in to .* as alice" <<<"$out" || fail "portico login: $out"
$P list >/dev/null 2>&1 || fail "the token portico kept does not work"
out=$(printf 'alice-pw\n000000\n' | $P login alice 2>&1)
[ $? = 1 ] && grep -q "login failed" <<<"$out" || fail "portico login with a wrong code: $out"
out=$(printf 'alice-pw\n' | $P login alice 2>&1)
[ $? = 1 ] && grep -q "no answer" <<<"$out" || fail "portico login without a code: $out"
A="$BUILD/bin/portico-admin --broker https://127.0.0.1:$PORT --ca $T/tls/server.pem"
out=$(printf 'bob-pw\n%s\n' "$(code 0)" | HOME=$T/admin-home $A login bob 2>&1) ||
	fail "portico-admin login with a code: $out"
grep -q "logged in to .* as bob" <<<"$out" || fail "portico-admin login: $out"
echo "ok: portico login and portico-admin login ask for the code"

# --- the gateway's one-password login is refused with a way out -----------------------
api POST /gateway/authorize '{"username":"alice","password":"alice-pw","client_addr":"192.0.2.9"}' "$GW_SECRET" >/dev/null
expect 403 mfa_required
jq -r .message "$T/out" | grep -q "portico connect" || fail "mfa_required without a way out: $(cat "$T/out")"
echo "ok: the gateway's login step refuses a user whose PAM asks more (403 mfa_required)"

# ... and a VNC viewer at the gateway reads why in the RFB SecurityResult.
GW_PORT=$(free_port)
HP=$(free_port)
RDP_PORT=$(free_port)
be_gateway_conf "$GW_PORT" "$RDP_PORT" user=nobody https_listen=127.0.0.1:$HP
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
Xvfb -displayfd 1 -screen 0 800x600x24 -nolisten tcp >"$T/xvfb.display" 2>/dev/null &
XVFB=$!
trap 'kill $GW_PID $XVFB 2>/dev/null; wait $GW_PID 2>/dev/null; be_cleanup' EXIT
for _ in $(seq 1 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null && break
	sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null || fail "the gateway does not listen: $(cat "$T/gateway.log")"
"$BUILD/tests/tools/vnc-probe" -u alice -C "$T/pki/ca.pem" "127.0.0.1:$GW_PORT" alice-pw 2>"$T/probe.err" &&
	fail "a VNC login got in without the second factor"
grep -q "second factor: sign in on the web portal .*portico connect" "$T/probe.err" ||
	fail "the VNC viewer was not told why: $(cat "$T/probe.err")"
grep -q "user alice: refused: login needs a second factor" "$T/gateway.log" ||
	fail "no gateway log line for the refusal: $(tail -3 "$T/gateway.log")"
echo "ok: the gateway's VNC login tells the viewer to sign in at the portal or with portico connect"
# RDP's login step has no text to show, only an ErrorInfo code: the
# client's "access denied", and the broker's words in the gateway's log.
for _ in $(seq 1 50); do [ -s "$T/xvfb.display" ] && break; sleep 0.1; done
DISPLAY=:$(cat "$T/xvfb.display") timeout 20 xfreerdp /v:127.0.0.1:$RDP_PORT /cert:ignore /u:alice /p:alice-pw \
	>"$T/rdp.log" 2>&1 </dev/null
grep -q "insufficient access privileges" "$T/rdp.log" || fail "xfreerdp was not refused: $(tail -3 "$T/rdp.log")"
grep -q "rdp 127.0.0.1 user alice: refused: this account signs in with a second factor" "$T/gateway.log" ||
	fail "no gateway log line with the reason: $(grep rdp "$T/gateway.log" | tail -3)"
echo "ok: the gateway's RDP login refuses it too (access denied; the reason in the gateway's log)"

# --- the web portal asks for the code (Chromium, through the gateway's HTTPS front) ----
command -v node >/dev/null && [ -x /usr/bin/chromium ] && [ -d tests/web/node_modules/playwright-core ] ||
	fail "node, /usr/bin/chromium and playwright-core (make deps) are needed for the portal's part"
PT_URL=https://127.0.0.1:$HP PT_USER=alice PT_PASSWORD=alice-pw PT_CODE=$(code 5) \
	PT_PROMPT="One-time password (OATH) for \`alice'" timeout 120 node tests/web/portal_mfa.mjs >"$T/portal.out" 2>&1
rc=$?
sed 's/^/   /' "$T/portal.out"
[ $rc = 0 ] || fail "the portal's sign-in with a code (gateway log: $(tail -3 "$T/gateway.log"))"
echo "ok: the web portal signs in with a password and a code"

# --- the challenge asked first has expired by now -------------------------------------
left=$((T_OLD + 62 - $(date +%s)))
[ "$left" -gt 0 ] && sleep "$left"
answer "$CH_OLD" "$(code 1)"
expect 401 login_failed
grep -q "auth failure user=bob (challenge not answered" "$T/broker.log" ||
	fail "an expired challenge did not end its PAM conversation"
echo "ok: a challenge expires after 60 s and its PAM conversation ends"

# --- hostile IPC from a compromised network side --------------------------------------
# Stray answers and cancels (a request that ended crosses them) are
# ignored; a malformed answer, or a message only the PAM process sends,
# ends both processes.
[ "$(id -u)" = 0 ] || fail "the hostile-IPC part needs root (pidfd_getfd into the broker)"
net_side() { pgrep -P "$BE_PID" -u 64990; }
for kind in answer-stray cancel-stray; do
	"$BUILD/tests/tools/ipc-inject" "$(net_side)" "$kind" || fail "ipc-inject $kind"
done
challenge alice alice-pw
answer "$CH" "$(code 6)"
expect 200
echo "ok: stray answers and cancels on the PAM socket are ignored"
for kind in answer-short answer-unterminated chal; do
	[ -n "${BE_PID:-}" ] || be_start
	net=$(net_side)
	[ -n "$net" ] || fail "no network side under $BE_PID"
	n0=$(wc -l <"$T/broker.log")
	"$BUILD/tests/tools/ipc-inject" "$net" "$kind" || fail "ipc-inject $kind"
	for _ in $(seq 1 50); do kill -0 "$BE_PID" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$BE_PID" 2>/dev/null && fail "the broker survived a '$kind' message"
	wait "$BE_PID"
	rc=$?
	BE_PID=
	[ "$rc" != 0 ] || fail "the broker exited 0 after a '$kind' message"
	kill -0 "$net" 2>/dev/null && fail "the network side outlived its PAM process"
	tail -n +"$((n0 + 1))" "$T/broker.log" | grep -q 'authd: malformed message from the net side' ||
		fail "no log line for a '$kind' message: $(tail -n +"$((n0 + 1))" "$T/broker.log")"
done
echo "ok: a malformed answer, or a challenge sent to the PAM process, ends the pair"
