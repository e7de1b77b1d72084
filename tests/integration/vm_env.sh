# vm_env.sh - sourced (after broker_env.sh and sessiond_env.sh) by the test
# and the benchmark that boot the golden desktop image of `make
# guest-image` behind a real gateway; everything lives in $T.
#
#   vm_setup POOLS   a broker, sessiond (the image linked or copied into $T,
#                    which is its image_dir, and @IMAGE@ in POOLS; TCG),
#                    the gateway's RDP
#                    listener on RDP_PORT (GW its pid), Xvfb (XD its
#                    display), POOLS appended to the configuration; ADMIN
#                    and ALICE tokens; the EXIT trap ends it all
#   port_of ID       the host port forwarded to VM ID's guest server (a VM's
#                    directory is named by its first id: a spare's)
#   QGA              tests/tools/qga.py, the test's own guest agent client

QGA="/usr/bin/python3 $PWD/tests/tools/qga.py"

vm_setup() {
	local image=$BUILD/images/desktop.qcow2
	case $image in /*) ;; *) image=$PWD/$image ;; esac
	[ -f "$image" ] || { echo "FAIL: no guest image $image (make guest-image)"; exit 1; }
	be_setup
	sd_setup
	# The image is the test's own (image_dir is its directory, root's;
	# QEMU as vm_user must read it wherever the checkout is).
	ln "$image" "$T/desktop.qcow2" 2>/dev/null || cp "$image" "$T/desktop.qcow2" || fail "cannot copy the image"
	chmod 644 "$T/desktop.qcow2"
	RDP_PORT=$(free_port)
	be_gateway_conf - "$RDP_PORT" user=portico
	be_conf_append "vm_user = $SD_SVC
image_dir = $T
vm_accel = tcg
vm_memory = 768
${1//@IMAGE@/$T/desktop.qcow2}"
	be_start
	ADMIN=$(login carol carol-pw)
	sd_start
	env LD_PRELOAD="$NSS_WRAPPER_LIB" NSS_WRAPPER_PASSWD="$T/passwd" NSS_WRAPPER_GROUP="$T/group" \
		NSS_WRAPPER_DISABLE_DEEPBIND=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
		"$BUILD/bin/portico-gateway" -c "$T/portico.conf" >>"$T/gateway.log" 2>&1 &
	GW=$!
	Xvfb -displayfd 1 -screen 0 1024x768x24 -nolisten tcp >"$T/xvfb.display" 2>/dev/null &
	XVFB=$!
	trap 'kill $GW $XVFB 2>/dev/null; wait $GW 2>/dev/null; sd_cleanup' EXIT
	wait_for 5 test -s "$T/xvfb.display" || fail "Xvfb"
	XD=:$(cat "$T/xvfb.display")
	wait_for 5 eval "(exec 3<>/dev/tcp/127.0.0.1/$RDP_PORT) 2>/dev/null" || fail "the gateway does not listen on RDP: $(cat "$T/gateway.log")"
	ALICE=$(login alice alice-pw)
}

port_of() {
	pgrep -af "$T/run/sessions/$1/qga.sock" | sed -n 's/.*hostfwd=tcp:127.0.0.1:\([0-9]*\)-.*/\1/p' | head -n 1
}
