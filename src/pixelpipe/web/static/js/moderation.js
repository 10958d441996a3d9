// The moderation page: prompts refused and images blocked/blurred/flagged per day and API key,
// with what the images cost (GET /v1/usage → moderation).
import { $, api, ApiError, fmtUsd, h } from "./core.js";

const WHAT = {
  "prompt refused": "Prompt refused",
  "image blocked": "Image blocked",
  "image blurred": "Image blurred",
  "image flagged": "Image flagged",
  "image unchecked": "Image not checked (moderation down)",
};

export async function init() {
  const empty = $("#moderation-empty");
  let report;
  try {
    ({ data: report } = await api("/v1/usage?group_by=day"));
  } catch (err) {
    empty.textContent = err instanceof ApiError ? `Could not load the report: ${err.message}` : "Could not reach the server.";
    return;
  }
  render(report.moderation || []);
}

export function render(rows) {
  const table = $("#moderation-table");
  const empty = $("#moderation-empty");
  if (!rows.length) {
    table.hidden = true;
    empty.hidden = false;
    empty.textContent = "Nothing refused or blocked yet.";
    return;
  }
  const body = $("#moderation-rows");
  body.replaceChildren(...rows.map(row));
  const images = rows.filter((r) => r.kind === "image");
  $("#moderation-count").textContent = String(rows.reduce((n, r) => n + r.count, 0));
  const micros = images.reduce((n, r) => n + r.spent_micros, 0); // integers: exact
  $("#moderation-spent").textContent = fmtUsd(micros / 1e6);
  empty.hidden = true;
  table.hidden = false;
}

function row(r) {
  const what = WHAT[`${r.kind} ${r.action}`] || `${r.kind} ${r.action}`;
  const spent = r.kind === "image" ? fmtUsd(r.spent_usd) : "–";
  return h(
    "tr",
    { dataset: { kind: r.kind, action: r.action } },
    h("td", null, r.day),
    h("td", null, h("code", null, r.key)),
    h("td", null, what),
    h("td", { class: "num" }, String(r.count)),
    h("td", { class: "num" }, spent),
  );
}
