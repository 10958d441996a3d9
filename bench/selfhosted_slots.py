"""Jobs/s through one cog server with 1, 2 and 4 slots (issue 14), against the ideal
slots / predict_time.

A real cog server per slot count (`COG_MAX_CONCURRENCY`, the test predictor sleeping
`--predict-s`, 0.2 s by default) and one `pixelpipe serve` whose catalog file names each as a
backend with as many `slots`, by webhook. Two loads, each against every slot count:
  - closed:  as many clients as slots, each POSTs a job and follows it to `succeeded` (SSE),
             then the next one: the slots are always asked for, never over-asked;
  - backlog: every job POSTed at once: the jobs beyond the slots wait in pixelpipe.
Rate = jobs / (the last job's finished_at − the first one's created_at), from the job rows.
Also printed: cog's busy share (sum of predict_time / (slots × that window)), and how many
times jobs were told the backend was busy (cog's 409: `provider_rate_limited` events).

    .venv/bin/python bench/selfhosted_slots.py [--per-slot 25] [--slots 1,2,4] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
from _selfhosted import (
    Backend,
    body,
    cog_server,
    follow,
    gpu_seconds,
    machine,
    query,
    serving,
    wait_terminal,
    workdir,
)
from tests.support.serve import Server


@dataclass
class Result:
    load: str
    slots: int
    jobs: int
    window_s: float
    busy_s: float  # sum of cog's predict_time
    refusals: int  # provider_rate_limited events
    latency: list[float]  # created → finished, per job

    @property
    def rate(self) -> float:
        return self.jobs / self.window_s


def post(client: httpx.Client, backend: Backend, tag: str, i: int) -> str:
    r = client.post("/v1/generations", json=body(backend.model, tag, i))
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def closed(srv: Server, backend: Backend, tag: str, n: int) -> list[str]:
    """``backend.slots`` clients in a loop (POST, follow to the end) until ``n`` jobs ran."""

    def client_loop(k: int) -> list[str]:
        ids = []
        with httpx.Client(base_url=srv.url, timeout=120) as client:
            for i in range(k, n, backend.slots):
                r = client.post("/v1/generations", json=body(backend.model, tag, i))
                assert r.status_code == 202, r.text
                assert follow(client, r.json())["status"] == "succeeded"
                ids.append(str(r.json()["id"]))
        return ids

    with ThreadPoolExecutor(backend.slots) as pool:
        return [i for ids in pool.map(client_loop, range(backend.slots)) for i in ids]


def backlog(srv: Server, backend: Backend, tag: str, n: int) -> list[str]:
    """All ``n`` jobs POSTed at once (8 POSTs in flight), then waited for."""
    with httpx.Client(base_url=srv.url, timeout=120) as client, ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: post(client, backend, tag, i), range(n)))
    wait_terminal(srv, ids, timeout_s=60 + 10 * n * backend.sleep_s)
    return ids


LOADS = {"closed": closed, "backlog": backlog}


def measure(srv: Server, backend: Backend, load: str, n: int) -> Result:
    tag = f"{load}-{backend.slots}"
    ids = LOADS[load](srv, backend, tag, n)
    marks = ",".join("?" * len(ids))
    rows = query(
        srv, f"SELECT status, created_at, finished_at FROM jobs WHERE id IN ({marks})", *ids
    )
    assert all(status == "succeeded" for status, _, _ in rows), rows
    (refusals,) = query(
        srv,
        f"SELECT count(*) FROM job_events WHERE job_id IN ({marks}) "
        "AND data LIKE '%provider_rate_limited%'",
        *ids,
    )[0]
    window = max(f for _, _, f in rows) - min(c for _, c, _ in rows)
    busy = sum(gpu_seconds(srv, ids).values())
    latency = [f - c for _, c, f in rows]
    return Result(load, backend.slots, n, window, busy, int(refusals), latency)


def report(r: Result, predict_s: float) -> None:
    ideal = r.slots / predict_s
    busy = r.busy_s / (r.slots * r.window_s)
    print(
        f"{r.load:>7} slots={r.slots}: {r.rate:5.2f} jobs/s of an ideal {ideal:5.2f} "
        f"({r.rate / ideal * 100:3.0f} %); cog busy {busy * 100:3.0f} % "
        f"of its slot time; {r.jobs} jobs in {r.window_s:.1f} s, latency p50 "
        f"{statistics.median(r.latency):.2f} s, max {max(r.latency):.2f} s; "
        f"{r.refusals} busy answers (409)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-slot", type=int, default=25, help="jobs per slot and load")
    parser.add_argument("--slots", default="1,2,4")
    parser.add_argument("--predict-s", type=float, default=0.2)
    parser.add_argument("--loads", default="closed,backlog")
    parser.add_argument("--quick", action="store_true", help="4 jobs per slot")
    args = parser.parse_args()
    per_slot = 4 if args.quick else args.per_slot
    slot_counts = [int(x) for x in args.slots.split(",")]
    print(machine())
    print(f"predictor {args.predict_s} s, {per_slot} jobs per slot and load, by webhook")
    work = workdir()
    try:
        with ExitStack() as stack:
            cogs = {n: stack.enter_context(cog_server(work, n)) for n in slot_counts}
            backends = [
                Backend(f"gpu{n}", cog.url, slots=n, sleep_s=args.predict_s)
                for n, cog in cogs.items()
            ]
            srv = stack.enter_context(serving(work, backends))
            with httpx.Client(base_url=srv.url, timeout=120) as client:
                for b in backends:  # warm: connections, the first webhook, the worker
                    follow(
                        client, client.post("/v1/generations", json=body(b.model, "warm", 0)).json()
                    )
            for load in args.loads.split(","):
                for b in backends:
                    report(measure(srv, b, load, per_slot * b.slots), args.predict_s)
                    time.sleep(0.5)
        print(machine())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
