"""Delivery.url_for: which URL each mode and backend hands out, and that it stays stable."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pixelpipe.delivery import Delivery
from pixelpipe.errors import DeliveryError
from pixelpipe.settings import Settings
from pixelpipe.storage import MemoryStorage

KEY = "flux-dev/9f/9f00 aa.png"
SECRET = "k" * 40


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SigningStorage(MemoryStorage):
    """A fake that presigns like S3: every call yields a new URL (signing time inside)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    async def presigned_url(self, key: str, *, expires_in: int) -> str | None:
        self.calls.append(expires_in)
        return f"https://bucket.example/{key}?X-Amz-Expires={expires_in}&n={len(self.calls)}"


def make(tmp_path: Path, storage: MemoryStorage | None = None, **kw: Any) -> tuple[Delivery, Clock]:
    clock = Clock(1_800_000_001.0)  # one second after a whole hour
    settings = Settings(data_dir=tmp_path, secret_key=SECRET, **kw)
    return Delivery(storage or MemoryStorage(), settings, clock=clock), clock


async def test_app_signed_url_is_relative_and_verifies(tmp_path: Path) -> None:
    delivery, clock = make(tmp_path)
    url = await delivery.url_for(KEY)
    parts = urlsplit(url)
    assert parts.scheme == "" and parts.path == "/v1/images/flux-dev/9f/9f00%20aa.png"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    delivery.verify(KEY, int(query["exp"]), query["sig"])
    assert int(query["exp"]) >= clock.now + 6 * 86_400
    with pytest.raises(DeliveryError):
        delivery.verify("flux-dev/9f/other.png", int(query["exp"]), query["sig"])


async def test_app_signed_url_is_absolute_with_a_public_url(tmp_path: Path) -> None:
    delivery, _ = make(tmp_path, public_url="https://img.example.com/")
    assert (await delivery.url_for(KEY)).startswith("https://img.example.com/v1/images/flux-dev/")


async def test_same_url_within_the_window_then_a_new_one(tmp_path: Path) -> None:
    delivery, clock = make(tmp_path, signed_url_ttl_s=3600)
    clock.now = 1_800_000_000.0 - 1_800_000_000 % 900 + 1
    first = await delivery.url_for(KEY)
    clock.now += 898
    assert await delivery.url_for(KEY) == first
    clock.now += 2
    assert await delivery.url_for(KEY) != first


async def test_signed_urls_never_outlive_seven_days(tmp_path: Path) -> None:
    storage = SigningStorage()
    delivery, _ = make(tmp_path, storage, signed_url_ttl_s=30 * 86_400)
    await delivery.url_for(KEY)
    assert 6 * 86_400 < storage.calls[0] <= 7 * 86_400


async def test_presigned_url_is_reused_within_the_window(tmp_path: Path) -> None:
    storage = SigningStorage()
    delivery, clock = make(tmp_path, storage)
    first = await delivery.url_for(KEY)
    assert first.startswith("https://bucket.example/")
    clock.now += 60
    assert await delivery.url_for(KEY) == first
    assert len(storage.calls) == 1
    clock.now += 3600
    assert await delivery.url_for(KEY) != first


async def test_public_mode_uses_the_cdn_base_url(tmp_path: Path) -> None:
    delivery, _ = make(tmp_path, delivery="public", delivery_base_url="https://cdn.example/img/")
    assert await delivery.url_for(KEY) == "https://cdn.example/img/flux-dev/9f/9f00%20aa.png"


async def test_public_mode_without_cdn_uses_the_app_route(tmp_path: Path) -> None:
    delivery, _ = make(tmp_path, delivery="public")
    assert await delivery.url_for(KEY) == "/i/flux-dev/9f/9f00%20aa.png"
    absolute, _ = make(tmp_path, delivery="public", public_url="http://127.0.0.1:8000")
    assert await absolute.url_for(KEY) == "http://127.0.0.1:8000/i/flux-dev/9f/9f00%20aa.png"


async def test_public_and_presigned_delivery_never_create_a_secret_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, delivery="public")
    await Delivery(MemoryStorage(), settings).url_for(KEY)
    await Delivery(SigningStorage(), Settings(data_dir=tmp_path)).url_for(KEY)
    assert not (tmp_path / "secret.key").exists()
