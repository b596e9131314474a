"""A self-contained HTML page for a predictions, attribution or patching report. It has no
script: all text from the prompt or the model goes through ``html.escape``, colours are classes
(the CSP allows the page's one style sheet, by hash, and no inline style), nothing is fetched.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from tinygpt.analysis.interpret_report import AttributionReport, PatchingReport, PredictionsReport
from tinygpt.analysis.labels import visible
from tinygpt.views.interpret_text import loss_rgb, restored_rgb
from tinygpt.views.page import csp

LEVELS = 10  # colour steps of the loss and restoration scales


def _scale(prefix: str, rgb) -> str:
    colours = (rgb(k / LEVELS) for k in range(LEVELS + 1))
    return "".join(
        f".{prefix}{k} {{ background: rgb({r},{g},{b}); }}\n" for k, (r, g, b) in enumerate(colours)
    )


_STYLE = (
    """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
.text { font-family: monospace; white-space: pre-wrap; line-height: 1.8; }
.text span { padding: 1px 0; }
table { border-collapse: collapse; } td, th { padding: 2px 8px; border-bottom: 1px solid #ddd; }
td.n { text-align: right; font-family: monospace; }
.grid { overflow-x: auto; max-width: 100%; } .grid td { text-align: right; font: 12px monospace; }
.grid th { font: 11px monospace; writing-mode: vertical-rl; transform: rotate(180deg); }
.bar { display: inline-block; height: .8em; background: #4a7bd0; }
.bar.neg { background: #d05a4a; }
.note { color: #555; font-size: 13px; }
"""
    + _scale("l", lambda t: loss_rgb(t * 5.0))
    + _scale("p", restored_rgb)
    + _scale("m", lambda t: restored_rgb(-t))
)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _loss_class(loss: float | None) -> str:
    if loss is None:
        return "l0"
    return f"l{min(LEVELS, max(0, round(LEVELS * loss / 5.0)))}"


def _restored_td(value: object, title: str = "") -> str:
    """A patching cell: the share of the gap restored, coloured by it."""
    v = float(value)
    level = min(LEVELS, round(LEVELS * min(1.0, abs(v))))
    return _td(f"{v:+.2f}", f"{'p' if v >= 0 else 'm'}{level}", title)


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], cls: str = "") -> str:
    """Cells are given as HTML already escaped."""
    out = [f'<table class="{cls}"><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    out += ["<tr>" + "".join(cells) + "</tr>" for cells in rows]
    return "\n".join(out) + "</table>"


def _td(text: object, cls: str = "", title: str = "") -> str:
    attrs = (f' class="{cls}"' if cls else "") + (f' title="{_e(title)}"' if title else "")
    return f"<td{attrs}>{_e(text)}</td>"


def predictions_section(report: PredictionsReport) -> str:
    spans = []
    for i, token in enumerate(report.tokens):
        loss = report.predictions[i - 1].loss if i > 0 else None
        guess = report.predictions[i - 1] if i > 0 else None
        title = f"{i}: {token!r}"
        if guess is not None and loss is not None:
            tops = ", ".join(f"{report.names[t]!r} {p:.2f}" for t, p in guess.top)
            title += f"\nloss {loss:.2f} (p {guess.next_prob:.3f})\nexpected: {tops}"
        spans.append(f'<span class="{_loss_class(loss)}" title="{_e(title)}">{_e(token)}</span>')
    rows = []
    for p in report.predictions:
        nxt = visible(report.names[p.next_id]) if p.next_id is not None else "-"
        rows.append(
            [
                _td(p.position, "n"),
                _td(visible(report.tokens[p.position])),
                _td(nxt, _loss_class(p.loss)),
                _td(f"{p.next_prob:.3f}" if p.next_prob is not None else "-", "n"),
                _td(f"{p.loss:.2f}" if p.loss is not None else "-", "n"),
                _td("  ".join(f"{visible(report.names[t])} {q:.2f}" for t, q in p.top)),
            ]
        )
    mean = report.mean_loss
    return (
        "<h2>What the model predicted</h2>"
        '<p class="note">Each token\'s colour is the loss of predicting it from the tokens before '
        "it (white: expected, red: 5 nats or more); hover a token for the model's guesses."
        + (f" Mean loss {mean:.3f} nats." if mean is not None else "")
        + "</p>"
        f'<div class="text">{"".join(spans)}</div>'
        + _table(["pos", "token", "next", "p(next)", "loss", "top guesses"], rows)
    )


def attribution_section(report: AttributionReport) -> str:
    a = report.attribution
    biggest = max((abs(s.logit) for s in a.shares), default=1.0) or 1.0
    rows = []
    for s in a.shares:
        width = round(120 * abs(s.logit) / biggest)
        bar = f'<td><span class="bar{" neg" if s.logit < 0 else ""} w{width}"></span></td>'
        rows.append([_td(s.component), _td(f"{s.logit:+.3f}", "n"), bar])
    lens = [
        [
            _td(r.after),
            _td(visible(report.names[r.top_id])),
            _td(f"{r.top_prob:.3f}", "n"),
            _td(f"{r.target_prob:.3f}", "n"),
            _td(r.target_rank + 1, "n"),
        ]
        for r in report.lens
    ]
    return (
        "<h2>Direct logit attribution</h2>"
        f"<p>Position {report.position} ({_e(visible(report.tokens[report.position]))}), target "
        f"<b>{_e(visible(report.target_text))}</b> (id {report.target}).</p>"
        + _table(["component", "logit share", ""], rows)
        + f'<p class="note">Sum {a.total:.4f}; the logit before the soft-cap {a.raw_logit:.4f}, '
        f"after it {a.logit:.4f}. Each share: the component's output through the final norm "
        "(its scale frozen at this position) and the head's row for the target.</p>"
        "<h2>Logit lens</h2>" + _table(["after", "top token", "p(top)", "p(target)", "rank"], lens)
    )


def patching_section(report: PatchingReport) -> str:
    r, layers = report.result, range(report.layers)
    heads = [[_td(f"L{layer}"), *map(_restored_td, r.heads[layer])] for layer in layers]
    columns = [_e(f"{j} {visible(tok)}") for j, tok in enumerate(report.clean)]
    grid = []
    for label, row in report.grid():
        # a head's cells name it (residual cells do not)
        named = not label.startswith("resid")
        cells = (_restored_td(v, f"{label} at {j}" if named else "") for j, v in enumerate(row))
        grid.append([_td(label), *cells])
    return (
        "<h2>Activation patching</h2>"
        f'<p>Clean: <span class="text">{_e("".join(report.clean))}</span><br>'
        f'Corrupted: <span class="text">{_e("".join(report.corrupted))}</span><br>'
        f"Target <b>{_e(visible(report.target_text))}</b> at position {r.position}: log-prob "
        f"{r.clean_logprob:.3f} clean, {r.corrupted_logprob:.3f} corrupted. A cell is the share "
        "of that gap a patch from the clean run restores (blue 1: all, red: worse).</p>"
        "<h3>Each head's output, patched at every position</h3>"
        + _table(["layer", *(f"H{h}" for h in range(report.heads))], heads)
        + "<h3>One position at a time</h3>"
        + f'<div class="grid">{_table(["", *columns], grid)}</div>'
    )


def render_page(report: PredictionsReport | AttributionReport | PatchingReport) -> str:
    if isinstance(report, PredictionsReport):
        kind, body = "predictions", predictions_section(report)
    elif isinstance(report, AttributionReport):
        kind, body = "attribution", attribution_section(report)
    else:
        kind, body = "patching", patching_section(report)
    widths = "\n".join(f".w{w} {{ width: {w}px; }}" for w in range(121))
    style = _STYLE + widths
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp(style)}">\n'
        f"<title>tinygpt {kind}: {_e(report.model)}</title>\n"
        f"<style>{style}</style></head><body>\n"
        f"<h1>{_e(kind.capitalize())} of {_e(report.model)}</h1>\n{body}\n</body></html>\n"
    )
