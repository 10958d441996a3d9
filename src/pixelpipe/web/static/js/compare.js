// Compare: one prompt and one seed sent to 2–4 models at once, tagged with the same `group`,
// shown side by side with measured time and actual cost. /compare/{group} reopens a comparison.
// Each column also shows what an image of its model costs on each of its providers — a
// self-hosted backend's GPU time beside the hosted prices (estimate before, actual after).

import {
  $, api, loadModels, h, icon, tag, fmtUsd, fmtDuration, fmtLatency, costOf, debounce, randomSeed,
  describeProblem, problemBox, modelLabel, TERMINAL, fadeImg, fmtRelative,
} from "./core.js";
import { LiveJob } from "./live.js";
import { modelOption, renderAspects } from "./widgets.js";

const MAX = 4;
const MIN = 2;
const S = { models: [], selected: [], aspect: "1:1", columns: new Map(), group: "", prompt: "", seed: null };

// ---- setup form ------------------------------------------------------------------------------

function commonAspects() {
  const chosen = S.models.filter((m) => S.selected.includes(m.name));
  const base = chosen[0] || S.models[0];
  if (!base) return {};
  const out = {};
  for (const [ratio, size] of Object.entries(base.aspect_ratios || {})) {
    if (chosen.every((m) => m.aspect_ratios && m.aspect_ratios[ratio])) out[ratio] = size;
  }
  return out;
}

function syncSelection() {
  const boxes = [...document.querySelectorAll('#c-models input[type="checkbox"]')];
  S.selected = boxes.filter((b) => b.checked).map((b) => b.value);
  for (const b of boxes) b.disabled = !b.checked && S.selected.length >= MAX;
  $("#c-model-count").textContent = `${S.selected.length} selected · pick ${MIN}–${MAX}`;
  const ratios = commonAspects();
  if (!ratios[S.aspect]) S.aspect = ratios["1:1"] ? "1:1" : Object.keys(ratios)[0] || "1:1";
  renderAspects($("#c-aspect-list"), ratios, S.aspect, "c-aspect", (r) => { S.aspect = r; });
  $("#c-models-error").hidden = true;
  estimateSoon();
}

/** Only what the link asked for (``?models=``, e.g. "Compare" on an image): nothing paid is
 * ticked behind the user's back, so clicking the models you want selects exactly those. */
function defaultSelection(wanted) {
  const names = S.models.map((m) => m.name);
  return [...new Set(wanted.filter((n) => names.includes(n)))].slice(0, MAX);
}

const estimateSoon = debounce(runEstimate, 300);
let estimateRun = 0;

async function runEstimate() {
  const run = ++estimateRun;
  const value = $("#c-estimate-value");
  const meta = $("#c-estimate-meta");
  if (S.selected.length < 1) {
    value.textContent = "–";
    meta.textContent = `Pick ${MIN}–${MAX} models`;
    return;
  }
  value.classList.add("loading");
  const prompt = $("#c-prompt").value.trim() || "a picture";
  const results = await Promise.allSettled(S.selected.map((model) =>
    api("/v1/estimates", { method: "POST", body: { prompt, model, aspect_ratio: S.aspect } })));
  if (run !== estimateRun) return;
  let total = 0;
  let unpriced = 0;
  let failed = null;
  for (const r of results) {
    if (r.status === "rejected") { failed = r.reason; continue; }
    if (r.value.data.usd === null) unpriced += 1;
    else total += Number(r.value.data.usd);
  }
  value.className = "estimate-value";
  if (failed) {
    value.textContent = "–";
    value.classList.add("loading");
    meta.className = "estimate-meta warn";
    const p = failed.problem || {};
    meta.textContent = p.code === "prompt_blocked" ? `This prompt will be blocked: ${describeProblem(p).detail}` : describeProblem(p).title;
    return;
  }
  value.textContent = total === 0 && !unpriced ? "Free" : fmtUsd(total.toFixed(6));
  if (total === 0 && !unpriced) value.classList.add("free");
  const slowest = Math.max(...S.models.filter((m) => S.selected.includes(m.name)).map((m) => m.typical_latency_s || 0));
  meta.className = "estimate-meta";
  meta.textContent = `${S.selected.length} models · ${fmtLatency(slowest)}${unpriced ? ` · ${unpriced} unpriced` : ""}`;
}

