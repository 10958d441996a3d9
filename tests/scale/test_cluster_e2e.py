"""The scaled-out shape, end to end, with crashes: real PostgreSQL (jobs + SAQ), Redis (events,
shared pauses) and SeaweedFS (S3); 2 ``pixelpipe api`` + 2 ``pixelpipe worker`` + 2 ``pixelpipe
sweeper`` processes. 200 generations through the preview provider (with latency, so jobs wait at
the "provider" and get polled); mid-run one worker and one API process are SIGKILLed.

Then: all 200 succeed; each image (and thumbnail) is stored once; each ledger entry exists once;
every browser subscription sees the final event — those on the surviving API directly, pushed
over Redis from whichever worker finished the job, and those on the killed API after reconnecting
to the survivor with ``Last-Event-ID`` (no event twice, none missed); exactly one sweeper is active
though two run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.browsers import Follow, follow_job
from tests.support.cluster import Cluster, ClusterSpec

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(300)]

N_JOBS = 200
KILL_AFTER = 50  # succeeded jobs before the crashes
SUBMIT_CONCURRENCY = 12


@dataclass
class Run:
    follows: dict[str, Follow] = field(default_factory=dict)
    killed_at: float | None = None
    inflight_on_killed_worker: int = 0
    all_stream_succeeded: set[str] = field(default_factory=set)
    sweeper_samples: list[int] = field(default_factory=list)


async def _all_events(client: httpx.AsyncClient, url: str, run: Run) -> None:
    with contextlib.suppress(httpx.HTTPError, asyncio.CancelledError):
        async with client.stream("GET", f"{url}/v1/events", timeout=None) as resp:
            async for line in resp.aiter_lines():
                if line.startswith("data:"):
                    data = json.loads(line[5:])
                    if data.get("status") == "succeeded":
                        run.all_stream_succeeded.add(data["id"])


async def _drive(c: Cluster) -> Run:
    run = Run()
    api_a, api_b = c.apis
    dead: set[str] = set()
    limits = httpx.Limits(max_connections=N_JOBS * 2 + 50, max_keepalive_connections=50)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        all_task = asyncio.create_task(_all_events(client, api_b.url, run))
        await asyncio.sleep(0.5)
        followers: list[asyncio.Task[None]] = []
        sem = asyncio.Semaphore(SUBMIT_CONCURRENCY)

        async def submit(i: int) -> None:
            body = {"prompt": f"cluster job {i}", "model": "preview", "seed": i, "size": "256x256"}
            headers = {"Idempotency-Key": f"cluster-{i}"}
            async with sem:
                for _ in range(20):
                    url = api_a.url if i % 2 == 0 and api_a.url not in dead else api_b.url
                    try:
                        r = await client.post(f"{url}/v1/generations", json=body, headers=headers)
                    except (httpx.HTTPError, OSError):
                        await asyncio.sleep(0.2)  # a crashed API: the retry (same key) goes to B
                        continue
                    assert r.status_code in (200, 202), r.text
                    job_id = r.json()["id"]
                    break
                else:
                    raise AssertionError(f"could not submit job {i}")
            follow = run.follows.setdefault(job_id, Follow(job_id, url))
            followers.append(asyncio.create_task(follow_job(client, follow, api_b.url)))

        async def crash_when_busy() -> None:
            worker = c.workers[0]
            assert worker.proc is not None
            tag = f":{worker.proc.pid}:%"
            while True:
                done = sum(1 for f in run.follows.values() if f.final_at is not None)
                held = await asyncio.to_thread(
                    c.scalar, f"SELECT count(*) FROM jobs WHERE lease_owner LIKE '%{tag}'"
                )
                if done >= KILL_AFTER and held > 0:
                    run.inflight_on_killed_worker = held
                    break
                await asyncio.sleep(0.05)
            worker.kill()  # SIGKILL: its leases must expire and be taken over
            dead.add(api_a.url)
            api_a.kill()  # SIGKILL: its SSE streams break, browsers reconnect to B
            run.killed_at = time.time()

        crasher = asyncio.create_task(crash_when_busy())
        await asyncio.gather(*(submit(i) for i in range(N_JOBS)))
        await asyncio.wait_for(crasher, 120)
        run.sweeper_samples.append(await asyncio.to_thread(c.active_sweepers))
        await asyncio.wait_for(asyncio.gather(*followers), 150)
        run.sweeper_samples.append(await asyncio.to_thread(c.active_sweepers))
        await asyncio.sleep(1.0)  # let the all-jobs stream drain
        all_task.cancel()
        await asyncio.gather(all_task, return_exceptions=True)
    return run


def _s3_keys(c: Cluster) -> set[str]:
    import obstore

    keys: set[str] = set()
    for batch in obstore.list(c.s3.raw_store(), prefix="images/"):
        keys.update(str(o["path"]) for o in batch)
    return keys


def test_two_apis_two_workers_lose_nothing_when_processes_die(tmp_path: Path) -> None:
    spec = ClusterSpec(
        apis=2, workers=2, sweepers=2, preview_latency_ms=300, lease_s=4.0, sweep_interval_s=1.0
    )
    with Cluster(tmp_path / "cluster", spec) as c:
        deadline = time.monotonic() + 15
        while c.active_sweepers() != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert c.active_sweepers() == 1  # two started, one holds the lock

        t0 = time.monotonic()
        run = asyncio.run(_drive(c))
        elapsed = time.monotonic() - t0

        # every job succeeded, once
        assert c.scalar("SELECT count(*) FROM jobs") == N_JOBS
        assert c.sql("SELECT status, count(*) FROM jobs GROUP BY status") == f"succeeded|{N_JOBS}"
        assert run.inflight_on_killed_worker > 0  # the crash really interrupted work
        # each image stored once: one index row, one object and one thumbnail per job (none
        # apart when a small WebP is its own thumbnail)
        assert c.scalar("SELECT count(*) FROM images") == N_JOBS
        expected = set(
            c.sql("SELECT storage_key FROM jobs UNION SELECT thumb_key FROM jobs").split()
        )
        apart = c.scalar("SELECT count(*) FROM jobs WHERE thumb_key != storage_key")
        assert len(expected) == N_JOBS + apart
        assert _s3_keys(c) == {f"images/{k}" for k in expected}
        # each ledger entry once: one attempt per job
        assert c.scalar("SELECT count(*) FROM ledger_entries") == N_JOBS
        assert c.scalar("SELECT count(DISTINCT job_id) FROM ledger_entries") == N_JOBS
        # every subscription saw the final event; replays after a reconnect repeat nothing
        assert len(run.follows) == N_JOBS
        for f in run.follows.values():
            assert f.final_at is not None, f.job_id
            assert f.events[-1]["data"]["status"] == "succeeded"
            ids = [e["id"] for e in f.events if "id" in e]  # stored events only
            assert ids == sorted(set(ids)), f"duplicate or out-of-order events for {f.job_id}"
        reconnected = [f for f in run.follows.values() if f.reconnects]
        assert reconnected, "no stream was cut by the API crash"
        # pushed across processes: streams on B hear a worker's final event at once (the
        # store is only re-read every 5 s without a wake-up)
        finished = dict(
            line.split("|")
            for line in c.sql("SELECT id, finished_at FROM jobs").splitlines()
            if "|" in line
        )
        lags = [
            f.final_at - float(finished[f.job_id])
            for f in run.follows.values()
            if f.origin == c.apis[1].url and not f.reconnects and f.final_at is not None
        ]
        assert statistics.median(lags) < 1.0, f"median push lag {statistics.median(lags):.2f}s"
        # exactly one sweeper at any time
        assert run.sweeper_samples == [1, 1]
        print(
            f"\n{N_JOBS} jobs in {elapsed:.1f}s; killed worker held {run.inflight_on_killed_worker}"
            f" leases; {len(reconnected)} streams reconnected to the survivor; push lag median "
            f"{statistics.median(lags) * 1000:.0f} ms, p95 "
            f"{statistics.quantiles(lags, n=20)[-1] * 1000:.0f} ms; /v1/events on B saw "
            f"{len(run.all_stream_succeeded)} successes"
        )
