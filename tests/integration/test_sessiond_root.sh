#!/bin/bash
# portico-sessiond's root side trusts nothing (issue 12): what a network
# side in an attacker's hands could ask, through the API with the broker's
# credential and straight down the root side's socket (ipc-inject, as that
# network side itself would), is refused with a clear reason and leaves
# nothing: no directory made, no process started, nothing chowned.  A
# system account named in [sessiond] allow_users may have a session; a
# VM's QEMU runs with vm_user's groups, not root's.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/broker_env.sh
. tests/integration/sessiond_env.sh

INJECT=$BUILD/tests/tools/ipc-inject
be_setup
sd_setup
tag=$$
SYS=ptq$tag   # a system account (uid below UID_MIN)
KIOSK=ptk$tag # a system account that allow_users names
XGROUP=ptx$tag
ESCAPE=/tmp/x-$tag # where ../../../../tmp/x-$tag leads from STATE_DIR/vms
root_cleanup() {
	sd_cleanup
	for u in $SYS $KIOSK; do pkill -KILL -u "$u" 2>/dev/null; done
	for _ in $(seq 1 50); do
		pgrep -u "$SYS,$KIOSK" >/dev/null 2>&1 || break
		sleep 0.1
	done
	for u in $SYS $KIOSK; do userdel "$u" >/dev/null 2>&1; done
	groupdel "$XGROUP" >/dev/null 2>&1
	rm -rf "$ESCAPE"
}
trap root_cleanup EXIT
useradd -r -M -s /bin/sh "$SYS" || fail "useradd"
useradd -r -M -s /bin/sh "$KIOSK" || fail "useradd"
groupadd "$XGROUP" || fail "groupadd"
usermod -aG "$XGROUP" "$SD_SVC" || fail "usermod" # vm_user gets a group of its own
[ "$(id -u "$SYS")" -lt "$(awk '$1 == "UID_MIN" { print $2 }' /etc/login.defs)" ] || fail "useradd -r made uid $(id -u "$SYS")"
[ ! -e "$ESCAPE" ] || fail "$ESCAPE exists before the test"

# Images: one below image_dir, one outside it, a link from inside to it.
mkdir -p "$T/images" "$T/outside" "$T/bin" "$T/odir" "$T/victim"
qemu-img create -q -f qcow2 "$T/images/blank.qcow2" 16M || fail "qemu-img"
cp "$T/images/blank.qcow2" "$T/outside/out.qcow2"
chmod 644 "$T/images/blank.qcow2" "$T/outside/out.qcow2"
ln -s ../outside/out.qcow2 "$T/images/link.qcow2"
# Programs: writable by others, not root's, in a directory others may write.
cp /bin/sleep "$T/bin/open"
chmod 777 "$T/bin/open"
cp /bin/sleep "$T/bin/theirs"
chown "$SD_USER2" "$T/bin/theirs"
chmod 755 "$T/bin/theirs"
cp /bin/sleep "$T/odir/prog"
chmod 755 "$T/odir/prog"
chmod 777 "$T/odir"
mkdir -p "$T/gdir"
cp /bin/sleep "$T/gdir/prog"
chmod 755 "$T/gdir/prog"
chmod 775 "$T/gdir"
be_conf_append "image_dir = $T/images
allow_users = $KIOSK
vm_user = $SD_SVC
vm_accel = tcg
vm_memory = 128

[pool kiosk]
kind = app
driver = xvnc
command = /usr/bin/xterm
hosts = host1
users = $KIOSK

[pool args]
kind = app
driver = xvnc
command = /usr/bin/xterm -j -j -title kiosk
hosts = host1
users = $SD_USER2

[pool vmg]
kind = desktop
driver = qemu
image = $T/images/blank.qcow2
hosts = host1
users = $SD_USER"
be_user "$KIOSK" kiosk-pw 5005
be_start
ADMIN=$(login carol carol-pw)
sd_start
NET=$(pgrep -P "$SD_PID" -x portico-session) || fail "no network side"

