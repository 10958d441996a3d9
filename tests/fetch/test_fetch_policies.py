"""Every provider has a fetch policy, or the start stops: a provider without one would have its
URL outputs refused only after its run was paid for."""

from __future__ import annotations

from pathlib import Path

import pytest

from pixelpipe.bootstrap import fetch_policies
from pixelpipe.errors import ConfigError
from pixelpipe.fakes.server import fake_env
from pixelpipe.providers.registry import build_providers
from pixelpipe.settings import Settings


def test_a_provider_without_output_hosts_stops_the_start(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(ConfigError) as err:
        fetch_policies(settings, ["preview", "acme"])
    assert "acme" in err.value.detail and "output_hosts=OutputHosts" in err.value.detail


async def test_every_built_in_provider_has_a_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake_env("http://127.0.0.1:9").items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    built = build_providers(settings)
    try:
        providers = list(built)
        assert {"replicate", "fal", "openai"} <= set(providers)
        assert set(providers) <= set(fetch_policies(settings, providers))
    finally:
        for provider in built.values():
            await provider.aclose()
