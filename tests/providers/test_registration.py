"""One registration per provider: a provider package dropped beside the others is picked up by
every part of the system (build, PIXELPIPE_PROVIDER_ORDER, fetch policy, catalog, prices, the fakes
server, the page's display names) with no edit anywhere else; one without output hosts stops the
start."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import pixelpipe.providers
from pixelpipe.bootstrap import build_services, fetch_policies
from pixelpipe.catalog import load_catalog
from pixelpipe.errors import ConfigError
from pixelpipe.fakes.server import FakeProviders, fake_env, serve_app
from pixelpipe.intake import CanonicalRequest
from pixelpipe.pricing import load_price_table
from pixelpipe.providers.registration import OutputHosts, ProviderRegistration
from pixelpipe.providers.registry import display_names, provider_names, registrations
from pixelpipe.settings import Settings, SettingsSection, load_settings

ACME = """
from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from pixelpipe.providers.preview.client import PreviewProvider
from pixelpipe.providers.registration import (
    BuildContext, FakeSpec, OutputHosts, ProviderRegistration,
)
from pixelpipe.settings import SettingsSection


class AcmeSettings(SettingsSection):
    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_ACME_")

    api_key: SecretStr = SecretStr("")
    base_url: str = "https://api.acme.example"


class AcmeProvider(PreviewProvider):
    name = "acme"


def build(s: AcmeSettings, ctx: BuildContext) -> AcmeProvider | None:
    if not s.api_key.get_secret_value():
        return None
    ctx.base_url(s, "base_url")  # checked like every provider's
    return AcmeProvider()


REGISTRATION = ProviderRegistration(
    name="acme",
    display_name="ACME Images",
    settings=AcmeSettings,
    build=build,
    {output_hosts}
    fake=FakeSpec(
        "pixelpipe.fakes.replicate:FakeReplicate",
        lambda url: {{"PIXELPIPE_ACME_BASE_URL": url, "PIXELPIPE_ACME_API_KEY": "acme-fake"}},
    ),
)
"""
HOSTS = 'output_hosts=OutputHosts(("cdn.acme.example",), test_mode_base_url="base_url"),'

MODELS = """
[models.acme-1]
id = "acme/one"
position = 5
label = "ACME One"
formats = ["png"]
aspect_ratios = { "1:1" = [1024, 1024] }

[models.flux-dev]
id = "acme/flux-dev"
rank = 15
"""

PRICES = """
[versions."2026-01".acme-1]
basis = "per_image"
usd = 0.5

[versions."2026-01".flux-dev]
basis = "per_image"
usd = 0.02
"""


def _drop_in(root: Path, source: str) -> Iterator[None]:
    """Put an ``acme`` provider package on ``pixelpipe.providers``' path; take it away after."""
    package = root / "acme"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(source)
    (package / "models.toml").write_text(MODELS)
    (package / "prices.toml").write_text(PRICES)
    path = pixelpipe.providers.__path__
    path.append(str(root))
    importlib.invalidate_caches()
    try:
        yield
    finally:
        path.remove(str(root))
        sys.modules.pop("pixelpipe.providers.acme", None)


@pytest.fixture
def acme(tmp_path: Path) -> Iterator[None]:
    yield from _drop_in(tmp_path / "pkgs", ACME.format(output_hosts=HOSTS))


@pytest.fixture
def acme_without_hosts(tmp_path: Path) -> Iterator[None]:
    yield from _drop_in(tmp_path / "pkgs", ACME.format(output_hosts="output_hosts=None,"))


def test_the_built_in_providers_are_registered() -> None:
    assert provider_names() == (
        "a1111",
        "cog",
        "comfy_api",
        "comfyui",
        "fal",
        "openai",
        "openai_compatible",
        "preview",
        "replicate",
    )
    assert display_names()["openai"] == "OpenAI"


