"""OpenAI Images: GPT Image 1 and DALL-E 3, synchronous calls (client in ``client.py``)."""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pixelpipe.providers.base import Provider
from pixelpipe.providers.openai.client import GENERATION_TIMEOUT, OpenAIProvider
from pixelpipe.providers.openai.stream import MAX_PARTIAL_IMAGES, StreamingOpenAIProvider
from pixelpipe.providers.registration import (
    BuildContext,
    FakeSpec,
    OutputHosts,
    ProviderRegistration,
)
from pixelpipe.settings import SettingsSection


class OpenAISettings(SettingsSection):
    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_OPENAI_")

    api_key: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("OPENAI_API_KEY", "PIXELPIPE_OPENAI_API_KEY")
    )
    base_url: str = "https://api.openai.com/v1"
    # stream GPT image generations with this many partial images, relayed as live previews
    # (``stream.py``); 0: not streamed. OpenAI may bill partials as extra output tokens.
    partial_images: int = Field(0, ge=0, le=MAX_PARTIAL_IMAGES)


def build(s: OpenAISettings, ctx: BuildContext) -> Provider | None:
    key = s.api_key.get_secret_value()
    if not key:
        return None
    common: dict[str, Any] = {
        "base_url": ctx.base_url(s, "base_url"),
        "client": ctx.client("openai"),
        "timeout": ctx.timeout(GENERATION_TIMEOUT),
    }
    if s.partial_images:
        return StreamingOpenAIProvider(key, partial_images=s.partial_images, **common)
    return OpenAIProvider(key, **common)


def fake_env(url: str) -> dict[str, str]:
    return {"PIXELPIPE_OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_KEY": "sk-fake"}


REGISTRATION = ProviderRegistration(
    name="openai",
    display_name="OpenAI",
    settings=OpenAISettings,
    build=build,
    output_hosts=OutputHosts(("*.blob.core.windows.net",), test_mode_base_url="base_url"),
    fake=FakeSpec("pixelpipe.fakes.openai:FakeOpenAI", fake_env),
)
