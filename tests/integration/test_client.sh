#!/bin/bash
# portico, the thin client, against a real broker, session host and
# gateway: log in, list, connect (--print), the printed ticket opens the
# session at the gateway with a real VNC client, sessions, end; bad
# arguments and a broker that is down.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

be_setup
sd_setup
GW_PORT=$(free_port)
be_gateway_conf "$GW_PORT" "$(free_port)" user="$SD_SVC"
be_conf_append "
[pool xterm]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host1
users = $SD_USER

[pool rclock]
kind = app
protocol = rdp
driver = static
command = /usr/bin/xclock -title it's
hosts = 127.0.0.1:3389
users = $SD_USER

[pool notepad]
kind = app
protocol = rdp
driver = static
command = ||notepad
hosts = 127.0.0.1:3389
users = $SD_USER"
be_start
ADMIN=$(login carol carol-pw)
sd_start
"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
GW_PID=$!
trap 'kill $GW_PID 2>/dev/null; wait $GW_PID 2>/dev/null; sd_cleanup' EXIT
wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$GW_PORT) 2>/dev/null" || fail "the gateway does not listen"
export HOME=$T/client-home XDG_CONFIG_HOME=
mkdir -p "$HOME"
P="$BUILD/bin/portico"
CA=$T/pki/ca.pem

# --- login -------------------------------------------------------------------------
out=$(echo wrong | "$P" --broker "https://127.0.0.1:$PORT" --ca "$CA" login "$SD_USER" 2>&1)
[ $? = 1 ] && grep -q "portico: login failed" <<<"$out" || fail "bad password: $out"
out=$(echo user-pw | "$P" --broker "https://127.0.0.1:$PORT" --ca "$CA" login "$SD_USER" 2>&1) ||
	fail "login: $out"
grep -q "logged in to https://127.0.0.1:$PORT as $SD_USER" <<<"$out" || fail "login said: $out"
[ "$(stat -c %a "$HOME/.config/portico/token")" = 600 ] || fail "the token file is not 0600"
grep -q "user-pw" "$HOME/.config/portico/token" && fail "the password was kept"
echo "ok: login"

# An application over RDP: the program goes to xfreerdp as its alternate
# shell, quoted for the shell when printed.
out=$("$P" connect rclock --print --viewer echo 2>/dev/null) || fail "connect rclock: $out"
line=$(head -1 <<<"$out")
[ "$(eval "$line" | sed 's/.*cert:tofu //')" = "/shell:/usr/bin/xclock -title it's" ] || fail "the printed command: $line"
grep -q "^alternate shell:s:/usr/bin/xclock -title it's$" <<<"$out" || fail "the .rdp file: $out"
"$P" end rclock >/dev/null || fail "end rclock"
out=$("$P" connect notepad --print --viewer echo 2>/dev/null) || fail "connect notepad: $out"
[ "$(eval "$(head -1 <<<"$out")" | sed 's/.*cert:tofu //')" = "/app:||notepad" ] || fail "a RemoteApp's command: $out"
grep -q "^remoteapplicationprogram:s:||notepad$" <<<"$out" || fail "the RemoteApp .rdp file: $out"
"$P" end notepad >/dev/null || fail "end notepad"
echo "ok: an RDP application's command"

# --- list, connect --print, the ticket works at the gateway ---------------------------
out=$("$P" list) || fail "list: $out"
grep -qE "^xterm +app +vnc +-$" <<<"$out" || fail "list: $out"
out=$("$P" connect xterm --print 2>"$T/progress") || fail "connect: $out $(cat "$T/progress")"
grep -qE "^starting xterm… ready in [0-9.]+ s$" "$T/progress" || fail "progress: $(cat "$T/progress")"
grep -q "xtigervncviewer -SecurityTypes X509Plain -X509CA $CA 127.0.0.1::$GW_PORT" <<<"$out" ||
	fail "printed command: $out"
