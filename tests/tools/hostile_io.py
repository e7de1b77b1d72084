"""What the hostile-client tools (rdp-hostile.py, rfb-hostile.py) share."""


def recv_exact(s, n):
    """N bytes from socket S; EOFError if the peer closes first."""
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b
