"""The cog backend against a REAL cog server (coglet 0.23.1 serving tests/cog_predictor, see
tests/servers/cog.py), plus its wire-format translation on hand-written prediction objects."""

from __future__ import annotations

import asyncio
import io
import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelpipe.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderFailed,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderRateLimited,
    ProviderUnavailable,
    Unauthorized,
)
from pixelpipe.providers.base import Output, ProviderRequest, RunState
from pixelpipe.providers.cog import REGISTRATION
from pixelpipe.providers.cog.client import (
    BUSY_REASK_S,
    GONE_GRACE_S,
    HEALTH_STATES,
    CogProvider,
)
from pixelpipe.providers.cog.predictions import cog_input, prediction_update
from pixelpipe.providers.registration import Backend, BuildContext
from pixelpipe.providers.run_tag import RunRef, run_webhook_url
from pixelpipe.settings import load_settings
from tests.cog_predictor.predict import image_colour
from tests.providers.conftest import canon
from tests.servers.cog import PREDICTOR_DIR, CogServer, CogServers
from tests.servers.http_recorder import Answer, HttpRecorder, RecordedRequest

SECRET_KEY = "cog-test-secret-key-0123456789abcdef"
SETTINGS = load_settings(secret_key=SECRET_KEY)
SECRET = SETTINGS.signing_key()
NAME = "gpu_a"
TERMINAL = {"succeeded", "failed", "canceled"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def backend(url: str, *, slots: int = 1, **options: Any) -> Backend:
    return Backend(name=NAME, kind="cog", url=url, slots=slots, options={"input": options})


def provider_for(
    server: CogServer, clock: Callable[[], float] | None = None, **inputs: Any
) -> CogProvider:
    build = REGISTRATION.backend
    assert build is not None
    built = build(backend(server.url, slots=server.slots, **inputs), BuildContext(SETTINGS))
    assert isinstance(built, CogProvider)
    if clock is not None:
        built._clock = clock  # the grace before "lost", without waiting for it
    return built


def request(webhook: HttpRecorder | None = None, *, attempt: int = 1, **kw: Any) -> ProviderRequest:
    job_id = f"job_{uuid.uuid4().hex[:12]}"  # the server is shared: ids of this test's own
    url = None
    if webhook is not None:
        url = run_webhook_url(
            webhook.url(f"/v1/webhooks/{NAME}"), NAME, RunRef(job_id, attempt), SECRET
        )
    return ProviderRequest(job_id, attempt, canon(**kw), "tests/cog-predictor", url)


async def hooks_until_done(
    recorder: HttpRecorder, pid: str, timeout: float = 15.0
) -> list[RecordedRequest]:
    def done(seen: list[RecordedRequest]) -> bool:
        return any(h.json()["id"] == pid and h.json()["status"] in TERMINAL for h in seen)

    seen = await asyncio.to_thread(recorder.wait_for, done, timeout=timeout)
    return [h for h in seen if h.json()["id"] == pid]


def cog_progress(hook: RecordedRequest) -> int:
    """The percent the last tqdm bar in a webhook's logs shows (0 before the first)."""
    bars = re.findall(r"(\d+)%\|", hook.json().get("logs") or "")
    return int(bars[-1]) if bars else 0


async def wait_ready(provider: CogProvider, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while await provider.health() != "READY":
            await asyncio.sleep(0.05)


@pytest.fixture
async def cog(cog_server: CogServer) -> AsyncIterator[CogProvider]:
    """A provider on the shared 1-slot server; its slot is free before and after each test."""
    provider = provider_for(cog_server)
    await wait_ready(provider)
    yield provider
    await wait_ready(provider)
    await provider.aclose()


def png(output: Output) -> Image.Image:
    assert output.data is not None and output.content_type == "image/png"
    return Image.open(io.BytesIO(output.data))


# --- against the real server ------------------------------------------------------------------


@pytest.mark.servers
async def test_sync_run_without_a_webhook_returns_decoded_images_and_server_gpu_time(
    cog_server: CogServer,
) -> None:
    provider = provider_for(cog_server, sleep_s=0.2)  # backend options.input reach the predictor
    try:
        await wait_ready(provider)
        req = request(prompt="a red fox", seed=7)
        update = await provider.submit(req)
    finally:
        await provider.aclose()
    assert update.state is RunState.SUCCEEDED
    assert update.provider_job_id == provider.prediction_id(req)
    (image,) = [png(o) for o in update.outputs]
    assert image.size == (req.request.width, req.request.height)
    assert image.getpixel((0, 0)) == image_colour("a red fox", 7, 0)
    assert update.gpu_time_source == "server"
    assert update.gpu_seconds is not None and 0.2 <= update.gpu_seconds < 5


@pytest.mark.servers
async def test_async_run_posts_webhooks_that_parse_only_with_our_run_tag(
    cog: CogProvider, http_recorder: HttpRecorder
) -> None:
    req = request(http_recorder, prompt="webhooked", seed=3)
    update = await cog.submit(req)
    pid = cog.prediction_id(req)
    assert (update.provider_job_id, update.state) == (pid, RunState.PENDING)
    hooks = await hooks_until_done(http_recorder, pid)
    # start, logs and output (if any; non-terminal hooks are fire-and-forget: an output hook may
    # arrive after the completed one), completed
    statuses = [h.json()["status"] for h in hooks]
    assert statuses[0] == "processing" and statuses.count("succeeded") == 1
    assert set(statuses) == {"processing", "succeeded"}, statuses
    completed = hooks[statuses.index("succeeded")]
    assert all(h.path == req.webhook_url.removeprefix(http_recorder.url("")) for h in hooks)  # type: ignore[union-attr]
    start, done = [await cog.parse_webhook(h.headers, h.body) for h in (hooks[0], completed)]
    assert (start.state, done.state) == (RunState.RUNNING, RunState.SUCCEEDED)
    assert png(done.outputs[0]).getpixel((0, 0)) == image_colour("webhooked", 3, 0)
    assert done.gpu_time_source == "server" and done.gpu_seconds is not None
    body = completed.json()
    forged = [
        {**body, "id": pid[:-2] + ("AA" if not pid.endswith("AA") else "BB")},  # bad tag
        {**body, "id": f"{req.job_id}.{req.attempt}"},  # no tag
        {k: v for k, v in body.items() if k != "id"},  # no id
    ]
    for fake in forged:
        with pytest.raises(Unauthorized):
            await cog.parse_webhook(hooks[-1].headers, json.dumps(fake).encode())
    other = CogProvider("gpu_b", "http://127.0.0.1:9", secret=SECRET)  # the tag names the backend
    with pytest.raises(Unauthorized):
        await other.parse_webhook(hooks[-1].headers, hooks[-1].body)
    with pytest.raises(Unauthorized):
        await cog.parse_webhook({}, b"not json")


@pytest.mark.servers
async def test_resubmit_and_lookups_of_a_running_id_adopt_it_and_a_finished_id_is_never_rerun(
    cog_server: CogServer, http_recorder: HttpRecorder
) -> None:
    clock = Clock()
    cog = provider_for(cog_server, clock=clock, sleep_s=1.0)
    try:
        await wait_ready(cog)
        req = request(http_recorder, prompt="once")
        pid = (await cog.submit(req)).provider_job_id
        again = await cog.submit(req)  # a restarted worker's PUT of the same attempt
        assert again.provider_job_id == pid and again.state in (RunState.PENDING, RunState.RUNNING)
        assert (await cog.poll(pid, req)).state in (RunState.PENDING, RunState.RUNNING)
        found = await cog.find_run(req, since=0.0)
        assert found is not None and found.provider_job_id == pid
        hooks = await hooks_until_done(http_recorder, pid)
        statuses = [h.json()["status"] for h in hooks]  # start, logs of its bar, completed
        assert statuses[0] == "processing" and statuses.count("succeeded") == 1  # one run,
        percents = [cog_progress(h) for h in hooks]  # its bar never restarted, and it finished
        assert percents == sorted(percents) and percents[-1] == 100, percents
        await wait_ready(cog)
        # it finished: the probes start nothing (a re-run would be BUSY for 1 s, and hook again)
        assert await cog.find_run(req, since=0.0) is None
        waiting = await cog.poll(pid, req)  # its webhook may still be on its way: wait for it
        assert (waiting.state, waiting.outputs) == (RunState.RUNNING, ())
        assert await cog.health() == "READY"
        clock.now += GONE_GRACE_S
        with pytest.raises(ProviderJobLost, match="no longer runs"):
            await cog.poll(pid, req)
        await asyncio.sleep(0.3)
        # nothing ran again (an output hook may come after the completed one: non-terminal
        # hooks are fire-and-forget, so count completions)
        done = [h for h in http_recorder.requests() if h.json()["status"] in TERMINAL]
        assert len(done) == 1, done
    finally:
        await cog.aclose()


@pytest.mark.servers
async def test_lookup_probe_starts_nothing_on_a_predictor_without_a_schema(tmp_path: Path) -> None:
    """Without .cog/openapi_schema.json coglet accepts any input object; the probe's input is not
    one, so it fails validation at once (200 failed) instead of running a prediction."""
    bare = tmp_path / "predictor"
    bare.mkdir()
    shutil.copy(PREDICTOR_DIR / "predict.py", bare / "predict.py")
    with CogServer(tmp_path / "run", predictor_dir=bare) as server:
        cog = provider_for(server)
        try:
            req = request()
            assert await cog.find_run(req, since=0.0) is None
            # the failed probe held the one slot for a moment (coglet frees it after answering):
            # a probe in that window meets a 409, which poll reports as busy — ask when READY
            await wait_ready(cog)
            assert (await cog.poll(cog.prediction_id(req), req)).outputs == ()  # grace: waits
            # the poll's own lookup holds the slot for the same moment: the server comes back
            # to READY (wait_ready raises when it does not), nothing left running
            await wait_ready(cog, timeout=10.0)
        finally:
            await cog.aclose()


@pytest.mark.servers
async def test_busy_server_is_rate_limited_then_cancel_ends_the_run(
    cog: CogProvider, cog_server: CogServer, http_recorder: HttpRecorder
) -> None:
    slow = request(http_recorder, prompt="slow")
    slow_provider = provider_for(cog_server, sleep_s=20)
    try:
        pid = (await slow_provider.submit(slow)).provider_job_id
    finally:
        await slow_provider.aclose()
    assert await cog.health() == "BUSY"
    for busy in (request(http_recorder), request()):  # async PUT and sync POST
        with pytest.raises(ProviderRateLimited) as caught:
            await cog.submit(busy)
        assert caught.value.retry_after == 1.0
    await cog.cancel(pid, slow)
    (*_, last) = await hooks_until_done(http_recorder, pid)
    canceled = await cog.parse_webhook(last.headers, last.body)
    assert canceled.state is RunState.CANCELED
    assert canceled.gpu_seconds is not None and canceled.gpu_seconds < 5
    await wait_ready(cog)
    await cog.cancel(pid, slow)  # 404: already gone, fine


@pytest.mark.servers
async def test_failing_predictor_and_invalid_input(
    cog_server: CogServer, http_recorder: HttpRecorder
) -> None:
    failing = provider_for(cog_server, fail=True)
    invalid = provider_for(cog_server, sleep_s=-1)
    try:
        await wait_ready(failing)
        update = await failing.submit(request(prompt="boom"))  # sync
        assert update.state is RunState.FAILED
        assert isinstance(update.error, ProviderFailed)
        assert "PredictorFailedError: asked to fail (prompt 'boom')" in str(update.error)
        assert update.gpu_time_source == "server"
        await wait_ready(failing)  # the sync run's slot frees just after its answer
        req = request(http_recorder, prompt="boom")  # async: the failed completed hook
        (*_, last) = await hooks_until_done(
            http_recorder, (await failing.submit(req)).provider_job_id
        )
        hooked = await failing.parse_webhook(last.headers, last.body)
        assert hooked.state is RunState.FAILED and isinstance(hooked.error, ProviderFailed)
        with pytest.raises(ProviderInvalidInput, match="sleep_s"):
            await invalid.submit(request())
    finally:
        await failing.aclose()
        await invalid.aclose()


@pytest.mark.servers
async def test_health_states_and_unreachable_server(cog_servers: CogServers) -> None:
    server = cog_servers.get(slots=2)
    provider = provider_for(server, sleep_s=1.0)
    try:
        await wait_ready(provider)
        runs = [request(), request()]
        tasks = [asyncio.create_task(provider.submit(r)) for r in runs]
        async with asyncio.timeout(5):
            while (state := await provider.health()) != "BUSY":  # both slots taken
                assert state in HEALTH_STATES
                await asyncio.sleep(0.02)
        updates = await asyncio.gather(*tasks)
        assert [u.state for u in updates] == [RunState.SUCCEEDED] * 2
    finally:
        await provider.aclose()
    gone = CogProvider(NAME, "http://127.0.0.1:9", secret=SECRET)
    try:
        with pytest.raises(ProviderUnavailable):
            await gone.health()
        with pytest.raises(ProviderUnavailable):
            await gone.submit(request())
    finally:
        await gone.aclose()


async def test_a_put_whose_answer_is_lost_is_ambiguous(http_recorder: HttpRecorder) -> None:
    """A PUT creates the run on cog: a read timeout after sending it may have started one, so the
    retry policy must not treat it as refused (and fail over, running it twice)."""

    hung_up = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)  # the request, then silence until the client hangs up
        await reader.read()
        writer.close()
        await writer.wait_closed()
        hung_up.set()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    cog = CogProvider(NAME, f"http://127.0.0.1:{port}", secret=SECRET, timeout=httpx.Timeout(0.3))
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            await cog.submit(request(http_recorder))
        assert caught.value.extra.get("ambiguous") is True
    finally:
        await cog.aclose()
        await asyncio.wait_for(hung_up.wait(), 5)
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("busy_answers", [2, 10])
async def test_a_409_is_asked_again_briefly_then_is_rate_limited(busy_answers: int) -> None:
    """coglet frees a slot just after it answers: a 409 in that instant must not cost a job the
    1 s retry (nor an attempt); one that stays is ProviderRateLimited."""
    pid_seen: list[str] = []

    def answer(req: RecordedRequest) -> Answer:
        pid_seen.append(req.json()["id"])
        if len(pid_seen) <= busy_answers:
            return Answer(409)
        snapshot = {"id": pid_seen[-1], "status": "starting", "input": {}, "output": None}
        return Answer(202, {"content-type": "application/json"}, json.dumps(snapshot).encode())

    with HttpRecorder(answer) as server, HttpRecorder() as hooks:
        cog = CogProvider(NAME, server.url().rstrip("/"), secret=SECRET)
        try:
            if busy_answers > len(BUSY_REASK_S):
                with pytest.raises(ProviderRateLimited):
                    await cog.submit(request(hooks))
            else:
                update = await cog.submit(request(hooks))
                assert update.state is RunState.PENDING
                assert update.provider_job_id == pid_seen[-1]
        finally:
            await cog.aclose()
    assert len(pid_seen) == min(busy_answers + 1, len(BUSY_REASK_S) + 1)
    assert len(set(pid_seen)) == 1  # the same attempt id each time: one run at most


# --- translation and registration (no server) ---------------------------------------------------


def test_input_mapping_and_backend_inputs_override() -> None:
    req = canon(prompt="p", seed=5, negative_prompt="blurry", steps=4, guidance=3.5)
    assert cog_input(req, {"go_fast": True, "num_outputs": 1, "seed": 9}) == {
        "prompt": "p",
        "seed": 9,
        "width": req.width,
        "height": req.height,
        "num_outputs": 1,
        "negative_prompt": "blurry",
        "num_inference_steps": 4,
        "guidance_scale": 3.5,
        "go_fast": True,
    }


def test_uploaded_outputs_are_urls_and_wall_time_is_the_fallback() -> None:
    pred = {"id": "x", "status": "succeeded", "output": "https://files.example/a.png"}
    update = prediction_update(NAME, pred, wall_s=1.25)
    assert update.outputs == (Output(url="https://files.example/a.png"),)
    assert (update.gpu_seconds, update.gpu_time_source) == (1.25, "wall")
    listed = prediction_update(NAME, {**pred, "output": ["https://f/1.png", "https://f/2.png"]})
    # one image is asked for: an iterator predictor's frames before its last output were
    # previews, the last one is the image
    assert [o.url for o in listed.outputs] == ["https://f/2.png"]
    assert (listed.gpu_seconds, listed.gpu_time_source) == (None, None)
    empty = prediction_update(NAME, {"id": "x", "status": "succeeded", "output": []})
    assert empty.state is RunState.FAILED
    crashed = prediction_update(NAME, {"id": "x", "status": "failed", "error": "Worker crashed"})
    assert isinstance(crashed.error, ProviderUnavailable)  # the server, not the request


def test_registration_builds_one_provider_per_backend_and_nothing_from_env() -> None:
    assert REGISTRATION.build_provider(BuildContext(SETTINGS)) is None
    assert REGISTRATION.backend is not None
    built = REGISTRATION.backend(backend("http://10.0.0.5:5000", slots=4), BuildContext(SETTINGS))
    assert (built.name, built.supports_webhooks) == (NAME, True)
    assert isinstance(built, CogProvider) and built.slots == 4
    bad = Backend(name=NAME, kind="cog", url="http://x", options={"input": 3}, source="c.toml:4")
    with pytest.raises(Exception, match=r"c.toml:4.*options.input must be a table"):
        REGISTRATION.backend(bad, BuildContext(SETTINGS))


async def test_errors_name_the_backend_and_where_the_catalog_defines_it() -> None:
    """Like the other kinds (``Backend.identity()``): a refused key (a proxy in front of cog)
    and a bad URL name the backend's catalog line, not an environment variable."""
    assert REGISTRATION.backend is not None
    ctx = BuildContext(SETTINGS)
    with HttpRecorder(lambda _: Answer(401, body=b"Unauthorized")) as proxy:
        at = Backend(NAME, "cog", proxy.url(), api_key="sk-wrong-0123", source="catalog.toml:3")
        cog = REGISTRATION.backend(at, ctx)
        try:
            with pytest.raises(ProviderAuthError) as caught:
                await cog.submit(request())
        finally:
            await cog.aclose()
    assert "api key of backend 'gpu_a' (catalog.toml:3)" in str(caught.value)
    assert "sk-wrong-0123" not in str(caught.value)
    bad_url = REGISTRATION.backend(Backend(NAME, "cog", "ftp://x", source="catalog.toml:3"), ctx)
    try:
        with pytest.raises(ConfigError, match=r"the url of backend 'gpu_a' \(catalog.toml:3\)"):
            await bad_url.submit(request())
    finally:
        await bad_url.aclose()


def test_a_backend_with_webhooks_false_is_called_synchronously() -> None:
    assert REGISTRATION.backend is not None
    ctx = BuildContext(SETTINGS)
    off = Backend(name=NAME, kind="cog", url="http://x", options={"webhooks": False})
    assert REGISTRATION.backend(off, ctx).supports_webhooks is False  # no webhook URL: sync
    bad = Backend(name=NAME, kind="cog", url="http://x", options={"webhooks": "no"}, source="c:2")
    with pytest.raises(Exception, match=r"c:2.*options.webhooks must be true or false"):
        REGISTRATION.backend(bad, ctx)


def test_each_logs_event_is_a_new_delivery_and_a_redelivery_is_not() -> None:
    """cog's webhooks carry no delivery id: a running prediction's logs only grow, so their
    length tells a new logs event (new progress) from a redelivery of the same one."""
    pid = "job_1.1.tag"
    first = {"id": pid, "status": "processing", "logs": " 25%|#   | 1/4\n"}
    later = {**first, "logs": first["logs"] + " 50%|##  | 2/4\n"}
    a, again, b = (prediction_update(NAME, p) for p in (first, dict(first), later))
    assert a.delivery_id == again.delivery_id != b.delivery_id
    assert (a.progress, b.progress) == (
        {"percent": 25, "step": 1, "steps": 4},
        {"percent": 50, "step": 2, "steps": 4},
    )
    assert prediction_update(NAME, {"id": pid, "status": "processing"}).progress == {}
