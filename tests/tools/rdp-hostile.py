#!/usr/bin/env python3
"""rdp-hostile HOST PORT CASE [N] - one hostile RDP client against the
gateway; prints what it got, one line:
  http        an HTTP request                    -> "closed"
  tls         a TLS ClientHello straight away    -> "closed"
  truncated   half a TPKT, then silence          -> "closed after N s"
  lie         a TPKT length shorter than its headers -> "closed"
  bigcookie   a 64 KiB cookie line               -> "closed"
  nocrlf      a cookie line without CRLF         -> "closed"
  noticket    a valid request without a ticket (the login step answers)
                                                 -> "confirm protocol 1" (TLS)
  rdponly     no ticket, only standard RDP security offered
                                                 -> "negotiation failure 1"
  notls       no ticket, then no TLS but garbage -> "closed"
  stall       no ticket, then silence            -> "closed after N s"
  confirmed   stall, saying (at once) what confirmed the login step
                                                 -> "confirm protocol 1", then as stall
  forged      a routing token that is no ticket  -> "negotiation failure N"
  many N      N bad connections in a row         -> "done"
  logins N    N requests without a ticket, each dropped after the confirm
                                                 -> "done"
  tlsjunk     no ticket, TLS, then a malformed MCS Connect Initial
                                                 -> "closed"
  from ADDR TICKET   a good ticket sent from another source address
                                                 -> "negotiation failure N"
  held N      N login steps held open (after the confirm), then one more
                                                 -> what the last one got
  relay TICKET  not hostile: a ticket's passthrough to an echo backend;
              prints "relayed <cookie line>" once the forwarded request came
              back, then for each line read from stdin sends it and prints
              "echo <what came back>" (for tests that watch a running relay)
  hold N [FROM [NEXT]]
              N silent connections held open (from source address FROM when
              given), then one more (from NEXT, else FROM)
                                                 -> "the next one closed at once"
                                                    or "the next one kept"

rdp-hostile child PID CASE - a hostile login process: as root, takes a copy
of login process PID's socket to the gateway (its fd 5, pidfd_getfd) and
sends what a login process taken over by its client might:
  garbage     no JSON                            -> "sent"
  big         a message over 8192 bytes          -> "sent"
  addr        a good question plus "client_addr" -> "sent"
  long        a user name of 600 bytes           -> "sent"
  nul         a NUL in the user name             -> "sent"
  twice       a question (a wrong password), then another at once -> "sent"
  ask USER PASSWORD DOMAIN   a good question     -> the answer's keys, or
                                                    "refused KIND"
"""
import ctypes, json, os, socket, ssl, struct, sys, time

from hostile_io import recv_exact


def cr(line=b"", neg=True, protocols=3):
    body = b"\xe0\x00\x00\x00\x00\x00" + line
    if neg:
        body += b"\x01\x00\x08\x00" + struct.pack("<I", protocols)
    tpdu = bytes([len(body)]) + body
    return b"\x03\x00" + struct.pack(">H", 4 + len(tpdu)) + tpdu


def outcome_of(data):
    if len(data) == 19 and data[5] == 0xD0 and data[11] == 0x03:
        return "negotiation failure %d" % data[15]
    if len(data) == 19 and data[5] == 0xD0 and data[11] == 0x02:
        return "confirm protocol %d" % data[15]
    return "closed" if not data else "answered %r" % data[:20]


def outcome(s, timeout=10, until_confirm=False):
    s.settimeout(timeout)
    data = b""
    try:
        while not (until_confirm and len(data) >= 19):
            d = s.recv(4096)
            if not d:
                break
            data += d
    except OSError:
        pass
    if len(data) == 19 and data[5] == 0xD0 and data[11] == 0x03:
        return "negotiation failure %d" % data[15]
    if len(data) == 19 and data[5] == 0xD0 and data[11] == 0x02:
        return "confirm protocol %d" % data[15]
    return "closed" if not data else "answered %r" % data[:20]


def to_login(s):
    """A request without a ticket; what came back (the login step's confirm)."""
    s.sendall(cr(b"Cookie: mstshash=alice\r\n"))
    return outcome(s, until_confirm=True)


def child(pid, case):
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    fd = libc.syscall(438, pidfd, 5, 0)  # pidfd_getfd(2), x86-64
    if fd < 0:
        print("pidfd_getfd: %s" % os.strerror(ctypes.get_errno()))
        sys.exit(1)
    s = socket.socket(fileno=fd)
    ask = lambda u, p, d: json.dumps({"username": u, "password": p, "domain": d}).encode()
    if case == "garbage":
        s.send(b"hello, gateway")
    elif case == "big":
        s.send(b'{"username":"' + b"a" * 9000 + b'"}')
    elif case == "addr":
        q = json.loads(ask("alice#rdesk", "alice-pw", ""))
        q["client_addr"] = "192.0.2.1"
        s.send(json.dumps(q).encode())
    elif case == "long":
        s.send(ask("a" * 600, "x", ""))
    elif case == "nul":
        s.send(b'{"username":"alice\\u0000#rdesk","password":"x","domain":""}')
    elif case == "twice":
        s.send(ask("alice#rdesk", "wrong", ""))
        s.send(ask("alice#rdesk", "wrong", ""))
    elif case == "ask":
        s.send(ask(sys.argv[4], sys.argv[5], sys.argv[6]))
        s.settimeout(30)
        a = json.loads(s.recv(65536))
        print("refused %s" % a["refused"] if "refused" in a else " ".join(sorted(a)))
        return
    else:
        print("unknown case")
        sys.exit(2)
    print("sent")


