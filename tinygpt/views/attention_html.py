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
from typing import Any

import torch

from tinygpt.analysis.labels import head_label, visible
from tinygpt.analysis.scores import CHANCE_MULTIPLE, SCORES
from tinygpt.views.interpret_text import LOUD_LOSS, loss_rgb
from tinygpt.views.page import csp, json_for_script

LOSS_LEVELS = 10  # colour steps of the loss scale

# The page's own style and script: the only ones its Content-Security-Policy allows (by hash).
_STYLE = (
    """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
.thumbs { display: flex; flex-wrap: wrap; gap: .6rem; }
.thumb { text-align: center; cursor: pointer; font-size: 12px; }
.thumb canvas { outline: 1px solid #ccc; image-rendering: pixelated; }
.thumb.sel canvas { outline: 2px solid #d33; }
.fig { display: grid; grid-template-columns: max-content max-content; overflow-x: auto;
  max-width: 100%; }
.fig canvas { outline: 1px solid #ccc; image-rendering: pixelated; cursor: crosshair;
  display: block; }
.keys, .queries { position: relative; overflow: hidden; font-family: monospace; color: #555; }
.keys span, .queries span { position: absolute; white-space: pre; overflow: hidden; }
/* vertical text turned to read upwards, starting just above its column */
.keys span { top: 0; bottom: 3px; writing-mode: vertical-rl; transform: rotate(180deg); }
.queries span { left: 0; right: 4px; text-align: right; text-overflow: ellipsis; }
.axis-note { font-size: 12px; color: #555; }
table.scores { border-collapse: collapse; } table.scores td, table.scores th
{ border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: right; }
table.scores tr.chance td { color: #777; font-style: italic; border-bottom: 2px solid #bbb; }
#tip { position: fixed; background: #333; color: #fff; padding: 3px 6px; border-radius: 3px;
  font: 12px monospace; pointer-events: none; display: none; white-space: pre; }
.prompt { font-family: monospace; white-space: pre-wrap; background: #f6f6f6; padding: .5rem; }
#predicted { font-family: monospace; white-space: pre-wrap; line-height: 1.8; }
"""
    + "\n".join(
        f".l{k} {{ background: rgb{loss_rgb(k / LOSS_LEVELS * LOUD_LOSS)}; }}"
        for k in range(LOSS_LEVELS + 1)
    )
    + "\n"
)

