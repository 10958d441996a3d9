"""500 jobs queued behind a 1-slot self-hosted backend (issue 14): memory flat, order fair, none
lost.

A real cog server with one slot (the test predictor sleeping `--predict-s`, 0.03 s by default)
and one `pixelpipe serve` whose catalog file names it as a backend with `slots = 1`, by webhook
(`--sync`: `webhooks = false`). One client POSTs the jobs one after the other (so the submission
order is the jobs' index), then waits. Every 0.5 s it samples the server's RSS and the jobs by
status. At the end it checks, from the job rows, the ledger and cog's own log:
  - none lost: every job succeeded, one billed ledger entry each, and cog's predictor ran exactly
    once per job (its "drew …" log line, under the prediction id that names the job);
  - order: the jobs' finishing order against their submission order — inversions (pairs that
    finished the other way round), the largest displacement, waits (created → finished);
  - memory: RSS before, at the peak, at the end, and its slope over the second half of the drain.

    .venv/bin/python bench/selfhosted_queue.py [--jobs 500] [--predict-s 0.03] [--sync] [--quick]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import threading
import time
from dataclasses import dataclass, field
from itertools import combinations, pairwise

import httpx
from _selfhosted import (
    Backend,
    body,
    cog_runs,
    cog_server,
    machine,
    pct,
    query,
    serving,
    wait_terminal,
    workdir,
)
from _server import rss_mb
from tests.support.serve import Server


@dataclass
class Sample:
    t: float
    rss_mb: float
    by_status: dict[str, int]
    position: int | None  # the last job's progress.queue_position (None: not shown)


@dataclass
class Sampler:
    """Samples the server's RSS, its jobs by status and the queue position the API shows for
    the ``watch`` job (once set) every ``every_s``, in a thread."""

    srv: Server
    watch: str | None = None
    every_s: float = 0.5
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.srv.proc is not None
        while not self._stop.wait(self.every_s):
            counts = dict(query(self.srv, "SELECT status, count(*) FROM jobs GROUP BY status"))
            rss = rss_mb(self.srv.proc.pid)
            t = time.monotonic() - self._t0
            self.samples.append(Sample(t, rss, counts, self._position()))

    def _position(self) -> int | None:
        if self.watch is None:
            return None
        job = httpx.get(f"{self.srv.url}/v1/generations/{self.watch}", timeout=30).json()
        position = (job.get("progress") or {}).get("queue_position")
        return None if position is None else int(position)

    def stop(self) -> list[Sample]:
        self._stop.set()
        self._thread.join()
        return self.samples


def submit_in_order(srv: Server, backend: Backend, n: int) -> list[str]:
    with httpx.Client(base_url=srv.url, timeout=60) as client:
        ids = []
        for i in range(n):
            r = client.post("/v1/generations", json=body(backend.model, "queue", i))
            assert r.status_code == 202, r.text
            ids.append(str(r.json()["id"]))
    return ids


def order_report(srv: Server, ids: list[str]) -> None:
    marks = ",".join("?" * len(ids))
    rows = dict(
        (job_id, (created, finished))
        for job_id, created, finished in query(
            srv, f"SELECT id, created_at, finished_at FROM jobs WHERE id IN ({marks})", *ids
        )
    )
    finished = [rows[job_id][1] for job_id in ids]  # in submission order
    rank = {i: r for r, i in enumerate(sorted(range(len(ids)), key=lambda i: finished[i]))}
    inversions = sum(1 for i, j in combinations(range(len(ids)), 2) if finished[j] < finished[i])
    displacement = [abs(rank[i] - i) for i in range(len(ids))]
    waits = [rows[job_id][1] - rows[job_id][0] for job_id in ids]
    pairs = len(ids) * (len(ids) - 1) // 2
    print(
        f"order: {inversions} inversions of {pairs} pairs ({inversions / pairs * 100:.1f} %), "
        f"displacement median {statistics.median(displacement):.0f}, max {max(displacement)} "
        f"places; wait (created → finished) p50 {statistics.median(waits):.1f} s, "
        f"p95 {pct(waits, 0.95):.1f} s, max {max(waits):.1f} s; the first job waited "
        f"{waits[0]:.2f} s, the last {waits[-1]:.1f} s"
    )


def lost_report(srv: Server, cog_log_runs: dict[str, int], ids: list[str]) -> None:
    marks = ",".join("?" * len(ids))
    statuses = dict(
        query(srv, f"SELECT status, count(*) FROM jobs WHERE id IN ({marks}) GROUP BY 1", *ids)
    )
    billed = query(
        srv,
        "SELECT job_id, count(*) FROM ledger_entries WHERE state = 'billed' "
        f"AND job_id IN ({marks}) GROUP BY job_id",
        *ids,
    )
    entries = query(
        srv,
        f"SELECT state, count(*) FROM ledger_entries WHERE job_id IN ({marks}) GROUP BY 1",
        *ids,
    )
    (refusals,) = query(
        srv,
        f"SELECT count(*) FROM job_events WHERE job_id IN ({marks}) "
        "AND data LIKE '%provider_rate_limited%'",
        *ids,
    )[0]
    runs = [cog_log_runs.get(job_id, 0) for job_id in ids]
    once = sum(1 for r in runs if r == 1)
    print(
        f"none lost: jobs by status {statuses}; {len(billed)} jobs with a billed ledger entry "
        f"({sum(c for _, c in billed)} billed entries; all entries by state {dict(entries)}); "
        f"cog ran {sum(runs)} predictions for them, exactly one for {once} of {len(ids)} jobs "
        f"(none for {runs.count(0)}, more than one for {sum(1 for r in runs if r > 1)}); "
        f"{refusals} busy answers (409) on the way"
    )


def memory_report(samples: list[Sample], base: float, drained_from: float) -> None:
    rss = [s.rss_mb for s in samples]
    # the second half of the drain: after start-up allocations and the submissions
    half = (drained_from + samples[-1].t) / 2
    draining = [s for s in samples if s.t >= half]
    slope = 0.0
    if len(draining) > 2:
        ts = [s.t for s in draining]
        ys = [s.rss_mb for s in draining]
        slope = statistics.linear_regression(ts, ys).slope * 60
    print(
        f"memory: server RSS {base:.0f} MB before → peak {max(rss):.0f} MB → {rss[-1]:.0f} MB at "
        f"the end; slope over the second half of the drain {slope:+.1f} MB/min "
        f"({len(samples)} samples)"
    )
    step = max(1, len(samples) // 12)
    print("   t (s)   RSS (MB)   last job's queue position   jobs by status")
    for s in (
        [*samples[::step], samples[-1]] if samples[-1] not in samples[::step] else samples[::step]
    ):
        position = "-" if s.position is None else str(s.position)
        print(f"  {s.t:6.1f}   {s.rss_mb:8.1f}   {position:>25}   {s.by_status}")


def position_report(samples: list[Sample]) -> None:
    shown = [s.position for s in samples if s.position is not None]
    if not shown:
        print("queue position: the API showed none for the last job")
        return
    rises = sum(1 for a, b in pairwise(shown) if b > a)
    distinct = len(set(shown))
    print(
        f"queue position of the last job: {shown[0]} → {shown[-1]} over {len(shown)} samples, "
        f"{distinct} different values, {rises} rises"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--predict-s", type=float, default=0.03)
    parser.add_argument("--sync", action="store_true", help="webhooks = false")
    parser.add_argument("--quick", action="store_true", help="40 jobs")
    args = parser.parse_args()
    n = 40 if args.quick else args.jobs
    print(machine())
    mode = "synchronously" if args.sync else "by webhook"
    print(f"{n} jobs behind a 1-slot cog backend, predictor {args.predict_s} s, {mode}")
    work = workdir()
    try:
        with cog_server(work, 1) as cog:
            backend = Backend("gpu", cog.url, sleep_s=args.predict_s, webhooks=not args.sync)
            with serving(work, [backend]) as srv:
                assert srv.proc is not None
                base = rss_mb(srv.proc.pid)
                sampler = Sampler(srv)
                t0 = time.monotonic()
                ids = submit_in_order(srv, backend, n)
                sampler.watch = ids[-1]
                submitted = time.monotonic() - t0
                wait_terminal(srv, ids, timeout_s=120 + 20 * n * args.predict_s)
                total = time.monotonic() - t0
                samples = sampler.stop()
                print(
                    f"submitted in {submitted:.1f} s; all ended after {total:.1f} s: "
                    f"{n / total:.1f} jobs/s of an ideal {1 / args.predict_s:.0f}"
                )
                lost_report(srv, cog_runs(cog), ids)
                order_report(srv, ids)
                memory_report(samples, base, drained_from=submitted)
                position_report(samples)
        print(machine())
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
