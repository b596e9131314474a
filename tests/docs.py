"""README.md and the pages under docs/, read as a reader follows them.

README.md is the front door; the reference material and walkthroughs live in docs/*.md, each
linked from it. Tests that check what the documentation says read ``pages()``: README.md first,
then each docs page in the order README.md first links it (any page it does not link comes last,
and tests/test_docs.py fails on it).
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"

_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def links(text: str) -> list[str]:
    """The targets of a Markdown text's links and images, outside fenced code blocks."""
    return _LINK.findall(_FENCE.sub("", text))


def pages() -> list[tuple[Path, str]]:
    """(path, text) of README.md, then of the docs pages in the order README.md links them."""
    readme = README.read_text(encoding="utf-8")
    order: list[Path] = []
    for target in links(readme):
        path = (ROOT / target.split("#", 1)[0]).resolve()
        if path.parent == DOCS and path.suffix == ".md" and path not in order:
            order.append(path)
    order += [p for p in sorted(DOCS.glob("*.md")) if p.resolve() not in order]
    return [(README, readme)] + [(p, p.read_text(encoding="utf-8")) for p in order]


def documentation() -> str:
    """README.md and every docs page as one text, in the order of ``pages()``."""
    return "\n\n".join(text for _, text in pages())
