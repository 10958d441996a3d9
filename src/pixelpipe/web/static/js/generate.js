// Generate view: prompt (+ builder), model picker with price and latency, size, seed, format,
// a debounced cost estimate, then the live job in the stage on the right.

import {
  $, api, loadModels, fmtUsd, fmtLatency, h, icon, debounce, describeProblem, problemBox,
  randomSeed, onJobEvent, fadeImg, copyText, absoluteUrl, toast, bodyFromJob, TERMINAL, modelLabel, compareHref,
} from "./core.js";
import { LiveJob } from "./live.js";
import { modelOption, renderAspects } from "./widgets.js";
import { EditForm } from "./edit-form.js";
import { loadGeneration } from "./inputs.js";

const S = {
  models: [],
  model: null,
  aspect: "1:1",
  format: "",
  estimateCtl: null,
  live: null,
  retryTimer: null,
  busy: false,
  blocked: null, // why the estimate says this prompt will be blocked (Generate is disabled)
  edit: null, // the input images, strength and mask (edit-form.js)
};

// ---- models --------------------------------------------------------------------------------

function lowestPrice(m) {
  const prices = Object.values(m.price_usd || {}).filter((p) => p !== null && p !== undefined).map(Number);
  return prices.length ? Math.min(...prices) : Infinity; // unpriced models come last
}

/** The model used last in this browser, else the cheapest (nothing is spent by surprise). */
function defaultModel(models) {
  let saved = null;
  try { saved = localStorage.getItem("pp-model"); } catch { /* ignore */ }
  if (saved && models.some((m) => m.name === saved)) return saved;
  return models.reduce((best, m) => (lowestPrice(m) < lowestPrice(best) ? m : best), models[0]).name;
}

function renderModels() {
  const list = $("#model-list");
  list.removeAttribute("aria-busy");
  list.replaceChildren(...S.models.map((m) => modelOption(m, { checked: m.name === S.model.name })));
}

function applyModel() {
  const m = S.model;
  const ratios = m.aspect_ratios || {};
  if (!ratios[S.aspect]) S.aspect = ratios["1:1"] ? "1:1" : Object.keys(ratios)[0];
  renderAspects($("#aspect-list"), ratios, S.aspect, "aspect", (r) => { S.aspect = r; sizeReadout(); estimateSoon(); });
  sizeReadout();

  const fmt = $("#format");
  const formats = m.formats || ["webp"];
  const keep = formats.includes(fmt.value) ? fmt.value : formats[0];
  fmt.replaceChildren(...formats.map((f, i) => h("option", { value: f }, f.toUpperCase() + (i === 0 ? " (default)" : ""))));
  fmt.value = keep;

  $("#negative-field").hidden = !m.negative_prompt;

  const q = $("#quality");
  const qualities = m.qualities || [];
  $("#quality-field").hidden = !qualities.length;
  const keepQ = qualities.includes(q.value) ? q.value : "";
  q.replaceChildren(h("option", { value: "" }, "Model default"), ...qualities.map((x) => h("option", { value: x }, x[0].toUpperCase() + x.slice(1))));
  q.value = keepQ;

  if (S.edit) S.edit.setModel(m);
  rangeFor("steps", m.steps, 1);
  rangeFor("guidance", m.guidance, 0.1);
  $("#advanced-none").hidden = Boolean(qualities.length || m.steps || m.guidance);
  advancedSummary();
}

function rangeFor(name, spec, step) {
  const field = $(`#${name}-field`);
  const input = $(`#${name}`);
  field.hidden = !spec;
  if (!spec) return;
  input.min = String(spec.min);
  input.max = String(spec.max);
  input.step = String(step);
  const v = Number(input.value);
  if (!input.dataset.touched || v < spec.min || v > spec.max) {
    input.value = String(spec.default ?? spec.min);
    delete input.dataset.touched;
  }
  input.dataset.default = String(spec.default ?? "");
  $(`#${name}-out`).textContent = input.value;
}

function advancedSummary() {
  const parts = [];
  const m = S.model;
  if (m.qualities && m.qualities.length) parts.push($("#quality").value || "default quality");
  if (m.steps) parts.push(`${$("#steps").value} steps`);
  if (m.guidance) parts.push(`guidance ${Number($("#guidance").value).toFixed(1)}`);
  $("#advanced-summary").textContent = parts.join(" · ");
}

function sizeReadout() {
  const [w, hgt] = S.model.aspect_ratios[S.aspect] || [];
  $("#size-readout").textContent = w ? `${w} × ${hgt} px` : "";
}