function newGroupId() {
  const rand = Array.from(crypto.getRandomValues(new Uint8Array(5)), (b) => b.toString(36).padStart(2, "0")).join("");
  return `cmp_${Date.now().toString(36)}${rand}`.slice(0, 32);
}

async function submit(e) {
  if (e) e.preventDefault();
  const prompt = $("#c-prompt").value.trim();
  const err = $("#c-prompt-error");
  err.hidden = true;
  $("#c-prompt").removeAttribute("aria-invalid");
  if (!prompt) {
    err.replaceChildren(icon("alert"), "Write a prompt first: every model gets the same one.");
    err.hidden = false;
    $("#c-prompt").setAttribute("aria-invalid", "true");
    $("#c-prompt").focus();
    return;
  }
  if (S.selected.length < MIN) {
    const me = $("#c-models-error");
    me.replaceChildren(icon("alert"), `Pick at least ${MIN} models to compare.`);
    me.hidden = false;
    document.querySelector('#c-models input[type="checkbox"]:not(:disabled)')?.focus();
    return;
  }
  let seed = $("#c-seed").value.trim();
  if (seed === "") { seed = String(randomSeed()); $("#c-seed").value = seed; }
  const group = newGroupId();
  const btn = $("#compare-btn");
  btn.disabled = true;
  btn.classList.add("is-busy");
  const models = [...S.selected];
  const results = await Promise.allSettled(models.map((model) => api("/v1/generations", {
    method: "POST",
    body: { prompt, model, seed: Number(seed), aspect_ratio: S.aspect, group },
  })));
  btn.disabled = false;
  btn.classList.remove("is-busy");
  const ok = results.filter((r) => r.status === "fulfilled");
  if (!ok.length) {
    // the same refusal for every model (blocked prompt, budget): say it once, on the form
    const p = results[0].reason && results[0].reason.problem;
    const info = describeProblem(p);
    err.replaceChildren(problemBox(info));
    err.hidden = false;
    if (p && p.code === "prompt_blocked") $("#c-prompt").setAttribute("aria-invalid", "true");
    return;
  }
  history.pushState(null, "", `/compare/${encodeURIComponent(group)}`);
  const entries = models.map((model, i) => ({ model, job: results[i].status === "fulfilled" ? results[i].value.data : null,
    problem: results[i].status === "rejected" ? results[i].reason.problem : null }));
  showResults(group, entries, { prompt, seed: Number(seed), aspect: S.aspect });
}

// ---- results -------------------------------------------------------------------------------------

function figure(label, value, cls = "") {
  return h("div", { class: `figure ${cls}` }, h("span", { class: "figure-label" }, label), h("span", { class: "figure-value" }, value));
}

function column(entry) {
  const m = S.models.find((x) => x.name === entry.model);
  const body = h("div", { class: "cmp-body" });
  const figures = h("div", { class: "cmp-figures" });
  const rates = h("div", { class: "cmp-rates", dataset: { rates: entry.model }, hidden: true });
  const col = h("article", { class: "card cmp-col", dataset: { model: entry.model }, "aria-label": modelLabel(S.models, entry.model) },
    h("div", { class: "cmp-col-head" },
      h("div", { class: "cmp-col-titles" },
        h("div", { class: "cmp-col-title" }, m ? m.label : entry.model),
        h("div", { class: "cmp-col-sub" }, entry.job && entry.job.provider ? `via ${entry.job.provider}` : m ? (m.providers || []).join(" / ") : "")),
      h("span", { class: "cmp-col-status" })),
    body, figures, rates);
  const state = { entry, col, body, figures, rates, job: entry.job, perProvider: null };
  S.columns.set(entry.model, state);
  loadRates(state);
  if (entry.problem) {
    body.replaceChildren(problemBox(describeProblem(entry.problem), { compact: true }));
    figures.replaceChildren(figure("Time", "–"), figure("Cost", "$0.00"));
    return col;
  }
  const live = new LiveJob(body, {
    compact: true,
    modelText: (j) => modelLabel(S.models, j.model),
    onChange: (job) => { state.job = job; updateFigures(state); },
    // the column forms: its percent and ETA beside the preview the live view shows
    onProgress: (progress) => { state.progress = progress; updateFigures(state); },
    onDone: () => summarize(),
  });
  live.start(entry.job);
  return col;
}

