"""pixelpipe dies after its ``PUT /predictions/{id}`` left but before cog's answer was saved, and
starts again — against a REAL cog server (coglet, ``tests/cog_predictor``).

The job is then ``submitting`` with no provider run id while cog runs the prediction. Here the
answer is lost on the way back (a proxy in front of cog forwards the PUT and never answers it),
the step is cancelled (the process "dies"), the app stops, and a new app starts on the same data
directory and port with its embedded worker. The proxy counts the predictions pixelpipe asked cog
to run (a PUT or POST whose ``input`` is an object; the probes that look a run up send a string,
which starts nothing).

- **Still running at the restart**: ``worker/submit.py::_resume_interrupted`` probes with
  ``find_run``, cog answers the running prediction's snapshot, and the job adopts it: the same
  prediction id, attempt 1, one run on cog, one image, one ledger entry priced from cog's
  ``predict_time``.
- **Already finished at the restart**: cog has forgotten it (no GET of a prediction), so the probe
  finds nothing. The prediction id is the attempt's run tag, known without cog's answer: the job
  waits on that id (``waiting``) for the completion webhook cog retries for minutes, and takes
  it: one run on cog, attempt 1, one billed entry, one image. (Had the PUT never reached cog,
  ``poll`` would report the run lost after its grace and a second attempt would run.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pixelpipe.api.app import create_app
from pixelpipe.fakes.server import serve_app
from pixelpipe.jobs.model import JobStatus
from pixelpipe.settings import Settings, load_settings
from pixelpipe.worker import Worker
from tests.selfhosted import server_rows
from tests.selfhosted.server_rows import ledger_entries
from tests.servers.cog import CogServer
from tests.support.serve import free_port

pytestmark = [pytest.mark.servers, pytest.mark.slow]

BACKEND = "cogbox"
CATALOG = """\
[backends.cogbox]
kind = "cog"
url = "{url}"
usd_per_gpu_hour = 3.6

[backends.cogbox.options]
input = {{ sleep_s = {sleep_s} }}