ticket=$(sed -n 's/.*VNC_PASSWORD=\([^ ]*\) .*/\1/p' <<<"$out")
[ ${#ticket} = 43 ] || fail "no ticket in: $out"
probe=$("$PROBE" -u ticket -C "$CA" "127.0.0.1:$GW_PORT" "$ticket" 2>&1) || fail "the printed ticket: $probe"
grep -q "name=xterm ($SD_USER)" <<<"$probe" || fail "the ticket led to $probe"
out=$("$P" list) && grep -qE "^xterm +app +vnc +(ready|active|disconnected)$" <<<"$out" || fail "list after connect: $out"
"$P" connect xterm --print 2>"$T/progress" >/dev/null || fail "reconnect"
grep -q "your running session" "$T/progress" || fail "reconnect progress: $(cat "$T/progress")"
# --viewer: the named program is run (here one that records its arguments).
printf '#!/bin/sh\necho "$VNC_USERNAME $*" > %s/viewer.args\n' "$T" >"$T/fake-viewer"
chmod 755 "$T/fake-viewer"
"$P" connect xterm --viewer "$T/fake-viewer" 2>/dev/null || fail "connect --viewer"
grep -q "^ticket -SecurityTypes X509Plain -X509CA $CA 127.0.0.1::$GW_PORT$" "$T/viewer.args" ||
	fail "the viewer got: $(cat "$T/viewer.args")"
out=$("$P" connect nosuch 2>&1)
[ $? = 1 ] && grep -q "there is no desktop or application 'nosuch'" <<<"$out" || fail "unknown: $out"
out=$("$P" connect xterm --viewer /nonexistent/viewer 2>&1)
[ $? = 1 ] && grep -q "cannot run /nonexistent/viewer" <<<"$out" || fail "missing viewer: $out"
echo "ok: list and connect"

# --- sessions, end ---------------------------------------------------------------------
out=$("$P" sessions) || fail "sessions: $out"
grep -qE "^[0-9]+ +xterm +host1 +[a-z]+ +[0-9]+ s$" <<<"$out" || fail "sessions: $out"
out=$("$P" end xterm) && [ "$out" = "ended your session in xterm" ] || fail "end: $out"
out=$("$P" end xterm 2>&1)
[ $? = 1 ] && grep -q "you have no session in xterm" <<<"$out" || fail "end again: $out"
echo "ok: sessions and end"

# --- bad arguments: usage and 2 ---------------------------------------------------------
for args in "" "frobnicate" "list extra" "connect" "connect a b" "connect x --bogus" \
	"end" "end a b" "login a b" "--broker" "--ca" "sessions x"; do
	out=$("$P" $args 2>&1)
	[ $? = 2 ] && grep -q "usage: portico" <<<"$out" || fail "'portico $args' gave: $out"
done
echo "ok: usage"

# --- portico-admin ------------------------------------------------------------------------
A="$BUILD/bin/portico-admin"
adm() { HOME=$T/admin-home "$A" "$@"; }
mkdir -p "$T/admin-home"
out=$(echo carol-pw | adm --broker "https://127.0.0.1:$PORT" --ca "$CA" login carol 2>&1) || fail "admin login: $out"
grep -q "as carol (an administrator), for " <<<"$out" || fail "admin login said: $out"
out=$(adm app publish clock --command "/usr/bin/xclock -digital" --users "$SD_USER" --hosts host1) ||
	fail "app publish: $out"
grep -qE "^command +/usr/bin/xclock -digital$" <<<"$out" || fail "published: $out"
out=$("$P" list) && grep -qE "^clock +app +vnc +-$" <<<"$out" || fail "the user does not see clock: $out"
out=$(adm pool list) && grep -qE "^clock +app +vnc +xvnc +host1 +$SD_USER +- +least-loaded +no$" <<<"$out" || fail "pool list: $out"
# An RDP application goes on existing RDP hosts: a static pool.
out=$(adm app publish gimp --protocol rdp --command /usr/bin/gimp --hosts 127.0.0.1:3389 --users "$SD_USER") ||
	fail "app publish over RDP: $out"
grep -qE "^driver +static$" <<<"$out" && grep -qE "^protocol +rdp$" <<<"$out" || fail "an RDP application: $out"
adm pool delete gimp >/dev/null || fail "pool delete gimp"
out=$(adm pool set clock idle_timeout=30m max_sessions_per_host=3) || fail "pool set: $out"
grep -qE "^idle_timeout +30m$" <<<"$out" && grep -qE "^max_sessions_per_host +3$" <<<"$out" || fail "set: $out"
out=$(adm --json pool show clock) && [ "$(jq -r .idle_timeout <<<"$out")" = 30m ] || fail "--json show: $out"
out=$(adm pool set clock kind=bogus 2>&1)
[ $? = 1 ] && grep -q "kind" <<<"$out" || fail "a bad value: $out"
[ "$(adm pool drain clock)" = "drained: takes reconnects, no new sessions" ] || fail "drain"
out=$("$P" connect clock --print 2>&1)
[ $? = 1 ] && grep -q "no session available in pool clock" <<<"$out" || fail "a drained pool: $out"
adm pool undrain clock >/dev/null || fail "undrain"
"$P" connect clock --print >/dev/null 2>&1 || fail "connect after undrain"
out=$(adm host list) && grep -qE "^host1 +sessiond +https://127.0.0.1:$SD_PORT +1 +no " <<<"$out" || fail "host list: $out"
out=$(adm session list --pool clock) || fail "session list: $out"
SID=$(awk 'NR == 2 { print $1 }' <<<"$out")
grep -qE "^$SID +clock +$SD_USER +host1 +ready " <<<"$out" || fail "session list: $out"
[ "$(adm session disconnect "$SID")" = disconnected ] || fail "disconnect"
[ "$(adm --json session list --state disconnected | jq -r '.sessions[0].id')" = "$SID" ] || fail "not disconnected"
[ "$(adm session logoff "$SID")" = "logged off" ] || fail "logoff"
out=$(adm session list --pool clock --state all)
grep -qE "^$SID +clock .* ended +.* logoff by admin$" <<<"$out" || fail "after logoff: $out"
out=$(adm status) || fail "status: $out"
grep -qE "^clock +xvnc +0 +3 +no$" <<<"$out" && grep -q "^sessions: starting 0 ready 0 active 0 disconnected 0$" <<<"$out" ||
	fail "status: $out"
# A user is not an administrator.
out=$("$A" pool list 2>&1)
[ $? = 1 ] && grep -q "this needs an administrator" <<<"$out" || fail "non-admin: $out"
for args in "" "frobnicate" "pool" "pool show" "pool frob x" "pool create x novalue" "pool show ../../x" \
	"app" "app publish x" "app publish x --users a" "host" "host drain" "host list x" \
	"session" "session logoff" "session logoff abc" "session list --pool" "session list --bogus x" \
	"status now" "login a b" "logout now"; do
	out=$(adm $args 2>&1)
	[ $? = 2 ] && grep -q "usage: portico-admin" <<<"$out" || fail "'portico-admin $args' gave: $out"
done
adm pool delete clock >/dev/null || fail "delete"
out=$(adm pool show clock 2>&1)
[ $? = 1 ] && grep -q "clock" <<<"$out" || fail "deleted pool: $out"
echo "ok: portico-admin"

# --- logout; a broker that is down -----------------------------------------------------------
"$P" logout >/dev/null || fail "logout"
out=$("$P" list 2>&1)
[ $? = 1 ] && grep -q "not logged in" <<<"$out" || fail "after logout: $out"
out=$(echo user-pw | "$P" --broker "https://127.0.0.1:1" --ca "$CA" login "$SD_USER" 2>&1)
[ $? = 1 ] && grep -q "cannot reach the broker" <<<"$out" || fail "broker down: $out"
out=$(HOME=$T/empty "$P" list 2>&1)
[ $? = 1 ] && grep -q "which broker" <<<"$out" || fail "no broker known: $out"
# A usage error is said before any question of broker or login.
for args in "pool frob x" "session logoff abc" "app publish x" "status now" "host drain"; do
	out=$(HOME=$T/empty "$A" $args 2>&1)
	[ $? = 2 ] && grep -q "usage: portico-admin" <<<"$out" ||
		fail "'portico-admin $args' with no login gave: $out"
done
out=$(HOME=$T/empty "$A" pool list 2>&1)
[ $? = 1 ] && grep -q "which broker" <<<"$out" || fail "portico-admin with no broker known: $out"
echo "ok: portico client"
