"""The two terminals tinygpt writes to: stdout for data and tables, stderr for everything else."""

from __future__ import annotations

import contextlib
import re
import shlex
import sys
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console

# C0 controls, DEL and the C1 controls: the bytes a terminal acts on instead of showing.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# The same, but a model's text keeps its line breaks and tabs.
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Lone surrogates: how Python spells a file name's bytes that are not UTF-8 (b"\xff").
_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """``text`` with every control character escaped (``\\x1b``, ``\\n``): a name or path read
    from a file could otherwise retitle, clear or rewrite the user's terminal. A file name's
    bytes that are not UTF-8 become U+FFFD, so the text can be encoded (terminal, SVG, HTML)."""
    return _escaped(text, _CONTROL)


def shell_word(value: object) -> str:
    """``value`` as a shell reads it back in a command to copy (``'my run'``, ``'g*.txt'``),
    printable."""
    return shlex.quote(printable(str(value)))


def _escaped(text: str, control: re.Pattern[str]) -> str:
    return control.sub(lambda m: repr(m.group())[1:-1], _SURROGATE.sub("\ufffd", text))


def for_terminal(text: str, stream: TextIO) -> str:
    """A model's text for ``stream``: on a terminal, control characters but newline and tab
    escaped (a token ``\x1b]0;...`` would retitle the screen); to a pipe or a file, as it is."""
    if not stream.isatty():
        return text
    return _escaped(text, _CONTROL_IN_TEXT)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def stdout_console() -> Console:
    if sys.stdout.isatty():
        return Console(highlight=False)
    # Piped or redirected: rich pads every line of a table to its width; a file or a diff
    # should not carry those trailing spaces.
    return Console(highlight=False, file=TrimmedLines(sys.stdout))


class TrimmedLines:
    """A text stream that drops the spaces at the end of each line written through it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.pending = ""  # spaces at the end of the last write: kept until its line goes on

    def write(self, text: str) -> int:
        lines = (self.pending + text).split("\n")
        last = lines.pop()
        kept = last.rstrip(" ")
        self.pending = last[len(kept) :]
        self.stream.write("".join(line.rstrip(" ") + "\n" for line in lines) + kept)
        return len(text)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self.stream, name)


# Who hears which checkpoint was picked when the caller named none (the CLI says it on stderr,
# since a newer run silently answering is the surprise). A context variable, so the library
# stays quiet for Python callers and no command has to thread it through.
_on_pick: ContextVar[Callable[[Path], None] | None] = ContextVar("tinygpt_on_pick", default=None)


@contextlib.contextmanager
def announce_picked(callback: Callable[[Path], None]) -> Iterator[None]:
    """Inside the block, :func:`tell_picked` passes a picked checkpoint's path to ``callback``."""
    token = _on_pick.set(callback)
    try:
        yield
    finally:
        _on_pick.reset(token)


def tell_picked(path: Path) -> None:
    callback = _on_pick.get()
    if callback is not None:
        callback(path)
