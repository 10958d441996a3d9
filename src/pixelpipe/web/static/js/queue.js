// The queue page: every provider's and backend's running and waiting jobs, waiting ones in the
// order they will run, with position, priority, progress and ETA; live (job events + a timer).
// Actions call the public API: /v1/queue, /v1/queue/jobs/{id}/priority, /v1/queue/cancel and,
// for an admin key, /v1/admin/queue/pauses/{target} and /v1/admin/queue/held/{id}/release.
import { $, ApiError, announce, api, debounce, describeProblem, h, icon, onJobEvent, tag, toast } from "./core.js";

const REFRESH_MS = 3000;
const selected = new Set();
let timer = null;
let loading = false;

export function init() {
  $("#queue-cancel-selected").addEventListener("click", cancelSelected);
  onJobEvent(debounce(refresh, 300));
  refresh();
}

async function refresh() {
  clearTimeout(timer);
  if (loading) return;
  loading = true;
  try {
    const { data } = await api("/v1/queue");
    render(data);
    $("#queue-live").classList.remove("is-stale");
  } catch (err) {
    $("#queue-live").classList.add("is-stale");
    console.error("queue refresh failed", err);
  } finally {
    loading = false;
    timer = setTimeout(refresh, REFRESH_MS);
  }
}

function render(queue) {
  const box = $("#queue-lines");
  const lines = queue.lines.filter((l) => l.paused || l.running.length || l.waiting_total);
  box.replaceChildren(...lines.map(renderLine));
  box.setAttribute("aria-busy", "false");
  $("#queue-empty").hidden = lines.length > 0 || queue.held.length > 0;
  const running = lines.reduce((n, l) => n + l.running.length, 0);
  const waiting = lines.reduce((n, l) => n + l.waiting_total, 0);
  $("#queue-status").textContent = `${running} running, ${waiting} waiting`;
  const held = $("#queue-held");
  held.hidden = queue.held.length === 0;
  $("#queue-held-list").replaceChildren(...queue.held.map(renderHeld));
  for (const id of [...selected]) if (!document.getElementById(`sel-${id}`)) selected.delete(id);
  syncSelection();
}

function renderLine(line) {
  const paused = line.paused;
  const meta = `${line.running.length} running · ${line.waiting_total} waiting · ${line.capacity} at once`;
  const pauseBtn = paused
    ? h("button", { type: "button", class: "btn btn-secondary btn-sm", onclick: () => resume(line.target) }, icon("refresh"), h("span", null, "Resume"))
    : h("button", { type: "button", class: "btn btn-secondary btn-sm", onclick: () => pause(line.target) }, icon("stop"), h("span", null, "Pause"));
  const jobs = [...line.running.map((j) => renderJob(j, true)), ...line.waiting.map((j) => renderJob(j, false))];
  const hidden = line.waiting_total - line.waiting.length;
  return h("section", { class: `queue-line${paused ? " is-paused" : ""}`, "aria-label": line.target, dataset: { target: line.target } },
    h("div", { class: "queue-line-head" },
      h("div", null,
        h("h2", null, icon("layers"), line.target, paused ? tag("Paused", "warning", "stop", paused.reason || "") : null),
        h("div", { class: "queue-line-meta" }, paused && paused.reason ? `${meta} · ${paused.reason}` : meta)),
      pauseBtn),
    h("ul", { class: "queue-list" }, jobs),
    hidden > 0 ? h("div", { class: "queue-more" }, `and ${hidden} more waiting (not yours, or further back)`) : null);
}

