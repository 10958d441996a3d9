// A generation followed live: skeleton + status steps over SSE, then the image (or the error).
// Reloading a page that shows a running job resumes here: the events endpoint replays from the start.

import {
  TERMINAL, api, costOf, describeJobError, fadeImg, fmtDuration, h, icon, problemBox, tag, announce,
  describeProblem, refreshCostsSoon,
} from "./core.js";

const STEPS = [
  { key: "queued", label: "Queued" },
  { key: "submitting", label: "Submitting to provider" },
  { key: "waiting", label: "Waiting on provider" },
  { key: "fetching", label: "Fetching the image" },
  { key: "storing", label: "Storing" },
];
const STEP_INDEX = Object.fromEntries(STEPS.map((s, i) => [s.key, i]));

const TITLES = {
  queued: "Queued",
  submitting: "Submitting",
  waiting: "Generating",
  fetching: "Fetching the image",
  storing: "Storing",
};

function retryText(ev) {
  const err = ev.error || {};
  const wait = ev.retry_in_s != null ? ` in ${fmtDuration(ev.retry_in_s)}` : "";
  const attempt = ev.attempt ? ` (attempt ${ev.attempt + 1})` : "";
  if (ev.failover && ev.failover.to) {
    const from = ev.failover.from || "The provider";
    const why = err.code === "provider_rate_limited" ? "is rate limiting" : "is unavailable";
    return `${from} ${why} — switching to ${ev.failover.to}`;
  }
  switch (err.code) {
    case "provider_rate_limited": return `Rate limited by the provider — retrying${wait}${attempt}`;
    case "provider_unavailable": return `The provider is unavailable — retrying${wait}${attempt}`;
    case "timed_out": return `The provider is slow — retrying${wait}${attempt}`;
    case "output_fetch_failed": return `Downloading the image failed — retrying${wait} (no new charge)`;
    default: return `${describeProblem(err).title} — retrying${wait}${attempt}`;
  }
}

/**
 * new LiveJob(root, {compact, actions(job) -> [nodes], onChange(job), onProgress(progress), onDone(job)})
 *   .start(jobOrId)
 */
/** The time left as the page says it: "about 12 s left", "about 3 min left". */
function etaText(seconds) {
  if (seconds < 1) return "almost done";
  if (seconds < 90) return `about ${Math.ceil(seconds)} s left`;
  return `about ${Math.round(seconds / 60)} min left`;
}

export class LiveJob {
  constructor(root, opts = {}) {
    this.root = root;
    this.opts = opts;
    this.job = null;
    this.es = null;
    this.timer = null;
    this.poll = null;
    this.note = null;
    this.progress = {};
    this.lastStatus = null;
    this.lastEventAt = 0;
  }

  async start(jobOrId) {
    this.stop();
    if (typeof jobOrId === "string") {
      this.renderLoading();
      try {
        this.job = (await api(`/v1/generations/${encodeURIComponent(jobOrId)}`)).data;
      } catch (err) {
        this.renderProblem(describeProblem(err.problem));
        if (this.opts.onError) this.opts.onError(err);
        return;
      }
    } else {
      this.job = jobOrId;
    }
    this.progress = { ...(this.job.progress || {}) };
    this.render();
    this.changed();
    if (!TERMINAL.has(this.job.status)) this.follow();
    else this.finish();
  }

  stop() {
    if (this.es) this.es.close();
    this.es = null;
    clearInterval(this.timer);
    clearInterval(this.poll);
    this.timer = null;
    this.poll = null;
  }

