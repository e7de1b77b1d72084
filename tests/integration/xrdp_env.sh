# xrdp_env.sh - sourced (after broker_env.sh) by the tests and benchmarks
# that need a real xrdp host; everything lives in $T.
#
#   xrdp_vnc_desktop VNC_PORT   an Xvnc with an xterm on 127.0.0.1:VNC_PORT
#                               (no VNC password): sets XVNC and XTERM
#   xrdp_start PORT AUTORUN [INI-TEXT]
#                               xrdp on 127.0.0.1:PORT, TLS security with a
#                               certificate of its own, logging into $T,
#                               logging users straight into the AUTORUN
#                               section (INI-TEXT appended to xrdp.ini):
#                               sets XRDP (its process group: kill -- -$XRDP)
#   xrdp_vnc_any VNC_PORT       the [vnc-any] section for INI-TEXT: xrdp's
#                               VNC module showing 127.0.0.1:VNC_PORT

xrdp_vnc_desktop() {
	Xvnc -displayfd 1 -interface 127.0.0.1 -rfbport "$1" -SecurityTypes None -geometry 800x600 \
		-nolisten tcp >"$T/xvnc.display" 2>"$T/xvnc.log" &
	XVNC=$!
	wait_for 5 test -s "$T/xvnc.display" || fail "Xvnc did not start"
	DISPLAY=:$(cat "$T/xvnc.display") xterm -geometry 80x24+10+10 >/dev/null 2>&1 &
	XTERM=$!
}

xrdp_vnc_any() {
	printf '\n[vnc-any]\nname=vnc-any\nlib=libvnc.so\nip=127.0.0.1\nport=%s\nusername=na\npassword=na\n' "$1"
}

xrdp_start() {
	local port=$1 autorun=$2 extra=${3:-}
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=xrdp -keyout "$T/xrdp.key" \
		-out "$T/xrdp.pem" 2>/dev/null || fail "xrdp certificate"
	sed -e "s|^port=3389|port=tcp://127.0.0.1:$port|" -e "s|^security_layer=negotiate|security_layer=tls|" \
		-e "s|^certificate=|certificate=$T/xrdp.pem|" -e "s|^key_file=|key_file=$T/xrdp.key|" \
		-e "s|^autorun=|autorun=$autorun|" -e "s|^LogFile=xrdp.log|LogFile=$T/xrdp.log|" \
		-e "s|^EnableSyslog=true|EnableSyslog=false|" /etc/xrdp/xrdp.ini >"$T/xrdp.ini"
	[ -n "$extra" ] && printf '%s\n' "$extra" >>"$T/xrdp.ini"
	mkdir -p /run/xrdp
	setsid xrdp -n -c "$T/xrdp.ini" >"$T/xrdp.out" 2>&1 &
	XRDP=$!
}