// ---- the request -----------------------------------------------------------------------------

function buildBody() {
  const m = S.model;
  const body = { prompt: $("#prompt").value.trim(), model: m.name };
  if (S.aspect) body.aspect_ratio = S.aspect;
  const fmt = $("#format").value;
  if (fmt && fmt !== (m.formats || [])[0]) body.format = fmt;
  const seed = $("#seed").value.trim();
  if (seed !== "") body.seed = Number(seed);
  if (m.negative_prompt) {
    const neg = $("#negative").value.trim();
    if (neg) body.negative_prompt = neg;
  }
  if (m.qualities && m.qualities.length && $("#quality").value) body.quality = $("#quality").value;
  for (const name of ["steps", "guidance"]) {
    const input = $(`#${name}`);
    if (m[name] && input.value !== "" && Number(input.value) !== Number(input.dataset.default)) {
      body[name] = name === "steps" ? Math.round(Number(input.value)) : Number(input.value);
    }
  }
  return body;
}

const estimateSoon = debounce(runEstimate, 300);

async function runEstimate() {
  if (S.estimateCtl) S.estimateCtl.abort();
  const ctl = new AbortController();
  S.estimateCtl = ctl;
  const value = $("#estimate-value");
  const meta = $("#estimate-meta");
  const body = { ...buildBody(), ...S.edit.estimateFields() };
  if (!body.prompt) body.prompt = "a picture"; // the price does not depend on the words
  value.classList.add("loading");
  try {
    const { data } = await api("/v1/estimates", { method: "POST", body, signal: ctl.signal });
    if (ctl.signal.aborted) return;
    const free = data.usd !== null && Number(data.usd) === 0;
    value.textContent = data.usd === null ? "Unpriced" : free ? "Free" : fmtUsd(data.usd);
    value.className = `estimate-value ${free ? "free" : ""}`;
    value.title = data.usd === null ? "No price is known for this model and provider" : `Exactly $${data.usd} (price list ${data.price_version})`;
    meta.className = "estimate-meta";
    // the estimate prices uploads only: a gallery input is sent by generation id, and is not
    // downloaded just to be priced
    const unpriced = !free && S.edit.tray.items.some((i) => i.ref && !i.ref.startsWith("upl_"));
    meta.textContent = `${fmtLatency(S.model.typical_latency_s)} · via ${data.provider}${unpriced ? " · gallery inputs not priced in" : ""}`;
    clearFieldErrors(Boolean(S.blocked));
    setBlocked(null);
  } catch (err) {
    if (err.name === "AbortError") return;
    value.className = "estimate-value loading";
    value.textContent = "–";
    meta.className = "estimate-meta warn";
    const p = err.problem || {};
    if (p.code === "prompt_blocked") {
      meta.textContent = `This prompt will be blocked: ${describeProblem(p).detail}`;
      setBlocked(p);
    } else if (p.code === "invalid_request") meta.textContent = describeProblem(p).detail || "Check the settings";
    else meta.textContent = describeProblem(p).title;
    if (p.code !== "prompt_blocked") setBlocked(null);
  }
}

/** The estimate said the prompt will be blocked: Generate is disabled and the field says why. */
function setBlocked(problem) {
  S.blocked = problem ? describeProblem(problem).detail || "it breaks this server's content rules." : null;
  const btn = $("#generate-btn");
  btn.disabled = S.busy || Boolean(S.blocked);
  if (!S.blocked) {
    btn.removeAttribute("aria-describedby");
    btn.title = "";
    syncInputsBlock();
    return;
  }
  const field = problem.field === "negative_prompt" ? "negative_prompt" : "prompt";
  $(FIELD_INPUT[field]).setAttribute("aria-invalid", "true");
  const where = field === "prompt" ? "This prompt will be blocked" : "The negative prompt will be blocked";
  const el = $("#prompt-error");
  el.replaceChildren(icon("shield"), `${where}: ${S.blocked} Rephrase it to generate; nothing is spent.`);
  el.hidden = false;
  btn.setAttribute("aria-describedby", "prompt-error");
  btn.title = "Generate is off: the prompt would be refused";
}

// ---- field errors --------------------------------------------------------------------------------

const FIELD_INPUT = { prompt: "#prompt", negative_prompt: "#negative", seed: "#seed", format: "#format", quality: "#quality", steps: "#steps", guidance: "#guidance" };

