"""One self-contained HTML page of a model's attention: no network, no CDN, works offline.

The data travels as JSON inside a ``<script type="application/json">`` block with ``<``, ``>``
and ``&`` escaped, and the page's script puts tokens into the document only through
``textContent``: a prompt is untrusted text and can never become markup.
"""

from __future__ import annotations

import base64
import html
import json
from typing import Any

import torch

from tinygpt.attention.labels import head_label
from tinygpt.attention.scores import SCORES

_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tinygpt attention: __TITLE__</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
.thumbs { display: flex; flex-wrap: wrap; gap: .6rem; }
.thumb { text-align: center; cursor: pointer; font-size: 12px; }
.thumb canvas { border: 1px solid #ccc; image-rendering: pixelated; }
.thumb.sel canvas { border: 2px solid #d33; }
canvas.big { border: 1px solid #ccc; image-rendering: pixelated; cursor: crosshair;
  max-width: 100%; }
.axis { font: 11px monospace; color: #555; max-width: 720px; overflow-wrap: anywhere; }
table.scores { border-collapse: collapse; } table.scores td, table.scores th
{ border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: right; }
#tip { position: fixed; background: #333; color: #fff; padding: 3px 6px; border-radius: 3px;
  font: 12px monospace; pointer-events: none; display: none; white-space: pre; }
.prompt { font-family: monospace; white-space: pre-wrap; background: #f6f6f6; padding: .5rem; }
</style></head><body>
<h1>Attention of <span id="model"></span></h1>
<div class="prompt" id="prompt"></div>
<h2>All heads <small>(click one)</small></h2><div class="thumbs" id="thumbs"></div>
<h2>Head <select id="layer"></select> <select id="head"></select></h2>
<p>Rows are queries, columns keys; darker is more weight. Hover a cell to read it.</p>
<div id="focus"></div>
<h2>Head roles</h2><div id="table"></div>
<h2>Attention rollout</h2>
<p>Heads averaged, identity added for the residual path, rows renormalised, layers multiplied
(Abnar &amp; Zuidema 2020): how much each token's final representation draws on each input.</p>
<div id="rollout"></div>
<div id="tip"></div>
<script type="application/json" id="data">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const T = D.tokens.length, tip = document.getElementById("tip");
const vis = s => s.replace(/ /g, "\u2423").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5");
// Causal half only, row by row, weights quantised to 0..255 (decoded once per matrix).
function unpack(b64) {
  const raw = atob(b64), bytes = new Uint8Array(raw.length), a = D.first_query;
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  // rows before first_query were left out (--queries): they draw blank
  return (i, j) => (j > i || i < a) ? 0 : bytes[i * (i + 1) / 2 - a * (a + 1) / 2 + j] / 255;
}
const ATT = D.attention.map(layer => layer.map(unpack));
const ROLL = unpack(D.rollout);
document.getElementById("model").textContent = D.model;
document.getElementById("prompt").textContent = D.tokens.join("");
function color(w) { const v = Math.round(255 * (1 - Math.sqrt(w))); return `rgb(${v},${v},255)`; }
function draw(canvas, w, size) {
  const s = Math.max(1, Math.floor(size / T)); canvas.width = canvas.height = T * s;
  const g = canvas.getContext("2d"), img = g.createImageData(T * s, T * s);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    const v = Math.round(255 * (1 - Math.sqrt(w(i, j))));
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      const p = ((i * s + y) * T * s + j * s + x) * 4;
      img.data[p] = v; img.data[p + 1] = v; img.data[p + 2] = 255; img.data[p + 3] = 255; } }
  g.putImageData(img, 0, 0); return s;
}
function heat(w, where) {
  const c = document.createElement("canvas"); c.className = "big";
  const s = draw(c, w, Math.min(720, Math.max(T * 8, 480)));
  c.onmousemove = e => { const r = c.getBoundingClientRect();
    const i = Math.floor((e.clientY - r.top) / (r.height / T));
    const j = Math.floor((e.clientX - r.left) / (r.width / T));
    if (i < 0 || j < 0 || i >= T || j >= T) return;
    tip.style.display = "block"; tip.style.left = e.clientX + 12 + "px";
    tip.style.top = e.clientY + 12 + "px";
    tip.textContent = `query ${i} ${JSON.stringify(D.tokens[i])}\nkey   ${j} ` +
      `${JSON.stringify(D.tokens[j])}\nweight ${w(i, j).toFixed(3)}`; };
  c.onmouseleave = () => { tip.style.display = "none"; };
  const axis = document.createElement("div"); axis.className = "axis";
  axis.textContent = T <= 96 ? "keys: " + D.tokens.map(vis).join(" ") : `${T} tokens`;
  where.replaceChildren(c, axis); return s;
}
function thumb(w, label, onclick) {
  const div = document.createElement("div"); div.className = "thumb";
  const c = document.createElement("canvas"); draw(c, w, 96);
  const cap = document.createElement("div"); cap.textContent = label;
  div.append(c, cap); div.onclick = onclick; return div;
}
const L = document.getElementById("layer"), H = document.getElementById("head");
D.layers.forEach((l, li) => L.add(new Option("layer " + l, li)));
D.heads.forEach((h, hi) => H.add(new Option("head " + h, hi)));
function show() {
  heat(ATT[+L.value][+H.value], document.getElementById("focus"));
  document.querySelectorAll(".thumb").forEach(el =>
    el.classList.toggle("sel", el.dataset.key === L.value + "." + H.value));
}
L.onchange = H.onchange = show;
L.value = Math.max(0, D.layers.indexOf(D.selected[0]));
H.value = Math.max(0, D.heads.indexOf(D.selected[1]));
const thumbs = document.getElementById("thumbs");
ATT.forEach((heads, li) => heads.forEach((w, hi) => {
  const el = thumb(w, D.labels[li][hi], () => { L.value = li; H.value = hi;
    show(); });
  el.dataset.key = li + "." + hi; thumbs.appendChild(el); }));
const cols = D.columns;
const tbl = document.createElement("table"); tbl.className = "scores";
const hr = tbl.createTHead().insertRow();
cols.forEach(c => { const th = document.createElement("th"); th.textContent = c;
  hr.appendChild(th); });
D.scores.forEach(s => { const tr = tbl.insertRow(); cols.forEach(c => { const td = tr.insertCell();
  const v = s[c];
  td.textContent = Array.isArray(v) ? v.join(", ") : (typeof v === "number" ? v.toFixed(3) :
    (v === null || v === undefined ? "-" : String(v))); }); });
document.getElementById("table").appendChild(tbl);
heat(ROLL, document.getElementById("rollout"));
show();
</script></body></html>
"""


def _json_for_script(data: Any) -> str:
    # Inside <script>, "</script>" or "<!--" in a token would end or confuse the block.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _pack(matrix: torch.Tensor, first_row: int = 0) -> str:
    """The causal half of the rows of queries ``first_row``.. (a (T - first_row, T) matrix),
    row by row, as base64 uint8 (w * 255)."""
    t = matrix.size(1)
    rows, cols = torch.tril_indices(t, t)
    keep = rows >= first_row
    rows, cols = rows[keep], cols[keep]
    quantised = (matrix[rows - first_row, cols].float().clamp(0, 1) * 255).round()
    quantised = quantised.to(torch.uint8)
    return base64.b64encode(quantised.numpy().tobytes()).decode("ascii")


def render_html(
    report: dict[str, Any],
    title: str,
    selected: tuple[int, int] = (0, 0),
    layers: list[int] | None = None,
    heads: list[int] | None = None,
) -> str:
    """The page for a report's :meth:`~tinygpt.attention.report.AttentionReport.to_dict`;
    ``selected`` is the head shown first.

    ``layers`` / ``heads`` keep only those (all by default). Weights travel as the causal half
    in uint8: 2 layers x 4 heads x 256 tokens is about 0.35 MB of page.
    """
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
        "scores": [
            {**s, "head": head_label(s["layer"], s["head"])}
            for s in report["scores"]
            if s["layer"] in layers and s["head"] in heads
        ],
        "selected": list(selected),
    }
    return _PAGE.replace("__TITLE__", html.escape(title)).replace(
        "__DATA__", _json_for_script(data)
    )
