"""A corpus of several files holds out the end of every file for validation.

Read as one stream, the last files would be validation alone (``json/`` after ``email/``: all
JSON); each file's own last ``val_fraction`` makes validation the kinds of text the model learns.
The token file holds every training part, then every held-out part (``Corpus.train_tokens``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tinygpt.data.sources import file_pieces
from tinygpt.errors import UsageError


def file_cuts(sources: list[Path], encoding: str, val_fraction: float) -> list[int]:
    """Per file: the characters of its training part."""
    lengths = [sum(len(piece) for piece in file_pieces(path, encoding)) for path in sources]
    if not any(lengths):
        raise UsageError("the corpus files are empty; give a file with some text")
    return [int(n * (1 - val_fraction)) for n in lengths]


def halves(
    path: Path,
    encoding: str,
    cut: int,
    on_bytes: Callable[[int], None] | None = None,
    digest: Any = None,
) -> tuple[Iterator[str], Iterator[str]]:
    """A file's training part and held-out part, in pieces, read once (the first to its end
    before the second)."""
    pieces = file_pieces(path, encoding, on_bytes, digest)
    rest: list[str] = []

    def training() -> Iterator[str]:
        seen = 0
        for piece in pieces:
            if seen + len(piece) > cut:
                head, tail = piece[: cut - seen], piece[cut - seen :]
                yield from [head] if head else []
                rest.append(tail)
                return
            seen += len(piece)
            yield piece

    def held_out() -> Iterator[str]:
        yield from rest
        yield from pieces

    return training(), held_out()


def joined(pieces: Iterator[str]) -> Iterator[str]:
    """The pieces, then a newline if the last did not end with one (the join between files)."""
    last = "\n"
    for last in pieces:
        yield last
    if not last.endswith("\n"):
        yield "\n"


def training_pieces(sources: list[Path], encoding: str, val_fraction: float) -> Iterator[str]:
    """The training parts of every file, in pieces: what a BPE may learn from."""
    cuts = file_cuts(sources, encoding, val_fraction)
    for path, cut in zip(sources, cuts, strict=True):
        training, _ = halves(path, encoding, cut)
        yield from joined(training)
