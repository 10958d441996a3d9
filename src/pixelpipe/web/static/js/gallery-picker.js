// "From the gallery": a dialog of recent finished images; picking one resolves with its job (the
// generate page sends its generation id, so the edit's lineage names it).

import { api, h, icon, fadeImg, describeProblem, problemBox, fmtRelative } from "./core.js";

const PAGE = 18;

function tile(job, choose) {
  const prompt = (job.request && job.request.prompt) || job.id;
  return h("li", {},
    h("button", { type: "button", class: "pick-tile", "aria-label": `Use as input: ${prompt}`, title: prompt, dataset: { id: job.id }, onclick: () => choose(job) },
      fadeImg({ src: job.image.thumbnail_url || job.image.url, alt: "", loading: "lazy" }),
      h("span", { class: "pick-meta" }, fmtRelative(job.timings.created_at))));
}

/** Opens the picker; resolves with the chosen job, or null when closed. */
export function pickFromGallery() {
  return new Promise((resolve) => {
    let chosen = null;
    let cursor = null;
    const list = h("ul", { class: "pick-grid", "aria-busy": "true" });
    const more = h("button", { type: "button", class: "btn btn-secondary btn-sm", hidden: true }, "Load more");
    const status = h("p", { class: "help", role: "status" }, "Loading the gallery…");
    const close = h("button", { type: "button", class: "icon-btn", "aria-label": "Close", title: "Close (Esc)" }, icon("x"));
    const dlg = h("dialog", { class: "dialog pick-dialog", "aria-labelledby": "pick-title", "aria-describedby": "pick-desc" },
      h("div", { class: "pick-inner" },
        h("div", { class: "pick-head" }, h("h2", { id: "pick-title" }, icon("grid"), "Pick an input from the gallery"), close),
        h("p", { id: "pick-desc", class: "help" }, "The edit remembers which generation its input came from."),
        status, list, h("div", { class: "pick-more" }, more)));
    const choose = (job) => { chosen = job; dlg.close(); };
    const load = async () => {
      more.disabled = true;
      const q = new URLSearchParams({ limit: String(PAGE), status: "succeeded" });
      if (cursor) q.set("cursor", cursor);
      let page;
      try {
        page = (await api(`/v1/generations?${q}`)).data;
      } catch (err) {
        status.replaceChildren(problemBox(describeProblem(err.problem), { compact: true }));
        return;
      }
      const jobs = page.data.filter((j) => j.image);
      list.append(...jobs.map((j) => tile(j, choose)));
      list.removeAttribute("aria-busy");
      cursor = page.next_cursor;
      more.hidden = !cursor;
      more.disabled = false;
      const n = list.children.length;
      status.textContent = n ? `${n} image${n === 1 ? "" : "s"}: choose one.` : "No finished images yet: generate one first, or upload a file.";
    };
    more.addEventListener("click", load);
    close.addEventListener("click", () => dlg.close());
    dlg.addEventListener("close", () => { dlg.remove(); resolve(chosen); }, { once: true });
    document.body.append(dlg);
    dlg.showModal();
    close.focus();
    load().then(() => { const first = list.querySelector("button"); if (first) first.focus(); });
  });
}
