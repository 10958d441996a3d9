"""Input schemas of Replicate's official FLUX models (providers.md §1.10), strictly validated.

The fake answers a bad input the way Replicate does: 422 problem+json with ``invalid_fields``
(``required``, ``enum``, ``number_lte``/``number_gte``, ``type``,
``additional_property_not_allowed``).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pixelpipe.fakes.replicate_kontext import KONTEXT_SIZES, data_uri_image, is_uri, kontext_size

FLUX_RATIOS = ("1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21")
PRO_RATIOS = ("custom", "1:1", "16:9", "3:2", "2:3", "4:5", "5:4", "9:16", "3:4", "4:3")
FORMATS = ("webp", "jpg", "png")
KONTEXT_RATIOS = ("match_input_image", *KONTEXT_SIZES, "4:5", "5:4")
BODY_FIELDS = frozenset(
    {"input", "webhook", "webhook_events_filter", "stream", "webhook_completed"}
)
EVENTS = frozenset({"start", "output", "logs", "completed"})
_PREFER = re.compile(r"^\s*wait(?:=(\d+))?\s*$")

# field -> ("str",) | ("bool",) | ("int", lo, hi) | ("num", lo, hi) | ("enum", values)
Field = tuple[Any, ...]
_FLUX_COMMON: dict[str, Field] = {
    "prompt": ("str",),
    "aspect_ratio": ("enum", FLUX_RATIOS),
    "num_outputs": ("int", 1, 4),
    "seed": ("int", None, None),
    "output_format": ("enum", FORMATS),
    "output_quality": ("int", 0, 100),
    "disable_safety_checker": ("bool",),
    "go_fast": ("bool",),
    "megapixels": ("enum", ("1", "0.25")),
}
SCHEMAS: dict[str, dict[str, Field]] = {
    "black-forest-labs/flux-schnell": _FLUX_COMMON | {"num_inference_steps": ("int", 1, 4)},
    "black-forest-labs/flux-dev": _FLUX_COMMON
    | {
        "num_inference_steps": ("int", 1, 50),
        "guidance": ("num", 0, 10),
        "image": ("uri",),
        "prompt_strength": ("num", 0, 1),
    },
    "black-forest-labs/flux-kontext-pro": {
        "prompt": ("str",),
        "input_image": ("uri",),
        "aspect_ratio": ("enum", KONTEXT_RATIOS),
        "seed": ("int", None, None),
        "output_format": ("enum", ("jpg", "png")),
        "safety_tolerance": ("int", 0, 6),
        "prompt_upsampling": ("bool",),
    },
    "black-forest-labs/flux-1.1-pro": {
        "prompt": ("str",),
        "image_prompt": ("str",),
        "aspect_ratio": ("enum", PRO_RATIOS),
        "width": ("int", 256, 1440),
        "height": ("int", 256, 1440),
        "safety_tolerance": ("int", 1, 6),
        "seed": ("int", None, None),
        "prompt_upsampling": ("bool",),
        "output_format": ("enum", FORMATS),
        "output_quality": ("int", 0, 100),
    },
}
# Kept apart from providers.replicate.client.FLUX_SIZES on purpose: the fake models Replicate's
# documented sizes, so a mistake in our client's table shows up in the tests instead of hiding.
FLUX_SIZES = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "21:9": (1536, 640),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "4:5": (896, 1088),
    "5:4": (1088, 896),
    "3:4": (896, 1152),
    "4:3": (1152, 896),
    "9:16": (768, 1344),
    "9:21": (640, 1536),
}


def version_id(model: str) -> str:
    """The fake's (stable) 64-hex version id of an official model."""
    return hashlib.sha256(model.encode()).hexdigest()


VERSIONS = {version_id(m): m for m in SCHEMAS}


def validate(model: str, data: Any) -> list[dict[str, str]]:
    """Replicate-style ``invalid_fields`` for ``data`` against the model's schema."""
    if not isinstance(data, dict):
        return [_invalid("type", "input", "Invalid type. Expected: object")]
    schema = SCHEMAS[model]
    errors = (
        [_invalid("required", "input.prompt", "prompt is required")] if "prompt" not in data else []
    )
    for name, value in data.items():
        spec = schema.get(name)
        if spec is None:
            errors.append(
                _invalid(
                    "additional_property_not_allowed",
                    "input",
                    f"Additional property {name} is not allowed",
                )
            )
            continue
        problem = _check(spec, value)
        if problem:
            errors.append(_invalid(problem[0], f"input.{name}", problem[1]))
    return errors + _custom_size_errors(model, data) + _input_image_errors(data)


def _check(spec: Field, value: Any) -> tuple[str, str] | None:
    kind = spec[0]
    if kind == "str":
        return None if isinstance(value, str) else ("type", "Invalid type. Expected: string")
    if kind == "bool":
        return None if isinstance(value, bool) else ("type", "Invalid type. Expected: boolean")
    if kind == "uri":
        return None if is_uri(value) else ("format", "Does not match format 'uri'")
    if kind == "enum":
        return None if value in spec[1] else ("enum", f"must be one of: {', '.join(spec[1])}")
    return _check_number(kind, spec[1], spec[2], value)