  // ---- live updates ----------------------------------------------------------------------
  async follow() {
    const id = this.job.id;
    const path = `/v1/generations/${encodeURIComponent(id)}`;
    const ticket = (this.followTicket = (this.followTicket || 0) + 1);
    this.lastEventAt = Date.now();
    // Belt and braces: if the stream goes quiet (or never opens), read the job directly now and then.
    this.poll = setInterval(() => {
      if (Date.now() - this.lastEventAt > 6000) this.refetch();
    }, 3000);
    this.timer = setInterval(() => this.tick(), 100);
    // EventSource cannot send the API key: trade it (api() sends it) for a short-lived token that
    // opens this job's events and nothing else. With auth off the token is not needed, but harmless.
    let query = "";
    try {
      const { token } = (await api(`${path}/event-token`, { method: "POST" })).data;
      query = `?token=${encodeURIComponent(token)}`;
    } catch { /* open without one: fine while auth is off, else the poll above carries on */ }
    if (ticket !== this.followTicket || this.poll === null || TERMINAL.has(this.job.status)) return;
    const es = new EventSource(`${path}/events${query}`);
    this.es = es;
    es.addEventListener("status", (e) => {
      const d = JSON.parse(e.data);
      this.lastEventAt = Date.now();
      if (d.job) this.job = d.job;
      else this.job = { ...this.job, status: d.status, attempt: d.attempt ?? this.job.attempt, error: d.error ?? this.job.error };
      if (d.retrying) this.note = { warn: true, text: retryText(d) };
      else if (!["queued", "submitting"].includes(d.status)) this.note = null;
      if (d.job && d.job.progress) this.progress = { ...d.job.progress };
      this.update();
    });
    es.addEventListener("progress", (e) => {
      this.lastEventAt = Date.now();
      this.progress = { ...this.progress, ...JSON.parse(e.data) };
      this.updateRunning();
      if (this.opts.onProgress) this.opts.onProgress(this.progress);
    });
    es.addEventListener("retry", (e) => {
      this.lastEventAt = Date.now();
      this.note = { warn: true, text: retryText(JSON.parse(e.data)) };
      this.updateRunning();
    });
    es.addEventListener("sweeper", () => {
      this.lastEventAt = Date.now();
      this.note = { warn: false, text: "No word from the provider yet — checking on it directly." };
      this.updateRunning();
    });
    es.addEventListener("error", () => {
      // EventSource reconnects by itself (sending Last-Event-ID); if it gave up, poll instead.
      if (es.readyState === EventSource.CLOSED && this.es === es && !TERMINAL.has(this.job.status)) {
        this.es = null;
        this.refetch();
      }
    });
  }

  async refetch() {
    try {
      const job = (await api(`/v1/generations/${encodeURIComponent(this.job.id)}`)).data;
      this.lastEventAt = Date.now();
      if (job.status !== this.job.status || TERMINAL.has(job.status)) {
        this.job = job;
        this.update();
      }
    } catch { /* keep trying */ }
  }

  update() {
    if (TERMINAL.has(this.job.status)) {
      this.stop();
      this.render();
      this.changed();
      this.finish();
      return;
    }
    if (this.lastStatus !== this.job.status) {
      announce(TITLES[this.job.status] || this.job.status);
    }
    if (!this.root.querySelector(".live-panel")) this.render();
    else this.updateRunning();
    this.changed();
  }

  changed() {
    this.lastStatus = this.job.status;
    if (this.opts.onChange) this.opts.onChange(this.job);
  }

  finish() {
    const job = this.job;
    if (job.status === "succeeded") announce(job.cached ? "Image ready, served from the cache" : "Image ready");
    else announce(describeJobError(job).title);
    refreshCostsSoon();
    if (this.opts.onDone) this.opts.onDone(job);
  }

  // ---- rendering -------------------------------------------------------------------------
  aspect() {
    const r = (this.job && this.job.request) || {};
    return r.width && r.height ? `${r.width} / ${r.height}` : "1 / 1";
  }

  renderLoading() {
    this.root.replaceChildren(h("div", { class: "live" }, h("div", { class: "live-canvas skeleton" })));
  }

  renderProblem(info, actions = []) {
    this.root.replaceChildren(h("div", { class: "stage-problem-wrap" }, problemBox(info, { actions, compact: this.opts.compact })));
  }

  render() {
    const job = this.job;
    if (job.status === "succeeded") return this.renderResult();
    if (TERMINAL.has(job.status)) {
      const actions = this.opts.errorActions ? this.opts.errorActions(job) : [];
      return this.renderProblem(describeJobError(job), actions);
    }
    this.renderRunning();
  }

