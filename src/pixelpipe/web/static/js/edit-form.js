// The edit part of the generate form: input images (inputs.js), the gallery picker, the strength
// slider and the mask brush (mask.js), shown by what the chosen model takes (max_input_images,
// accepts_mask, strength from GET /v1/models). generate.js asks it for the request's fields.

import { $, h, icon, editModels, uploadImage, describeProblem } from "./core.js";
import { InputTray, wireDropAndPaste } from "./inputs.js";
import { MaskPainter } from "./mask.js";

export class EditForm {
  /** ``switchModel(name)`` selects another model; ``onChange()`` after any change (estimate). */
  constructor({ models, switchModel, onChange }) {
    this.models = models;
    this.model = null;
    this.switchModel = switchModel;
    this.onChange = onChange;
    this.maskUpload = null; // {version, id}: the painted mask as last uploaded
    this.tray = new InputTray({ onChange: () => this.changed() });
    this.painter = new MaskPainter({ canvas: $("#mask-canvas"), base: $("#mask-base"), onChange: () => this.maskChanged() });
    wireDropAndPaste(this.tray, $("#gen-form"));
    $("#pick-gallery").addEventListener("click", () => this.pick());
    $("#mask-toggle").addEventListener("click", () => this.toggleMask());
    $("#mask-clear").addEventListener("click", () => this.painter.clear());
    for (const r of document.querySelectorAll("input[name='mask-tool']")) {
      r.addEventListener("change", () => { if (r.checked) this.painter.tool = r.value; $("#mask-stage").dataset.tool = r.value; });
    }
    $("#mask-size").addEventListener("input", (e) => {
      this.painter.size = Number(e.target.value);
      $("#mask-size-out").textContent = e.target.value;
    });
    $("#input-fidelity").addEventListener("change", () => this.onChange());
    $("#strength").addEventListener("input", (e) => {
      e.target.dataset.touched = "1";
      $("#strength-out").textContent = Number(e.target.value).toFixed(2);
      this.onChange();
    });
  }

  async pick() {
    const { pickFromGallery } = await import("./gallery-picker.js");
    const job = await pickFromGallery();
    if (job) this.tray.addGeneration(job);
    $("#pick-gallery").focus();
  }

  setModel(model) {
    this.model = model;
    this.tray.setModel(model);
    const spec = model.strength;
    const input = $("#strength");
    if (spec) {
      input.min = String(spec.min);
      input.max = String(spec.max);
      const v = Number(input.value);
      if (!input.dataset.touched || v < spec.min || v > spec.max) {
        input.value = String(spec.default ?? spec.max);
        delete input.dataset.touched;
      }
      input.dataset.default = String(spec.default ?? "");
      $("#strength-out").textContent = Number(input.value).toFixed(2);
    }
    const fidelity = $("#input-fidelity");
    const values = model.input_fidelities || [];
    const keep = values.includes(fidelity.value) ? fidelity.value : "";
    fidelity.replaceChildren(h("option", { value: "" }, "Model default"), ...values.map((v) => h("option", { value: v }, v[0].toUpperCase() + v.slice(1))));
    fidelity.value = keep;
    this.sync();
  }

  changed() {
    this.sync();
    this.onChange();
  }

  /** Show what the model takes: the strength slider, the mask brush, or why it takes nothing. */
  sync() {
    const m = this.model;
    const items = this.tray.items;
    const has = items.length > 0;
    $("#strength-field").hidden = !(m && m.strength && has && m.max_input_images > 0);
    $("#mask-field").hidden = !(m && m.accepts_mask && has);
    $("#fidelity-field").hidden = !(m && (m.input_fidelities || []).length && has);
    this.offerModels();
    const first = items[0];
    if (first && m && m.accepts_mask) this.showFirst(first);
    if (!has && this.painter.painted) this.painter.clear();
    this.maskChanged();
  }

  showFirst(item) {
    const sized = item.width && item.height;
    if (sized) { this.painter.setImage(item.src, item.width, item.height); return; }
    const probe = new Image();
    probe.onload = () => { if (this.tray.items[0] === item) this.painter.setImage(item.src, probe.naturalWidth, probe.naturalHeight); };
    probe.src = item.src;
  }

  /** A model that takes no inputs says so, and offers the ones that do. */
  offerModels() {
    const m = this.model;
    const box = $("#inputs-off");
    const zone = $("#drop-zone");
    const off = Boolean(m) && (m.max_input_images || 0) === 0;
    zone.classList.toggle("is-off", off);
    if (!off) { box.hidden = true; return; }
    const takers = editModels(this.models).slice(0, 3);
    box.hidden = false;
    box.replaceChildren(icon("info"), h("div", {},
      h("p", { class: "notice-title" }, `${m.label} takes no input images`),
      h("p", {}, takers.length ? "Switch to a model that edits images:" : "No model on this server takes input images."),
      takers.length ? h("div", { class: "actions" }, takers.map((t) =>
        h("button", { type: "button", class: "btn btn-secondary btn-sm", dataset: { model: t.name }, onclick: () => this.switchModel(t.name) }, `Use ${t.label}`))) : null));
  }

  toggleMask() {
    const editor = $("#mask-editor");
    const open = editor.hidden;
    editor.hidden = !open;
    $("#mask-toggle").setAttribute("aria-expanded", String(open));
    $("#mask-toggle span").textContent = open ? "Hide the brush" : "Paint a mask";
  }

  maskChanged() {
    $("#mask-state").textContent = this.painter.painted ? "Painted: only that area changes." : "None: the whole image may change.";
  }

  /** Why the request cannot be sent (shown on the form), or null. */
  problem() {
    return this.tray.problem();
  }

  /** The fields the estimate can price (upload ids only; a mask is priced like any input). */
  estimateFields() {
    const images = this.tray.uploadRefs();
    const out = {};
    if (!images.length || !this.model || !this.model.max_input_images) return out;
    out.images = images.slice(0, this.model.max_input_images);
    Object.assign(out, this.settings());
    return out;
  }

  /** strength and input_fidelity, where the model has them and they differ from its default. */
  settings() {
    const out = {};
    const s = this.strength();
    if (s !== undefined) out.strength = s;
    const fidelity = $("#input-fidelity").value;
    if (fidelity && (this.model.input_fidelities || []).includes(fidelity)) out.input_fidelity = fidelity;
    return out;
  }

  strength() {
    const input = $("#strength");
    if (!this.model || !this.model.strength || !input.dataset.touched) return undefined;
    return Number(input.value) === Number(input.dataset.default) ? undefined : Number(input.value);
  }

  /** The request's edit fields, after uploads finish and the painted mask is uploaded. Throws a
   * problem (``{problem}``) when an input was refused. */
  async fields() {
    if (!this.tray.items.length) return {};
    const images = await this.tray.refs();
    if (!images) throw { problem: { code: "invalid_request", title: "An input image was refused", detail: this.tray.problem() } };
    const out = { images, ...this.settings() };
    if (this.model.accepts_mask && this.painter.painted) out.mask = await this.maskId();
    return out;
  }

  async maskId() {
    const version = this.painter.version;
    if (this.maskUpload && this.maskUpload.version === version) return this.maskUpload.id;
    let up;
    try {
      up = await uploadImage(await this.painter.toBlob(), "mask.png");
    } catch (err) {
      throw { problem: { ...(err.problem || {}), title: "The mask could not be uploaded", detail: describeProblem(err.problem).detail } };
    }
    this.maskUpload = { version, id: up.id };
    return up.id;
  }
}
