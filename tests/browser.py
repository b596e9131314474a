"""Headless Chromium for the browser tests, driven over the DevTools protocol with the standard
library only.

Chromium is started with ``--remote-debugging-pipe``: it reads protocol commands (JSON, each
ended by a NUL byte) from file descriptor 3 and writes replies and events to descriptor 4. That
needs no port, no websocket and no package: a shell puts the two pipe ends on 3 and 4 and execs
the browser. Tests then do what a person would: load the file, click, read the rendered text,
and take a screenshot, decoded here (:func:`decode_png`) to check pixels.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

BINARIES = ("chromium", "chromium-browser")
TIMEOUT_S = 20.0  # for any one protocol reply; a page here loads in well under a second
WINDOW = (1200, 900)
# Anything that tries the network fails fast: every host resolves nowhere and the proxy is a
# closed port. The tests also record every request the page makes.
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # tests often run as root, where the sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--hide-scrollbars",
    "--force-color-profile=srgb",  # screenshot pixels are the page's colours, unconverted
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)


def find_chromium() -> str:
    """The browser's path; without one the test skips, except in CI (CI=...), where it fails."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    reason = "chromium not found: apt-get install chromium"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser tests must run)")
    pytest.skip(reason)


# Run by the child: put the two pipe ends on descriptors 3 and 4, then become the browser.
_ON_FDS_3_AND_4 = (
    "import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
    "os.execvp(sys.argv[3], sys.argv[3:])"
)


class ProtocolError(RuntimeError):
    pass


class Browser:
    """One Chromium process and one page (tab) in it."""

    def __init__(self, binary: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="tinygpt-chromium-")
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        # The browser's ends, moved to 10 and up so that putting them on 3 and 4 in the child
        # cannot overwrite one with the other.
        ends = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (to_browser, from_browser)]
        os.close(to_browser)
        os.close(from_browser)
        self.log = Path(self.profile) / "stderr.txt"
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-c", _ON_FDS_3_AND_4, *map(str, ends), binary, *FLAGS),
                    *(f"--user-data-dir={self.profile}", "--remote-debugging-pipe", "about:blank"),
                ],
                pass_fds=ends,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        for fd in ends:
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        try:
            self._start_page()
        except BaseException:
            self.close()  # no stray browser or profile when it fails to start
            raise

    def _start_page(self) -> None:
        target = self.call("Target.createTarget", url="about:blank", session=False)["targetId"]
        self.session = self.call(
            "Target.attachToTarget", targetId=target, flatten=True, session=False
        )["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=WINDOW[0],
            height=WINDOW[1],
            deviceScaleFactor=1,
            mobile=False,
        )

    # -- the protocol ------------------------------------------------------------------------
    def call(self, method: str, session: bool = True, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply; events that arrive meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session and self.session:
            message["sessionId"] = self.session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ProtocolError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError(f"chromium did not answer in {TIMEOUT_S}s; see {self.log}")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise ProtocolError(f"chromium exited: {self.log.read_text()[-2000:]}")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def wait_for(self, method: str) -> dict[str, Any]:
        """The next event ``method`` (already received or still to come)."""
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._receive())

    # -- what a person does ------------------------------------------------------------------
    def open(self, path: Path) -> None:
        """Load a file and wait until it has loaded (its scripts have run by then)."""
        self.events.clear()
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression evaluated in the page."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, x: float, y: float) -> None:
        """A real mouse click at page coordinates (CSS pixels)."""
        view_y = self._scroll_to(y)
        for kind in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent", type=kind, x=x, y=view_y, button="left", clickCount=1
            )

    def hover(self, x: float, y: float) -> None:
        """The mouse moved to page coordinates (CSS pixels)."""
        self.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=self._scroll_to(y))

    def _scroll_to(self, y: float) -> float:
        """Scroll so page coordinate ``y`` is in view; returns it in viewport coordinates."""
        self.js(f"window.scrollTo(0, {max(0.0, y - 100)})")
        return y - self.js("window.scrollY")

    def screenshot(self, clip: dict[str, float] | None = None) -> np.ndarray:
        """What is on screen (the whole page, or the ``clip`` rectangle in page coordinates)
        as a (height, width, 3) uint8 array."""
        # optimizeForSpeed: Chromium then writes every row with the "Up" filter, which decodes
        # fast here (other filters decode too, byte by byte).
        params: dict[str, Any] = {
            "format": "png",
            "captureBeyondViewport": True,
            "optimizeForSpeed": True,
        }
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
        data = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        return decode_png(data)

    def requests(self) -> list[str]:
        """Every URL the page asked for since it was opened."""
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def problems(self) -> list[str]:
        """Uncaught exceptions and console errors (CSP violations among them)."""
        out = []
        for e in self.events:
            if e.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(e["params"]["exceptionDetails"])[:500])
            elif e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error":
                out.append(e["params"]["entry"]["text"])
            elif e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error":
                out.append(json.dumps(e["params"]["args"])[:500])
        return out

    def close(self) -> None:
        with contextlib.suppress(ProtocolError, TimeoutError, OSError):
            self.call("Browser.close", session=False)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._read)
        os.close(self._write)
        shutil.rmtree(self.profile, ignore_errors=True)


def decode_png(data: bytes) -> np.ndarray:
    """An 8-bit RGB or RGBA PNG (what Chromium writes) as a (height, width, 3) uint8 array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
            depth, colour, interlace = body[8], body[9], body[12]
            assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG format"
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    bpp = 3 if colour == 2 else 4
    stride = width * bpp
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), np.uint8)
    prev = [0] * stride
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:]
        if kind == 0:
            row = line.tolist()
        elif kind == 1:  # Sub: a running sum per channel
            row = (np.cumsum(line.reshape(width, bpp), axis=0, dtype=np.int64) & 255).tolist()
            row = [v for pixel in row for v in pixel]
        elif kind == 2:  # Up
            row = ((line.astype(np.int32) + prev) & 255).tolist()
        else:  # Average or Paeth depend on the byte just decoded: one at a time
            row, line = [0] * stride, line.tolist()
            for x in range(stride):
                a, b = (row[x - bpp], prev[x]) if x >= bpp else (0, prev[x])
                if kind == 3:
                    row[x] = (line[x] + (a + b) // 2) & 255
                    continue
                c = prev[x - bpp] if x >= bpp else 0
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[x] = (line[x] + pred) & 255
        out[y] = row
        prev = row
    return out.reshape(height, width, bpp)[:, :, :3]
