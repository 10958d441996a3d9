"""Replicate: FLUX models, webhooks signed the Standard Webhooks way (client in ``client.py``)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pixelpipe.providers.base import Provider
from pixelpipe.providers.registration import (
    BuildContext,
    FakeSpec,
    OutputHosts,
    ProviderRegistration,
)
from pixelpipe.providers.replicate.client import ReplicateProvider
from pixelpipe.settings import SettingsSection


class ReplicateSettings(SettingsSection):
    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_REPLICATE_")

    api_token: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("REPLICATE_API_TOKEN", "PIXELPIPE_REPLICATE_API_TOKEN"),
    )
    base_url: str = "https://api.replicate.com"
    webhook_secret: SecretStr = SecretStr("")


def build(s: ReplicateSettings, ctx: BuildContext) -> Provider | None:
    token = s.api_token.get_secret_value()
    if not token:
        return None
    return ReplicateProvider(
        token,
        base_url=ctx.base_url(s, "base_url"),
        webhook_secret=s.webhook_secret.get_secret_value(),
        client=ctx.client("replicate"),
        timeout=ctx.timeout(),
    )


def fake_env(url: str) -> dict[str, str]:
    return {"PIXELPIPE_REPLICATE_BASE_URL": url, "REPLICATE_API_TOKEN": "r8_fake"}


REGISTRATION = ProviderRegistration(
    name="replicate",
    display_name="Replicate",
    settings=ReplicateSettings,
    build=build,
    output_hosts=OutputHosts(
        ("replicate.delivery", "*.replicate.delivery"), test_mode_base_url="base_url"
    ),
    fake=FakeSpec("pixelpipe.fakes.replicate:FakeReplicate", fake_env),
)
