"""A self-hosted server kind defined here, before the real kinds land: ``gpukind``, a provider
package dropped beside the others whose ``backend`` builder makes one provider per backend of the
operator's catalog file; each run returns the preview picture at once, with ``gpu_seconds`` set
from the backend's options (``gpu_seconds``, ``source``; ``None``/"wall" when not given)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import pixelpipe.providers

KIND = """
import dataclasses

from pydantic_settings import SettingsConfigDict

from pixelpipe.providers.preview.client import PreviewProvider
from pixelpipe.providers.registration import (
    Backend, BuildContext, OutputHosts, ProviderRegistration,
)
from pixelpipe.settings import SettingsSection

BUILT = []  # the backends built, for the tests to look at


class GpuKindSettings(SettingsSection):
    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_GPUKIND_")


class GpuProvider(PreviewProvider):
    def __init__(self, backend):
        super().__init__()
        self.name = backend.name
        self.backend = backend

    async def _done(self, run_id, req):
        update = await super()._done(run_id, req)
        seconds = self.backend.options.get("gpu_seconds")
        return dataclasses.replace(
            update, gpu_seconds=seconds, gpu_time_source=self.backend.options.get("source")
        )


def backend(b: Backend, ctx: BuildContext) -> GpuProvider:
    BUILT.append(b)
    return GpuProvider(b)


REGISTRATION = ProviderRegistration(
    name="gpukind",
    display_name="GPU kind (tests)",
    settings=GpuKindSettings,
    build=lambda s, ctx: None,
    output_hosts=OutputHosts(()),
    backend=backend,
)
"""


@pytest.fixture
def gpukind(tmp_path: Path) -> Iterator[object]:
    """Install the ``gpukind`` kind; yields its module (``BUILT``: the backends it built)."""
    root = tmp_path / "kinds"
    (root / "gpukind").mkdir(parents=True)
    (root / "gpukind" / "__init__.py").write_text(KIND)
    path = pixelpipe.providers.__path__
    path.append(str(root))
    importlib.invalidate_caches()
    try:
        yield importlib.import_module("pixelpipe.providers.gpukind")
    finally:
        path.remove(str(root))
        sys.modules.pop("pixelpipe.providers.gpukind", None)


@pytest.fixture
def catalog_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write a catalog file; returns its path."""

    def write(text: str) -> Path:
        path = tmp_path / "catalog.toml"
        path.write_text(text)
        return path

    return write
