// Modal dialogs built on <dialog> (focus trap, Esc and the backdrop come with it): the API-key
// dialog shown when the server answers 401, and a confirmation for destructive actions.

import { h, icon, apiKey, forgetApiKey, saveApiKey, toast } from "./core.js";

function modal(labelId, descId, ...children) {
  const dlg = h("dialog", { class: "dialog", "aria-labelledby": labelId, "aria-describedby": descId }, ...children);
  document.body.append(dlg);
  return dlg;
}

/** Resolves with the value the dialog closed with ("" when canceled) and removes it. */
function shown(dlg, focus) {
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => { resolve(dlg.returnValue || ""); dlg.remove(); }, { once: true });
    dlg.showModal();
    if (focus) focus.focus();
  });
}

/**
 * Ask for an API key. Resolves true when one was saved (the caller retries its request).
 * `reason` is the server's problem detail (why the request was refused).
 */
export async function askForKeyDialog(reason) {
  const had = apiKey();
  const input = h("input", {
    id: "api-key-input", name: "key", type: "password", autocomplete: "off", spellcheck: "false",
    autocapitalize: "off", placeholder: "pp_…", required: true, "aria-describedby": "api-key-help api-key-error",
  });
  const error = h("p", { class: "field-error", id: "api-key-error", hidden: true });
  const forget = had
    ? h("button", { type: "button", class: "btn btn-ghost btn-sm", id: "api-key-forget" }, icon("trash"), "Forget the stored key")
    : null;
  const form = h("form", { method: "dialog", novalidate: true },
    h("h2", { id: "api-key-title" }, icon("key"), "API key needed"),
    h("p", { class: "dialog-reason", id: "api-key-desc" },
      had ? "The stored API key was not accepted. " : "", reason || "This server requires an API key for every request."),
    h("p", {}, "An API key is a secret starting with ", h("code", {}, "pp_"),
      " that lets this page call the pixelpipe API for you. An admin creates one on the server with ",
      h("code", {}, "pixelpipe keys create --scopes generate,read"), " (add ", h("code", {}, "admin"),
      " to see usage for every key)."),
    h("div", { class: "field" }, h("label", { for: "api-key-input" }, "API key"), input, error),
    h("p", { class: "help", id: "api-key-help" },
      "The key stays in this browser only (its local storage) and is sent with each request as an ",
      h("code", {}, "Authorization"), " header; the server sets no cookie. To forget it, use ",
      h("strong", {}, "Forget API key"), " at the bottom of any page, or clear this site's data."),
    h("div", { class: "dialog-actions" },
      forget, forget ? h("span", { class: "spacer" }) : null,
      h("button", { type: "button", class: "btn btn-secondary", value: "", id: "api-key-cancel" }, "Cancel"),
      h("button", { type: "submit", class: "btn btn-primary", id: "api-key-save" }, "Save key")));
  const dlg = modal("api-key-title", "api-key-desc", form);
  form.querySelector("#api-key-cancel").addEventListener("click", () => dlg.close(""));
  if (forget) {
    forget.addEventListener("click", () => { forgetApiKey(); syncForgetButton(); dlg.close(""); toast("API key forgotten", "trash"); });
  }
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = input.value.trim();
    if (!/^pp_\S+$/.test(key)) {
      error.replaceChildren(icon("alert"), key ? "That is not an API key: keys start with pp_ (copy it whole)." : "Paste the API key first.");
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    dlg.close(saveApiKey(key) ? "saved" : "");
  });
  const saved = (await shown(dlg, input)) === "saved";
  syncForgetButton();
  return saved;
}

/** A yes/no confirmation. Resolves true when the user confirmed. */
export function confirmDialog({ title, text, confirm = "Delete", danger = true }) {
  const ok = h("button", { type: "submit", class: `btn ${danger ? "btn-danger" : "btn-primary"}`, value: "yes", id: "confirm-yes" },
    danger ? icon("trash") : null, confirm);
  const cancel = h("button", { type: "button", class: "btn btn-secondary", id: "confirm-no" }, "Cancel");
  const form = h("form", { method: "dialog" },
    h("h2", { id: "confirm-title" }, title),
    h("p", { id: "confirm-desc" }, text),
    h("div", { class: "dialog-actions" }, cancel, ok));
  const dlg = modal("confirm-title", "confirm-desc", form);
  dlg.setAttribute("role", "alertdialog");
  cancel.addEventListener("click", () => dlg.close(""));
  return shown(dlg, cancel).then((v) => v === "yes");
}

/** The footer's "Forget API key" button: shown while a key is stored in this browser. */
export function syncForgetButton() {
  const btn = document.getElementById("forget-key");
  if (btn) btn.hidden = !apiKey();
}

export function initKeyControls() {
  const btn = document.getElementById("forget-key");
  if (!btn) return;
  syncForgetButton();
  btn.addEventListener("click", () => {
    forgetApiKey();
    syncForgetButton();
    toast("API key forgotten: the next request will ask for one", "trash");
  });
}
