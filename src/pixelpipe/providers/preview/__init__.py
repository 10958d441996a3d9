"""The offline preview: a deterministic picture drawn locally, $0, no account (``client.py``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pixelpipe.providers.base import Provider
from pixelpipe.providers.preview.client import PreviewProvider
from pixelpipe.providers.registration import BuildContext, OutputHosts, ProviderRegistration
from pixelpipe.settings import SettingsSection


class PreviewSettings(SettingsSection):
    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_PREVIEW_")

    latency_ms: int = Field(0, ge=0)
    failure_rate: float = Field(0.0, ge=0.0, le=1.0)


def build(s: PreviewSettings, ctx: BuildContext) -> Provider:
    """Always built: it needs no credential."""
    return PreviewProvider(latency_ms=s.latency_ms, failure_rate=s.failure_rate)


REGISTRATION = ProviderRegistration(
    name="preview",
    display_name="Preview",
    settings=PreviewSettings,
    build=build,
    output_hosts=OutputHosts(()),  # its outputs are inline bytes; nothing is downloaded
)
