"""Where the images come from: a diffusers pipeline on the GPU, or a stub that needs none.

Which one, and which model, is read from the environment when the server starts
(:meth:`ExampleSettings.from_env`):

- ``PIXELPIPE_EXAMPLE_MODEL``: a Hugging Face model id or a local directory
  (default ``black-forest-labs/FLUX.1-schnell``);
- ``PIXELPIPE_EXAMPLE_FAMILY``: ``flux-schnell``, ``flux-dev`` or ``sdxl`` — the defaults to use
  (default: told from the model id);
- ``PIXELPIPE_EXAMPLE_VARIANT``: the weights' variant to download (default: the family's,
  ``fp16`` for SDXL); ``none`` for a checkpoint that has no such files;
- ``PIXELPIPE_EXAMPLE_CPU_OFFLOAD=1``: keep the parts not in use in CPU memory (a GPU with less
  memory than the model, at some speed);
- ``PIXELPIPE_EXAMPLE_PIPELINE=stub``: no model at all — flat images that are a function of the
  prompt, seed and size (what pixelpipe's tests serve under a real cog server, without a GPU).

torch and diffusers are imported in :meth:`DiffusersPipeline.load` only, so everything else here
runs without them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from PIL import Image
from txt2img import DEFAULT_MODEL, ConfigError, Preset, Txt2ImgCall, preset_for

PIPELINES = ("diffusers", "stub")
_TRUE = {"1", "true", "yes", "on"}


class ImagePipeline(Protocol):
    def __call__(self, call: Txt2ImgCall) -> list[Image.Image]: ...


@dataclass(frozen=True)
class ExampleSettings:
    model: str = DEFAULT_MODEL
    family: str | None = None
    pipeline: str = "diffusers"
    cpu_offload: bool = False
    variant: str | None = None  # None: the family's; "none": no variant

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ExampleSettings:
        pipeline = env.get("PIXELPIPE_EXAMPLE_PIPELINE", "diffusers").strip() or "diffusers"
        if pipeline not in PIPELINES:
            raise ConfigError(
                f"PIXELPIPE_EXAMPLE_PIPELINE={pipeline!r}: use one of {', '.join(PIPELINES)}"
            )
        return cls(
            model=env.get("PIXELPIPE_EXAMPLE_MODEL", "").strip() or DEFAULT_MODEL,
            family=env.get("PIXELPIPE_EXAMPLE_FAMILY", "").strip() or None,
            pipeline=pipeline,
            cpu_offload=env.get("PIXELPIPE_EXAMPLE_CPU_OFFLOAD", "").strip().lower() in _TRUE,
            variant=env.get("PIXELPIPE_EXAMPLE_VARIANT", "").strip() or None,
        )

    def variant_for(self, preset: Preset) -> str | None:
        """The weights' variant to load: this setting's, else the family's."""
        variant = preset.variant if self.variant is None else self.variant
        return None if variant == "none" else variant


def load_pipeline(settings: ExampleSettings) -> tuple[Preset, ImagePipeline]:
    """The model family's preset and its pipeline, loaded (the slow part of ``setup``)."""
    preset = preset_for(settings.model, settings.family)
    if settings.pipeline == "stub":
        return preset, StubPipeline()
    return preset, DiffusersPipeline.load(
        settings.model,
        preset,
        variant=settings.variant_for(preset),
        cpu_offload=settings.cpu_offload,
    )


class DiffusersPipeline:
    """A diffusers text-to-image pipeline (FluxPipeline, StableDiffusionXLPipeline, ...)."""

    def __init__(self, pipe: Any, torch: Any) -> None:
        self._pipe = pipe
        self._torch = torch

    @classmethod
    def load(
        cls, model: str, preset: Preset, *, variant: str | None, cpu_offload: bool
    ) -> DiffusersPipeline:
        import torch  # only here: the rest of the predictor runs without torch
        from diffusers import AutoPipelineForText2Image

        options: dict[str, Any] = {"torch_dtype": getattr(torch, preset.torch_dtype)}
        if variant:
            options["variant"] = variant
        pipe = AutoPipelineForText2Image.from_pretrained(model, **options)
        if cpu_offload:
            pipe.enable_model_cpu_offload()
        else:
            pipe.to("cuda")
        return cls(pipe, torch)

    def __call__(self, call: Txt2ImgCall) -> list[Image.Image]:
        # a CPU generator: the same seed gives the same image on any GPU (diffusers' advice)
        generator = self._torch.Generator("cpu").manual_seed(call.seed)
        with self._torch.inference_mode():
            result = self._pipe(**call.diffusers_kwargs(), generator=generator)
        return list(result.images)


class StubPipeline:
    """Flat images, each a function of (prompt, seed, index) in colour and of the call's size."""

    def __call__(self, call: Txt2ImgCall) -> list[Image.Image]:
        size = (call.width, call.height)
        return [
            Image.new("RGB", size, stub_colour(call.prompt, call.seed, i))
            for i in range(call.num_images)
        ]


def stub_colour(prompt: str, seed: int, index: int) -> tuple[int, int, int]:
    """The stub's fill colour for image ``index``: three bytes of a hash of the inputs."""
    digest = hashlib.sha256(f"{prompt}\x00{seed}\x00{index}".encode()).digest()
    return digest[0], digest[1], digest[2]
