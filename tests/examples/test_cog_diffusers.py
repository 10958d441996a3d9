"""The non-GPU parts of examples/cog-diffusers: presets, input checks and mapping to the
pipeline's keyword arguments, seeds, output files, settings, and the predictor's inputs against
what pixelpipe's cog backend sends. torch and diffusers are not installed here (nor needed).

``predict``, ``pipelines`` and ``txt2img`` are the example's modules, imported by their plain
names as cog imports them (``tests/examples/__init__.py`` puts their directory on the path)."""

from __future__ import annotations

import inspect
import io
import re
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import predict
import pytest
import txt2img
import yaml
from PIL import Image
from pipelines import (
    DiffusersPipeline,
    ExampleSettings,
    StubPipeline,
    load_pipeline,
    stub_colour,
)
from txt2img import (
    PRESETS,
    ConfigError,
    InputError,
    Txt2ImgCall,
    plan,
    preset_for,
    resolve_seed,
    round_side,
    save_images,
)

from pixelpipe.providers.cog.predictions import cog_input
from pixelpipe.providers.registry import operator_file
from pixelpipe.settings import load_settings
from tests.examples import EXAMPLE_DIR
from tests.providers.conftest import canon

SCHNELL, DEV, SDXL = PRESETS["flux-schnell"], PRESETS["flux-dev"], PRESETS["sdxl"]


# --- presets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("black-forest-labs/FLUX.1-schnell", "flux-schnell"),
        ("black-forest-labs/FLUX.1-dev", "flux-dev"),
        ("stabilityai/stable-diffusion-xl-base-1.0", "sdxl"),
        ("/weights/our-sdxl-finetune", "sdxl"),
    ],
)
def test_the_family_is_told_from_the_model_id(model: str, family: str) -> None:
    assert preset_for(model).family == family


def test_an_explicit_family_wins_and_an_unknown_one_is_refused() -> None:
    assert preset_for("/weights/house-model", "flux-schnell") is SCHNELL
    with pytest.raises(ConfigError, match="unknown model family 'sd15': use one of flux-schnell"):
        preset_for("x", "sd15")
    with pytest.raises(ConfigError, match="set PIXELPIPE_EXAMPLE_FAMILY"):
        preset_for("/weights/house-model")


def test_presets_hold_each_family_s_defaults() -> None:
    assert (SCHNELL.steps, SCHNELL.guidance, SCHNELL.multiple_of) == (4, 0.0, 16)
    assert (DEV.steps, DEV.guidance, DEV.multiple_of) == (28, 3.5, 16)
    assert (SDXL.steps, SDXL.guidance, SDXL.multiple_of) == (30, 7.0, 8)
    assert not SCHNELL.negative_prompt and SDXL.negative_prompt


# --- inputs → one pipeline call ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "multiple", "rounded"),
    [
        (1024, 16, 1024),
        (1000, 16, 1008),
        (999, 16, 992),
        (1020, 8, 1024),
        (1019, 8, 1016),
        (3, 8, 8),
    ],
)
def test_sides_round_to_the_nearest_multiple(value: int, multiple: int, rounded: int) -> None:
    assert round_side(value, multiple) == rounded


def test_schnell_defaults_and_kwargs() -> None:
    call, notes = plan(SCHNELL, prompt="a red fox", seed=7, width=1344, height=768)
    assert notes == []
    assert call.seed == 7
    assert call.diffusers_kwargs() == {
        "prompt": "a red fox",
        "width": 1344,
        "height": 768,
        "num_inference_steps": 4,
        "guidance_scale": 0.0,
        "num_images_per_prompt": 1,
        "max_sequence_length": 256,
    }


def test_sdxl_keeps_its_negative_prompt_and_the_request_s_steps_and_guidance() -> None:
    call, notes = plan(
        SDXL,
        prompt="a castle",
        seed=1,
        width=1020,
        height=1024,
        num_outputs=2,
        negative_prompt="  blurry  ",
        steps=20,
        guidance=0.0,  # a real value, not "unset": kept
    )
    assert notes == ["size 1020x1024 rounded to 1024x1024 (multiples of 8)"]
    assert call.diffusers_kwargs() == {
        "prompt": "a castle",
        "negative_prompt": "blurry",
        "width": 1024,
        "height": 1024,
        "num_inference_steps": 20,
        "guidance_scale": 0.0,
        "num_images_per_prompt": 2,
    }


def test_flux_drops_a_negative_prompt_with_a_note() -> None:
    call, notes = plan(DEV, prompt="p", seed=1, width=1024, height=1024, negative_prompt="ugly")
    assert notes == ["negative_prompt ignored: flux-dev takes none"]
    assert "negative_prompt" not in call.diffusers_kwargs()
    assert (call.steps, call.guidance) == (28, 3.5)


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"prompt": "  "}, "prompt is empty"),
        ({"width": 100}, "width must be between 128 and 2048, not 100"),
        ({"height": 4096}, "height must be between 128 and 2048, not 4096"),
        ({"num_outputs": 5}, "num_outputs must be between 1 and 4, not 5"),
        ({"num_outputs": 0}, "num_outputs must be between 1 and 4, not 0"),
        ({"steps": 0}, "num_inference_steps must be between 1 and 100, not 0"),
        ({"guidance": -1.0}, "guidance_scale must be between 0.0 and 30.0, not -1.0"),
    ],
)
def test_inputs_out_of_range_are_refused_with_the_limits(
    inputs: dict[str, Any], message: str
) -> None:
    given: dict[str, Any] = {"prompt": "p", "seed": 1, "width": 512, "height": 512} | inputs
    with pytest.raises(InputError) as caught:
        plan(SCHNELL, **given)
    assert str(caught.value) == message


