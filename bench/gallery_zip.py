"""Bulk download: the server's memory while it streams a zip of N images (issue 19).

Seeds N finished generations (random bytes of --size each: nothing compresses, as with real
PNGs) into a fresh data dir, starts `pixelpipe serve` on it, POSTs /v1/images/archive for all of
them and reads the zip to the end, sampling the server's RSS every 20 ms. Then the same in this
process with tracemalloc (Python allocations only). A zip built in memory would add ~N×size.
Run: `.venv/bin/python bench/gallery_zip.py [--images 1000] [--size 262144]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import httpx
from _server import bench_server, rss_mb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.gallery.seed import finished_job, seed

from pixelpipe.bootstrap import build_services
from pixelpipe.settings import load_settings
from pixelpipe.usecases import gallery_archive


async def seeded(data_dir: Path, n: int, size: int) -> list[str]:
    svc = await build_services(load_settings(data_dir=data_dir))
    ids = []
    t0 = time.time() - n
    for i in range(n):
        job = finished_job(f"bench {i}", at=t0 + i, cost=1_000 * i)
        ids.append((await seed(svc.store, job, svc.storage, os.urandom(size))).id)
    await svc.aclose()
    return ids


async def in_process(data_dir: Path, ids: list[str]) -> tuple[int, float, float]:
    svc = await build_services(load_settings(data_dir=data_dir))
    tracemalloc.start()
    t0 = time.perf_counter()
    total = 0
    async for piece in gallery_archive.stream(svc, gallery_archive.prepare(ids)):
        total += len(piece)
    took = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    await svc.aclose()
    return total, took, peak / 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--size", type=int, default=256 * 1024)
    args = ap.parse_args()
    server = bench_server()
    ids = asyncio.run(seeded(server.data_dir, args.images, args.size))
    with server.start() as srv:
        assert srv.proc is not None
        pid = srv.proc.pid
        warm = httpx.post(f"{srv.url}/v1/images/archive", json={"ids": ids[:5]}, timeout=60)
        warm.raise_for_status()  # first use loads the routes' modules: not the zip's cost
        before = rss_mb(pid)
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], rss_mb(pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0 = time.perf_counter()
        total = 0
        with httpx.stream(
            "POST", f"{srv.url}/v1/images/archive", json={"ids": ids}, timeout=120
        ) as r:
            r.raise_for_status()
            for piece in r.iter_bytes():
                total += len(piece)
        took = time.perf_counter() - t0
        done.set()
        sampler.join()
    print(f"images {args.images} × {args.size / 1024:.0f} KiB; zip {total / 1e6:.1f} MB")
    print(
        f"server  {took:5.2f} s ({total / 1e6 / took:6.1f} MB/s)  RSS {before:.0f} → peak "
        f"{peak[0]:.0f} MB (+{peak[0] - before:.1f} MB)"
    )
    size, took, traced = asyncio.run(in_process(server.data_dir, ids))
    print(
        f"in-proc {took:5.2f} s ({size / 1e6 / took:6.1f} MB/s)  tracemalloc peak {traced:.1f} MB"
    )


if __name__ == "__main__":
    main()
