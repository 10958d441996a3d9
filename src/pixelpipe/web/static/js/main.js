// Entry point: the shell (theme toggle, live cost counter) on every page, then the page's module.
import { initShell } from "./core.js";

initShell();
import("./dialogs.js").then((m) => m.initKeyControls());

const pages = {
  generate: () => import("./generate.js"),
  gallery: () => import("./gallery.js"),
  job: () => import("./job.js"),
  compare: () => import("./compare.js"),
  moderation: () => import("./moderation.js"),
  queue: () => import("./queue.js"),
};
const load = pages[document.body.dataset.page];
if (load) {
  load().then((m) => m.init()).catch((err) => console.error("page failed to start", err));
}