# start_api ID USER POOL KIND DRIVER [COMMAND] [IMAGE]: POST /sessions
start_api() {
	local body
	body=$(jq -nc --argjson id "$1" --arg user "$2" --arg pool "$3" --arg kind "$4" \
		--arg driver "$5" --arg command "${6:-}" --arg image "${7:-}" \
		'{id: $id, user: $user, pool: ({name: $pool, kind: $kind, driver: $driver}
		  + (if $command != "" then {command: $command} else {} end)
		  + (if $image != "" then {image: $image} else {} end))}')
	sd_api POST /sessions "$body" >/dev/null
}
# refused_api MESSAGE: 422 start_failed, and the message says MESSAGE
refused_api() {
	expect 422 start_failed
	jq -r .message "$T/out" | grep -qF -- "$1" || fail "expected '$1': $(cat "$T/out")"
}
# refused_ipc ID MESSAGE: the root side answered FAILED with MESSAGE
refused_ipc() {
	local line
	for _ in $(seq 1 50); do
		line=$(grep -F "session $1 of " "$T/sessiond.log" | grep -F "did not start" | grep -F -- "$2") && break
		sleep 0.1
	done
	[ -n "$line" ] || fail "request $1 down the socket: no refusal '$2': $(grep -F "session $1 " "$T/sessiond.log")"
	grep -F "session $1 of " "$T/sessiond.log" | grep -F " refused: " | grep -qF -- "$2" ||
		fail "the root side did not log its refusal of $1"
}
inject() { "$INJECT" "$NET" sess "$@" || fail "ipc-inject $*"; }
# nothing_left WHAT: no session directory, state, VM directory, monitor or
# process of the users involved; nothing outside STATE_DIR made or chowned.
nothing_left() {
	[ -z "$(ls -A "$T/run/sessions" 2>/dev/null)" ] || fail "$1: left $(ls "$T/run/sessions")"
	[ -z "$(ls -A "$T/run/state" 2>/dev/null)" ] || fail "$1: left state $(ls "$T/run/state")"
	[ -z "$(ls -A "$T/state/vms" 2>/dev/null)" ] || fail "$1: left $(ls "$T/state/vms")"
	[ ! -e "$ESCAPE" ] || fail "$1: made $ESCAPE ($(stat -c %U "$ESCAPE"))"
	[ "$(stat -c %U:%G "$T/victim")" = root:root ] || fail "$1: $T/victim is now $(stat -c %U:%G "$T/victim")"
	! pgrep -P "$SD_PID" -x pt-session >/dev/null || fail "$1: a session monitor runs"
	! pgrep -u "$SD_USER,$SD_USER2,$SYS" >/dev/null || fail "$1: processes $(pgrep -l -u "$SD_USER,$SD_USER2,$SYS")"
	! pgrep -u "$SD_SVC" -f qemu >/dev/null || fail "$1: QEMU runs"
}

# --- pools named with ../ (driver qemu: the VM directory would be made
# there and handed to vm_user) -------------------------------------------------------------
POOLMSG="is not valid: 1 to 64 letters"
start_api 101 "$SD_USER" "../../../../tmp/x-$tag" desktop qemu "" "$T/images/blank.qcow2"
refused_api "pool name \"../../../../tmp/x-$tag\" $POOLMSG"
start_api 102 "$SD_USER" "../../victim" desktop qemu "" "$T/images/blank.qcow2"
refused_api "$POOLMSG"
inject id=103 user="$SD_USER" pool=../../victim driver=qemu image="$T/images/blank.qcow2"
refused_ipc 103 "$POOLMSG"
inject id=104 user="$SD_USER" pool="../../../../tmp/x-$tag" driver=qemu image="$T/images/blank.qcow2"
refused_ipc 104 "$POOLMSG"
inject op=spare id=1125899906842700 pool=../../victim driver=qemu image="$T/images/blank.qcow2"
refused_ipc 1125899906842700 "$POOLMSG"
nothing_left "a pool named with ../"
echo "ok: pool names with ../"

