// The job page of an edit: its inputs and the result before / after (a slider, or side by side),
// and the lineage chain ("made from"): each input's source generation, and theirs, a few levels up.

import { api, h, icon, fadeImg, modelLabel } from "./core.js";

const LINEAGE_DEPTH = 4;

function aspect(job) {
  const r = job.request || {};
  return r.width && r.height ? `${r.width} / ${r.height}` : "1 / 1";
}

function ratio(job) {
  const r = job.request || {};
  return r.width && r.height ? String(r.width / r.height) : "1";
}

function slider(before, after, ar, arn) {
  const wrap = h("div", { class: "ba-slider", vars: { "--ar": ar, "--arn": arn, "--split": "50%" } });
  const range = h("input", {
    type: "range", class: "ba-range", min: "0", max: "100", step: "1", value: "50",
    "aria-label": "Before and after: drag or use the arrow keys to compare", "aria-valuetext": "half before, half after",
  });
  range.addEventListener("input", () => {
    wrap.style.setProperty("--split", `${range.value}%`);
    range.setAttribute("aria-valuetext", `${range.value}% before`);
  });
  wrap.append(
    h("img", { class: "ba-after", src: after, alt: "After: the result", draggable: "false" }),
    h("img", { class: "ba-before", src: before, alt: "Before: the first input image", draggable: "false" }),
    range,
    h("span", { class: "ba-line", "aria-hidden": "true" }),
    h("span", { class: "ba-label before", "aria-hidden": "true" }, "Before"),
    h("span", { class: "ba-label after", "aria-hidden": "true" }, "After"));
  return wrap;
}

function sideBySide(before, after, ar) {
  return h("div", { class: "ba-side", vars: { "--ar": ar } },
    h("figure", {}, h("img", { src: before, alt: "Before: the first input image" }), h("figcaption", {}, "Before")),
    h("figure", {}, h("img", { src: after, alt: "After: the result" }), h("figcaption", {}, "After")));
}

function inputStrip(job) {
  let n = 0;
  return h("ul", { class: "input-strip", "aria-label": "Inputs of this edit" }, job.inputs.map((input) => {
    const mask = input.role === "mask";
    const caption = mask ? "Mask" : `Image ${++n}`;
    const img = input.url ? h("img", { src: input.url, alt: mask ? "The mask (transparent where the image was edited)" : `Input ${caption}`, loading: "lazy" }) : h("span", { class: "ph" }, icon("image"));
    const media = input.source_generation ? h("a", { href: `/jobs/${input.source_generation}`, title: "Open the generation it came from" }, img) : img;
    return h("li", { class: mask ? "is-mask" : "" }, h("figure", {}, media, h("figcaption", {}, caption, input.source_generation ? " · gallery" : mask ? "" : " · upload")));
  }));
}

/** The inputs card under the image: before / after once the result exists, and every input. */
export function renderInputs(job, root) {
  const first = (job.inputs || []).find((i) => i.role === "image" && i.url);
  if (!job.inputs || !job.inputs.length) { root.hidden = true; return; }
  root.hidden = false;
  const done = job.status === "succeeded" && job.image && first;
  const ar = aspect(job);
  const view = h("div", { class: "ba-view" });
  const modes = done ? h("div", { class: "ba-modes", role: "group", "aria-label": "Comparison view" }) : null;
  const show = (mode) => {
    view.replaceChildren(mode === "slider" ? slider(first.url, job.image.url, ar, ratio(job)) : sideBySide(first.url, job.image.url, ar));
    for (const b of modes.children) b.setAttribute("aria-pressed", String(b.dataset.mode === mode));
  };
  if (done) {
    for (const [mode, label] of [["slider", "Slider"], ["side", "Side by side"]]) {
      modes.append(h("button", { type: "button", class: "btn btn-secondary btn-sm", dataset: { mode }, "aria-pressed": "false", onclick: () => show(mode) }, label));
    }
  }
  root.replaceChildren(
    h("div", { class: "ba-head" }, h("h2", { id: "inputs-title" }, done ? "Before and after" : "Inputs"), modes),
    done ? view : null,
    inputStrip(job));
  if (done) show("slider");
}

// ---- lineage -----------------------------------------------------------------------------------

const cache = new Map();
function generation(id) {
  if (!cache.has(id)) cache.set(id, api(`/v1/generations/${encodeURIComponent(id)}`).then((r) => r.data, () => null));
  return cache.get(id);
}

async function nodes(job, models, depth, seen) {
  const out = [];
  let n = 0;
  for (const input of job.inputs || []) {
    if (input.role !== "image") continue;
    n += 1;
    const id = input.source_generation;
    if (!id) {
      out.push(h("li", {}, node(input.url, h("span", { class: "lin-prompt" }, "An uploaded image"), `Image ${n}`)));
      continue;
    }
    const src = seen.has(id) ? null : await generation(id);
    if (!src) {
      out.push(h("li", {}, node(input.url, h("span", { class: "lin-prompt" }, seen.has(id) ? id : "A deleted generation"), `Image ${n} · ${id}`)));
      continue;
    }
    seen.add(id);
    const link = h("a", { href: `/jobs/${src.id}`, title: src.request.prompt }, src.request.prompt || src.id);
    const li = h("li", {}, node(src.image ? src.image.thumbnail_url || src.image.url : input.url, link, `Image ${n} · ${modelLabel(models, src.model)}`));
    if (src.inputs && src.inputs.length) {
      if (depth + 1 < LINEAGE_DEPTH) {
        const deeper = await nodes(src, models, depth + 1, seen);
        if (deeper.length) li.append(h("ol", { "aria-label": "Made from" }, deeper));
      } else {
        li.append(h("p", { class: "lin-sub" }, "… made from more: open it to follow the chain"));
      }
    }
    out.push(li);
  }
  return out;
}

function node(src, title, sub) {
  return h("div", { class: "lin-node" },
    src ? fadeImg({ src, alt: "", loading: "lazy" }) : h("span", { class: "ph" }),
    h("span", { class: "lin-text" }, title, h("span", { class: "lin-sub" }, sub)));
}

/** "Made from": the chain of source generations (fills itself in; empty for a text-only job). */
export function lineage(job, models) {
  const box = h("section", { class: "lineage", "aria-label": "Lineage", hidden: true });
  if (!job.inputs || !job.inputs.some((i) => i.role === "image")) return box;
  box.hidden = false;
  box.append(h("span", { class: "label" }, icon("layers"), "Made from"));
  const list = h("ol", { "aria-busy": "true" });
  box.append(list);
  nodes(job, models, 0, new Set([job.id])).then((items) => {
    list.replaceChildren(...items);
    list.removeAttribute("aria-busy");
  });
  return box;
}
