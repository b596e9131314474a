"""How a message names an option: ``--out DIR`` on the command line, ``out_dir=...`` in Python.

The library raises the same errors for both callers, so each message spells its options through
:func:`option`. Python's spelling is the default; the CLI runs every command inside
:func:`cli_spelling`. The choice is a context variable rather than an argument threaded through
every config check, lock and loader, and it is reset when the command returns.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import PurePath


class Spelling(enum.Enum):
    CLI = "cli"
    PYTHON = "python"


@dataclass(frozen=True)
class Option:
    """One option's two spellings. A ``switch`` is on or off: ``--resume`` / ``resume=True``."""

    cli: str
    python: str
    switch: bool = False
    metavar: str = "VALUE"  # the CLI's placeholder for an unspecified value


# Options spelled otherwise than by the rule (``--n-embd`` on the command line, ``n_embd`` in
# Python: the field name with dashes or as it is).
OPTIONS: dict[str, Option] = {
    "out_dir": Option("--out", "out_dir", metavar="DIR"),
    "resume": Option("--resume", "resume", switch=True),
    "overwrite": Option("--overwrite", "overwrite", switch=True),
}

ANY = ...  # ``option(name, ANY)``: a placeholder value, ``--out DIR`` / ``out_dir=...``

_current: ContextVar[Spelling] = ContextVar("tinygpt_spelling", default=Spelling.PYTHON)


def lookup(name: str) -> Option:
    """The spellings of the option whose Python name (a config field or argument) is ``name``."""
    return OPTIONS.get(name) or Option("--" + name.replace("_", "-"), name)


def option(name: str, value: object = None) -> str:
    """``name`` as the caller writes it, with ``value`` if given.

    ``option("n_embd")`` is ``--n-embd`` or ``n_embd``; ``option("block_size", 9)`` is
    ``--block-size 9`` or ``block_size=9``; ``option("resume")`` is ``--resume`` or
    ``resume=True``; ``option("out_dir", ANY)`` is ``--out DIR`` or ``out_dir=...``.
    """
    spec = lookup(name)
    if _current.get() is Spelling.CLI:
        if value is None or spec.switch:
            return spec.cli
        return f"{spec.cli} {spec.metavar if value is ANY else value}"
    if spec.switch:
        return f"{spec.python}=True"
    if value is None:
        return spec.python
    if value is ANY:
        return f"{spec.python}=..."
    shown = str(value) if isinstance(value, PurePath) else value  # 'a/b', not PosixPath('a/b')
    return f"{spec.python}={shown!r}"


@contextlib.contextmanager
def cli_spelling() -> Iterator[None]:
    """Messages raised inside the block name command-line flags."""
    token = _current.set(Spelling.CLI)
    try:
        yield
    finally:
        _current.reset(token)
