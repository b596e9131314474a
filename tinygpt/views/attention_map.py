"""Attention maps in the terminal: shaded heatmaps of one head or every head, and each query's
strongest keys. Shades are block characters (" ░▒▓█", "·" under 0.05, blank for the masked
future), so the picture survives NO_COLOR and plain logs. Long prompts show a window of the
last ``window`` tokens (or those around ``--query``), never wrapped, each block in 80 columns.
"""

from __future__ import annotations

import math

import torch
from rich.console import Group
from rich.table import Table
from rich.text import Text

from tinygpt.analysis.labels import head_label, visible

SHADES = " ░▒▓█"
FAINT = "·"  # a weight too small to shade, but not masked (masked keys are blank)
FAINT_BELOW = 0.05
LABEL = 8  # characters of token text shown as a row label


def shade(weight: float) -> str:
    if weight <= 0:
        return SHADES[0]
    if weight < FAINT_BELOW:
        return FAINT
    # sqrt spreads small weights over the shades; any non-zero weight gets at least "░"
    return SHADES[max(1, min(len(SHADES) - 1, round(math.sqrt(weight) * (len(SHADES) - 1))))]


def window_range(t: int, window: int, focus: int | None, first: int = 0) -> tuple[int, int]:
    """[start, end) of at most ``window`` positions from ``first`` on: the last ones, or ending
    at ``focus``."""
    end = t if focus is None else min(t, focus + 1)
    start = max(first, end - window)
    return start, end


def first_key(a: torch.Tensor, start: int, end: int, budget: int) -> int:
    """The first key column to show for queries [start, end) of ``a`` (..., T, T): from
    ``start`` back to the earliest key any of them gives a visible weight (>= FAINT_BELOW), so
    a head that looks far back is not drawn empty, but at most ``budget`` columns in all."""
    rows = a[..., start:end, :start].reshape(-1, start) if start else None
    if rows is None or not rows.numel():
        return start
    seen = (rows >= FAINT_BELOW).any(dim=0).nonzero()
    earliest = int(seen[0]) if seen.numel() else start
    return max(earliest, end - max(budget, end - start), 0)


def window_note(start: int, end: int, t: int, keys_from: int | None = None) -> Text:
    """Says which tokens a windowed view shows (empty when it shows them all)."""
    keys_from = start if keys_from is None else keys_from
    if start == 0 and end == t:  # keys_from <= start: everything is shown
        return Text("")
    if keys_from == start:
        shown = f"tokens {start}..{end - 1}"
    else:
        shown = f"queries {start}..{end - 1}, keys {keys_from}..{end - 1}"
    return Text(f"(showing {shown} of {t}; --window and --query to move)", style="dim")


def key_axis(tokens: list[str], start: int, end: int, width: int = 80) -> Text:
    """The keys under a heatmap's columns. One character a token (a char model's text reads
    as it is); where a token is longer (BPE), each column shows the last digit of its position
    and a legend below gives every position's token."""
    shown = [visible(tok) for tok in tokens[start:end]]
    pad = " " * (LABEL + 1)
    if all(len(tok) == 1 for tok in shown):
        return Text(pad + "".join(shown) + "  ← keys", style="dim")
    digits = "".join(str(i % 10) for i in range(start, end))
    text = Text(pad + digits + "  ← keys (position; tokens below)\n", style="dim")
    line = pad
    for i, tok in zip(range(start, end), shown, strict=True):
        entry = f"{i}:{tok[:LABEL]}  "
        if len(line) + len(entry) > width and line != pad:
            text.append(line.rstrip() + "\n", style="dim")
            line = pad
        line += entry
    text.append(line.rstrip(), style="dim")
    return text


def heatmap(
    a: torch.Tensor,
    tokens: list[str],
    start: int,
    end: int,
    title: str,
    labels: bool = True,
    keys: bool = False,
    keys_from: int | None = None,
) -> Text:
    """Rows = queries [start, end), columns = keys [keys_from, end) (default: the same range);
    ``keys`` labels the columns underneath (a stand-alone map; the overview labels a row of
    maps once)."""
    keys_from = start if keys_from is None else keys_from
    text = Text()
    text.append(title + "\n", style="bold")
    for i in range(start, end):
        if labels:
            text.append(f"{visible(tokens[i])[:LABEL]:>{LABEL}} ", style="dim")
        text.append("".join(shade(float(a[i, j])) for j in range(keys_from, end)))
        text.append("\n")
    if keys:
        text.append_text(key_axis(tokens, keys_from, end))
        text.append("\n")
    return text


def overview(
    weights: torch.Tensor,
    tokens: list[str],
    window: int,
    width: int,
    focus: int | None = None,
    first_layer: int = 0,
    first_query: int = 0,
) -> Group:
    """Every layer x head as a compact heatmap, as many side by side as ``width`` allows."""
    n_layer, n_head, t, _ = weights.shape
    start, end = window_range(t, window, focus, first_query)
    keys_from = first_key(weights, start, end, window)  # compact maps: no wider than --window
    span = end - keys_from
    per_row = max(1, (width - LABEL - 1) // (span + 2))
    blocks: list = [window_note(start, end, t, keys_from)]
    for layer in range(n_layer):
        for first in range(0, n_head, per_row):
            heads = list(range(first, min(n_head, first + per_row)))
            grid = Table.grid(padding=(0, 2))
            for _ in heads:
                grid.add_column(no_wrap=True)
            cells = []
            for k, h in enumerate(heads):
                cells.append(
                    heatmap(
                        weights[layer, h],
                        tokens,
                        start,
                        end,
                        head_label(first_layer + layer, h),
                        labels=k == 0,
                        keys_from=keys_from,
                    )
                )
            grid.add_row(*cells)
            blocks.append(grid)
        blocks.append(key_axis(tokens, keys_from, end, width))
    return Group(*blocks)


def top_keys(a: torch.Tensor, tokens: list[str], start: int, end: int, k: int = 3) -> Table:
    """For a focused head: each query's strongest keys, with weights."""
    table = Table(title="Strongest keys per query", title_justify="left", pad_edge=False)
    table.add_column("query", no_wrap=True)
    table.add_column("attends to (weight)", no_wrap=False)
    for i in range(start, end):
        row = a[i, : i + 1]
        best = torch.topk(row, min(k, i + 1))
        parts = [
            f"{j}:{visible(tokens[j])[:LABEL]} {float(w):.2f}"
            for w, j in zip(best.values.tolist(), best.indices.tolist(), strict=True)
        ]
        table.add_row(f"{i}:{visible(tokens[i])[:LABEL]}", "  ".join(parts))
    return table