function showFieldError(field, message) {
  const sel = FIELD_INPUT[field];
  if (!sel) return false;
  const input = $(sel);
  input.setAttribute("aria-invalid", "true");
  if (field === "prompt") {
    const el = $("#prompt-error");
    el.replaceChildren(icon("alert"), message);
    el.hidden = false;
  }
  return true;
}

function clearFieldErrors(all = true) {
  for (const sel of Object.values(FIELD_INPUT)) $(sel).removeAttribute("aria-invalid");
  if (all) $("#prompt-error").hidden = true;
}

// ---- submit ---------------------------------------------------------------------------------------

/** Inputs this model cannot take (or a refused upload): Generate is off, the inputs say why. */
function syncInputsBlock() {
  if (S.blocked || !S.edit) return;
  const btn = $("#generate-btn");
  const problem = S.edit.problem();
  btn.disabled = S.busy || Boolean(problem);
  if (problem) {
    btn.setAttribute("aria-describedby", "inputs-help");
    btn.title = `Generate is off: ${problem}`;
  } else {
    btn.removeAttribute("aria-describedby");
    btn.title = "";
  }
}

/** Select another model (the "use a model that edits" offer). */
function selectModel(name) {
  const m = S.models.find((x) => x.name === name);
  if (!m) return;
  S.model = m;
  const radio = $(`#model-list input[value="${CSS.escape(name)}"]`);
  if (radio) radio.checked = true;
  applyModel();
  syncInputsBlock();
  estimateSoon();
  if (radio) radio.focus();
}

function setBusy(busy) {
  const btn = $("#generate-btn");
  S.busy = busy;
  btn.disabled = busy || Boolean(S.blocked) || Boolean(S.edit && S.edit.problem());
  btn.classList.toggle("is-busy", busy);
  btn.querySelector("span").textContent = busy ? "Sending…" : "Generate";
}

async function submit(ev, attempt = 0) {
  if (ev) ev.preventDefault();
  clearTimeout(S.retryTimer);
  if (S.blocked) { // Ctrl+Enter while Generate is disabled: the reason stays on the field
    $("#prompt").focus();
    return;
  }
  clearFieldErrors();
  const body = buildBody();
  if (!body.prompt) {
    showFieldError("prompt", "Write a prompt first: describe the image you want.");
    $("#prompt").focus();
    return;
  }
  if (S.edit.problem()) {
    $("#choose-files").focus();
    return;
  }
  try { localStorage.setItem("pp-model", S.model.name); } catch { /* ignore */ }
  setBusy(true);
  if (S.live) S.live.stop();
  showPending(body);
  if (matchMedia("(max-width: 1020px)").matches) $("#stage").scrollIntoView({ behavior: "smooth", block: "start" });
  try {
    Object.assign(body, await S.edit.fields());
    const { data } = await api("/v1/generations", { method: "POST", body });
    history.replaceState(null, "", `/?job=${encodeURIComponent(data.id)}`);
    follow(data);
  } catch (err) {
    const p = err.problem || {};
    if (p.code === "rate_limited" && attempt < 3) {
      const wait = Math.max(1, Math.min(60, Number(err.retryAfter) || 2));
      countdown(p, wait, () => submit(null, attempt + 1));
      return;
    }
    if (p.code === "invalid_request") {
      for (const e of p.errors || (p.field ? [{ field: p.field, message: p.detail }] : [])) showFieldError(e.field, e.message);
    }
    if (p.code === "prompt_blocked" && p.field !== "negative_prompt") $("#prompt").setAttribute("aria-invalid", "true");
    showProblem(describeProblem(p));
  } finally {
    if (!S.retryTimer) setBusy(false);
  }
}

function countdown(p, seconds, then) {
  let left = seconds;
  const draw = () => showProblem(describeProblem(p, { retryIn: left }), [
    h("button", { type: "button", class: "btn btn-secondary btn-sm", onclick: () => { clearTimeout(S.retryTimer); S.retryTimer = null; setBusy(false); showProblem(describeProblem(p)); } }, "Stop retrying"),
  ]);
  draw();
  const step = () => {
    left -= 1;
    if (left <= 0) { S.retryTimer = null; then(); return; }
    draw();
    S.retryTimer = setTimeout(step, 1000);
  };
  S.retryTimer = setTimeout(step, 1000);
}

