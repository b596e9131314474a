"""Self-contained HTML pages: data as JSON in a script block, a Content Security Policy that
names the page's own style and script by hash, nothing fetched."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from tinygpt.io.json_text import json_text


def sha256_b64(text: str) -> str:
    """The CSP hash of an inline style or script."""
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def csp(style: str, script: str | None = None) -> str:
    """Only this style and script may apply, and nothing may be fetched: even text that became
    markup could neither run nor phone home."""
    scripts = f"'sha256-{sha256_b64(script)}'" if script is not None else "'none'"
    return f"default-src 'none'; script-src {scripts}; style-src 'sha256-{sha256_b64(style)}'"


def json_for_script(data: Any) -> str:
    """JSON safe inside ``<script type="application/json">``: "</script>" or "<!--" in a token
    would end or confuse the block."""
    text = json_text(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
