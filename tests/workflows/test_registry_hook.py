"""The hook for the ComfyUI kinds: a kind whose registration says ``runs_workflows=True`` may
serve the catalog file's workflow models (through the real registry), any other kind may not."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pixelpipe.providers
from pixelpipe.errors import ConfigError
from pixelpipe.providers.registry import full_catalog, operator_file
from pixelpipe.settings import load_settings
from tests.workflows.conftest import stock

KIND = """
from pydantic_settings import SettingsConfigDict

from pixelpipe.providers.preview.client import PreviewProvider
from pixelpipe.providers.registration import OutputHosts, ProviderRegistration
from pixelpipe.settings import SettingsSection


class WfKindSettings(SettingsSection):
    model_config = SettingsConfigDict(env_prefix="PIXELPIPE_WFKIND_")


def backend(b, ctx):
    provider = PreviewProvider()
    provider.name = b.name
    return provider


REGISTRATION = ProviderRegistration(
    name="wfkind",
    display_name="Workflow kind (tests)",
    settings=WfKindSettings,
    build=lambda s, ctx: None,
    output_hosts=OutputHosts(()),
    backend=backend,
    runs_workflows=RUNS,
)
"""

CATALOG = """\
[backends.comfy_a]
kind = "wfkind"
url = "http://10.0.0.9:8188"

[models.sdxl-comfy]
label = "SDXL (ComfyUI)"
formats = ["png"]
aspect_ratios = { "1:1" = [1024, 1024] }
backends = ["comfy_a"]
workflow = "sdxl.json"

[models.sdxl-comfy.workflow_inputs]
prompt = "6.text"
"""


@pytest.fixture(params=[True, False], ids=["runs-workflows", "does-not"])
def wfkind(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[bool]:
    """Install the ``wfkind`` kind, with ``runs_workflows`` True or False; yields which."""
    root = tmp_path / "kinds"
    (root / "wfkind").mkdir(parents=True)
    (root / "wfkind" / "__init__.py").write_text(KIND.replace("RUNS", str(request.param)))
    path = pixelpipe.providers.__path__
    path.append(str(root))
    importlib.invalidate_caches()
    try:
        yield bool(request.param)
    finally:
        path.remove(str(root))
        sys.modules.pop("pixelpipe.providers.wfkind", None)


def test_only_a_kind_that_runs_workflows_serves_a_workflow_model(
    wfkind: bool, tmp_path: Path
) -> None:
    (tmp_path / "sdxl.json").write_text(json.dumps(stock(), indent=2))
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG)
    settings = load_settings(data_dir=tmp_path / "data", catalog_path=path)
    if not wfkind:
        with pytest.raises(ConfigError, match="comfy_a is a wfkind backend, which cannot run one"):
            operator_file(settings)
        return
    operator = operator_file(settings)
    assert operator is not None
    spec = full_catalog(operator).get("sdxl-comfy")
    assert spec.workflow is not None and spec.workflow is operator.workflows()["sdxl-comfy"]
