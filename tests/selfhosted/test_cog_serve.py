"""A real cog server (coglet, ``tests/cog_predictor``) as a backend of the operator's catalog file,
through ``pixelpipe serve`` in a subprocess (issue 14): generate by webhook and synchronously;
one slot and five jobs (one run at a time, the rest in line, no 409); SIGKILL of pixelpipe mid-prediction and the restart that
adopts the run; the backend down → failover to the hosted fake Replicate, and back.

What the jobs and the ledger hold is read from the server's SQLite file (``pixelpipe.db``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixelpipe.fakes.server import fake_env
from tests.selfhosted import server_rows
from tests.selfhosted.server_rows import image_bytes, job_row, ledger_entries, wait_done
from tests.servers.cog import CogServer
from tests.support.serve import Server, free_port, start_fake_providers, stop_pid

pytestmark = [pytest.mark.servers, pytest.mark.slow]

STARTUP_S = 120.0  # imports + migrations on a busy 2-core machine
BACKEND = "cogbox"
MODEL = "cog-test"
FAILOVER_MODEL = "cog-or-replicate"
EVENTS = "SELECT data FROM job_events WHERE job_id = ? ORDER BY id"
BUSY = (  # the jobs (of five) that were told "provider_rate_limited": cog's 409
    "SELECT DISTINCT job_id FROM job_events WHERE data LIKE '%provider_rate_limited%' "
    "AND job_id IN (?, ?, ?, ?, ?)"
)
IN_LINE = (  # the jobs (of five) that waited in line for the backend's slot
    "SELECT DISTINCT job_id FROM job_events WHERE type = 'progress' "
    "AND data LIKE '%queue_position%' AND job_id IN (?, ?, ?, ?, ?)"
)
PERCENT = (  # the jobs (of five) with a progress event from their run's tqdm bar
    "SELECT DISTINCT job_id FROM job_events WHERE type = 'progress' "
    "AND data LIKE '%percent%' AND job_id IN (?, ?, ?, ?, ?)"
)
CREATED = "SELECT id, created_at FROM jobs WHERE id IN (?, ?, ?, ?, ?)"
CATALOG = """\
[backends.cogbox]
kind = "cog"
url = "{url}"
slots = {slots}
usd_per_gpu_hour = 3.6

[backends.cogbox.options]
input = {{ sleep_s = {sleep_s} }}

[backends.cogsync]  # the same server, never given a webhook URL
kind = "cog"
url = "{url}"
usd_per_gpu_hour = 3.6
options = {{ webhooks = false }}

[models.cog-test]
label = "cog test predictor"
formats = ["png"]
aspect_ratios = {{ "1:1" = [64, 64] }}
typical_latency_s = 0.5
backends = ["cogbox"]

[models.cog-sync]
label = "cog test predictor, synchronously"
formats = ["png"]
aspect_ratios = {{ "1:1" = [64, 64] }}
backends = ["cogsync"]

