"""Which position and which target token an analysis is about, from what a user types."""

from __future__ import annotations

from tinygpt.data.tokenizer import Tokenizer
from tinygpt.errors import Opt, UsageError


def resolve_position(
    tokens: list[str], spec: str | int | None, option: str = "position", first: int = 0
) -> int:
    """A position (negative counts from the end) or a token's text (its last occurrence) among
    the positions from ``first``; the last position when ``spec`` is None. ``option`` names the
    option in messages (``position``, ``query``)."""
    t = len(tokens)
    if spec is None:
        return t - 1
    try:
        pos = int(spec)
    except ValueError:
        matches = [i for i, tok in enumerate(tokens) if i >= first and spec in (tok, tok.strip())]
        if not matches:
            raise UsageError(
                Opt(option), f" {spec!r} is neither a position nor a token of the prompt"
            ) from None
        return matches[-1]
    if not -t <= pos < t:
        raise UsageError(Opt(option, pos), f" is outside the prompt's {t} tokens")
    if pos % t < first:
        raise UsageError(
            Opt(option, pos), " is before the first query of ", Opt("queries"), f" ({first})"
        )
    return pos % t


def resolve_target(tokenizer: Tokenizer, vocab_size: int, spec: str | None) -> int | None:
    """The target token: ``#ID`` by its id, or a text that is exactly one token; None: not given."""
    if spec is None:
        return None
    if spec.startswith("#") and spec[1:].isdecimal():
        target = int(spec[1:])
        if not 0 <= target < vocab_size:
            raise UsageError(Opt("target", spec), f": ids go from 0 to {vocab_size - 1}")
        return target
    try:
        ids = tokenizer.encode(spec)
    except UsageError:  # text a char vocabulary cannot write
        raise UsageError(
            Opt("target", repr(spec)),
            " is not in the model's vocabulary; give one token's text or its id as #ID",
        ) from None
    if len(ids) != 1:
        raise UsageError(
            Opt("target", repr(spec)),
            f" is {len(ids)} tokens, not one; give one token's text or its id as #ID",
        )
    return ids[0]
