#!/usr/bin/python3
"""https-hostile HOST PORT - clients of Portico's HTTPS servers that hold
connections, trickle bytes or send what no client should.

Commands come one per line on stdin; each prints one line on stdout:

  open NAME tcp SRC            a TCP connection from address SRC that sends
                               nothing                 -> "NAME open|closed"
  open NAME half SRC           the first half of a real TLS ClientHello, then
                               nothing (a half-open TLS connection)
                                                       -> "NAME open|closed"
  open NAME idle SRC PATH [TOKEN]
                               TLS, GET PATH (with "Authorization: Bearer
                               TOKEN"), the answer read, the connection kept
                               alive and idle           -> "NAME STATUS" or
                                                          "NAME closed"
  check NAME...                whether each is still open
                                                       -> "NAME open|closed ..."
  close NAME...                close them               -> "closed"
  garbage SRC                  plain bytes that are not TLS
                                                       -> "closed after S s"
  notls SRC                    TLS, then bytes that are not HTTP
                                                       -> "closed after S s"
  bigheader SRC                TLS, a request with 20 KiB of headers
                                                       -> "STATUS, closed after S s"
  slowloris SRC                TLS, a request trickled one byte every 0.2 s
                                                       -> "STATUS, closed after S s"
  pipeline SRC N               TLS, N requests for unknown paths sent in one go
                               (read meanwhile)   -> "N answers in order" or
                                                     what went wrong
  truncated SRC                half a ClientHello, then silence
                                                       -> "closed after S s"
  midrecord SRC                TLS, then the header of a 16 KiB record and 10
                                                       bytes of it, then silence
                                                       -> "closed after S s"
  quit

"open" decides open or closed by waiting up to 0.5 s for the server to
close (a refusal at accept closes at once).  Nothing is verified about the
server's certificate: these are hostile clients.
"""
import re
import select
import socket
import ssl
import sys
import threading
import time

HOST, PORT = sys.argv[1], int(sys.argv[2])
conns = {}


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def dial(src):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src, 0))
    s.settimeout(10)
    s.connect((HOST, PORT))
    return s


class Tls:
    """TLS over a socket we keep hold of (raw bytes can still be sent)."""

    def __init__(self, sock):
        self.sock = sock
        self.inb, self.outb = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx().wrap_bio(self.inb, self.outb, server_side=False)
        self.buf, self.eof = b"", False

    def flush(self):
        data = self.outb.read()
        if data:
            self.sock.sendall(data)

    def fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError
        self.inb.write(d)

    def handshake(self):
        while True:
            try:
                self.obj.do_handshake()
                self.flush()
                return
            except ssl.SSLWantReadError:
                self.flush()
                self.fill()

    def send(self, data):
        self.obj.write(data)
        self.flush()

    def answered(self, secs):
        """True once application data or the end arrived (not counting
        TLS 1.3 tickets), within secs."""
        if self.buf or self.eof:
            return True
        if not select.select([self.sock], [], [], secs)[0]:
            return False
        d = self.sock.recv(65536)
        if not d:
            self.eof = True
            return True
        self.inb.write(d)
        try:
            d = self.obj.read(65536)
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError:
            d = b""
        if d:
            self.buf += d
        else:
            self.eof = True
        return True

    def recv(self):
        if self.buf or self.eof:
            d, self.buf = self.buf, b""
            return d
        while True:
            try:
                return self.obj.read(65536)
            except ssl.SSLWantReadError:
                try:
                    self.fill()
                except (EOFError, OSError):
                    return b""
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""


def client_hello():
    t = Tls(socket.socket())
    try:
        t.obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return t.outb.read()


def closed_within(sock, secs):
    """True when the server closes (EOF or reset) within secs."""
    sock.settimeout(secs)
    try:
        while True:
            d = sock.recv(65536, socket.MSG_PEEK)
            if not d:
                return True
            sock.recv(len(d))  # TLS records (a ticket, an alert): skip
    except socket.timeout:
        return False
    except OSError:
        return True


def wait_closed(sock, start, limit=60):
    if closed_within(sock, limit):
        return "closed after %.1f s" % (time.time() - start)
    return "still open after %d s" % limit


