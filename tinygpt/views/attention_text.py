"""Attention in the terminal: shaded heatmaps, the head table, and the step-by-step explanation.

Shading uses block characters (" ░▒▓█", with "·" for weights under 0.05 and a blank for the
masked future), so the picture survives NO_COLOR and plain logs; colour
only adds emphasis. Long prompts are shown through a window of the last ``window`` tokens (or
the tokens around ``--query``), never wrapped or garbled, and every block fits 80 columns.
"""

from __future__ import annotations

import math

import torch
from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from tinygpt.analysis.attention_report import AttentionReport
from tinygpt.analysis.explain import AFTER_COPY, Explanation
from tinygpt.analysis.labels import head_label, visible
from tinygpt.analysis.scores import (
    CHANCE_MULTIPLE,
    HEADLINE_SCORES,
    INDUCTION_THRESHOLD,
    ROLE_THRESHOLD,
    TABLE_SCORES,
    HeadScores,
)
from tinygpt.analysis.snapshot import PhaseChange, first_crossings, phase_change

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


def key_axis(tokens: list[str], start: int, end: int) -> Text:
    """The keys under a heatmap's columns, one character each: a BPE token's first visible
    character (not its leading space)."""
    axis = "".join(visible(tok.strip() or tok)[0] for tok in tokens[start:end])
    return Text(" " * (LABEL + 1) + axis + "  ← keys", style="dim")


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
        blocks.append(key_axis(tokens, keys_from, end))
    return Group(*blocks)


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


def explanation(e: Explanation, tokens: list[str], n_embd: int, limit: int = 12) -> Group:
    """The mechanism for one query, with the model's own numbers."""
    q_tok = visible(tokens[e.query])
    steps = [
        f"query q = x·W_Q for this token: a {e.head_dim}-dim vector, ‖q‖ = "
        f"{e.projected_q_norm:.3f}; each key k_j = x_j·W_K likewise"
    ]
    if e.qk_norm:
        steps.append(
            f"QK-norm: q and every k are rescaled to unit RMS (‖q‖ = √d_k = "
            f"{math.sqrt(e.head_dim):.3f}), so |q·k_j| ≤ d_k = {e.head_dim} whatever the "
            f"weights learn"
        )
    if e.rotary:
        steps.append(
            "RoPE: each pair of channels of q (at position i) and k_j (at j) is rotated by an "
            "angle proportional to the position, so q·k_j depends on the distance i - j, not "
            f"on where the pair sits (‖q‖ stays {e.q_norm:.3f}; column 'unrotated' below is "
            "q·k_j without it)"
        )
    steps += [
        f"scores q·k_j for the {e.query + 1} visible keys j ≤ {e.query}; the scaled score "
        f"divides by √d_k = {math.sqrt(e.head_dim):.3f} so the softmax does not saturate",
        f"causal mask: the {e.masked} later position(s) get -inf and so weight exactly 0",
        "softmax turns the scaled scores into weights that sum to 1",
    ]
    header = Text.assemble(
        (f"Layer {e.layer}, head {e.head}, query {e.query} ({q_tok!r})\n", "bold"),
        *(f"{n}. {text}\n" for n, text in enumerate(steps, 1)),
    )
    table = Table(
        pad_edge=False,
        title_justify="left",
        title=f"keys (largest {min(limit, e.query + 1)} contributions)",
    )
    columns = ["key", "token", "q·k", "÷√d_k", "weight", "‖w·v‖", "key is"]
    if e.unrotated_scores is not None:
        columns.insert(2, "unrotated")
    for name in columns:
        table.add_column(name, justify="left" if name in ("key", "token") else "right")
    for j, w, norm in e.contributions[:limit]:
        unrotated = [] if e.unrotated_scores is None else [f"{e.unrotated_scores[j]:.3f}"]
        table.add_row(
            str(j),
            visible(tokens[j])[:LABEL],
            *unrotated,
            f"{e.raw_scores[j]:.3f}",
            f"{e.scaled_scores[j]:.3f}",
            f"{w:.3f}",
            f"{norm:.3f}",
            e.relations[j] if j < len(e.relations) else "",
        )
    n_head = len(e.head_shares)
    shares = "  ".join(f"H{h} {s:.2f}" for h, s in enumerate(e.head_shares))
    footer = Text.assemble(
        _top_key_line(e, tokens),
        f"{len(steps) + 1}. output o = Σ_j weight_j · v_j, ‖o‖ = {e.output_norm:.3f}\n",
        f"{len(steps) + 2}. the {n_head} heads' outputs ({e.head_dim} dims each) are "
        f"concatenated into {n_embd} dims and projected by W_O back into the residual "
        f"stream. Size of each head's part of that update, ‖W_O[:, head]·o_head‖: {shares}\n",
        (
            "check: these weights equal the model's own softmax output"
            if e.weights_match_model
            else "warning: recomputed weights differ from the model's"
        ),
    )
    return Group(header, table, footer)