[models.cog-or-replicate]
extends = "flux-schnell"
label = "cog first, then Replicate"
backends = ["cogbox", "replicate"]
"""


def start_serve(
    tmp: Path,
    cog_url: str,
    *,
    webhooks: bool,
    slots: int = 1,
    sleep_s: float = 0.0,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Server:
    """``pixelpipe serve`` with a catalog file naming ``cog_url`` as backend ``cogbox``.
    ``webhooks``: PIXELPIPE_PUBLIC_URL is the server's own URL, so cog gets a webhook URL on
    127.0.0.1; without it no webhook route exists and cog is called synchronously. Backend
    ``cogsync`` (model ``cog-sync``) is the same server with ``webhooks = false``."""
    tmp.mkdir(parents=True, exist_ok=True)
    catalog = tmp / "catalog.toml"
    catalog.write_text(CATALOG.format(url=cog_url, slots=slots, sleep_s=sleep_s))
    port = port or free_port()
    settings = {
        "PIXELPIPE_CATALOG_PATH": str(catalog),
        "PIXELPIPE_TEST_MODE": "true",
        "PIXELPIPE_PUBLIC_URL": f"http://127.0.0.1:{port}" if webhooks else "",
        "PIXELPIPE_SWEEP_INTERVAL_S": "0.5",
    }
    return Server(tmp / "data", settings | (env or {}), port=port).start(timeout_s=STARTUP_S)


def submit(srv: Server, seed: int, *, model: str = MODEL, prompt: str = "a cog") -> str:
    body = {"prompt": prompt, "model": model, "seed": seed}
    return server_rows.submit(srv, body)


def generate(srv: Server, seed: int, **kw: Any) -> dict[str, Any]:
    return wait_done(srv, submit(srv, seed, **kw))


def query(srv: Server, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return server_rows.query(srv.data_dir, sql, *args)


def ledger(srv: Server, job_id: str) -> list[dict[str, Any]]:
    return ledger_entries(srv.data_dir, job_id)


def assert_billed_once(
    srv: Server, job_id: str, min_gpu_s: float = 0.0, backend: str = BACKEND
) -> dict[str, Any]:
    """Exactly one ledger entry, billed on the cog backend, priced from cog's predict_time."""
    (entry,) = ledger(srv, job_id)
    assert (entry["provider"], entry["state"], entry["basis"]) == (backend, "billed", "gpu_time")
    seconds = entry["detail"]["gpu_seconds"]
    assert entry["detail"]["gpu_time_source"] == "server" and seconds >= min_gpu_s
    assert entry["micros"] == round(seconds * 1000)  # 3.6 $/h = 1000 µ$/s (ADR 0007: exact)
    return entry


@pytest.fixture
def cog(tmp_path: Path) -> Iterator[CogServer]:
    """A cog server of this test's own (one slot), which it may stop and start again."""
    with CogServer(tmp_path / "cog", port=free_port()) as server:
        yield server


# ---- (1) by webhook, and synchronously -----------------------------------------------------------
@pytest.mark.parametrize("public", [True, False], ids=["public-url", "no-public-url"])
def test_generate_by_webhook_and_synchronously(
    tmp_path: Path, cog: CogServer, public: bool
) -> None:
    """With PIXELPIPE_PUBLIC_URL: ``cogbox`` by webhook, ``cogsync`` (``webhooks = false``)
    synchronously; without it, both synchronously."""
    srv = start_serve(tmp_path, cog.url, webhooks=public)
    try:
        for backend, model in ((BACKEND, MODEL), ("cogsync", "cog-sync")):
            gen = generate(srv, seed=10, model=model)
            assert gen["status"] == "succeeded" and gen["provider"] == backend, gen
            assert image_bytes(srv, gen).startswith(b"\x89PNG")
            entry = assert_billed_once(srv, gen["id"], backend=backend)
            assert gen["cost"]["micros"] == entry["micros"]
            hooks = query(
                srv, "SELECT provider FROM webhook_deliveries WHERE job_id = ?", gen["id"]
            )
            # by webhook: cog's events came to /v1/webhooks/cogbox (the start event is
            # fire-and-forget, it may come last); synchronously: none
            by_webhook = public and backend == BACKEND
            assert (set(hooks) == {(backend,)}) if by_webhook else (hooks == []), hooks
    finally:
        srv.stop()


# ---- (2) one slot, five jobs -------------------------------------------------------------------
def test_one_slot_five_jobs_all_complete_one_at_a_time(tmp_path: Path, cog: CogServer) -> None:
    sleep_s = 0.5
    srv = start_serve(tmp_path, cog.url, webhooks=True, sleep_s=sleep_s)
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(5) as pool:
            ids = list(pool.map(lambda seed: submit(srv, seed), range(100, 105)))
        gens = [wait_done(srv, job_id) for job_id in ids]
        elapsed = time.monotonic() - started
        for gen in gens:  # no error reaches the user
            assert gen["status"] == "succeeded" and gen["error"] is None, gen
        entries = [assert_billed_once(srv, job_id, min_gpu_s=sleep_s) for job_id in ids]
        # one at a time: each run took sleep_s (cog's predict_time, above), and each accepted
        # submit (its ledger row opens just before) came a run's time after the one before it;
        # five runs in parallel would have been accepted together
        assert elapsed >= 5 * sleep_s
        starts = sorted(e["at"] for e in entries)
        gaps = [b - a for a, b in pairwise(starts)]
        assert min(gaps) >= 0.8 * sleep_s, gaps
        # pixelpipe never sent cog more than its one slot (no 409 at all): the four that found
        # it taken waited in the backend's line, their place shown as progress
        assert query(srv, BUSY, *ids) == []
        assert len(query(srv, IN_LINE, *ids)) >= 4
        # while each ran, cog's logs webhooks carried the predictor's bar: live progress
        assert len(query(srv, PERCENT, *ids)) == 5
        # first come, first served: the runs started in the order the jobs were created
        created = dict(query(srv, CREATED, *ids))
        started = {job_id: e["at"] for job_id, e in zip(ids, entries, strict=True)}
        assert sorted(ids, key=created.__getitem__) == sorted(ids, key=started.__getitem__)
    finally:
        srv.stop()


