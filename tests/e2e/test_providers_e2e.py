"""Hosted providers end to end: ``pixelpipe serve`` in a subprocess talking to the fake providers.

One fake server (in a background thread of this process, so the tests can sign webhooks with the
fakes' own keys) and two serve processes are shared by the whole module:

* ``hooked`` has ``PIXELPIPE_PUBLIC_URL`` set: Replicate and fal get a webhook URL and the fakes POST
  signed completions to it; a 2 s webhook deadline and a 0.5 s sweep make lost webhooks cheap to see;
* ``polled`` has no public URL: every run is followed by polling.

Between tests the fakes are reset. Each test pins the provider it means (``"provider": …``) so a
pause or outage mark left by an earlier test cannot move it elsewhere, and uses a fresh prompt so
the content-addressed cache never answers instead of the provider.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from pixelpipe.fakes.server import FakeProviders, fake_env, serve_app
from pixelpipe.providers.signing import fal_sign, standard_signature
from tests.support.serve import Server, free_port

pytestmark = pytest.mark.slow

LATENCY_S = 0.3
WEBHOOK_DEADLINE_S = 2.0
STARTUP_S = 120.0  # migrations + imports on a busy 2-core machine
FAKES = ("replicate", "fal", "openai")
FLUX = ("replicate", "fal")


# --- the shared fakes and servers ------------------------------------------------------------


class FakesThread:
    """The three fakes, served by uvicorn on an event loop of their own in a daemon thread."""

    def __init__(self) -> None:
        self.fakes = FakeProviders(latency_s=LATENCY_S)
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-providers", daemon=True)

    def __enter__(self) -> FakesThread:
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("fake providers did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with serve_app(self.fakes.app) as url:
            self.url = url
            self._ready.set()
            await self._stop.wait()

    # -- control API (over HTTP, as a user of `pixelpipe fake-providers` would) --
    def control(self, fake: str, **changes: Any) -> None:
        r = httpx.post(f"{self.url}/{fake}/_control", json=changes, timeout=5)
        assert r.status_code == 200, r.text

    def stats(self, fake: str) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/{fake}/_stats", timeout=5).json()
        return data


@pytest.fixture(scope="module")
def fakes() -> Iterator[FakesThread]:
    with FakesThread() as f:
        yield f


def _serve(data: Path, fakes: FakesThread, *, public: bool) -> Server:
    port = free_port()
    env = {**fake_env(fakes.url), "PIXELPIPE_SWEEP_INTERVAL_S": "0.5"}
    if public:
        env["PIXELPIPE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        env["PIXELPIPE_WEBHOOK_DEADLINE_S"] = str(WEBHOOK_DEADLINE_S)
    return Server(data, env, port=port)


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory, fakes: FakesThread) -> Iterator[Server]:
    srv = _serve(tmp_path_factory.mktemp("hooked"), fakes, public=True)
    try:
        yield srv.start(timeout_s=STARTUP_S)
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory, fakes: FakesThread) -> Iterator[Server]:
    srv = _serve(tmp_path_factory.mktemp("polled"), fakes, public=False)
    try:
        yield srv.start(timeout_s=STARTUP_S)
    finally:
        srv.stop()


@pytest.fixture(autouse=True)
def _reset(fakes: FakesThread) -> None:
    for name in FAKES:
        fakes.control(name, reset=True)


# --- helpers -----------------------------------------------------------------------------------


def submit(srv: Server, **body: Any) -> dict[str, Any]:
    body.setdefault("prompt", f"a lighthouse {secrets.token_hex(6)}")
    body.setdefault("seed", secrets.randbelow(10**6))
    r = httpx.post(f"{srv.url}/v1/generations", json=body, timeout=10)
    assert r.status_code == 202, r.text
    job: dict[str, Any] = r.json()
    return job


def follow(srv: Server, job_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    """The job's SSE stream read to its end (the terminal status event)."""
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    with httpx.stream("GET", f"{srv.url}/v1/generations/{job_id}/events", timeout=timeout) as r:
        assert r.status_code == 200
        cur: dict[str, Any] = {}
        for line in r.iter_lines():
            assert time.monotonic() < deadline, f"job {job_id} not finished: {events[-3:]}"
            if line.startswith("event:"):
                cur["event"] = line[6:].strip()
            elif line.startswith("data:"):
                cur["data"] = json.loads(line[5:].strip())
            elif not line and cur:
                cur["at"] = time.monotonic()
                events.append(cur)
                cur = {}
    return events


