"""OpenAI-compatible image servers (vLLM-Omni, SGLang diffusion, LocalAI) as a backend kind.

Nothing is configured by environment: each backend of kind ``openai_compatible`` in the operator's
catalog becomes one provider named after it (client in ``client.py``). Its options: ``model``
(the name the server serves; default: the model's id for this backend) and ``true_cfg_scale``.
Its outputs come back as base64, so there is no host to download from.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from pixelpipe.providers.base import Provider
from pixelpipe.providers.openai_compatible.client import (
    GENERATION_TIMEOUT,
    OpenAICompatibleProvider,
)
from pixelpipe.providers.openai_compatible.edits import check_inputs
from pixelpipe.providers.registration import (
    Backend,
    BuildContext,
    FakeSpec,
    OutputHosts,
    ProviderRegistration,
)
from pixelpipe.settings import SettingsSection


class OpenAICompatibleSettings(SettingsSection):
    """No settings of its own: its servers are described in the operator's catalog."""

    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_OPENAI_COMPATIBLE_")


def build(s: OpenAICompatibleSettings, ctx: BuildContext) -> Provider | None:
    return None  # only backends of the operator's catalog make providers of this kind


def build_backend(backend: Backend, ctx: BuildContext) -> Provider:
    return OpenAICompatibleProvider(
        backend,
        client=ctx.client(backend.name),
        timeout=ctx.backend_timeout(backend, GENERATION_TIMEOUT),
    )


REGISTRATION = ProviderRegistration(
    name="openai_compatible",
    display_name="OpenAI-compatible server",
    settings=OpenAICompatibleSettings,
    build=build,
    output_hosts=OutputHosts(()),
    backend=build_backend,
    image_inputs=check_inputs,  # /v1/images/edits: images, no mask, no strength
    # ``pixelpipe fake-providers`` serves one at BASE/openai_compatible; no variable points at
    # it: a backend of the operator's catalog does (``pixelpipe.fakes.server.catalog_example``)
    fake=FakeSpec("pixelpipe.fakes.openai_compatible:FakeOpenAICompatible", lambda base: {}),
)