[models.cog-test]
label = "cog test predictor"
formats = ["png"]
aspect_ratios = {{ "1:1" = [64, 64] }}
typical_latency_s = 0.5
backends = ["cogbox"]
"""


@dataclass
class Forwarded:
    method: str
    path: str
    body: Any
    status: int

    @property
    def runs(self) -> bool:
        """A prediction with a real input (a probe's input is a string: it runs nothing)."""
        return (
            self.method in ("PUT", "POST")
            and self.path.startswith("/predictions")
            and not self.path.endswith("/cancel")
            and isinstance(self.body, dict)
            and isinstance(self.body.get("input"), dict)
        )


class CogProxy:
    """Forwards everything to cog and records it. ``lose_next_run``: the next prediction is
    forwarded (cog starts it) but its answer never comes back (:attr:`answer_lost` is set)."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.seen: list[Forwarded] = []
        self.lose_next_run = False
        self.answer_lost = asyncio.Event()
        self._closing = asyncio.Event()
        self._client = httpx.AsyncClient(timeout=30)
        methods = ["GET", "POST", "PUT"]
        self.app = Starlette(routes=[Route("/{path:path}", self._forward, methods=methods)])

    def runs(self) -> list[Forwarded]:
        return [f for f in self.seen if f.runs]

    async def _forward(self, request: Request) -> Response:
        raw = await request.body()
        keep = ("content-type", "prefer", "authorization")
        headers = {k: v for k, v in request.headers.items() if k in keep}
        url = f"{self.target}{request.url.path}"
        resp = await self._client.request(request.method, url, content=raw, headers=headers)
        body = json.loads(raw) if raw else None
        seen = Forwarded(request.method, request.url.path, body, resp.status_code)
        self.seen.append(seen)
        if seen.runs and self.lose_next_run:
            self.lose_next_run = False
            self.answer_lost.set()
            await self._closing.wait()  # the answer never comes back
            return Response(status_code=504)
        kind = resp.headers.get("content-type", "application/json")
        return Response(resp.content, resp.status_code, media_type=kind)

    def stop_losing(self) -> None:
        """The lost answer's request ends (it was given up on long ago)."""
        self._closing.set()

    async def aclose(self) -> None:
        self._closing.set()
        await self._client.aclose()


@asynccontextmanager
async def cog_proxy(cog: CogServer) -> AsyncIterator[tuple[CogProxy, str]]:
    proxy = CogProxy(cog.url)
    try:
        async with serve_app(proxy.app) as url:
            try:
                yield proxy, url
            finally:
                proxy.stop_losing()
    finally:
        await proxy.aclose()


def settings_for(tmp_path: Path, cog_url: str, port: int, sleep_s: float) -> Settings:
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(CATALOG.format(url=cog_url, sleep_s=sleep_s))
    return load_settings(
        data_dir=tmp_path / "data",
        catalog_path=catalog,
        public_url=f"http://127.0.0.1:{port}",  # by webhook: cog posts back to this app
        secret_key="cog-restart-test-secret-0123456789",
        sweep_interval_s=0.5,
    )


async def crash_after_the_put(settings: Settings, port: int, proxy: CogProxy, seed: int) -> str:
    """A first life: the job is accepted, its submit's PUT reaches cog, the answer is lost and
    the process dies (the step is cancelled, the app stops). Returns the job id."""
    app = create_app(settings, worker=False)  # its step is run here, by hand
    async with serve_app(app, port=port) as url, httpx.AsyncClient(base_url=url) as client:
        body = {"prompt": "a cog that restarts", "model": "cog-test", "seed": seed}
        resp = await client.post("/v1/generations", json=body, timeout=30)
        assert resp.status_code == 202, resp.text
        job_id = str(resp.json()["id"])
        svc = app.state.services
        job = await svc.store.claim(job_id, "first-life", lease_s=svc.settings.lease_s)
        assert job is not None
        proxy.lose_next_run = True
        step = asyncio.create_task(Worker(svc, "first-life").run_step(job))
        await asyncio.wait_for(proxy.answer_lost.wait(), 30)
        step.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await step
        lost = await svc.store.get(job_id)
        assert lost is not None
        assert (lost.status, lost.attempt, lost.provider_job_id) == (
            JobStatus.SUBMITTING,
            1,
            None,
        )
    return job_id


async def second_life(settings: Settings, port: int, job_id: str) -> dict[str, Any]:
    """The restart: a new app on the same data and port, its worker running; the job's end."""
    app = create_app(settings, worker=True)
    async with serve_app(app, port=port) as url, httpx.AsyncClient(base_url=url) as client:
        deadline = time.monotonic() + 90
        while True:
            gen: dict[str, Any] = (await client.get(f"/v1/generations/{job_id}")).json()
            if gen["status"] in ("succeeded", "failed", "canceled"):
                return gen
            assert time.monotonic() < deadline, gen
            await asyncio.sleep(0.1)


def query(settings: Settings, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    return server_rows.query(settings.data_dir, sql, *args)


def ledger(settings: Settings, job_id: str) -> list[dict[str, Any]]:
    return ledger_entries(settings.data_dir, job_id)


def assert_priced_from_cog(entry: dict[str, Any], min_gpu_s: float) -> None:
    assert (entry["provider"], entry["state"], entry["basis"]) == (BACKEND, "billed", "gpu_time")
    seconds = entry["detail"]["gpu_seconds"]
    assert entry["detail"]["gpu_time_source"] == "server" and seconds >= min_gpu_s
    assert entry["micros"] == round(seconds * 1000)  # 3.6 $/h = 1000 µ$/s


def images(settings: Settings, job_id: str) -> int:
    ((count,),) = query(settings, "SELECT count(*) FROM images WHERE job_id = ?", job_id)
    return int(count)


async def wait_ready(cog: CogServer) -> None:
    """cog has no run in flight (its one slot is free)."""
    deadline = time.monotonic() + 30
    while await asyncio.to_thread(cog.status) != "READY":
        assert time.monotonic() < deadline, cog.status()
        await asyncio.sleep(0.05)


async def test_a_restart_adopts_the_prediction_still_running(
    tmp_path: Path, cog_server: CogServer
) -> None:
    sleep_s = 6.0  # outlasts the stop, the restart and the worker's first look
    await wait_ready(cog_server)
    port = free_port()
    async with cog_proxy(cog_server) as (proxy, cog_url):
        settings = settings_for(tmp_path, cog_url, port, sleep_s)
        job_id = await crash_after_the_put(settings, port, proxy, seed=501)
        (put,) = proxy.runs()
        run = put.path.removeprefix("/predictions/")
        assert put.method == "PUT" and put.status == 202 and run.startswith(job_id)
        gen = await second_life(settings, port, job_id)
        assert (gen["status"], gen["attempt"]) == ("succeeded", 1), gen
        assert proxy.runs() == [put]  # no second prediction was asked for
        probes = [f for f in proxy.seen if f.method == "PUT" and not f.runs]
        assert probes and probes[0].status == 202  # cog answered the running one's snapshot
    (row,) = query(settings, "SELECT attempt, provider_job_id FROM jobs WHERE id = ?", job_id)
    assert row == (1, run)  # the same prediction id
    (entry,) = ledger(settings, job_id)
    assert (entry["attempt"], entry["run"]) == (1, run)
    assert_priced_from_cog(entry, min_gpu_s=sleep_s)
    assert images(settings, job_id) == 1


async def test_a_prediction_that_finished_before_the_restart_is_not_run_again(
    tmp_path: Path, cog_server: CogServer
) -> None:
    sleep_s = 1.0  # ends after the first life is over: its completion webhook finds no one
    await wait_ready(cog_server)
    port = free_port()
    async with cog_proxy(cog_server) as (proxy, cog_url):
        settings = settings_for(tmp_path, cog_url, port, sleep_s)
        job_id = await crash_after_the_put(settings, port, proxy, seed=502)
        await wait_ready(cog_server)  # it ended while pixelpipe was down
        gen = await second_life_until_billed(settings, port, job_id, proxy)
        runs = proxy.runs()
    assert (gen["status"], gen["attempt"]) == ("succeeded", 1), gen
    # the probe found nothing, so the job waited on the run's own id for its completion
    # webhook (cog retries it for minutes) instead of asking cog for a second run
    (put,) = runs
    run = put.path.removeprefix("/predictions/")
    (row,) = query(settings, "SELECT attempt, provider_job_id FROM jobs WHERE id = ?", job_id)
    assert row == (1, run)
    (entry,) = ledger(settings, job_id)
    assert (entry["attempt"], entry["run"]) == (1, run)
    assert_priced_from_cog(entry, min_gpu_s=sleep_s)
    assert images(settings, job_id) == 1
    events = query(settings, "SELECT data FROM job_events WHERE job_id = ?", job_id)
    assert any("waiting for its run's webhook" in data for (data,) in events)


async def second_life_until_billed(
    settings: Settings, port: int, job_id: str, proxy: CogProxy
) -> dict[str, Any]:
    """:func:`second_life`, kept up until every run cog was asked for is billed (cog retries a
    completion webhook 0.2, 0.4, 0.8, … s apart: the first run's can come well after the job
    ended)."""
    app = create_app(settings, worker=True)
    async with serve_app(app, port=port) as url, httpx.AsyncClient(base_url=url) as client:
        deadline = time.monotonic() + 90
        while True:
            gen: dict[str, Any] = (await client.get(f"/v1/generations/{job_id}")).json()
            billed = [e for e in ledger(settings, job_id) if e["state"] == "billed"]
            if gen["status"] in ("succeeded", "failed", "canceled") and len(billed) >= len(
                proxy.runs()
            ):
                return gen
            assert time.monotonic() < deadline, (gen, ledger(settings, job_id))
            await asyncio.sleep(0.2)
