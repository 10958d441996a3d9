"""Pipeline overhead, submit → succeeded, at concurrency 1 with a zero-latency preview provider.

Issue 2 target: p50 <= 20 ms. Over real HTTP to `pixelpipe serve` (64x64 images), it reports
  - server: the job's own created → finished time (the pipeline: intake … store, ledger),
  - post:   the POST round trip (intake, safety, key, budget, job row, enqueue),
  - client: from sending the POST to reading the `succeeded` SSE event (adds HTTP + SSE).
Run: `.venv/bin/python bench/overhead.py [N]`.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import httpx
from _server import bench_server


def one(client: httpx.Client, i: int) -> tuple[float, float, float]:
    t0 = time.perf_counter()
    r = client.post("/v1/generations", json={"prompt": f"overhead {i}", "seed": i, "size": "64x64"})
    t_post = time.perf_counter() - t0
    assert r.status_code == 202, r.text
    job = r.json()
    with client.stream("GET", job["links"]["events"]) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:") and '"succeeded"' in line:
                done = json.loads(line[5:])["job"]
                break
    client_ms = (time.perf_counter() - t0) * 1000
    return done["timings"]["duration_s"] * 1000, t_post * 1000, client_ms


def summary(name: str, samples: list[float]) -> str:
    s = sorted(samples)
    p = lambda q: s[min(len(s) - 1, int(q * len(s)))]  # noqa: E731
    p50 = statistics.median(s)
    return f"{name:7s} p50 {p50:6.1f} ms   p90 {p(0.9):6.1f} ms   p99 {p(0.99):6.1f} ms"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with bench_server() as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        for i in range(20):
            one(client, 1_000_000 + i)  # warm up
        rows = [one(client, i) for i in range(n)]
    print(f"submit → succeeded, concurrency 1, zero-latency preview, 64x64, n={n}")
    for k, name in enumerate(("server", "post", "client")):
        print(summary(name, [r[k] for r in rows]))


if __name__ == "__main__":
    main()