  renderRunning() {
    const job = this.job;
    const steps = h("ol", { class: "steps", "aria-label": "Progress" },
      STEPS.map((s) => h("li", { class: "step", dataset: { step: s.key } },
        h("span", { class: "step-dot" }, icon("check")), h("span", { class: "step-label" }, s.label),
        h("span", { class: "step-note" }))));
    const bar = h("div", { class: "progress indeterminate", role: "progressbar", "aria-label": "Generation progress", "aria-valuemin": "0", "aria-valuemax": "100" },
      h("div", { class: "progress-bar" }));
    const cancel = h("button", { type: "button", class: "btn btn-ghost btn-sm", onclick: () => this.cancel(cancel) }, icon("stop"), "Cancel");
    const panel = h("div", { class: "live-panel" },
      h("div", { class: "live-head" },
        h("span", { class: "spinner", "aria-hidden": "true" }),
        h("span", { class: "live-title" }, TITLES[job.status] || job.status),
        h("span", { class: "live-elapsed", title: "Elapsed time" }, icon("clock"), h("span", { class: "elapsed-value" }, "0.0 s"))),
      steps, bar,
      h("p", { class: "live-eta", title: "Estimated from this model's recent runs", hidden: true }),
      h("p", { class: "live-note", hidden: true }),
      h("div", { class: "live-foot" },
        h("span", { class: "help live-model" }, this.opts.modelText ? this.opts.modelText(job) : job.model),
        cancel));
    const canvas = h("div", { class: "live-canvas skeleton", vars: { "--ar": this.aspect() } }, panel);
    this.root.replaceChildren(h("div", { class: "live", "aria-busy": "true" }, canvas));
    this.updateRunning();
    this.tick();
  }

  updateRunning() {
    const job = this.job;
    const root = this.root;
    const panel = root.querySelector(".live-panel");
    if (!panel || TERMINAL.has(job.status)) return;
    // a synchronous backend (A1111) runs while the job is still submitting: its progress counts,
    // and its submit is done (the step shown is the run); it may first wait for the backend's lock.
    // A backend with a queue of its own (ComfyUI) may hold a job it was sent in line: not running yet
    const queuedThere = this.progress.state === "queued";
    const backendLine = job.status === "waiting" && queuedThere;
    const inLine = job.status === "queued" || (job.status === "submitting" && queuedThere) || backendLine;
    const running = (job.status === "waiting" && !queuedThere)
      || (job.status === "submitting" && this.progress.percent != null && !queuedThere);
    const idx = running || backendLine ? STEP_INDEX.waiting : (STEP_INDEX[job.status] ?? 0);
    const title = panel.querySelector(".live-title");
    let text = TITLES[job.status] || job.status;
    if (running && job.provider) text = `Generating on ${job.provider}`;
    if (backendLine && job.provider) text = `In line on ${job.provider}`;
    title.textContent = text;
    for (const li of panel.querySelectorAll(".step")) {
      const i = STEP_INDEX[li.dataset.step];
      li.dataset.state = i < idx ? "done" : i === idx ? "current" : "todo";
      const note = li.querySelector(".step-note");
      note.textContent = "";
      if (i === idx && inLine && this.progress.queue_position != null) {
        note.textContent = `#${this.progress.queue_position} in line`;
      }
      if (i === idx && running && this.progress.percent != null) {
        note.textContent = `${Math.round(this.progress.percent)}%`;
      }
      if (li.dataset.step === "waiting") {
        li.querySelector(".step-label").textContent = job.provider ? `Waiting on ${job.provider}` : "Waiting on provider";
      }
    }
    const bar = panel.querySelector(".progress");
    const pct = this.progress.percent;
    this.showPreview(running ? this.progress.preview : null);
    if (pct != null && running) {
      bar.classList.remove("indeterminate");
      bar.querySelector(".progress-bar").style.setProperty("--p", `${Math.max(3, Math.min(100, pct))}%`);
      bar.setAttribute("aria-valuenow", String(Math.round(pct)));
    } else if (job.status === "fetching" || job.status === "storing") {
      bar.classList.remove("indeterminate");
      bar.querySelector(".progress-bar").style.setProperty("--p", job.status === "storing" ? "96%" : "90%");
      bar.setAttribute("aria-valuenow", job.status === "storing" ? "96" : "90");
    } else {
      bar.classList.add("indeterminate");
      bar.removeAttribute("aria-valuenow");
    }
    const eta = panel.querySelector(".live-eta");
    const left = this.progress.eta_s;
    eta.hidden = left == null;
    if (left != null) eta.textContent = etaText(left);
    const note = panel.querySelector(".live-note");
    const logs = this.progress.logs;
    let noteText = this.note ? this.note.text : "";
    if (!noteText && logs) noteText = Array.isArray(logs) ? logs[logs.length - 1] : String(logs).trim().split("\n").pop();
    if (!noteText && job.attempt > 1) noteText = `Attempt ${job.attempt}`;
    note.hidden = !noteText;
    note.className = `live-note ${this.note && this.note.warn ? "warn" : ""}`;
    note.replaceChildren(...(this.note && this.note.warn ? [icon("alert")] : []), noteText || "");
  }