function updateFigures(state) {
  const job = state.job;
  const status = state.col.querySelector(".cmp-col-status");
  const sub = state.col.querySelector(".cmp-col-sub");
  if (job.provider) sub.textContent = `via ${job.provider}`;
  if (job.status === "succeeded") status.replaceChildren(job.cached ? tag("Cached", "success", "zap") : tag("Done", "success", "check"));
  else if (job.status === "failed") status.replaceChildren(tag("Failed", "danger", "alert"));
  else if (job.status === "canceled") status.replaceChildren(tag("Canceled", "", "ban"));
  else status.replaceChildren(tag(runningText(state), "info"));
  const cost = costOf(job);
  const done = TERMINAL.has(job.status);
  const time = job.cached ? "instant" : done ? fmtDuration(job.timings.duration_s) : leftText(state);
  state.figures.replaceChildren(
    h("div", { class: "figure", dataset: { figure: "time" }, title: "Measured time from request to stored image" },
      h("span", { class: "figure-label" }, "Time"), h("span", { class: "figure-value cmp-time" }, time)),
    h("div", { class: "figure", dataset: { figure: "cost" }, title: cost.title },
      h("span", { class: "figure-label" }, done ? "Cost" : "Est. cost"), h("span", { class: "figure-value cmp-cost" }, cost.text)));
  renderRates(state);
}

/** "Running · 40%" while the column forms; "In line · #2" while it waits for its backend. */
function runningText(state) {
  const p = (!TERMINAL.has(state.job.status) && (state.progress || state.job.progress)) || {};
  if (p.state === "queued" && p.queue_position != null) return `In line · #${p.queue_position}`;
  if (p.percent != null && ["waiting", "submitting"].includes(state.job.status)) return `Running · ${Math.round(p.percent)}%`;
  return "Running";
}

/** The time figure of a running column: its ETA where known. */
function leftText(state) {
  const p = state.progress || state.job.progress || {};
  if (p.eta_s == null) return "running…";
  return p.eta_s < 1 ? "almost done" : `≈ ${Math.ceil(p.eta_s)} s left`;
}

// ---- $/image per provider: self-hosted GPU time beside hosted prices -----------------------------

const PROVIDER_NAMES = JSON.parse(document.body.dataset.providers || "{}");
const providerName = (p) => PROVIDER_NAMES[p] || p; // a backend of the catalog file: its own name
let measuredPromise = null;
let measuredFor = ""; // the comparison whose finished images the measured means include

/** The measured mean $/image per model × provider (GET /v1/usage, admin only: else none). */
function measuredCosts() {
  if (!measuredPromise) {
    measuredPromise = api("/v1/usage?group_by=provider&format=json")
      .then((r) => new Map(((r.data.per_image || {}).models || []).map((row) => [`${row.model}|${row.provider}`, row])))
      .catch(() => new Map());
  }
  return measuredPromise;
}

/** "$0.0011": small per-image amounts keep two significant digits instead of rounding to $0. */
function fmtRate(usd) {
  const n = Number(usd);
  if (usd === null || usd === undefined || !Number.isFinite(n)) return "Unpriced";
  if (n === 0) return "Free";
  if (n < 0.01) return "$" + Number(n.toPrecision(2)).toFixed(Math.max(2, 1 - Math.floor(Math.log10(n)))).replace(/(\.\d\d\d*?)0+$/, "$1");
  return fmtUsd(usd);
}

/** Every column finished: the measured means again, now with these images in them. */
async function remeasure(states) {
  if (measuredFor === S.group) return;
  measuredFor = S.group;
  measuredPromise = null;
  const measured = await measuredCosts();
  for (const state of states) {
    for (const p of state.perProvider || []) p.measured = measured.get(`${state.entry.model}|${p.provider}`) || null;
    renderRates(state);
  }
}

