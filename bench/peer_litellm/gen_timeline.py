"""Where a full generation's wall time goes under load, stage by stage, and what the event loop's
thread is doing meanwhile (not a test: it prints figures).

Builds the app in process as ``commit_waits.py`` does (embedded defaults, the worker in process,
the OpenAI provider on the fake backend), drives ``-c`` concurrent clients posting unique prompts
for ``-d`` seconds, and prints:

* each generation's timeline, from its admission's start: admitted, its step started, the
  provider answered, the bill committed, the image stored and the job's last commit made, its
  waiter woken (means and medians over every generation that went through all of them);
* each thread's CPU over the middle of the run (``/proc/self/task``), the event loop's first —
  near 100 % means the loop's thread is what every stage waits on;
* the group-commit batches: how many ran on the loop's thread and how many in a thread, their
  mean wall time and the share of the run they took.

    .venv/bin/python bench/peer_litellm/gen_timeline.py -c 64 -d 6
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import itertools
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import commit_waits
from run import start_fake, stop

MARKS: dict[str, dict[str, float]] = collections.defaultdict(dict)
BATCHES: list[tuple[float, float, bool]] = []  # start, end, on the loop's thread
STAGES = [  # (mark, what the time up to it was)
    ("admit>", ""),
    ("admit<", "admission committed"),
    ("step>", "its step started"),
    ("provider<", "the provider answered"),
    ("bill<", "the bill committed"),
    ("finished>", "stored, last commit made"),
    ("wait<", "its waiter woke"),
]


def mark_around(owner: Any, name: str, label: str, job_of: Callable[..., str]) -> None:
    """Mark ``label>`` and ``label<`` around ``owner.name`` for the job ``job_of(args)`` names."""
    real = getattr(owner, name)

    @functools.wraps(real)
    async def marked(*args: Any, **kwargs: Any) -> Any:
        job_id = job_of(*args)
        MARKS[job_id][f"{label}>"] = time.perf_counter()
        try:
            return await real(*args, **kwargs)
        finally:
            MARKS[job_id][f"{label}<"] = time.perf_counter()

    setattr(owner, name, marked)


def instrument() -> None:
    import pixelpipe.group_commit as group_commit
    import pixelpipe.notify.hooks as hooks
    import pixelpipe.worker.output as output
    import pixelpipe.worker.steps as steps
    import pixelpipe.worker.submit as submit
    from pixelpipe.jobs.sql.creation import SqlJobCreation

    mark_around(SqlJobCreation, "admit", "admit", lambda _self, job, *_: job.id)
    mark_around(steps.Worker, "run_step", "step", lambda _self, job, *_: job.id)
    mark_around(submit, "submit_watching", "provider", lambda _ctx, _p, job, *_: job.id)
    mark_around(output, "accept_success", "bill", lambda _ctx, job, *_: job.id)
    mark_around(hooks.CompletionHooks, "job_finished", "finished", lambda _self, job: job.id)
    mark_around(hooks, "wait_finished", "wait", lambda _svc, job_id, **_: job_id)
    committed = group_commit._committed

    def timed(*args: Any) -> Any:
        start = time.perf_counter()
        try:
            return committed(*args)
        finally:
            on_loop = threading.current_thread() is threading.main_thread()
            BATCHES.append((start, time.perf_counter(), on_loop))

    group_commit._committed = timed  # type: ignore[assignment]


def thread_ticks() -> dict[int, tuple[str, int]]:
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks[int(tid)] = (name, int(fields[11]) + int(fields[12]))
    return ticks


async def sample_threads(seconds: float, into: list[str]) -> None:
    """Each thread's CPU share over ``seconds`` in the middle of the run."""
    await asyncio.sleep(1.0)
    before, start = thread_ticks(), time.perf_counter()
    await asyncio.sleep(seconds)
    after, wall = thread_ticks(), time.perf_counter() - start
    loop_tid, clk = threading.get_native_id(), os.sysconf("SC_CLK_TCK")
    shares = []
    for tid, (name, ticks) in after.items():
        if tid in before:
            share = (ticks - before[tid][1]) / clk / wall
            shares.append((tid != loop_tid, -share, "event loop" if tid == loop_tid else name))
    for _, share, name in sorted(shares):
        if -share >= 0.01:
            into.append(f"  {name:16} {-share * 100:5.1f} %")
    into.append(f"  {'all threads':16} {-sum(s for _, s, _ in shares) * 100:5.1f} %")


def report(threads: list[str]) -> None:
    done = [m for m in MARKS.values() if all(stage in m for stage, _ in STAGES)]
    print(f"\n{len(done)} generations through every stage; ms from the admission's start:")
    for (before, _), (stage, what) in itertools.pairwise(STAGES):
        step = [(m[stage] - m[before]) * 1e3 for m in done]
        total = [(m[stage] - m["admit>"]) * 1e3 for m in done]
        print(
            f"  {what:28} +{statistics.mean(step):6.1f} (p50 {statistics.median(step):5.1f})"
            f"   at {statistics.mean(total):6.1f}"
        )
    print("\nthreads' CPU (of one core):")
    print("\n".join(threads))
    if BATCHES:
        span = max(e for _, e, _ in BATCHES) - min(s for s, _, _ in BATCHES)
        for on_loop in (True, False):
            walls = [e - s for s, e, here in BATCHES if here is on_loop]
            if walls:
                where = "on the loop's thread" if on_loop else "in a thread"
                print(
                    f"group-commit batches {where}: {len(walls)}, mean "
                    f"{statistics.mean(walls) * 1e3:.2f} ms, {sum(walls) / span * 100:.0f} % of "
                    "the run"
                )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-c", type=int, default=64, help="concurrent clients")
    p.add_argument("-d", type=float, default=6, help="seconds of load")
    o = p.parse_args()
    commit_waits.timed_units()
    instrument()
    threads: list[str] = []
    real_drive = commit_waits.drive

    async def drive(conns: int, seconds: float, fake: str) -> None:
        sampler = asyncio.ensure_future(sample_threads(max(1.0, seconds - 2.5), threads))
        await real_drive(conns, seconds, fake)
        await sampler

    fake, fake_url = start_fake(Path(tempfile.mkdtemp(prefix="pixelpipe-timeline-fake-")))
    try:
        import uvloop

        uvloop.run(drive(o.c, o.d, fake_url))
    finally:
        stop(fake)
    report(threads)


if __name__ == "__main__":
    main()