@pytest.mark.usefixtures("acme")
async def test_a_dropped_in_provider_is_picked_up_everywhere(tmp_path: Path) -> None:
    assert "acme" in provider_names() and display_names()["acme"] == "ACME Images"
    catalog = load_catalog()
    assert list(catalog.models)[:2] == ["preview", "acme-1"]  # position 5: listed second
    assert catalog.get("acme-1").provider_ids == {"acme": "acme/one"}
    assert catalog.get("flux-dev").providers == ("replicate", "acme", "fal")  # by rank
    req = CanonicalRequest("acme-1", "a fox", 1, 1024, 1024, "png")
    assert load_price_table().estimate(req, "acme").amount_micros == 500_000

    settings = load_settings(
        data_dir=tmp_path / "data",
        acme_api_key="k",  # the section's keyword: its env prefix less PIXELPIPE_, then the field
        acme_base_url="http://acme.test:9",
        test_mode=True,
        provider_order="acme, replicate",
    )
    svc = await build_services(settings)
    try:
        assert "acme" in svc.providers and svc.gate.order == ("acme", "replicate")
        assert svc.fetch_policies["acme"].allowed_hosts == ("cdn.acme.example", "acme.test")
        assert svc.catalog.get("acme-1").providers == ("acme",)
    finally:
        await svc.aclose()


@pytest.mark.usefixtures("acme")
async def test_the_fakes_server_mounts_a_dropped_in_providers_fake() -> None:
    fakes = FakeProviders(latency_s=0.1)
    async with serve_app(fakes.app) as base:
        env = fake_env(base)
        assert env["PIXELPIPE_ACME_BASE_URL"] == f"{base}/acme"
        async with httpx.AsyncClient() as c:
            assert "acme" in (await c.get(base + "/")).json()["fakes"]
            assert (await c.get(base + "/acme/_stats")).status_code == 200
    assert fakes.fake("acme") is fakes.acme


@pytest.mark.usefixtures("acme")
def test_its_settings_come_from_its_own_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    section = next(r for r in registrations() if r.name == "acme").settings
    monkeypatch.setenv("PIXELPIPE_ACME_BASE_URL", "https://eu.acme.example")
    settings = load_settings(data_dir=tmp_path)
    assert str(settings.section(section).model_dump()["base_url"]) == "https://eu.acme.example"


@pytest.mark.usefixtures("acme_without_hosts")
async def test_a_registration_without_output_hosts_stops_the_start(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", acme_api_key="k")
    with pytest.raises(ConfigError, match=r"acme has no output hosts.*output_hosts=OutputHosts"):
        await build_services(settings)


def test_a_registration_cannot_be_made_without_output_hosts() -> None:
    class Empty(SettingsSection):
        pass

    with pytest.raises(TypeError, match="output_hosts"):
        ProviderRegistration(  # type: ignore[call-arg]
            name="acme", display_name="ACME", settings=Empty, build=lambda s, ctx: None
        )
    with pytest.raises(ConfigError, match="output_hosts=OutputHosts"):
        ProviderRegistration(
            name="acme",
            display_name="ACME",
            settings=Empty,
            build=lambda s, ctx: None,
            output_hosts=None,  # type: ignore[arg-type]
        )
    assert ProviderRegistration("acme", "ACME", Empty, lambda s, ctx: None, OutputHosts(()))


def test_an_unregistered_provider_has_no_fetch_policy(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(ConfigError, match="nobody has no output hosts"):
        fetch_policies(settings, ["preview", "nobody"])


def test_provider_sections_read_the_same_env_file_and_keywords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelpipe.providers.fal import FalSettings
    from pixelpipe.providers.replicate import ReplicateSettings

    for var in ("REPLICATE_API_TOKEN", "PIXELPIPE_REPLICATE_BASE_URL", "FAL_KEY"):
        monkeypatch.delenv(var, raising=False)
    env = tmp_path / "custom.env"
    env.write_text(
        "REPLICATE_API_TOKEN=r8_from_file\nPIXELPIPE_REPLICATE_BASE_URL=https://r.example\n"
    )
    settings = Settings(_env_file=env, data_dir=tmp_path, FAL_KEY="id:secret")  # type: ignore[call-arg]
    replicate = settings.section(ReplicateSettings)
    assert replicate.api_token.get_secret_value() == "r8_from_file"
    assert replicate.base_url == "https://r.example"
    assert settings.section(FalSettings).key.get_secret_value() == "id:secret"
    assert settings.section(FalSettings).queue_url == "https://queue.fal.run"  # the default
    bare = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert bare.section(ReplicateSettings).api_token.get_secret_value() == ""


def test_a_bad_provider_variable_names_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pixelpipe.providers.preview import PreviewSettings

    monkeypatch.setenv("PIXELPIPE_PREVIEW_FAILURE_RATE", "2")
    with pytest.raises(ConfigError, match="PIXELPIPE_PREVIEW_FAILURE_RATE"):
        load_settings(data_dir=tmp_path).section(PreviewSettings)
