# broker_env.sh - sourced by broker tests: a private world for one broker.
#
# Users and groups come from nss_wrapper files and passwords from a
# pam_matrix database, both in a temporary directory, so nothing in /etc
# changes.  The broker runs from $BUILD/bin with a generated configuration
# on a port picked free below 32768, as root when the test is (it then drops
# to the nss_wrapper user "portico", as in production).
#
#   be_setup                  make the directory, users, PAM service, config,
#                             and a PKI of portico-admin's ($T/pki: ca.pem;
#                             the broker's certificate, CN 127.0.0.1, is
#                             $T/tls/server.pem; gw1.pem the gateway's; [tls]
#                             cert, what RDP clients see at the gateway's
#                             login step, is $T/tls/rdp.pem, made by the
#                             gateway: no node's key in a login process)
#   be_conf_append TEXT       more configuration before be_start
#   be_start / be_stop        run or stop the broker (SIGTERM, waits at most
#                             PT_STOP_GRACE seconds, then SIGKILL: the test fails)
#   be_start2 / be_stop2      a second broker on the same store (its own port,
#                             PORT2 and B2; $T/portico2.conf, $T/broker2.log);
#                             be_stop stops it too
#   be_kill9                  SIGKILL both broker processes
#   api METHOD PATH [BODY] [TOKEN]   curl; sets $STATUS, prints the body
#   login USER PASSWORD       prints a token (empty on failure)
#   fail MESSAGE              ends the test
#
# lib.sh comes with it: a sanitizer report in any log of $T (every daemon
# of the test writes one there) or in a report file fails the test at exit.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BUILD=${BUILD:-build}
BE_BIN=$BUILD/bin/portico-broker
PAM_WRAPPER_LIB=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so
NSS_WRAPPER_LIB=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so
PAM_MATRIX=/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so
# One secret per role and direction (docs/security.md).
GW_SECRET=gw-secret-0123456789abcdef
HOST_SECRET=host-secret-0123456789abcdef
BROKER_SECRET=broker-secret-0123456789abcdef

fail() {
	echo "FAIL: $*"
	[ -n "${T:-}" ] && [ -f "$T/broker.log" ] && tail -n 20 "$T/broker.log" | sed 's/^/  broker: /'
	exit 1
}

free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	fail "no free port"
}

# be_user NAME PASSWORD UID [GROUP...]: a user with a primary group of its own
be_user() {
	local name=$1 pw=$2 uid=$3
	shift 3
	echo "$name:x:$uid:$uid:$name:/nonexistent:/bin/sh" >>"$T/passwd"
	echo "$name:x:$uid:" >>"$T/group.primary"
	echo "$name:$pw:portico" >>"$T/passdb"
	for g in "$@"; do echo "$g $name" >>"$T/members"; done
}

be_groups() {
	cp "$T/group.primary" "$T/group"
	local gid=3000
	for g in $(cut -d' ' -f1 "$T/members" 2>/dev/null | sort -u); do
		gid=$((gid + 1))
		echo "$g:x:$gid:$(awk -v g="$g" '$1 == g { printf "%s%s", s, $2; s = "," }' "$T/members")" >>"$T/group"
	done
}

