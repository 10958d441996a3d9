"""Input schemas of fal's FLUX endpoints (providers.md §2.8), validated the FastAPI way.

Errors come back as pydantic-style ``detail`` items: ``{"loc": ["body", field], "msg", "type"}``.
"""

from __future__ import annotations

from typing import Any

from pixelpipe.fakes.replicate_kontext import KONTEXT_SIZES, data_uri_image, is_uri, kontext_size

PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
_ANY = (None, None)
_COMMON: dict[str, tuple[Any, ...]] = {
    "prompt": ("str",),
    "image_size": ("size",),
    "num_images": ("int", 1, 4),
    "seed": ("int", *_ANY),
    "output_format": ("enum", ("jpeg", "png")),
    "sync_mode": ("bool",),
}
_FLUX = _COMMON | {
    "guidance_scale": ("num", 1, 20),
    "enable_safety_checker": ("bool",),
    "acceleration": ("enum", ("none", "regular", "high")),
}
_KONTEXT_TEXT: dict[str, tuple[Any, ...]] = {
    "prompt": ("str",),
    "aspect_ratio": ("enum", tuple(KONTEXT_SIZES)),
    "guidance_scale": ("num", 1, 20),
    "num_images": ("int", 1, 4),
    "seed": ("int", *_ANY),
    "output_format": ("enum", ("jpeg", "png")),
    "sync_mode": ("bool",),
    "safety_tolerance": ("enum", ("1", "2", "3", "4", "5", "6")),
    "enhance_prompt": ("bool",),
}
SCHEMAS: dict[str, dict[str, tuple[Any, ...]]] = {
    "fal-ai/flux-pro/kontext": _KONTEXT_TEXT | {"image_url": ("uri",)},
    "fal-ai/flux-pro/kontext/text-to-image": _KONTEXT_TEXT,
    "fal-ai/flux/schnell": _FLUX | {"num_inference_steps": ("int", 1, 12)},
    "fal-ai/flux/dev": _FLUX | {"num_inference_steps": ("int", 1, 50)},
    # image-to-image: no image_size (the output follows the input image)
    "fal-ai/flux/dev/image-to-image": {k: v for k, v in _FLUX.items() if k != "image_size"}
    | {
        "image_url": ("uri",),
        "strength": ("num", 0.01, 1),
        "num_inference_steps": ("int", 10, 50),
    },
    "fal-ai/flux-pro/v1.1": _COMMON
    | {
        "safety_tolerance": ("enum", ("1", "2", "3", "4", "5", "6")),
        "enhance_prompt": ("bool",),
    },
}


def validate(model: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """FastAPI-style ``detail`` items for ``data`` (empty when valid)."""
    schema = SCHEMAS[model]
    required = [name for name in ("prompt", "image_url") if name in schema]
    errors = [_err(name, "Field required", "missing") for name in required if name not in data]
    for name, value in data.items():
        spec = schema.get(name)
        problem = (
            ("Extra inputs are not permitted", "extra_forbidden")
            if spec is None
            else _check(spec, value)
        )
        if problem:
            errors.append(_err(name, *problem))
    return errors


def _err(name: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", name], "msg": msg, "type": kind}


def _check(spec: tuple[Any, ...], value: Any) -> tuple[str, str] | None:
    kind = spec[0]
    if kind == "str":
        return None if isinstance(value, str) else ("Input should be a valid string", "string_type")
    if kind == "bool":
        return None if isinstance(value, bool) else ("Input should be a valid boolean", "bool_type")
    if kind == "uri":
        return _uri(value)
    if kind == "enum":
        options = ", ".join(repr(v) for v in spec[1])
        return None if value in spec[1] else (f"Input should be {options}", "literal_error")
    if kind == "size":
        return (
            None
            if size_of(value)
            else ("Input should be a preset or {width, height}", "value_error")
        )
    return _number(kind, spec[1], spec[2], value)


def _number(kind: str, lo: float | None, hi: float | None, value: Any) -> tuple[str, str] | None:
    ok = isinstance(value, int) if kind == "int" else isinstance(value, int | float)
    if not ok or isinstance(value, bool):
        return "Input should be a valid number", "int_type" if kind == "int" else "float_type"
    if hi is not None and value > hi:
        return f"Input should be less than or equal to {hi}", "less_than_equal"
    if lo is not None and value < lo:
        return f"Input should be greater than or equal to {lo}", "greater_than_equal"
    return None


def _uri(value: Any) -> tuple[str, str] | None:
    if not is_uri(value):
        return "Input should be a valid URL", "url_parsing"
    try:
        data_uri_image(str(value))
    except ValueError as exc:
        return f"Invalid image: {exc}", "value_error"
    return None


def output_size(model: str, data: dict[str, Any]) -> tuple[int, int]:
    """The size of the image the endpoint would draw for this input."""
    if "kontext" in model:
        image = data.get("image_url")
        ratio = data.get("aspect_ratio") or ("1:1" if "image_url" not in data else None)
        return kontext_size(ratio, image if isinstance(image, str) else None)
    if model.endswith("/image-to-image"):
        return input_size(str(data["image_url"]))
    return size_of(data.get("image_size", "landscape_4_3")) or (1024, 768)


def input_size(image_uri: str) -> tuple[int, int]:
    """FLUX dev image-to-image draws at its input's size, in multiples of 16 (a URL the fake
    cannot read: 1024x768)."""
    image = data_uri_image(image_uri)
    if image is None:
        return 1024, 768
    return max(64, image.width // 16 * 16), max(64, image.height // 16 * 16)


def size_of(value: Any) -> tuple[int, int] | None:
    """(width, height) of an ``image_size`` value, or None when it is not valid."""
    if isinstance(value, str):
        return PRESETS.get(value)
    if not isinstance(value, dict) or set(value) != {"width", "height"}:
        return None
    w, h = value["width"], value["height"]
    if all(isinstance(v, int) and not isinstance(v, bool) and 64 <= v <= 2048 for v in (w, h)):
        return int(w), int(h)
    return None
