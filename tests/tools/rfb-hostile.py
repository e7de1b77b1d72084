#!/usr/bin/env python3
"""rfb-hostile HOST PORT CASE - one hostile VNC client against the gateway.

Prints what the gateway answered, one line, for the test to check:
  version     an RFB 4.0 client              -> "closed"
  rfb33       an RFB 3.3 client              -> "refused: <reason>"
  sectype     RFB 3.8 choosing VNC auth      -> "refused: <reason>"
  vencrypt    VeNCrypt version 0.1           -> "vencrypt-refused"
  subtype     VeNCrypt subtype 99            -> "subtype-refused"
  offered     the VeNCrypt subtypes offered  -> "offered 262 ..."
  tlsplain    choosing TLSPlain (259)        -> "subtype-refused" unless offered
  tlsgarbage  garbage instead of a ClientHello -> "closed"
  bigname     a 1 MB user name inside TLS    -> "refused: <reason>"
  nul         a user name with a NUL         -> "refused: <reason>"
  silent      connects, reads the banner, then says nothing -> "closed after N s"
  midway      stops after the security type  -> "closed after N s"
  hold N [FROM [NEXT]]
              opens N connections that say nothing (from source address
              FROM when given), then one more (from NEXT, else FROM); prints
              what the last one read ("banner" or "closed")
  keep N FROM SECONDS
              opens N connections from FROM, reads each one's banner, keeps
              them SECONDS, then prints "kept K" (K of them had a banner)
  cap N       opens N connections one by one, each reading its banner, then
              one more: "K served, then banner|closed"
  garbage N   N connections in a row that send junk -> "done"
"""
import socket, ssl, struct, sys, time

from hostile_io import recv_exact


def connect(host, port, src=None):
    s = socket.create_connection((host, port), timeout=10,
                                 source_address=(src, 0) if src else None)
    return s


def read_banner(s, timeout=5):
    """What a new connection reads first: "banner" or "closed"."""
    s.settimeout(timeout)
    try:
        b = b""
        while len(b) < 12:
            d = s.recv(12 - len(b))
            if not d:
                break
            b += d
    except OSError:
        b = b""
    return "banner" if b.startswith(b"RFB ") else "closed"


def reason(s):
    (res,) = struct.unpack(">I", recv_exact(s, 4))
    if res == 0:
        return "ok"
    (n,) = struct.unpack(">I", recv_exact(s, 4))
    return "refused: " + recv_exact(s, n).decode(errors="replace")


def to_tls(s, host):
    s.sendall(b"RFB 003.008\n")
    n = recv_exact(s, 1)[0]
    recv_exact(s, n)
    s.sendall(bytes([19]))
    recv_exact(s, 2)
    s.sendall(b"\x00\x02")
    assert recv_exact(s, 1) == b"\x00"
    n = recv_exact(s, 1)[0]
    recv_exact(s, 4 * n)
    s.sendall(struct.pack(">I", 262))
    assert recv_exact(s, 1) == b"\x01"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx.wrap_socket(s, server_hostname=host)