# --- a VM's guest keys and a password: only what a network side of ours sends -----------
inject id=105 user="$SD_USER" pool=vmr driver=qemu protocol=rdp guest_port=0 boot_timeout=60000 image="$T/images/blank.qcow2"
refused_ipc 105 "guest port (1 to 65535) or boot timeout (10 s to 1 h) is out of range"
inject id=106 user="$SD_USER" pool=vmr driver=qemu protocol=rdp guest_port=3389 boot_timeout=7200000 image="$T/images/blank.qcow2"
refused_ipc 106 "is out of range"
inject id=107 user="$SD_USER" pool=vmr driver=qemu protocol=7 image="$T/images/blank.qcow2"
refused_ipc 107 "pool protocol 7 is unknown"
# The API: a password is for a VM's guest only, and bounded.
sd_api POST /sessions "{\"id\":108,\"user\":\"$SD_USER\",\"password\":\"pw\",\"pool\":{\"name\":\"desk\",\"kind\":\"desktop\",\"driver\":\"xvnc\"}}" >/dev/null
expect 400 bad_request
grep -q "is for a VM's guest only" "$T/out" || fail "password refusal: $(cat "$T/out")"
sd_api POST /sessions "{\"id\":109,\"user\":\"$SD_USER\",\"password\":\"$(head -c 600 /dev/zero | tr '\0' x)\",\"pool\":{\"name\":\"vmr\",\"kind\":\"desktop\",\"driver\":\"qemu\",\"image\":\"$T/images/blank.qcow2\",\"protocol\":\"rdp\"}}" >/dev/null
expect 400 bad_request
sd_api POST /sessions "{\"id\":110,\"user\":\"$SD_USER\",\"pool\":{\"name\":\"vmr\",\"kind\":\"desktop\",\"driver\":\"qemu\",\"image\":\"$T/images/blank.qcow2\",\"protocol\":\"spice\"}}" >/dev/null
expect 400 bad_request
sd_api POST /sessions "{\"id\":111,\"user\":\"$SD_USER\",\"pool\":{\"name\":\"vmr\",\"kind\":\"desktop\",\"driver\":\"qemu\",\"image\":\"$T/images/blank.qcow2\",\"protocol\":\"rdp\",\"boot_timeout\":\"2s\"}}" >/dev/null
expect 400 bad_request
grep -q "pw" "$T/sessiond.log" && grep -q '"password"' "$T/sessiond.log" && fail "a password in the log"
nothing_left "a VM's bad guest keys"
echo "ok: a VM's guest keys and passwords checked on both sides"

# --- root, a system account, a newline in a user name --------------------------------
start_api 111 root desk desktop xvnc
refused_api "sessions never run as root"
inject id=112 user=root pool=desk
refused_ipc 112 "sessions never run as root"
start_api 121 "$SYS" desk desktop xvnc
refused_api "user $SYS is a system account (uid $(id -u "$SYS"), below UID_MIN"
inject id=122 user="$SYS" pool=desk kind=app command=/usr/bin/xterm
refused_ipc 122 "user $SYS is a system account"
# Above UID_MAX: nobody (65534), which many daemons share.
getent passwd nobody >/dev/null || fail "no user nobody on this machine"
start_api 123 nobody desk desktop xvnc
refused_api "user nobody is a system account (uid 65534, above UID_MAX"
inject id=124 user=nobody pool=desk
refused_ipc 124 "user nobody is a system account"
# The network side refuses a control character itself; the root side
# again (a state file's "user" line would become two: "uid 0").
start_api 131 "ghost
uid 0" desk desktop qemu "" "$T/images/blank.qcow2"
expect 400 bad_request
inject id=132 user="ghost
uid 0" pool=desk driver=qemu image="$T/images/blank.qcow2"
refused_ipc 132 'user name "ghost?uid 0" is not safe'
inject id=133 user="$SD_USER
" pool=desk
refused_ipc 133 "is not safe"
inject id=134 user="../$SD_USER" pool=desk driver=qemu persistent=1 image="$T/images/blank.qcow2"
refused_ipc 134 "is not safe"
inject id=135 user="$SD_USER" pool=desk kind=7
refused_ipc 135 "pool kind 7 is unknown"
inject id=136 user="$SD_USER" pool=desk driver=9
refused_ipc 136 "pool driver 9 is unknown"
nothing_left "a bad user"
echo "ok: root, system accounts, unsafe names"

