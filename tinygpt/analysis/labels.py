"""How heads and tokens are named wherever they are shown: tables, metrics, figures, HTML."""

from __future__ import annotations

import re


def head_label(layer: int, head: int) -> str:
    """``L1H0``: compact, without spaces, so it is also a stable key in metrics.jsonl."""
    return f"L{layer}H{head}"


def parse_head_label(label: str) -> tuple[int, int]:
    """(layer, head) of a ``head_label``; ValueError for anything else."""
    match = re.fullmatch(r"L(\d+)H(\d+)", label)
    if match is None:
        raise ValueError(f"not a head label: {label!r}")
    return int(match.group(1)), int(match.group(2))


def parse_head_spec(spec: str) -> tuple[int, int]:
    """(layer, head) of a head as a user names it: the label every table prints (``L1H2``,
    any case) or the older ``1.2``; ValueError for anything else."""
    text = spec.strip()
    try:
        return parse_head_label(text.upper())
    except ValueError:
        pass
    match = re.fullmatch(r"(\d+)\.(\d+)", text)
    if match is None:
        raise ValueError(f"not a head: {spec!r}")
    return int(match.group(1)), int(match.group(2))


def visible(token: str) -> str:
    """Whitespace made visible, control characters replaced, so labels never break a line."""
    out = token.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍")
    return dotted(out) or "∅"


def dotted(text: str, keep: str = "") -> str:
    """``text`` with each unprintable character but those in ``keep`` as "·": an ESC in a
    token can't start a terminal sequence."""
    return "".join(c if c.isprintable() or c in keep else "·" for c in text)
