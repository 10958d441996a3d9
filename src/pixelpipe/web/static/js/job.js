// Job page (/jobs/{id}): the image or its live status, every parameter, and the follow-up actions.
// Reloading while the job runs resumes the live status from the events stream.

import {
  $, api, loadModels, h, icon, tag, fmtDuration, fmtDate, fmtBytes, costOf, copyText, absoluteUrl,
  toast, bodyFromJob, randomSeed, describeProblem, modelLabel, TERMINAL, fmtUsd, compareHref, editHref as editImageHref,
} from "./core.js";
import { lineage, renderInputs } from "./compare-before-after.js";
import { LiveJob } from "./live.js";
import { confirmDialog } from "./dialogs.js";

const S = { models: [], job: null, lineage: null, inputsFor: null };

const STATUS_TONE = { succeeded: "success", failed: "danger", canceled: "", queued: "info" };
const STATUS_TEXT = {
  queued: "Queued", submitting: "Submitting", waiting: "Generating", fetching: "Fetching",
  storing: "Storing", succeeded: "Succeeded", failed: "Failed", canceled: "Canceled",
};

function copyButton(text, what) {
  return h("button", { type: "button", class: "mini-btn", "aria-label": `Copy ${what}`, title: `Copy ${what}`,
    onclick: async () => toast((await copyText(text)) ? `${what[0].toUpperCase()}${what.slice(1)} copied` : "Copy failed") }, icon("copy"));
}

function row(label, value, extra = null) {
  return [h("dt", {}, label), h("dd", {}, value, extra)];
}

function renderSide(job) {
  const r = job.request || {};
  const cost = costOf(job);
  const running = !TERMINAL.has(job.status);
  const badge = tag(statusText(job, job.progress), running ? "info" : STATUS_TONE[job.status] ?? "");
  badge.id = "job-status";
  const title = h("h1", { class: "job-title", id: "job-title" },
    modelLabel(S.models, job.model),
    badge,
    job.cached ? tag("Cached", "success", "zap", "Served from the cache: no provider call, $0") : null);

  const prompt = h("div", { class: "prompt-block" }, h("span", { class: "label" }, "Prompt"), r.prompt);
  const revised = job.revised_prompt
    ? h("div", { class: "prompt-block" }, h("span", { class: "label" }, "Prompt as the model rewrote it"), job.revised_prompt) : null;
  const negative = r.negative_prompt
    ? h("div", { class: "prompt-block" }, h("span", { class: "label" }, "Negative prompt"), r.negative_prompt) : null;

  let costText = cost.text;
  if (running && job.cost && job.cost.estimate_usd != null) costText = `≈ ${fmtUsd(job.cost.estimate_usd)} (estimate)`;
  const rows = [
    ...row("Time", job.cached ? "instant (cache)" : running ? "running…" : fmtDuration(job.timings.duration_s)),
    ...row("Cost", h("span", { title: cost.title }, costText)),
    ...row("Seed", h("code", {}, String(r.seed)), copyButton(String(r.seed), "seed")),
    ...row("Size", `${r.width} × ${r.height}${r.aspect_ratio ? ` (${r.aspect_ratio})` : ""}`),
    ...row("Format", (r.format || "").toUpperCase() + (job.image ? ` · ${fmtBytes(job.image.bytes)}` : "")),
  ];
  if (r.quality) rows.push(...row("Quality", r.quality));
  if (r.steps != null) rows.push(...row("Steps", String(r.steps)));
  if (r.guidance != null) rows.push(...row("Guidance", String(r.guidance)));
  rows.push(
    ...row("Provider", job.provider || "–"),
    ...row("Created", fmtDate(job.timings.created_at)),
    ...row("Attempts", String(job.attempt || 1)),
    ...row("Key", h("code", { title: job.key }, job.key), copyButton(job.key, "key")),
    ...row("Job id", h("code", {}, job.id), copyButton(job.id, "job id")),
  );
  if (job.retry_of) {
    rows.push(...row("Retry of", h("a", { href: `/jobs/${encodeURIComponent(job.retry_of)}`, id: "retry-of" }, h("code", {}, job.retry_of))));
  }
  if (job.group) {
    rows.push(...row("Comparison", h("a", { href: `/compare/${encodeURIComponent(job.group)}` }, "Open comparison")));
  }

  const actions = [];
  if (job.status === "failed" || job.status === "canceled") {
    actions.push(h("button", { type: "button", class: "btn btn-primary", id: "retry-btn", onclick: retry,
      title: "Run the same request again (same seed); the new generation remembers this one" }, icon("refresh"), "Retry"));
  }
  actions.push(h("button", { type: "button", class: `btn ${actions.length ? "btn-secondary" : "btn-primary"}`, id: "again-btn", onclick: again }, icon("refresh"), "Generate again with a new seed"));
  if (job.image) {
    actions.push(h("button", { type: "button", class: "btn btn-secondary", id: "copy-url", onclick: async () => {
      toast((await copyText(absoluteUrl(job.image.url))) ? "Image URL copied" : "Copy failed");
    } }, icon("link"), "Copy image URL"));
    actions.push(h("a", { class: "btn btn-secondary", href: job.image.url, download: `pixelpipe-${job.id}.${r.format}` }, icon("download"), "Download"));
    actions.push(h("a", { class: "btn btn-secondary", id: "edit-image", href: editImageHref(job.id), title: "Open the generator with this image as the input" }, icon("pencil"), "Edit this image"));
  }
  actions.push(h("a", { class: "btn btn-secondary", href: compareHref(job) }, icon("columns"), "Compare models"));
  actions.push(h("a", { class: "btn btn-secondary", href: editHref(job) }, icon("sliders"), "Open in generator"));
  if (!running) actions.push(h("button", { type: "button", class: "btn btn-danger", id: "delete-btn", onclick: remove }, icon("trash"), "Delete"));

  if (!S.lineage) S.lineage = lineage(job, S.models); // fetched once: sources do not change
  if (S.inputsFor !== job.status) { // before / after once the result is in
    S.inputsFor = job.status;
    renderInputs(job, $("#job-inputs"));
  }
  $("#job-side").replaceChildren(...[
    title,
    prompt, revised, negative,
    S.lineage,
    h("div", { class: "side-actions" }, actions),
    h("dl", { class: "kv" }, rows),
  ].filter(Boolean));
  document.title = `${r.prompt ? r.prompt.slice(0, 48) : "Generation"} · pixelpipe`;
}