# --- images: outside image_dir, a link inside it to one outside --------------------------
start_api 141 "$SD_USER" vm desktop qemu "" "$T/outside/out.qcow2"
refused_api "image $T/outside/out.qcow2 is not below [sessiond] image_dir $T/images"
inject id=142 user="$SD_USER" pool=vm driver=qemu image="$T/outside/out.qcow2"
refused_ipc 142 "is not below [sessiond] image_dir"
inject id=143 user="$SD_USER" pool=vm driver=qemu image="$T/images/../outside/out.qcow2"
refused_ipc 143 "is not below [sessiond] image_dir"
start_api 151 "$SD_USER" vm desktop qemu "" "$T/images/link.qcow2"
refused_api "image $T/images/link.qcow2 cannot be read: symbolic links below [sessiond] image_dir are not followed"
inject id=152 user="$SD_USER" pool=vm driver=qemu image="$T/images/link.qcow2"
refused_ipc 152 "symbolic links below [sessiond] image_dir are not followed"
nothing_left "a bad image"
echo "ok: images only from below image_dir, no links"

# --- application commands ------------------------------------------------------------------
start_api 161 "$SD_USER2" app app xvnc "$T/bin/open 100"
refused_api "$T/bin/open: writable by group or others (mode 0777)"
inject id=162 user="$SD_USER2" pool=app kind=app command="$T/bin/open 100"
refused_ipc 162 "$T/bin/open: writable by group or others"
start_api 171 "$SD_USER2" app app xvnc "$T/bin/theirs 100"
refused_api "$T/bin/theirs: not owned by root (uid $(id -u "$SD_USER2") owns it)"
inject id=172 user="$SD_USER2" pool=app kind=app command="$T/bin/theirs 100"
refused_ipc 172 "$T/bin/theirs: not owned by root"
start_api 181 "$SD_USER2" app app xvnc "$T/odir/prog 100"
refused_api "$T/odir/prog: directory $T/odir is writable by others"
start_api 182 "$SD_USER2" app app xvnc "$T/gdir/prog 100"
refused_api "$T/gdir/prog: directory $T/gdir is writable by its group"
start_api 191 "$SD_USER2" app app xvnc "sleep 100"
refused_api "sleep: the pool's program must be named by an absolute path"
start_api 192 "$SD_USER2" app app xvnc "/nonexistent/program --flag"
refused_api "/nonexistent/program: no such program"
nothing_left "a bad command"
echo "ok: application commands"

