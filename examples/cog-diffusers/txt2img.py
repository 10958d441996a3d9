"""The parts of the predictor that need no GPU (and import neither torch nor diffusers).

- :class:`Preset`: what a model family needs — its default steps and guidance, the multiple its
  width and height must be, whether it takes a negative prompt, its dtype;
- :func:`plan`: the inputs pixelpipe's cog backend sends (``prompt``, ``seed``, ``width``,
  ``height``, ``num_outputs``, ``negative_prompt``, ``num_inference_steps``, ``guidance_scale``)
  checked and turned into one :class:`Txt2ImgCall`, with a note for every adjustment;
- :func:`resolve_seed`: the seed to use (a random one when none is given; it is reported back);
- :func:`save_images`: the images as PNG, WebP or JPEG files, the paths cog returns.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

SEED_MAX = 2**32 - 1  # pixelpipe's seeds are 0..4294967295
MIN_SIDE, MAX_SIDE = 128, 2048
MAX_OUTPUTS = 4
MAX_STEPS = 100
MAX_GUIDANCE = 30.0
PNG_COMPRESS_LEVEL = 1  # fast: encoding runs inside the billed predict_time; pixelpipe re-encodes
# input name -> (Pillow format, file extension)
OUTPUT_FORMATS = {"png": ("PNG", "png"), "webp": ("WEBP", "webp"), "jpg": ("JPEG", "jpg")}


class InputError(ValueError):
    """An input the model cannot run with; the message says which and what is allowed."""


class ConfigError(ValueError):
    """A setting of the server (an environment variable) that cannot work."""


@dataclass(frozen=True)
class Preset:
    """A model family: the defaults and limits of its diffusers pipeline."""

    family: str
    steps: int  # num_inference_steps when the request gives none
    guidance: float  # guidance_scale when the request gives none
    multiple_of: int  # width and height are rounded to a multiple of this
    negative_prompt: bool  # False: the pipeline has no (cheap) negative prompt; it is dropped
    torch_dtype: str  # the name of a torch dtype: "bfloat16", "float16"
    variant: str | None = None  # the weights' variant to download ("fp16"), if the repo has one
    extra: tuple[tuple[str, Any], ...] = ()  # fixed keyword arguments of every call


PRESETS = {
    # FLUX: the transformer patches 2x2 latents of an 8x VAE, hence multiples of 16. A negative
    # prompt switches on "true CFG" in FluxPipeline (two passes per step): never by default.
    "flux-schnell": Preset(
        "flux-schnell", 4, 0.0, 16, False, "bfloat16", extra=(("max_sequence_length", 256),)
    ),
    "flux-dev": Preset(
        "flux-dev", 28, 3.5, 16, False, "bfloat16", extra=(("max_sequence_length", 512),)
    ),
    "sdxl": Preset("sdxl", 30, 7.0, 8, True, "float16", variant="fp16"),
}
DEFAULT_MODEL = "black-forest-labs/FLUX.1-schnell"


def preset_for(model: str, family: str | None = None) -> Preset:
    """The preset named ``family``, else the one a model id names (schnell, FLUX, XL)."""
    if family:
        if family not in PRESETS:
            raise ConfigError(f"unknown model family {family!r}: use one of {', '.join(PRESETS)}")
        return PRESETS[family]
    name = model.lower()
    if "schnell" in name:
        return PRESETS["flux-schnell"]
    if "flux" in name:
        return PRESETS["flux-dev"]
    if "xl" in name:
        return PRESETS["sdxl"]
    raise ConfigError(
        f"cannot tell the model family of {model!r}: set PIXELPIPE_EXAMPLE_FAMILY to one of "
        f"{', '.join(PRESETS)}"
    )


@dataclass(frozen=True)
class Txt2ImgCall:
    """One pipeline call, every value resolved."""

    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    steps: int
    guidance: float
    num_images: int
    seed: int
    extra: tuple[tuple[str, Any], ...] = ()

    def diffusers_kwargs(self) -> dict[str, Any]:
        """The pipeline's keyword arguments, but the ``generator`` (made from :attr:`seed` by
        the pipeline adapter, since it is a torch object)."""
        kwargs: dict[str, Any] = {
            "prompt": self.prompt,
            "width": self.width,
            "height": self.height,
            "num_inference_steps": self.steps,
            "guidance_scale": self.guidance,
            "num_images_per_prompt": self.num_images,
        }
        if self.negative_prompt:
            kwargs["negative_prompt"] = self.negative_prompt
        return kwargs | dict(self.extra)


def round_side(value: int, multiple: int) -> int:
    """``value`` rounded to the nearest multiple of ``multiple`` (halves up), at least one."""
    return max(multiple, (value + multiple // 2) // multiple * multiple)


def resolve_seed(seed: int | None, draw: Callable[[], int] | None = None) -> tuple[int, bool]:
    """(the seed to use, whether it was drawn at random). ``draw``: where a random one comes
    from (default: :func:`secrets.randbelow` over pixelpipe's range)."""
    if seed is None:
        return (draw or _random_seed)(), True
    if not 0 <= seed <= SEED_MAX:
        raise InputError(f"seed must be between 0 and {SEED_MAX}, not {seed}")
    return seed, False


def plan(
    preset: Preset,
    *,
    prompt: str,
    seed: int,
    width: int,
    height: int,
    num_outputs: int = 1,
    negative_prompt: str = "",
    steps: int | None = None,
    guidance: float | None = None,
) -> tuple[Txt2ImgCall, list[str]]:
    """The call for these inputs, and a note (a log line) for each thing changed or dropped."""
    notes: list[str] = []
    if not prompt.strip():
        raise InputError("prompt is empty")
    _check_range("num_outputs", num_outputs, 1, MAX_OUTPUTS)
    _check_range("width", width, MIN_SIDE, MAX_SIDE)
    _check_range("height", height, MIN_SIDE, MAX_SIDE)
    if steps is not None:
        _check_range("num_inference_steps", steps, 1, MAX_STEPS)
    if guidance is not None:
        _check_range("guidance_scale", guidance, 0.0, MAX_GUIDANCE)
    w, h = round_side(width, preset.multiple_of), round_side(height, preset.multiple_of)
    if (w, h) != (width, height):
        multiple = preset.multiple_of
        notes.append(f"size {width}x{height} rounded to {w}x{h} (multiples of {multiple})")
    negative = negative_prompt.strip() or None
    if negative and not preset.negative_prompt:
        notes.append(f"negative_prompt ignored: {preset.family} takes none")
        negative = None
    call = Txt2ImgCall(
        prompt=prompt,
        negative_prompt=negative,
        width=w,
        height=h,
        steps=preset.steps if steps is None else steps,
        guidance=preset.guidance if guidance is None else guidance,
        num_images=num_outputs,
        seed=seed,
        extra=preset.extra,
    )
    return call, notes


def save_images(
    images: Sequence[Image.Image], output_format: str, quality: int, directory: Path
) -> list[Path]:
    """Each image written to ``directory/out-<i>.<ext>`` in ``output_format`` (png, webp, jpg;
    ``quality`` for the lossy ones), in order."""
    check_output(output_format, quality)
    pil_format, ext = OUTPUT_FORMATS[output_format]
    paths = []
    for i, image in enumerate(images):
        path = directory / f"out-{i}.{ext}"
        if pil_format == "PNG":
            image.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        else:
            rgb = image if image.mode == "RGB" else image.convert("RGB")
            rgb.save(path, format=pil_format, quality=quality)
        paths.append(path)
    return paths


def check_output(output_format: str, quality: int) -> None:
    """Refuse an output format or quality :func:`save_images` cannot write (before the GPU runs)."""
    if output_format not in OUTPUT_FORMATS:
        raise InputError(
            f"output_format must be one of {', '.join(OUTPUT_FORMATS)}, not {output_format!r}"
        )
    _check_range("output_quality", quality, 1, 100)


def _check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}, not {value}")


def _random_seed() -> int:
    return secrets.randbelow(SEED_MAX + 1)
