#!/bin/bash
# boot-check.sh IMAGE.qcow2 OUTDIR - boots an overlay of the desktop image
# the way portico-sessiond does (TCG, no KVM), and prints how long until the
# guest agent answers and until xrdp answers an X.224 connection request;
# then makes an account through the agent, logs in with xfreerdp under Xvfb,
# saves a screenshot as OUTDIR/desktop.png and powers the guest off with
# guest-shutdown, as sessiond does at logoff. Everything is kept in OUTDIR
# (console.log, xfreerdp.log). Needs qemu-system-x86, python3 with
# python3-pil as /usr/bin/python3 (the screenshot), freerdp2-x11 and xvfb.
set -eu
img=$(realpath "$1")
d=$(realpath -m "$2")
mkdir -p "$d"
rm -f "$d/overlay.qcow2" "$d/qga.sock" "$d/console.log" "$d/desktop.png"
qemu-img create -q -f qcow2 -b "$img" -F qcow2 "$d/overlay.qcow2"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

t0=$(date +%s.%N)
qemu-system-x86_64 -accel tcg -m 1024 -nodefaults -no-user-config -vga std -display none \
	-drive file="$d/overlay.qcow2",if=virtio,format=qcow2 \
	-netdev user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:3389 -device virtio-net-pci,netdev=n0 \
	-chardev socket,id=qga0,path="$d/qga.sock",server=on,wait=off \
	-device virtio-serial-pci -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0 \
	-serial file:"$d/console.log" &
pids+=($!)

# qga CMD-JSON: one command on the agent's socket (after guest-sync), its
# "return" printed as JSON; exit 1 when no answer within 2 s.
qga() {
	python3 - "$d/qga.sock" "$1" <<'PY'
import json, socket, sys, random
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
try:
    s.connect(sys.argv[1])
    f = s.makefile("rwb")
    tag = random.randint(1, 1 << 30)
    f.write(b'\xff' + json.dumps({"execute": "guest-sync", "arguments": {"id": tag}}).encode() + b"\n"); f.flush()
    while True:
        line = f.readline().lstrip(b'\xff')
        if not line: sys.exit(1)
        try:
            if json.loads(line).get("return") == tag: break
        except ValueError:
            pass
    f.write(sys.argv[2].encode() + b"\n"); f.flush()
    r = json.loads(f.readline())
    if "error" in r: print(json.dumps(r["error"]), file=sys.stderr); sys.exit(2)
    print(json.dumps(r.get("return")))
except (OSError, socket.timeout):
    sys.exit(1)
PY
}
# x224: exit 0 when 127.0.0.1:$port answers a connection request with a
# connection confirm (slirp accepts the TCP connection even with nothing
# listening in the guest, so the TCP handshake proves nothing).
x224() {
	python3 - "$port" <<'PY'
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    s.sendall(bytes.fromhex("030000130ee000000000000100080001000000"))
    r = s.recv(64)
    sys.exit(0 if len(r) >= 6 and r[0] == 3 and r[5] == 0xd0 else 1)
except OSError:
    sys.exit(1)
PY
}
since() { python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t0" "$(date +%s.%N)"; }

agent= rdp=
for _ in $(seq 1 600); do
	if [ -z "$agent" ] && qga '{"execute":"guest-ping"}' >/dev/null 2>&1; then agent=$(since); echo "agent answers guest-ping: ${agent} s"; fi
	if [ -z "$rdp" ] && x224; then rdp=$(since); echo "xrdp answers X.224: ${rdp} s"; fi
	[ -n "$agent" ] && [ -n "$rdp" ] && break
	sleep 0.5
done
[ -n "$agent" ] && [ -n "$rdp" ] || { echo "boot-check: not ready after 300 s (see $d/console.log)" >&2; exit 1; }

# An account the way the broker makes one: guest-exec useradd, then
# guest-set-user-password.
r=$(qga '{"execute":"guest-exec","arguments":{"path":"/usr/sbin/useradd","arg":["-m","-s","/bin/bash","alice"],"capture-output":true}}')
pid=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["pid"])' "$r")
for _ in $(seq 1 40); do
	st=$(qga "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":$pid}}")
	case $st in *'"exited": true'*) break ;; esac
	sleep 0.25
done
echo "useradd: $st"
case $st in *'"exitcode": 0'*) ;; *) echo "boot-check: useradd failed" >&2; exit 1 ;; esac
pw=$(printf 'Portico-test-1' | base64)
qga "{\"execute\":\"guest-set-user-password\",\"arguments\":{\"username\":\"alice\",\"password\":\"$pw\",\"crypted\":false}}" >/dev/null ||
	{ echo "boot-check: guest-set-user-password failed" >&2; exit 1; }
echo "account alice made through the agent: $(since) s"

disp=:$((port % 1000 + 200))
Xvfb "$disp" -screen 0 1100x850x24 -nolisten tcp >"$d/xvfb.log" 2>&1 &
pids+=($!)
sleep 1
t1=$(date +%s.%N)
DISPLAY=$disp xfreerdp /v:127.0.0.1:$port /u:alice /p:Portico-test-1 /cert:ignore /size:1024x768 \
	/log-level:WARN >"$d/xfreerdp.log" 2>&1 &
pids+=($!)
sleep "${SHOT_AFTER:-30}"
/usr/bin/python3 -c 'import sys; from PIL import ImageGrab; ImageGrab.grab(xdisplay=sys.argv[1]).save(sys.argv[2])' "$disp" "$d/desktop.png"
echo "screenshot $(python3 -c "import sys; print('%.0f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t1" "$(date +%s.%N)") s after xfreerdp started: $d/desktop.png"

# Logoff: sessiond asks the guest to power off through the agent.
t2=$(date +%s.%N)
qga '{"execute":"guest-shutdown"}' >/dev/null 2>&1 || true
for _ in $(seq 1 120); do
	kill -0 "${pids[0]}" 2>/dev/null || break
	sleep 0.5
done
if kill -0 "${pids[0]}" 2>/dev/null; then
	echo "boot-check: the guest did not power off within 60 s of guest-shutdown" >&2
	exit 1
fi
echo "guest powered off $(python3 -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$t2" "$(date +%s.%N)") s after guest-shutdown"
