// Small widgets shared by the generate and compare views.
import { fmtLatency, fmtUsd, h, icon } from "./core.js";

export function priceText(model) {
  const prices = Object.values(model.price_usd || {}).filter((p) => p !== null && p !== undefined).map(Number);
  if (!prices.length) return { text: "Unpriced", free: false };
  const min = Math.min(...prices);
  const max = Math.max(...prices);
  if (max === 0) return { text: "Free", free: true };
  const base = fmtUsd(String(min));
  return { text: min !== max || (model.qualities || []).length ? `from ${base}` : base, free: false };
}

export function aspectGlyph(w, hgt) {
  const big = 20;
  const gw = w >= hgt ? big : Math.max(8, Math.round((big * w) / hgt));
  const gh = hgt >= w ? big : Math.max(8, Math.round((big * hgt) / w));
  return h("span", { class: "aspect-glyph", "aria-hidden": "true" }, h("span", { vars: { "--gw": `${gw}px`, "--gh": `${gh}px` } }));
}

export function renderAspects(container, ratios, current, name, onPick) {
  container.replaceChildren(...Object.entries(ratios).map(([ratio, [w, hgt]]) =>
    h("label", { class: "aspect-opt", title: `${w} × ${hgt} px` },
      h("input", { type: "radio", name, value: ratio, checked: ratio === current, "aria-label": `${ratio} (${w} by ${hgt} pixels)`, onchange: () => onPick(ratio) }),
      h("span", { class: "aspect-chip" }, aspectGlyph(w, hgt), ratio))));
}

const GPU_STATES = ["ready", "busy", "starting", "unknown", "down"]; // best first
const GPU_LABELS = { ready: "GPU ready", busy: "GPU busy", starting: "GPU starting", unknown: "GPU not checked", down: "GPU down" };

/** The state of a model's own GPU servers (``provider_states``: self-hosted providers only), as a
 * badge: the best of them (one ready server is enough); the title lists each. Null without any. */
export function gpuBadge(m) {
  const states = Object.entries(m.provider_states || {});
  if (!states.length) return null;
  const best = GPU_STATES.find((s) => states.some(([, st]) => st === s)) || "unknown";
  const title = states.map(([p, st]) => `${p}: ${st}`).join(", ");
  const fallback = best === "down" && (m.providers || []).length > states.length ? " (other providers run it)" : "";
  return h("span", { class: `tag gpu-state gpu-${best}`, title: `Your GPU servers — ${title}${fallback}` }, GPU_LABELS[best] || best);
}

/** "Edits" on a model that takes input images (its limit and mask in the title). */
export function editTag(m) {
  const n = m.max_input_images || 0;
  if (!n) return null;
  const need = m.min_input_images ? `; needs at least ${m.min_input_images}` : "";
  const title = `Takes up to ${n} input image${n === 1 ? "" : "s"}${m.accepts_mask ? " and a mask" : ""}${need}`;
  return h("span", { class: "tag tag-accent", title }, "Edits");
}

/** A model as a selectable card: label, description, price per image and typical latency. */
export function modelOption(m, { type = "radio", name = "model", checked = false, idPrefix = "md" } = {}) {
  const price = priceText(m);
  const providers = (m.providers || []).join(", ");
  return h("label", { class: "model-opt", dataset: { model: m.name } },
    h("input", { type, name, value: m.name, checked, "aria-describedby": `${idPrefix}-${m.name}` }),
    h("span", { class: "model-card" },
      h("span", { class: "model-radio" }, icon("check")),
      h("span", { class: "model-main" },
        h("span", { class: "model-name" }, m.label, editTag(m)),
        h("span", { class: "model-desc", id: `${idPrefix}-${m.name}` }, m.description)),
      h("span", { class: "model-facts" },
        h("span", { class: `model-price ${price.free ? "free" : ""}`, title: `Price per image (${providers})` }, price.text),
        h("span", { class: "model-latency", title: "Typical time to an image" }, icon("clock"), fmtLatency(m.typical_latency_s)),
        gpuBadge(m))));
}