# --- application arguments (the program is a good one; its words are not) --------------
# A control character the network side lets through (C1, U+0085 NEL);
# C0 ones it refuses itself, the root side again.
start_api 193 "$SD_USER2" app app xvnc "/usr/bin/xterm -title "$'\xc2\x85'"x"
refused_api "the pool's command holds a control character (byte 22)"
sd_api POST /sessions "{\"id\":194,\"user\":\"$SD_USER2\",\"pool\":{\"name\":\"app\",\"kind\":\"app\",\"driver\":\"xvnc\",\"command\":\"/usr/bin/xterm -e\\nsh\"}}" >/dev/null
expect 400 bad_request
inject id=195 user="$SD_USER2" pool=app kind=app command="/usr/bin/xterm -e
sh"
refused_ipc 195 "the pool's command or image holds a control character"
inject id=196 user="$SD_USER2" pool=app kind=app command="/usr/bin/xterm -title "$'\x1b]2;x\x07'
refused_ipc 196 "holds a control character"
# A NUL: JSON's \u0000 is refused by the network side; bytes hidden after
# the field's NUL by the root side.
sd_api POST /sessions "{\"id\":197,\"user\":\"$SD_USER2\",\"pool\":{\"name\":\"app\",\"kind\":\"app\",\"driver\":\"xvnc\",\"command\":\"/usr/bin/xterm\\u0000-e sh\"}}" >/dev/null
expect 400 bad_json
inject id=198 user="$SD_USER2" pool=app kind=app command=/usr/bin/xterm hidden="-e sh"
refused_ipc 198 "the pool's command holds a NUL byte (byte 14)"
# Not UTF-8 (only straight down the socket: JSON text is UTF-8).
inject id=199 user="$SD_USER2" pool=app kind=app command="/usr/bin/xterm -title "$'\xff\xfe'
refused_ipc 199 "the pool's command is not valid UTF-8 (byte 22)"
inject id=200 user="$SD_USER2" pool=app kind=app command="/usr/bin/xterm -title "$'\xc0\xaf'
refused_ipc 200 "is not valid UTF-8"
# Too many words (refused, never cut), a word too long.
many="/usr/bin/xterm$(printf ' -x%.0s' $(seq 1 63))"
start_api 201 "$SD_USER2" app app xvnc "$many"
refused_api "the pool's command has more than 63 words (the program and its arguments)"
inject id=202 user="$SD_USER2" pool=app kind=app command="$many"
refused_ipc 202 "has more than 63 words"
long="/usr/bin/xterm -title $(head -c 513 /dev/zero | tr '\0' a)"
start_api 203 "$SD_USER2" app app xvnc "$long"
refused_api "the pool's command: word 3 is longer than 512 bytes"
inject id=204 user="$SD_USER2" pool=app kind=app command="$long"
refused_ipc 204 "word 3 is longer than 512 bytes"
nothing_left "bad application arguments"
# The control cases: at the bounds (63 words, one of 500 bytes) the root
# side starts it (the broker, which does not know it, has it stopped);
# through the broker, the program gets its words as they are.
ok63="/usr/bin/xterm$(printf ' -j%.0s' $(seq 1 60)) -title $(head -c 500 /dev/zero | tr '\0' b)"
start_api 205 "$SD_USER2" app app xvnc "$ok63"
expect 201
grep -q "session 205 of $SD_USER2 started" "$T/sessiond.log" || fail "no start of 205"
wait_for 10 eval '! pgrep -u "$SD_USER2" >/dev/null' || fail "session 205 still runs"
USER2_TOKEN=$(login "$SD_USER2" user2-pw)
api POST /resources/args/launch "" "$USER2_TOKEN" >/dev/null
expect 200
S0=$(jq -r .session.id "$T/out")
wait_for 5 pgrep -u "$SD_USER2" -x xterm >/dev/null || fail "no xterm for a good command"
xpid=$(pgrep -u "$SD_USER2" -x xterm)
argv=$(tr '\0' ' ' <"/proc/$xpid/cmdline")
[ "$argv" = "/usr/bin/xterm -j -j -title kiosk " ] || fail "xterm's argv: '$argv'"
api POST "/sessions/$S0/logoff" "" "$USER2_TOKEN" >/dev/null
expect 200
wait_for 10 eval '! pgrep -u "$SD_USER2" >/dev/null' || fail "session $S0 still runs"
echo "ok: application arguments"

# The network side is still there (a refusal is no protocol violation),
# and sessiond serves on.
kill -0 "$NET" 2>/dev/null || fail "the network side was stopped"
[ "$(sd_api GET /sessions | jq '.sessions | length')" = 0 ] || fail "sessiond runs $(cat "$T/out")"