be_setup() {
	T=$(mktemp -d /tmp/portico-broker-test.XXXXXX)
	chmod 755 "$T"
	mkdir -p "$T/pam" "$T/tls" "$T/db"
	: >"$T/passwd"
	: >"$T/group.primary"
	: >"$T/passdb"
	: >"$T/members"
	echo "root:x:0:0:root:/root:/bin/sh" >>"$T/passwd"
	echo "root:x:0:" >>"$T/group.primary"
	echo "portico:x:64990:64990:Portico:/nonexistent:/usr/sbin/nologin" >>"$T/passwd"
	echo "portico:x:64990:" >>"$T/group.primary"
	# The net side writes the database as "portico".
	chown 64990:64990 "$T/db" 2>/dev/null || chmod 777 "$T/db"
	be_user alice alice-pw 2001 staff
	be_user bob bob-pw 2002 staff
	be_user carol carol-pw 2003 portico-admin
	be_user dave dave-pw 2004
	cat >"$T/pam/portico" <<PAM
auth    required $PAM_MATRIX passdb=$T/passdb
account required $PAM_MATRIX passdb=$T/passdb
PAM
	printf 'auth required pam_deny.so\naccount required pam_deny.so\n' >"$T/pam/other"
	# Each node its own certificate from the test's own CA.
	"$BUILD/bin/portico-admin" pki init "$T/pki" >/dev/null || fail "pki init"
	"$BUILD/bin/portico-admin" pki issue "$T/pki" --role broker 127.0.0.1 --san localhost \
		>/dev/null || fail "pki issue broker"
	"$BUILD/bin/portico-admin" pki issue "$T/pki" --role gateway gw1 \
		--san 127.0.0.1,localhost,gateway.test >/dev/null || fail "pki issue gateway"
	# The daemons' unprivileged sides read ca.pem (keys are read as root).
	chmod 755 "$T/pki"
	cp "$T/pki/127.0.0.1.pem" "$T/tls/server.pem"
	cp "$T/pki/127.0.0.1.key" "$T/tls/server.key"
	PORT=$(free_port)
	BACKEND_A=127.0.0.1:$(free_port)
	BACKEND_B=127.0.0.1:$(free_port)
	cat >"$T/portico.conf" <<CONF
[tls]
cert = $T/tls/rdp.pem
key  = $T/tls/rdp.key

[broker]
cert = $T/tls/server.pem
key = $T/tls/server.key
listen = 127.0.0.1:$PORT
store = sqlite:$T/db/portico.db
pam_service = portico
user = portico
admin_group = portico-admin
gateway_secret = $GW_SECRET
host_secret = $HOST_SECRET
broker_secret = $BROKER_SECRET
gateways = gw1
fail_delay = 300ms
ticket_ttl = 5s
login_attempts = 1000
login_window = 1m
# pam_wrapper gives each PAM process a directory named /tmp/pam.X (one
# character): it cannot run many more than 60 at once.
max_logins = 32

[gateway]
cert = $T/pki/gw1.pem
key = $T/pki/gw1.key
public_host = gateway.test
rdp_listen = 0.0.0.0:13389
vnc_listen = 0.0.0.0:15900
https_listen =

[pool office]
kind = desktop
protocol = vnc
driver = static
hosts = $BACKEND_A, $BACKEND_B
groups = staff
max_sessions_per_host = 2

[pool apps]
kind = app
protocol = rdp
driver = static
command = /usr/bin/xterm
hosts = $BACKEND_A
users = alice, dave
CONF
	B="https://127.0.0.1:$PORT/api/v1"
	trap be_cleanup EXIT
}

be_conf_append() {
	printf '%s\n' "$1" >>"$T/portico.conf"
}

# The daemons that call the broker (a gateway, sessiond) check its
# certificate against the test's CA: [tls] ca, once.
be_tls_ca() {
	grep -q "^ca   = " "$T/portico.conf" ||
		sed -i "s|^key  = .*|&\nca   = $T/pki/ca.pem|" "$T/portico.conf"
}

# be_gateway_conf VNC_PORT RDP_PORT [KEY=VALUE...]: the [gateway] section of
# the test's gateway: its listeners on 127.0.0.1 (a port "-": that listener
# off), the test's broker (be_tls_ca), public_host 127.0.0.1 (a public_host
# among the KEY=VALUEs replaces it) and a "KEY = VALUE" line each.  An
# https_listen=ADDR turns the HTTPS front on, serving the repository's web/
# (web_root; tests run from the repository's root) unless a web_root is given.
be_gateway_conf() {
	local vnc=127.0.0.1:$1 rdp=127.0.0.1:$2 host=127.0.0.1 lines="" kv https="" web=""
	shift 2
	[ "$vnc" = 127.0.0.1:- ] && vnc=
	[ "$rdp" = 127.0.0.1:- ] && rdp=
	for kv in "$@"; do
		case $kv in
		public_host=*) host=${kv#*=} ;;
		https_listen=*) https=${kv#*=} ;;
		web_root=*) web=${kv#*=} ;;
		*) lines+="\\n${kv%%=*} = ${kv#*=}" ;;
		esac
	done
	[ -n "$https" ] && lines+="\\nweb_root = ${web:-$PWD/web}"
	be_tls_ca
	sed -i "s|^vnc_listen = 0.0.0.0:15900|vnc_listen = $vnc|; s|^rdp_listen = 0.0.0.0:13389|rdp_listen = $rdp|; s|^https_listen =\$|https_listen = $https|; s|^public_host = gateway.test|public_host = $host\nbroker = https://127.0.0.1:$PORT$lines|" "$T/portico.conf"
}

# be_exec CONF LOG: a broker in the test's PAM and NSS world, in the
# background ($! is its pid).
be_exec() {
	env LD_PRELOAD="$PAM_WRAPPER_LIB $NSS_WRAPPER_LIB" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$T/pam" \
		PAM_WRAPPER_DISABLE_DEEPBIND=1 UID_WRAPPER_DISABLE_DEEPBIND=1 NSS_WRAPPER_DISABLE_DEEPBIND=1 \
		NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
		ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		"$BE_BIN" -c "$1" >>"$2" 2>&1 &
}

