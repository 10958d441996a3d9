// Shared helpers: the public API client, formatting, DOM building, toasts, theme, cost counter.
// Everything here talks to the documented HTTP API only (/v1/...).

export const TERMINAL = new Set(["succeeded", "failed", "canceled"]);
export const ICONS = document.body.dataset.icons || "/static/img/icons.svg";

// ---- API -------------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, problem, headers) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || { title: `HTTP ${status}`, status, code: `http_${status}` };
    this.code = this.problem.code || `http_${status}`;
    const ra = headers && headers.get("Retry-After");
    this.retryAfter = ra ? Number(ra) : this.problem.retry_after_s || null;
  }
}

export class NetworkError extends Error {
  constructor(cause) {
    super("The server could not be reached.");
    this.cause = cause;
    this.code = "network_error";
    this.problem = {
      code: "network_error",
      title: "Can't reach the pixelpipe server",
      detail: "Check that `pixelpipe serve` is still running, then try again.",
    };
  }
}

// ---- API key (only when the server requires one) ------------------------------------------------
// With API keys on (any key created, or a non-loopback bind) every /v1 call needs
// `Authorization: Bearer pp_…`. The key is typed in by the user and kept in this browser's
// localStorage; the server never sends a key (or any other secret) to the page and sets no cookie,
// so a cross-site request has nothing to ride on. EventSource cannot send the header: with keys on,
// live views fall back to polling through api().
const KEY_STORE = "pixelpipe.apiKey";
let asking = null;

export function apiKey() {
  try { return localStorage.getItem(KEY_STORE) || ""; } catch { return ""; }
}

export function saveApiKey(key) {
  try { localStorage.setItem(KEY_STORE, key); return true; } catch { return false; }
}

export function forgetApiKey() {
  try { localStorage.removeItem(KEY_STORE); } catch { /* private mode: nothing was stored */ }
}

let declined = false;
// the user's next click (Generate, Retry, …) may ask again: what it sends is theirs to authorise
document.addEventListener("click", () => { declined = false; }, true);

// One dialog at a time, however many requests were refused at once (dialogs.js: <dialog>).
// Canceled, it is not shown again until the user clicks something: requests still in flight, or
// sent by the page on its own, fail with their 401 instead of reopening what the user closed.
function askForKey(detail) {
  if (declined) return Promise.resolve(false);
  if (!asking) {
    asking = import("./dialogs.js")
      .then((m) => m.askForKeyDialog(detail))
      .then((saved) => { declined = !saved; return saved; })
      .finally(() => { setTimeout(() => { asking = null; }, 0); });
  }
  return asking;
}

export async function api(path, { method = "GET", body, signal, headers = {} } = {}, retried = false) {
  let res;
  const key = apiKey();
  try {
    res = await fetch(path, {
      method,
      signal,
      headers: {
        Accept: "application/json",
        ...(body && !(body instanceof FormData) ? { "Content-Type": "application/json" } : {}),
        ...(key ? { Authorization: `Bearer ${key}` } : {}),
        ...headers,
      },
      body: body instanceof FormData ? body : body ? JSON.stringify(body) : undefined,
      credentials: "same-origin",
    });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new NetworkError(err);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { title: text.slice(0, 200) }; }
  }
  if (res.status === 401 && !retried) {
    // sent before a key was entered (concurrent page-load requests): retry with it, don't ask again
    const stored = apiKey();
    if ((stored && stored !== key) || (await askForKey(data && (data.detail || (data.error && data.error.message))))) {
      return api(path, { method, body, signal, headers }, true);
    }
  }
  if (!res.ok) throw new ApiError(res.status, data, res.headers);
  return { data, status: res.status, headers: res.headers };
}

let modelsPromise = null;
/** Store an image (a File or Blob) with POST /v1/uploads: resolves with {id, width, height, …}. */
export async function uploadImage(blob, name = "image.png") {
  const form = new FormData();
  form.append("file", blob, name);
  return (await api("/v1/uploads", { method: "POST", body: form })).data;
}