function showPending(body) {
  const [w, hgt] = S.model.aspect_ratios[body.aspect_ratio] || [1, 1];
  $("#stage").replaceChildren(h("div", { class: "live" }, h("div", { class: "live-canvas skeleton", vars: { "--ar": `${w} / ${hgt}` } },
    h("div", { class: "live-panel" }, h("div", { class: "live-head" }, h("span", { class: "spinner" }), h("span", { class: "live-title" }, "Sending…"))))));
}

function showProblem(info, extra = []) {
  const actions = [
    h("button", { type: "button", class: "btn btn-secondary btn-sm", onclick: () => $("#prompt").focus() }, icon("pencil"), "Edit prompt"),
    ...extra,
  ];
  $("#stage").replaceChildren(h("div", { class: "stage-problem-wrap" }, problemBox(info, { actions })));
}

function resultActions(job) {
  const copy = h("button", { type: "button", class: "btn btn-secondary btn-sm", onclick: async () => {
    toast((await copyText(absoluteUrl(job.image.url))) ? "Image URL copied" : "Copy failed: select the URL on the details page");
  } }, icon("link"), "Copy URL");
  return [
    h("a", { class: "btn btn-secondary btn-sm", href: `/jobs/${job.id}` }, icon("external"), "Details"),
    copy,
    h("a", { class: "btn btn-secondary btn-sm", href: job.image.url, download: `pixelpipe-${job.id}.${job.request.format}` }, icon("download"), "Download"),
    h("button", { type: "button", class: "btn btn-secondary btn-sm", title: "Same settings, a new random seed", onclick: () => again(job) }, icon("refresh"), "New seed"),
    h("a", { class: "btn btn-secondary btn-sm", href: compareHref(job) }, icon("columns"), "Compare"),
    h("button", { type: "button", class: "btn btn-secondary btn-sm", title: "Use this image as the input of a new edit", onclick: () => editResult(job) }, icon("pencil"), "Edit this"),
  ];
}

/** "Edit this" on a result: it becomes the only input, and the prompt is ready for the change. */
function editResult(job) {
  S.edit.tray.clear();
  if (!S.model.max_input_images) {
    const taker = S.models.find((m) => m.max_input_images > 0);
    if (taker) selectModel(taker.name);
  }
  S.edit.tray.addGeneration(job);
  $("#inputs-field").scrollIntoView({ behavior: "smooth", block: "center" });
  const prompt = $("#prompt");
  prompt.select();
  prompt.focus({ preventScroll: true });
}


async function again(job) {
  $("#seed").value = "";
  setBusy(true);
  try {
    const { data } = await api("/v1/generations", { method: "POST", body: bodyFromJob(job, { seed: randomSeed(), group: undefined }) });
    history.replaceState(null, "", `/?job=${encodeURIComponent(data.id)}`);
    follow(data);
  } catch (err) {
    showProblem(describeProblem(err.problem));
  } finally {
    setBusy(false);
  }
}

function follow(job) {
  S.live = new LiveJob($("#stage"), {
    actions: resultActions,
    modelText: (j) => modelLabel(S.models, j.model),
    errorActions: () => [h("button", { type: "button", class: "btn btn-secondary btn-sm", onclick: () => $("#prompt").focus() }, icon("pencil"), "Edit prompt"),
      h("button", { type: "button", class: "btn btn-primary btn-sm", onclick: () => submit() }, icon("refresh"), "Try again")],
    onDone: () => loadRecent(),
  });
  S.live.start(job);
}

// ---- recent strip ---------------------------------------------------------------------------------

async function loadRecent() {
  let items;
  try {
    items = (await api("/v1/generations?limit=6&status=succeeded")).data.data;
  } catch { return; }
  const ul = $("#recent");
  $("#recent-section").hidden = !items.length;
  ul.replaceChildren(...items.map((j) => h("li", {},
    h("a", { href: `/jobs/${j.id}`, title: j.request.prompt, "aria-label": `${j.request.prompt} (${modelLabel(S.models, j.model)})` },
      j.image ? fadeImg({ src: j.image.thumbnail_url || j.image.url, alt: "", loading: "lazy" }) : h("span", { class: "ph" }, icon("image"))))));
}

// ---- prompt builder --------------------------------------------------------------------------------

const PARTS = ["subject", "style", "medium", "lighting", "composition", "quality"];

function composePrompt() {
  return PARTS.map((p) => $(`#b-${p}`).value.trim()).filter(Boolean).join(", ");
}

