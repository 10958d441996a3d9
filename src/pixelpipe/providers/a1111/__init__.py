"""AUTOMATIC1111 / Forge / SD.Next web UI servers (``/sdapi/v1``) as a backend kind.

Nothing is configured by environment: each backend of kind ``a1111`` in the operator's catalog
becomes one provider named after it (client in ``client.py``: one request at a time per backend,
progress from ``/sdapi/v1/progress``, the run's ``info`` in ``usage["info"]``). Its outputs come
back as base64, so there is no host to download from. An edit (input images, a mask, a strength)
runs ``/sdapi/v1/img2img`` (``img2img.py``): a model on this kind takes one input image.
"""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from pixelpipe.providers.a1111.client import GENERATION_TIMEOUT, A1111Provider
from pixelpipe.providers.a1111.img2img import check_inputs
from pixelpipe.providers.base import Provider
from pixelpipe.providers.registration import (
    Backend,
    BuildContext,
    FakeSpec,
    OutputHosts,
    ProviderRegistration,
)
from pixelpipe.settings import SettingsSection


class A1111Settings(SettingsSection):
    """No settings of its own: its servers are described in the operator's catalog."""

    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_A1111_")


def build(s: A1111Settings, ctx: BuildContext) -> Provider | None:
    return None  # only backends of the operator's catalog make providers of this kind


def build_backend(backend: Backend, ctx: BuildContext) -> Provider:
    return A1111Provider(
        backend,
        client=ctx.client(backend.name),
        timeout=ctx.backend_timeout(backend, GENERATION_TIMEOUT),
    )


REGISTRATION = ProviderRegistration(
    name="a1111",
    display_name="AUTOMATIC1111 / Forge",
    settings=A1111Settings,
    build=build,
    output_hosts=OutputHosts(()),
    backend=build_backend,
    image_inputs=check_inputs,  # img2img: one init image, a mask, denoising_strength
    # ``pixelpipe fake-providers`` serves one at BASE/a1111; no variable points at it: a backend
    # of the operator's catalog does (``pixelpipe.fakes.server.catalog_example``)
    fake=FakeSpec("pixelpipe.fakes.a1111:FakeA1111", lambda base: {}),
)
