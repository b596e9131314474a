"""Writing an attention report to files: JSON, the HTML page, PNG and SVG figures, raw npz."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinygpt.analysis.attention_report import AttentionReport
from tinygpt.io.json_text import json_text
from tinygpt.views.attention_figures import attention_png, attention_svg, report_panels
from tinygpt.views.attention_html import render_html
from tinygpt.views.output import write_output


@dataclass
class ReportFiles:
    """Where to write each output; None skips it."""

    json: Path | None = None
    html: Path | None = None
    png: Path | None = None
    svg: Path | None = None
    npz: Path | None = None


def write_report(
    report: AttentionReport,
    files: ReportFiles,
    layer: int | None = None,
    head: int | None = None,
    title: str = "",
    rollout: bool = False,
) -> list[Path]:
    """Write the files asked for, each showing the focused layer/head (all when None), the
    figures with the rollout too when ``rollout``; returns the paths written."""
    written = []
    grid = report_panels(report, layer, head, rollout)
    tokens, first = report.tokens, report.first_query
    outputs = [
        (files.json, lambda: json_text(report.to_dict()).encode("utf-8")),
        (
            files.html,
            lambda: render_html(
                report.to_dict(tensors=True),
                title,
                (layer or 0, head or 0),
                layers=None if layer is None else [layer],
                heads=None if head is None else [head],
            ).encode("utf-8"),
        ),
        (files.png, lambda: attention_png(grid, tokens, first)),
        (files.svg, lambda: attention_svg(grid, tokens, first).encode("utf-8")),
        (files.npz, report.to_npz),
    ]
    for path, render in outputs:
        if path is not None:
            write_output(path, render())
            written.append(path)
    return written