function initBuilder() {
  const toggle = $("#builder-toggle");
  const panel = $("#builder");
  toggle.addEventListener("click", () => {
    const open = panel.hidden;
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      const empty = PARTS.every((p) => !$(`#b-${p}`).value.trim());
      if (empty && $("#prompt").value.trim()) $("#b-subject").value = $("#prompt").value.trim();
      $("#b-subject").focus();
    }
  });
  for (const p of PARTS) {
    $(`#b-${p}`).addEventListener("input", () => {
      $("#prompt").value = composePrompt();
      promptChanged();
    });
  }
}

function promptChanged() {
  const n = $("#prompt").value.length;
  const c = $("#prompt-count");
  c.textContent = `${n} characters`;
  $("#prompt-error").hidden = true;
  $("#prompt").removeAttribute("aria-invalid");
  estimateSoon();
}

// ---- init ---------------------------------------------------------------------------------------

function prefill(params) {
  const set = (sel, v) => { if (v !== null && v !== undefined) $(sel).value = v; };
  set("#prompt", params.get("prompt"));
  set("#negative", params.get("negative_prompt"));
  set("#seed", params.get("seed"));
  if (params.get("aspect")) S.aspect = params.get("aspect");
  return params.get("model");
}

function prefillFromJob(job) {
  const r = job.request;
  $("#prompt").value = r.prompt;
  if (r.negative_prompt) $("#negative").value = r.negative_prompt;
  if (r.aspect_ratio) S.aspect = r.aspect_ratio;
  const m = S.models.find((x) => x.name === job.model);
  if (m) S.model = m;
  for (const input of job.inputs || []) if (input.role === "image") S.edit.tray.addStored(input);
}

/** "?image=gen_…" (Edit this, from the gallery or a job page): those images become the inputs,
 * and a model that takes inputs is chosen if the current one does not. */
async function preloadImages(ids) {
  for (const id of ids) {
    try {
      S.edit.tray.addGeneration(await loadGeneration(id));
    } catch (err) {
      S.edit.tray.message = `${id}: ${describeProblem(err.problem).detail || "not found"}`;
      S.edit.tray.render();
    }
  }
  if (S.edit.tray.items.length && !(S.model.max_input_images > 0)) {
    const taker = S.models.find((m) => m.max_input_images > 0);
    if (taker) selectModel(taker.name);
  }
}

export async function init() {
  const params = new URLSearchParams(location.search);
  try {
    S.models = await loadModels();
  } catch (err) {
    $("#model-list").replaceChildren(problemBox(describeProblem(err.problem), { compact: true }));
    return;
  }
  const wanted = prefill(params);
  S.model = S.models.find((m) => m.name === wanted) || S.models.find((m) => m.name === defaultModel(S.models));
  S.edit = new EditForm({
    models: S.models,
    switchModel: selectModel,
    onChange: () => { syncInputsBlock(); estimateSoon(); },
  });

  const jobId = params.get("job");
  let resumed = null;
  if (jobId) {
    try {
      resumed = (await api(`/v1/generations/${encodeURIComponent(jobId)}`)).data;
      if (!params.get("prompt")) prefillFromJob(resumed);
    } catch { history.replaceState(null, "", "/"); }
  }

  renderModels();
  applyModel();
  if (params.get("format")) $("#format").value = params.get("format");
  const images = params.getAll("image").filter(Boolean);
  if (images.length) await preloadImages(images);

  $("#model-list").addEventListener("change", (e) => {
    if (e.target.name !== "model") return;
    S.model = S.models.find((m) => m.name === e.target.value);
    applyModel();
    syncInputsBlock();
    estimateSoon();
  });
  $("#prompt").addEventListener("input", promptChanged);
  for (const sel of ["#negative", "#seed", "#format", "#quality"]) $(sel).addEventListener("input", () => { advancedSummary(); estimateSoon(); });
  for (const name of ["steps", "guidance"]) {
    $(`#${name}`).addEventListener("input", (e) => {
      e.target.dataset.touched = "1";
      $(`#${name}-out`).textContent = e.target.value;
      advancedSummary();
      estimateSoon();
    });
  }
  $("#seed-roll").addEventListener("click", () => { $("#seed").value = String(randomSeed()); estimateSoon(); });
  $("#gen-form").addEventListener("submit", submit);
  $("#gen-form").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); submit(); }
  });
  initBuilder();
  promptChanged();
  runEstimate();
  loadRecent();
  if (resumed) follow(resumed);

  const recentSoon = debounce(loadRecent, 400);
  onJobEvent((ev) => { if (TERMINAL.has(ev.status)) recentSoon(); });
  if (!resumed && !params.get("prompt")) $("#prompt").focus();
  syncInputsBlock();
}
