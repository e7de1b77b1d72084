#!/usr/bin/env python3
"""xwd-painted FILE - the number of pixels that are not black in an xwd
dump of a 24/32-bit screen (xwd -root), the screen's size and the size of
the box around them:
  size=WxH box=WxH painted=N"""
import struct, sys

data = open(sys.argv[1], "rb").read()
hdr = struct.unpack(">25I", data[:100])
header_size, width, height = hdr[0], hdr[4], hdr[5]
bits_per_pixel, bytes_per_line, ncolors = hdr[11], hdr[12], hdr[19]
if bits_per_pixel != 32:
    sys.exit("xwd-painted: %d bits per pixel, want 32" % bits_per_pixel)
off = header_size + ncolors * 12
painted = 0
x0, y0, x1, y1 = width, height, -1, -1
for y in range(height):
    row = data[off + y * bytes_per_line: off + y * bytes_per_line + width * 4]
    for x in range(0, len(row), 4):
        if row[x:x + 3] != b"\0\0\0":
            painted += 1
            x0, x1 = min(x0, x // 4), max(x1, x // 4)
            y0, y1 = min(y0, y), max(y1, y)
print("size=%dx%d box=%dx%d painted=%d"
      % (width, height, max(0, x1 - x0 + 1), max(0, y1 - y0 + 1), painted))
