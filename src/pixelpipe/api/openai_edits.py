"""The form of ``POST /v1/images/edits`` (OpenAI Images API, multipart) and its input images.

OpenAI's fields: ``image`` (one file) or ``image[]`` (repeated, up to 16, in order), ``mask``
(a file), ``prompt``, ``model``, ``n``, ``size``, ``quality``, ``response_format``,
``output_format``, ``user``, ``input_fidelity`` (sent on to a model whose catalog entry has
the setting, ignored for others, as clients send it to any model), and ``background``,
``output_compression`` (accepted; pixelpipe's request has no place for them), ``stream`` and
``partial_images`` (``image_edit.*`` server-sent events: :mod:`pixelpipe.api.openai_stream`).
The text fields are validated exactly like the JSON body of ``POST /v1/images/generations``
(same model, same messages), pixelpipe's extensions (``seed``, ``provider``, ``group``, …) and
``strength`` included. Each file goes through the input acceptance of ``POST /v1/uploads``
(verify, strip metadata, store content-addressed) and becomes an upload id in the generation
request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pixelpipe.api.multipart import FormPart, files_named
from pixelpipe.catalog import Catalog, ModelSpec
from pixelpipe.errors import InvalidRequest
from pixelpipe.inputs import MAX_INPUT_IMAGES, InputLimits, store_input
from pixelpipe.intake import normalize_prompt
from pixelpipe.safety import check_prompt
from pixelpipe.services import Services
from pixelpipe.storage import Storage

IMAGE_FIELDS = ("image", "image[]")
FILE_FIELDS = frozenset((*IMAGE_FIELDS, "mask"))

EDIT_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image", "prompt"],
                "properties": {
                    "image": {"type": "string", "format": "binary"},
                    "image[]": {
                        "type": "array",
                        "maxItems": MAX_INPUT_IMAGES,
                        "items": {"type": "string", "format": "binary"},
                    },
                    "mask": {"type": "string", "format": "binary"},
                    "prompt": {"type": "string"},
                    "model": {"type": "string"},
                    "n": {"type": "integer", "minimum": 1, "maximum": 10},
                    "size": {"type": "string"},
                    "quality": {"type": "string"},
                    "response_format": {"type": "string", "enum": ["url", "b64_json"]},
                    "output_format": {"type": "string", "enum": ["png", "jpeg", "webp"]},
                    "background": {"type": "string", "description": "accepted, not forwarded"},
                    "output_compression": {
                        "type": "integer",
                        "description": "accepted, not forwarded",
                    },
                    "input_fidelity": {
                        "type": "string",
                        "enum": ["low", "high"],
                        "description": "sent on to models that have the setting",
                    },
                    "user": {"type": "string"},
                    "strength": {"type": "number", "description": "pixelpipe: image-to-image"},
                    "stream": {
                        "type": "boolean",
                        "description": "Server-sent events: partial images, then the image (n=1)",
                    },
                    "partial_images": {
                        "type": "integer",
                        "minimum": 0,
                        "maximum": 3,
                        "description": "Partial images to stream (0-3)",
                    },
                },
            }
        }
    },
}


@dataclass(frozen=True, slots=True)
class EditForm:
    """The text fields (still strings) and the files of one edit request."""

    fields: dict[str, str]
    images: list[FormPart]
    mask: FormPart | None


def read_form(parts: list[FormPart]) -> EditForm:
    """Split the parts into text fields and files; 400 when the images or the mask are wrong."""
    fields: dict[str, str] = {}
    for part in parts:
        if part.name in FILE_FIELDS:
            continue
        try:
            fields[part.name] = part.data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(f"{part.name}: not UTF-8 text", field=part.name) from None
    images = files_named(parts, *IMAGE_FIELDS)
    if not images:
        raise InvalidRequest(
            "send the image to edit in the multipart field `image` (or several in `image[]`)",
            field="image",
        )
    if len(images) > MAX_INPUT_IMAGES:
        raise InvalidRequest(f"at most {MAX_INPUT_IMAGES} images, not {len(images)}", field="image")
    masks = files_named(parts, "mask")
    if len(masks) > 1:
        raise InvalidRequest("send at most one mask", field="mask")
    return EditForm(fields, images, masks[0] if masks else None)


def require_edit_model(catalog: Catalog, spec: ModelSpec) -> None:
    """400 naming the models that edit when ``spec`` takes no input images."""
    if spec.max_input_images > 0:
        return
    takers = ", ".join(sorted(m.name for m in catalog.models.values() if m.max_input_images > 0))
    raise InvalidRequest(
        f"{spec.name} does not edit images (it takes no input images); models that do: "
        f"{takers or 'none configured'}",
        field="model",
    )


async def store_edit_inputs(
    storage: Storage, form: EditForm, limits: InputLimits
) -> tuple[list[str], str | None]:
    """Each image, then the mask, verified, stripped and stored: (image upload ids, mask id)."""
    ids = []
    for i, part in enumerate(form.images):
        where = "image" if len(form.images) == 1 else f"image[{i}]"
        ids.append((await store_input(storage, part.data, limits, field=where)).id)
    mask = None
    if form.mask is not None:
        mask = (await store_input(storage, form.mask.data, limits, field="mask")).id
    return ids, mask


async def edit_inputs(
    svc: Services, form: EditForm, spec: ModelSpec, prompt: str
) -> dict[str, Any]:
    """The edit's fields of its generation requests: the stored images' upload ids, the mask's,
    ``strength`` and ``input_fidelity``. The prompt is screened first: a blocked edit stores
    nothing."""
    require_edit_model(svc.catalog, spec)
    check_prompt(normalize_prompt(prompt), svc.rules)
    strength = _strength(form.fields.get("strength"))
    fidelity = form.fields.get("input_fidelity")
    if fidelity is not None and fidelity not in ("low", "high"):
        raise InvalidRequest("input_fidelity: must be low or high", field="input_fidelity")
    if fidelity not in spec.input_fidelities:
        fidelity = None  # clients send it to any model; only one that has the setting gets it
    limits = InputLimits.from_settings(svc.settings)
    images, mask = await store_edit_inputs(svc.storage, form, limits)
    return {"images": images, "mask": mask, "strength": strength, "input_fidelity": fidelity}


def _strength(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidRequest("strength: not a number", field="strength") from None