# --- seeds ------------------------------------------------------------------------------------


def test_a_given_seed_is_used_zero_included() -> None:
    assert resolve_seed(0, draw=lambda: 99) == (0, False)
    assert resolve_seed(4294967295) == (4294967295, False)


def test_no_seed_draws_one_and_says_so() -> None:
    assert resolve_seed(None, draw=lambda: 123) == (123, True)
    seeds = {resolve_seed(None)[0] for _ in range(5)}
    assert all(0 <= s <= txt2img.SEED_MAX for s in seeds) and len(seeds) > 1


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_a_seed_outside_pixelpipe_s_range_is_refused(seed: int) -> None:
    with pytest.raises(InputError, match="seed must be between 0 and 4294967295"):
        resolve_seed(seed)


# --- output files -----------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "pil"), [("png", "PNG"), ("webp", "WEBP"), ("jpg", "JPEG")])
def test_images_are_written_in_the_format_asked_in_order(
    tmp_path: Path, fmt: str, pil: str
) -> None:
    images = [Image.new("RGBA", (32, 16), (255, 0, 0, 255)), Image.new("RGB", (16, 32), "blue")]
    paths = save_images(images, fmt, 90, tmp_path)
    assert [p.name for p in paths] == [f"out-0.{fmt}", f"out-1.{fmt}"]
    opened = [Image.open(io.BytesIO(p.read_bytes())) for p in paths]
    assert [(im.format, im.size) for im in opened] == [(pil, (32, 16)), (pil, (16, 32))]
    assert opened[1].convert("RGB").getpixel((8, 8))[2] > 200  # blue, within lossy error


def test_an_unknown_format_or_quality_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    image = Image.new("RGB", (8, 8))
    with pytest.raises(InputError, match="output_format must be one of png, webp, jpg, not 'gif'"):
        save_images([image], "gif", 90, tmp_path)
    with pytest.raises(InputError, match="output_quality must be between 1 and 100, not 0"):
        save_images([image], "webp", 0, tmp_path)
    assert list(tmp_path.iterdir()) == []


# --- settings and pipelines -------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    assert ExampleSettings.from_env({}) == ExampleSettings(
        "black-forest-labs/FLUX.1-schnell", None, "diffusers", False, None
    )
    env = {
        "PIXELPIPE_EXAMPLE_MODEL": "stabilityai/stable-diffusion-xl-base-1.0",
        "PIXELPIPE_EXAMPLE_FAMILY": "sdxl",
        "PIXELPIPE_EXAMPLE_PIPELINE": "stub",
        "PIXELPIPE_EXAMPLE_CPU_OFFLOAD": "yes",
        "PIXELPIPE_EXAMPLE_VARIANT": "none",
    }
    assert ExampleSettings.from_env(env) == ExampleSettings(
        "stabilityai/stable-diffusion-xl-base-1.0", "sdxl", "stub", True, "none"
    )
    with pytest.raises(ConfigError, match="PIXELPIPE_EXAMPLE_PIPELINE='gpu': use one of"):
        ExampleSettings.from_env({"PIXELPIPE_EXAMPLE_PIPELINE": "gpu"})


def test_the_weights_variant_is_the_family_s_unless_set() -> None:
    assert ExampleSettings().variant_for(SDXL) == "fp16"
    assert ExampleSettings().variant_for(SCHNELL) is None
    assert ExampleSettings(variant="none").variant_for(SDXL) is None
    assert ExampleSettings(variant="bf16").variant_for(SCHNELL) == "bf16"


def test_the_stub_loads_without_torch_or_diffusers() -> None:
    preset, pipeline = load_pipeline(ExampleSettings(pipeline="stub"))
    assert preset is SCHNELL and isinstance(pipeline, StubPipeline)
    assert "torch" not in sys.modules and "diffusers" not in sys.modules  # imported by setup only


def test_the_stub_draws_a_function_of_prompt_seed_and_index() -> None:
    call = Txt2ImgCall("p", None, 32, 16, 4, 0.0, 2, seed=5)
    first, second = StubPipeline()(call)
    assert first.size == (32, 16)
    assert first.getpixel((0, 0)) == stub_colour("p", 5, 0) != stub_colour("p", 6, 0)
    assert second.getpixel((0, 0)) == stub_colour("p", 5, 1)


class _Generator:
    def __init__(self, device: str) -> None:
        self.device, self.seed = device, -1

    def manual_seed(self, seed: int) -> _Generator:
        self.seed = seed
        return self