/** The models that take input images (``max_input_images`` > 0), in catalog order. */
export function editModels(models) {
  return (models || []).filter((m) => (m.max_input_images || 0) > 0);
}

/** The generate page with this gallery image preloaded as the input of an edit. */
export function editHref(jobId) {
  return `/?image=${encodeURIComponent(jobId)}`;
}

/** The catalog (GET /v1/models), fetched once per page. */
export function loadModels() {
  if (!modelsPromise) {
    modelsPromise = api("/v1/models").then((r) => r.data.data).catch((err) => { modelsPromise = null; throw err; });
  }
  return modelsPromise;
}

// ---- formatting ------------------------------------------------------------------------------

/** "$0.003" from an exact decimal string; null means unpriced (never shown as $0). */
export function fmtUsd(value, { unpriced = "Unpriced" } = {}) {
  if (value === null || value === undefined || value === "") return unpriced;
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  if (n === 0) return "$0.00";
  if (Math.abs(n) >= 1) return "$" + n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  let s = n.toFixed(4).replace(/0+$/, "");
  if ((s.split(".")[1] || "").length < 2) s = n.toFixed(2);
  if (Number(s) === 0) s = "<0.0001";
  return "$" + s;
}

/** The cost of a finished or running job, in words a user reads. */
export function costOf(job) {
  const c = job.cost || {};
  if (job.cached) return { text: "$0.00", tone: "success", title: "Served from the cache: nothing was spent" };
  switch (c.status) {
    case "priced": return { text: fmtUsd(c.usd), tone: "", title: `Actual cost: $${c.usd}` };
    case "free": return { text: "Free", tone: "success", title: "This model costs nothing" };
    case "unpriced": return { text: "Unpriced", tone: "warning", title: "The provider did not report a price for this run" };
    default:
      if (TERMINAL.has(job.status)) return { text: "$0.00", tone: "", title: "Nothing was charged" };
      return { text: c.estimate_usd != null ? "≈ " + fmtUsd(c.estimate_usd) : "…", tone: "muted", title: "Estimated; the actual cost is recorded when the image is stored" };
  }
}

export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(Number(s))) return "–";
  s = Number(s);
  if (s < 0.05) return "<0.1 s";
  if (s < 10) return s.toFixed(1) + " s";
  if (s < 60) return Math.round(s) + " s";
  const m = Math.floor(s / 60);
  const r = Math.round(s % 60);
  return `${m} min ${String(r).padStart(2, "0")} s`;
}

export function fmtLatency(s) {
  if (!s) return "instant";
  if (s < 2) return "~1 s";
  if (s < 60) return `~${Math.round(s)} s`;
  return `~${Math.round(s / 60)} min`;
}

export function fmtRelative(iso) {
  if (!iso) return "";
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return "";
  const d = (Date.now() - t) / 1000;
  if (d < 45) return "just now";
  if (d < 3600) return `${Math.round(d / 60)} min ago`;
  if (d < 86400) return `${Math.round(d / 3600)} h ago`;
  if (d < 7 * 86400) return `${Math.round(d / 86400)} d ago`;
  return new Date(t).toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" });
}

export function fmtDate(iso) {
  if (!iso) return "–";
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) : iso;
}

