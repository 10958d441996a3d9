"""ComfyUI's native API (``/prompt``, ``/history``, ``/queue``, ``/view``, ``/ws``) as a backend
kind: each ``kind = "comfyui"`` backend of the operator's catalog is one provider, named after
the backend (client in ``client.py``, wire format in ``answers.py``, the live socket in
``live.py``). It runs the catalog's workflow models (docs/comfyui.md): each request is the
model's workflow with the request's values filled in.

Nothing is configured by environment alone (``build`` returns None; the settings section is
empty). Its images are fetched from ``/view`` by the provider and handed over as bytes, so there
is no output host to allow. ``pixelpipe fake-providers`` serves a protocol-faithful fake at
``BASE/comfyui`` (:mod:`pixelpipe.fakes.comfyui`).
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from pixelpipe.providers.base import Provider
from pixelpipe.providers.comfyui.client import ComfyUIProvider
from pixelpipe.providers.http import DEFAULT_TIMEOUT
from pixelpipe.providers.registration import (
    Backend,
    BuildContext,
    FakeSpec,
    OutputHosts,
    ProviderRegistration,
)
from pixelpipe.settings import SettingsSection


class ComfyUISettings(SettingsSection):
    """No settings of its own: its servers are described in the operator's catalog."""

    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_COMFYUI_")


def build(s: ComfyUISettings, ctx: BuildContext) -> Provider | None:
    return None  # only backends of the operator's catalog make providers of this kind


def build_backend(backend: Backend, ctx: BuildContext) -> Provider:
    return ComfyUIProvider(
        backend,
        secret=ctx.settings.signing_key(),
        client=ctx.client(backend.name),
        timeout=ctx.backend_timeout(backend, DEFAULT_TIMEOUT),
    )


REGISTRATION = ProviderRegistration(
    name="comfyui",
    display_name="ComfyUI",
    settings=ComfyUISettings,
    build=build,
    output_hosts=OutputHosts(()),  # images come back as bytes (from /view), never as URLs
    backend=build_backend,
    runs_workflows=True,
    # ``pixelpipe fake-providers`` serves one at BASE/comfyui; no variable points at it: a
    # backend of the operator's catalog does
    fake=FakeSpec("pixelpipe.fakes.comfyui:FakeComfyUI", lambda base: {}),
)