def _top_key_line(e: Explanation, tokens: list[str]) -> str:
    """What the most-attended key is, in words (the induction pattern spelled out)."""
    j = e.top_key
    what = e.relations[j] if j < len(e.relations) else ""
    line = f"most weight ({e.weights[j]:.2f}) on key {j} ({visible(tokens[j])!r})"
    if what == AFTER_COPY:
        earlier = j - 1
        return (
            f"{line}: the token right after the earlier copy of {visible(tokens[e.query])!r} "
            f"(at {earlier}), the induction pattern: it reads what followed last time, to "
            f"predict {visible(tokens[j])!r} next\n"
        )
    return f"{line}: {what}\n" if what else f"{line}\n"


def trajectory(metrics: list[dict], width: int = 80) -> Group:
    """Each evaluation's losses, ICL score and strongest head per role, then the phase change:
    when the repeat loss fell fastest and when heads first earned the roles."""
    records = [m for m in metrics if "heads" in m]
    if not records:
        return Group(
            Text(
                "no head snapshots in this run's metrics.jsonl (trained before "
                "tinygpt recorded them?)"
            )
        )
    table = Table(
        title="Trajectory (probe: the start of the validation text)",
        title_justify="left",
        pad_edge=False,
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
    )
    roles = [(s.column, s.key) for s in HEADLINE_SCORES if s.role]
    has_repeat = any("repeat_loss" in m for m in records)
    # Short headers keep the table inside 80 columns, where rich would cut the numbers.
    losses = ["val", *(["rep"] if has_repeat else []), "probe", "icl"]
    for name in ("step", *losses):
        table.add_column(name, justify="right", no_wrap=True)
    for name, _ in roles:  # "0.25 L2H2": never cut the head's name
        table.add_column(name, justify="right", no_wrap=True, min_width=9)
    for m in records:
        cells = []
        for _, key in roles:
            head, value = max(
                ((h, s.get(key, float("nan"))) for h, s in m["heads"].items()),
                key=lambda item: item[1],
            )
            cells.append(f"{value:.2f} {head}")
        repeat = [f"{m['repeat_loss']:.2f}" if "repeat_loss" in m else "-"] if has_repeat else []
        table.add_row(
            str(m["step"]),
            f"{m['val_loss']:.3f}",
            *repeat,
            f"{m['induction_loss']:.2f}",
            f"{m['icl_score']:+.3f}",
            *cells,
        )
    crossings = first_crossings(records)
    lines = [
        f"{head} became {role} at step {step} ({score:.2f})"
        for head, role, step, score in crossings
    ]
    note = Text(
        "\n".join(lines)
        if lines
        else "no head crossed a role threshold (and 3x chance) during this run",
        style="bold",
    )
    return Group(
        table,
        note,
        phase_change_table(phase_change(records)),
        Text(
            "columns per role: the highest score over all heads and which head; rep: loss "
            "right after a repeated run of 3 tokens in the validation text; probe: loss on "
            "the second copy of random tokens; icl: loss late in the context minus early "
            "(negative = context helps)",
            style="dim",
        ),
    )


