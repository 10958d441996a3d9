"""bootstrap picks backends by URL only; a wrong URL is refused at start-up with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.errors import ConfigError
from pixelpipe.events.local import LocalNotifier
from pixelpipe.providers.gate import ProviderGate
from pixelpipe.queue.local import LocalQueue
from pixelpipe.queue.saq import libpq_url
from pixelpipe.settings import Settings


def _settings(tmp_path: Path, **kw: str) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path, storage_url="memory://", **kw)  # type: ignore[call-arg]


async def test_empty_urls_mean_the_embedded_backends(tmp_path: Path) -> None:
    svc = await build_services(_settings(tmp_path))
    try:
        assert isinstance(svc.queue, LocalQueue)
        assert isinstance(svc.notifier, LocalNotifier)
        assert isinstance(svc.gate, ProviderGate) and svc.gate.backend is None
    finally:
        await svc.aclose()


@pytest.mark.parametrize(
    ("field", "url", "hint"),
    [
        ("queue_url", "redis://127.0.0.1:6379/0", "PostgreSQL URL"),
        ("queue_url", "amqp://x", "PostgreSQL URL"),
        ("redis_url", "http://127.0.0.1:6379", "redis://host:6379/0"),
    ],
)
async def test_a_wrong_scheme_is_refused_with_the_fix(
    tmp_path: Path, field: str, url: str, hint: str
) -> None:
    with pytest.raises(ConfigError, match=hint):
        await build_services(_settings(tmp_path, **{field: url}))


def test_queue_urls_are_normalised_for_psycopg() -> None:
    for url in (
        "postgresql+psycopg://u:p@h:5432/db",
        "postgres://u:p@h:5432/db",
        "postgresql://u:p@h:5432/db",
    ):
        assert libpq_url(url) == "postgresql://u:p@h:5432/db"