def main():
    if sys.argv[1] == "child":
        child(int(sys.argv[2]), sys.argv[3])
        return
    host, port, case = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if case == "many":
        for _ in range(int(sys.argv[4])):
            s = socket.create_connection((host, port), timeout=10)
            s.sendall(b"\x03\x00\x00\x05\x00")
            outcome(s)
            s.close()
        print("done")
        return
    if case == "relay":
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(cr(b"Cookie: msts=" + sys.argv[4].encode() + b"\r\n"))
        head = recv_exact(s, 4)
        body = recv_exact(s, struct.unpack(">H", head[2:4])[0] - 4)
        if b"\r\n" not in body:
            print(outcome_of(head + body), flush=True)
            return
        print("relayed " + body[7:body.find(b"\r\n")].decode(errors="replace"), flush=True)
        s.settimeout(30)
        for msg in sys.stdin:
            data = msg.rstrip("\n").encode()
            try:
                s.sendall(data)
                print("echo " + recv_exact(s, len(data)).decode(errors="replace"), flush=True)
            except (OSError, EOFError):
                print("closed", flush=True)
                return
        return
    if case == "hold":
        src = sys.argv[5] if len(sys.argv) > 5 else None
        nxt = sys.argv[6] if len(sys.argv) > 6 else src
        held = [socket.create_connection((host, port), timeout=10,
                                         source_address=(src, 0) if src else None)
                for _ in range(int(sys.argv[4]))]
        time.sleep(0.3)
        s = socket.create_connection((host, port), timeout=10,
                                     source_address=(nxt, 0) if nxt else None)
        t0 = time.time()
        r = outcome(s, 2)
        print("the next one %s" % ("closed at once" if r == "closed" and time.time() - t0 < 1
                                   else "kept"))
        for h in held:
            h.close()
        return
    if case == "held":
        held = []
        for _ in range(int(sys.argv[4])):
            h = socket.create_connection((host, port), timeout=10)
            r = to_login(h)
            if r != "confirm protocol 1":
                print("login %d: %s" % (len(held) + 1, r))
                return
            held.append(h)
        s = socket.create_connection((host, port), timeout=10)
        print(to_login(s))
        for h in held:
            h.close()
        return
    if case == "logins":
        for _ in range(int(sys.argv[4])):
            s = socket.create_connection((host, port), timeout=10)
            r = to_login(s)
            s.close()
            if r != "confirm protocol 1":
                print(r)
                return
        print("done")
        return
    if case == "from":
        s = socket.create_connection((host, port), timeout=10, source_address=(sys.argv[4], 0))
        s.sendall(cr(b"Cookie: msts=" + sys.argv[5].encode() + b"\r\n"))
        print(outcome(s))
        return
    s = socket.create_connection((host, port), timeout=10)
    if case == "tlsjunk":
        r = to_login(s)
        if r != "confirm protocol 1":
            print(r)
            return
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        t = ctx.wrap_socket(s)
        # TPKT + X.224 data + a BER Connect Initial whose length lies
        t.sendall(b"\x03\x00\x00\x20\x02\xf0\x80\x7f\x65\x84\xff\xff\xff\xff" + b"\x41" * 18)
        try:
            t.settimeout(10)
            d = t.recv(4096)
            print("closed" if not d else "answered %r" % d[:20])
        except (OSError, ssl.SSLError):
            print("closed")
        return
    if case == "http":
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    elif case == "tls":
        s.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 160)
    elif case == "truncated":
        s.sendall(cr(b"Cookie: mstshash=a\r\n")[:9])
        t0 = time.time()
        r = outcome(s, 60)
        print("%s after %d s" % (r, round(time.time() - t0)))
        return
    elif case == "lie":
        s.sendall(b"\x03\x00\x00\x06\x02\xe0")
    elif case == "bigcookie":
        line = b"Cookie: msts=" + b"a" * 65000 + b"\r\n"
        s.sendall(b"\x03\x00\xff\xff\xff\xe0\x00\x00\x00\x00\x00" + line[:65535 - 11])
    elif case == "nocrlf":
        s.sendall(cr(b"Cookie: mstshash=alice", neg=False))
    elif case == "noticket":
        print(to_login(s))
        return
    elif case == "rdponly":
        s.sendall(cr(b"Cookie: mstshash=alice\r\n", protocols=0))
    elif case == "notls":
        r = to_login(s)
        if r != "confirm protocol 1":
            print(r)
            return
        s.sendall(b"GET / HTTP/1.1\r\n\r\n" * 100)
    elif case in ("stall", "confirmed"):
        r = to_login(s)
        if case == "confirmed":
            print(r, flush=True)
        t0 = time.time()
        r = outcome(s, 60)
        print("%s after %d s" % (r, round(time.time() - t0)))
        return
    elif case == "forged":
        s.sendall(cr(b"Cookie: msts=" + b"A" * 43 + b"\r\n"))
    else:
        print("unknown case")
        sys.exit(2)
    print(outcome(s))


main()