export function fmtBytes(n) {
  if (!n) return "–";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function capitalize(s) {
  s = String(s || "").trim();
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

export function sentence(s) {
  s = capitalize(s);
  return s && !/[.!?…]$/.test(s) ? s + "." : s;
}

export function randomSeed() {
  const a = new Uint32Array(1);
  crypto.getRandomValues(a);
  return a[0] % 4294967296;
}

export function debounce(fn, ms) {
  let t = null;
  const wrapped = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(t);
  return wrapped;
}

// ---- DOM ---------------------------------------------------------------------------------------

/** h("div", {class: "x", onclick: fn}, "text", child) — text is always set as text, never HTML. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "vars") for (const [name, val] of Object.entries(v)) el.style.setProperty(name, val);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG = "http://www.w3.org/2000/svg";
export function icon(name, cls = "") {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", `icon ${cls}`.trim());
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  const use = document.createElementNS(SVG, "use");
  use.setAttribute("href", `${ICONS}#${name}`);
  svg.append(use);
  return svg;
}

export function tag(text, tone = "", iconName = null, title = null) {
  return h("span", { class: `tag ${tone ? "tag-" + tone : ""}`.trim(), title }, iconName ? icon(iconName) : null, text);
}

export function $(sel, root = document) { return root.querySelector(sel); }
export function $$(sel, root = document) { return Array.from(root.querySelectorAll(sel)); }

export function announce(text) {
  const el = document.getElementById("announcer");
  if (!el) return;
  el.textContent = "";
  setTimeout(() => { el.textContent = text; }, 30);
}

export function toast(text, iconName = "check") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const t = h("div", { class: "toast", role: "status" }, icon(iconName), text);
  box.append(t);
  setTimeout(() => { t.classList.add("out"); setTimeout(() => t.remove(), 300); }, 2200);
}

export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch { /* fall through to the textarea trick */ }
  const ta = h("textarea", { class: "sr-only", readonly: true });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand("copy"); } catch { ok = false; }
  ta.remove();
  return ok;
}

export function absoluteUrl(url) {
  return new URL(url, location.origin).href;
}

/** A <img> that fades in once loaded (and says so if the URL fails). */
export function fadeImg(attrs) {
  const img = h("img", { decoding: "async", ...attrs });
  const done = () => img.classList.add("loaded");
  img.addEventListener("load", done);
  img.addEventListener("error", () => { img.classList.add("loaded", "broken"); });
  if (img.complete && img.naturalWidth) done();
  return img;
}

// ---- errors in plain words -------------------------------------------------------------------

const REASONS = {
  blocked_term: (p) => `It asks for ${p.category || "content"} that this server does not generate.`,
  prompt_injection: () => "It contains instructions aimed at the model instead of describing a picture.",
  too_long: () => "It is longer than this server allows.",
};

/**
 * A problem+json document (or a job's error) as {title, detail, hint, tone, icon}.
 * Always words a person understands; the machine code is only shown small, underneath.
 */
/** Provider name -> display name ("openai" -> "OpenAI"): the server's registrations, rendered
 * into <body data-providers> (one registration per provider; nothing to add here). */
const PROVIDER_NAMES = JSON.parse(document.body.dataset.providers || "{}");
const PROVIDER_RE = Object.keys(PROVIDER_NAMES).filter((n) => /^[a-z0-9_]+$/.test(n)).join("|") || "(?!)";
const ANSWERED = new RegExp(`^(${PROVIDER_RE}) answered HTTP \\d+:\\s*`, "i");
const NAMED = new RegExp(`^(${PROVIDER_RE})\\b`, "i");

/** "openai answered HTTP 400: Your request…" reads as "OpenAI said: Your request…". */
function plainDetail(detail) {
  if (!detail) return "";
  const m = ANSWERED.exec(detail);
  if (m) return `${PROVIDER_NAMES[m[1].toLowerCase()]} said: ${sentence(detail.slice(m[0].length))}`;
  const name = NAMED.exec(detail);
  if (name) return sentence(PROVIDER_NAMES[name[1].toLowerCase()] + detail.slice(name[0].length));
  return sentence(detail);
}

