"""A process that dies while a provider's create call is in flight never learns the run's id; the
provider runs (and bills) it anyway. Every such run must reach the ledger: adopted through its
webhook (which names its job and attempt) when webhooks are on, and as an *unconfirmed* attempt
(may have been billed, at the estimate) when nothing will ever name it.

The fake provider holds each create's answer (``create_answer_delay_s``) after making the run, and
``pixelpipe serve`` is SIGKILLed inside that window, then started again on the same port and data.
Replicate can also list predictions: a restarted worker finds the lost run and resumes on it
instead of starting a second one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixelpipe.fakes.server import fake_env
from tests.e2e.test_providers_e2e import FakesThread, db_rows, get_job, submit
from tests.support.serve import Server, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

STARTUP_S = 120.0
ANSWER_DELAY_S = 2.5  # the create's answer is this late: the crash happens inside it


@pytest.fixture(scope="module")
def fakes() -> Iterator[FakesThread]:
    with FakesThread() as f:
        yield f


@pytest.fixture(autouse=True)
def _reset(fakes: FakesThread) -> None:
    for name in ("replicate", "fal"):
        fakes.control(name, reset=True)


def _server(data: Path, fakes: FakesThread, *, webhooks: bool) -> Server:
    port = free_port()
    env = {
        **fake_env(fakes.url),
        "PIXELPIPE_SWEEP_INTERVAL_S": "0.5",
        "PIXELPIPE_LEASE_S": "2",  # a dead process's lease runs out quickly
    }
    if webhooks:
        env["PIXELPIPE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        env["PIXELPIPE_WEBHOOK_DEADLINE_S"] = "2"
    return Server(data, env, port=port)


def _crash_during_create(srv: Server, fakes: FakesThread, provider: str = "replicate") -> str:
    """Submit, SIGKILL the server once the fake has made the run, start it again; the job id."""
    job = submit(srv, model="flux-schnell", provider=provider)
    deadline = time.monotonic() + 20
    while fakes.stats(provider)["creates_total"] < 1:
        assert time.monotonic() < deadline, "the create never reached the fake"
        time.sleep(0.02)
    srv.kill()  # the create's answer (the run's id) is still on its way
    assert db_rows(srv, "SELECT provider_job_id FROM jobs")[0][0] is None
    srv.start(timeout_s=STARTUP_S)
    return str(job["id"])


def _finished(srv: Server, job_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_job(srv, job_id)
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never finished: {get_job(srv, job_id)}")


def _settled(srv: Server, fakes: FakesThread, timeout: float = 60) -> list[sqlite3.Row]:
    """The ledger once every run the fake made is accounted for (late webhooks included)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = db_rows(srv, "SELECT * FROM ledger_entries ORDER BY attempt")
        runs = {r["provider_job_id"] for r in rows if r["provider_job_id"]}
        if len(runs) >= fakes.stats("replicate")["creates_total"] or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_orphaned_run_is_adopted_through_its_webhook(tmp_path: Path, fakes: FakesThread) -> None:
    fakes.control(
        "replicate",
        latency_s=0.3,
        create_answer_delay_s=ANSWER_DELAY_S,
        webhook_retry_delays_s=[0.5, 1.0, 2.0, 4.0, 8.0, 8.0],  # Replicate retries ~1 min
    )
    srv = _server(tmp_path / "hooked", fakes, webhooks=True)
    srv.start(timeout_s=STARTUP_S)
    try:
        job_id = _crash_during_create(srv, fakes)
        done = _finished(srv, job_id)
        assert done["status"] == "succeeded", done
        rows = _settled(srv, fakes)
        created = fakes.stats("replicate")["creates_total"]
        runs = [r["provider_job_id"] for r in rows if r["provider_job_id"]]
        assert len(runs) == len(set(runs)) == created, (created, runs)
        billed = [r for r in rows if r["state"] == "billed"]
        # every run the provider made (the orphan and any resubmission) is billed, once
        assert len(billed) == created and len({r["provider_job_id"] for r in billed}) == created
        assert all(r["provider_job_id"] and r["amount_micros"] == 3000 for r in billed)
        assert [r for r in rows if r["state"] == "pending"] == []
        assert [r["attempt"] for r in rows] == sorted({r["attempt"] for r in rows})
        assert 1 in {r["attempt"] for r in billed}  # the orphan's own attempt
        # the image the job delivers is stored once
        stored = db_rows(srv, "SELECT count(*) FROM images")[0][0]
        assert stored == 1
        costs = httpx.get(f"{srv.url}/v1/costs", timeout=5).json()
        assert costs["unconfirmed_events"] == 0
    finally:
        srv.stop()


def test_lost_replicate_run_is_found_and_resumed(tmp_path: Path, fakes: FakesThread) -> None:
    fakes.control("replicate", latency_s=0.3, create_answer_delay_s=ANSWER_DELAY_S)
    srv = _server(tmp_path / "polled", fakes, webhooks=False)
    srv.start(timeout_s=STARTUP_S)
    try:
        job_id = _crash_during_create(srv, fakes)
        done = _finished(srv, job_id)
        assert done["status"] == "succeeded", done
        # the restarted worker listed Replicate's predictions and resumed on the lost run
        assert fakes.stats("replicate")["creates_total"] == 1
        assert fakes.stats("replicate")["calls"].get("list", 0) >= 1
        rows = db_rows(srv, "SELECT * FROM ledger_entries")
        assert [(r["attempt"], r["state"], r["amount_micros"]) for r in rows] == [
            (1, "billed", 3000)
        ]
        [(run,)] = db_rows(srv, "SELECT provider_job_id FROM jobs")
        assert run and rows[0]["provider_job_id"] == run
    finally:
        srv.stop()


def test_orphan_nothing_will_name_stays_unconfirmed(tmp_path: Path, fakes: FakesThread) -> None:
    # fal's queue cannot be listed, and without webhooks nothing will ever name the lost run
    fakes.control("fal", latency_s=0.3, create_answer_delay_s=ANSWER_DELAY_S)
    srv = _server(tmp_path / "polled-fal", fakes, webhooks=False)
    srv.start(timeout_s=STARTUP_S)
    try:
        job_id = _crash_during_create(srv, fakes, "fal")
        fakes.control("fal", create_answer_delay_s=0.0)
        done = _finished(srv, job_id)
        assert done["status"] == "succeeded", done
        rows = db_rows(srv, "SELECT * FROM ledger_entries ORDER BY attempt")
        assert fakes.stats("fal")["creates_total"] == 2
        assert [r["attempt"] for r in rows] == [1, 2]  # both runs may have been billed
        # attempt 1 may have been billed: it is in the ledger as such, at the estimate
        assert [(r["attempt"], r["state"], r["amount_micros"]) for r in rows] == [
            (1, "unconfirmed", 3000),
            (2, "billed", 3000),
        ]
        costs = httpx.get(f"{srv.url}/v1/costs", timeout=5).json()
        assert costs["unconfirmed_events"] == 1
        assert float(costs["spent_total_usd"]) == pytest.approx(0.006)
    finally:
        srv.stop()
