"""One self-contained HTML page of a model's attention, offline. The data is JSON in a
``<script type="application/json">`` block (``<``, ``>``, ``&`` escaped) and the script puts
tokens into the page only through ``textContent``: a prompt is untrusted text. Heatmap labels
are placed in CSS pixels from the cell size, each centred on its row or column (every k-th when
cells are small); tests/test_browser.py checks this in Chromium.
"""

from __future__ import annotations

import base64
import html
import re
from importlib import resources
from typing import Any

import torch

from tinygpt.analysis.labels import head_label, visible
from tinygpt.analysis.scores import CHANCE_MULTIPLE, SCORES
from tinygpt.views.interpret_text import LOUD_LOSS, loss_rgb
from tinygpt.views.page import csp, json_for_script

LOSS_LEVELS = 10  # colour steps of the loss scale
# The page's own style and script (files beside this module): the only ones its
# Content-Security-Policy allows (by hash).
_ASSETS = resources.files("tinygpt.views")
_STYLE = _ASSETS.joinpath("attention_page.css").read_text() + "".join(
    f".l{k} {{ background: rgb{loss_rgb(k / LOSS_LEVELS * LOUD_LOSS)}; }}\n"
    for k in range(LOSS_LEVELS + 1)
)
_SCRIPT = _ASSETS.joinpath("attention_page.js").read_text()
_CSP = csp(_STYLE, _SCRIPT)
_PAGE = _ASSETS.joinpath("attention_page.html").read_text()


def _pack(matrix: torch.Tensor, first_row: int = 0) -> str:
    """The causal half of the rows of queries ``first_row``.. (a (T - first_row, T) matrix),
    row by row, as base64 uint8 (w * 255)."""
    t = matrix.size(1)
    rows, cols = torch.tril_indices(t - first_row, t, offset=first_row)  # key <= query
    quantised = (matrix[rows, cols].float().clamp(0, 1) * 255).round().to(torch.uint8)
    return base64.b64encode(quantised.numpy().tobytes()).decode("ascii")


def render_html(
    report: dict[str, Any],
    title: str,
    selected: tuple[int, int] = (0, 0),
    layers: list[int] | None = None,
    heads: list[int] | None = None,
) -> str:
    """The page for a report's ``AttentionReport.to_dict``; ``selected`` is the head shown first,
    ``layers`` / ``heads`` keep only those (all by default). Weights travel as the causal half
    in uint8: 2 layers x 4 heads x 256 tokens is about 0.35 MB of page."""
    first_query = report.get("first_query", 0)
    weights = torch.as_tensor(report["attention"])
    layers = layers if layers is not None else list(range(weights.size(0)))
    heads = heads if heads is not None else list(range(weights.size(1)))
    data = {
        "model": report["model"],
        "tokens": report["tokens"],
        "layers": layers,
        "heads": heads,
        "first_query": first_query,
        "attention": [[_pack(weights[lay, h], first_query) for h in heads] for lay in layers],
        "rollout": _pack(torch.as_tensor(report["rollout"]), first_query),
        "labels": [[head_label(lay, h) for h in heads] for lay in layers],
        "columns": ["head", *(s.key for s in SCORES), "roles"],
        # Headers as the terminal's head table names them (prev, ent); the key on hover.
        "names": {s.key: s.column or s.key for s in SCORES},
        "scores": [
            {**s, "head": head_label(s["layer"], s["head"])}
            for s in report["scores"]
            if s["layer"] in layers and s["head"] in heads
        ],
        "selected": list(selected),
        "shown": [visible(t) for t in report["tokens"]],  # labels, as the terminal shows them
        # The same for every head (it depends on the prompt only): one row of the table.
        "chance": report["scores"][0]["chance"] if report["scores"] else {},
        "chance_multiple": CHANCE_MULTIPLE,
        "predictions": report.get("predictions"),
        "loss_levels": LOSS_LEVELS,
        "loud_loss": LOUD_LOSS,
    }
    parts = {
        "CSP": _CSP,
        "STYLE": _STYLE,
        "SCRIPT": _SCRIPT,
        "TITLE": html.escape(title),
        "DATA": json_for_script(data),
    }
    # One pass, so a title holding "__DATA__" stays text.
    return re.sub(r"__(CSP|STYLE|SCRIPT|TITLE|DATA)__", lambda m: parts[m.group(1)], _PAGE)
