"""The OpenAI fake's ``POST /v1/images/edits``: multipart checked as the real API checks it.

Fields (openai-python ``image_edit_params``): ``image`` (one file) or ``image[]`` (repeated, up to
16 for GPT image models; dall-e-2 takes one square PNG), ``mask`` (a PNG with an alpha channel,
the first image's size: fully transparent where to edit), ``prompt``, ``model`` (default
dall-e-2), ``n``, ``size``, ``quality``, ``background``, ``output_format``,
``output_compression``, ``input_fidelity``, ``moderation``, ``response_format`` (dall-e-2),
``stream``, ``partial_images``, ``user``. Refusals use the messages the real API answers with
where they are known (``Missing required parameter: 'image'.``, ``Invalid file 'image':
unsupported mimetype (…)``, ``Invalid mask image format - …``); the too-large message is this
fake's wording (the real one is not on record).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from pixelpipe.fakes.openai_multipart import Part
from pixelpipe.fakes.openai_rules import (
    MODELS,
    InvalidRequest,
    ModelRules,
    check_choice,
    check_prompt,
)

EDIT_MODELS = ("dall-e-2", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5")
MAX_IMAGES = 16
MAX_IMAGE_BYTES = 50 * 1024 * 1024  # GPT image models: each image < 50 MB
MAX_DALLE2_BYTES = 4 * 1024 * 1024  # dall-e-2: one square PNG < 4 MB
_MIMETYPES = ("image/jpeg", "image/png", "image/webp")
_GPT_ONLY = {
    "background",
    "output_format",
    "output_compression",
    "input_fidelity",
    "moderation",
    "stream",
    "partial_images",
}
_DALLE_ONLY = {"response_format"}
_TEXT_FIELDS = {
    "model",
    "prompt",
    "n",
    "size",
    "quality",
    "user",
    "background",
    "output_format",
    "output_compression",
    "input_fidelity",
    "moderation",
    "response_format",
    "stream",
    "partial_images",
}


@dataclass(frozen=True, slots=True)
class EditImage:
    field: str  # "image" or "image[]"
    filename: str
    content_type: str
    width: int
    height: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class EditForm:
    """A checked edit request: its text fields (as the JSON body of a generation would have
    them), its images and its mask, as the fake saw them."""

    model: str
    rules: ModelRules
    body: dict[str, Any]
    images: tuple[EditImage, ...]
    mask: EditImage | None
    seed: int  # from the images' bytes: a different input, a different picture


def check_edit(parts: list[Part], max_image_bytes: int = MAX_IMAGE_BYTES) -> EditForm:
    """The edit the form asks for, or :class:`InvalidRequest` with the real API's wording."""
    body = _text_fields(parts)
    model = str(body.get("model", "dall-e-2"))
    if model not in EDIT_MODELS:
        message = f"Invalid value: '{model}'. Value must be one of {', '.join(EDIT_MODELS)}."
        raise InvalidRequest(message, "model", "invalid_value")
    rules = MODELS[model]
    files = [p for p in parts if p.name in ("image", "image[]")]
    if not files:
        raise InvalidRequest(
            "Missing required parameter: 'image'.", "image", "missing_required_parameter"
        )
    limit = max_image_bytes if rules.gpt else min(max_image_bytes, MAX_DALLE2_BYTES)
    if len(files) > (MAX_IMAGES if rules.gpt else 1):
        message = (
            f"Invalid 'image': array too long. Expected an array with maximum length "
            f"{MAX_IMAGES if rules.gpt else 1}, but got an array with length {len(files)} instead."
        )
        raise InvalidRequest(message, "image", "array_above_max_length")
    images = tuple(_image(p, limit, rules) for p in files)
    mask_part = next((p for p in parts if p.name == "mask"), None)
    mask = _mask(mask_part, images[0], limit) if mask_part is not None else None
    _check_fields(body, rules)
    digest = hashlib.sha256(b"".join(hashlib.sha256(p.data).digest() for p in files)).digest()
    return EditForm(model, rules, body, images, mask, int.from_bytes(digest[:4], "big"))