def finish(srv: Server, job_id: str, timeout: float = 30) -> tuple[dict[str, Any], list[dict]]:
    events = follow(srv, job_id, timeout)
    job = httpx.get(f"{srv.url}/v1/generations/{job_id}", timeout=5).json()
    return job, events


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["data"] for e in events if e.get("event") == kind]


def retries(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return of_type(events, "retry")


def get_job(srv: Server, job_id: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{srv.url}/v1/generations/{job_id}", timeout=5).json()
    return data


def wait_for(srv: Server, job_id: str, status: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_job(srv, job_id)
        if job["status"] == status:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {status}: {job}")


def db_rows(srv: Server, sql: str, *args: Any) -> list[sqlite3.Row]:
    con = sqlite3.connect(srv.data_dir / "pixelpipe.db", timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return list(con.execute(sql, args))
    finally:
        con.close()


def ledger(srv: Server, job_id: str) -> list[sqlite3.Row]:
    return db_rows(srv, "SELECT * FROM ledger_entries WHERE job_id = ?", job_id)


def provider_job_id(srv: Server, job_id: str) -> str:
    rows = db_rows(srv, "SELECT provider_job_id FROM jobs WHERE id = ?", job_id)
    return str(rows[0]["provider_job_id"] or "")


def model_for(provider: str) -> str:
    return "gpt-image-1" if provider == "openai" else "flux-dev"


# --- success -----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", FLUX)
def test_success_by_webhook(hooked: Server, fakes: FakesThread, provider: str) -> None:
    job = submit(hooked, model="flux-dev", provider=provider, aspect_ratio="1:1")
    done, events = finish(hooked, job["id"])
    assert done["status"] == "succeeded", done
    assert done["provider"] == provider and done["attempt"] == 1
    assert done["image"]["width"] == 1024 and done["image"]["content_type"] == "image/webp"
    assert done["cost"] == {
        "usd": "0.025",
        "micros": 25_000,
        "status": "priced",
        "estimate_usd": "0.025",
    }
    assert not of_type(events, "sweeper"), "completed by the sweeper, not by the webhook"
    stats = fakes.stats(provider)
    assert stats["webhooks"].get("delivered") == 1
    polls = stats["calls"].get("get" if provider == "replicate" else "status", 0)
    assert polls == 0, stats
    [entry] = ledger(hooked, job["id"])
    assert entry["amount_micros"] == 25_000 and entry["provider"] == provider
    url = done["image"]["url"]
    img = httpx.get(url if url.startswith("http") else hooked.url + url, timeout=10)
    assert img.status_code == 200 and img.headers["content-type"] == "image/webp"


@pytest.mark.parametrize("provider", FLUX)
def test_success_by_polling_with_progress(
    polled: Server, fakes: FakesThread, provider: str
) -> None:
    fakes.control(provider, latency_s=1.6)
    job = submit(polled, model="flux-dev", provider=provider, aspect_ratio="1:1")
    done, events = finish(polled, job["id"])
    assert done["status"] == "succeeded", done
    assert done["provider"] == provider
    stats = fakes.stats(provider)
    assert stats["webhooks"] == {} and stats["creates_total"] == 1
    progress = of_type(events, "progress")
    assert progress, events
    if provider == "replicate":
        assert any(0 < p.get("percent", 0) < 100 for p in progress), progress
    else:
        assert any("queue_position" in p for p in progress), progress
        assert any("Generating" in " ".join(p.get("logs", [])) for p in progress), progress
    assert len(ledger(polled, job["id"])) == 1


# --- lost, duplicate, forged webhooks ----------------------------------------------------------


@pytest.mark.parametrize("provider", FLUX)
def test_lost_webhook_is_completed_by_the_sweeper(
    hooked: Server, fakes: FakesThread, provider: str
) -> None:
    fakes.control(provider, lose_webhook_next=1)
    job = submit(hooked, model="flux-dev", provider=provider)
    done, events = finish(hooked, job["id"])
    assert done["status"] == "succeeded", done
    assert of_type(events, "sweeper"), events
    assert done["timings"]["duration_s"] >= WEBHOOK_DEADLINE_S
    assert fakes.stats(provider)["webhooks"]["lost"] == 1
    assert len(ledger(hooked, job["id"])) == 1


@pytest.mark.parametrize("provider", FLUX)
def test_duplicate_and_out_of_order_webhooks_store_and_bill_once(
    hooked: Server, fakes: FakesThread, provider: str
) -> None:
    fakes.control(provider, duplicate_webhooks=True, out_of_order_webhooks=True)
    job = submit(hooked, model="flux-dev", provider=provider)
    done, events = finish(hooked, job["id"])
    assert done["status"] == "succeeded", done
    time.sleep(0.5)  # let the duplicate (and the stale replicate update) arrive
    stats = fakes.stats(provider)
    assert stats["webhooks"]["duplicates"] == 1
    assert stats["webhooks"]["delivered"] >= 2, stats
    assert get_job(hooked, job["id"])["status"] == "succeeded"
    assert len(ledger(hooked, job["id"])) == 1
    assert len(db_rows(hooked, "SELECT * FROM images WHERE job_id = ?", job["id"])) == 1
    statuses = [e["status"] for e in of_type(events, "status")]
    assert statuses.count("succeeded") == 1 and statuses.count("fetching") == 1, statuses


def _replicate_delivery(
    fakes: FakesThread, body: bytes, *, msg_id: str, skew: float = 0.0
) -> dict[str, str]:
    ts = int(time.time() + skew)
    sig = standard_signature(fakes.fakes.replicate.webhook_secret, msg_id, ts, body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def _fal_delivery(
    key: Ed25519PrivateKey, request_id: str, body: bytes, skew: float = 0.0
) -> dict[str, str]:
    ts = int(time.time() + skew)
    return {
        "X-Fal-Webhook-Request-Id": request_id,
        "X-Fal-Webhook-User-Id": "fake-user",
        "X-Fal-Webhook-Timestamp": str(ts),
        "X-Fal-Webhook-Signature": fal_sign(key, request_id, "fake-user", ts, body),
    }


def _forgeries(fakes: FakesThread, provider: str, run_id: str) -> list[tuple[str, bytes, dict]]:
    """(what, body, headers): forged, tampered and replayed "succeeded" deliveries for run_id."""
    if provider == "replicate":
        pred = {"id": run_id, "status": "succeeded", "output": ["http://127.0.0.1:1/evil.png"]}
        body = json.dumps(pred).encode()
        fake_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        ts = int(time.time())
        forged = {
            "webhook-id": "msg_forged",
            "webhook-timestamp": str(ts),
            "webhook-signature": standard_signature(fake_secret, "msg_forged", ts, body),
        }
        signed = _replicate_delivery(fakes, body, msg_id="msg_tampered")
        tampered = body.replace(b"evil", b"eviler")
        replayed = _replicate_delivery(fakes, body, msg_id="msg_replayed", skew=-600)
    else:
        images = [{"url": "http://127.0.0.1:1/evil.png", "width": 8, "height": 8}]
        payload = {"images": images, "has_nsfw_concepts": [False]}
        body = json.dumps({"request_id": run_id, "status": "OK", "payload": payload}).encode()
        real_key = fakes.fakes.fal.signing_keys[0]
        forged = _fal_delivery(Ed25519PrivateKey.generate(), run_id, body)
        signed = _fal_delivery(real_key, run_id, body)
        tampered = body.replace(b"evil", b"eviler")
        replayed = _fal_delivery(real_key, run_id, body, skew=-600)
    return [
        ("unsigned", body, {}),
        ("forged", body, forged),
        ("tampered", tampered, signed),
        ("replayed", body, replayed),
    ]


@pytest.mark.parametrize("provider", FLUX)
def test_forged_tampered_replayed_webhooks_get_401_and_change_nothing(
    hooked: Server, fakes: FakesThread, provider: str
) -> None:
    fakes.control(provider, latency_s=30.0)
    job = submit(hooked, model="flux-dev", provider=provider)
    wait_for(hooked, job["id"], "waiting")
    run_id = provider_job_id(hooked, job["id"])
    assert run_id
    before = get_job(hooked, job["id"])
    url = f"{hooked.url}/v1/webhooks/{provider}"
    for what, body, headers in _forgeries(fakes, provider, run_id):
        r = httpx.post(url, content=body, headers=headers, timeout=5)
        assert r.status_code == 401, (what, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    after = get_job(hooked, job["id"])
    assert after["status"] == "waiting" and after["attempt"] == before["attempt"]
    # only the attempt in flight (pending since before its create call), nothing billed
    assert [(e["state"], e["provider_job_id"]) for e in ledger(hooked, job["id"])] == [
        ("pending", "")
    ]
    deliveries = db_rows(hooked, "SELECT * FROM webhook_deliveries WHERE job_id = ?", job["id"])
    assert deliveries == []
    canceled = httpx.post(f"{hooked.url}/v1/generations/{job['id']}/cancel", timeout=5)
    assert canceled.json()["status"] == "canceled"
    # canceled mid-run: the provider may bill what ran, so the attempt stays — unconfirmed, or
    # settled once the provider's webhook of the canceled run has come in (it races this read):
    # a canceled prediction with no output is not charged, so settled at $0
    entries = [(e["state"], e["amount_micros"]) for e in ledger(hooked, job["id"])]
    assert entries in ([("unconfirmed", entries[0][1])], [("billed", 0)]), entries


# --- rate limits, outages, failover ------------------------------------------------------------


@pytest.mark.parametrize("provider", FAKES)
def test_rate_limit_storm_backs_off_honouring_retry_after(
    polled: Server, fakes: FakesThread, provider: str
) -> None:
    """Every provider of the model answers 429 (Retry-After: 1) to two calls; the job waits."""
    for name in FAKES:
        fakes.control(name, rate_limit_next=2, retry_after="1")
    started = time.monotonic()
    job = submit(polled, model=model_for(provider), provider=provider)
    done, events = finish(polled, job["id"])
    assert done["status"] == "succeeded", done
    # the 429s' retries (a loaded machine may add a retried fetch of the image: not a 429's)
    waited = [r for r in retries(events) if r["error"]["code"] == "provider_rate_limited"]
    assert waited, events
    assert all(r["retry_in_s"] >= 1.0 for r in waited if not r.get("failover")), waited
    assert time.monotonic() - started >= 1.0
    assert done["attempt"] == 1  # a 429 runs nothing: it spends no attempt
    assert len(ledger(polled, job["id"])) == 1


@pytest.mark.parametrize("provider", FLUX)
def test_rate_limited_poll_keeps_the_run(polled: Server, fakes: FakesThread, provider: str) -> None:
    """A 429 while polling waits and polls again: it never starts (and pays for) a second run."""
    fakes.control(provider, latency_s=2.0)
    job = submit(polled, model="flux-dev", provider=provider)
    wait_for(polled, job["id"], "waiting")
    fakes.control(provider, rate_limit_next=2, retry_after="1")
    done, events = finish(polled, job["id"])
    assert done["status"] == "succeeded", done
    assert fakes.stats(provider)["creates_total"] == 1
    assert done["attempt"] == 1 and done["provider"] == provider
    waited = [r for r in retries(events) if r.get("polling")]
    assert waited and all(r["retry_in_s"] >= 1.0 for r in waited), events
    assert len(ledger(polled, job["id"])) == 1


@pytest.mark.parametrize(("down", "up"), [("replicate", "fal"), ("fal", "replicate")])
def test_5xx_on_one_provider_fails_over_to_the_other(
    polled: Server, fakes: FakesThread, down: str, up: str
) -> None:
    fakes.control(down, error_next=5, error_status=503)
    job = submit(polled, model="flux-schnell", provider=down)
    done, events = finish(polled, job["id"])
    assert done["status"] == "succeeded", done
    assert done["provider"] == up
    [retry] = retries(events)
    assert retry["failover"] == {"from": down, "to": up}
    assert retry["error"]["code"] == "provider_unavailable"
    [entry] = ledger(polled, job["id"])
    assert entry["provider"] == up
    assert fakes.stats(down)["creates_total"] == 0  # the 503 was answered before any run


def test_5xx_on_a_single_provider_model_retries_it(polled: Server, fakes: FakesThread) -> None:
    fakes.control("openai", error_next=1, error_status=500)
    job = submit(polled, model="gpt-image-1", quality="low")
    done, events = finish(polled, job["id"])
    assert done["status"] == "succeeded", done
    assert done["attempt"] == 2
    [retry] = retries(events)
    assert retry["error"]["code"] == "provider_unavailable" and "failover" not in retry


def test_unreadable_create_answer_leaves_the_attempt_unconfirmed(
    polled: Server, fakes: FakesThread
) -> None:
    """A 200 whose body is not a prediction: the create may have started a billed run, so the
    attempt stays in the ledger (unconfirmed, at the estimate) beside the one that succeeded."""
    fakes.control("openai", garbage_next=1)
    job = submit(polled, model="dall-e-3")
    done, _ = finish(polled, job["id"])
    assert done["status"] == "succeeded" and done["attempt"] == 2, done
    rows = ledger(polled, job["id"])
    assert [(r["attempt"], r["state"]) for r in rows] == [(1, "unconfirmed"), (2, "billed")]
    assert rows[0]["amount_micros"] == rows[1]["amount_micros"] == 40_000


# --- refusals and bad outputs ------------------------------------------------------------------


@pytest.mark.parametrize("provider", FAKES)
@pytest.mark.parametrize("marker", ["[blocked]", "[nsfw]"])
def test_content_policy_failure_is_the_friendly_error(
    hooked: Server, fakes: FakesThread, provider: str, marker: str
) -> None:
    prompt = f"a portrait {secrets.token_hex(4)} {marker}"
    job = submit(hooked, model=model_for(provider), provider=provider, prompt=prompt)
    done, events = finish(hooked, job["id"])
    assert done["status"] == "failed", done
    if marker == "[nsfw]" and provider in FLUX:  # the run made an image its NSFW filter blocked
        assert done["error"]["code"] == "output_blocked"
        assert done["error"]["title"] == "Image blocked by output moderation"
        if provider == "fal":  # fal bills the run: paid and blocked, at its price, never $0
            [entry] = ledger(hooked, job["id"])
            assert (entry["state"], entry["outcome"]) == ("billed", "blocked")
            assert entry["amount_micros"] and entry["amount_micros"] > 0
        else:  # a failed Replicate prediction (no output) is not billed
            assert ledger(hooked, job["id"]) == []
    else:
        assert done["error"]["code"] == "provider_rejected"
        assert done["error"]["title"] == "Prompt rejected by the provider's content policy"
    assert done["attempt"] == 1 and not retries(events)
    assert done["image"] is None
    listed = httpx.get(f"{hooked.url}/v1/generations", params={"status": "failed"}, timeout=5)
    assert job["id"] in {j["id"] for j in listed.json()["data"]}


@pytest.mark.parametrize("provider", FLUX)
def test_expired_output_url_fails_with_a_clear_reason(
    hooked: Server, fakes: FakesThread, provider: str
) -> None:
    fakes.control(provider, output_ttl_s=0.0, expired_status=410)
    job = submit(hooked, model="flux-dev", provider=provider)
    done, events = finish(hooked, job["id"])
    assert done["status"] == "failed", done
    assert done["error"]["code"] == "output_fetch_failed"
    assert "expired" in done["error"]["detail"]
    assert done["image"] is None and not retries(events)
    assert db_rows(hooked, "SELECT * FROM images WHERE job_id = ?", job["id"]) == []
    assert len(ledger(hooked, job["id"])) == 1  # the provider ran (and billed) the model


# --- OpenAI specifics --------------------------------------------------------------------------


def test_dall_e_3_revised_prompt_is_kept(polled: Server) -> None:
    prompt = f"a red fox {secrets.token_hex(4)}"
    job = submit(polled, model="dall-e-3", prompt=prompt)
    done, _ = finish(polled, job["id"])
    assert done["status"] == "succeeded", done
    assert done["revised_prompt"] == f"A detailed, high-quality image of {prompt}"
    assert done["cost"]["usd"] == "0.04"


def test_gpt_image_1_token_usage_is_priced(polled: Server) -> None:
    prompt = f"three words {secrets.token_hex(4)}"  # 3 text tokens in the fake's count
    job = submit(polled, model="gpt-image-1", quality="medium", prompt=prompt)
    done, _ = finish(polled, job["id"])
    assert done["status"] == "succeeded", done
    # 3 text tokens at $5/M + 1056 image output tokens at $40/M (the fake's medium 1024x1024)
    expected = 3 * 5 + 1056 * 40
    assert done["cost"]["micros"] == expected and done["cost"]["status"] == "priced"
    [entry] = ledger(polled, job["id"])
    assert entry["amount_micros"] == expected
    assert json.loads(entry["detail"])["usage"]["output_tokens"] == 1056


@pytest.mark.parametrize("provider", FLUX)
def test_flux_dev_image_to_image_runs_on_each_host_and_is_priced_once(
    polled: Server, fakes: FakesThread, provider: str
) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (600, 400), (40, 90, 200)).save(buf, "PNG")
    upload = httpx.post(
        f"{polled.url}/v1/uploads", files={"file": ("in.png", buf.getvalue(), "image/png")}
    ).json()
    prompt = f"the same scene at dusk {secrets.token_hex(4)}"
    job = submit(
        polled,
        model="flux-dev",
        provider=provider,
        prompt=prompt,
        images=[upload["id"]],
        strength=0.5,
    )
    done, _ = finish(polled, job["id"])
    assert done["status"] == "succeeded", done
    assert done["request"]["images"] == [upload["digest"]] and done["request"]["strength"] == 0.5
    assert [i["role"] for i in done["inputs"]] == ["image"]
    # each host draws at the input's shape: Replicate at FLUX's 3:2 size, fal at its size
    expected_size = (1216, 832) if provider == "replicate" else (592, 400)
    assert (done["image"]["width"], done["image"]["height"]) == expected_size
    micros = 25_000 if provider == "replicate" else 30_000  # fal's image-to-image rate, 1 MP
    [entry] = ledger(polled, job["id"])
    assert entry["amount_micros"] == micros and done["cost"]["micros"] == micros
