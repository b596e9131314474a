"""Headless Chromium for the browser tests, driven by Playwright's sync API.

Playwright cannot download its own browsers here, so :func:`chromium_page` launches Debian's
Chromium (:func:`find_chromium`, by ``executable_path``) and yields one page, 1200x900 at device
scale 1, with no network: every host resolves nowhere, the proxy is a closed port, and a route
aborts any request that is neither a ``file:`` URL nor the one local server a test names. A
:class:`PageLog` records every URL a page asks for and every problem (console errors, CSP
violations among them, and uncaught exceptions). Tests then do what a person would: load the
file, click, read the rendered text, and take a screenshot (:func:`screenshot`), decoded here
(:func:`decode_png`, by Pillow, also used for the PNG files the CLI writes) to check pixels.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pytest
from PIL import Image

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, FloatRect, Page, Route, ViewportSize

BINARIES = ("chromium", "chromium-browser")
VIEWPORT: ViewportSize = {"width": 1200, "height": 900}
# Anything that tries the network fails fast: every host resolves nowhere and the proxy is a
# closed port (loopback bypasses it). Playwright adds the rest (headless, no sandbox, hidden
# scrollbars, no background networking, a fresh profile); it passes the colour profile too, named
# here because the pixel checks rely on it.
FLAGS = (
    "--disable-gpu",
    "--force-color-profile=srgb",  # screenshot pixels are the page's colours, unconverted
    "--proxy-server=http://127.0.0.1:9",
)
NO_HOSTS = "--host-resolver-rules=MAP * ~NOTFOUND"


def find_chromium() -> str:
    """The browser's path; without one the test skips, except in CI (CI=...), where it fails."""
    for name in BINARIES:
        path = shutil.which(name)
        if path:
            return path
    _missing("chromium not found: apt-get install chromium")


def _missing(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the browser tests must run)")
    pytest.skip(reason)


@contextlib.contextmanager
def chromium_page(server: str | None = None, **options: Any) -> Iterator[Page]:
    """One page in a fresh headless Chromium with no network.

    Only ``file:`` URLs load, and those of ``server`` (an origin on 127.0.0.1, such as the
    explore page's) when given; any other request is aborted (and still seen by a
    :class:`PageLog`). ``options`` go to Playwright's ``new_context`` (``accept_downloads``...).
    """
    binary = find_chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright not installed: pip install -e '.[dev]'")
    allowed = ("file:", *([server.rstrip("/") + "/"] if server else []))
    hosts = f"{NO_HOSTS}, EXCLUDE 127.0.0.1" if server else NO_HOSTS

    def local_only(route: Route) -> None:
        if route.request.url.startswith(allowed):
            route.continue_()
        else:
            route.abort("blockedbyclient")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=[*FLAGS, hosts])
        try:
            context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, **options)
            context.route("**/*", local_only)
            yield context.new_page()
        finally:
            browser.close()


class PageLog:
    """What a page did since :meth:`clear`: every URL it asked for (navigations included), and
    its problems (console errors, CSP violations among them, and uncaught exceptions)."""

    def __init__(self, page: Page) -> None:
        self.requests: list[str] = []
        self.problems: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"uncaught: {error}"[:500]))

    def clear(self) -> None:
        self.requests.clear()
        self.problems.clear()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(message.text[:500])


def screenshot(page: Page, clip: FloatRect | None = None) -> np.ndarray:
    """What is on screen (the viewport, or the ``clip`` rectangle in page coordinates, scrolled
    into view or not) as a (height, width, 3) uint8 array."""
    return decode_png(page.screenshot(clip=clip, full_page=clip is not None))


def decode_png(data: bytes) -> np.ndarray:
    """A PNG (a screenshot, or a file the CLI wrote) as a (height, width, 3) uint8 array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))
