"""Loss curves: in the terminal (characters), and as SVG or PNG files, with no plotting library."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from tinygpt.views.png import Canvas

SERIES = (("train_loss", "train", "•", (31, 119, 180)), ("val_loss", "val", "×", (214, 39, 40)))


def _series(metrics: list[dict[str, Any]]) -> list[tuple[str, str, tuple, list[tuple[int, float]]]]:
    out = []
    for key, label, mark, color in SERIES:
        points = [
            (m["step"], float(m[key])) for m in metrics if key in m and math.isfinite(float(m[key]))
        ]
        if points:
            out.append((label, mark, color, points))
    return out


def _bounds(series) -> tuple[float, float, float, float]:
    xs = [x for *_, pts in series for x, _ in pts]
    ys = [y for *_, pts in series for _, y in pts]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    return x0, (x1 if x1 > x0 else x0 + 1), y0, (y1 if y1 > y0 else y0 + 1)


def terminal_plot(metrics: list[dict[str, Any]], width: int = 64, height: int = 16) -> str:
    series = _series(metrics)
    if not series:
        return "no evaluations recorded yet"
    x0, x1, y0, y1 = _bounds(series)
    grid = [[" "] * width for _ in range(height)]
    for _, mark, _, points in series:
        for x, y in points:
            col = round((x - x0) / (x1 - x0) * (width - 1))
            row = round((y1 - y) / (y1 - y0) * (height - 1))
            grid[row][col] = mark
    lines = []
    for r, row in enumerate(grid):
        label = f"{y1 - r * (y1 - y0) / (height - 1):7.3f}" if r % 5 == 0 or r == height - 1 else ""
        lines.append(f"{label:>7} │{''.join(row)}".rstrip())  # no trailing spaces when piped
    lines.append(" " * 8 + "└" + "─" * width)
    lines.append(" " * 9 + f"{x0:<{width // 2}g}{x1:>{width - width // 2}g}  step")
    legend = "   ".join(f"{mark} {label}" for label, mark, _, _ in series)
    return "\n".join([f"loss   {legend}", *lines])


def svg_plot(metrics: list[dict[str, Any]], title: str, width: int = 640, height: int = 400) -> str:
    series = _series(metrics)
    if not series:
        raise ValueError("no evaluations recorded yet")
    x0, x1, y0, y1 = _bounds(series)
    left, right, top, bottom = 60, 20, 40, 40

    def px(x: float, y: float) -> tuple[float, float]:
        return (
            left + (x - x0) / (x1 - x0) * (width - left - right),
            top + (y1 - y) / (y1 - y0) * (height - top - bottom),
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{left}" y="22" font-size="14">{escape(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" '
        f'y2="{height - bottom}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
    ]
    for y in nice_ticks(y0, y1):  # loss ticks, with light grid lines
        _, py = px(x0, y)
        parts.append(
            f'<line x1="{left}" y1="{py:.1f}" x2="{width - right}" y2="{py:.1f}" stroke="#ddd"/>'
        )
        parts.append(f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">{y:g}</text>')
    for x in nice_ticks(x0, x1):  # step ticks
        pxx, _ = px(x, y0)
        parts.append(
            f'<line x1="{pxx:.1f}" y1="{height - bottom}" x2="{pxx:.1f}" '
            f'y2="{height - bottom + 4}" stroke="black"/>'
        )
        parts.append(
            f'<text x="{pxx:.1f}" y="{height - bottom + 16}" text-anchor="middle">{x:g}</text>'
        )
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 6}">step</text>')
    parts.append(
        f'<text x="14" y="{(top + height - bottom) / 2}" '
        f'transform="rotate(-90 14 {(top + height - bottom) / 2})">loss</text>'
    )
    for i, (label, _, color, points) in enumerate(series):
        rgb = f"rgb{color}"
        coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(x, y) for x, y in points))
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{rgb}" stroke-width="2"/>')
        ly = top + 16 * i
        lx = width - right - 100
        parts.append(
            f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 16}" y2="{ly - 4}" stroke="{rgb}" '
            f'stroke-width="2"/>'
        )
        parts.append(f'<text x="{lx + 22}" y="{ly}" fill="{rgb}">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About ``count`` round values (1, 2, 2.5 or 5 times a power of ten apart) in [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def tick_decimals(span: float, ticks: int = 5) -> int:
    """Decimals that tell ``ticks`` evenly spaced values over ``span`` apart (at least 2)."""
    step = span / max(1, ticks - 1)
    return max(2, min(6, 1 - math.floor(math.log10(step)))) if step > 0 else 2


def png_plot(
    metrics: list[dict[str, Any]], title: str = "", width: int = 640, height: int = 400
) -> bytes:
    """The curves with what the SVG has: axes with tick values, the axis names and a legend
    (bitmap-font text, so tick labels are ASCII)."""
    from tinygpt.views.font import HEIGHT as FONT_H
    from tinygpt.views.font import WIDTH as FONT_W

    series = _series(metrics)
    if not series:
        raise ValueError("no evaluations recorded yet")
    x0, x1, y0, y1 = _bounds(series)
    decimals = tick_decimals(y1 - y0)
    y_labels = [f"{y0 + (y1 - y0) / 4 * i:.{decimals}f}" for i in range(5)]
    left = max(len(label) for label in y_labels) * FONT_W + 14
    right, top, bottom = 24, 2 * FONT_H + 16, 2 * FONT_H + 20
    black, grey, faint = (0, 0, 0), (90, 90, 90), (228, 228, 228)
    canvas = Canvas(width, height)

    def px(x: float, y: float) -> tuple[int, int]:
        return (
            round(left + (x - x0) / (x1 - x0) * (width - left - right)),
            round(top + (y1 - y) / (y1 - y0) * (height - top - bottom)),
        )

    def text(x: int, y: int, label: str, color=black, anchor: str = "left") -> None:
        shift = {"left": 0, "center": len(label) * FONT_W // 2, "right": len(label) * FONT_W}
        canvas.text(x - shift[anchor], y, label, color)

    base = height - bottom
    for i, label in enumerate(y_labels):  # value ticks, with faint grid lines
        _, y = px(x0, y0 + (y1 - y0) / 4 * i)
        canvas.rect(left + 1, y, width - left - right, 1, faint)
        canvas.rect(left - 4, y, 4, 1, black)
        text(left - 7, y - FONT_H // 2, label, grey, "right")
    steps = sorted({round(x0 + i * (x1 - x0) / 4) for i in range(5)})
    for step in steps:  # step ticks
        x, _ = px(step, y0)
        canvas.rect(x, base, 1, 4, black)
        text(x, base + 6, f"{step:g}", grey, "center")
    canvas.rect(left, top, 1, base - top + 1, black)  # the axes
    canvas.rect(left, base, width - left - right + 1, 1, black)
    text((left + width - right) // 2, base + FONT_H + 10, "step", anchor="center")
    text(4, top - FONT_H - 6, "loss")
    text(4, 4, title[: width // FONT_W - 24])  # leaves room for the legend
    legend_x = width - right - max(len(label) for label, *_ in series) * FONT_W - 24
    for i, (label, _, color, points) in enumerate(series):
        y = 4 + i * (FONT_H + 2)
        canvas.rect(legend_x, y + FONT_H // 2, 16, 2, color)
        text(legend_x + 22, y, label)
        for a, b in itertools.pairwise(points):
            canvas.line(px(*a), px(*b), color)
        if len(points) == 1:
            canvas.line(px(*points[0]), px(*points[0]), color)
    return canvas.png()


def check_plot_name(path: Path) -> None:
    from tinygpt.errors import UsageError

    if path.suffix.lower() not in (".svg", ".png"):
        raise UsageError(f"--out must end in .svg or .png, got {path.name}")


def write_plot(path: Path, metrics: list[dict[str, Any]], title: str) -> None:
    from tinygpt.errors import UsageError
    from tinygpt.views.output import write_output

    check_plot_name(path)
    suffix = path.suffix.lower()
    if not _series(metrics):
        raise UsageError("this checkpoint has no evaluations in metrics.jsonl yet")
    data = svg_plot(metrics, title).encode() if suffix == ".svg" else png_plot(metrics, title)
    write_output(path, data)
