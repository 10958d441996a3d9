"""The operator's catalog file: a good file adds backends and models; every wrong one stops the
start with a ConfigError naming the file, the line and the fix."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pixelpipe.errors import ConfigError
from pixelpipe.providers.registry import full_catalog, operator_file
from pixelpipe.settings import load_settings

pytestmark = pytest.mark.usefixtures("gpukind")

GOOD = """\
[backends.gpu_a]
kind = "gpukind"
url = "http://10.0.0.5:5000"
api_key_env = "GPU_A_KEY"
slots = 2
usd_per_gpu_hour = 1.8
timeout_s = 120

[backends.gpu_a.options]
gpu_seconds = 0.7

[backends.gpu_b]
kind = "gpukind"
url = "https://gpu-b.internal/v1/"

[models.flux-schnell]
backends = ["gpu_a", "replicate"]

[models.my-schnell]
extends = "flux-schnell"
label = "FLUX schnell (our GPUs)"
backends = ["gpu_b", "gpu_a", "fal"]
steps = { min = 1, max = 8, default = 4 }

[models.my-schnell.ids]
gpu_b = "black-forest-labs/FLUX.1-schnell"

[models.sdxl-house]
label = "SDXL house style"
formats = ["png"]
aspect_ratios = { "1:1" = [1024, 1024] }
typical_latency_s = 3.0
backends = ["gpu_b"]
"""


def _load(path: Path) -> object:
    return operator_file(load_settings(data_dir=path.parent / "data", catalog_path=path))


def test_a_good_file_adds_backends_and_models(
    catalog_file: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GPU_A_KEY", "secret-a")
    operator = operator_file(
        load_settings(data_dir=Path("unused"), catalog_path=catalog_file(GOOD))
    )
    assert operator is not None
    gpu_a, gpu_b = operator.backends
    assert (gpu_a.name, gpu_a.kind, gpu_a.url, gpu_a.api_key) == (
        "gpu_a",
        "gpukind",
        "http://10.0.0.5:5000",
        "secret-a",
    )
    assert (gpu_a.slots, str(gpu_a.usd_per_gpu_hour), gpu_a.timeout_s) == (2, "1.8", 120.0)
    assert gpu_a.options == {"gpu_seconds": 0.7} and gpu_a.source.endswith("catalog.toml:1")
    assert (gpu_b.url, gpu_b.slots, gpu_b.usd_per_gpu_hour, gpu_b.api_key) == (
        "https://gpu-b.internal/v1",
        1,
        None,
        "",
    )
    catalog = full_catalog(operator)
    schnell = catalog.get("flux-schnell")  # a built-in model's name: it extends itself
    assert schnell.providers == ("gpu_a", "replicate")
    assert schnell.provider_ids["replicate"] == "black-forest-labs/flux-schnell"
    assert schnell.provider_ids["gpu_a"] == "flux-schnell"
    mine = catalog.get("my-schnell")
    assert mine.label == "FLUX schnell (our GPUs)" and mine.providers == ("gpu_b", "gpu_a", "fal")
    assert mine.provider_ids["gpu_b"] == "black-forest-labs/FLUX.1-schnell"
    assert mine.provider_ids["fal"] == full_catalog(None).get("flux-schnell").provider_ids["fal"]
    assert mine.steps is not None and mine.steps.max == 8  # overridden
    assert mine.aspect_ratios == schnell.aspect_ratios  # inherited
    house = catalog.get("sdxl-house")
    assert house.providers == ("gpu_b",) and house.formats == ("png",)
    assert list(catalog.models)[-2:] == ["my-schnell", "sdxl-house"]
    assert catalog.get("flux-dev") == full_catalog(None).get("flux-dev")  # untouched


def test_no_file_no_change(tmp_path: Path) -> None:
    assert operator_file(load_settings(data_dir=tmp_path)) is None
    assert operator_file(load_settings(data_dir=tmp_path, catalog_path="")) is None


BACKEND = '[backends.gpu_a]\nkind = "gpukind"\nurl = "http://gpu:5000"\n'
MODEL = '[models.m]\nlabel = "M"\nformats = ["png"]\naspect_ratios = { "1:1" = [512, 512] }\n'

# (file, line, what the message must say)
WRONG = {
    "bad TOML": (BACKEND + "slots = = 2\n", 4, r"not valid TOML.*fix the syntax"),
    "duplicate table": (BACKEND + BACKEND, 4, r"not valid TOML"),
    "unknown top-level key": ('title = "x"\n' + BACKEND, 1, r"unknown top-level key 'title'"),
    "backends not tables": ("backends = 3\n", 1, r"backends must be \[backends.<name>\] tables"),
    "a backend not a table": (
        "[backends]\ngpu_a = 3\n",
        1,
        r"backends.gpu_a must be a \[backends.gpu_a\] table",
    ),
    "unknown kind": (
        '[backends.gpu_a]\nkind = "triton"\nurl = "http://gpu:5000"\n',
        2,
        r"unknown kind 'triton'; use one of the installed kinds: a1111, cog, comfy_api, comfyui, gpukind, openai_compatible$",
    ),
    "no kind": ('[backends.gpu_a]\nurl = "http://gpu:5000"\n', 1, r"has no kind.*gpukind"),
    "unknown backend key": (
        BACKEND + "steps = 4\n",
        4,
        r"unknown key 'steps' in \[backends.gpu_a\].*\[backends.gpu_a.options\]",
    ),
    "missing url": ('[backends.gpu_a]\nkind = "gpukind"\n', 1, r"has no url: add url"),
    "bad url": (
        '[backends.gpu_a]\nkind = "gpukind"\nurl = "gpu:5000"\n',
        3,
        r"url 'gpu:5000' is not a base URL",
    ),
    "url with credentials": (
        '[backends.gpu_a]\nkind = "gpukind"\nurl = "http://u:p@gpu:5000"\n',
        3,
        r"not a base URL.*api_key_env",
    ),
    "url with bad port": (
        '[backends.gpu_a]\nkind = "gpukind"\nurl = "http://gpu:99999"\n',
        3,
        r"bad port",
    ),
    "slots zero": (BACKEND + "slots = 0\n", 4, r"slots = 0; it must be a whole number ≥ 1"),
    "slots not a number": (BACKEND + 'slots = "2"\n', 4, r"slots = '2'"),
    "negative price": (
        BACKEND + "usd_per_gpu_hour = -1.5\n",
        4,
        r"usd_per_gpu_hour = -1.5; it must be a number ≥ 0",
    ),
    "bad timeout": (BACKEND + "timeout_s = 0\n", 4, r"timeout_s = 0; it must be"),
    "options not a table": (BACKEND + "options = 3\n", 4, r"options must be a table"),
    "api_key_env unset": (
        BACKEND + 'api_key_env = "PIXELPIPE_TEST_UNSET_KEY"\n',
        4,
        r"names PIXELPIPE_TEST_UNSET_KEY, which is not set: export",
    ),
    "api_key_env holds a secret": (
        BACKEND + 'api_key_env = "sk-123/abc"\n',
        4,
        r"must be the NAME of an environment variable",
    ),
    "backend named like a provider": (
        '[backends.replicate]\nkind = "gpukind"\nurl = "http://gpu:5000"\n',
        1,
        r"'replicate' is the name of a built-in provider",
    ),
    "backend named like a kind": (
        '[backends.gpukind]\nkind = "gpukind"\nurl = "http://gpu:5000"\n',
        1,
        r"'gpukind' is the name of a built-in provider",
    ),
    "bad backend name": (
        '[backends.GPU-A]\nkind = "gpukind"\nurl = "http://gpu:5000"\n',
        1,
        r"backend name 'GPU-A' must be lower-case",
    ),
    "model names an unknown backend": (
        BACKEND + MODEL + 'backends = ["gpu_z"]\n',
        8,
        r"backends names 'gpu_z', which is neither a backend of this file nor a provider; "
        r"use one of: gpu_a, fal, openai, preview, replicate$",
    ),
    "hosted provider without an id": (
        BACKEND + MODEL + 'backends = ["gpu_a", "replicate"]\n',
        8,
        r"replicate has no id for it.*\[models.m.ids\] replicate =",
    ),
    "extended model the provider does not serve": (
        BACKEND + '[models.m]\nextends = "flux-1.1-pro"\nbackends = ["gpu_a", "openai"]\n',
        6,
        r"openai has no id for it \(openai serves .*gpt-image",
    ),
    "model lists no backends": (BACKEND + MODEL, 4, r"model m lists no backends"),
    "empty backends": (BACKEND + MODEL + "backends = []\n", 8, r"non-empty list"),
    "backend listed twice": (
        BACKEND + MODEL + 'backends = ["gpu_a", "gpu_a"]\n',
        8,
        r"lists a name twice",
    ),
    "new model without its spec": (
        BACKEND + '[models.m]\nbackends = ["gpu_a"]\n',
        4,
        r"model m is new and has no label, formats, aspect_ratios",
    ),
    "extends an unknown model": (
        BACKEND + '[models.m]\nextends = "flux-9"\nbackends = ["gpu_a"]\n',
        5,
        r"extends = 'flux-9' is not a built-in model; use one of: .*flux-schnell",
    ),
    "unknown model key": (
        BACKEND + MODEL + 'backends = ["gpu_a"]\nsampler = "euler"\n',
        9,
        r"unknown key 'sampler' in \[models.m\]",
    ),
    "ids for a backend it does not list": (
        BACKEND + MODEL + 'backends = ["gpu_a"]\nids = { gpu_b = "x" }\n',
        9,
        r"ids names 'gpu_b', which its backends do not list",
    ),
}


@pytest.mark.parametrize("case", list(WRONG), ids=list(WRONG))
def test_a_wrong_file_names_the_file_the_line_and_the_fix(
    case: str, catalog_file: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    text, line, says = WRONG[case]
    monkeypatch.delenv("PIXELPIPE_TEST_UNSET_KEY", raising=False)
    path = catalog_file(text)
    with pytest.raises(ConfigError) as raised:
        _load(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert re.search(says, message), message


def test_bad_limits_name_the_model(catalog_file: Callable[[str], Path]) -> None:
    path = catalog_file(
        BACKEND + '[models.m]\nextends = "flux-dev"\nbackends = ["gpu_a"]\nsteps = { min = 1 }\n'
        "max_input_images = 0\n"  # text only: gpukind takes no input images (flux-dev: 1)
    )
    with pytest.raises(ConfigError, match=rf"{re.escape(str(path))}:4: model m: its limits"):
        full_catalog(_load(path))  # type: ignore[arg-type]


def test_a_missing_file_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"PIXELPIPE_CATALOG_PATH=.*cannot be read"):
        _load(tmp_path / "nope.toml")