# ---- (3) SIGKILL mid-prediction, restart ---------------------------------------------------------
def test_sigkill_mid_prediction_restart_adopts_the_run(tmp_path: Path, cog: CogServer) -> None:
    port = free_port()
    srv = start_serve(tmp_path, cog.url, webhooks=True, sleep_s=3.0, port=port)
    job_id = submit(srv, seed=300)
    deadline = time.monotonic() + 30
    while (row := job_row(srv, job_id))[0] != "waiting" or cog.status() != "BUSY":
        assert time.monotonic() < deadline, row
        time.sleep(0.05)
    run = row[3]
    srv.kill()  # cog keeps running the prediction; its completion webhook finds no one
    srv = start_serve(tmp_path, cog.url, webhooks=True, sleep_s=3.0, port=port)
    try:
        gen = wait_done(srv, job_id)
        assert gen["status"] == "succeeded" and gen["attempt"] == 1, gen
        assert image_bytes(srv, gen).startswith(b"\x89PNG")
        assert job_row(srv, job_id)[1:] == (1, BACKEND, run)  # the same prediction id
        entry = assert_billed_once(srv, job_id, min_gpu_s=3.0)
        assert entry["run"] == run
        assert query(srv, "SELECT count(*) FROM images WHERE job_id = ?", job_id) == [(1,)]
    finally:
        srv.stop()


# ---- (4) backend down → failover to the hosted fake, and back ------------------------------------
def test_backend_down_fails_over_to_replicate_and_back(tmp_path: Path, cog: CogServer) -> None:
    proc, fakes_url = start_fake_providers(tmp_path / "fakes.log", timeout_s=STARTUP_S)
    try:
        httpx.post(f"{fakes_url}/replicate/_control", json={"latency_s": 0.1}).raise_for_status()
        srv = start_serve(tmp_path, cog.url, webhooks=True, env=fake_env(fakes_url))
        try:
            _down_and_back(srv, cog)
        finally:
            srv.stop()
    finally:
        stop_pid(proc)


def _down_and_back(srv: Server, cog: CogServer) -> None:
    first = generate(srv, seed=400, model=FAILOVER_MODEL)
    assert (first["status"], first["provider"]) == ("succeeded", BACKEND), first
    cog.stop()
    down = generate(srv, seed=401, model=FAILOVER_MODEL)
    assert (down["status"], down["provider"]) == ("succeeded", "replicate"), down["error"]
    assert down["error"] is None
    # its first attempt found cog down and ran nothing: no entry for it, one for Replicate's run
    assert [(e["provider"], e["state"]) for e in ledger(srv, down["id"])] == [
        ("replicate", "billed")
    ]
    events = [json.loads(d) for (d,) in query(srv, EVENTS, down["id"])]
    moves = {json.dumps(e["failover"]) for e in events if "failover" in e}
    assert moves == {json.dumps({"from": BACKEND, "to": "replicate"})}, events
    cog.start()  # the same port: the backend is back
    deadline = time.monotonic() + 40
    seed = 402
    while True:
        back = generate(srv, seed=seed, model=FAILOVER_MODEL)
        assert back["status"] == "succeeded", back
        if back["provider"] == BACKEND:
            break
        assert time.monotonic() < deadline, "new jobs never went back to the cog backend"
        seed += 1
        time.sleep(1.0)
    assert_billed_once(srv, back["id"])
