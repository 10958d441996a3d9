// Gallery: the /v1/gallery feed (filters, sort, favourites, boards), cursor pagination with
// infinite scroll, search in prompts, live updates from /v1/events. Curation (boards, favourites,
// multi-select, bulk download and delete): gallery-curate.js.

import {
  $, api, loadModels, h, icon, tag, fadeImg, fmtDuration, fmtRelative, costOf, debounce, onJobEvent,
  modelLabel, describeProblem, problemBox, TERMINAL, announce, toast, editHref,
} from "./core.js";
import { confirmDialog } from "./dialogs.js";
import { C, initCuration, loadBoards, renderBoards, favButton, selectBox, setFavourite, forget } from "./gallery-curate.js";

const PAGE = 24;
const S = { models: [], cursor: null, loading: false, done: false, ids: new Set(), jobs: new Map(), gen: 0, filters: {}, open: null };

const FILTERS = ["q", "model", "status", "group", "provider", "since", "until", "cost_min", "cost_max", "sort", "board", "favourite"];
const MORE = { provider: "#provider-filter", since: "#since", until: "#until", cost_min: "#cost-min", cost_max: "#cost-max" };

function readFilters() {
  const p = new URLSearchParams(location.search);
  const f = Object.fromEntries(FILTERS.map((k) => [k, p.get(k) || ""]));
  f.favourite = f.favourite === "true";
  if (f.sort === "newest") f.sort = "";
  return f;
}

/** Filters that narrow the list (not the view: board / favourites, nor the order). */
function narrowing() {
  return ["q", "model", "status", "group", ...Object.keys(MORE)].some((k) => S.filters[k]);
}

function writeFilters() {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(S.filters)) if (v) p.set(k, String(v));
  const qs = p.toString();
  history.replaceState(null, "", qs ? `/gallery?${qs}` : "/gallery");
}

function query(cursor) {
  const p = new URLSearchParams({ limit: String(PAGE) });
  for (const [k, v] of Object.entries(S.filters)) if (v) p.set(k, String(v));
  if (cursor) p.set("cursor", cursor);
  return `/v1/gallery?${p}`;
}

export function card(job, models) {
  S.jobs.set(job.id, job);
  const r = job.request || {};
  const cost = costOf(job);
  const label = modelLabel(models, job.model);
  let thumb;
  if (job.status === "succeeded" && job.image) {
    thumb = fadeImg({ src: job.image.thumbnail_url || job.image.url, alt: "", loading: "lazy", width: 512, height: 512 });
  } else if (job.status === "failed" || job.status === "canceled") {
    thumb = h("div", { class: "state failed" }, icon(job.status === "canceled" ? "ban" : "alert"),
      job.status === "canceled" ? "Canceled" : (job.error && job.error.title) || "Failed");
  } else {
    thumb = h("div", { class: "state skeleton" }, h("span", { class: "spinner" }), "Generating…");
  }
  const zoom = job.status === "succeeded" && job.image
    ? h("button", { type: "button", class: "g-zoom", "aria-label": `View larger: ${r.prompt}`, "aria-haspopup": "dialog" })
    : null;
  const edit = zoom
    ? h("a", { class: "g-edit", href: editHref(job.id), "aria-label": `Edit this image: ${r.prompt}`, title: "Edit this image" }, icon("pencil"))
    : null;
  const badges = h("div", { class: "badges" },
    job.cached ? tag("Cached", "success", "zap", "Served from the cache: $0") : null,
    job.group ? tag("Comparison", "accent", "columns") : null,
    editBadge(job));
  const time = job.cached ? "instant" : job.timings && job.timings.duration_s != null ? fmtDuration(job.timings.duration_s) : "–";
  const selected = C.selected.has(job.id);
  return h("li", { class: `g-item${selected ? " selected" : ""}`, dataset: { id: job.id, status: job.status } },
    h("article", { class: "g-card" },
      h("div", { class: "g-thumb" }, thumb, badges, zoom, edit, selectBox(job), TERMINAL.has(job.status) ? favButton(job) : null),
      h("div", { class: "g-body" },
        h("a", { class: "g-link g-prompt", href: `/jobs/${job.id}`, title: r.prompt }, r.prompt),
        h("div", { class: "g-meta" },
          h("span", { class: "m g-model" }, label),
          h("span", { class: "m", title: "Measured time" }, icon("clock"), time),
          h("span", { class: "m g-cost", title: cost.title }, icon("coins"), cost.text)),
        h("div", { class: "g-foot" },
          h("time", { datetime: job.timings.created_at, title: new Date(job.timings.created_at).toLocaleString() }, fmtRelative(job.timings.created_at)),
          job.group ? h("a", { href: `/compare/${encodeURIComponent(job.group)}` }, "Open comparison") : null))));
}