def _check_number(
    kind: str, lo: float | None, hi: float | None, value: Any
) -> tuple[str, str] | None:
    ok_type = isinstance(value, int) if kind == "int" else isinstance(value, int | float)
    if not ok_type or isinstance(value, bool):
        expected = "integer" if kind == "int" else "number"
        return "type", f"Invalid type. Expected: {expected}"
    if hi is not None and value > hi:
        return "number_lte", f"Must be less than or equal to {hi}"
    if lo is not None and value < lo:
        return "number_gte", f"Must be greater than or equal to {lo}"
    return None


def _custom_size_errors(model: str, data: dict[str, Any]) -> list[dict[str, str]]:
    if data.get("aspect_ratio") != "custom":
        return []
    return [
        _invalid("required", f"input.{side}", f"{side} is required when aspect_ratio is custom")
        for side in ("width", "height")
        if side not in data
    ]


def _input_image_errors(data: dict[str, Any]) -> list[dict[str, str]]:
    """An input image (Kontext's ``input_image``, FLUX dev's ``image``) must be one the model can
    read; with Kontext's, safety_tolerance is at most 2."""
    if is_uri(data.get("image")):
        try:
            data_uri_image(str(data["image"]))
        except ValueError as exc:
            return [_invalid("format", "input.image", f"Invalid image: {exc}")]
    value = data.get("input_image")
    if not is_uri(value):
        return []
    try:
        data_uri_image(str(value))
    except ValueError as exc:
        return [_invalid("format", "input.input_image", f"Invalid image: {exc}")]
    tolerance = data.get("safety_tolerance", 2)
    if isinstance(tolerance, int) and tolerance > 2:
        message = "Must be less than or equal to 2 when input_image is given"
        return [_invalid("number_lte", "input.safety_tolerance", message)]
    return []


def _invalid(kind: str, fld: str, description: str) -> dict[str, str]:
    return {"type": kind, "field": fld, "description": description}


def output_size(model: str, data: dict[str, Any]) -> tuple[int, int]:
    """The size of the image the model would draw for this input."""
    if "kontext" in model:
        image = data.get("input_image")
        return kontext_size(data.get("aspect_ratio"), image if isinstance(image, str) else None)
    ratio = str(data.get("aspect_ratio", "1:1"))
    if isinstance(data.get("image"), str):  # image-to-image: the input's aspect ratio wins
        ratio = _nearest_ratio(data_uri_image(data["image"])) or ratio
    if ratio == "custom":
        return _round32(int(data["width"])), _round32(int(data["height"]))
    w, h = FLUX_SIZES[ratio]
    return (w // 2, h // 2) if data.get("megapixels") == "0.25" else (w, h)


def _nearest_ratio(image: Any) -> str | None:
    if image is None:
        return None
    shape = image.width / image.height
    return min(FLUX_SIZES, key=lambda r: abs(FLUX_SIZES[r][0] / FLUX_SIZES[r][1] - shape))


def _round32(value: int) -> int:
    return round(value / 32) * 32


# --- request body and headers -------------------------------------------------------------


def body_errors(body: dict[str, Any], allowed: frozenset[str]) -> list[dict[str, str]]:
    errors = [
        {
            "type": "additional_property_not_allowed",
            "field": "(root)",
            "description": f"Additional property {k} is not allowed",
        }
        for k in body
        if k not in allowed
    ]
    if "input" not in body:
        errors.append({"type": "required", "field": "(root)", "description": "input is required"})
    hook = body.get("webhook")
    if hook is not None and not (
        isinstance(hook, str) and hook.startswith(("http://", "https://"))
    ):
        errors.append(
            {"type": "format", "field": "webhook", "description": "Does not match format 'uri'"}
        )
    events = body.get("webhook_events_filter")
    if events is not None and not (isinstance(events, list) and set(events) <= EVENTS):
        errors.append(
            {
                "type": "enum",
                "field": "webhook_events_filter",
                "description": "must be start, output, logs or completed",
            }
        )
    return errors


def prefer_wait(header: str | None) -> int | None:
    """None = no wait; 0 = invalid; else the seconds to hold the request (1..60)."""
    if not header:
        return None
    m = _PREFER.match(header)
    if not m:
        return None
    n = int(m.group(1)) if m.group(1) else 60
    return n if 1 <= n <= 60 else 0


def model_of_version(version: Any) -> str | None:
    if not isinstance(version, str):
        return None
    if version in VERSIONS:
        return VERSIONS[version]
    name, sep, vid = version.partition(":")
    if sep:
        return name if VERSIONS.get(vid) == name else None
    return version if version in SCHEMAS else None
