"""README.md is a front door: short, and every page under docs/ is reachable from it by a link
that works."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT
from tests.docs import DOCS, README, links, pages


def _anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as
    hyphens, a repeated heading numbered -1, -2, ..."""
    seen: dict[str, int] = {}
    anchors = set()
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)
    for heading in re.findall(r"^#{1,6} (.+?)\s*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def _headings(file: Path, anchor: str) -> set[str]:
    """The anchors of a Markdown file's headings; with no anchor asked for, the empty one."""
    return _anchors(file.read_text(encoding="utf-8")) if anchor else {""}


def test_the_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 350, f"README.md has {lines} lines: move reference material to docs/"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {
        (ROOT / target.split("#", 1)[0]).resolve()
        for target in links(README.read_text(encoding="utf-8"))
    }
    unlinked = [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked]
    assert not unlinked, f"docs pages README.md does not link: {unlinked}"


def test_every_docs_page_starts_with_a_one_line_title() -> None:
    for path, text in pages()[1:]:
        first, second = [*text.splitlines(), "", ""][:2]
        assert first.startswith("# ") and not second.strip(), f"{path.name}: {first!r}"


def test_every_relative_link_points_at_a_file_that_exists() -> None:
    broken = []
    for path, text in pages():
        for target in links(text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto: ...: not a file of this repository
            name, _, anchor = target.partition("#")
            file = (path.parent / name).resolve() if name else path
            where = f"{path.relative_to(ROOT)} -> {target}"
            if not file.is_file():
                broken.append(f"{where} (no such file)")
            elif file.suffix == ".md" and anchor not in _headings(file, anchor):
                broken.append(f"{where} (no such heading)")
    assert not broken, broken