/** "Edit" on an image made from inputs: how many, and which gallery images (its details page
 * shows the whole chain). */
function editBadge(job) {
  const inputs = (job.inputs || []).filter((i) => i.role === "image");
  if (!inputs.length) return null;
  const from = inputs.filter((i) => i.source_generation).length;
  const title = `Made from ${inputs.length} input image${inputs.length === 1 ? "" : "s"}${from ? ` (${from} from the gallery)` : ""}`;
  return tag("Edit", "info", "layers", title);
}

function skeletons(n) {
  return Array.from({ length: n }, () => h("li", { class: "g-skel skeleton", "aria-hidden": "true" }));
}

async function loadPage(reset = false) {
  if (S.loading && !reset) return;
  if (S.done && !reset) return;
  const gen = reset ? ++S.gen : S.gen;
  const grid = $("#gallery");
  if (reset) {
    S.cursor = null;
    S.done = false;
    S.ids.clear();
    S.jobs.clear();
    grid.replaceChildren(...skeletons(8));
    $("#gallery-empty").hidden = true;
    $("#gallery-end").hidden = true;
  }
  S.loading = true;
  $("#load-more").disabled = true;
  grid.setAttribute("aria-busy", "true");
  let page;
  try {
    page = (await api(query(S.cursor))).data;
  } catch (err) {
    if (gen !== S.gen) return;
    S.loading = false;
    grid.querySelectorAll(".g-skel").forEach((el) => el.remove());
    $("#gallery-empty").hidden = false;
    $("#gallery-empty").replaceChildren(problemBox(describeProblem(err.problem), {
      actions: [h("button", { type: "button", class: "btn btn-secondary btn-sm", onclick: () => loadPage(true) }, icon("refresh"), "Try again")],
    }));
    return;
  }
  if (gen !== S.gen) return;
  grid.querySelectorAll(".g-skel").forEach((el) => el.remove());
  const fresh = page.data.filter((j) => !S.ids.has(j.id));
  for (const j of fresh) S.ids.add(j.id);
  grid.append(...fresh.map((j) => card(j, S.models)));
  S.cursor = page.next_cursor;
  S.done = !page.next_cursor;
  S.loading = false;
  grid.removeAttribute("aria-busy");
  $("#load-more").disabled = false;
  $("#load-more").hidden = S.done;
  $("#gallery-end").hidden = !S.done || S.ids.size === 0;
  if (S.ids.size === 0) showEmpty();
  $("#gallery-status").textContent = `${S.ids.size} image${S.ids.size === 1 ? "" : "s"} shown`;
}

