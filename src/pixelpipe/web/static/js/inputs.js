// Input images of an edit on the generate page: drop, paste, file picker and the gallery picker;
// thumbnails in order with remove buttons; the chosen model's limit. Files are stored at once with
// POST /v1/uploads (their upload id is sent); a gallery image is sent as its generation id, so the
// server records where the input came from (lineage).

import { $, api, describeProblem, h, icon, uploadImage, announce } from "./core.js";

export const API_MAX_IMAGES = 16; // the native API's cap, whatever the model
const TYPES = new Set(["image/png", "image/jpeg", "image/webp"]);
let nextKey = 1;

/** Image files among dropped / pasted / chosen items (other files are named in a message). */
export function imageFiles(list) {
  const files = Array.from(list || []);
  return { images: files.filter((f) => TYPES.has(f.type)), others: files.filter((f) => !TYPES.has(f.type)) };
}

export class InputTray {
  /** ``onChange()`` runs after every change (add, upload done, remove, model switch). */
  constructor({ onChange }) {
    this.items = [];
    this.model = null;
    this.onChange = onChange;
    this.message = null;
  }

  setModel(model) {
    this.model = model;
    this.render();
  }

  get max() { return this.model ? this.model.max_input_images || 0 : API_MAX_IMAGES; }

  /** Upload files (File objects) as new inputs, in order. */
  addFiles(fileList, how = "added") {
    const { images, others } = imageFiles(fileList);
    this.message = others.length
      ? `${others.map((f) => f.name || "That file").join(", ")}: not a PNG, JPEG or WebP image, so it was left out.`
      : null;
    const room = API_MAX_IMAGES - this.items.length;
    if (images.length > room) this.message = `At most ${API_MAX_IMAGES} input images: ${images.length - room} left out.`;
    for (const file of images.slice(0, Math.max(0, room))) {
      const item = { key: nextKey++, ref: null, src: URL.createObjectURL(file), name: file.name || "pasted image", width: 0, height: 0, state: "uploading", error: null };
      item.promise = uploadImage(file, file.name || "pasted.png").then(
        (up) => { Object.assign(item, { ref: up.id, width: up.width, height: up.height, state: "ready" }); },
        (err) => { item.state = "failed"; item.error = describeProblem(err.problem).detail || describeProblem(err.problem).title; },
      ).finally(() => this.changed());
      this.items.push(item);
    }
    if (images.length) announce(`${Math.min(images.length, Math.max(0, room))} image${images.length === 1 ? "" : "s"} ${how}`);
    this.changed();
  }

  /** A gallery image (a finished generation): sent as its id, so lineage records it. */
  addGeneration(job) {
    if (!job || !job.image) return;
    if (this.items.some((i) => i.ref === job.id)) { this.message = "That gallery image is already an input."; this.changed(); return; }
    if (this.items.length >= API_MAX_IMAGES) { this.message = `At most ${API_MAX_IMAGES} input images.`; this.changed(); return; }
    this.message = null;
    this.items.push({
      key: nextKey++, ref: job.id, src: job.image.url, thumb: job.image.thumbnail_url || job.image.url,
      name: job.request.prompt, width: job.image.width, height: job.image.height, state: "ready", source: job.id,
    });
    announce("Gallery image added as an input");
    this.changed();
  }

  /** An input kept from an earlier job (the "?job=" resume): sent again by its upload id (the
   * server keeps its source generation by digest, so the lineage stays). */
  addStored(input) {
    if (!input.url) return;
    this.items.push({ key: nextKey++, ref: input.id, src: input.url, name: "input", width: 0, height: 0, state: "ready", source: input.source_generation });
    this.changed();
  }

  remove(key) {
    const at = this.items.findIndex((i) => i.key === key);
    if (at < 0) return;
    const [item] = this.items.splice(at, 1);
    if (item.src.startsWith("blob:")) URL.revokeObjectURL(item.src);
    this.message = null;
    announce(`Input image ${at + 1} removed`);
    this.changed();
    const next = $(`#input-list li:nth-child(${Math.min(at + 1, this.items.length)}) .input-x`);
    (next || $("#choose-files")).focus();
  }

  clear() {
    for (const item of this.items) if (item.src.startsWith("blob:")) URL.revokeObjectURL(item.src);
    this.items = [];
    this.changed();
  }

  /** Waits for uploads still running; the refs to send (null when one failed). */
  async refs() {
    await Promise.all(this.items.map((i) => i.promise).filter(Boolean));
    if (this.items.some((i) => i.state !== "ready")) return null;
    return this.items.map((i) => i.ref);
  }