def _check_fields(body: dict[str, Any], rules: ModelRules) -> None:
    for name in body:
        if name in (_DALLE_ONLY if rules.gpt else _GPT_ONLY):
            raise InvalidRequest(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    check_prompt(body.get("prompt"), rules)
    check_choice(body, "size", rules.sizes)
    check_choice(body, "quality", rules.qualities)
    check_choice(body, "output_format", ("png", "jpeg", "webp"))
    check_choice(body, "response_format", ("url", "b64_json"))
    n = body.get("n", 1)
    if not 1 <= n <= 10:
        raise InvalidRequest(
            f"Invalid 'n': integer above maximum value. Expected a value <= 10, but got {n} "
            "instead.",
            "n",
            "integer_above_max_value",
        )


def _text_fields(parts: list[Part]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for part in parts:
        if part.name in ("image", "image[]", "mask"):
            continue
        if part.name not in _TEXT_FIELDS:
            raise InvalidRequest(
                f"Unknown parameter: '{part.name}'.", part.name, "unknown_parameter"
            )
        body[part.name] = part.text
    if "n" in body:
        try:
            body["n"] = int(body["n"])
        except ValueError:
            message = f"Invalid type for 'n': expected an integer, but got '{body['n']}' instead."
            raise InvalidRequest(message, "n", "invalid_type") from None
    check_choice(body, "input_fidelity", ("high", "low"))
    check_choice(body, "background", ("transparent", "opaque", "auto"))
    return body


def _file(part: Part, limit: int, mimetypes: tuple[str, ...]) -> Image.Image:
    name = part.name.removesuffix("[]")
    if part.filename is None:
        raise InvalidRequest(f"Invalid file '{name}': missing filename", name, "invalid_file")
    if part.content_type not in mimetypes:
        supported = ", ".join(f"'{m}'" for m in mimetypes[:-1])
        supported = f"{supported}, and '{mimetypes[-1]}'" if supported else f"'{mimetypes[-1]}'"
        message = (
            f"Invalid file '{name}': unsupported mimetype ('{part.content_type}'). "
            f"Supported file formats are {supported}."
        )
        raise InvalidRequest(message, name, "unsupported_file_mimetype")
    if len(part.data) > limit:
        message = (
            f"Invalid file '{name}': file too large ({len(part.data)} bytes). "
            f"Each image must be smaller than {limit // (1024 * 1024)} MB."
        )
        raise InvalidRequest(message, name, "file_too_large")
    try:
        image = Image.open(io.BytesIO(part.data))
        image.load()
    except (UnidentifiedImageError, OSError):
        message = f"Invalid image file or mode for {name}, please check your image file."
        raise InvalidRequest(message, name, "invalid_image_file") from None
    return image


def _image(part: Part, limit: int, rules: ModelRules) -> EditImage:
    mimetypes = _MIMETYPES if rules.gpt else ("image/png",)
    image = _file(part, limit, mimetypes)
    if not rules.gpt and image.width != image.height:
        raise InvalidRequest(
            "Invalid input image - image must be square.", "image", "invalid_image_file"
        )
    return EditImage(part.name, str(part.filename), part.content_type, *image.size, len(part.data))


def _mask(part: Part, first: EditImage, limit: int) -> EditImage:
    image = _file(part, limit, ("image/png",))
    if "A" not in image.getbands() and "transparency" not in image.info:
        message = "Invalid mask image format - mask image missing alpha channel"
        raise InvalidRequest(message, "mask", "invalid_image_format")
    if image.size != (first.width, first.height):
        message = "Invalid mask image format - mask size does not match image size"
        raise InvalidRequest(message, "mask", "invalid_image_format")
    return EditImage("mask", str(part.filename), part.content_type, *image.size, len(part.data))


def image_tokens(images: tuple[EditImage, ...], fidelity: str) -> int:
    """Input image tokens (this fake's model of them): 65 + 129 per 512 px tile of each image
    scaled to fit 2048 with its short side at most 512; high fidelity adds 4096 per image."""
    total = 0
    for image in images:
        scale = min(1.0, 2048 / max(image.width, image.height))
        w, h = image.width * scale, image.height * scale
        short = min(1.0, 512 / min(w, h))
        tiles = -(-int(w * short) // 512) * -(-int(h * short) // 512)
        total += 65 + 129 * tiles + (4096 if fidelity == "high" else 0)
    return total