function showEmpty() {
  const filtered = narrowing();
  if (!filtered && (S.filters.board || S.filters.favourite)) {
    const box = $("#gallery-empty");
    box.hidden = false;
    const fav = S.filters.favourite;
    box.replaceChildren(
      h("div", { class: "empty-art" }, icon(fav ? "star" : "folder")),
      h("p", { class: "empty-title" }, fav ? "No favourites yet" : "This board is empty"),
      h("p", { class: "empty-text" }, fav ? "Mark an image with its star and it shows up here." : "Select images in All images, then choose this board under “Add to board…”."),
      h("a", { class: "btn btn-secondary", href: "/gallery", onclick: (e) => { e.preventDefault(); showView({ board: "", favourite: false }); } }, icon("grid"), "All images"));
    return;
  }
  const box = $("#gallery-empty");
  box.hidden = false;
  box.replaceChildren(
    h("div", { class: "empty-art" }, icon(filtered ? "search" : "image")),
    h("p", { class: "empty-title" }, filtered ? "Nothing matches these filters" : "No images yet"),
    h("p", { class: "empty-text" }, filtered ? "Try another search or model, or clear the filters." : "Generate your first image and it will show up here, stored for good."),
    filtered
      ? h("button", { type: "button", class: "btn btn-secondary", onclick: clearFilters }, icon("x"), "Clear filters")
      : h("a", { class: "btn btn-primary", href: "/" }, icon("sparkles"), "Generate an image"));
}

function clearFilters() {
  S.filters = { ...Object.fromEntries(FILTERS.map((k) => [k, ""])), board: S.filters.board, favourite: S.filters.favourite };
  $("#q").value = "";
  $("#model-filter").value = "";
  $("#status-filter").value = "";
  $("#sort").value = "newest";
  syncMore();
  syncGroupChip();
  writeFilters();
  loadPage(true);
}

function syncGroupChip() {
  const g = S.filters.group;
  $("#group-chip").hidden = !g;
  if (g) {
    $("#group-chip-id").textContent = g;
    $("#group-chip-open").href = `/compare/${encodeURIComponent(g)}`;
  }
}

function matches(job) {
  const f = S.filters;
  // a new job goes on top only in the newest-first list it can belong to without asking
  if ((f.sort && f.sort !== "newest") || f.board || f.favourite || Object.keys(MORE).some((k) => f[k])) return false;
  if (f.model && job.model !== f.model) return false;
  if (f.status && job.status !== f.status) return false;
  if (f.group && job.group !== f.group) return false;
  if (f.q && !(job.request.prompt || "").toLowerCase().includes(f.q.toLowerCase())) return false;
  return true;
}

async function onLiveJob(ev) {
  const existing = $(`#gallery li[data-id="${CSS.escape(ev.id)}"]`);
  if (existing && existing.dataset.status === ev.status) return;
  if (!existing && !TERMINAL.has(ev.status) && ev.status !== "queued") return;
  let job;
  try { job = (await api(`/v1/generations/${encodeURIComponent(ev.id)}`)).data; } catch { return; }
  const el = $(`#gallery li[data-id="${CSS.escape(ev.id)}"]`);
  if (el) {
    const had = S.jobs.get(job.id);
    job.favourite = had ? had.favourite : false;
    job.boards = had ? had.boards : [];
    el.replaceWith(card(job, S.models));
    return;
  }
  if (!matches(job)) return;
  job.favourite = false;
  job.boards = [];
  S.ids.add(job.id);
  const node = card(job, S.models);
  node.querySelector(".g-card").classList.add("is-new");
  $("#gallery").prepend(node);
  $("#gallery-empty").hidden = true;
  if (job.status === "succeeded") announce("A new image was added to the gallery");
}

// ---- lightbox: the loaded images one by one (arrows, Esc, swipe), with delete ---------------------

function viewable() {
  return [...document.querySelectorAll("#gallery li.g-item")].filter((li) => li.querySelector(".g-zoom")).map((li) => li.dataset.id);
}

function showInLightbox(id) {
  const job = S.jobs.get(id);
  if (!job) return;
  S.open = id;
  const ids = viewable();
  const at = ids.indexOf(id);
  const img = $("#lb-img");
  img.src = job.image.url;
  img.alt = job.request.prompt;
  $("#lb-prompt").textContent = job.request.prompt;
  const cost = costOf(job);
  $("#lb-meta").textContent = [modelLabel(S.models, job.model), `${job.request.width} × ${job.request.height}`, cost.text, fmtRelative(job.timings.created_at)].join(" · ");
  $("#lb-count").textContent = `${at + 1} of ${ids.length}${S.done ? "" : "+"}`;
  $("#lb-details").href = `/jobs/${job.id}`;
  $("#lb-edit").href = editHref(job.id);
  const fav = $("#lb-fav");
  fav.setAttribute("aria-pressed", job.favourite ? "true" : "false");
  fav.classList.toggle("on", !!job.favourite);
  $("#lb-prev").disabled = at <= 0;
  $("#lb-next").disabled = at >= ids.length - 1 && S.done;
}

