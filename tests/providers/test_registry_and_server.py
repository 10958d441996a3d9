"""build_providers() from settings, and the combined fakes server it is pointed at."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pixelpipe.errors import ConfigError
from pixelpipe.fakes.server import FakeProviders, fake_env, serve_app
from pixelpipe.providers.base import Provider, RunState
from pixelpipe.providers.registration import check_base_url
from pixelpipe.providers.registry import build_providers
from pixelpipe.settings import Settings

from .conftest import preq


def settings(**kw: object) -> Settings:
    return Settings(_env_file=None, **kw)  # type: ignore[call-arg]


async def test_only_providers_with_credentials_are_built(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("REPLICATE_API_TOKEN", "FAL_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert list(build_providers(settings())) == ["preview"]  # it needs no credential
    made: list[str] = []

    def factory(name: str) -> httpx.AsyncClient:
        made.append(name)
        return httpx.AsyncClient()

    providers = build_providers(settings(FAL_KEY="k", OPENAI_API_KEY="sk"), factory)
    try:
        assert sorted(providers) == ["fal", "openai", "preview"]
        assert sorted(made) == ["fal", "openai"]
        assert all(isinstance(p, Provider) for p in providers.values())
    finally:
        await asyncio.gather(*(p.aclose() for p in providers.values()))


@pytest.mark.parametrize(
    ("url", "test_mode", "ok"),
    [
        ("https://api.replicate.com", False, True),
        ("http://127.0.0.1:9100/replicate", False, True),
        ("http://localhost:9100", False, True),
        ("http://fakes.internal:9100", False, False),
        ("http://fakes.internal:9100", True, True),
        ("ftp://x", True, False),
    ],
)
def test_plain_http_base_urls_need_loopback_or_test_mode(
    url: str, test_mode: bool, ok: bool
) -> None:
    if ok:
        assert check_base_url(url, "PIXELPIPE_X", test_mode=test_mode) == url
    else:
        with pytest.raises(ConfigError, match="PIXELPIPE_X"):
            check_base_url(url, "PIXELPIPE_X", test_mode=test_mode)


async def test_registry_providers_run_against_the_combined_fakes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The documented variables are all a user sets to run every hosted provider offline."""
    fakes = FakeProviders(latency_s=0.2)
    async with serve_app(fakes.app) as base:
        for name, value in fake_env(base).items():
            monkeypatch.setenv(name, value)
        providers = build_providers(settings())
        try:
            assert sorted(providers) == ["fal", "openai", "preview", "replicate"]
            for name, model in [
                ("replicate", "flux-schnell"),
                ("fal", "flux-schnell"),
                ("openai", "gpt-image-1"),
            ]:
                req = preq(name, model=model)
                upd = await providers[name].submit(req)
                for _ in range(100):
                    if upd.state.terminal:
                        break
                    await asyncio.sleep(0.05)
                    upd = await providers[name].poll(upd.provider_job_id, req)
                assert upd.state is RunState.SUCCEEDED, (name, upd.error)
        finally:
            await asyncio.gather(*(p.aclose() for p in providers.values()))
        async with httpx.AsyncClient() as c:
            index = (await c.get(base + "/")).json()
            assert index["env"]["PIXELPIPE_FAL_QUEUE_URL"] == f"{base}/fal"
            stats = (await c.get(base + "/replicate/_stats")).json()
            assert stats["creates"] == {"black-forest-labs/flux-schnell": 1}
            bad = await c.post(base + "/fal/_control", json={"no_such_behaviour": 1})
            assert bad.status_code == 400 and "unknown behaviour" in bad.json()["detail"]
            reset = await c.post(
                base + "/replicate/_control", json={"reset": True, "latency_s": 0.1}
            )
            assert reset.json()["latency_s"] == 0.1
            assert (await c.get(base + "/replicate/_stats")).json()["creates_total"] == 0
