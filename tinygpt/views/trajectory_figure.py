"""The trajectory as a PNG: losses above, the two heads' scores below, on one step axis, with
the phase change marked (``inspect trajectory DIR --png FILE``)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from tinygpt.analysis.labels import parse_head_label
from tinygpt.analysis.scores import BY_ROLE
from tinygpt.analysis.snapshot import PhaseChange, phase_change
from tinygpt.errors import UsageError
from tinygpt.views.font import HEIGHT as FONT_H
from tinygpt.views.font import WIDTH as FONT_W
from tinygpt.views.plot import nice_ticks
from tinygpt.views.png import Canvas

Color = tuple[int, int, int]
BLACK: Color = (0, 0, 0)
GRID: Color = (225, 225, 225)
MARK: Color = (150, 150, 150)
WIDTH, PANEL_H = 720, 200
LEFT, RIGHT, TOP, GAP, BOTTOM = 56, 16, 30, 44, 40


@dataclass
class Series:
    label: str
    color: Color
    points: list[tuple[int, float]]


def _best_in_layer(records: list[dict[str, Any]], key: str, layer: int) -> list[tuple[int, float]]:
    """(step, the highest ``key`` score among the heads of ``layer``) at each evaluation."""
    out = []
    for r in records:
        values = [  # a diverged run's NaN is no point on a line
            s[key]
            for h, s in r["heads"].items()
            if parse_head_label(h)[0] == layer and key in s and math.isfinite(s[key])
        ]
        if values:
            out.append((int(r["step"]), max(values)))
    return out


def _series(records: list[dict[str, Any]], change: PhaseChange) -> tuple[list, list]:
    losses = []
    for key, label, color in (
        ("repeat_loss", "repeat loss (validation text)", (214, 39, 40)),
        ("induction_loss", "loss on repeated random tokens", (255, 127, 14)),
    ):
        points = [
            (int(r["step"]), float(r[key]))
            for r in records
            if key in r and math.isfinite(float(r[key]))
        ]
        if points:
            losses.append(Series(label, color, points))
    scores = []
    for crossing, role, fallback_layer, color in (
        (change.previous_token, "previous-token", 0, (31, 119, 180)),
        (change.induction, "induction", 1, (44, 160, 44)),
    ):
        layer = parse_head_label(crossing.head)[0] if crossing else fallback_layer
        points = _best_in_layer(records, BY_ROLE[role].key, layer)
        if points:
            scores.append(Series(f"best {role} score, layer {layer}", color, points))
    return losses, scores


def trajectory_png(metrics: list[dict[str, Any]]) -> bytes:
    records = [m for m in metrics if "heads" in m]
    if not records:
        raise UsageError("this run has no head snapshots in metrics.jsonl to draw")
    change = phase_change(records)
    losses, scores = _series(records, change)
    steps = [int(r["step"]) for r in records]
    x0, x1 = min(steps), max(steps) if max(steps) > min(steps) else min(steps) + 1
    top_loss = max((y for s in losses for _, y in s.points), default=1.0) * 1.05 or 1.0
    scores_top = TOP + PANEL_H + GAP
    canvas = Canvas(WIDTH, scores_top + PANEL_H + BOTTOM)
    canvas.text(LEFT, 8, "Watch an induction head form: losses (top), head scores (bottom)")
    _panel(canvas, TOP, losses, (x0, x1), (0.0, top_loss), "loss", "bottom")
    _panel(canvas, scores_top, scores, (x0, x1), (0.0, 1.0), "score", "top")
    if change.drop is not None:  # the phase change: where the loss fell fastest
        x = _x(change.drop.end_step, x0, x1)
        for y_top in (TOP, scores_top):
            for y in range(y_top, y_top + PANEL_H, 6):
                canvas.rect(x, y, 1, 3, MARK)
        # Right of the line, low in the scores panel: the scores are high there by then.
        text = f"phase change, step {change.drop.end_step}"
        canvas.text(x + 4, scores_top + PANEL_H - FONT_H - 4, text, MARK)
    for score in (BY_ROLE["previous-token"], BY_ROLE["induction"]):  # the role thresholds
        y = _y(score.threshold, 0.0, 1.0, scores_top)
        for x in range(LEFT, WIDTH - RIGHT, 8):
            canvas.rect(x, y, 4, 1, MARK)
        text = f"{score.role} threshold"
        canvas.text(WIDTH - RIGHT - FONT_W * len(text), y - FONT_H - 1, text, MARK)
    canvas.text(WIDTH // 2 - 2 * FONT_W, scores_top + PANEL_H + 22, "step")
    return canvas.png()


def _x(step: float, x0: float, x1: float) -> int:
    return round(LEFT + (step - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT))


def _y(value: float, lo: float, hi: float, y_top: int) -> int:
    return round(y_top + (hi - value) / (hi - lo) * PANEL_H)


def _panel(
    canvas: Canvas,
    y_top: int,
    series: list[Series],
    xs: tuple[float, float],
    ys: tuple[float, float],
    label: str,
    legend_at: str,
) -> None:
    """Axes, grid, ticks and the series; the legend in the panel's left ``legend_at`` corner
    (where the curves are not: losses start high, scores start low)."""
    (x0, x1), (lo, hi) = xs, ys

    def px(point: tuple[float, float]) -> tuple[int, int]:
        return _x(point[0], x0, x1), _y(point[1], lo, hi, y_top)

    for value in nice_ticks(lo, hi):  # horizontal grid lines with their values
        y = _y(value, lo, hi, y_top)
        canvas.rect(LEFT, y, WIDTH - LEFT - RIGHT, 1, GRID)
        text = f"{value:g}"
        canvas.text(LEFT - 4 - FONT_W * len(text), y - FONT_H // 2, text)
    bottom = y_top + PANEL_H
    canvas.line((LEFT, y_top), (LEFT, bottom), BLACK, 1)
    canvas.line((LEFT, bottom), (WIDTH - RIGHT, bottom), BLACK, 1)
    for step in nice_ticks(x0, x1):
        x = _x(step, x0, x1)
        canvas.rect(x, bottom, 1, 4, BLACK)
        text = f"{step:.0f}"
        canvas.text(x - FONT_W * len(text) // 2, bottom + 6, text)
    canvas.text(4, y_top - FONT_H - 2, label)
    for k, s in enumerate(series):
        for a, b in itertools.pairwise(s.points):
            canvas.line(px(a), px(b), s.color)
        if legend_at == "top":
            legend_y = y_top + 6 + k * (FONT_H + 4)
        else:
            legend_y = bottom - 6 - (len(series) - k) * (FONT_H + 4)
        canvas.rect(LEFT + 10, legend_y + 3, 14, 3, s.color)
        canvas.text(LEFT + 28, legend_y, s.label, s.color)
