"""Back-pressure: 500 open image streams on one ``pixelpipe serve``, 50 of them never reading.

Issue 17: a slow or stalled stream reader never slows the pipeline or other readers, and never
holds memory without bound. Two phases on the same server (the offline preview, drawing for
``--latency`` seconds with three partials at 1/4, 2/4 and 3/4 of it), each with ``--streams``
streams open at once:

* ``--streams`` - ``--stalled`` readers, each ``POST /v1/images/generations`` with
  ``stream=true, partial_images=2`` (64x64, a unique prompt), read to the end, beside
* ``--stalled`` big streams: raw sockets with a 4 KB receive buffer asking for 1024x1024 PNGs
  with three partials (each final event is a megabyte or so of base64) — in the control phase
  read to the end, in the second never read a byte, so the server's writes to them block.

The only difference between the phases is whether the big streams are read; the control runs
before and after (order effects: a warmer process, a bigger database). For each reader:
seconds to its first partial and to its completed event (from its request). The server's RSS is
sampled every 0.2 s. After each phase the big streams' jobs are read from the database (did they
run to the end while nobody read them?), then their sockets are closed and RSS read again.

Run: ``.venv/bin/python bench/stream_backpressure.py [--streams 500] [--stalled 50] [--latency 6]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass, field

import httpx
import orjson
from _server import bench_server, rss_mb


@dataclass
class Phase:
    first: list[float] = field(default_factory=list)
    final: list[float] = field(default_factory=list)
    failed: int = 0
    wall_s: float = 0.0


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.running = pid, 0.0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_mb(self.pid))
            time.sleep(0.2)

    def take_peak(self) -> float:
        peak, self.peak = self.peak, rss_mb(self.pid)
        return peak


async def read_one(client: httpx.AsyncClient, prompt: str) -> tuple[float, float]:
    body = {"prompt": prompt, "size": "64x64", "stream": True, "partial_images": 2}
    started = time.perf_counter()
    first = final = float("nan")
    async with client.stream("POST", "/v1/images/generations", json=body) as res:
        res.raise_for_status()
        async for line in res.aiter_lines():
            if line == "event: image_generation.partial_image" and first != first:
                first = time.perf_counter() - started
            elif line == "event: image_generation.completed":
                final = time.perf_counter() - started
    return first, final


async def readers(url: str, n: int, tag: str) -> Phase:
    limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=0)
    phase = Phase()
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        got = await asyncio.gather(
            *(read_one(client, f"reader {tag} {i}") for i in range(n)), return_exceptions=True
        )
    phase.wall_s = time.perf_counter() - started
    for r in got:
        if isinstance(r, BaseException) or r[1] != r[1]:
            phase.failed += 1
            continue
        phase.final.append(r[1])
        if r[0] == r[0]:
            phase.first.append(r[0])
    return phase


def big_streams(url: str, n: int, tag: str, *, read: bool) -> list[socket.socket]:
    """``n`` streamed requests for big images on raw sockets with a 4 KB receive buffer: read to
    the end by a thread each (``read``), or never read."""
    host, port = url.removeprefix("http://").split(":")
    out = []
    for i in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect((host, int(port)))
        body = orjson.dumps(
            {
                "prompt": f"{tag} {i} {time.time_ns()}",
                "size": "1024x1024",
                "output_format": "png",
                "stream": True,
                "partial_images": 3,
            }
        )
        head = (
            f"POST /v1/images/generations HTTP/1.1\r\nhost: {host}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        s.sendall(head.encode() + body)
        if read:
            threading.Thread(target=drain, args=(s,), daemon=True).start()
        out.append(s)
    return out


def drain(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while s.recv(65536):
            pass


def pct(values: list[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]:.2f}"


def summary(name: str, p: Phase) -> str:
    return (
        f"{name}: {len(p.final)} read to the end, {p.failed} failed, {p.wall_s:.1f} s; "
        f"first partial p50 {pct(p.first, 0.5)} s p95 {pct(p.first, 0.95)} s max "
        f"{pct(p.first, 1)} s; final p50 {pct(p.final, 0.5)} s p95 {pct(p.final, 0.95)} s "
        f"max {pct(p.final, 1)} s"
    )


def big_rows(db_path: str, tag: str) -> dict[str, int]:
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    rows = db.execute(
        "SELECT status, count(*) FROM jobs WHERE json_extract(request, '$.prompt') LIKE ? "
        "GROUP BY status",
        (f"{tag} %",),
    ).fetchall()
    return {str(s): int(c) for s, c in rows}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--streams", type=int, default=500)
    p.add_argument("--stalled", type=int, default=50)
    p.add_argument("--latency", type=float, default=6.0)
    o = p.parse_args()
    n_readers = o.streams - o.stalled
    env = {
        "PIXELPIPE_PREVIEW_LATENCY_MS": str(int(o.latency * 1000)),
        "PIXELPIPE_WORKER_CONCURRENCY": str(o.streams + 64),
    }
    print(f"load before: {os.getloadavg()}  cpus: {os.cpu_count()}")
    with bench_server(**env) as srv:
        assert srv.proc is not None
        sampler = RssSampler(srv.proc.pid)
        base = rss_mb(srv.proc.pid)
        sampler.start()
        for tag, read in (("big-read", True), ("big-stalled", False), ("big-read-again", True)):
            big = big_streams(srv.url, o.stalled, tag, read=read)
            phase = asyncio.run(readers(srv.url, n_readers, tag))
            deadline = time.monotonic() + 120
            while (rows := big_rows(str(srv.data_dir / "pixelpipe.db"), tag)).get(
                "succeeded", 0
            ) < o.stalled and time.monotonic() < deadline:
                time.sleep(0.5)
            peak = sampler.take_peak()
            held = rss_mb(srv.proc.pid)
            for s in big:
                s.close()
            time.sleep(3)
            after = rss_mb(srv.proc.pid)
            what = "read" if read else "NEVER read"
            print(summary(f"{n_readers} readers beside {o.stalled} big streams {what}", phase))
            print(
                f"  big streams' jobs: {rows}; RSS peak {peak:.0f} MB, {held:.0f} MB once their "
                f"jobs ended (sockets still open), {after:.0f} MB 3 s after closing them; "
                f"load {os.getloadavg()[0]:.2f}"
            )
        sampler.running = False
        print(f"RSS before the first phase: {base:.0f} MB")
        health = httpx.get(f"{srv.url}/healthz", timeout=10).status_code
        print(f"server still answers: /healthz {health}; load after: {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(main())
