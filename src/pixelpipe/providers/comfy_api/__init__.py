"""Comfy API v2 (Comfy Cloud, or a self-hosted comfy-api-proxy in front of ComfyUI) as a backend
kind that runs ComfyUI workflows: each ``kind = "comfy_api"`` backend of the operator's catalog
is one provider, named after the backend (client in ``client.py``, wire format in ``jobs.py``,
live progress in ``events.py``). Its models are the catalog's workflow models (docs/comfyui.md).

Nothing is configured by environment alone (``build`` returns None). A backend has no
``options``; ``api_key_env`` names the key sent as ``Authorization: Bearer`` (Comfy Cloud's API
key, or comfy-api-proxy's ``--token``); ``timeout_s`` bounds each call (the jobs are polled, so
no call lasts as long as a run).

Decisions:

- **No fake** (``fake=None``): the v2 server in tests is the real comfy-api-proxy (a dev
  dependency) in front of the fake ComfyUI that ``pixelpipe fake-providers`` serves at
  ``BASE/comfyui`` (``tests/servers/comfy_proxy.py``); a fake of the proxy would test nothing.
- **Outputs are checked against their hash** where the server gives one (Comfy Cloud: blake3,
  ``Output.digest``; the worker's guarded fetch compares the bytes, ``fetch/digest.py``, and a
  mismatch is fetched again); comfy-api-proxy 0.1.6 sends ``hash: null``. The hash is also kept in
  the run's ``usage`` (``output_hash``, in the ledger entry's detail).
- **GPU time**: ``metrics.execution_ms`` where the server reports it (Comfy Cloud,
  ``gpu_time_source = "server"``); comfy-api-proxy reports none, so the worker bills the wall
  time from the submit to the end it saw (``"wall"``, which includes the time queued at ComfyUI).
- Where outputs may be downloaded from is the catalog's fetch policy for the backend (its own
  host), hence no output hosts here. A Comfy Cloud whose output URLs point at another host
  (signed storage URLs) is refused by that policy.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from pixelpipe.errors import ConfigError
from pixelpipe.providers.base import Provider
from pixelpipe.providers.comfy_api.client import ComfyApiProvider
from pixelpipe.providers.http import DEFAULT_TIMEOUT
from pixelpipe.providers.registration import (
    Backend,
    BuildContext,
    OutputHosts,
    ProviderRegistration,
)
from pixelpipe.settings import SettingsSection


class ComfyApiSettings(SettingsSection):
    """No settings of its own: its servers are described in the operator's catalog."""

    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_COMFY_API_")


def build(s: ComfyApiSettings, ctx: BuildContext) -> Provider | None:
    return None  # only backends of the operator's catalog make providers of this kind


def build_backend(backend: Backend, ctx: BuildContext) -> Provider:
    if backend.options:
        where = f" ({backend.source})" if backend.source else ""
        raise ConfigError(
            f"backend {backend.name}{where}: a comfy_api backend takes no options (its key is "
            f"api_key_env; what it runs is the model's workflow): remove "
            f"{', '.join(sorted(backend.options))}"
        )
    return ComfyApiProvider(
        backend,
        secret=ctx.settings.signing_key(),
        client=ctx.client(backend.name),
        timeout=ctx.backend_timeout(backend, DEFAULT_TIMEOUT),
    )


REGISTRATION = ProviderRegistration(
    name="comfy_api",
    display_name="Comfy API v2",
    settings=ComfyApiSettings,
    build=build,
    output_hosts=OutputHosts(()),  # per backend: the operator's catalog makes its fetch policy
    backend=build_backend,
    runs_workflows=True,
)
