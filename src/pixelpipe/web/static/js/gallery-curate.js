// Gallery curation: favourites, boards (sidebar, picker, rename/delete), multi-select with bulk
// download (a zip streamed by POST /v1/images/archive) and bulk delete (POST /v1/generations/delete).
// Talks only to the public API; the gallery module hands it its state and callbacks.

import { $, api, apiKey, h, icon, toast, describeProblem, announce, NetworkError, ApiError } from "./core.js";
import { confirmDialog } from "./dialogs.js";

export const C = { boards: [], favCount: 0, selected: new Set(), hooks: null };

// ---- boards --------------------------------------------------------------------------------------

export async function loadBoards() {
  try {
    const [boards, favs] = await Promise.all([api("/v1/boards"), api("/v1/favourites")]);
    C.boards = boards.data.data;
    C.favCount = favs.data.data.length;
  } catch { C.boards = []; }
  renderBoards();
}

function boardName(id) {
  const b = C.boards.find((x) => x.id === id);
  return b ? b.name : null;
}

export function renderBoards() {
  const f = C.hooks.filters();
  const view = f.board ? f.board : f.favourite ? "favourites" : "all";
  for (const a of document.querySelectorAll("#views-list .board-link")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  $("#fav-count").textContent = C.favCount ? String(C.favCount) : "";
  $("#boards-list").replaceChildren(...C.boards.map((b) =>
    h("li", {},
      h("a", { class: "board-link", href: `/gallery?board=${encodeURIComponent(b.id)}`, dataset: { view: b.id, board: b.id }, "aria-current": view === b.id ? "page" : null },
        icon("folder"), h("span", { class: "board-name" }, b.name), h("span", { class: "board-count", "aria-label": `${b.images} images` }, String(b.images))))));
  const sel = $("#select-board");
  sel.replaceChildren(h("option", { value: "" }, "Add to board…"),
    ...C.boards.map((b) => h("option", { value: b.id }, b.name)),
    h("option", { value: "__new" }, "New board…"));
  const head = $("#board-head");
  head.hidden = !f.board;
  if (f.board) $("#board-title-text").textContent = boardName(f.board) || "Board";
  $("#select-unboard").hidden = !f.board;
}

/** A dialog asking for a board name; resolves with it, or "" when canceled. */
function nameDialog({ title, value = "", confirm }) {
  const input = h("input", { id: "board-name-input", type: "text", maxlength: "80", required: true, autocomplete: "off", value });
  const error = h("p", { class: "field-error", id: "board-name-error", hidden: true });
  const form = h("form", { method: "dialog", novalidate: true },
    h("h2", { id: "board-dlg-title" }, icon("folder"), title),
    h("div", { class: "field" }, h("label", { for: "board-name-input" }, "Name"), input, error),
    h("div", { class: "dialog-actions" },
      h("button", { type: "button", class: "btn btn-secondary", id: "board-name-cancel" }, "Cancel"),
      h("button", { type: "submit", class: "btn btn-primary", id: "board-name-save" }, confirm)));
  const dlg = h("dialog", { class: "dialog", "aria-labelledby": "board-dlg-title" }, form);
  document.body.append(dlg);
  return new Promise((resolve) => {
    form.querySelector("#board-name-cancel").addEventListener("click", () => dlg.close(""));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const name = input.value.trim();
      if (!name) {
        error.replaceChildren(icon("alert"), "Type a name first (1 to 80 characters).");
        error.hidden = false;
        input.focus();
        return;
      }
      dlg.close(name);
    });
    dlg.addEventListener("close", () => { resolve(dlg.returnValue || ""); dlg.remove(); }, { once: true });
    dlg.showModal();
    input.focus();
  });
}

async function createBoard() {
  const name = await nameDialog({ title: "New board", confirm: "Create board" });
  if (!name) return null;
  try {
    const board = (await api("/v1/boards", { method: "POST", body: { name } })).data;
    await loadBoards();
    return board;
  } catch (err) { failed(err, "Could not create the board"); return null; }
}

async function renameBoard() {
  const id = C.hooks.filters().board;
  const name = await nameDialog({ title: "Rename board", value: boardName(id) || "", confirm: "Rename" });
  if (!name) return;
  try {
    await api(`/v1/boards/${encodeURIComponent(id)}`, { method: "PATCH", body: { name } });
    await loadBoards();
    toast("Board renamed", "pencil");
  } catch (err) { failed(err, "Could not rename the board"); }
}