function renderJob(job, running) {
  const fraction = typeof job.progress.fraction === "number" ? job.progress.fraction : null;
  const eta = job.eta_s == null ? "–" : fmtEta(job.eta_s);
  const check = h("input", { type: "checkbox", id: `sel-${job.id}`, "aria-label": `Select ${job.id}`, checked: selected.has(job.id),
    onchange: (e) => { e.target.checked ? selected.add(job.id) : selected.delete(job.id); syncSelection(); } });
  const prio = running ? h("span", { class: "queue-prio", title: "Priority (0-9, higher runs first)" }, h("span", { class: "queue-prio-label" }, "priority"), h("output", null, job.priority)) : h("span", { class: "queue-prio" },
    h("button", { type: "button", class: "icon-btn", "aria-label": `Lower priority of ${job.id}`, disabled: job.priority <= 0, onclick: () => setPriority(job, job.priority - 1) }, icon("chevron-down")),
    h("output", { title: "Priority (0-9, higher runs first)", "aria-label": `Priority ${job.priority}` }, job.priority),
    h("button", { type: "button", class: "icon-btn", "aria-label": `Raise priority of ${job.id}`, disabled: job.priority >= 9, onclick: () => setPriority(job, job.priority + 1) }, icon("chevron-down", "flip")));
  return h("li", { class: `queue-job${running ? " is-running" : ""}`, dataset: { id: job.id, status: job.status } },
    check,
    h("span", { class: "queue-pos", title: running ? "Running" : "Position" }, running ? icon("zap") : `#${job.position ?? "–"}`),
    h("div", { class: "queue-main" },
      h("div", { class: "queue-what" }, h("strong", { class: "queue-prompt", title: job.prompt || "" }, job.prompt || job.model), tag(job.model), tag(job.status, running ? "info" : ""), prio),
      h("div", { class: "queue-id" }, h("a", { href: `/jobs/${job.id}` }, job.id)),
      running ? h("div", { class: "queue-bar", "aria-hidden": "true" }, h("span", { vars: { "--done": `${Math.round((fraction || 0) * 100)}%` } })) : null),
    h("span", { class: "queue-eta", title: running ? "Likely done in" : "Likely done in (its turn, then its run)" }, icon("clock"), " ", eta),
    h("span", { class: "queue-row-actions" },
      h("button", { type: "button", class: "icon-btn", "aria-label": `Cancel ${job.id}`, title: "Cancel", onclick: () => cancel([job.id]) }, icon("x"))));
}

function renderHeld(job) {
  return h("li", { class: "queue-job", dataset: { id: job.id } },
    h("div", { class: "queue-main" },
      h("div", { class: "queue-what" }, h("strong", { class: "queue-prompt" }, job.prompt || job.model), tag(`${job.crashes} ${job.crashes === 1 ? "crash" : "crashes"}`, "danger", "alert")),
      h("div", { class: "queue-id" }, h("a", { href: `/jobs/${job.id}` }, job.id)),
      h("div", { class: "queue-reason" }, job.held_reason || "")),
    h("span", { class: "queue-row-actions" },
      h("button", { type: "button", class: "btn btn-secondary btn-sm", onclick: () => release(job.id) }, "Release"),
      h("button", { type: "button", class: "btn btn-secondary btn-sm", onclick: () => cancel([job.id]) }, "Cancel")));
}

function fmtEta(s) {
  if (s < 1) return "now";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function syncSelection() {
  const btn = $("#queue-cancel-selected");
  btn.disabled = selected.size === 0;
  btn.querySelector("span").textContent = selected.size ? `Cancel selected (${selected.size})` : "Cancel selected";
}

async function act(fn, done) {
  try {
    await fn();
    if (done) { toast(done); announce(done); }
  } catch (err) {
    const info = err instanceof ApiError ? describeProblem(err.data || {}) : { title: "Could not reach the server" };
    toast(info.detail || info.title || "That did not work", "alert");
  }
  refresh();
}

function setPriority(job, priority) {
  return act(() => api(`/v1/queue/jobs/${job.id}/priority`, { method: "POST", body: { priority } }), `Priority ${priority}`);
}

function cancel(ids) {
  return act(async () => {
    const { data } = await api("/v1/queue/cancel", { method: "POST", body: { ids } });
    const n = data.data.filter((r) => r.status === "canceled").length;
    for (const id of ids) selected.delete(id);
    toast(`Canceled ${n} of ${ids.length}`);
  });
}

function cancelSelected() {
  return cancel([...selected]);
}

function pause(target) {
  return act(() => api(`/v1/admin/queue/pauses/${encodeURIComponent(target)}`, { method: "POST", body: { reason: "paused from the queue page" } }), `${target} paused: running jobs finish, new ones wait`);
}

function resume(target) {
  return act(() => api(`/v1/admin/queue/pauses/${encodeURIComponent(target)}`, { method: "DELETE" }), `${target} resumed`);
}

function release(id) {
  return act(() => api(`/v1/admin/queue/held/${id}/release`, { method: "POST" }), "Released");
}
