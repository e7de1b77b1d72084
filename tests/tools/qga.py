#!/usr/bin/python3
"""qga.py SOCKET COMMAND... - talk to a VM's QEMU guest agent as a test does
(the standard library only; the session's monitor holds no connection
between its own calls, so a test may open one).

  qga.py SOCK ping                 exit 0 when the agent answers
  qga.py SOCK exec PROG [ARG...]   run PROG in the guest, wait for it (60 s at
                                   most), print its output, exit with its code
  qga.py SOCK users                print the users logged in to the guest
"""
import base64
import json
import random
import socket
import sys
import time


def call(f, cmd, args=None, timeout=30):
    msg = {"execute": cmd}
    if args is not None:
        msg["arguments"] = args
    f.write(json.dumps(msg).encode() + b"\n")
    f.flush()
    line = f.readline()
    if not line:
        raise SystemExit("qga: the agent closed the connection")
    ans = json.loads(line)
    if "error" in ans:
        raise SystemExit("qga: %s: %s" % (cmd, ans["error"].get("desc")))
    return ans.get("return")


def sync(f):
    n = random.randrange(1, 2**31)
    f.write(b"\xff" + json.dumps({"execute": "guest-sync-delimited",
                                  "arguments": {"id": n}}).encode() + b"\n")
    f.flush()
    while True:  # skip to the 0xFF the agent sends back, then to our answer
        b = f.read(1)
        if not b:
            raise SystemExit("qga: the agent closed the connection")
        if b == b"\xff":
            break
    while True:
        ans = json.loads(f.readline())
        if ans.get("return") == n:
            return


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(70)
    s.connect(sys.argv[1])
    f = s.makefile("rwb")
    sync(f)
    what = sys.argv[2]
    if what == "ping":
        call(f, "guest-ping")
        return 0
    if what == "users":
        for u in call(f, "guest-get-users"):
            print(u["user"])
        return 0
    if what == "exec":
        pid = call(f, "guest-exec", {"path": sys.argv[3], "arg": sys.argv[4:],
                                     "capture-output": True})["pid"]
        until = time.time() + 60
        while time.time() < until:
            st = call(f, "guest-exec-status", {"pid": pid})
            if st.get("exited"):
                sys.stdout.write(base64.b64decode(st.get("out-data", "")).decode(errors="replace"))
                sys.stderr.write(base64.b64decode(st.get("err-data", "")).decode(errors="replace"))
                return st.get("exitcode", 128 + st.get("signal", 0))
            time.sleep(0.2)
        raise SystemExit("qga: %s did not end within 60 s" % sys.argv[3])
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
