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
