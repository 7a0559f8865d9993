// The page of `simlab serve`: plain JavaScript over the service's JSON API (no library, works offline).
"use strict";

const $ = (id) => document.getElementById(id);
let runs = [];
let apiKey = "";

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function status(message, isError) {
  $("status").textContent = message || "";
  $("status").className = isError ? "error" : "";
}

async function api(path, body) {
  const headers = body ? { "Content-Type": "application/json" } : {};
  if (apiKey) headers["X-API-Key"] = apiKey;
  const response = await fetch(path, body ? { method: "POST", headers, body: JSON.stringify(body) } : { headers });
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (response.status === 401) $("key-box").hidden = false;
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

// Words of `text` matching a term are wrapped in <mark> (title: the term's weight). A term matches a word
// equal to it, or beginning with it when it is 4 characters or longer (a stem); "##" word pieces are skipped.
function highlight(text, terms) {
  const weights = new Map();
  for (const t of terms) {
    const token = t.token.toLowerCase();
    if (!token.startsWith("##") && !weights.has(token)) weights.set(token, t.weight);
  }
  let out = "";
  let last = 0;
  for (const m of text.matchAll(/[\p{L}\p{N}_]+/gu)) {
    const word = m[0].toLowerCase();
    let weight = weights.get(word);
    if (weight === undefined) {
      for (const [token, w] of weights) {
        if (token.length >= 4 && word.startsWith(token)) { weight = w; break; }
      }
    }
    if (weight === undefined) continue;
    out += esc(text.slice(last, m.index)) + `<mark title="${weight.toFixed(4)}">${esc(m[0])}</mark>`;
    last = m.index + m[0].length;
  }
  return out + esc(text.slice(last));
}

function relevanceBadge(hit, known) {
  if (!known) return "";
  if (hit.relevance === null) return '<span class="rel unjudged">unjudged</span>';
  if (hit.relevance > 0) return `<span class="rel relevant">relevant (${hit.relevance})</span>`;
  return `<span class="rel not-relevant">not relevant (${hit.relevance})</span>`;
}

function termList(terms) {
  return terms.map((t) => {
    const detail = t.query_weight === null || t.query_weight === undefined
      ? t.weight.toFixed(3) : `${t.query_weight.toFixed(2)}×${t.doc_weight.toFixed(2)}=${t.weight.toFixed(3)}`;
    return `<span data-token="${esc(t.token)}">${esc(t.token)} ${detail}</span>`;
  }).join("");
}

function renderColumn(side, result, run) {
  const metric = Object.entries(run.metrics[result.system] || {})[0];
  $(`title-${side}`).textContent = result.system + (metric ? ` · test ${metric[0]} ${metric[1].toFixed(4)}` : "");
  $(`expansion-${side}`).innerHTML = result.expansion.length
    ? "query expansion: " + result.expansion.map((e) => `<span>${esc(e.token)} ${e.weight.toFixed(3)}</span>`).join("")
    : "";
  const known = result.query_id !== null;
  $(`results-${side}`).innerHTML = result.hits.map((h) => {
    const text = h.text.length > 600 ? h.text.slice(0, 600) + "…" : h.text;
    return `<li class="hit" data-doc="${esc(h.doc_id)}" data-relevance="${h.relevance === null ? "" : h.relevance}">
      <div class="head"><span class="rank">${h.rank}</span><span class="doc">${esc(h.doc_id)}</span>
      <span class="score">${h.score.toFixed(4)}</span>${relevanceBadge(h, known)}</div>
      ${h.title ? `<div class="title">${highlight(h.title, h.terms)}</div>` : ""}
      <div class="text">${highlight(text, h.terms)}</div>
      ${h.terms.length ? `<div class="terms">matched: ${termList(h.terms)}</div>` : ""}
    </li>`;
  }).join("") || "<li>no document matched</li>";
}

function clearColumn(side) {
  for (const part of ["title", "expansion", "results"]) $(`${part}-${side}`).innerHTML = "";
}

async function search(event) {
  event.preventDefault();
  const run = currentRun();
  const q = $("q").value;
  const k = $("k").value || "10";
  const systems = [["a", $("system-a").value], ["b", $("system-b").value]];
  status("searching…");
  try {
    const results = await Promise.all(systems.map(([, system]) => system
      ? api(`/search?run=${encodeURIComponent(run.name)}&system=${encodeURIComponent(system)}&k=${k}&q=${encodeURIComponent(q)}`)
      : null));
    systems.forEach(([side], i) => (results[i] ? renderColumn(side, results[i], run) : clearColumn(side)));
    const first = results[0];
    status(first.query_id ? `query ${first.query_id} of the collection: hits show their judged relevance`
      : "a new query: no judgements");
    document.body.dataset.searched = String(Date.now());
  } catch (err) {
    status(err.message, true);
  }
}

function fieldInputs(container, fields, side) {
  container.innerHTML = fields.map((f) => `<label>${esc(f)} <textarea rows="2" data-side="${side}" data-field="${esc(f)}"></textarea></label>`).join("");
}

function record(side) {
  const out = {};
  for (const el of document.querySelectorAll(`textarea[data-side="${side}"]`)) {
    if (el.value.trim()) out[el.dataset.field] = el.value;
  }
  return out;
}

async function match(event) {
  event.preventDefault();
  const run = currentRun();
  status("matching…");
  try {
    const r = await api("/match", { run: run.name, left: record("left"), right: record("right") });
    $("match-result").innerHTML = `score <b id="match-score">${r.score.toFixed(4)}</b> (${esc(r.scorer)}) against the
      frozen val threshold ${r.threshold.toFixed(4)}: <span id="match-decision" class="${r.match ? "yes" : "no"}">${r.match ? "match" : "no match"}</span>`;
    status("");
  } catch (err) {
    status(err.message, true);
  }
}

async function classify(event) {
  event.preventDefault();
  const run = currentRun();
  status("classifying…");
  try {
    const r = await api("/classify", { run: run.name, text: $("text").value });
    $("classify-result").innerHTML = "<tr><th>label</th><th>probability</th><th>threshold</th><th>predicted</th></tr>" +
      r.labels.map((l) => `<tr data-label="${esc(l.label)}"><td>${esc(l.label)}</td><td>${l.probability.toFixed(4)}</td>
        <td>${l.threshold.toFixed(4)}</td><td class="${l.predicted ? "yes" : "no"}">${l.predicted ? "yes" : "no"}</td></tr>`).join("");
    status(r.predicted.length ? `predicted: ${r.predicted.join(", ")}` : "no label above its threshold");
  } catch (err) {
    status(err.message, true);
  }
}

function currentRun() {
  return runs.find((r) => r.name === $("run").value) || runs[0];
}

function options(select, values, selected, none) {
  select.innerHTML = (none ? '<option value="">(none)</option>' : "") +
    values.map((v) => `<option value="${esc(v)}"${v === selected ? " selected" : ""}>${esc(v)}</option>`).join("");
}

function showRun() {
  const run = currentRun();
  for (const panel of ["search", "match", "classify"]) $(`${panel}-panel`).hidden = run.service !== panel;
  $("run-info").textContent = `${run.task} run · ${run.path}`;
  if (run.service === "search") {
    options($("system-a"), run.systems, run.default_system, false);
    const other = run.systems.find((s) => s === "bm25" && s !== run.default_system) || "";
    options($("system-b"), run.systems, other, true);
    $("examples").innerHTML = run.examples.map((q) => `<option value="${esc(q)}">`).join("");
    clearColumn("a");
    clearColumn("b");
  } else if (run.service === "match") {
    const definitions = run.task === "definitions";
    $("left-legend").textContent = definitions ? "Usage example (context)" : "Left record";
    $("right-legend").textContent = definitions ? "Definition" : "Right record";
    const withTarget = definitions && !run.left_fields.includes("target") ? [...run.left_fields, "target"] : run.left_fields;
    fieldInputs($("left-fields"), withTarget, "left");
    fieldInputs($("right-fields"), run.right_fields, "right");
    $("match-result").innerHTML = "";
  } else {
    $("classify-result").innerHTML = "";
  }
}

async function start() {
  $("search-form").addEventListener("submit", search);
  $("match-form").addEventListener("submit", match);
  $("classify-form").addEventListener("submit", classify);
  $("run").addEventListener("change", showRun);
  $("api-key").addEventListener("change", () => { apiKey = $("api-key").value; load(); });
  await load();
}

async function load() {
  try {
    runs = (await api("/runs")).runs;
  } catch (err) {
    status(err.message, true);
    return;
  }
  options($("run"), runs.map((r) => r.name), runs[0] && runs[0].name, false);
  status("");
  if (runs.length) showRun();
  document.body.dataset.ready = "true";
}

start();
