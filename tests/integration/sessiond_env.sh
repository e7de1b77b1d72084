# sessiond_env.sh - sourced after broker_env.sh by session host tests: a
# real portico-sessiond (as root) beside the test broker, with real users
# made for the test and removed after it.
#
# The broker keeps its nss_wrapper and pam_matrix world (broker_env.sh); the
# session host is a real one: users made with useradd (their processes must
# be real users of the system: Xvnc, xterm), PAM through pam_wrapper with a
# service file of the test's own, built from Debian's real modules.
#
#   sd_setup        users, PAM service, [sessiond] section (after be_setup)
#   sd_start/sd_stop/sd_kill9
#   sd_api METHOD PATH [BODY]   curl to sessiond itself, with the broker's
#                               secret; sets $STATUS
#   wait_for CMD... / host_registered

SD_BIN=$BUILD/bin/portico-sessiond
PROBE=$BUILD/tests/tools/vnc-probe
SECMOD=/usr/lib/x86_64-linux-gnu/security

sd_cleanup() {
	sd_stop
	# Sessions outlive sessiond by design: end this test's too (its
	# monitors are in its run_dir; other tests' are left alone).
	for f in "$T"/run/state/*; do
		[ -f "$f" ] || continue
		m=$(awk '$1 == "monitor" { print $2 }' "$f")
		[ -n "$m" ] && [ "$(cat "/proc/$m/comm" 2>/dev/null)" = pt-session ] && kill -KILL "$m"
	done
	for u in $SD_USER $SD_USER2 $SD_REFUSED $SD_SVC; do
		pkill -KILL -u "$u" 2>/dev/null
	done
	# userdel refuses while a process of the user lives, and a uid left
	# running would be the next test's.
	for _ in $(seq 1 50); do
		pgrep -u "$SD_USER,$SD_USER2,$SD_REFUSED,$SD_SVC" >/dev/null 2>&1 || break
		sleep 0.1
	done
	for u in $SD_USER $SD_USER2 $SD_REFUSED $SD_SVC; do userdel -r "$u" >/dev/null 2>&1; done
	groupdel "$SD_GROUP" >/dev/null 2>&1
	sd_forget_x_sockets
	be_cleanup
}

# An X server removes its socket in /tmp/.X11-unix when it stops on SIGTERM,
# not when it is killed: every Xvnc that a cleanup (or a fault test) killed
# with SIGKILL left its file.  Xvnc -displayfd takes such a display again,
# but xrdp-sesman (as display managers do) counts any file there as a
# running server: after test_faults_kill's 200 sessions, sesman's whole range
# (displays 10 to 60) looked taken, it started no session and xrdp showed
# its own log window (test_gateway_rdp_sesman).  Remove the sockets that no
# user of the system owns any more (this test's, once userdel ran, and
# earlier tests') and on which nothing listens; a live server's is kept.
sd_forget_x_sockets() {
	local -A users=() live=()
	local uid f
	while IFS=: read -r _ _ uid _; do users[$uid]=1; done < <(getent passwd)
	while read -r f; do live[$f]=1; done < <(ss -xlH 2>/dev/null | awk '{ print $5 }')
	while read -r uid f; do
		[ -n "${users[$uid]:-}" ] || [ -n "${live[$f]:-}" ] || rm -f "$f"
	done < <(find /tmp/.X11-unix -maxdepth 1 -type s -name 'X[0-9]*' -printf '%U %p\n' 2>/dev/null)
}

sd_setup() {
	[ "$(id -u)" = 0 ] || fail "session host tests need root (useradd, PAM sessions); CI runs as root"
	local tag=$$
	SD_USER=ptu$tag SD_USER2=ptv$tag SD_REFUSED=ptr$tag SD_SVC=pts$tag SD_GROUP=ptg$tag
	trap sd_cleanup EXIT
	groupadd "$SD_GROUP" || fail "groupadd"
	useradd -m -d "$T/home-$SD_USER" -s /bin/sh -G "$SD_GROUP" "$SD_USER" || fail "useradd"
	useradd -m -d "$T/home-$SD_USER2" -s /bin/sh "$SD_USER2" || fail "useradd"
	useradd -m -d "$T/home-$SD_REFUSED" -s /bin/sh "$SD_REFUSED" || fail "useradd"
	useradd -r -M -s /usr/sbin/nologin "$SD_SVC" || fail "useradd"
	SD_GID=$(getent group "$SD_GROUP" | cut -d: -f3)
	# The same names in the broker's world, so it entitles them.
	be_user "$SD_USER" user-pw 5001
	be_user "$SD_REFUSED" refused-pw 5002
	be_user "$SD_USER2" user2-pw 5004
	be_user ghost ghost-pw 5003 # known to the broker, not to the host
	mkdir -p "$T/sdpam" "$T/run"
	cat >"$T/sdpam/portico-session" <<PAM
auth    required $SECMOD/pam_unix.so
account required $SECMOD/pam_succeed_if.so quiet user notin $SD_REFUSED
account required $SECMOD/pam_unix.so
session required $SECMOD/pam_env.so readenv=0
session required $SECMOD/pam_unix.so
PAM
	SD_PORT=$(free_port)
	"$BUILD/bin/portico-admin" pki issue "$T/pki" --role host host1 --san 127.0.0.1 \
		>/dev/null || fail "pki issue host1"
	be_tls_ca
	be_conf_append "
[sessiond]
broker = https://127.0.0.1:$PORT
listen = 127.0.0.1:$SD_PORT
name = host1
cert = $T/pki/host1.pem
key = $T/pki/host1.key
user = $SD_SVC
gateway_user = $SD_SVC
run_dir = $T/run
state_dir = $T/state
heartbeat = 500ms
xsession = $PWD/etc/xsession"
	SD="https://127.0.0.1:$SD_PORT/api/v1"
}

# sessiond's environment: PAM through pam_wrapper (no RTLD_DEEPBIND, which
# ASan refuses).
sd_env() {
	SD_ENV=(LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libpam_wrapper.so PAM_WRAPPER=1
		PAM_WRAPPER_SERVICE_DIR="$T/sdpam" PAM_WRAPPER_DISABLE_DEEPBIND=1
		UID_WRAPPER_DISABLE_DEEPBIND=1 NSS_WRAPPER_DISABLE_DEEPBIND=1
		ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0")
}

sd_start() {
	sd_env
	env "${SD_ENV[@]}" "$SD_BIN" -c "$T/portico.conf" >>"$T/sessiond.log" 2>&1 &
	SD_PID=$!
	wait_for 10 host_registered || fail "sessiond did not register: $(tail -5 "$T/sessiond.log")"
}

sd_stop() {
	[ -n "${SD_PID:-}" ] || return 0
	pt_stop "$SD_PID" "sessiond"
	SD_PID=
	pt_san_scan "$T/sessiond.log" || PT_FAILED_LATER=1
}

# SIGKILL to sessiond's root process only, as a crash would: its network
# side follows it (PR_SET_PDEATHSIG), the session monitors must not.
sd_kill9() {
	local net
	net=$(pgrep -P "$SD_PID" -x portico-session)
	kill -KILL "$SD_PID" 2>/dev/null
	wait "$SD_PID" 2>/dev/null
	SD_PID=
	for _ in $(seq 1 50); do
		[ -n "$net" ] && kill -0 $net 2>/dev/null || break
		sleep 0.1
	done
}

sd_api() {
	local method=$1 path=$2 body=${3:-}
	local args=(-s -o "$T/out" -w '%{http_code}' --cacert "$T/pki/ca.pem" -X "$method"
		-H "Authorization: Bearer $BROKER_SECRET")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	STATUS=$(curl "${args[@]}" "$SD$path")
	cat "$T/out"
}

host_registered() {
	curl -s --cacert "$T/tls/server.pem" -H "Authorization: Bearer $ADMIN" "$B/admin/hosts" 2>/dev/null |
		jq -e '.hosts[] | select(.name == "host1" and .last_seen_ms > 0)' >/dev/null 2>&1
}
