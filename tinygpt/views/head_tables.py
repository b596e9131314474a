"""Per-head tables in the terminal: the heads' scores and roles with the prompt's chance levels,
two checkpoints' score changes, and what ablating heads does to the loss."""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text

from tinygpt.analysis.labels import head_label
from tinygpt.analysis.scores import (
    CHANCE_MULTIPLE,
    HEADLINE_SCORES,
    INDUCTION_THRESHOLD,
    ROLE_THRESHOLD,
    TABLE_SCORES,
    HeadScores,
)
from tinygpt.io.console import printable


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.2f}"


def head_table(scores: list[HeadScores]) -> Table:
    table = Table(title="Head roles", title_justify="left", pad_edge=False)
    table.add_column("head", no_wrap=True)
    for score in TABLE_SCORES:
        table.add_column(score.column, justify="right", no_wrap=True)
    table.add_column("role")
    for s in scores:
        table.add_row(
            head_label(s.layer, s.head),
            *(_fmt(getattr(s, score.key)) for score in TABLE_SCORES),
            ", ".join(s.roles),
        )
    return table


def chance_note(s: HeadScores, induction_length: int) -> Text:
    """Chance levels for this prompt, and what a role label requires."""
    levels = ", ".join(
        f"{score.column} {_fmt(s.chance[score.key])}"
        for score in TABLE_SCORES
        if score.role and score.key in s.chance  # none on a one-token prompt: nothing to score
    )
    return Text(
        f"chance (even attention over the visible tokens): {levels or '-'}. "
        f"A role needs >= {ROLE_THRESHOLD} "
        f"(induction >= {INDUCTION_THRESHOLD}) and >= {CHANCE_MULTIPLE:g}x chance. induct: "
        f"{induction_length} random tokens repeated twice, 1 = perfect induction head; copy: "
        f"share of positive OV eigenvalues; ent: entropy / its maximum.",
        style="dim",
    )


def comparison(deltas: list[dict], names: tuple[str, str]) -> Table:
    # printable: a folder's name could hold a terminal's escape sequences
    title = f"{printable(names[1])} minus {printable(names[0])}"
    table = Table(title=title, title_justify="left", pad_edge=False)
    table.add_column("head", no_wrap=True)
    for score in HEADLINE_SCORES:
        table.add_column(f"Δ{score.column}", justify="right", no_wrap=True)
    table.add_column("JS div", justify="right", no_wrap=True)
    for d in deltas:
        table.add_row(
            d["head"],
            *(f"{d[s.key]:+.2f}" for s in HEADLINE_SCORES),
            f"{d['js_divergence']:.3f}",
        )
    return table


def ablation_table(result: dict) -> Table:
    title = f"Ablating {', '.join(result['heads'])} ({result['mode']})"
    table = Table(title=title, title_justify="left", pad_edge=False)
    for name in ("measured on", "loss", "ablated", "Δ loss"):
        table.add_column(name, justify="left" if name == "measured on" else "right")
    labels = {
        "prompt": "the prompt",
        "text": f"training text ({printable(str(result.get('text_source')))})",
        "repeat": "  its repeats (after a repeated run)",
        "probe": "repeated random tokens",
    }
    for key, label in labels.items():
        if key in result:
            r = result[key]
            table.add_row(label, f"{r['loss']:.4f}", f"{r['ablated']:.4f}", f"{r['delta']:+.4f}")
    return table
