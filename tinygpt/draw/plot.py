"""Loss curves: in the terminal (characters), and as SVG or PNG files, with no plotting library.

PNG is written with :mod:`tinygpt.draw.png` (standard library only).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from tinygpt.draw.png import Canvas

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
    for i in range(5):
        y = y0 + i * (y1 - y0) / 4
        _, py = px(x0, y)
        parts.append(f'<text x="{left - 6}" y="{py + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    parts.append(f'<text x="{left}" y="{height - 12}">{x0:g}</text>')
    parts.append(
        f'<text x="{width - right}" y="{height - 12}" text-anchor="end">step {x1:g}</text>'
    )
    for i, (label, _, color, points) in enumerate(series):
        rgb = f"rgb{color}"
        coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in (px(x, y) for x, y in points))
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{rgb}" stroke-width="2"/>')
        parts.append(
            f'<text x="{width - right - 80}" y="{top + 16 * i}" fill="{rgb}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def png_plot(metrics: list[dict[str, Any]], width: int = 640, height: int = 400) -> bytes:
    series = _series(metrics)
    if not series:
        raise ValueError("no evaluations recorded yet")
    x0, x1, y0, y1 = _bounds(series)
    pad = 30
    canvas = Canvas(width, height)

    def px(x: float, y: float) -> tuple[int, int]:
        return (
            round(pad + (x - x0) / (x1 - x0) * (width - 2 * pad)),
            round(pad + (y1 - y) / (y1 - y0) * (height - 2 * pad)),
        )

    canvas.line((pad, height - pad), (width - pad, height - pad), (0, 0, 0))
    canvas.line((pad, pad), (pad, height - pad), (0, 0, 0))
    for _, _, color, points in series:
        for a, b in itertools.pairwise(points):
            canvas.line(px(*a), px(*b), color)
        if len(points) == 1:
            canvas.line(px(*points[0]), px(*points[0]), color)
    return canvas.png()


def write_plot(path: Path, metrics: list[dict[str, Any]], title: str) -> None:
    from tinygpt.errors import UsageError
    from tinygpt.fileio import atomic_write_bytes

    suffix = path.suffix.lower()
    if suffix not in (".svg", ".png"):
        raise UsageError(f"--out must end in .svg or .png, got {path.name}")
    if not _series(metrics):
        raise UsageError("this checkpoint has no evaluations in metrics.jsonl yet")
    data = svg_plot(metrics, title).encode() if suffix == ".svg" else png_plot(metrics)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
