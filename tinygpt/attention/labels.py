"""How heads and tokens are named wherever they are shown: tables, metrics, figures, HTML."""

from __future__ import annotations


def head_label(layer: int, head: int) -> str:
    """``L1H0``: compact, without spaces, so it is also a stable key in metrics.jsonl."""
    return f"L{layer}H{head}"


def visible(token: str) -> str:
    """Whitespace made visible, control characters replaced, so labels never break a line."""
    out = token.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥").replace("\r", "␍")
    return "".join(c if c.isprintable() else "·" for c in out) or "∅"
