"""PNG and SVG figures of a predictions, attribution or patching report: the text coloured by
loss, the attribution as bars, the patching grid (heads and residual streams by position)."""

from __future__ import annotations

from html import escape

from tinygpt.analysis.interpret_report import AttributionReport, PatchingReport, PredictionsReport
from tinygpt.analysis.labels import visible
from tinygpt.views.font import HEIGHT as FONT_H
from tinygpt.views.font import WIDTH as FONT_W
from tinygpt.views.interpret_text import loss_rgb, restored_rgb
from tinygpt.views.png import Canvas

Report = PredictionsReport | AttributionReport | PatchingReport
Rows = list[tuple[str, list[tuple[str, tuple[int, int, int]]]]]  # (label, [(text, colour)])
LINE_CHARS = 80  # characters of prompt per line of the predictions figure
CELL = 12  # pixels of a patching cell
LABEL = 10 * FONT_W  # room for a row label
BAR = 240  # pixels of the longest attribution bar


def _text_rows(report: PredictionsReport) -> Rows:
    rows, line, width = [], [], 0
    for i, token in enumerate(report.tokens):
        loss = report.predictions[i - 1].loss if i > 0 else None
        shown = visible(token) if token.strip() == "" else token.replace("\n", " ")
        if width + len(shown) > LINE_CHARS and line:
            rows.append(("", line))
            line, width = [], 0
        line.append((shown, loss_rgb(loss)))
        width += len(shown)
    return [*rows, ("", line)] if line else rows


def _grid_rows(report: PatchingReport) -> Rows:
    return [(label, [("", restored_rgb(float(v))) for v in row]) for label, row in report.grid()]


def report_png(report: Report) -> bytes:
    if isinstance(report, AttributionReport):
        return _bars_png(report)
    text = isinstance(report, PredictionsReport)
    rows = _text_rows(report) if text else _grid_rows(report)
    title = f"{'loss of each token' if text else 'restored by patching'}: {report.model}"[:100]
    width = LABEL + (LINE_CHARS * FONT_W if text else CELL * len(report.clean)) + 8
    height = FONT_H + 6 + len(rows) * (FONT_H + 4 if text else CELL) + (0 if text else FONT_H + 4)
    canvas = Canvas(max(width, len(title) * FONT_W + 8), height)
    canvas.text(4, 2, title)
    top = FONT_H + 6
    if not text:  # the positions' first characters above the columns
        for j, tok in enumerate(report.clean):
            canvas.text(LABEL + j * CELL + 3, top, visible(tok)[:1], (90, 90, 90))
        top += FONT_H + 4
    for k, (label, cells) in enumerate(rows):
        y = top + k * (FONT_H + 4 if text else CELL)
        canvas.text(2, y + 1, label[:10], (60, 60, 60))
        x = LABEL
        for shown, colour in cells:
            w = len(shown) * FONT_W if text else CELL - 1
            canvas.rect(x, y, w, FONT_H + 2 if text else CELL - 1, colour)
            canvas.text(x, y + 1, shown)
            x += w if text else CELL
    return canvas.png()


def _bars_title(report: AttributionReport) -> str:
    return f"direct shares of the logit of {visible(report.target_text)} at {report.position}"


def _bars_png(report: AttributionReport) -> bytes:
    shares = report.attribution.shares[:20]
    biggest = max((abs(s.logit) for s in shares), default=1.0) or 1.0
    mid = LABEL + BAR + 4
    canvas = Canvas(LABEL + 2 * BAR + 8 * FONT_W, (len(shares) + 2) * (FONT_H + 4))
    canvas.text(4, 2, _bars_title(report)[:90])
    for k, s in enumerate(shares):
        y = (k + 1) * (FONT_H + 4) + 4
        canvas.text(2, y, s.component[:10], (60, 60, 60))
        w = round(BAR * abs(s.logit) / biggest)
        colour = (74, 123, 208) if s.logit >= 0 else (208, 90, 74)
        canvas.rect(mid if s.logit >= 0 else mid - w, y, w, FONT_H, colour)
        canvas.text(mid + BAR + 4 if s.logit >= 0 else mid + 4, y, f"{s.logit:+.2f}")
    canvas.rect(mid, FONT_H + 6, 1, len(shares) * (FONT_H + 4), (0, 0, 0))
    return canvas.png()


def report_svg(report: Report) -> str:
    if isinstance(report, AttributionReport):
        return _bars_svg(report)
    text = isinstance(report, PredictionsReport)
    rows = _text_rows(report) if text else _grid_rows(report)
    char, line = 7.2, 18.0
    width = 90 + (LINE_CHARS * char if text else CELL * len(report.clean)) + 10
    height = 30 + len(rows) * (line if text else CELL) + (0 if text else 16)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        'font-family="monospace" font-size="12">',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>',
        f'<text x="4" y="16" font-family="sans-serif">{escape(report.model)}</text>',
    ]
    top = 24.0
    if not text:
        for j, tok in enumerate(report.clean):
            out.append(
                f'<text x="{90 + j * CELL + 2}" y="{top + 10}" font-size="10">'
                f"{escape(visible(tok)[:1])}</text>"
            )
        top += 16
    for k, (label, cells) in enumerate(rows):
        y = top + k * (line if text else CELL)
        out.append(f'<text x="2" y="{y + 11:.1f}" font-size="10">{escape(label)}</text>')
        x = 90.0
        for shown, (r, g, b) in cells:
            w = len(shown) * char if text else CELL - 1
            h = line - 2 if text else CELL - 1
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h}" '
                f'fill="rgb({r},{g},{b})"/>'
            )
            if shown:
                out.append(
                    f'<text x="{x:.1f}" y="{y + 13:.1f}" xml:space="preserve">'
                    f"{escape(shown)}</text>"
                )
            x += w if text else CELL
    return "\n".join([*out, "</svg>"]) + "\n"


def _bars_svg(report: AttributionReport) -> str:
    shares = report.attribution.shares[:20]
    biggest = max((abs(s.logit) for s in shares), default=1.0) or 1.0
    mid, line = 90 + BAR, 18
    width, height = 90 + 2 * BAR + 80, (len(shares) + 2) * line
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="monospace" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="4" y="14">{escape(_bars_title(report))}</text>',
    ]
    for k, s in enumerate(shares):
        y = (k + 1) * line + 4
        w = BAR * abs(s.logit) / biggest
        x = mid if s.logit >= 0 else mid - w
        colour = "#4a7bd0" if s.logit >= 0 else "#d05a4a"
        out.append(f'<text x="2" y="{y + 12}">{escape(s.component)}</text>')
        out.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="12" fill="{colour}"/>')
        out.append(f'<text x="{mid + BAR + 4}" y="{y + 12}">{s.logit:+.2f}</text>')
    return "\n".join([*out, "</svg>"]) + "\n"