async function deleteBoard() {
  const id = C.hooks.filters().board;
  const sure = await confirmDialog({ title: `Delete the board “${boardName(id) || id}”?`, text: "The board goes; its images stay in the gallery.", confirm: "Delete board" });
  if (!sure) return;
  try {
    await api(`/v1/boards/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (err) { failed(err, "Could not delete the board"); return; }
  toast("Board deleted", "trash");
  await loadBoards();
  C.hooks.showView({ board: "", favourite: false });
}

function failed(err, fallback) {
  toast(describeProblem(err && err.problem).detail || fallback, "alert");
}

// ---- favourites ----------------------------------------------------------------------------------

/** The star on a card (and in the lightbox): toggles the favourite mark at once. */
export function favButton(job) {
  const on = !!job.favourite;
  return h("button", {
    type: "button", class: `g-fav${on ? " on" : ""}`, "aria-pressed": on ? "true" : "false",
    "aria-label": `Favourite: ${(job.request && job.request.prompt) || job.id}`, title: on ? "Unmark favourite" : "Mark favourite",
    dataset: { id: job.id },
  }, icon("star"));
}

export async function setFavourite(job, on) {
  try {
    await api(`/v1/favourites/${encodeURIComponent(job.id)}`, { method: on ? "PUT" : "DELETE" });
  } catch (err) { failed(err, "Could not change the favourite"); return false; }
  job.favourite = on;
  C.favCount = Math.max(0, C.favCount + (on ? 1 : -1));
  $("#fav-count").textContent = C.favCount ? String(C.favCount) : "";
  for (const btn of document.querySelectorAll(`.g-fav[data-id="${CSS.escape(job.id)}"]`)) {
    btn.classList.toggle("on", on);
    btn.setAttribute("aria-pressed", on ? "true" : "false");
    btn.title = on ? "Unmark favourite" : "Mark favourite";
  }
  announce(on ? "Marked favourite" : "Unmarked favourite");
  if (!on && C.hooks.filters().favourite) C.hooks.removeCards([job.id]);
  return true;
}

// ---- selection -----------------------------------------------------------------------------------

export function selectBox(job) {
  const checked = C.selected.has(job.id);
  return h("label", { class: "g-select", title: "Select" },
    h("input", { type: "checkbox", checked, "aria-label": `Select: ${(job.request && job.request.prompt) || job.id}`, dataset: { id: job.id } }),
    h("span", { class: "g-check", "aria-hidden": "true" }, icon("check")));
}

export function toggleSelected(id, on) {
  if (on) C.selected.add(id); else C.selected.delete(id);
  const li = $(`#gallery li[data-id="${CSS.escape(id)}"]`);
  if (li) {
    li.classList.toggle("selected", on);
    const box = li.querySelector(".g-select input");
    if (box) box.checked = on;
  }
  syncBar();
}

export function clearSelection() {
  for (const id of [...C.selected]) toggleSelected(id, false);
}

export function forget(ids) {
  for (const id of ids) C.selected.delete(id);
  syncBar();
}

function syncBar() {
  const n = C.selected.size;
  $("#select-bar").hidden = n === 0;
  document.body.classList.toggle("selecting", n > 0);
  $("#select-count").textContent = `${n} selected`;
}

function ids() { return [...C.selected]; }

async function addSelected(e) {
  const sel = e.target;
  let id = sel.value;
  sel.value = "";
  if (!id) return;
  if (id === "__new") {
    const board = await createBoard();
    if (!board) return;
    id = board.id;
  }
  try {
    const r = (await api(`/v1/boards/${encodeURIComponent(id)}/images`, { method: "POST", body: { ids: ids() } })).data;
    toast(`${r.changed} added to “${boardName(id) || "the board"}”`, "folder");
  } catch (err) { failed(err, "Could not add to the board"); return; }
  await loadBoards();
}

async function unboardSelected() {
  const board = C.hooks.filters().board;
  const chosen = ids();
  try {
    await api(`/v1/boards/${encodeURIComponent(board)}/images/remove`, { method: "POST", body: { ids: chosen } });
  } catch (err) { failed(err, "Could not remove from the board"); return; }
  C.hooks.removeCards(chosen);
  forget(chosen);
  toast(`${chosen.length} removed from the board`, "x");
  await loadBoards();
}

async function favouriteSelected() {
  const chosen = ids();
  try {
    const r = (await api("/v1/favourites", { method: "POST", body: { ids: chosen, favourite: true } })).data;
    toast(`${r.changed} marked favourite`, "star");
  } catch (err) { failed(err, "Could not mark favourites"); return; }
  for (const id of chosen) {
    const job = C.hooks.job(id);
    if (job) job.favourite = true;
    for (const btn of document.querySelectorAll(`.g-fav[data-id="${CSS.escape(id)}"]`)) {
      btn.classList.add("on");
      btn.setAttribute("aria-pressed", "true");
    }
  }
  await loadBoards();
}

/** POST /v1/images/archive and save the answer. The server streams the zip; the page reads it
 * through fetch (it has to send the API key header), then hands it to the browser as a file. */
async function downloadSelected() {
  const chosen = ids();
  const btn = $("#select-download");
  btn.disabled = true;
  toast(`Preparing a zip of ${chosen.length} image${chosen.length === 1 ? "" : "s"}…`, "download");
  try {
    const key = apiKey();
    let res;
    try {
      res = await fetch("/v1/images/archive", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/zip", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({ ids: chosen }),
      });
    } catch (err) { throw new NetworkError(err); }
    if (!res.ok) {
      let problem = null;
      try { problem = await res.json(); } catch { /* not JSON */ }
      throw new ApiError(res.status, problem, res.headers);
    }
    const blob = await res.blob();
    const name = (/filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "") || [])[1] || "pixelpipe.zip";
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    toast(`Downloaded ${name}`, "check");
  } catch (err) {
    failed(err, "The download failed");
  } finally {
    btn.disabled = false;
  }
}

