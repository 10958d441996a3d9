"""Where a full generation's latency goes under load: its group-commit waits, in process.

Not a test: it prints figures. Builds ``create_app`` with the embedded defaults (as
``hit_inproc.py`` does: no HTTP, the worker in process, the OpenAI provider on the fake backend),
times every ``GroupCommitter.run`` (by the store method whose unit it is) and every storage put,
and drives ``-c`` concurrent clients posting unique prompts for ``-d`` seconds. It prints the
throughput, the latency, and per unit kind: how many a generation waits for, how long each wait
was, and the sum per generation. A generation's commits come in three rounds that cannot merge
(admission; the bill with the paid output; the stored image with the success), so at 64
connections each round's wait is most of its latency (docs/performance.md, "Ninth pass").

    .venv/bin/python bench/peer_litellm/commit_waits.py -c 64 -d 8
    .venv/bin/python bench/peer_litellm/commit_waits.py -c 1 -d 5
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hit_inproc import call, embedded_app
from run import json_body, start_fake, stop, unique

WAITS: dict[str, list[float]] = collections.defaultdict(list)


def timed_units() -> None:
    """Wrap the group committer's ``run`` and the local disk's ``put`` to record their waits."""
    import pixelpipe.group_commit as group_commit
    import pixelpipe.storage.local as local

    run, put = group_commit.GroupCommitter.run, local.LocalDiskStorage.put

    async def timed_run(self: Any, work: Callable[..., Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return await run(self, work)
        finally:
            WAITS[work.__qualname__.split(".<locals>")[0]].append(time.perf_counter() - t0)

    async def timed_put(self: Any, *args: Any, **kwargs: Any) -> None:
        t0 = time.perf_counter()
        try:
            await put(self, *args, **kwargs)
        finally:
            WAITS["storage put (file, fsyncs)"].append(time.perf_counter() - t0)

    group_commit.GroupCommitter.run = timed_run  # type: ignore[method-assign]
    local.LocalDiskStorage.put = timed_put  # type: ignore[method-assign]


async def drive(conns: int, seconds: float, fake: str) -> None:
    app = embedded_app(fake)
    latencies: list[float] = []
    async with app.router.lifespan_context(app):
        for _ in range(50):  # warm-up
            answer = await call(app, json_body(prompt=unique()))
            assert answer.status == 200, answer.body[:300]
        WAITS.clear()
        stop_at = time.perf_counter() + seconds

        async def client() -> None:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                answer = await call(app, json_body(prompt=unique()))
                assert answer.status == 200, answer.body[:300]
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(conns)))
        wall = time.perf_counter() - start
    n = len(latencies)
    print(
        f"c={conns}: {n / wall:.0f} generations/s, latency mean "
        f"{statistics.mean(latencies) * 1e3:.1f} ms, p50 {statistics.median(latencies) * 1e3:.1f} "
        f"ms (load {os.getloadavg()[0]:.2f})"
    )
    print(f"{'unit':42} {'per gen':>7} {'wait p50':>9} {'wait mean':>10} {'sum/gen':>8}")
    for name, waits in sorted(WAITS.items(), key=lambda kv: -sum(kv[1])):
        print(
            f"{name:42} {len(waits) / n:7.2f} {statistics.median(waits) * 1e3:6.1f} ms "
            f"{statistics.mean(waits) * 1e3:7.1f} ms {sum(waits) / n * 1e3:5.1f} ms"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-c", type=int, default=64, help="concurrent clients")
    p.add_argument("-d", type=float, default=8, help="seconds of load")
    o = p.parse_args()
    timed_units()
    fake, fake_url = start_fake(Path(tempfile.mkdtemp(prefix="pixelpipe-commits-fake-")))
    try:
        import uvloop

        uvloop.run(drive(o.c, o.d, fake_url))
    finally:
        stop(fake)


if __name__ == "__main__":
    main()
