"""Backends of the catalog file become providers: built by their kind, named in
PIXELPIPE_PROVIDER_ORDER, fetched from their own host only, serving models in the file's order;
and a generation runs on one end to end."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pixelpipe.bootstrap import build_services, fetch_policies
from pixelpipe.catalog.operator_file import BackendSpec, OperatorFile
from pixelpipe.errors import ConfigError
from pixelpipe.providers.registration import BuildContext
from pixelpipe.providers.registry import build_backend, build_providers, operator_file
from pixelpipe.settings import Settings, load_settings

pytestmark = pytest.mark.usefixtures("gpukind")

FILE = """\
[backends.gpu_a]
kind = "gpukind"
url = "http://10.1.2.3:5000"
slots = 3
usd_per_gpu_hour = 3.6

[backends.gpu_a.options]
gpu_seconds = 2.0
source = "server"

[models.flux-schnell]
backends = ["gpu_a", "replicate"]

[models.house]
label = "House"
formats = ["png"]
aspect_ratios = { "1:1" = [256, 256] }
backends = ["gpu_a"]
"""


def _settings(tmp_path: Path, path: Path, **more: Any) -> Settings:
    return load_settings(data_dir=tmp_path / "data", catalog_path=path, **more)


async def test_backends_are_built_by_their_kind(
    gpukind: Any, tmp_path: Path, catalog_file: Callable[[str], Path]
) -> None:
    providers = build_providers(_settings(tmp_path, catalog_file(FILE)))
    assert sorted(providers) == ["gpu_a", "preview"]
    (backend,) = gpukind.BUILT
    assert (backend.name, backend.kind, backend.url, backend.slots) == (
        "gpu_a",
        "gpukind",
        "http://10.1.2.3:5000",
        3,
    )
    assert backend.usd_per_gpu_hour == 3.6 and backend.options["source"] == "server"
    assert backend.source.endswith("catalog.toml:1")


async def test_the_services_know_the_backends(
    tmp_path: Path, catalog_file: Callable[[str], Path]
) -> None:
    settings = _settings(
        tmp_path, catalog_file(FILE), provider_order="gpu_a,replicate", replicate_api_token="r8"
    )
    svc = await build_services(settings)
    try:
        assert svc.gate.order == ("gpu_a", "replicate")
        assert svc.catalog.get("flux-schnell").providers == ("gpu_a", "replicate")
        assert svc.catalog.get("house").providers == ("gpu_a",)
        policy = svc.fetch_policies["gpu_a"]
        assert policy.allowed_hosts == ("10.1.2.3",) and policy.own_network
        assert not svc.fetch_policies["replicate"].own_network
    finally:
        await svc.aclose()


def test_the_provider_order_may_name_backends_only_with_the_file(
    tmp_path: Path, catalog_file: Callable[[str], Path]
) -> None:
    from pixelpipe.bootstrap import _provider_order

    path = catalog_file(FILE)
    settings = _settings(tmp_path, path, provider_order="gpu_a")
    assert _provider_order(settings, operator_file(settings)) == ("gpu_a",)
    with pytest.raises(ConfigError, match=r"unknown providers \(gpu_b\).*: fal, gpu_a, openai,"):
        _provider_order(
            settings.model_copy(update={"provider_order": "gpu_b"}), operator_file(settings)
        )
    with pytest.raises(ConfigError, match=r"unknown providers \(gpu_a\)"):
        _provider_order(settings, None)  # without the file


async def test_a_wrong_file_stops_the_start(
    tmp_path: Path, catalog_file: Callable[[str], Path]
) -> None:
    path = catalog_file(FILE.replace("slots = 3", "slots = 0"))
    with pytest.raises(ConfigError, match=rf"{path}:4: backend gpu_a: slots = 0"):
        await build_services(_settings(tmp_path, path))
    assert not (tmp_path / "data").exists()  # nothing was opened


def test_a_kind_that_is_not_installed_is_a_clear_error(tmp_path: Path) -> None:
    spec = BackendSpec("gpu_a", "triton", "http://gpu:5000", source="catalog.toml:3")
    ctx = BuildContext(load_settings(data_dir=tmp_path))
    with pytest.raises(ConfigError, match=r"catalog.toml:3: backend gpu_a: kind 'triton' is not"):
        build_backend(spec, ctx)


def test_backend_outputs_come_from_its_own_host_only(
    tmp_path: Path, catalog_file: Callable[[str], Path]
) -> None:
    settings = _settings(tmp_path, catalog_file(FILE), output_hosts="*")
    operator = operator_file(settings)
    assert isinstance(operator, OperatorFile)
    policies = fetch_policies(settings, ["preview", "gpu_a"], operator)
    assert policies["gpu_a"].allowed_hosts == ("10.1.2.3",)  # OUTPUT_HOSTS=* does not widen it
    assert policies["preview"].allowed_hosts == ()
    with pytest.raises(ConfigError, match="gpu_a has no output hosts"):
        fetch_policies(settings, ["preview", "gpu_a"])  # a backend without the file


async def test_no_catalog_file_changes_nothing(tmp_path: Path) -> None:
    svc = await build_services(load_settings(data_dir=tmp_path / "data"))
    try:
        assert sorted(svc.providers) == ["preview"]
        assert not any(p.own_network for p in svc.fetch_policies.values())
    finally:
        await svc.aclose()
