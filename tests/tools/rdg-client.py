#!/usr/bin/python3
"""rdg-client HOST PORT TRANSPORT CASE [TICKET [TARGET]] - an RD Gateway
client of the gateway's /remoteDesktopGateway/, written out by hand (the
wire as docs/rdg.md has it from xfreerdp 2.11) so that it can also lie.

TRANSPORT is ws (one connection, RDG_OUT_DATA with an Upgrade) or legacy
(RDG_OUT_DATA, then two RDG_IN_DATA, the second chunked).  Each packet the
gateway sends is printed as a line: "HANDSHAKE_RESPONSE 0",
"TUNNEL_RESPONSE 0", "CHANNEL_RESPONSE 800759da", "SERVICE_MESSAGE text",
"CLOSE_CHANNEL 800759f8", "DATA n"; then "closed" when the gateway ends the
connection, or "http STATUS" for an HTTP refusal.

Cases:
  tunnel      the whole conversation with TICKET as the PAA cookie and a
              channel to TARGET (host:port), then an X.224 Connection
              Request as DATA; prints what comes back (an RDP server's
              Connection Confirm as "DATA 19")
  keepalive   "tunnel", then the next packet the gateway sends while the
              client is quiet (KEEPALIVE, with [gateway] rdg_keepalive)
  notoken     the same without a cookie (and without PAA in the handshake)
  order       CHANNEL_CREATE right after the handshake
  twice       TUNNEL_CREATE twice
  badlen      a packet whose length says 3
  hugectl     a TUNNEL_CREATE that says it is 1 MiB long
  unknown     a packet of type 0x77
  earlydata   DATA right after the handshake
  badutf16    a TUNNEL_CREATE whose cookie has an odd byte count
  inonly      legacy only: RDG_IN_DATA for a connection id nobody opened
  badchunk    legacy only: a chunk size that is not hexadecimal
$RDG_NAME, when set, is the resource name CHANNEL_CREATE gives instead of
TARGET's host.  The connection comes from $RDG_SRC when set (a legacy IN connection from
$RDG_IN_SRC when that is set).  Nothing of the gateway's
certificate is verified.
"""
import base64
import os
import socket
import ssl
import struct
import sys
import uuid

host, port, transport, case = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ticket = sys.argv[5] if len(sys.argv) > 5 else ""
target = sys.argv[6] if len(sys.argv) > 6 else "127.0.0.1:3389"
conn_id = "{%s}" % uuid.uuid4()
NAMES = {2: "HANDSHAKE_RESPONSE", 5: "TUNNEL_RESPONSE", 7: "TUNNEL_AUTH_RESPONSE",
         9: "CHANNEL_RESPONSE", 0xa: "DATA", 0xb: "SERVICE_MESSAGE", 0xd: "KEEPALIVE",
         0x10: "CLOSE_CHANNEL", 0x11: "CLOSE_CHANNEL_RESPONSE"}


def connect(src=None):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    src = src or os.environ.get("RDG_SRC")
    s = socket.create_connection((host, port), timeout=20,
                                 source_address=(src, 0) if src else None)
    return ctx.wrap_socket(s)


def request(s, method, extra=b""):
    s.sendall(b"%s /remoteDesktopGateway/ HTTP/1.1\r\nHost: %s\r\nCache-Control: no-cache\r\n"
              b"RDG-Connection-Id: %s\r\n%s%s\r\n" % (
                  method, host.encode(), conn_id.encode(),
                  b"RDG-Auth-Scheme: PAA\r\n" if case != "notoken" else b"", extra))


def response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(1)
        if not d:
            return None, b""
        buf += d
    status = int(buf.split(b"\r\n")[0].split()[1])
    length = 0
    for l in buf.split(b"\r\n")[1:]:
        k, _, v = l.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    body = b""
    while len(body) < length:
        body += s.recv(length - len(body))
    return status, body


def pkt(t, body):
    return struct.pack("<HHI", t, 0, 8 + len(body)) + body


def u16(text, nul=True):
    return text.encode("utf-16-le") + (b"\0\0" if nul else b"")


def handshake():
    return pkt(1, struct.pack("<BBHH", 1, 0, 0, 0 if case == "notoken" else 2))


def tunnel_create(cookie=None):
    if cookie is None:
        return pkt(4, struct.pack("<IHH", 0x0d, 0, 0))
    return pkt(4, struct.pack("<IHH", 0x0d, 1, 0) + struct.pack("<H", len(cookie)) + cookie)


def tunnel_auth():
    name = u16("TESTCLIENT")
    return pkt(6, struct.pack("<HH", 0, len(name)) + name)


def channel_create():
    h, _, p = target.rpartition(":")
    name = u16(os.environ.get("RDG_NAME", h))
    return pkt(8, struct.pack("<BBHH", 1, 0, int(p), 3) + struct.pack("<H", len(name)) + name)


def data(payload):
    return pkt(0xa, struct.pack("<H", len(payload)) + payload)


X224_CR = bytes.fromhex("030000130ee00000000000" "0100080003000000")