export function describeProblem(p, { retryIn = null } = {}) {
  p = p || {};
  const code = p.code || "";
  const detail = plainDetail(p.detail);
  const out = { title: p.title || "Something went wrong", detail, hint: "", tone: "danger", icon: "alert", code };
  switch (code) {
    case "prompt_blocked": {
      const why = REASONS[p.reason] ? REASONS[p.reason](p) : "";
      out.title = "Prompt blocked — nothing was spent";
      // the server's detail already says why in words; the reason table covers older servers
      out.detail = detail || why;
      out.hint = p.reason === "too_long" ? "Shorten the prompt and try again." : "Rephrase the prompt and try again.";
      out.icon = "shield";
      out.tone = "warn";
      break;
    }
    case "provider_rejected":
      out.title = "The provider's content policy rejected this prompt";
      out.hint = "Nothing more will be charged for this attempt. Rephrase the prompt, or try another model.";
      out.icon = "shield";
      break;
    case "budget_exceeded":
      out.title = "Budget reached — nothing was charged";
      out.hint = /PIXELPIPE_BUDGET/.test(detail) ? "" : "An operator can raise the limit (PIXELPIPE_BUDGET_DAILY_USD or _MONTHLY_USD), or pick a cheaper model.";
      out.icon = "wallet";
      out.tone = "warn";
      break;
    case "rate_limited":
      out.title = retryIn ? `Too many requests — retrying in ${Math.ceil(retryIn)} s` : "Too many requests right now";
      out.hint = retryIn ? "Your request will be sent again automatically." : "Wait a moment and try again.";
      out.icon = "hourglass";
      out.tone = "warn";
      break;
    case "provider_rate_limited":
      out.title = "The provider is rate limiting requests";
      out.hint = "pixelpipe retried with backoff; try again in a minute.";
      out.icon = "hourglass";
      out.tone = "warn";
      break;
    case "provider_unavailable":
      out.title = "The provider is unavailable right now";
      out.hint = "pixelpipe retried and tried other providers. Try again shortly.";
      break;
    case "timed_out":
      out.title = "The generation took too long and was stopped";
      out.hint = "Providers sometimes stall. Try again, or pick a faster model.";
      out.icon = "clock";
      break;
    case "output_fetch_failed":
      out.title = "The finished image couldn't be downloaded from the provider";
      out.hint = "Try again; if it keeps happening the provider's storage may be down.";
      break;
    case "image_invalid":
    case "output_invalid":
      out.title = "The provider returned something that isn't a valid image";
      out.hint = "Try again with a different seed.";
      break;
    case "invalid_request":
      out.title = "Some settings need a fix";
      out.icon = "info";
      out.tone = "warn";
      break;
    case "not_found":
      out.title = "Not found";
      out.hint = "It may have been removed, or the link is incomplete.";
      out.icon = "info";
      out.tone = "info";
      break;
    case "canceled":
      out.title = "Canceled";
      out.detail = detail || "This generation was canceled before it finished.";
      out.icon = "ban";
      out.tone = "info";
      break;
    case "network_error":
      out.icon = "alert";
      break;
    default:
      if (!p.title) out.title = "Something went wrong";
  }
  return out;
}

/** The same, for a failed or canceled job (its error is {code, title, detail}). */
export function describeJobError(job) {
  if (job.status === "canceled") return describeProblem({ code: "canceled", detail: job.error && job.error.detail });
  return describeProblem(job.error || { title: "The generation failed" });
}

export function problemBox(info, { actions = [], compact = false } = {}) {
  return h(
    "div",
    { class: `problem ${info.tone === "warn" ? "warn" : info.tone === "info" ? "info" : ""}`, role: "alert" },
    h("div", { class: "problem-icon" }, icon(info.icon)),
    h(
      "div",
      { class: "problem-body" },
      h("p", { class: "problem-title" }, info.title),
      info.detail ? h("p", { class: "problem-detail" }, info.detail) : null,
      info.hint && !compact ? h("p", { class: "problem-hint" }, info.hint) : null,
      actions.length ? h("div", { class: "actions" }, actions) : null,
    ),
  );
}

// ---- request helpers ---------------------------------------------------------------------------

/** The POST body that reproduces a job (optionally with changes), from its canonical request. */
export function bodyFromJob(job, overrides = {}) {
  const r = job.request || {};
  const body = { prompt: r.prompt, model: job.model };
  if (r.aspect_ratio) body.aspect_ratio = r.aspect_ratio;
  else if (r.width && r.height) body.size = `${r.width}x${r.height}`;
  if (r.format) body.format = r.format;
  if (r.seed !== null && r.seed !== undefined) body.seed = r.seed;
  for (const k of ["quality", "steps", "guidance", "negative_prompt"]) {
    if (r[k] !== null && r[k] !== undefined && r[k] !== "") body[k] = r[k];
  }
  Object.assign(body, overrides);
  for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
  return body;
}