async function step(delta) {
  if (!S.open) return;
  let ids = viewable();
  let at = ids.indexOf(S.open) + delta;
  if (at >= ids.length && !S.done) { // past the last loaded image: fetch the next page
    await loadPage();
    ids = viewable();
  }
  at = Math.max(0, Math.min(ids.length - 1, at));
  if (ids[at] && ids[at] !== S.open) showInLightbox(ids[at]);
}

async function deleteOpen() {
  const job = S.jobs.get(S.open);
  if (!job) return;
  const sure = await confirmDialog({
    title: "Delete this image?",
    text: "The generation and its image are deleted for good (the image file stays only while another generation shares it). What it cost stays in the cost history.",
  });
  if (!sure) return;
  const ids = viewable();
  const at = ids.indexOf(job.id);
  try {
    await api(`/v1/generations/${encodeURIComponent(job.id)}`, { method: "DELETE" });
  } catch (err) {
    toast(describeProblem(err.problem).detail || "Delete failed", "alert");
    return;
  }
  removeCard(job.id);
  toast("Image deleted", "trash");
  const rest = viewable();
  if (!rest.length) { $("#lightbox").close(); return; }
  showInLightbox(rest[Math.min(at, rest.length - 1)]);
}

function removeCard(id) {
  const li = $(`#gallery li[data-id="${CSS.escape(id)}"]`);
  if (li) li.remove();
  S.ids.delete(id);
  S.jobs.delete(id);
  forget([id]);
  $("#gallery-status").textContent = `${S.ids.size} image${S.ids.size === 1 ? "" : "s"} shown`;
  if (S.ids.size === 0 && S.done) showEmpty();
}