  /** The backend's live preview of the image being made (a data: URL), behind the panel. */
  showPreview(src) {
    const canvas = this.root.querySelector(".live-canvas");
    if (!canvas) return;
    let img = canvas.querySelector(".live-preview");
    const shown = typeof src === "string" && src.startsWith("data:image/");
    canvas.classList.toggle("has-preview", shown); // compact views move the panel off the picture
    if (!shown) {
      if (img) img.remove();
      return;
    }
    if (!img) {
      img = h("img", { class: "live-preview", alt: "", "aria-hidden": "true" });
      canvas.prepend(img);
    }
    if (img.getAttribute("src") !== src) img.setAttribute("src", src);
  }

  tick() {
    const el = this.root.querySelector(".elapsed-value");
    if (!el || !this.job) return;
    const started = Date.parse(this.job.timings && this.job.timings.created_at);
    if (!Number.isFinite(started)) return;
    el.textContent = fmtDuration(Math.max(0, (Date.now() - started) / 1000));
  }

  async cancel(btn) {
    btn.disabled = true;
    try {
      this.job = (await api(`/v1/generations/${encodeURIComponent(this.job.id)}/cancel`, { method: "POST" })).data;
      this.update();
    } catch (err) {
      btn.disabled = false;
      this.note = { warn: true, text: describeProblem(err.problem).title };
      this.updateRunning();
    }
  }

  renderResult() {
    const job = this.job;
    const img = job.image;
    const cost = costOf(job);
    const badges = h("div", { class: "badges" },
      job.cached ? tag("Cached", "success", "zap", "Served from the cache: no provider call, $0") : null);
    const media = h(this.opts.link === false ? "div" : "a",
      { class: "result-media", href: this.opts.link === false ? null : `/jobs/${job.id}`, "aria-label": this.opts.link === false ? null : "Open the details of this image" },
      fadeImg({ src: img.url, alt: job.request.prompt, width: img.width, height: img.height }),
      badges);
    const stats = this.opts.compact || this.opts.stats === false ? null : h("div", { class: "stats" },
      h("span", { class: "stat", title: "Measured time from request to stored image" }, icon("clock"), h("strong", { class: "stat-time" }, job.cached ? "instant" : fmtDuration(job.timings.duration_s))),
      h("span", { class: `stat ${cost.tone ? "tone-" + cost.tone : ""}`, title: cost.title }, icon("coins"), h("strong", { class: "stat-cost" }, cost.text)),
      h("span", { class: "stat" }, icon("image"), `${img.width}×${img.height}`),
      h("span", { class: "stat", title: "Seed" }, icon("dice"), String(job.request.seed)),
      h("span", { class: "stat" }, this.opts.modelText ? this.opts.modelText(job) : job.model));
    const actions = this.opts.actions ? this.opts.actions(job) : [];
    const bar = stats || actions.length ? h("figcaption", { class: "result-bar" }, stats, actions.length ? h("div", { class: "actions" }, actions) : null) : null;
    const revised = job.revised_prompt && !this.opts.compact && this.opts.stats !== false
      ? h("p", { class: "revised" }, h("strong", {}, "Prompt as the model rewrote it: "), job.revised_prompt) : null;
    this.root.replaceChildren(h("figure", { class: "result", dataset: { jobId: job.id } }, media, bar, revised));
  }
}