export function compareHref(job) {
  const q = new URLSearchParams({ prompt: job.request.prompt, seed: String(job.request.seed), models: job.model });
  if (job.request.aspect_ratio) q.set("aspect", job.request.aspect_ratio);
  return `/compare?${q}`;
}

export function modelLabel(models, name) {
  const m = (models || []).find((x) => x.name === name);
  return m ? m.label : name;
}

// ---- live feed: one EventSource for every job change (cost counter, gallery, recent strip) ------

const jobListeners = new Set();
export function onJobEvent(fn) {
  jobListeners.add(fn);
  return () => jobListeners.delete(fn);
}

function openFeed(onAny) {
  let es = null;
  let backoff = 1000;
  let retry = null;
  const connect = () => {
    clearTimeout(retry);
    if (es) es.close();
    es = new EventSource("/v1/events");
    es.addEventListener("open", () => { backoff = 1000; });
    es.addEventListener("job", (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch { return; }
      onAny(data);
      for (const fn of jobListeners) {
        try { fn(data); } catch (err) { console.error(err); }
      }
    });
    es.addEventListener("error", () => {
      if (es.readyState === EventSource.CLOSED && !document.hidden) {
        retry = setTimeout(connect, backoff);
        backoff = Math.min(backoff * 2, 30000);
      }
    });
  };
  // A hidden tab lets go of its stream: browsers allow about six connections per host, shared by
  // every tab, and each open stream holds one. Coming back reconnects and catches up.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) {
      clearTimeout(retry);
      if (es) es.close();
      es = null;
    } else {
      connect();
      onAny(null);
    }
  });
  window.addEventListener("pagehide", () => es && es.close());
  window.addEventListener("pageshow", (e) => { if (e.persisted) { connect(); onAny(null); } });
  connect();
}

// ---- cost counter ------------------------------------------------------------------------------

let lastCosts = null;
async function refreshCosts() {
  let c;
  try {
    c = (await api("/v1/costs")).data;
  } catch {
    return;
  }
  const set = (id, text, title) => {
    const el = document.getElementById(id);
    if (!el) return;
    if (el.textContent !== text && lastCosts) {
      el.classList.remove("bump");
      void el.offsetWidth; // restart the animation
      el.classList.add("bump");
    }
    el.textContent = text;
    if (title) el.title = title;
  };
  set("cost-today", fmtUsd(c.spent_today_usd), `Spent today: $${c.spent_today_usd}`);
  set("cost-total", fmtUsd(c.spent_total_usd), `Spent in total: $${c.spent_total_usd}`);
  set("cost-saved", fmtUsd(c.saved_total_usd), `Saved by the cache (repeat requests served for $0): $${c.saved_total_usd}`);
  set("cost-images", String(c.images), `${c.images} images generated`);
  const counter = document.getElementById("cost-counter");
  if (counter) {
    const unpriced = c.unpriced_events ? `, ${c.unpriced_events} unpriced` : "";
    counter.setAttribute(
      "aria-label",
      `Spending: today ${fmtUsd(c.spent_today_usd)}, total ${fmtUsd(c.spent_total_usd)}, saved by cache ${fmtUsd(c.saved_total_usd)}, ${c.images} images${unpriced}. Open the gallery.`,
    );
  }
  lastCosts = c;
  document.dispatchEvent(new CustomEvent("pp:costs", { detail: c }));
}
export const refreshCostsSoon = debounce(refreshCosts, 250);

// ---- theme -------------------------------------------------------------------------------------

function currentTheme() {
  const t = document.documentElement.getAttribute("data-theme");
  if (t === "light" || t === "dark") return t;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function initTheme() {
  const btn = document.getElementById("theme-toggle");
  if (!btn) return;
  const label = () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    btn.setAttribute("aria-label", `Switch to ${next} theme`);
    btn.title = `Switch to ${next} theme`;
  };
  label();
  btn.addEventListener("click", () => {
    const next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.setAttribute("data-theme", next);
    try { localStorage.setItem("pp-theme", next); } catch { /* private mode */ }
    label();
  });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", label);
}

export function initShell() {
  initTheme();
  refreshCosts();
  openFeed(() => refreshCostsSoon());
}
