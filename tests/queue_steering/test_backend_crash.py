"""A self-hosted backend that crashes mid-run counts a crash of the job, as an expired lease does:
through ``pixelpipe serve`` against the fake ComfyUI (restarted mid-run, its queue lost), with
``PIXELPIPE_QUEUE_POISON_AFTER=1`` the job is quarantined with the reason instead of run again;
released by the operator, it runs (docs/queue.md, poison jobs)."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.selfhosted import server_rows
from tests.selfhosted.server_rows import events, wait_done
from tests.selfhosted.test_comfyui_serve import (  # noqa: F401 - fixtures
    BACKEND,
    Stack,
    fakes,
    stack,
    start_serve,
    submit,
)

pytestmark = [pytest.mark.servers, pytest.mark.slow]


def test_a_backend_crash_mid_run_counts_toward_quarantine(
    stack: Stack,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIXELPIPE_QUEUE_POISON_AFTER", "1")
    stack.control(step_s=0.05, crash_next=1, crash_at_step=3, crash_restart_s=1.0)
    srv = start_serve(stack)
    try:
        job_id = submit(srv, seed=401, steps=10)
        sql = "SELECT status, crashes, held_at, held_reason FROM jobs WHERE id = ?"
        deadline = time.monotonic() + 90
        while True:
            status, crashes, held_at, reason = server_rows.query(srv.data_dir, sql, job_id)[0]
            if held_at is not None or status in ("succeeded", "failed", "canceled"):
                break
            assert time.monotonic() < deadline, (status, crashes)
            time.sleep(0.2)
        # held, not run again: queued, one crash, the backend named
        assert held_at is not None and status == "queued" and crashes == 1, (status, crashes)
        assert BACKEND in reason and "lost its run" in reason, reason
        quarantined = [d for k, d in events(srv, job_id) if k == "quarantined"]
        assert quarantined == [{"reason": reason, "crashes": 1}]
        time.sleep(1.5)  # nothing claims it meanwhile
        assert server_rows.query(srv.data_dir, sql, job_id)[0][0] == "queued"
        held = httpx.get(f"{srv.url}/v1/admin/queue/held", timeout=10).json()
        assert job_id in str(held), held

        released = httpx.post(f"{srv.url}/v1/admin/queue/held/{job_id}/release", timeout=10)
        assert released.status_code == 200, released.text
        gen = wait_done(srv, job_id, timeout_s=90)
        assert gen["status"] == "succeeded" and gen["attempt"] == 2, gen
    finally:
        srv.stop()