async function loadRates(state) {
  const m = S.models.find((x) => x.name === state.entry.model);
  const providers = m ? m.providers || [] : state.job && state.job.provider ? [state.job.provider] : [];
  if (!providers.length) return;
  const request = (state.job && state.job.request) || {};
  const body = { prompt: request.prompt || S.prompt || "a picture", model: state.entry.model, aspect_ratio: request.aspect_ratio || S.aspect };
  const [estimates, measured] = await Promise.all([
    Promise.allSettled(providers.map((provider) => api("/v1/estimates", { method: "POST", body: { ...body, provider } }))),
    measuredCosts(),
  ]);
  state.perProvider = providers.map((provider, i) => ({
    provider,
    estimate: estimates[i].status === "fulfilled" ? estimates[i].value.data : null,
    measured: measured.get(`${state.entry.model}|${provider}`) || null,
  }));
  renderRates(state);
}

/** One provider's $/image: this run's actual cost where it ran, else the estimate. */
function rateOf(state, p) {
  const job = state.job;
  const ran = !!job && job.provider === p.provider && !job.cached;
  const gpu = (p.estimate && p.estimate.basis === "gpu_time") || !!(p.measured && p.measured.gpu);
  if (ran && job.status === "succeeded" && job.cost && job.cost.status !== "pending") {
    return { ran, gpu, value: fmtRate(job.cost.usd), note: "this image", actual: true };
  }
  const usd = p.estimate ? p.estimate.usd : null;
  return { ran, gpu, value: p.estimate ? (usd === null ? "Unpriced" : `≈ ${fmtRate(usd)}`) : "–", note: "estimate", actual: false };
}

function renderRates(state) {
  if (!state.perProvider || !state.rates) return;
  const lines = state.perProvider.map((p) => ({ p, rate: rateOf(state, p) }));
  lines.sort((a, b) => Number(b.rate.ran) - Number(a.rate.ran)); // the provider that ran first
  const sentence = lines.map(({ p, rate }) => `${rate.value}/image on ${providerName(p.provider)}${rate.gpu ? " (GPU time)" : ""}`).join(" vs ");
  state.rates.replaceChildren(
    h("div", { class: "cmp-rates-head" }, h("span", { class: "figure-label" }, "Per image"), h("span", { class: "cmp-rates-basis" }, "by provider")),
    h("ul", { class: "cmp-rate-list", "aria-label": `Per image: ${sentence}` }, lines.map(({ p, rate }) => h("li", {
      class: `cmp-rate${rate.ran ? " ran" : ""}`, dataset: { provider: p.provider, basis: rate.gpu ? "gpu_time" : "price" },
    },
    h("span", { class: "cmp-rate-value" }, rate.value),
    h("span", { class: "cmp-rate-on" }, "on ", h("strong", {}, providerName(p.provider))),
    h("span", { class: "cmp-rate-tags" },
      rate.gpu ? tag("GPU time", "info", null, "Self-hosted: GPU-seconds × the backend's $/GPU-hour") : tag("Price", "", null, "The provider's price"),
      h("span", { class: "cmp-rate-note" }, [rate.note, rate.actual && p.measured && p.measured.images < 2 ? "" : measuredNote(p.measured)].filter(Boolean).join(" · ")))))));
  state.rates.hidden = false;
}

function measuredNote(row) {
  if (!row || !row.images) return "";
  const avg = row.usd_per_image === null ? "unpriced" : `avg ${fmtRate(row.usd_per_image)}`;
  const gpu = row.gpu && row.gpu.seconds_per_image != null ? ` · ${row.gpu.seconds_per_image.toFixed(2)} GPU s (${row.gpu.source})` : "";
  return `${avg} over ${row.images} image${row.images === 1 ? "" : "s"}${gpu}`;
}

