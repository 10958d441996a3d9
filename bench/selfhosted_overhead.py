"""Overhead per image on a self-hosted backend: a real cog server with a 0-second predictor.

Issue 14 target: pixelpipe's time per image minus the predictor's own ≤ 5 % of the 0.7 s a FLUX
schnell image takes (≤ 35 ms). Sequential jobs (concurrency 1) through `pixelpipe serve` over
HTTP, by webhook (`PUT /predictions/<id>`, cog POSTs the completion back) and synchronously
(`webhooks = false`: `POST /predictions` held open). Per job, minus cog's `metrics.predict_time`
(the ledger's gpu_seconds):
  - server: the job's created → finished (`timings.duration_s`): intake … cog … store, ledger;
  - client: sending the POST → reading the `succeeded` SSE event (adds the HTTP round trips);
  - before the call: created → submitted (what runs before cog is asked).
`cog alone` is the same server asked directly, round trip minus predict_time: synchronously
(`POST /predictions`), and by webhook (`PUT` + `Prefer: respond-async`, the completed webhook
received by a small local server): the part of the overhead that is cog's own.

    .venv/bin/python bench/selfhosted_overhead.py [--jobs 50] [--quick]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any

import httpx
from _selfhosted import (
    FLUX_SCHNELL_S,
    Backend,
    body,
    cog_server,
    cpu_s,
    follow,
    gpu_seconds,
    machine,
    ms_line,
    query,
    serving,
    workdir,
)
from tests.support.serve import Server

Row = dict[str, float]


def one(client: httpx.Client, model: str, tag: str, i: int) -> tuple[str, float, float]:
    """(job id, POST seconds, client seconds: POST sent → succeeded event read)."""
    t0 = time.perf_counter()
    r = client.post("/v1/generations", json=body(model, tag, i))
    t_post = time.perf_counter() - t0
    assert r.status_code == 202, r.text
    done = follow(client, r.json())
    assert done["status"] == "succeeded", done
    return str(done["id"]), t_post, time.perf_counter() - t0


def run_mode(
    srv: Server, model: str, mode: str, n: int, warm: int
) -> tuple[list[Row], float, list[str]]:
    """``n`` sequential jobs after ``warm`` unmeasured ones; (rows, server CPU s per job, ids)."""
    assert srv.proc is not None
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        for i in range(warm):
            one(client, model, f"{mode}-warm", i)
        cpu0 = cpu_s(srv.proc.pid)
        runs = [one(client, model, mode, i) for i in range(n)]
        cpu = (cpu_s(srv.proc.pid) - cpu0) / n
    ids = [job_id for job_id, _, _ in runs]
    gpu = gpu_seconds(srv, ids)
    marks = ",".join("?" * len(ids))
    times = {
        job_id: (created, submitted, finished)
        for job_id, created, submitted, finished in query(
            srv,
            f"SELECT id, created_at, submitted_at, finished_at FROM jobs WHERE id IN ({marks})",
            *ids,
        )
    }
    rows = []
    for job_id, t_post, t_client in runs:
        created, submitted, finished = times[job_id]
        rows.append(
            {
                "gpu": gpu[job_id],
                "server": finished - created - gpu[job_id],
                "client": t_client - gpu[job_id],
                "post": t_post,
                "before_call": submitted - created,
            }
        )
    return rows, cpu, ids


def cog_alone(url: str, n: int) -> list[float]:
    """Round trip of a sync `POST /predictions` minus its predict_time, ``n`` times."""
    out = []
    with httpx.Client(timeout=60) as client:
        for i in range(n + 3):
            t0 = time.perf_counter()
            r = client.post(f"{url}/predictions", json={"input": {"prompt": f"alone {i}"}})
            wall = time.perf_counter() - t0
            assert r.json()["status"] == "succeeded", r.text
            if i >= 3:  # the first ones warm the connection and the worker
                out.append(wall - float(r.json()["metrics"]["predict_time"]))
            time.sleep(0.05)  # coglet frees the slot just after it answers
    return out


def stages(srv: Server, job_ids: list[str]) -> dict[str, float]:
    """Median seconds between the jobs' consecutive status events, per step ("a → b")."""
    marks = ",".join("?" * len(job_ids))
    rows = query(
        srv,
        "SELECT job_id, json_extract(data, '$.status'), created_at FROM job_events "
        f"WHERE type = 'status' AND job_id IN ({marks}) ORDER BY id",
        *job_ids,
    )
    by_job: dict[str, list[tuple[str, float]]] = {}
    for job_id, status, at in rows:
        by_job.setdefault(job_id, []).append((status, at))
    steps: dict[str, list[float]] = {}
    for events in by_job.values():
        for (a, t_a), (b, t_b) in pairwise(events):
            steps.setdefault(f"{a} → {b}", []).append(t_b - t_a)
    return {step: statistics.median(times) for step, times in steps.items()}


