"""Memory with 2,000 jobs waiting on a slow provider in one process (issue 2: RSS <= 400 MB).

Submits N unique jobs to `pixelpipe serve` (preview provider with LATENCY_S seconds of latency),
samples the server's RSS and how many jobs are waiting at the provider at the same moment, then
waits until all succeeded. Run: `.venv/bin/python bench/waiting_rss.py [N] [LATENCY_S]`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import time

import httpx
from _server import bench_server, rss_mb


async def submit_all(url: str, n: int) -> list[str]:
    sem = asyncio.Semaphore(64)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def one(i: int) -> str:
            async with sem:
                body = {"prompt": f"waiting {i}", "seed": i, "size": "64x64"}
                r = await client.post("/v1/generations", json=body)
                r.raise_for_status()
                return str(r.json()["id"])

        return await asyncio.gather(*(one(i) for i in range(n)))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    latency_s = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    env = {
        "PIXELPIPE_PREVIEW_LATENCY_MS": str(int(latency_s * 1000)),
        "PIXELPIPE_WORKER_CONCURRENCY": "256",
    }
    with bench_server(**env) as srv:
        assert srv.proc is not None
        base = rss_mb(srv.proc.pid)
        db = sqlite3.connect(f"file:{srv.data_dir / 'pixelpipe.db'}?mode=ro", uri=True)
        t0 = time.perf_counter()
        asyncio.run(submit_all(srv.url, n))
        submitted = time.perf_counter() - t0
        peak, done, most_waiting = base, 0, 0
        while time.perf_counter() - t0 < 300:
            peak = max(peak, rss_mb(srv.proc.pid))
            waiting = db.execute("SELECT count(*) FROM jobs WHERE status = 'waiting'").fetchone()
            most_waiting = max(most_waiting, int(waiting[0]))
            counts = httpx.get(f"{srv.url}/metrics", timeout=10).text
            done = int(
                sum(
                    float(line.split()[-1])
                    for line in counts.splitlines()
                    if line.startswith('pixelpipe_jobs_finished_total{status="succeeded"}')
                )
            )
            if done >= n:
                break
            time.sleep(0.5)
        total = time.perf_counter() - t0
    print(
        f"{n} jobs on a {latency_s:g} s provider: submitted in {submitted:.1f} s, "
        f"all {done} succeeded after {total:.1f} s; at most {most_waiting} waiting at once"
    )
    print(f"server RSS: {base:.0f} MB idle → peak {peak:.0f} MB")


if __name__ == "__main__":
    main()
