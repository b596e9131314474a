"""The terminal views of predictions, attributions, the logit lens and patching (rich)."""

from __future__ import annotations

import math

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from tinygpt.analysis.interpret_report import AttributionReport, PatchingReport, PredictionsReport
from tinygpt.analysis.labels import dotted, visible

LOUD_LOSS = 5.0  # nats: a loss this high or higher gets the strongest colour


def loss_rgb(loss: float | None) -> tuple[int, int, int]:
    """White for a token the model expected, deepening to red as its loss grows."""
    if loss is None or not math.isfinite(loss):
        return (235, 235, 235)
    t = min(1.0, max(0.0, loss / LOUD_LOSS))
    return (255, round(255 - 190 * t), round(255 - 190 * t))


def restored_rgb(value: float) -> tuple[int, int, int]:
    """Blue for a patch that restores the clean prediction (1: all of it), red for one that
    moves it further away, white for none."""
    t = min(1.0, abs(value)) if math.isfinite(value) else 0.0
    fade = round(255 - 200 * t)
    return (fade, fade, 255) if value >= 0 else (255, fade, fade)


def _style(rgb: tuple[int, int, int]) -> str:
    return f"black on rgb({rgb[0]},{rgb[1]},{rgb[2]})"


def predictions_view(report: PredictionsReport) -> RenderableType:
    # The prompt, each token's background the loss of predicting it (at position i - 1).
    text = Text()
    losses = [None] + [p.loss for p in report.predictions[:-1]]
    for token, loss in zip(report.tokens, losses, strict=True):
        shown = visible(token) if token.strip() == "" else dotted(token, keep="\n\t")
        text.append(shown, style=_style(loss_rgb(loss)))
    title = Text(f"Predictions of {report.model}", style="bold")
    mean = report.mean_loss
    legend = Text(
        "each token's colour: the loss of predicting it from the tokens before "
        f"(white 0, red {LOUD_LOSS:g} nats or more)"
        + (f"; mean {mean:.3f} nats" if mean is not None else ""),
        style="dim",
    )
    table = Table(box=None, padding=(0, 1))
    for column in ("pos", "token", "next", "p(next)", "loss", "model's top guesses"):
        table.add_column(
            column, justify="right" if column in ("pos", "p(next)", "loss") else "left"
        )
    for p in report.predictions:
        guesses = "  ".join(f"{visible(report.names[i])} {prob:.2f}" for i, prob in p.top)
        nxt = visible(report.names[p.next_id]) if p.next_id is not None else "-"
        table.add_row(
            str(p.position),
            visible(report.tokens[p.position]),
            Text(nxt, style=_style(loss_rgb(p.loss))) if p.loss is not None else nxt,
            f"{p.next_prob:.3f}" if p.next_prob is not None else "-",
            f"{p.loss:.2f}" if p.loss is not None else "-",
            guesses,
        )
    return Group(title, text, legend, Text(""), table)


TARGET_SOURCES = {
    "next": "the token that came next",
    "top": "the model's top prediction",
    "given": "as asked",
}


def _target_line(report: AttributionReport) -> Text:
    why = TARGET_SOURCES[report.target_source]
    return Text(
        f"position {report.position} ({visible(report.tokens[report.position])}), target "
        f"{visible(report.target_text)} (id {report.target}, {why})"
    )


def attribution_view(report: AttributionReport, rows: int = 20) -> RenderableType:
    a = report.attribution
    table = Table(box=None, padding=(0, 1))
    table.add_column("component")
    table.add_column("logit share", justify="right")
    table.add_column("")
    biggest = max((abs(s.logit) for s in a.shares), default=1.0) or 1.0
    for s in a.shares[:rows]:
        bar = "█" * max(0, round(12 * abs(s.logit) / biggest))
        table.add_row(
            s.component, f"{s.logit:+.3f}", Text(bar, style="blue" if s.logit >= 0 else "red")
        )
    if len(a.shares) > rows:
        rest = sum(s.logit for s in a.shares[rows:])
        table.add_row(f"{len(a.shares) - rows} more", f"{rest:+.3f}", "")
    capped = "" if a.logit == a.raw_logit else f"; soft-capped, the logit is {a.logit:.3f}"
    check = Text(
        f"sum {a.total:.4f} = the logit before the cap {a.raw_logit:.4f}{capped}. Each share is "
        "the component's output through the final norm (its scale frozen at this position) "
        "and the head's row for the target.",
        style="dim",
    )
    title = Text(f"Direct logit attribution, {report.model}", style="bold")
    return Group(title, _target_line(report), Text(""), table, check)


def lens_view(report: AttributionReport) -> RenderableType:
    table = Table(box=None, padding=(0, 1))
    for column in ("after", "top token", "p(top)", f"p({visible(report.target_text)})", "rank"):
        table.add_column(column, justify="left" if column in ("after", "top token") else "right")
    for r in report.lens:
        table.add_row(
            r.after,
            visible(report.names[r.top_id]),
            f"{r.top_prob:.3f}",
            f"{r.target_prob:.3f}",
            str(r.target_rank + 1),
        )
    note = Text(
        "the residual stream after each layer decoded through the final norm and the LM head "
        "(the last row is the model's own prediction)",
        style="dim",
    )
    return Group(
        Text(f"Logit lens, {report.model}", style="bold"), _target_line(report), table, note
    )


def _cell(value: float) -> Text:
    return Text(f"{value:+.2f}", style=_style(restored_rgb(value)))


def patching_view(report: PatchingReport, width: int = 100) -> RenderableType:
    r = report.result
    head = Text(
        f"target {visible(report.target_text)} at position {r.position}: log-prob "
        f"{r.clean_logprob:.3f} clean, {r.corrupted_logprob:.3f} corrupted. Each cell: the share "
        "of that gap a patch from the clean run restores (1 all, 0 none).",
    )
    by_head = Table(box=None, padding=(0, 1))
    by_head.add_column("layer")
    for h in range(report.heads):
        by_head.add_column(f"H{h}", justify="right")
    for layer in range(report.layers):
        by_head.add_row(f"L{layer}", *(_cell(float(v)) for v in r.heads[layer]))
    # Positions: the ones where some patch matters, as many as fit, in order.
    t = len(report.clean)
    strength = r.head_positions.abs().amax(dim=(0, 1)).maximum(r.residual.abs().amax(dim=0))
    fit = max(1, (width - 12) // 7)
    keep = sorted(sorted(range(t), key=lambda j: -float(strength[j]))[:fit])
    grid = Table(box=None, padding=(0, 1))
    grid.add_column("")
    for j in keep:
        grid.add_column(f"{j}\n{visible(report.clean[j])[:5]}", justify="right")
    for label, row in report.grid():
        grid.add_row(label, *(_cell(float(row[j])) for j in keep))
    hidden = t - len(keep)
    note = Text(
        f"{hidden} positions where no patch matters much are not shown" if hidden else "",
        style="dim",
    )
    title = Text(f"Activation patching, {report.model}", style="bold")
    return Group(
        title,
        head,
        Text(""),
        Text("each head's output, patched at every position", style="bold"),
        by_head,
        Text(""),
        Text(
            "one position at a time: heads, then the residual stream into each layer", style="bold"
        ),
        grid,
        note,
    )