# --- allow_users: a listed system account has its session --------------------------
# (Through the broker: sessiond stops what the broker does not know.)
KIOSK_TOKEN=$(login "$KIOSK" kiosk-pw)
api POST /resources/kiosk/launch "" "$KIOSK_TOKEN" >/dev/null
expect 200
S1=$(jq -r .session.id "$T/out")
wait_for 5 pgrep -u "$KIOSK" -x xterm >/dev/null || fail "no xterm of $KIOSK"
# The same session id asked for another user or pool: a retried start gets
# the running session's backend and secret, anything else nothing of them.
sd_api POST /sessions "{\"id\":$S1,\"user\":\"$SD_USER\",\"pool\":{\"name\":\"kiosk\",\"kind\":\"app\",\"driver\":\"xvnc\",\"command\":\"/usr/bin/xterm\"}}" >/dev/null
expect 409 id_in_use
grep -q '"secret"' "$T/out" && fail "another user's start got the session's secret: $(cat "$T/out")"
inject id="$S1" user="$SD_USER" pool=kiosk kind=app command=/usr/bin/xterm
wait_for 5 grep -q "session $S1 of $SD_USER did not start: this session id runs here for another user or pool" "$T/sessiond.log" ||
	fail "the root side handed session $S1 to another user: $(grep "session $S1 " "$T/sessiond.log" | tail -3)"
pgrep -u "$KIOSK" -x xterm >/dev/null || fail "the kiosk session died of it"
api POST "/sessions/$S1/logoff" "" "$KIOSK_TOKEN" >/dev/null
expect 200
wait_for 10 eval '! pgrep -u "$KIOSK" >/dev/null' || fail "the kiosk session still runs"
echo "ok: allow_users"

# --- a VM: QEMU has vm_user's groups, not root's --------------------------------------
USER_TOKEN=$(login "$SD_USER" user-pw)
api POST /resources/vmg/launch "" "$USER_TOKEN" >/dev/null
expect 200
S2=$(jq -r .session.id "$T/out")
qpid=$(pgrep -u "$SD_SVC" -f "name vmg \\(") || fail "no QEMU of vm_user"
have=$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$qpid/status" | tr ' ' '\n' | grep . | sort -n | tr '\n' ' ')
want=$(id -G "$SD_SVC" | tr ' ' '\n' | sort -n | tr '\n' ' ')
echo "   QEMU's groups: ${have% } (vm_user's: ${want% })"
[ "$have" = "$want" ] || fail "QEMU's supplementary groups are '$have', vm_user's are '$want'"
[ "$(stat -c %U "$T/state/vms/vmg")" = "$SD_SVC" ] || fail "the VM directory is $(stat -c %U "$T/state/vms/vmg")'s"
api POST "/sessions/$S2/logoff" "" "$USER_TOKEN" >/dev/null
expect 200
wait_for 10 eval '! pgrep -u "$SD_SVC" -f "name vmg" >/dev/null' || fail "QEMU still runs"
echo "ok: QEMU with vm_user's groups"

# --- a notice the network side would never send ends it -------------------------------
# (a control character in the text; the root side checks what it shows)
inject op=notice id=999 command="$(printf 'a\033[2Jb')"
wait_for 5 grep -q "malformed message from the network side (a notice that is not 1 to 400 bytes of text)" "$T/sessiond.log" ||
	fail "the root side took a notice with a control character: $(tail -3 "$T/sessiond.log")"
wait_for 10 eval '! kill -0 $SD_PID 2>/dev/null' || fail "sessiond still runs after a malformed request"
SD_PID=
echo "ok: a malformed notice ends the pair"
# A password in anything but a VM's start is no request of ours either.
sd_start
NET=$(pgrep -P "$SD_PID" -x portico-session) || fail "no network side"
inject op=stop id=998 password=hunter2
wait_for 5 grep -q "malformed message from the network side (a password for something else than a VM's start)" "$T/sessiond.log" ||
	fail "the root side took a password in a stop: $(tail -3 "$T/sessiond.log")"
wait_for 10 eval '! kill -0 $SD_PID 2>/dev/null' || fail "sessiond still runs after a malformed request"
SD_PID=
grep -q hunter2 "$T/sessiond.log" && fail "the password in the log"
echo "ok: a password in a stop ends the pair"
echo "ok: sessiond root side"