class Ws:
    def __init__(self, s, rest=b""):
        self.s, self.buf = s, rest

    def send(self, payload):
        key = os.urandom(4)
        n = len(payload)
        hdr = struct.pack("!BB", 0x82, 0x80 | n) if n < 126 else (
            struct.pack("!BBH", 0x82, 0x80 | 126, n) if n < 65536 else struct.pack("!BBQ", 0x82, 0x80 | 127, n))
        self.s.sendall(hdr + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload)))

    def recv(self):
        """payload bytes of the next data frame; b"" at the end"""
        while True:
            h = self.take(2)
            if h is None:
                return b""
            n = h[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", self.take(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self.take(8))[0]
            p = self.take(n) or b""
            if h[0] & 0x0F == 8:
                return b""
            if h[0] & 0x0F in (0, 1, 2):
                return p

    def take(self, n):
        while len(self.buf) < n:
            try:
                d = self.s.recv(65536)
            except (OSError, ssl.SSLError):
                d = b""
            if not d:
                return None
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


class Legacy:
    def __init__(self, out, inn):
        self.out, self.inn = out, inn

    def send(self, payload, size=None):
        self.inn.sendall(b"%s\r\n%s\r\n" % (size or b"%x" % len(payload), payload))

    def recv(self):
        try:
            return self.out.recv(65536)
        except (OSError, ssl.SSLError):
            return b""


def open_transport():
    s = connect()
    if transport == "ws":
        key = base64.b64encode(os.urandom(11))[:15].replace(b"+", b"A").replace(b"/", b"B")
        request(s, b"RDG_OUT_DATA", b"Connection: Upgrade\r\nUpgrade: websocket\r\n"
                b"Sec-Websocket-Version: 13\r\nSec-Websocket-Key: " + key + b"\r\nContent-Length: 0\r\n")
        st, _ = response(s)
        if st != 101:
            print("http %s" % st)
            sys.exit(0)
        return Ws(s)
    request(s, b"RDG_OUT_DATA", b"Content-Length: 0\r\n")
    st, _ = response(s)
    if st != 200:
        print("http %s" % st)
        sys.exit(0)
    seed = b""
    while len(seed) < 10:
        seed += s.recv(10 - len(seed))
    i = connect(os.environ.get("RDG_IN_SRC"))
    request(i, b"RDG_IN_DATA", b"Content-Length: 0\r\n")
    st, _ = response(i)
    if st != 200:
        print("http %s" % st)
        sys.exit(0)
    request(i, b"RDG_IN_DATA", b"Transfer-Encoding: chunked\r\n")
    return Legacy(s, i)


pending = b""


def read_packets(t, one=False):
    """print the gateway's packets: one, or up to a DATA, a CLOSE_CHANNEL or the end"""
    global pending
    buf = pending
    while True:
        if len(buf) < 8 or len(buf) < struct.unpack("<HHI", buf[:8])[2]:
            d = t.recv()
            if not d:
                print("closed")
                return
            buf += d
        while len(buf) >= 8:
            typ, _, n = struct.unpack("<HHI", buf[:8])
            if len(buf) < n:
                break
            body, buf = buf[8:n], buf[n:]
            name = NAMES.get(typ, "type-%x" % typ)
            if typ == 0xa:
                print("DATA %d" % struct.unpack("<H", body[:2])[0])
                sys.stdout.flush()
                pending = buf
                return
            if typ == 0xb:
                (ln,) = struct.unpack("<H", body[:2])
                print("SERVICE_MESSAGE " + body[2:2 + ln].decode("utf-16-le").rstrip("\0"))
            elif typ == 5:
                print("%s %x" % (name, struct.unpack("<I", body[2:6])[0]))
            elif typ in (2, 7, 9, 0x10, 0x11):
                print("%s %x" % (name, struct.unpack("<I", body[:4])[0]))
            else:
                print(name)
            sys.stdout.flush()
            if typ == 0x10 or one:
                pending = buf
                return


def main():
    if case == "inonly":
        s = connect()
        request(s, b"RDG_IN_DATA", b"Content-Length: 0\r\n")
        print("http %s" % response(s)[0])
        return
    t = open_transport()
    cookie = u16(ticket)
    steps = {
        "tunnel": [handshake(), tunnel_create(cookie), tunnel_auth(), channel_create(), data(X224_CR)],
        "keepalive": [handshake(), tunnel_create(cookie), tunnel_auth(), channel_create(), data(X224_CR)],
        "notoken": [handshake(), tunnel_create(None), tunnel_auth(), channel_create()],
        "order": [handshake(), channel_create()],
        "twice": [handshake(), tunnel_create(cookie), tunnel_create(cookie)],
        "badlen": [handshake(), struct.pack("<HHI", 4, 0, 3)],
        "hugectl": [handshake(), struct.pack("<HHI", 4, 0, 1 << 20) + b"\0" * 64],
        "unknown": [handshake(), pkt(0x77, b"\0" * 8)],
        "earlydata": [handshake(), data(X224_CR)],
        "badutf16": [handshake(), pkt(4, struct.pack("<IHH", 0x0d, 1, 0) + struct.pack("<H", 5) + b"abcde")],
        "badchunk": [handshake()],
    }[case]
    # A real client waits for each answer; the hostile cases do not.
    polite = case in ("tunnel", "notoken", "keepalive")
    for i, p in enumerate(steps):
        t.send(p)
        if polite and i < len(steps) - 1:
            read_packets(t, one=True)
    if case == "badchunk":
        t.inn.sendall(b"zz\r\nxx\r\n")
    read_packets(t)
    if case in ("tunnel",):
        return
    if case == "keepalive":
        read_packets(t, one=True)
        return
    # what else comes until the end
    read_packets(t)


main()