# be_listening URL PID NAME: until the broker at URL answers (it fails the
# test if it exits or does not answer within 10 s).
be_listening() {
	for _ in $(seq 1 100); do
		if curl -s -o /dev/null --cacert "$T/tls/server.pem" "$1/resources" 2>/dev/null; then
			return 0
		fi
		kill -0 "$2" 2>/dev/null || fail "$3 exited at start"
		sleep 0.1
	done
	fail "$3 did not start listening"
}

be_start() {
	be_groups
	: >"$T/broker.log.new"
	cat "$T/broker.log.new" >>"$T/broker.log" 2>/dev/null
	be_exec "$T/portico.conf" "$T/broker.log"
	BE_PID=$!
	be_listening "$B" "$BE_PID" "the broker"
}

be_stop() {
	be_stop2
	[ -n "${BE_PID:-}" ] || return 0
	pt_stop "$BE_PID" "the broker"
	BE_RC=$PT_RC
	BE_PID=
	pt_san_scan "$T/broker.log" || PT_FAILED_LATER=1
}

# A second broker beside the first, on the same store (a shared database:
# several brokers): $T/portico2.conf is the test's configuration as it is
# now but for its own port (PORT2, B2); its log is $T/broker2.log.
be_start2() {
	PORT2=${PORT2:-$(free_port)}
	B2="https://127.0.0.1:$PORT2/api/v1"
	sed "s|^listen = 127.0.0.1:$PORT\$|listen = 127.0.0.1:$PORT2|" "$T/portico.conf" >"$T/portico2.conf"
	be_exec "$T/portico2.conf" "$T/broker2.log"
	B2_PID=$!
	be_listening "$B2" "$B2_PID" "the second broker"
}

be_stop2() {
	[ -n "${B2_PID:-}" ] || return 0
	pt_stop "$B2_PID" "the second broker"
	B2_PID=
	pt_san_scan "$T/broker2.log" || PT_FAILED_LATER=1
}

be_kill9() {
	pkill -KILL -P "$BE_PID" 2>/dev/null
	kill -KILL "$BE_PID" 2>/dev/null
	wait "$BE_PID" 2>/dev/null
	BE_PID=
}

# Every test's cleanup ends here (sd_cleanup and the tests' own traps call
# it last), after the daemons stopped: their logs are complete.
be_cleanup() {
	be_stop
	if ! pt_san_scan "$T"/*.log; then
		PT_FAILED_LATER=1
		echo "  (logs kept in $T)"
		return
	fi
	[ "${KEEP_TMP:-0}" = 1 ] || rm -rf "$T"
}

# api METHOD PATH [BODY] [AUTH]; AUTH is a token or a role's secret.
api() {
	local method=$1 path=$2 body=${3:-} auth=${4:-}
	local args=(-s -o "$T/out" -w '%{http_code}' --cacert "$T/tls/server.pem" -X "$method")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	[ -n "$auth" ] && args+=(-H "Authorization: Bearer $auth")
	# No answer must not read as the previous one.
	rm -f "$T/out"
	STATUS=$(curl "${args[@]}" "$B$path")
	cat "$T/out" 2>/dev/null
}

login() {
	api POST /login "{\"username\":\"$1\",\"password\":\"$2\"}" | jq -r '.token // empty'
}

# expect STATUS CODE: the last api call's status and error code
expect() {
	local want=$1 code=${2:-}
	[ "$STATUS" = "$want" ] || fail "expected HTTP $want, got $STATUS: $(cat "$T/out")"
	if [ -n "$code" ]; then
		[ "$(jq -r .error "$T/out")" = "$code" ] || fail "expected error $code: $(cat "$T/out")"
	fi
}

# disconnect_closes POOL PID PROTO: an administrator ($ADMIN) disconnects
# POOL's live session; the client PID must be gone within 2 s and the
# gateway's log say why for PROTO (vnc, rdp, rdg).  TOOK: the time taken.
disconnect_closes() {
	local s t0
	s=$(api GET "/admin/sessions?state=live&pool=$1" "" "$ADMIN" | jq -r '.sessions[0].id')
	t0=$(date +%s%3N)
	api POST "/admin/sessions/$s/disconnect" "" "$ADMIN" >/dev/null
	expect 200
	for _ in $(seq 1 40); do kill -0 "$2" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$2" 2>/dev/null && { kill "$2"; fail "the client is still connected 2 s after the disconnect"; }
	TOOK="$(($(date +%s%3N) - t0)) ms"
	wait "$2" 2>/dev/null
	grep -q "$3 127.0.0.1 .*session $s: disconnect (disconnected by an administrator (carol))" "$T/gateway.log" ||
		fail "no log line for the disconnect: $(tail -3 "$T/gateway.log")"
}