_SCRIPT = r"""
"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const T = D.tokens.length, A = D.first_query, ROWS = T - A;
const tip = document.getElementById("tip");
// Labels: at least LABEL_PX apart (every token when cells are that big, else every k-th),
// at most KEY_CHARS / QUERY_CHARS characters (the whole token on hover).
const LABEL_PX = 11, KEY_CHARS = 8, QUERY_CHARS = 10;
// Causal half only, row by row, weights quantised to 0..255 (decoded once per matrix).
function unpack(b64) {
  const raw = atob(b64), bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return (i, j) => (j > i || i < A) ? 0 : bytes[i * (i + 1) / 2 - A * (A + 1) / 2 + j] / 255;
}
const ATT = D.attention.map(layer => layer.map(unpack));
const ROLL = unpack(D.rollout);
document.getElementById("model").textContent = D.model;
document.getElementById("prompt").textContent = D.tokens.join("");
// One row per query in range (A..T-1), one column per key, s x s pixels a cell.
function draw(canvas, w, size) {
  const s = Math.max(1, Math.floor(size / T)); canvas.width = T * s; canvas.height = ROWS * s;
  const g = canvas.getContext("2d"), img = g.createImageData(T * s, ROWS * s);
  for (let r = 0; r < ROWS; r++) for (let j = 0; j < T; j++) {
    const v = Math.round(255 * (1 - Math.sqrt(w(A + r, j))));
    for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) {
      const p = ((r * s + y) * T * s + j * s + x) * 4;
      img.data[p] = v; img.data[p + 1] = v; img.data[p + 2] = 255; img.data[p + 3] = 255; } }
  g.putImageData(img, 0, 0); return s;
}
const cut = (text, n) => text.length > n ? text.slice(0, n - 1) + "\u2026" : text;
function labels(cls, count, first, s, chars, place) {
  // Each label is centred on its row or column: pitch px wide, so text never overlaps.
  const pitch = s * Math.ceil(LABEL_PX / s), font = Math.min(12, pitch - 1);
  const box = document.createElement("div"); box.className = cls;
  box.style.fontSize = font + "px";
  let longest = 1;
  for (let n = 0; n < count; n += pitch / s) {
    const el = document.createElement("span"), k = first + n, text = cut(D.shown[k], chars);
    el.textContent = text; el.title = `${k}: ${JSON.stringify(D.tokens[k])}`;
    el.dataset.index = k; el.style.lineHeight = pitch + "px";
    longest = Math.max(longest, [...text].length);
    place(el, (n + 0.5) * s - pitch / 2, pitch); box.appendChild(el);
  }
  return [box, Math.ceil(longest * 0.62 * font) + 8];  // room for the longest label
}
function heat(w, where) {
  const c = document.createElement("canvas");
  const s = draw(c, w, Math.min(960, Math.max(T * 12, 480)));
  c.onmousemove = e => { const b = c.getBoundingClientRect();
    const r = Math.floor((e.clientY - b.top) / (b.height / ROWS)), i = A + r;
    const j = Math.floor((e.clientX - b.left) / (b.width / T));
    if (r < 0 || j < 0 || r >= ROWS || j >= T) return;
    tip.style.display = "block"; tip.style.left = e.clientX + 12 + "px";
    tip.style.top = e.clientY + 12 + "px";
    tip.textContent = `query ${i} ${JSON.stringify(D.tokens[i])}\nkey   ${j} ` +
      `${JSON.stringify(D.tokens[j])}\nweight ${w(i, j).toFixed(3)}`; };
  c.onmouseleave = () => { tip.style.display = "none"; };
  const [keys, keysHeight] = labels("keys", T, 0, s, KEY_CHARS, (el, at, size) => {
    el.style.left = at + "px"; el.style.width = size + "px"; });
  keys.style.width = T * s + "px"; keys.style.height = keysHeight + "px";
  const [queries, queriesWidth] = labels("queries", ROWS, A, s, QUERY_CHARS, (el, at, size) => {
    el.style.top = at + "px"; el.style.height = size + "px"; });
  queries.style.width = queriesWidth + "px"; queries.style.height = ROWS * s + "px";
  const corner = document.createElement("div");
  const fig = document.createElement("div"); fig.className = "fig";
  fig.append(corner, keys, queries, c); where.replaceChildren(fig); return s;
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
const cols = D.columns, tbl = document.createElement("table"); tbl.className = "scores";
const hr = tbl.createTHead().insertRow();
cols.forEach(c => { const th = document.createElement("th"); th.textContent = D.names[c] || c;
  th.title = c; hr.appendChild(th); });
const cell = v => Array.isArray(v) ? v.join(", ") : (typeof v === "number" ? v.toFixed(3) :
  (v === null || v === undefined ? "-" : String(v)));
// Chance first: what each score would be for a head spreading its attention evenly.
const chance = tbl.insertRow(); chance.className = "chance";
cols.forEach((c, k) => { chance.insertCell().textContent = k === 0 ? "chance" :
  (c in D.chance ? cell(D.chance[c]) : ""); });
D.scores.forEach(s => { const tr = tbl.insertRow();
  cols.forEach(c => { tr.insertCell().textContent = cell(s[c]); }); });
document.getElementById("table").appendChild(tbl);
document.getElementById("chance-note").textContent = "chance: the score of a head that " +
  "spreads its attention evenly over the visible tokens; a role needs its score to reach " +
  `its threshold and ${D.chance_multiple}\u00d7 chance.`;
heat(ROLL, document.getElementById("rollout"));
show();
// What the model predicted: each token coloured by the loss of predicting it (class lK, K the
// loss in tenths of LOUD nats), its guesses on hover. Text only ever through textContent.
const P = D.predictions;
if (P) {
  const box = document.getElementById("predicted");
  D.tokens.forEach((tok, i) => {
    const span = document.createElement("span"), p = i > 0 ? P[i - 1] : null;
    span.textContent = tok;
    const loss = p ? p.loss : null;
    span.className = "l" + (loss === null ? 0 : Math.min(D.loss_levels,
      Math.max(0, Math.round(D.loss_levels * loss / D.loud_loss))));
    span.title = `${i}: ${JSON.stringify(tok)}` + (p ? `\nloss ${loss.toFixed(2)} (p ` +
      `${p.next_prob.toFixed(3)})\nexpected: ` + p.top.map(t =>
        `${JSON.stringify(t.token)} ${t.prob.toFixed(2)}`).join(", ") : "");
    box.appendChild(span); });
} else {
  document.getElementById("predictions").hidden = true;
}
"""

_CSP = csp(_STYLE, _SCRIPT)

_PAGE = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="__CSP__">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tinygpt attention: __TITLE__</title>
<style>"""
    + _STYLE
    + """</style></head><body>
<h1>Attention of <span id="model"></span></h1>
<div class="prompt" id="prompt"></div>
<section id="predictions"><h2>What the model predicted</h2>
<p>Each token's colour is the loss of predicting it from the tokens before it (white: expected,
red: 5 nats or more); hover a token for the model's guesses.</p>
<div id="predicted"></div></section>
<h2>All heads <small>(click one)</small></h2><div class="thumbs" id="thumbs"></div>
<h2>Head <select id="layer"></select> <select id="head"></select></h2>
<p>Rows are queries, columns keys; darker is more weight. Hover a cell to read it.</p>
<div id="focus"></div>
<h2>Head roles</h2><div id="table"></div><p class="axis-note" id="chance-note"></p>
<h2>Attention rollout</h2>
<p>Heads averaged, identity added for the residual path, rows renormalised, layers multiplied
(Abnar &amp; Zuidema 2020): how much each token's final representation draws on each input.</p>
<div id="rollout"></div>
<div id="tip"></div>
<script type="application/json" id="data">__DATA__</script>
<script>"""
    + _SCRIPT
    + """</script></body></html>
"""
)


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
    parts = {"CSP": _CSP, "TITLE": html.escape(title), "DATA": json_for_script(data)}
    # One pass, so a title holding "__DATA__" stays text.
    return re.sub(r"__(CSP|TITLE|DATA)__", lambda m: parts[m.group(1)], _PAGE)
