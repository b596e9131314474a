"""PNG figures with the standard library: RGB pixels, zlib, three chunks."""

from __future__ import annotations

import struct
import zlib


class Canvas:
    """A white RGB image to draw cells, lines and bitmap-font text on."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(b"\xff" * (3 * width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: tuple[int, int, int]) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            start = 3 * (yy * self.width + x0)
            self.pixels[start : start + len(row)] = row

    def line(
        self, a: tuple[int, int], b: tuple[int, int], color: tuple[int, int, int], width: int = 2
    ) -> None:
        steps = max(abs(b[0] - a[0]), abs(b[1] - a[1]), 1)
        for i in range(steps + 1):
            x = round(a[0] + (b[0] - a[0]) * i / steps)
            y = round(a[1] + (b[1] - a[1]) * i / steps)
            self.rect(x, y, width, width, color)

    def text(self, x: int, y: int, text: str, color: tuple[int, int, int] = (0, 0, 0)) -> None:
        from tinygpt.views.font import WIDTH, glyph

        for k, ch in enumerate(text):
            for row, bits in enumerate(glyph(ch)):
                for col in range(WIDTH):
                    if bits >> (WIDTH - 1 - col) & 1:
                        self.rect(x + k * WIDTH + col, y + row, 1, 1, color)

    def png(self) -> bytes:
        stride = 3 * self.width
        # Each row is prefixed with filter type 0 (none).
        rows = (self.pixels[y * stride : (y + 1) * stride] for y in range(self.height))
        raw = b"".join(b"\x00" + row for row in rows)

        def chunk(kind: bytes, data: bytes) -> bytes:
            crc = zlib.crc32(kind + data) & 0xFFFFFFFF
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )
