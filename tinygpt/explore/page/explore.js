// tinygpt explore: the page's only script. Every string from the model or the prompt is set
// with textContent (never innerHTML), so a token can't become markup.
"use strict";

const state = { ids: [], items: [], selected: null, info: null, source: null, ticket: 0 };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function shown(token) {  // whitespace made visible where a token stands alone
  return token.replace(/ /g, "␣").replace(/\n/g, "↵").replace(/\t/g, "⇥") || "∅";
}

// The run's token, from this page's own address: the server wants it on every request.
const TOKEN = new URLSearchParams(location.search).get("token") || "";

function withToken(path) {
  return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
}

async function post(path, body) {
  const response = await fetch(withToken(path), {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function say(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function addToken(item) {
  const index = state.ids.length;
  state.ids.push(item.id);
  state.items.push(item);
  const kind = item.kind + (item.text.includes("\n") ? " nl" : "");  // nl: drawn with a ↵ to click
  const span = el("span", { class: "tok " + kind, "data-index": String(index) }, item.text);
  if (item.kind === "sample") {
    span.style.background = `rgba(255, 140, 0, ${(1 - item.prob).toFixed(3)})`;
    const top = item.top.map((t) => `${shown(t.text)} ${t.prob.toFixed(3)}`).join("   ");
    span.title = `p = ${item.prob.toFixed(3)}; the model weighed: ${top}`;
  }
  span.addEventListener("click", () => select(index));
  $("text").append(span);
}

function reset() {
  if (state.source) state.source.close();
  state.ids = []; state.items = []; state.selected = null;
  $("text").replaceChildren();
  $("inspect").hidden = true;
}

async function write() {
  reset();
  delete document.body.dataset.written;  // set again when this text is written
  const params = new URLSearchParams({ prompt: $("prompt").value });
  for (const name of ["temperature", "top_k", "top_p", "seed", "max_new_tokens", "stop"]) {
    const value = $(name).value.trim();
    if (value) params.append(name, value);
  }
  try {  // a prompt the model can't take is a sentence here, not a stream that never starts
    await post("/api/tokens", { text: $("prompt").value });
  } catch (error) { say(error.message, true); return; }
  say("writing…");
  const started = performance.now();
  const source = new EventSource(withToken("/api/generate?" + params));
  state.source = source;
  let written = 0, first = 0;
  source.onmessage = (event) => {
    for (const line of event.data.split("\n")) {  // the server sends what is ready at once
      const item = JSON.parse(line);
      if (item.kind === "error") { say(item.text, true); continue; }
      addToken(item);
      if (item.kind !== "sample") continue;
      written += 1;
      if (written === 1) first = performance.now();
    }
  };
  source.addEventListener("done", () => {
    source.close();
    const now = performance.now();
    const seconds = (now - started) / 1000;
    // The streaming rate: from the first written token to the last, as generate counts its loop
    const rate = written > 1 ? (written - 1) / ((now - first) / 1000) : 0;
    say(`${written} tokens in ${seconds.toFixed(2)} s (${rate.toFixed(0)} tokens/s); click one`);
    document.body.dataset.rate = rate.toFixed(1);
    document.body.dataset.written = String(written);
  });
  source.onerror = () => {
    source.close();
    if (!written) say("the sampling controls were refused: check their values", true);
  };
}

async function readPrompt() {
  reset();
  try {
    const answer = await post("/api/tokens", { text: $("prompt").value });
    answer.ids.forEach((id, i) => addToken({ kind: "prompt", id, text: answer.tokens[i] }));
    say(`${answer.ids.length} tokens; click one`);
  } catch (error) { say(error.message, true); }
}

function chosenStep() {  // null: the weights as saved
  const steps = state.info.steps;
  const step = steps[Number($("step").value)];
  return step === state.info.step ? null : step;
}

function showStep() {
  const step = state.info.steps[Number($("step").value)];
  $("step-shown").textContent = step === state.info.step ? `${step} (as saved)` : String(step);
  document.body.dataset.step = String(step);
}

function offHeads() {
  return [...document.querySelectorAll("#toggles input:checked")].map((box) => box.value);
}

async function select(index) {
  state.selected = index;
  for (const span of document.querySelectorAll("#text .tok")) {
    span.classList.toggle("selected", Number(span.dataset.index) === index);
  }
  const started = performance.now();
  const ticket = ++state.ticket;  // a slider dragged fast: only the latest answer is drawn
  const step = chosenStep();
  try {
    const answer = await post("/api/analyse", {
      ids: state.ids, position: index, off: offHeads(), mode: $("mode").value, step,
    });
    if (ticket !== state.ticket) return;
    render(answer);
    document.body.dataset.shownStep = String(step ?? state.info.step);
    document.body.dataset.clickMs = (performance.now() - started).toFixed(1);
  } catch (error) { say(error.message, true); }
}

function render(a) {
  $("inspect").hidden = false;
  $("position").textContent = String(a.position + a.offset);
  $("query").textContent = shown(a.tokens[a.position]);
  $("chance").textContent = `chance (even spread over ${a.position + 1} keys): ${a.chance.toFixed(4)}`;
  renderPredictions(a.predictions, a);
  renderLens(a);
  renderAttribution(a.attribution);
  renderHeads(a);
  $("explain").replaceChildren();
  $("patched").replaceChildren();
  $("patch-gap").textContent = "";
  $("corrupted").value = a.tokens.join("");  // the text the model sees here, to change
}

async function patch() {
  try {
    const p = await post("/api/patch", {
      ids: state.ids, position: state.selected, corrupted: $("corrupted").value, step: chosenStep(),
    });
    $("patch-gap").textContent = `log p(${shown(p.target)}): ${p.clean_logprob.toFixed(3)} in ` +
      `this text, ${p.corrupted_logprob.toFixed(3)} in yours; share of the gap each head restores:`;
    const rows = [...p.heads].sort((x, y) => Math.abs(y.restored) - Math.abs(x.restored)).slice(0, 12)
      .map((h) => {
        const row = el("tr", { "data-head": h.label });
        const bar = el("span", { class: "bar" + (h.restored < 0 ? " neg" : "") });
        bar.style.width = `${Math.min(80, 80 * Math.abs(h.restored))}px`;
        const cell = el("td");
        cell.append(bar);
        row.append(el("td", {}, h.label), el("td", { class: "num" }, h.restored.toFixed(3)), cell);
        return row;
      });
    $("patched").replaceChildren(...rows);
  } catch (error) { $("patch-gap").textContent = error.message; }
}

function renderPredictions(p, a) {
  const rows = p.top.map((t) => {
    const row = el("tr");
    row.append(el("td", { class: "tok" }, shown(t.text)), el("td", { class: "num" }, t.prob.toFixed(4)));
    return row;
  });
  $("predictions").replaceChildren(...rows);
  const next = a.target_is_next && p.loss !== null
    ? `the actual next token ${shown(a.target)}: p ${p.next_prob.toFixed(4)}, loss ${p.loss.toFixed(3)} nats. `
    : "";
  const mean = p.prompt_loss === null ? "" : `Mean loss over the text: ${p.prompt_loss.toFixed(4)} nats`;
  $("loss").textContent = next + mean;
  $("loss").dataset.promptLoss = p.prompt_loss === null ? "" : p.prompt_loss.toFixed(6);
  $("loss").dataset.nextProb = p.next_prob === null ? "" : p.next_prob.toFixed(6);
}

function renderLens(a) {
  $("lens-target").textContent = shown(a.target);
  const head = el("tr");
  head.append(el("th", {}, "after"), el("th", {}, "p(target)"), el("th", {}, "rank"));
  const rows = a.lens.map((r) => {
    const row = el("tr");
    row.append(el("td", {}, r.after), el("td", { class: "num" }, r.target_prob.toFixed(4)),
      el("td", { class: "num" }, String(r.target_rank + 1)));
    return row;
  });
  $("lens").replaceChildren(head, ...rows);
}

function renderAttribution(att) {
  const largest = Math.max(...att.shares.map((s) => Math.abs(s.logit)), 1e-9);
  const rows = att.shares.slice(0, 12).map((s) => {
    const row = el("tr");
    const bar = el("span", { class: "bar" + (s.logit < 0 ? " neg" : "") });
    bar.style.width = `${(80 * Math.abs(s.logit)) / largest}px`;
    const cell = el("td");
    cell.append(bar);
    row.append(el("td", {}, s.component), el("td", { class: "num" }, s.logit.toFixed(3)), cell);
    return row;
  });
  $("attribution").replaceChildren(...rows);
}

function renderHeads(a) {
  const off = new Set(offHeads());
  const panels = a.heads.map((h) => {
    const panel = el("div", { class: "head" + (off.has(h.label) ? " off" : ""), "data-head": h.label });
    const title = el("h4", {}, h.label + " ");
    title.append(el("span", { class: "roles" }, h.roles.join(", ")));
    const cells = el("div", { class: "cells" });
    h.row.forEach((w, key) => {
      // Each key is its own text, shaded by the weight the query gives it
      const cell = el("span", { class: "cell" + (w > a.chance ? " above" : "") + (w > 0.5 ? " dark" : ""),
        "data-key": String(key), "data-weight": w.toFixed(4) }, shown(a.tokens[key]));
      cell.style.background = `rgba(30, 70, 170, ${w.toFixed(4)})`;
      cell.title = `key ${key + a.offset} ${shown(a.tokens[key])}: ${w.toFixed(4)}`;
      cells.append(cell);
    });
    panel.append(title, cells);
    panel.addEventListener("click", () => explain(h.label));
    return panel;
  });
  $("heads").replaceChildren(...panels);
}

async function explain(label) {
  try {
    const e = await post("/api/explain", {
      ids: state.ids, position: state.selected, head: label, step: chosenStep(),
    });
    const head = el("tr");
    for (const name of ["key", "token", "relation", "q·k", "÷√d", "weight"]) head.append(el("th", {}, name));
    const rows = e.weights.map((w, key) => {
      const row = el("tr");
      row.append(el("td", { class: "num" }, String(key + e.offset)), el("td", { class: "tok" }, shown(e.tokens[key])),
        el("td", {}, e.relations[key] || ""), el("td", { class: "num" }, e.raw_scores[key].toFixed(3)),
        el("td", { class: "num" }, e.scaled_scores[key].toFixed(3)), el("td", { class: "num" }, w.toFixed(4)));
      return row;
    });
    const table = el("table");
    table.append(head, ...rows);
    const caption = el("h3", {}, `${label} step by step: q·k over the ${e.weights.length} keys the query ` +
      `sees (${e.masked} future keys masked), scaled by √${e.head_dim}, then the softmax`);
    $("explain").replaceChildren(caption, table);
  } catch (error) { say(error.message, true); }
}

async function savePage() {
  const css = await (await fetch(withToken("/static/explore.css"))).text();
  const report = $("report").cloneNode(true);
  report.querySelectorAll(".controls, .hint, #toggles, #step, textarea, button").forEach((node) => node.remove());
  const page = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">" +
    `<title>tinygpt explore: ${escapeText(state.info.name)}</title><style>${css}</style></head>` +
    `<body><header><h1>tinygpt explore</h1><span>${escapeText(state.info.name)}</span></header>` +
    report.outerHTML + "</body></html>\n";
  const link = el("a", { download: "tinygpt-explore.html" });
  link.href = URL.createObjectURL(new Blob([page], { type: "text/html" }));
  link.click();
}

function escapeText(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span.innerHTML;
}

async function start() {
  state.info = await (await fetch(withToken("/api/info"))).json();
  $("model").textContent = `${state.info.name}: ${state.info.n_layer} layers × ${state.info.n_head} heads`;
  for (const mode of state.info.modes) $("mode").append(el("option", { value: mode }, mode));
  for (let l = 0; l < state.info.n_layer; l++) {
    for (let h = 0; h < state.info.n_head; h++) {
      const label = `L${l}H${h}`;
      const box = el("input", { type: "checkbox", value: label });
      box.addEventListener("change", () => { if (state.selected !== null) select(state.selected); });
      const wrap = el("label", {}, label + " ");
      wrap.prepend(box);
      $("toggles").append(wrap);
    }
  }
  $("mode").addEventListener("change", () => { if (state.selected !== null) select(state.selected); });
  if (state.info.steps.length > 1) {
    $("history").hidden = false;
    $("step").max = String(state.info.steps.length - 1);
    $("step").value = $("step").max;
    showStep();
    $("step").addEventListener("input", () => {
      showStep();
      if (state.selected !== null) select(state.selected);
    });
  }
  $("go").addEventListener("click", write);
  $("read").addEventListener("click", readPrompt);
  $("save").addEventListener("click", savePage);
  $("patch").addEventListener("click", patch);
  document.body.dataset.ready = "1";
}

start();