function initLightbox() {
  const dlg = $("#lightbox");
  $("#gallery").addEventListener("click", (e) => {
    const btn = e.target.closest(".g-zoom");
    if (!btn) return;
    showInLightbox(btn.closest("li").dataset.id);
    dlg.showModal();
    $("#lb-close").focus();
  });
  $("#lb-prev").addEventListener("click", () => step(-1));
  $("#lb-next").addEventListener("click", () => step(1));
  $("#lb-close").addEventListener("click", () => dlg.close());
  $("#lb-delete").addEventListener("click", deleteOpen);
  $("#lb-fav").addEventListener("click", async () => {
    const job = S.jobs.get(S.open);
    if (!job) return;
    if (await setFavourite(job, !job.favourite) && S.open === job.id) showInLightbox(job.id);
  });
  dlg.addEventListener("keydown", (e) => {
    if (e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
    else if (e.key === "ArrowRight") { e.preventDefault(); step(1); }
  });
  dlg.addEventListener("close", () => {
    const li = S.open && $(`#gallery li[data-id="${CSS.escape(S.open)}"] .g-zoom`);
    S.open = null;
    $("#lb-img").removeAttribute("src");
    if (li) li.focus();
  });
  // a horizontal swipe on the image: previous / next
  let start = null;
  const stage = $("#lb-stage");
  stage.addEventListener("pointerdown", (e) => {
    start = e.target.closest("button") ? null : { x: e.clientX, y: e.clientY };
  });
  stage.addEventListener("pointercancel", () => { start = null; });
  stage.addEventListener("pointerup", (e) => {
    if (!start) return;
    const dx = e.clientX - start.x;
    const dy = e.clientY - start.y;
    start = null;
    if (Math.abs(dx) > 50 && Math.abs(dx) > 1.5 * Math.abs(dy)) step(dx < 0 ? 1 : -1);
  });
}

// ---- more filters (provider, dates, cost) and views (all, favourites, a board) --------------------

function syncMore() {
  for (const [k, sel] of Object.entries(MORE)) $(sel).value = S.filters[k] || "";
  const n = Object.keys(MORE).filter((k) => S.filters[k]).length;
  $("#more-count").hidden = !n;
  $("#more-count").textContent = String(n);
  $("#filter-error").hidden = true;
}

function readMore() {
  for (const [k, sel] of Object.entries(MORE)) S.filters[k] = $(sel).value.trim();
  const bad = ["cost_min", "cost_max"].find((k) => S.filters[k] && !/^\d*\.?\d+$/.test(S.filters[k]));
  if (bad) {
    const el = $("#filter-error");
    el.replaceChildren(icon("alert"), "A cost is a number of dollars, like 0.04.");
    el.hidden = false;
    $(MORE[bad]).focus();
    return false;
  }
  return true;
}

function showView({ board, favourite }) {
  S.filters.board = board || "";
  S.filters.favourite = !!favourite;
  renderBoards();
  writeFilters();
  loadPage(true);
}

function removeCards(ids) {
  for (const id of ids) removeCard(id);
}

function fillProviders() {
  const names = [...new Set(S.models.flatMap((m) => m.providers || []))].sort();
  if (S.filters.provider && !names.includes(S.filters.provider)) names.push(S.filters.provider);
  $("#provider-filter").append(...names.map((n) => h("option", { value: n }, n)));
}

export async function init() {
  S.filters = readFilters();
  $("#q").value = S.filters.q;
  $("#status-filter").value = S.filters.status;
  $("#sort").value = S.filters.sort || "newest";
  syncGroupChip();
  initCuration({ filters: () => S.filters, showView, removeCards, job: (id) => S.jobs.get(id) });
  const boards = loadBoards();
  try {
    S.models = await loadModels();
  } catch { S.models = []; }
  fillProviders();
  syncMore();
  await boards;
  const sel = $("#model-filter");
  sel.append(...S.models.map((m) => h("option", { value: m.name }, m.label)));
  if (S.filters.model && !S.models.some((m) => m.name === S.filters.model)) {
    sel.append(h("option", { value: S.filters.model }, S.filters.model));
  }
  sel.value = S.filters.model;

  const apply = () => { writeFilters(); loadPage(true); };
  const searchSoon = debounce(() => { S.filters.q = $("#q").value.trim(); apply(); }, 300);
  $("#q").addEventListener("input", searchSoon);
  $("#gallery-filters").addEventListener("submit", (e) => {
    e.preventDefault();
    searchSoon.cancel();
    S.filters.q = $("#q").value.trim();
    if (!readMore()) return;
    syncMore();
    apply();
  });
  $("#sort").addEventListener("change", (e) => { S.filters.sort = e.target.value === "newest" ? "" : e.target.value; apply(); });
  $("#more-toggle").addEventListener("click", () => {
    const panel = $("#more-filters");
    panel.hidden = !panel.hidden;
    $("#more-toggle").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) $("#provider-filter").focus();
  });
  $("#provider-filter").addEventListener("change", () => { S.filters.provider = $("#provider-filter").value; syncMore(); apply(); });
  $("#more-clear").addEventListener("click", clearFilters);
  sel.addEventListener("change", () => { S.filters.model = sel.value; apply(); });
  $("#status-filter").addEventListener("change", (e) => { S.filters.status = e.target.value; apply(); });
  $("#group-chip-clear").addEventListener("click", () => { S.filters.group = ""; syncGroupChip(); apply(); $("#q").focus(); });
  $("#load-more").addEventListener("click", () => loadPage());
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (e.key === "/" && !(t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement)) {
      e.preventDefault();
      $("#q").focus();
    }
  });
  if ("IntersectionObserver" in window) {
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && !S.loading && !S.done && S.ids.size) loadPage();
    }, { rootMargin: "600px 0px" }).observe($("#sentinel"));
  }
  onJobEvent(onLiveJob);
  initLightbox();
  await loadPage(true);
}
