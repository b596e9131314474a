"""Attention figures for papers and slides, PNG and SVG: a grid of panels (a head, a layer's
heads, or every head), each the causal pattern, queries down and keys across, shaded white ->
blue by sqrt(weight) as in the HTML view, labelled with the tokens when the cells have room. A
report cut to ``--queries A:B`` draws the rows of queries A..B-1 against all B keys.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import escape

import torch

from tinygpt.analysis.attention_report import AttentionReport
from tinygpt.analysis.labels import head_label, visible
from tinygpt.views.font import HEIGHT as FONT_H
from tinygpt.views.font import WIDTH as FONT_W
from tinygpt.views.png import Canvas

Panel = tuple[str, torch.Tensor]  # (title, (T - first_query, T) weights: query rows, key columns)
LABEL_CHARS = 6
PANEL_PX = 480  # target size of one panel's grid
GAP = 16


def report_panels(
    report: AttentionReport, layer: int | None, head: int | None, rollout: bool = False
) -> list[list[Panel]]:
    """Rows of panels (one head, one layer's heads, or a row per layer) and, with ``rollout``,
    a last row with the rollout."""
    weights = report.query_weights
    layers = range(weights.size(0)) if layer is None else [layer]
    heads = range(weights.size(1)) if head is None else [head]
    grid = [[(head_label(lay, h), weights[lay, h]) for h in heads] for lay in layers]
    return [*grid, [("rollout", report.rollout)]] if rollout else grid


def _shade(w: float) -> tuple[int, int, int]:
    v = round(255 * (1 - math.sqrt(max(0.0, min(1.0, w)))))
    return (v, v, 255)


def _layout(t: int, across: int) -> tuple[int, bool]:
    """Cell size in pixels for ``across`` panels side by side, and whether labels fit. Labels
    need a column the font's width; then the cells grow to the font's height (a panel at most
    10/6 of its size), so every row carries its token."""
    size = PANEL_PX if across == 1 else max(96, PANEL_PX // min(across, 4))
    cell = max(1, size // t)
    labels = cell >= FONT_W
    return (max(cell, FONT_H) if labels else cell), labels


def attention_png(grid: list[list[Panel]], tokens: list[str], first_query: int = 0) -> bytes:
    t, a = len(tokens), first_query
    cols, rows = max(len(r) for r in grid), len(grid)
    cell, labels = _layout(t, cols)
    left = LABEL_CHARS * FONT_W + 4 if labels else 0
    top = FONT_H + 4 + (FONT_H + 2 if labels else 0)
    pw, ph = left + t * cell, top + (t - a) * cell
    canvas = Canvas(cols * pw + (cols - 1) * GAP + 2, rows * ph + (rows - 1) * GAP + 2)
    for r, row in enumerate(grid):
        for c, (title, weights) in enumerate(row):
            x0, y0 = c * (pw + GAP), r * (ph + GAP)
            canvas.text(x0 + left, y0, title)
            gx, gy = x0 + left, y0 + top
            w = weights.float().tolist()
            for qr in range(t - a):  # row qr is query a + qr
                for j in range(a + qr + 1):
                    if w[qr][j] > 0:
                        canvas.rect(gx + j * cell, gy + qr * cell, cell, cell, _shade(w[qr][j]))
            canvas.rect(gx - 1, gy - 1, t * cell + 1, 1, (160, 160, 160))
            canvas.rect(gx - 1, gy - 1, 1, (t - a) * cell + 1, (160, 160, 160))
            if labels:
                for qr in range(t - a):  # every row: cells are at least a line of text high
                    label = visible(tokens[a + qr])[:LABEL_CHARS]
                    canvas.text(gx - 2 - len(label) * FONT_W, gy + qr * cell, label, (60, 60, 60))
                for j in range(t):
                    first = visible(tokens[j].strip() or tokens[j])[0]
                    canvas.text(
                        gx + j * cell + (cell - FONT_W) // 2, gy - FONT_H - 2, first, (60, 60, 60)
                    )
    return canvas.png()


def attention_svg(grid: list[list[Panel]], tokens: list[str], first_query: int = 0) -> str:
    t, a = len(tokens), first_query
    cols, rows = max(len(r) for r in grid), len(grid)
    cell = max(1.0, min(16.0, PANEL_PX / t / (1 if cols * rows == 1 else min(cols, 4) / 1.5)))
    labels = cell >= 6
    font = min(11.0, cell * 0.9)
    left = 60.0 if labels else 4.0
    top = 22.0 + (40.0 if labels else 0.0)
    pw, ph = left + t * cell, top + (t - a) * cell
    width, height = cols * pw + (cols - 1) * GAP, rows * ph + (rows - 1) * GAP
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'font-family="monospace" font-size="{font:.1f}">',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
    ]
    for r, row in enumerate(grid):
        for c, (title, weights) in enumerate(row):
            x0, y0 = c * (pw + GAP), r * (ph + GAP)
            gx, gy = x0 + left, y0 + top
            out.append(
                f'<text x="{gx:.1f}" y="{y0 + 14:.1f}" font-size="13" '
                f'font-family="sans-serif">{escape(title)}</text>'
            )
            out.append(
                f'<rect x="{gx:.1f}" y="{gy:.1f}" width="{t * cell:.1f}" '
                f'height="{(t - a) * cell:.1f}" fill="none" stroke="#aaa"/>'
            )
            w = weights.float().tolist()
            for qr in range(t - a):  # row qr is query a + qr
                for j in range(a + qr + 1):
                    if w[qr][j] > 0:
                        v = _shade(w[qr][j])[0]  # the PNG's colour, (v, v, 255)
                        out.append(
                            f'<rect x="{gx + j * cell:.2f}" y="{gy + qr * cell:.2f}" '
                            f'width="{cell:.2f}" height="{cell:.2f}" '
                            f'fill="rgb({v},{v},255)"/>'
                        )
            if labels:
                for qr in range(t - a):
                    out.append(
                        f'<text x="{gx - 3:.1f}" y="{gy + (qr + 0.8) * cell:.1f}" '
                        f'text-anchor="end">{escape(visible(tokens[a + qr])[:8])}</text>'
                    )
                for j in range(t):
                    cx, cy = gx + (j + 0.7) * cell, gy - 3
                    out.append(
                        f'<text x="{cx:.1f}" y="{cy:.1f}" transform="rotate(-90 '
                        f'{cx:.1f} {cy:.1f})">{escape(visible(tokens[j])[:8])}</text>'
                    )
    out.append("</svg>")
    return "\n".join(out)
