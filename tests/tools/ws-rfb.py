#!/usr/bin/python3
"""ws-rfb HOST PORT CASE [TICKET] - a WebSocket client of the gateway's
/ws/vnc, over TLS, written out by hand so that it can also lie.

Cases (one line on stdout each):
  rfb          the RFB handshake noVNC does (RFB 3.8, security None, shared
               ClientInit) -> "serverinit W H NAME", then a whole-screen
               FramebufferUpdateRequest -> "update N rects", or
               "refused REASON" (SecurityResult) and "close CODE REASON"
  hold         the same, then stays connected: "text PAYLOAD" for each text
               frame (a notice from the gateway), "close CODE REASON" or
               "closed" at the end, each line flushed as it comes
  origin URL   the same with Origin: URL -> "http STATUS"
  nokey        no Sec-WebSocket-Key -> "http STATUS"
  version      Sec-WebSocket-Version: 8 -> "http STATUS VERSION-HEADER"
  unmasked     the handshake, then a client frame without a mask
                              -> "close CODE REASON"
  biglen       a frame that says it is 2^62 bytes long -> "close CODE ..."
  rsv          a frame with RSV1 set -> "close CODE ..."
  text         a text frame -> "close CODE ..."
  bigping      a ping of 126 bytes (the 16-bit length form) -> "close CODE ..."
  ping         a ping with a payload -> "pong PAYLOAD"
  truncated    half a frame header, then the end of the connection
                              -> "closed"
Every connection verifies nothing of the server's certificate; it comes
from the address in $WS_SRC when set.
"""
import base64
import os
import socket
import ssl
import struct
import sys

host, port, case = sys.argv[1], int(sys.argv[2]), sys.argv[3]
arg = sys.argv[4] if len(sys.argv) > 4 else ""


def connect():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    src = os.environ.get("WS_SRC")
    s = ctx.wrap_socket(socket.create_connection((host, port), timeout=30,
                                                 source_address=(src, 0) if src else None))
    return s


def http(s, ticket, extra=b"", key=True, version=b"13"):
    req = b"GET /ws/vnc?ticket=%s HTTP/1.1\r\nHost: %s:%d\r\n" % (
        ticket.encode(), host.encode(), port)
    req += b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    if key:
        req += b"Sec-WebSocket-Key: " + base64.b64encode(os.urandom(16)) + b"\r\n"
    req += b"Sec-WebSocket-Version: " + version + b"\r\n" + extra + b"\r\n"
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1]) if lines and lines[0] else 0
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    return status, headers, rest


class Ws:
    def __init__(self, s, rest):
        self.s, self.buf = s, rest

    def frame(self, op, payload, fin=True, mask=True, rsv=0, length=None):
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | rsv | op
        if n < 126:
            hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
            hdr += key
        self.s.sendall(hdr + payload)

    def send(self, data):
        self.frame(2, data)

    def fill(self, n):
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d

    def take(self, n):
        self.fill(n)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def next_frame(self):
        b0, b1 = self.take(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self.take(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self.take(8))
        return b0 & 0x0F, self.take(n)


class Rfb:
    """RFB bytes out of binary frames, whatever their cuts."""

    def __init__(self, ws):
        self.ws, self.data = ws, b""

    def read(self, n):
        while len(self.data) < n:
            op, p = self.ws.next_frame()
            if op == 8:
                code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005
                raise ConnectionAbortedError("close %d %s" % (code, p[2:].decode(errors="replace")))
            if op in (1, 2, 0):
                self.data += p
        out, self.data = self.data[:n], self.data[n:]
        return out


def close_line(ws):
    try:
        while True:
            op, p = ws.next_frame()
            if op == 8:
                code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005
                return "close %d %s" % (code, p[2:].decode(errors="replace"))
    except (EOFError, OSError):
        return "closed"


def hold(ws):
    try:
        while True:
            op, p = ws.next_frame()
            if op == 1:
                print("text " + p.decode(errors="replace"))
            elif op == 8:
                code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005
                print("close %d %s" % (code, p[2:].decode(errors="replace")))
                return
            sys.stdout.flush()
    except (EOFError, OSError):
        print("closed")


def main():
    s = connect()
    if case in ("nokey", "version", "origin"):
        extra = b"Origin: " + arg.encode() + b"\r\n" if case == "origin" else b""
        st, h, _ = http(s, "x" * 43 if case != "origin" else sys.argv[5], extra,
                        key=case != "nokey", version=b"8" if case == "version" else b"13")
        print("http %d%s" % (st, " " + h.get("sec-websocket-version", "") if case == "version" else ""))
        return
    st, h, rest = http(s, arg or "x" * 43)
    if st != 101:
        print("http %d" % st)
        return
    ws = Ws(s, rest)
    if case in ("rfb", "hold"):
        r = Rfb(ws)
        try:
            ver = r.read(12)
            assert ver == b"RFB 003.008\n", ver
            ws.send(b"RFB 003.008\n")
            n = r.read(1)[0]
            types = r.read(n)
            assert types == b"\x01", types
            ws.send(b"\x01")
            (res,) = struct.unpack("!I", r.read(4))
            if res != 0:
                (ln,) = struct.unpack("!I", r.read(4))
                print("refused " + r.read(ln).decode(errors="replace"))
                print(close_line(ws))
                return
            ws.send(b"\x01")  # shared
            w, hgt = struct.unpack("!HH", r.read(4))
            r.read(16)
            (ln,) = struct.unpack("!I", r.read(4))
            name = r.read(ln).decode(errors="replace")
            print("serverinit %d %d %s" % (w, hgt, name))
            sys.stdout.flush()
            # SetEncodings raw, then a whole-screen update request.
            ws.send(struct.pack("!BBHi", 2, 0, 1, 0))
            ws.send(struct.pack("!BBHHHH", 3, 0, 0, 0, w, hgt))
            while True:
                t = r.read(1)[0]
                if t == 0:
                    _, nrects = struct.unpack("!BH", r.read(3))
                    print("update %d rects" % nrects)
                    sys.stdout.flush()
                    if case == "hold":
                        hold(ws)
                    return
                if t == 2:  # bell
                    continue
                if t == 3:  # cut text
                    r.read(3)
                    (ln,) = struct.unpack("!I", r.read(4))
                    r.read(ln)
                    continue
                print("unexpected message %d" % t)
                return
        except ConnectionAbortedError as e:
            print(str(e))
        except EOFError:
            print("closed")
        return
    if case == "unmasked":
        ws.frame(2, b"RFB 003.008\n", mask=False)
    elif case == "biglen":
        ws.frame(2, b"", length=1 << 62)
    elif case == "rsv":
        ws.frame(2, b"RFB 003.008\n", rsv=0x40)
    elif case == "text":
        ws.frame(1, b"RFB 003.008\n")
    elif case == "bigping":
        ws.frame(9, b"p" * 126)
    elif case == "ping":
        ws.frame(9, b"hello")
        while True:
            op, p = ws.next_frame()
            if op == 10:
                print("pong " + p.decode())
                return
    elif case == "truncated":
        s.sendall(b"\x82\xfe\x01")
        # TCP's half-close under the TLS: ssl.SSLSocket.shutdown would drop
        # the TLS object too, and what the server sends after it would be
        # read as raw TLS records (a random "close" frame, now and then)
        socket.socket.shutdown(s, socket.SHUT_WR)
    print(close_line(ws))


main()
