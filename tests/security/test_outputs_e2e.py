"""Hostile provider outputs, end to end: a fake provider answers "succeeded" with an output URL that
points inside our network, or with bytes that are not a sane image. The whole pipeline runs (HTTP
API → service → worker → provider client → fetch guard → verifier); the job must fail with a clear
error, nothing may be fetched from the forbidden address and nothing may be stored.

SSRF runs use the production fetch policy (``PIXELPIPE_TEST_MODE`` off: https only, no loopback or
private addresses) with the host allowlist lifted (``PIXELPIPE_OUTPUT_HOSTS=*``) so that what
refuses each URL is the address check itself, not the allowlist. A TCP canary on 127.0.0.1 counts
every connection: it must stay at zero. The redirect cases need a first hop that may be fetched,
so they run in test mode (loopback allowed, for the fake's own ``/redirect``), which still refuses
private, link-local and metadata addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pixelpipe.fakes.server import FakeProviders, fake_env, serve_app
from tests.security.conftest import Running, running_app

pytestmark = pytest.mark.slow


class Canary:
    """A TCP listener that only counts connections (any protocol, TLS included)."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()


@contextlib.asynccontextmanager
async def canary() -> AsyncIterator[Canary]:
    c = Canary()
    server = await asyncio.start_server(c._on_connect, "127.0.0.1", 0)
    c.port = server.sockets[0].getsockname()[1]
    async with server:
        yield c


@contextlib.asynccontextmanager
async def pipeline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, test_mode: bool
) -> AsyncIterator[tuple[Running, FakeProviders, str]]:
    fakes = FakeProviders(latency_s=0.05)
    async with serve_app(fakes.app) as url:
        for name, value in fake_env(url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("PIXELPIPE_TEST_MODE", "true" if test_mode else "false")
        monkeypatch.setenv("PIXELPIPE_OUTPUT_HOSTS", "*")
        async with running_app(tmp_path / "data", max_attempts=1) as srv:
            yield srv, fakes, url


async def run_job(srv: Running, **body: Any) -> dict[str, Any]:
    body.setdefault("seed", int(time.time() * 1000) % 100_000)
    async with srv.client() as c:
        r = await c.post("/v1/generations", json=body)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job: dict[str, Any] = (await c.get(f"/v1/generations/{job_id}")).json()
            if job["status"] in ("succeeded", "failed", "canceled"):
                return job
            await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} not finished")


def stored_files(srv: Running) -> list[Path]:
    root = srv.settings.data_dir / "images"
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


async def test_ssrf_outputs_are_refused_and_nothing_is_fetched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results: dict[str, tuple[str, str]] = {}
    async with (
        canary() as trap,
        pipeline(tmp_path, monkeypatch, test_mode=False) as (srv, fakes, _),
    ):
        p = trap.port
        attacks = {
            "loopback over http": f"http://127.0.0.1:{p}/a.png",
            "loopback over https": f"https://127.0.0.1:{p}/a.png",
            "private 10.x": "https://10.0.0.7/a.png",
            "metadata 169.254.169.254": "https://169.254.169.254/latest/meta-data/iam/",
            "file://": "file:///etc/passwd",
            "name resolving to loopback": f"https://localhost:{p}/a.png",
            "decimal IP resolving to loopback": f"https://2130706433:{p}/a.png",
            "IPv4-mapped IPv6 loopback": f"https://[::ffff:127.0.0.1]:{p}/a.png",
            "IPv6 unique-local": "https://[fd00::1]/a.png",
            "gopher": f"gopher://127.0.0.1:{p}/_INFO",
            "credentials in URL": f"https://user:pw@localhost:{p}/a.png",
        }
        for i, (what, url) in enumerate(attacks.items()):
            fakes.replicate.behaviour.update({"output_url": url})
            job = await run_job(srv, prompt=f"ssrf {i}", model="flux-schnell", provider="replicate")
            results[what] = (job["status"], (job["error"] or {}).get("code", ""))
            assert job["status"] == "failed", (what, job)
            if url.startswith(("file:", "gopher:")):  # refused when the answer is parsed
                assert job["error"]["code"] == "provider_failed", (what, job["error"])
                assert "neither an http(s) URL" in job["error"]["detail"], (what, job["error"])
            else:
                assert job["error"]["code"] == "output_url_refused", (what, job["error"])
                assert "refused to fetch" in job["error"]["detail"], (what, job["error"])
        entries = await srv.svc.ledger.entries()
        assert trap.connections == 0, "the guard connected to a forbidden address"
        assert stored_files(srv) == []
    # a run whose output was fetched-and-refused is billed once; one whose answer could not even
    # be parsed (file://, gopher://) fails as provider_failed, and its attempt stays in the ledger
    # as unconfirmed at the estimate (the provider ran it; see reliability.md)
    blocked = sum(code == "output_url_refused" for _, code in results.values())
    per_job = [e.charge.job_id for e in entries]
    assert len(per_job) == len(set(per_job)) == len(attacks)
    states = sorted(e.charge.state for e in entries)
    assert states == sorted(["billed"] * blocked + ["unconfirmed"] * (len(attacks) - blocked))
    print("\nSSRF (direct):", {k: v[1] for k, v in results.items()}, "canary connections: 0")


async def test_redirects_to_private_addresses_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with pipeline(tmp_path, monkeypatch, test_mode=True) as (srv, fakes, _):
        targets = {
            "private 10.x": "http://10.0.0.7/a.png",
            "metadata": "http://169.254.169.254/latest/meta-data/",
            "mapped metadata": "http://[::ffff:a9fe:a9fe]/latest/meta-data/",
            "IPv6 link-local": "http://[fe80::1]/a.png",
            "file://": "file:///etc/passwd",
        }
        for i, (what, target) in enumerate(targets.items()):
            q = httpx.QueryParams({"to": target})
            fakes.replicate.behaviour.update({"output_url": f"{{base}}/redirect?{q}"})
            before = fakes.replicate.core.stats.calls["redirect"]
            job = await run_job(
                srv, prompt=f"redirect {i}", model="flux-schnell", provider="replicate"
            )
            assert job["status"] == "failed", (what, job)
            assert job["error"]["code"] == "output_url_refused", (what, job["error"])
            assert fakes.replicate.core.stats.calls["redirect"] == before + 1  # first hop followed
        assert stored_files(srv) == []


@pytest.mark.parametrize(
    ("kind", "provider", "model", "says"),
    [
        ("bomb", "replicate", "flux-schnell", "decompression bomb"),
        ("truncated", "fal", "flux-schnell", "corrupt or truncated"),
        ("not_image", "replicate", "flux-schnell", "not a recognised image"),
        ("bomb", "openai", "gpt-image-1", "decompression bomb"),  # inline base64 output
    ],
)
async def test_hostile_images_fail_the_job_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, provider: str, model: str, says: str
) -> None:
    async with pipeline(tmp_path, monkeypatch, test_mode=True) as (srv, fakes, _):
        getattr(fakes, provider).behaviour.update({"output_kind": kind})
        job = await run_job(srv, prompt=f"hostile {kind}", model=model, provider=provider)
        assert job["status"] == "failed", job
        assert job["error"]["code"] == "image_invalid", job["error"]
        assert says in job["error"]["detail"], job["error"]
        assert job["image"] is None and stored_files(srv) == []
        assert len(await srv.svc.ledger.entries(job["id"])) == 1  # the run was paid, once