def read_status(t):
    """The status of one HTTP answer, the whole answer read."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = t.recv()
        if not d:
            return None
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(body) < length:
        d = t.recv()
        if not d:
            break
        body += d
    return status


def request(path, token=None, extra=b""):
    r = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: portico\r\n"
    if token:
        r += b"Authorization: Bearer " + token.encode() + b"\r\n"
    return r + extra + b"\r\n"


def cmd_open(name, kind, src, *args):
    try:
        s = dial(src)
    except OSError as e:
        return "%s closed (%s)" % (name, e)
    if kind == "tcp":
        pass
    elif kind == "half":
        h = client_hello()
        s.sendall(h[: len(h) // 2])
    elif kind == "idle":
        t = Tls(s)
        try:
            t.handshake()
            t.send(request(args[0], args[1] if len(args) > 1 else None))
            status = read_status(t)
        except (OSError, EOFError, ssl.SSLError):
            status = None
        if status is None:
            s.close()
            return "%s closed" % name
        conns[name] = s
        return "%s %d" % (name, status)
    if closed_within(s, 0.5):
        s.close()
        return "%s closed" % name
    conns[name] = s
    return "%s open" % name


def cmd_check(*names):
    out = []
    for n in names:
        s = conns.get(n)
        out.append("%s %s" % (n, "closed" if s is None or closed_within(s, 0.2) else "open"))
    return " ".join(out)


def cmd_close(*names):
    for n in names:
        s = conns.pop(n, None)
        if s:
            s.close()
    return "closed"


def tls_to(src):
    s = dial(src)
    t = Tls(s)
    t.handshake()
    return s, t


def hostile(case, src, arg=None):
    start = time.time()
    if case == "garbage":
        s = dial(src)
        s.sendall(b"\x00\xffGET / HTTP/1.1\r\n\r\n" * 10)
        return wait_closed(s, start)
    if case == "truncated":
        s = dial(src)
        h = client_hello()
        s.sendall(h[: len(h) // 2])
        return wait_closed(s, start)
    s, t = tls_to(src)
    if case == "notls":
        t.send(b"\x00\x01\x02 this is not HTTP\r\n\r\n")
        return wait_closed(s, start)
    if case == "midrecord":
        s.sendall(b"\x17\x03\x03\x40\x00" + b"0123456789")
        return wait_closed(s, start)
    if case == "bigheader":
        t.send(request("/api/v1/resources", None, b"X-Junk: " + b"b" * 20000 + b"\r\n"))
        status = read_status(t)
    elif case == "slowloris":
        for ch in request("/api/v1/resources", None, b"X-Slow: " + b"s" * 200 + b"\r\n"):
            if t.answered(0.2):
                break
            try:
                t.send(bytes([ch]))
            except OSError:
                break
        try:
            status = read_status(t)
        except (OSError, EOFError, ssl.SSLError, ValueError, IndexError):
            status = None
    elif case == "pipeline":
        return pipeline(s, t, int(arg))
    else:
        return "unknown case " + case
    return "%s, %s" % (status, wait_closed(s, start))


def pipeline(s, t, n):
    """n requests in one go, sent by a thread while the answers are read
    (the server stops reading while its answers wait)."""
    reqs = b"".join(b"GET /api/v1/nope-%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(n))
    lock = threading.Lock()

    def send():
        for i in range(0, len(reqs), 16384):
            with lock:
                t.obj.write(reqs[i : i + 16384])
                data = t.outb.read()
            s.sendall(data)

    th = threading.Thread(target=send)
    th.start()
    buf, got = b"", 0
    s.settimeout(60)
    while got < n:
        r = select.select([s], [], [], 60)[0]
        if not r:
            break
        d = s.recv(65536)
        if not d:
            break
        with lock:
            t.inb.write(d)
            while True:
                try:
                    buf += t.obj.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLError:
                    d = b""
                    break
        end = 0
        for m in re.finditer(rb'no such API path: /api/v1/nope-(\d+)"', buf):
            if int(m.group(1)) != got:
                return "answer %d was for request %s" % (got, m.group(1).decode())
            got += 1
            end = m.end()
        buf = buf[end:]
        if not d:
            break
    th.join()
    return "%d answers in order" % got if got == n else "%d answers of %d" % (got, n)


def main():
    for line in sys.stdin:
        w = line.split()
        if not w:
            continue
        if w[0] == "quit":
            break
        try:
            if w[0] == "open":
                out = cmd_open(*w[1:])
            elif w[0] == "check":
                out = cmd_check(*w[1:])
            elif w[0] == "close":
                out = cmd_close(*w[1:])
            else:
                out = hostile(w[0], w[1], *w[2:])
        except Exception as e:  # one line the test can show
            out = "error: %r" % (e,)
        print(out, flush=True)


main()