// a backend with a queue of its own (ComfyUI) may hold the job in line: it is not generating yet
function statusText(job, progress) {
  if (job.status === "waiting" && (progress || {}).state === "queued") return "In line";
  return STATUS_TEXT[job.status] || job.status;
}

function editHref(job) {
  const r = job.request;
  const q = new URLSearchParams({ prompt: r.prompt, model: job.model, seed: String(r.seed) });
  if (r.aspect_ratio) q.set("aspect", r.aspect_ratio);
  if (r.negative_prompt) q.set("negative_prompt", r.negative_prompt);
  if (r.format) q.set("format", r.format);
  return `/?${q}`;
}

async function again() {
  const btn = $("#again-btn");
  btn.disabled = true;
  btn.classList.add("is-busy");
  try {
    const { data } = await api("/v1/generations", { method: "POST", body: bodyFromJob(S.job, { seed: randomSeed() }) });
    location.assign(`/jobs/${encodeURIComponent(data.id)}`);
  } catch (err) {
    btn.disabled = false;
    btn.classList.remove("is-busy");
    const info = describeProblem(err.problem);
    toast(info.title, "alert");
  }
}

async function retry() {
  const btn = $("#retry-btn");
  btn.disabled = true;
  btn.classList.add("is-busy");
  try {
    const { data } = await api(`/v1/generations/${encodeURIComponent(S.job.id)}/retry`, { method: "POST" });
    location.assign(`/jobs/${encodeURIComponent(data.id)}`);
  } catch (err) {
    btn.disabled = false;
    btn.classList.remove("is-busy");
    const info = describeProblem(err.problem);
    toast(info.detail || info.title, "alert");
  }
}

async function remove() {
  const sure = await confirmDialog({
    title: "Delete this generation?",
    text: "The generation and its image are deleted for good (the image file stays only while another generation shares it). What it cost stays in the cost history.",
  });
  if (!sure) return;
  const btn = $("#delete-btn");
  btn.disabled = true;
  try {
    await api(`/v1/generations/${encodeURIComponent(S.job.id)}`, { method: "DELETE" });
  } catch (err) {
    btn.disabled = false;
    const info = describeProblem(err.problem);
    toast(info.detail || info.title, "alert");
    return;
  }
  location.assign("/gallery");
}

export async function init() {
  const id = $("#job").dataset.jobId;
  try { S.models = await loadModels(); } catch { S.models = []; }
  const live = new LiveJob($("#job-stage"), {
    link: false,
    stats: false,
    modelText: (j) => modelLabel(S.models, j.model),
    onChange: (job) => { S.job = job; renderSide(job); },
    onProgress: (progress) => {
      const badge = $("#job-status");
      if (badge && S.job) badge.lastChild.textContent = statusText(S.job, progress);
    },
    onError: (err) => {
      $("#job-side").replaceChildren(h("div", { class: "not-found" },
        h("h1", { class: "job-title" }, err.status === 404 ? "This generation doesn't exist" : "Couldn't load this generation"),
        h("p", { class: "muted" }, err.status === 404 ? "Check the link, or find the image in the gallery." : describeProblem(err.problem).detail),
        h("a", { class: "btn btn-secondary", href: "/gallery" }, icon("grid"), "Open the gallery")));
    },
  });
  await live.start(id);
}