  /** Upload ids only (POST /v1/estimates downloads nothing: gallery images are not priced in). */
  uploadRefs() {
    return this.items.filter((i) => i.state === "ready" && i.ref.startsWith("upl_")).map((i) => i.ref);
  }

  /** Why the current inputs cannot be sent to this model (null when they can). */
  problem() {
    const n = this.items.length;
    const min = (this.model && this.model.min_input_images) || 0;
    if (n < min) return `${this.model.label} needs ${min} input image${min === 1 ? "" : "s"}: add ${min - n} more.`;
    if (!n) return null;
    if (this.items.some((i) => i.state === "failed")) return "An input image was refused: remove it to generate.";
    if (this.max === 0) return `${this.model.label} takes no input images.`;
    if (n > this.max) return `${this.model.label} takes at most ${this.max} input image${this.max === 1 ? "" : "s"}: remove ${n - this.max}.`;
    return null;
  }

  changed() {
    this.render();
    if (this.onChange) this.onChange();
  }

  render() {
    const n = this.items.length;
    $("#input-list").replaceChildren(...this.items.map((item, i) => this.thumb(item, i)));
    $("#drop-zone").classList.toggle("has-items", n > 0);
    const max = this.max;
    const min = (this.model && this.model.min_input_images) || 0;
    $("#inputs-count").textContent = n ? `${n} of ${max || 0}` : min ? `needs ${min}` : max ? `optional · up to ${max}` : "not for this model";
    const full = n >= Math.min(max || API_MAX_IMAGES, API_MAX_IMAGES) && max > 0;
    $("#choose-files").disabled = full;
    $("#pick-gallery").disabled = full;
    const help = $("#inputs-help");
    const problem = this.problem();
    help.classList.toggle("warn", Boolean(problem || this.message));
    help.textContent = problem || this.message || (full ? `That is the most ${this.model.label} takes.` : n ? "The first image is the one edited (and masked); the others are references." : "Edit an image, or start from one: PNG, JPEG or WebP.");
  }

  thumb(item, i) {
    const label = `Input image ${i + 1}${item.source ? " (from the gallery)" : ""}`;
    return h("li", { class: `input-item is-${item.state}`, dataset: { key: String(item.key), ref: item.ref || "" }, title: item.error || item.name },
      h("img", { src: item.thumb || item.src, alt: label, draggable: "false" }),
      h("span", { class: "input-badge", "aria-hidden": "true" }, String(i + 1)),
      item.state === "uploading" ? h("span", { class: "input-state" }, h("span", { class: "spinner", "aria-hidden": "true" }), h("span", { class: "sr-only" }, "Uploading")) : null,
      item.state === "failed" ? h("span", { class: "input-state failed" }, icon("alert"), h("span", { class: "sr-only" }, item.error)) : null,
      h("button", { type: "button", class: "input-x", "aria-label": `Remove input image ${i + 1}`, title: "Remove", onclick: () => this.remove(item.key) }, icon("x")));
  }
}

/** Drag-and-drop onto the form (the drop zone lights up) and paste anywhere on the page. */
export function wireDropAndPaste(tray, form) {
  const zone = $("#drop-zone");
  let depth = 0;
  const hasFiles = (e) => Array.from((e.dataTransfer && e.dataTransfer.types) || []).includes("Files");
  form.addEventListener("dragenter", (e) => { if (!hasFiles(e)) return; e.preventDefault(); depth += 1; zone.classList.add("is-over"); });
  form.addEventListener("dragover", (e) => { if (!hasFiles(e)) return; e.preventDefault(); e.dataTransfer.dropEffect = "copy"; });
  form.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) zone.classList.remove("is-over"); });
  form.addEventListener("drop", (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    zone.classList.remove("is-over");
    tray.addFiles(e.dataTransfer.files, "dropped");
  });
  document.addEventListener("paste", (e) => {
    const files = Array.from((e.clipboardData && e.clipboardData.files) || []);
    if (!imageFiles(files).images.length) return; // text pastes into the prompt as usual
    e.preventDefault();
    tray.addFiles(files, "pasted");
  });
  const picker = $("#input-files");
  $("#choose-files").addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => { tray.addFiles(picker.files, "added"); picker.value = ""; });
}

/** The job of a gallery image by id (for "?image=gen_…"). */
export async function loadGeneration(id) {
  return (await api(`/v1/generations/${encodeURIComponent(id)}`)).data;
}
