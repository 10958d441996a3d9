"""cog (Replicate's open-source model server): each ``kind = "cog"`` backend of the operator's
catalog is one provider, named after the backend (client in ``client.py``, wire format in
``predictions.py``).

Nothing is configured by environment alone (``build`` returns None; the settings section is
empty). A backend's ``options``: ``input``, a table of inputs added to every prediction (or
overriding the mapped ones, see ``predictions.py``); ``webhooks = false`` for a server that
cannot reach pixelpipe's ``PIXELPIPE_PUBLIC_URL``: its predictions are synchronous calls (as
they are for every backend when that setting is empty); ``image_inputs``, the predictor's input
names for an edit (``inputs.py``). Its ``timeout_s`` bounds a synchronous
prediction (default 10 minutes); ``api_key``, if set, is sent as ``Authorization: Bearer`` (for
a proxy in front of cog: cog itself checks none). Where its outputs may be downloaded from (an
``--upload-url`` store) is the catalog's fetch policy for the backend, hence no output hosts here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic_settings import SettingsConfigDict

from pixelpipe.errors import ConfigError
from pixelpipe.providers.base import Provider
from pixelpipe.providers.cog.client import SYNC_TIMEOUT_S, CogProvider
from pixelpipe.providers.cog.inputs import ImageInputs, check_inputs, read_image_inputs
from pixelpipe.providers.registration import (
    Backend,
    BuildContext,
    OutputHosts,
    ProviderRegistration,
)
from pixelpipe.settings import SettingsSection


class CogSettings(SettingsSection):
    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_COG_")


def build(s: CogSettings, ctx: BuildContext) -> Provider | None:
    return None  # only the operator's catalog names cog servers (build_backend)


def build_backend(backend: Backend, ctx: BuildContext) -> Provider:
    return CogProvider(
        backend.name,
        backend.url,
        secret=ctx.settings.signing_key(),
        slots=backend.slots,
        api_key=backend.api_key,
        inputs=_inputs(backend),
        webhooks=_webhooks(backend),
        timeout=ctx.timeout(),
        sync_timeout_s=backend.timeout_s or SYNC_TIMEOUT_S,
        client=ctx.client(backend.name),
        identity=backend.identity(),
        image_inputs=_image_inputs(backend),
    )


def _image_inputs(backend: Backend) -> ImageInputs:
    names = read_image_inputs(backend.options)
    if isinstance(names, str):
        where = f" ({backend.source})" if backend.source else ""
        raise ConfigError(f"backend {backend.name}{where}: options.{names}")
    return names


def _inputs(backend: Backend) -> Mapping[str, Any]:
    inputs = backend.options.get("input", {})
    if not isinstance(inputs, Mapping):
        where = f" ({backend.source})" if backend.source else ""
        raise ConfigError(
            f"backend {backend.name}{where}: options.input must be a table of inputs added to "
            f'every prediction, e.g. input = {{ output_format = "png" }}'
        )
    return inputs


def _webhooks(backend: Backend) -> bool:
    webhooks = backend.options.get("webhooks", True)
    if not isinstance(webhooks, bool):
        where = f" ({backend.source})" if backend.source else ""
        raise ConfigError(
            f"backend {backend.name}{where}: options.webhooks must be true or false (false: "
            "synchronous predictions, for a server that cannot reach PIXELPIPE_PUBLIC_URL)"
        )
    return webhooks


REGISTRATION = ProviderRegistration(
    name="cog",
    display_name="cog",
    settings=CogSettings,
    build=build,
    output_hosts=OutputHosts(()),  # per backend: the operator's catalog makes its fetch policy
    backend=build_backend,
    image_inputs=check_inputs,  # Path inputs as data: URIs, named by options.image_inputs
)
