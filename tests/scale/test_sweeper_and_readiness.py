"""Process roles on the real engines: exactly one sweeper however many run (and a standby takes
over when the active one dies), readiness that checks every configured backend, graceful worker
shutdown that hands leases back."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import Cluster, ClusterSpec
from tests.support.serve import Server

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def _eventually(check: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_one_sweeper_active_and_a_standby_takes_over(tmp_path: Path) -> None:
    spec = ClusterSpec(apis=1, workers=0, sweepers=3, sweep_interval_s=0.5)
    with Cluster(tmp_path / "c", spec) as c:
        _eventually(lambda: c.active_sweepers() == 1, 15)
        time.sleep(1.5)
        assert c.active_sweepers() == 1  # three started, still one
        holders = [s for s in c.sweepers if "holds the lock" in s.log.read_text()]
        assert len(holders) == 1
        holders[0].kill()  # SIGKILL: its session ends, PostgreSQL frees the lock
        t0 = time.monotonic()
        _eventually(lambda: sum("holds the lock" in s.log.read_text() for s in c.sweepers) == 2, 10)
        assert time.monotonic() - t0 < 5
        assert c.active_sweepers() == 1


def test_readiness_checks_every_backend(tmp_path: Path) -> None:
    spec = ClusterSpec(apis=1, workers=0, sweepers=0)
    with Cluster(tmp_path / "c", spec) as c:
        ready = httpx.get(f"{c.apis[0].url}/readyz", timeout=10).json()
        assert ready["status"] == "ok"
        assert ready["checks"] == {
            "database": "ok",
            "storage": "ok",
            "queue": "ok",
            "events": "ok",
        }
        assert ready["backends"] == {
            "database": "postgresql",
            "storage": "S3Storage",
            "queue": "SaqQueue",
            "events": "RedisNotifier",
        }
        c.redis.stop()  # Redis goes away: this process is no longer ready
        r = httpx.get(f"{c.apis[0].url}/readyz", timeout=10)
        assert r.status_code == 503
        assert r.json()["checks"]["events"].startswith("error")
        assert r.json()["checks"]["database"] == "ok"
        assert httpx.get(f"{c.apis[0].url}/healthz", timeout=5).status_code == 200  # alive


def test_a_stopped_worker_hands_its_leases_back(tmp_path: Path) -> None:
    spec = ClusterSpec(apis=1, workers=1, sweepers=0, preview_latency_ms=60_000, lease_s=300)
    with Cluster(tmp_path / "c", spec) as c:
        api = c.apis[0].url
        for i in range(5):
            body = {"prompt": f"slow {i}", "model": "preview", "size": "64x64"}
            assert httpx.post(f"{api}/v1/generations", json=body, timeout=10).status_code == 202
        # the worker submits them, then they wait ("at the provider") for a minute
        _eventually(lambda: c.scalar("SELECT count(*) FROM jobs WHERE status='waiting'") == 5, 20)
        worker: Server = c.workers[0]
        # park all five under this worker's lease, as if it were running their steps right now
        # (a preview poll holds its lease for milliseconds: too short to catch from outside)
        assert worker.proc is not None
        owner = f"{os.uname().nodename}:{worker.proc.pid}:dispatcher"
        c.sql(f"UPDATE jobs SET lease_owner = '{owner}', lease_expires_at = {time.time() + 300}")
        assert c.scalar("SELECT count(*) FROM jobs WHERE lease_owner IS NOT NULL") == 5
        worker.stop()  # SIGTERM: finish or release, never strand a job for a 300 s lease
        assert worker.proc is not None and worker.proc.returncode == 0
        assert c.scalar("SELECT count(*) FROM jobs WHERE lease_owner IS NOT NULL") == 0
