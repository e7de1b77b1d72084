#!/bin/bash
# make demo: for now the foundation only.  The broker, the gateway and the
# session agent are the next pieces of work; once they exist this script
# starts them on loopback with a generated CA, a demo user and two pools, and
# prints how to connect with portico, xfreerdp and TigerVNC's viewer.
set -eu
BUILD=${BUILD:-build}
cat <<MSG
Portico demo
============
Built: libportico and $BUILD/bench/relay-bench (the gateway's relay on its own).

Not yet startable: portico-broker, portico-gateway and portico-sessiond do not
exist yet.  When they do, 'make demo' will start, on 127.0.0.1:
  - portico-broker  (API on :8443, SQLite store, PAM through a private service)
  - portico-sessiond (Xvnc desktops and an xterm application pool)
  - portico-gateway (RDP on :3389, VNC on :5900)
with a demo user whose password is printed here, and show the commands to
connect with 'portico connect', xfreerdp and TigerVNC's viewer.

What you can run today:
  make check   # every test
  make bench   # the relay against haproxy and nginx
  $BUILD/bench/relay-bench -l 20443 -b 20080   # TLS on :20443 relayed to a server on :20080
MSG
