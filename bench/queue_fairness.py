"""Fair share under load (issue 19): one API key submits a batch of 2,000 jobs, another sends
interactive requests while the batch drains. Prints the interactive waits (created → submitted to
the provider: the time spent in the queue) and the batch's throughput.

In-process (`Pipeline`, SQLite, the embedded dispatcher with `--workers` steps at once) on the
preview provider without latency, so each job is one step of real work (draw, store, bill) and
the workers are the capacity both keys share. Both keys send the same priority unless
`--defaults` (then the batch gets the batch default 3, the interactive requests 6); `--fifo`
replaces the queue's order by arrival order, the baseline the fair share is measured against.

    .venv/bin/python bench/queue_fairness.py [--batch 2000] [--interactive 40] [--workers 4]
                                            [--every-s 0.25] [--defaults] [--fifo]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from pixelpipe.intake import GenerationRequest
from pixelpipe.jobs.order import Candidate
from pixelpipe.notify.hooks import wait_finished
from pixelpipe.pipeline import Pipeline
from pixelpipe.security.caller import Caller
from pixelpipe.services import Services
from pixelpipe.settings import Settings
from pixelpipe.usecases.submit import submit


def _body(prompt: str, priority: int | None) -> GenerationRequest:
    fields = {"prompt": prompt, "size": "64x64", "seed": 7, "priority": priority}
    return GenerationRequest.model_validate({k: v for k, v in fields.items() if v is not None})


async def _batch(svc: Services, n: int, priority: int | None, kind: str) -> list[str]:
    caller = Caller(key_id="batch")
    ids = []
    for i in range(n):
        sub = await submit(svc, _body(f"batch {i}", priority), caller=caller, kind=kind)
        ids.append(sub.job.id)
    return ids


async def _interactive(svc: Services, n: int, every_s: float, priority: int | None) -> list[float]:
    async def one(i: int) -> float:
        sub = await submit(svc, _body(f"ui {i}", priority), caller=Caller(key_id="ui"))
        done = await wait_finished(svc, sub.job.id, timeout_s=600)
        assert done.submitted_at is not None, done.status
        return done.submitted_at - done.created_at

    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one(i)))
        await asyncio.sleep(every_s)
    return list(await asyncio.gather(*tasks))


def _fifo() -> None:
    """The baseline: claims in arrival order (priority and fair share switched off)."""
    import pixelpipe.jobs.sql.leases as leases

    def arrival(due: object, running: object) -> list[str]:
        cands: list[Candidate] = list(due)  # type: ignore[call-overload]
        cands.sort(key=lambda c: (c.status == "queued", c.next_run_at or 0.0, c.id))
        return [c.id for c in cands]

    leases.ranked = arrival  # type: ignore[assignment]


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def main(args: argparse.Namespace) -> None:
    if args.fifo:
        _fifo()
    same = None if args.defaults else 5
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp), log_level="WARNING", worker_concurrency=args.workers
        )
        async with Pipeline(settings) as p:
            svc = p.services
            t0 = time.perf_counter()
            ids = await _batch(svc, args.batch, same, "batch")
            queued_s = time.perf_counter() - t0
            waits = await _interactive(svc, args.interactive, args.every_s, same)
            left = sum(1 for j in await svc.store.jobs_by_ids(ids) if not j.status.terminal)
            for job_id in ids:
                await wait_finished(svc, job_id, timeout_s=1200)
            total_s = time.perf_counter() - t0
    order = "FIFO (arrival order)" if args.fifo else "fair share"
    prio = "defaults (batch 3, interactive 6)" if args.defaults else "the same (5) for both keys"
    print(f"order: {order}; priority: {prio}; workers: {args.workers}")
    print(
        f"batch: {args.batch} jobs queued in {queued_s:.1f} s, all done after {total_s:.1f} s "
        f"({args.batch / total_s:.0f} jobs/s); {left} still waiting when the last "
        "interactive request ran"
    )
    print(
        f"interactive ({len(waits)} requests, one every {args.every_s} s): wait "
        f"p50 {_pct(waits, 50):.3f} s, p95 {_pct(waits, 95):.3f} s, max {max(waits):.3f} s"
    )


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--interactive", type=int, default=40)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--every-s", type=float, default=0.25)
    ap.add_argument("--defaults", action="store_true")
    ap.add_argument("--fifo", action="store_true")
    asyncio.run(main(ap.parse_args()))
