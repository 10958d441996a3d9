"""Hosted providers on the scaled-out shape: the fake Replicate and fal (``pixelpipe fake-providers``,
its own process) send signed webhooks to the API, which applies them and hands the fetch to a
worker through SAQ; some webhooks are lost (the sweeper notices the silence and a worker polls),
some submissions are answered 429 (the pause is shared through Redis). Mid-run a worker and the
other API process are SIGKILLed. Every job succeeds, each image is stored once, each provider run
is billed once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pixelpipe.fakes.server import fake_env
from tests.support.browsers import Follow, follow_job
from tests.support.cluster import Cluster, ClusterSpec
from tests.support.serve import free_port, start_fake_providers, stop_pid

pytestmark = [pytest.mark.servers, pytest.mark.slow, pytest.mark.timeout(300)]

N_JOBS = 60
KILL_AFTER = 15


@pytest.fixture
def fake_providers(tmp_path: Path) -> Iterator[str]:
    proc, base = start_fake_providers(tmp_path / "fakes.log", timeout_s=60)
    try:
        yield base
    finally:
        stop_pid(proc)


def _control(base: str, fake: str, **changes: object) -> None:
    r = httpx.post(f"{base}/{fake}/_control", json=changes, timeout=5)
    assert r.status_code == 200, r.text


async def _drive(c: Cluster, n: int) -> dict[str, Follow]:
    api_a, api_b = c.apis
    follows: dict[str, Follow] = {}
    tasks: list[asyncio.Task[None]] = []
    dead: set[str] = set()
    limits = httpx.Limits(max_connections=n * 2 + 20)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        sem = asyncio.Semaphore(8)

        async def submit(i: int) -> None:
            body = {"prompt": f"a lighthouse, study {i}", "model": "flux-schnell", "seed": i}
            async with sem:
                for _ in range(20):
                    url = api_a.url if i % 2 == 0 and api_a.url not in dead else api_b.url
                    try:
                        r = await client.post(
                            f"{url}/v1/generations",
                            json=body,
                            headers={"Idempotency-Key": f"hosted-{i}"},
                        )
                    except (httpx.HTTPError, OSError):
                        await asyncio.sleep(0.2)
                        continue
                    assert r.status_code in (200, 202), r.text
                    break
                else:
                    raise AssertionError(f"could not submit {i}")
            job_id = r.json()["id"]
            follow = follows.setdefault(job_id, Follow(job_id, url))
            tasks.append(asyncio.create_task(follow_job(client, follow, api_b.url)))

        async def crash() -> None:
            while sum(f.final_at is not None for f in follows.values()) < KILL_AFTER:
                await asyncio.sleep(0.05)
            c.workers[0].kill()
            dead.add(api_a.url)
            c.apis[0].kill()

        crasher = asyncio.create_task(crash())
        await asyncio.gather(*(submit(i) for i in range(n)))
        await asyncio.wait_for(crasher, 120)
        await asyncio.wait_for(asyncio.gather(*tasks), 180)
    return follows


def test_hosted_providers_with_webhooks_polling_and_crashes(
    tmp_path: Path, fake_providers: str
) -> None:
    ports = [free_port(), free_port()]
    spec = ClusterSpec(
        apis=2,
        workers=2,
        sweepers=1,
        lease_s=4.0,
        sweep_interval_s=0.5,
        api_ports=ports,
        env={
            **fake_env(fake_providers),
            # webhooks reach API 2 (the one that survives); a lost one is noticed after 3 s
            "PIXELPIPE_PUBLIC_URL": f"http://127.0.0.1:{ports[1]}",
            "PIXELPIPE_WEBHOOK_DEADLINE_S": "3",
        },
    )
    for fake in ("replicate", "fal"):
        _control(fake_providers, fake, latency_s=0.5, lose_webhook_next=6)
    _control(fake_providers, "replicate", rate_limit_next=3, retry_after="1")
    with Cluster(tmp_path / "cluster", spec) as c:
        follows = asyncio.run(_drive(c, N_JOBS))

        assert c.sql("SELECT status, count(*) FROM jobs GROUP BY status") == f"succeeded|{N_JOBS}"
        for f in follows.values():
            assert f.final_at is not None and f.events[-1]["data"]["status"] == "succeeded"
            ids = [e["id"] for e in f.events if "id" in e]  # stored events only
            assert ids == sorted(set(ids))
        # both paths were taken: signed webhooks applied by the API, and polls after silence
        providers = c.sql("SELECT DISTINCT provider FROM jobs ORDER BY 1").split()
        assert set(providers) <= {"replicate", "fal"}
        assert c.scalar("SELECT count(DISTINCT job_id) FROM job_events WHERE type = 'sweeper'") > 0
        assert c.scalar("SELECT count(*) FROM webhook_deliveries") > 0
        # 429s were retried (the pause is shared through Redis) and never billed
        assert (
            c.scalar(
                "SELECT count(*) FROM job_events WHERE type = 'status' "
                "AND data::text LIKE '%rate_limited%'"
            )
            > 0
        )
        # each image stored once, each provider run billed once
        assert c.scalar("SELECT count(*) FROM images") == N_JOBS
        assert c.scalar("SELECT count(DISTINCT storage_key) FROM jobs") == N_JOBS
        assert c.scalar("SELECT count(*) FROM ledger_entries") == N_JOBS
        assert c.scalar("SELECT count(DISTINCT job_id) FROM ledger_entries") == N_JOBS