function summarize() {
  const states = [...S.columns.values()].filter((s) => s.job);
  const finished = states.filter((s) => s.job.status === "succeeded");
  const box = $("#cmp-summary");
  if (!finished.length || states.some((s) => !TERMINAL.has(s.job.status))) { box.replaceChildren(); return; }
  remeasure(states);
  for (const s of states) s.figures.querySelectorAll(".figure").forEach((f) => f.classList.remove("best"));
  const parts = [];
  if (finished.length > 1) {
    const timed = finished.filter((s) => !s.job.cached && s.job.timings.duration_s != null);
    if (timed.length > 1) {
      const fastest = timed.reduce((a, b) => (a.job.timings.duration_s <= b.job.timings.duration_s ? a : b));
      fastest.figures.querySelector('[data-figure="time"]').classList.add("best");
      parts.push(tag(`Fastest: ${modelLabel(S.models, fastest.job.model)} · ${fmtDuration(fastest.job.timings.duration_s)}`, "success", "zap"));
    }
    const priced = finished.filter((s) => s.job.cost && s.job.cost.usd != null);
    if (priced.length > 1) {
      const cheapest = priced.reduce((a, b) => (Number(a.job.cost.usd) <= Number(b.job.cost.usd) ? a : b));
      cheapest.figures.querySelector('[data-figure="cost"]').classList.add("best");
      parts.push(tag(`Cheapest: ${modelLabel(S.models, cheapest.job.model)} · ${fmtUsd(cheapest.job.cost.usd)}`, "success", "coins"));
    }
  }
  const total = finished.reduce((sum, s) => sum + (s.job.cost && s.job.cost.usd ? Number(s.job.cost.usd) : 0), 0);
  parts.push(tag(`Total spent: ${fmtUsd(total.toFixed(6))}`, "", "wallet"));
  box.replaceChildren(...parts);
}

function showResults(group, entries, { prompt, seed, aspect }) {
  S.group = group;
  S.prompt = prompt;
  S.seed = seed;
  S.aspect = aspect || S.aspect;
  S.columns.clear();
  $("#compare-setup").hidden = true;
  $("#compare-results").hidden = false;
  $("#cmp-title").textContent = `Comparing ${entries.length} models`;
  $("#cmp-prompt").textContent = prompt;
  $("#cmp-meta").replaceChildren(...[
    tag(`Seed ${seed}`, "", "dice"),
    aspect ? tag(aspect, "", "image") : null,
    tag(`Group ${group}`, "", "link"),
  ].filter(Boolean));
  $("#cmp-gallery-link").href = `/gallery?group=${encodeURIComponent(group)}`;
  const grid = $("#cmp-grid");
  grid.style.setProperty("--cols", String(Math.min(Math.max(entries.length, 2), 4)));
  $("#cmp-summary").replaceChildren();
  grid.replaceChildren(...entries.map(column));
  summarize();
  document.title = `Comparison · ${prompt.slice(0, 40)} · pixelpipe`;
}

async function openGroup(group) {
  $("#cmp-grid").replaceChildren(...Array.from({ length: 3 }, () => h("div", { class: "card cmp-col" }, h("div", { class: "live-canvas skeleton" }))));
  let jobs;
  try {
    jobs = (await api(`/v1/generations?group=${encodeURIComponent(group)}&limit=16`)).data.data;
  } catch (err) {
    $("#cmp-grid").replaceChildren(problemBox(describeProblem(err.problem)));
    return;
  }
  if (!jobs.length) {
    $("#cmp-title").textContent = "Comparison not found";
    $("#cmp-grid").replaceChildren(problemBox({ title: "No images in this comparison", detail: `Nothing was generated with the group “${group}”.`, hint: "", tone: "info", icon: "info" },
      { actions: [h("a", { class: "btn btn-primary btn-sm", href: "/compare" }, icon("plus"), "Start a comparison")] }));
    return;
  }
  jobs.sort((a, b) => Date.parse(a.timings.created_at) - Date.parse(b.timings.created_at));
  // one column per model (the newest run of each, if a comparison was rerun into the same group)
  const byModel = new Map();
  for (const j of jobs) byModel.set(j.model, j);
  const order = (name) => { const i = S.models.findIndex((m) => m.name === name); return i < 0 ? 99 : i; };
  const entries = [...byModel.values()].sort((a, b) => order(a.model) - order(b.model))
    .slice(0, MAX).map((j) => ({ model: j.model, job: j }));
  const r = entries[0].job.request;
  showResults(group, entries, { prompt: r.prompt, seed: r.seed, aspect: r.aspect_ratio });
}