class _InferenceMode:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_the_diffusers_adapter_passes_the_kwargs_and_a_generator_seeded_with_the_seed() -> None:
    """torch is not installed here: a stand-in with the two names the adapter uses, and a
    pipeline that records its call (the real call needs a GPU: see the example's README)."""
    seen: dict[str, Any] = {}

    def pipe(**kwargs: Any) -> SimpleNamespace:
        seen.update(kwargs)
        return SimpleNamespace(images=[Image.new("RGB", (8, 8))])

    torch = SimpleNamespace(Generator=_Generator, inference_mode=_InferenceMode)
    call, _ = plan(SCHNELL, prompt="p", seed=31, width=512, height=512)
    images = DiffusersPipeline(pipe, torch)(call)
    generator = seen.pop("generator")
    assert (generator.device, generator.seed) == ("cpu", 31)
    assert seen == call.diffusers_kwargs() and len(images) == 1


# --- the predictor's interface ----------------------------------------------------------------


def run_inputs() -> dict[str, Any]:
    """``Predictor.run``'s inputs: name -> cog's ``Input`` (a FieldInfo)."""
    params = list(inspect.signature(predict.Predictor.run).parameters.values())[1:]
    return {p.name: p.default for p in params}


def test_the_predictor_takes_every_input_pixelpipe_s_cog_backend_sends() -> None:
    """coglet fails a run on an input the predictor does not declare (without a schema) or drops
    it without a word (with one): every name pixelpipe sends must be an input here."""
    req = canon(model="preview", negative_prompt="blurry", steps=20, guidance=5.0)
    sent = cog_input(req, {"output_format": "webp"})
    assert set(sent) == {
        "prompt",
        "seed",
        "width",
        "height",
        "num_outputs",
        "negative_prompt",
        "num_inference_steps",
        "guidance_scale",
        "output_format",
    }
    assert set(sent) <= set(run_inputs())


def test_the_signature_s_literal_limits_match_txt2img() -> None:
    """The limits are literals in ``run`` (``cog build`` parses it without running it)."""
    inputs = run_inputs()
    limits = {name: (field.ge, field.le) for name, field in inputs.items() if field.ge is not None}
    assert limits == {
        "seed": (0, txt2img.SEED_MAX),
        "width": (txt2img.MIN_SIDE, txt2img.MAX_SIDE),
        "height": (txt2img.MIN_SIDE, txt2img.MAX_SIDE),
        "num_outputs": (1, txt2img.MAX_OUTPUTS),
        "num_inference_steps": (1, txt2img.MAX_STEPS),
        "guidance_scale": (0.0, txt2img.MAX_GUIDANCE),
        "output_quality": (1, 100),
    }
    assert inputs["output_format"].choices == list(txt2img.OUTPUT_FORMATS)
    assert inputs["seed"].default is None and inputs["num_inference_steps"].default is None


def test_the_predictor_runs_in_process_on_the_stub(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where run() writes its files
    monkeypatch.setenv("PIXELPIPE_EXAMPLE_PIPELINE", "stub")
    monkeypatch.setenv("PIXELPIPE_EXAMPLE_MODEL", "stabilityai/stable-diffusion-xl-base-1.0")
    predictor = predict.Predictor()
    predictor.setup()
    given = {name: field.default for name, field in run_inputs().items()}
    given |= {"prompt": "a lighthouse", "seed": 11, "width": 300, "output_format": "webp"}
    (path,) = predictor.run(**given)
    image = Image.open(path)
    assert path.parent.parent == tmp_path
    assert (image.format, image.size) == ("WEBP", (304, 1024))
    assert predictor.preset is SDXL
    (second,) = predictor.run(**given)
    assert second.exists() and not path.exists()  # the previous run's files are removed


def test_the_readme_s_catalog_block_is_a_valid_catalog_file(tmp_path: Path) -> None:
    readme = (EXAMPLE_DIR / "README.md").read_text()
    (block,) = re.findall(r"^```toml\n(.*?)^```$", readme, flags=re.DOTALL | re.MULTILINE)
    path = tmp_path / "catalog.toml"
    path.write_text(block)
    operator = operator_file(load_settings(catalog_path=path))
    assert operator is not None
    assert [(b.name, b.kind) for b in operator.backends] == [
        ("gpu_flux", "cog"),
        ("gpu_sdxl", "cog"),
    ]
    assert {m.name for m in operator.models} == {"flux-schnell", "sdxl-house"}


def test_cog_yaml_builds_this_predictor_with_pinned_packages() -> None:
    config = yaml.safe_load((EXAMPLE_DIR / "cog.yaml").read_text())
    assert config["build"]["gpu"] is True
    assert config["build"]["python_version"] == "3.11"
    assert config["run"] == "predict.py:Predictor"
    requirements = (EXAMPLE_DIR / config["build"]["python_requirements"]).read_text()
    pins = dict(line.split("==") for line in requirements.splitlines() if line and line[0] != "#")
    assert {"torch", "diffusers", "transformers", "accelerate", "sentencepiece"} <= set(pins)
    assert all(version.strip() for version in pins.values())
