"""Pipeline overhead, submit → succeeded, at concurrency 1 with a zero-latency preview provider.

Issue 2 target: p50 <= 20 ms. Measures from the client's POST to the `succeeded` SSE event, over
real HTTP to `pixelpipe serve` (64x64 images). Run: `.venv/bin/python bench/overhead.py [N]`.
"""

from __future__ import annotations

import statistics
import sys
import time

import httpx
from _server import bench_server


def one(client: httpx.Client, i: int) -> float:
    t0 = time.perf_counter()
    r = client.post("/v1/generations", json={"prompt": f"overhead {i}", "seed": i, "size": "64x64"})
    assert r.status_code == 202, r.text
    job = r.json()
    with client.stream("GET", job["links"]["events"]) as resp:
        for line in resp.iter_lines():
            if line.startswith("data:") and '"status":"succeeded"' in line.replace(" ", ""):
                break
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with bench_server() as srv, httpx.Client(base_url=srv.url, timeout=30) as client:
        for i in range(20):
            one(client, 1_000_000 + i)  # warm up
        samples = sorted(one(client, i) for i in range(n))
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]  # noqa: E731
    print(f"submit→succeeded over HTTP+SSE, concurrency 1, n={n}")
    print(f"p50 {statistics.median(samples):.1f} ms  p90 {p(0.9):.1f} ms  p99 {p(0.99):.1f} ms")


if __name__ == "__main__":
    main()
