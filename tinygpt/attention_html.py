"""One self-contained HTML page of a model's attention: no network, no CDN, works offline.

The data travels as JSON inside a ``<script type="application/json">`` block with ``<``, ``>``
and ``&`` escaped, and the page's script puts tokens into the document only through
``textContent``: a prompt is untrusted text and can never become markup.
"""

from __future__ import annotations

import html
import json
from typing import Any

_PAGE = """<!doctype html>
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
table.hm { border-collapse: collapse; font: 11px monospace; }
table.hm td { width: 16px; height: 16px; padding: 0; }
table.hm th { font-weight: normal; padding: 0 4px; white-space: pre; }
table.hm thead th { writing-mode: vertical-rl; transform: rotate(180deg); height: 4em; }
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
const vis = s => s.replace(/ /g, "\\u2423").replace(/\\n/g, "\\u21b5").replace(/\\t/g, "\\u21e5");
document.getElementById("model").textContent = D.model;
document.getElementById("prompt").textContent = D.tokens.join("");
function color(w) { const v = Math.round(255 * (1 - Math.sqrt(w))); return `rgb(${v},${v},255)`; }
function heat(m, where) {
  const t = document.createElement("table"); t.className = "hm";
  const head = t.createTHead().insertRow(); head.appendChild(document.createElement("th"));
  D.tokens.forEach(tok => { const th = document.createElement("th"); th.textContent = vis(tok);
    head.appendChild(th); });
  const body = t.createTBody();
  m.forEach((row, i) => {
    const tr = body.insertRow(); const th = document.createElement("th");
    th.textContent = vis(D.tokens[i]); tr.appendChild(th);
    row.forEach((w, j) => { const td = tr.insertCell(); td.style.background = color(w);
      td.onmousemove = e => { tip.style.display = "block"; tip.style.left = e.clientX + 12 + "px";
        tip.style.top = e.clientY + 12 + "px";
        tip.textContent = `query ${i} ${JSON.stringify(D.tokens[i])}\\nkey   ${j} ` +
          `${JSON.stringify(D.tokens[j])}\\nweight ${w.toFixed(4)}`; };
      td.onmouseleave = () => { tip.style.display = "none"; }; });
  });
  where.replaceChildren(t);
}
function thumb(m, label, onclick) {
  const div = document.createElement("div"); div.className = "thumb";
  const c = document.createElement("canvas"); const s = Math.max(1, Math.floor(96 / T));
  c.width = c.height = T * s; const g = c.getContext("2d");
  m.forEach((row, i) => row.forEach((w, j) => { g.fillStyle = color(w);
    g.fillRect(j * s, i * s, s, s); }));
  const cap = document.createElement("div"); cap.textContent = label;
  div.append(c, cap); div.onclick = onclick; return div;
}
const L = document.getElementById("layer"), H = document.getElementById("head");
D.attention.forEach((_, l) => L.add(new Option("layer " + l, l)));
D.attention[0].forEach((_, h) => H.add(new Option("head " + h, h)));
function show() {
  heat(D.attention[+L.value][+H.value], document.getElementById("focus"));
  document.querySelectorAll(".thumb").forEach(el =>
    el.classList.toggle("sel", el.dataset.key === L.value + "." + H.value));
}
L.onchange = H.onchange = show;
L.value = D.selected[0]; H.value = D.selected[1];
const thumbs = document.getElementById("thumbs");
D.attention.forEach((heads, l) => heads.forEach((m, h) => {
  const el = thumb(m, `L${l} H${h}`, () => { L.value = l; H.value = h; show(); });
  el.dataset.key = l + "." + h; thumbs.appendChild(el); }));
const cols = ["head", "previous_token", "self_attention", "sink", "induction", "entropy",
  "entropy_normalised", "roles"];
const tbl = document.createElement("table"); tbl.className = "scores";
const hr = tbl.createTHead().insertRow();
cols.forEach(c => { const th = document.createElement("th"); th.textContent = c;
  hr.appendChild(th); });
D.scores.forEach(s => { const tr = tbl.insertRow(); cols.forEach(c => { const td = tr.insertCell();
  const v = c === "head" ? `L${s.layer} H${s.head}` : s[c];
  td.textContent = Array.isArray(v) ? v.join(", ") : (typeof v === "number" ? v.toFixed(3) :
    (v === null ? "-" : String(v))); }); });
document.getElementById("table").appendChild(tbl);
heat(D.rollout, document.getElementById("rollout"));
show();
</script></body></html>
"""


def _json_for_script(data: Any) -> str:
    # Inside <script>, "</script>" or "<!--" in a token would end or confuse the block.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_html(report: dict[str, Any], title: str, selected: tuple[int, int] = (0, 0)) -> str:
    """The page for a report as written by ``--json``; ``selected`` is the head shown first."""
    data = {k: report[k] for k in ("model", "tokens", "attention", "scores", "rollout")}
    data["selected"] = list(selected)
    return _PAGE.replace("__TITLE__", html.escape(title)).replace(
        "__DATA__", _json_for_script(data)
    )