// ---- recent comparisons ------------------------------------------------------------------------

async function loadRecentComparisons() {
  const ul = $("#recent-comparisons");
  let jobs = [];
  try { jobs = (await api("/v1/generations?limit=100")).data.data; } catch { /* empty list */ }
  const groups = new Map();
  for (const j of jobs) {
    if (!j.group) continue;
    if (!groups.has(j.group)) groups.set(j.group, []);
    groups.get(j.group).push(j);
  }
  const items = [...groups.entries()].slice(0, 6);
  if (!items.length) {
    ul.replaceChildren(h("li", { class: "muted" }, "No comparisons yet. Your comparisons are kept and can be reopened from here or from the gallery."));
    return;
  }
  ul.replaceChildren(...items.map(([group, list]) => {
    const first = list[0];
    return h("li", { class: "cmp-item" },
      h("a", { href: `/compare/${encodeURIComponent(group)}` },
        h("span", { class: "cmp-thumbs", "aria-hidden": "true" },
          list.slice(0, 4).map((j) => (j.image ? fadeImg({ src: j.image.thumbnail_url || j.image.url, alt: "" }) : h("span")))),
        h("span", { class: "cmp-item-body" },
          h("span", { class: "cmp-item-prompt" }, first.request.prompt),
          h("span", { class: "cmp-item-meta" }, `${list.length} models · ${fmtRelative(first.timings.created_at)}`))));
  }));
}

// ---- init -----------------------------------------------------------------------------------------

function renderSetup(params) {
  const list = $("#c-models");
  list.removeAttribute("aria-busy");
  const wanted = (params.get("models") || "").split(",").filter(Boolean);
  const picked = defaultSelection(wanted);
  list.replaceChildren(...S.models.map((m) => modelOption(m, { type: "checkbox", name: "models", checked: picked.includes(m.name), idPrefix: "cmd" })));
  $("#c-need-providers").hidden = S.models.length >= MIN;
  $("#compare-btn").disabled = S.models.length < MIN;
  if (params.get("aspect")) S.aspect = params.get("aspect");
  syncSelection();
}

function toSetup(prefill) {
  $("#compare-results").hidden = true;
  $("#compare-setup").hidden = false;
  if (prefill) {
    $("#c-prompt").value = S.prompt;
    $("#c-seed").value = String(S.seed ?? "");
    const models = [...S.columns.keys()];
    for (const b of document.querySelectorAll('#c-models input[type="checkbox"]')) b.checked = models.includes(b.value);
    syncSelection();
    promptCount();
  }
  document.title = "Compare models · pixelpipe";
  $("#c-prompt").focus();
}

function promptCount() {
  $("#c-prompt-count").textContent = `${$("#c-prompt").value.length} characters`;
}

export async function init() {
  const params = new URLSearchParams(location.search);
  try {
    S.models = await loadModels();
  } catch (err) {
    $("#c-models").replaceChildren(problemBox(describeProblem(err.problem), { compact: true }));
    return;
  }
  // never clobber what the user typed while the catalog was loading
  if (params.get("prompt") && !$("#c-prompt").value) $("#c-prompt").value = params.get("prompt");
  if (!$("#c-seed").value) $("#c-seed").value = params.get("seed") || String(randomSeed());
  promptCount();
  renderSetup(params);

  $("#c-models").addEventListener("change", syncSelection);
  $("#c-prompt").addEventListener("input", () => { promptCount(); $("#c-prompt-error").hidden = true; $("#c-prompt").removeAttribute("aria-invalid"); estimateSoon(); });
  $("#c-seed-roll").addEventListener("click", () => { $("#c-seed").value = String(randomSeed()); });
  $("#compare-form").addEventListener("submit", submit);
  $("#compare-form").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
  });
  $("#cmp-edit").addEventListener("click", () => { history.pushState(null, "", "/compare"); toSetup(true); });
  window.addEventListener("popstate", () => { location.reload(); });

  const group = $("#compare").dataset.group;
  if (group) await openGroup(group);
  loadRecentComparisons();
}