def main():
    host, port, case = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    arg = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    try:
        if case == "hold":
            src = sys.argv[5] if len(sys.argv) > 5 else None
            nxt = sys.argv[6] if len(sys.argv) > 6 else src
            held = [connect(host, port, src) for _ in range(arg)]
            time.sleep(0.3)
            s = connect(host, port, nxt)
            print(read_banner(s))
            return
        if case == "keep":
            held = [connect(host, port, sys.argv[5]) for _ in range(arg)]
            k = sum(read_banner(h) == "banner" for h in held)
            time.sleep(float(sys.argv[6]))
            print("kept %d" % k)
            return
        if case == "cap":
            held = []
            for _ in range(arg):
                h = connect(host, port)
                if read_banner(h) != "banner":
                    break
                held.append(h)
            s = connect(host, port)
            print("%d served, then %s" % (len(held), read_banner(s, 3)))
            return
        if case == "garbage":
            for i in range(arg):
                s = connect(host, port)
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                try:
                    while s.recv(4096):
                        pass
                except OSError:
                    pass
                s.close()
            print("done")
            return
        s = connect(host, port)
        banner = recv_exact(s, 12)
        assert banner == b"RFB 003.008\n", banner
        if case == "version":
            s.sendall(b"RFB 004.000\n")
            print("closed" if s.recv(100) == b"" else "answered")
        elif case == "rfb33":
            s.sendall(b"RFB 003.003\n")
            (t,) = struct.unpack(">I", recv_exact(s, 4))
            (n,) = struct.unpack(">I", recv_exact(s, 4))
            print("refused: " + recv_exact(s, n).decode() if t == 0 else "type %d" % t)
        elif case == "sectype":
            s.sendall(b"RFB 003.008\n")
            n = recv_exact(s, 1)[0]
            recv_exact(s, n)
            s.sendall(bytes([2]))
            print(reason(s))
        elif case == "vencrypt":
            s.sendall(b"RFB 003.008\n")
            n = recv_exact(s, 1)[0]
            recv_exact(s, n)
            s.sendall(bytes([19]))
            recv_exact(s, 2)
            s.sendall(b"\x00\x01")
            b = s.recv(1)
            print("vencrypt-refused" if b and b[0] != 0 else "accepted")
        elif case in ("offered", "tlsplain"):
            s.sendall(b"RFB 003.008\n")
            n = recv_exact(s, 1)[0]
            recv_exact(s, n)
            s.sendall(bytes([19]))
            recv_exact(s, 2)
            s.sendall(b"\x00\x02")
            recv_exact(s, 1)
            n = recv_exact(s, 1)[0]
            subs = struct.unpack(">%dI" % n, recv_exact(s, 4 * n))
            if case == "offered":
                print("offered " + " ".join(map(str, subs)))
            else:
                s.sendall(struct.pack(">I", 259))
                b = s.recv(1)
                print("subtype-refused" if b == b"\x00" else "accepted")
        elif case == "subtype":
            s.sendall(b"RFB 003.008\n")
            n = recv_exact(s, 1)[0]
            recv_exact(s, n)
            s.sendall(bytes([19]))
            recv_exact(s, 2)
            s.sendall(b"\x00\x02")
            recv_exact(s, 1)
            n = recv_exact(s, 1)[0]
            recv_exact(s, 4 * n)
            s.sendall(struct.pack(">I", 99))
            b = s.recv(1)
            print("subtype-refused" if b == b"\x00" else "accepted")
        elif case == "tlsgarbage":
            s.sendall(b"RFB 003.008\n")
            n = recv_exact(s, 1)[0]
            recv_exact(s, n)
            s.sendall(bytes([19]))
            recv_exact(s, 2)
            s.sendall(b"\x00\x02")
            recv_exact(s, 1)
            n = recv_exact(s, 1)[0]
            recv_exact(s, 4 * n)
            s.sendall(struct.pack(">I", 262))
            recv_exact(s, 1)
            s.sendall(b"\x16\x03\x01\xff\xff" + b"\x00" * 2000)
            try:
                d = s.recv(100)
                while d and s.recv(100):
                    pass
            except OSError:
                pass
            print("closed")
        elif case in ("bigname", "nul"):
            t = to_tls(s, host)
            if case == "bigname":
                t.sendall(struct.pack(">II", 1 << 20, 4) + b"a" * 4096)
            else:
                t.sendall(struct.pack(">II", 5, 2) + b"al\x00ce" + b"pw")
            print(reason(t))
        elif case in ("silent", "midway"):
            if case == "midway":
                s.sendall(b"RFB 003.008\n")
                n = recv_exact(s, 1)[0]
                recv_exact(s, n)
            t0 = time.time()
            s.settimeout(60)
            try:
                while s.recv(100):
                    pass
            except OSError:
                pass
            print("closed after %d s" % round(time.time() - t0))
        else:
            print("unknown case", case)
            sys.exit(2)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        print("closed")


main()