async function deleteSelected() {
  const chosen = ids();
  const n = chosen.length;
  const sure = await confirmDialog({
    title: `Delete ${n} image${n === 1 ? "" : "s"}?`,
    text: "The generations and their images are deleted for good (an image file stays only while another generation shares it). What they cost stays in the cost history.",
    confirm: `Delete ${n}`,
  });
  if (!sure) return;
  let done;
  try {
    done = (await api("/v1/generations/delete", { method: "POST", body: { ids: chosen } })).data;
  } catch (err) { failed(err, "Delete failed"); return; }
  const gone = [...done.deleted, ...done.not_found];
  C.hooks.removeCards(gone);
  forget(gone);
  const kept = Object.keys(done.refused);
  toast(kept.length ? `${done.deleted.length} deleted; ${kept.length} kept: ${Object.values(done.refused)[0]}` : `${done.deleted.length} deleted`, kept.length ? "alert" : "trash");
  await loadBoards();
}

export function initCuration(hooks) {
  C.hooks = hooks;
  $("#board-new").addEventListener("click", async () => {
    const board = await createBoard();
    if (board) C.hooks.showView({ board: board.id, favourite: false });
  });
  $("#board-rename").addEventListener("click", renameBoard);
  $("#board-delete").addEventListener("click", deleteBoard);
  $("#boards-nav").addEventListener("click", (e) => {
    const a = e.target.closest("a.board-link");
    if (!a || e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    const v = a.dataset.view;
    C.hooks.showView(v === "all" ? { board: "", favourite: false } : v === "favourites" ? { board: "", favourite: true } : { board: v, favourite: false });
  });
  $("#gallery").addEventListener("click", (e) => {
    const fav = e.target.closest(".g-fav");
    if (fav) {
      const job = C.hooks.job(fav.dataset.id);
      if (job) setFavourite(job, !job.favourite);
    }
  });
  $("#gallery").addEventListener("change", (e) => {
    const box = e.target.closest(".g-select input");
    if (box) toggleSelected(box.dataset.id, box.checked);
  });
  $("#select-all").addEventListener("click", () => {
    for (const li of document.querySelectorAll("#gallery li.g-item")) toggleSelected(li.dataset.id, true);
  });
  $("#select-clear").addEventListener("click", clearSelection);
  $("#select-board").addEventListener("change", addSelected);
  $("#select-unboard").addEventListener("click", unboardSelected);
  $("#select-favourite").addEventListener("click", favouriteSelected);
  $("#select-download").addEventListener("click", downloadSelected);
  $("#select-delete").addEventListener("click", deleteSelected);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && C.selected.size && !document.querySelector("dialog[open]")) clearSelection();
  });
}
