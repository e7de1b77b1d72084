#!/usr/bin/python3
"""https-stub CERT KEY ADDR PORT MODE NAME LOG - a stand-in for a broker
that cannot serve, for the fail-over tests (test_broker_failover.sh).

TLS with the test's certificate and key, then, for each request:

  503    read it whole and answer 503 {"error": "unavailable", "message":
         "NAME: the database is unavailable"} (a broker whose database is
         down); the connection is kept alive
  reset  read it whole, then reset the connection (SO_LINGER 0) without a
         byte of answer: a broker that died after it took the request

Each request read is appended to LOG as one line "METHOD PATH".  Prints
"listening" on stdout once it accepts connections; runs until killed.
"""
import json
import socket
import ssl
import struct
import sys
import threading

CERT, KEY, ADDR, PORT, MODE, NAME, LOG = sys.argv[1:8]
LOCK = threading.Lock()


def read_request(s):
    """(method, path) of one request read whole, or None at its end."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            return None
        buf += d
        if len(buf) > 65536:
            return None
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    method, path = lines[0].split(" ")[:2]
    length = 0
    for h in lines[1:]:
        k, _, v = h.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(body) < length:
        d = s.recv(4096)
        if not d:
            return None
        body += d
    return method, path


def serve(ctx, raw):
    try:
        conn = ctx.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError):
        raw.close()
        return
    try:
        while True:
            req = read_request(conn)
            if req is None:
                break
            with LOCK, open(LOG, "a") as f:
                f.write("%s %s\n" % req)
            if MODE == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                break
            body = json.dumps({"error": "unavailable",
                               "message": NAME + ": the database is unavailable"}).encode()
            conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(body) + body)
    except (OSError, ValueError):
        pass
    finally:
        conn.close()


def main():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    ls = socket.socket(socket.AF_INET6 if ":" in ADDR else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((ADDR, int(PORT)))
    ls.listen(64)
    print("listening", flush=True)
    while True:
        raw, _ = ls.accept()
        threading.Thread(target=serve, args=(ctx, raw), daemon=True).start()


main()