class _Hooks(BaseHTTPRequestHandler):
    """Records when each prediction's terminal webhook arrived (``server.arrived``)."""

    def do_POST(self) -> None:
        pred = json.loads(self.rfile.read(int(self.headers["content-length"])))
        if pred.get("status") in ("succeeded", "failed", "canceled"):
            self.server.arrived[pred["id"]] = (time.perf_counter(), pred)  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def cog_alone_by_webhook(url: str, n: int) -> tuple[list[float], list[float]]:
    """``PUT /predictions/<id>`` + ``Prefer: respond-async`` to a local receiver, as pixelpipe
    sends it: (the PUT's round trip, PUT sent → completed webhook in, minus predict_time)."""
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    hooks.arrived = {}  # type: ignore[attr-defined]
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    hook_url = f"http://127.0.0.1:{hooks.server_address[1]}/hook"
    puts, ends = [], []
    try:
        with httpx.Client(timeout=60, headers={"Prefer": "respond-async"}) as client:
            for i in range(n + 3):
                pid = f"alone-hook-{i}"
                req = {"id": pid, "input": {"prompt": pid}, "webhook": hook_url}
                req["webhook_events_filter"] = ["start", "completed"]
                t0 = time.perf_counter()
                assert client.put(f"{url}/predictions/{pid}", json=req).status_code == 202
                put = time.perf_counter() - t0
                while pid not in hooks.arrived:  # type: ignore[attr-defined]
                    time.sleep(0.0005)
                t_end, pred = hooks.arrived[pid]  # type: ignore[attr-defined]
                if i >= 3:
                    puts.append(put)
                    ends.append(t_end - t0 - float(pred["metrics"]["predict_time"]))
                time.sleep(0.05)  # coglet frees the slot just after the completed webhook
    finally:
        hooks.shutdown()
    return puts, ends


def report(mode: str, rows: list[Row], cpu: float, steps: dict[str, float]) -> None:
    gpu = [r["gpu"] for r in rows]
    print(
        f"{mode}: {len(rows)} sequential jobs, predictor time (cog's predict_time) median "
        f"{statistics.median(gpu) * 1000:.1f} ms; overhead = time − predict_time, "
        f"(% of {FLUX_SCHNELL_S} s):"
    )
    print(ms_line("server (created → finished)", [r["server"] for r in rows]))
    print(ms_line("client (POST → succeeded event)", [r["client"] for r in rows]))
    print(ms_line("  of which the POST", [r["post"] for r in rows]))
    print(ms_line("  of which before the call", [r["before_call"] for r in rows]))
    print(f"  server CPU per job: {cpu * 1000:.1f} ms")
    print("  steps (median ms): " + ", ".join(f"{k} {v * 1000:.1f}" for k, v in steps.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=50, help="measured jobs per mode")
    parser.add_argument("--modes", default="webhook,sync")
    parser.add_argument("--quick", action="store_true", help="10 jobs per mode")
    args = parser.parse_args()
    n, warm = (10, 3) if args.quick else (args.jobs, 10)
    print(machine())
    work = workdir()
    try:
        with cog_server(work, slots=1) as cog:
            modes = {
                "webhook": Backend("gpu_hook", cog.url),
                "sync": Backend("gpu_sync", cog.url, webhooks=False),
            }
            with serving(work, list(modes.values())) as srv:
                measure(srv, cog.url, {m: modes[m] for m in args.modes.split(",")}, n, warm)
        print(machine())
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(srv: Server, cog_url: str, modes: dict[str, Backend], n: int, warm: int) -> None:
    for mode, backend in modes.items():
        rows, cpu, ids = run_mode(srv, backend.model, mode, n, warm)
        report(mode, rows, cpu, stages(srv, ids))
    alone = cog_alone(cog_url, n)
    print(f"cog alone: {n} sync predictions straight to cog, round trip − predict_time:")
    print(ms_line("cog (HTTP + worker hand-off)", alone))
    puts, ends = cog_alone_by_webhook(cog_url, n)
    print(f"cog alone by webhook: {n} PUTs with Prefer: respond-async to a local receiver:")
    print(ms_line("the PUT's round trip (202)", puts))
    print(ms_line("PUT sent → completed hook in", ends))


if __name__ == "__main__":
    main()
