"""fal: the FLUX models on fal's queue, webhooks signed with ED25519 (client in ``client.py``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pixelpipe.providers.base import Provider
from pixelpipe.providers.fal.client import FalProvider
from pixelpipe.providers.registration import (
    BuildContext,
    FakeSpec,
    OutputHosts,
    ProviderRegistration,
)
from pixelpipe.settings import SettingsSection


class FalSettings(SettingsSection):
    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_FAL_")

    key: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("FAL_KEY", "PIXELPIPE_FAL_KEY")
    )
    queue_url: str = "https://queue.fal.run"
    jwks_url: str = "https://rest.fal.ai/.well-known/jwks.json"


def build(s: FalSettings, ctx: BuildContext) -> Provider | None:
    key = s.key.get_secret_value()
    if not key:
        return None
    return FalProvider(
        key,
        queue_url=ctx.base_url(s, "queue_url"),
        jwks_url=ctx.base_url(s, "jwks_url"),
        client=ctx.client("fal"),
        timeout=ctx.timeout(),
    )


def fake_env(url: str) -> dict[str, str]:
    return {
        "PIXELPIPE_FAL_QUEUE_URL": url,
        "PIXELPIPE_FAL_JWKS_URL": f"{url}/.well-known/jwks.json",
        "FAL_KEY": "fake-key-id:fake-key-secret",
    }


REGISTRATION = ProviderRegistration(
    name="fal",
    display_name="fal",
    settings=FalSettings,
    build=build,
    output_hosts=OutputHosts(
        ("fal.media", "*.fal.media", "storage.googleapis.com", "fal-cdn.batuhan-941.workers.dev"),
        test_mode_base_url="queue_url",
    ),
    fake=FakeSpec("pixelpipe.fakes.fal:FakeFal", fake_env),
)