def phase_change_table(change: PhaseChange) -> Table:
    """The induction-head phase change side by side: the loss drop and the two heads."""
    table = Table(
        title="Phase change (Olsson et al. 2022: the heads appear as the loss drops)",
        title_justify="left",
        pad_edge=False,
        box=box.SIMPLE_HEAD,
    )
    for name in ("event", "step", "what"):
        table.add_column(name, justify="right" if name == "step" else "left")
    drop = change.drop
    if drop is None:
        table.add_row("loss drop", "-", "the repeat loss never fell")
    else:
        name = "repeat loss" if drop.key == "repeat_loss" else "induction-probe loss"
        table.add_row(
            f"{name} fell fastest",
            f"{drop.start_step}→{drop.end_step}",
            f"{drop.before:.2f} → {drop.after:.2f} (first {drop.first:.2f}, last {drop.last:.2f})",
        )
    for role, crossing in (
        ("previous-token", change.previous_token),
        ("induction", change.induction),
    ):
        if crossing is None:
            table.add_row(f"{role} head", "-", "no head earned this role")
            continue
        table.add_row(
            f"{role} head",
            str(crossing.step),
            f"{crossing.head} scored {crossing.score:.2f} (chance {crossing.chance:.2f})",
        )
    return table


def comparison(deltas: list[dict], names: tuple[str, str]) -> Table:
    table = Table(title=f"{names[1]} minus {names[0]}", title_justify="left", pad_edge=False)
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
    heads = ", ".join(result["heads"])
    table = Table(
        title=f"Ablating {heads} ({result['mode']})", title_justify="left", pad_edge=False
    )
    for name in ("measured on", "loss", "ablated", "Δ loss"):
        table.add_column(name, justify="left" if name == "measured on" else "right")
    labels = {
        "prompt": "the prompt",
        "text": f"training text ({result.get('text_source')})",
        "repeat": "  its repeats (after a repeated run)",
        "probe": "repeated random tokens",
    }
    for key, label in labels.items():
        if key in result:
            r = result[key]
            table.add_row(label, f"{r['loss']:.4f}", f"{r['ablated']:.4f}", f"{r['delta']:+.4f}")
    return table


def report_view(
    report: AttentionReport,
    layer: int | None,
    head: int | None,
    query: str | None,
    window: int,
    width: int,
    show_rollout: bool = False,
) -> Group:
    """The whole terminal view of a report: heatmaps (one head, or an overview), the head
    table with chance levels, rollout and the explanation when the report carries one."""
    tokens, weights, first = report.tokens, report.weights, report.first_query
    t = len(tokens)
    n_layer, n_head = report.shape
    focus = report.query_position(query) if query is not None else None
    scores = [s for s in report.scores if layer is None or s.layer == layer]
    parts: list = [Text(f"{report.model}: {t} tokens, {n_layer} layers x {n_head} heads")]
    if layer is not None and head is not None:
        start, end = window_range(t, window, focus, first)
        # One map: its keys may reach back as far as the line allows.
        keys_from = first_key(weights[layer, head], start, end, width - LABEL - 1)
        parts.append(window_note(start, end, t, keys_from))
        label = head_label(layer, head)
        parts.append(
            heatmap(weights[layer, head], tokens, start, end, label, keys=True, keys_from=keys_from)
        )
        parts.append(top_keys(weights[layer, head], tokens, start, end))
    else:
        shown = weights if layer is None else weights[layer : layer + 1]
        parts.append(overview(shown, tokens, window, min(width, 200), focus, layer or 0, first))
    parts.append(head_table(scores))
    parts.append(chance_note(scores[0], report.induction.length))
    if show_rollout:
        start, end = window_range(t, window, focus, first)
        full = torch.zeros(t, t)
        full[first:] = report.rollout
        parts.append(heatmap(full, tokens, start, end, "Rollout", keys=True))
    if report.explanation is not None:
        n_embd = n_head * report.run.captures[0].q.size(-1)
        parts.append(explanation(report.explanation, tokens, n_embd))
    return Group(*parts)
