"""Stage 1 — intake: validate a generation request against the catalog and canonicalise it.

The wire model (:class:`GenerationRequest`) rejects unknown fields. :func:`canonicalize` resolves
defaults (format, size, steps, seed) against the model's limits, so that every later stage works on
one explicit, complete :class:`CanonicalRequest` — the input of the content key.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from pixelpipe.catalog import Catalog, ModelSpec
from pixelpipe.entropy import random_below
from pixelpipe.errors import InvalidRequest

ImageFormat = Literal["webp", "png", "jpeg"]
MAX_INPUT_IMAGES = 16
SEED_MAX = 2**32 - 1
_SIZE_RE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
# C0/C1 control characters, and the bidirectional overrides/isolates that make text display in an
# order other than it is stored ("Trojan Source", CVE-2021-42574) — a spoofing tool in a gallery.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# Half of a UTF-16 pair on its own (JSON can spell one: "\ud800"); not a character, not UTF-8.
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def lone_surrogate(text: str) -> str | None:
    """What is wrong with ``text`` if it holds a lone UTF-16 surrogate (else None). The message
    spells the code point as an escape, so that it can itself be sent as UTF-8."""
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (
        f"contains a lone UTF-16 surrogate (\\u{ord(found.group()):04x}) at character "
        f"{found.start() + 1}: half of an escaped pair, it is not a character. Send valid "
        "Unicode text (UTF-8); a character above U+FFFF is escaped as both halves, e.g. "
        "\\ud83e\\udd8a"
    )


def _unicode_text(value: Any) -> Any:
    if isinstance(value, str) and (message := lone_surrogate(value)) is not None:
        raise PydanticCustomError("lone_surrogate", message)
    return value


# Every text field of a request: checked before any other rule (a length limit included), so the
# answer names the field and says what to fix instead of failing later as a 500.
Text = Annotated[str, BeforeValidator(_unicode_text)]


class GenerationRequest(BaseModel):
    """Body of ``POST /v1/generations`` and ``POST /v1/estimates``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    prompt: Text = Field(..., description="What to draw.", examples=["a red fox in the snow"])
    model: Text = Field("preview", description="A model name from GET /v1/models.")
    size: Text | None = Field(None, description="WIDTHxHEIGHT, e.g. 1024x1024.")
    aspect_ratio: Text | None = Field(None, description="e.g. 16:9; alternative to size.")
    seed: int | None = Field(None, description="0..4294967295; omitted = random.")
    format: ImageFormat | None = Field(None, description="webp, png or jpeg.")
    quality: Text | None = Field(
        None, description="Model-specific quality tier (gpt-image-1, dall-e-3)."
    )
    steps: int | None = Field(None, description="Inference steps, within the model's range.")
    guidance: float | None = Field(None, description="Guidance scale, within the model's range.")
    negative_prompt: Text | None = Field(None, description="Only for models that support it.")
    n: int = Field(1, description="Images per request (1; send several requests for more).")
    provider: Text | None = Field(None, description="Force one provider of the model.")
    group: Text | None = Field(
        None, max_length=64, description="Group label, e.g. a comparison id."
    )
    webhook: Text | None = Field(None, description="URL to POST the finished job to (signed).")
    images: list[Text] | None = Field(
        None,
        max_length=MAX_INPUT_IMAGES,
        description="Input images of an edit, in order: upload ids (POST /v1/uploads), "
        "generation ids of this server, or https URLs; only for models that take them.",
    )
    mask: Text | None = Field(
        None, description="Mask of an edit (upload id, generation id or https URL)."
    )
    strength: float | None = Field(
        None, description="Image-to-image strength, within the model's range (with images)."
    )
    input_fidelity: Literal["low", "high"] | None = Field(
        None,
        description="How closely an edit keeps the faces and details of its input images "
        "(OpenAI's input_fidelity; with images, for models that have it).",
    )
    priority: int | None = Field(
        None,
        ge=0,
        le=9,
        description="0-9, higher runs first (default: 6 for one request, 3 in a batch; at most "
        "your API key's ceiling). Not part of the request's content key.",
    )


#: the priority of a request that asks for none, by how it came (docs/queue.md)
DEFAULT_PRIORITY = {"interactive": 6, "batch": 3}


def resolve_priority(asked: int | None, kind: str, ceiling: int) -> int:
    """A request's priority: what it asked for (never above the key's ``ceiling``: an error that
    says so), else the default of its ``kind`` (``interactive`` or ``batch``) within the ceiling."""
    if asked is None:
        return min(DEFAULT_PRIORITY[kind], ceiling)
    if asked > ceiling:
        raise _fail(
            "priority",
            f"priority {asked} is above this API key's ceiling of {ceiling}; ask for {ceiling} "
            "or less (an operator sets ceilings: PIXELPIPE_QUEUE_CEILINGS)",
        )
    return asked


def new_request(prompt: str, **params: Any) -> GenerationRequest:
    """A :class:`GenerationRequest` from Python values (the ``Pipeline``, the CLI): what does not
    validate raises :class:`InvalidRequest` naming the field, as the HTTP API answers it."""
    try:
        return GenerationRequest(prompt=prompt, **params)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err.get("loc", ())) or "request"
        message = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            message = "unknown parameter; remove it (see GenerationRequest for the accepted ones)"
        raise InvalidRequest(f"{field}: {message}", field=field) from None


@dataclass(frozen=True, slots=True)
class CanonicalRequest:
    """A complete, explicit request: every default resolved. Input of the content key."""

    model: str
    prompt: str
    seed: int
    width: int
    height: int
    format: str
    aspect_ratio: str | None = None
    negative_prompt: str | None = None
    quality: str | None = None
    steps: int | None = None
    guidance: float | None = None
    # The digest of the model's ComfyUI workflow (pixelpipe.workflows), for a model backed by
    # one: part of the content key. None (and left out of to_dict) for every other model.
    workflow_hash: str | None = None
    # Image inputs (issue 16): the content digests ("sha256:<hex>") of the input images, in
    # order, and of the mask; ``strength`` for image-to-image. Part of the content key; empty /
    # None — and left out of to_dict — for a text-to-image request.
    images: tuple[str, ...] = ()
    mask: str | None = None
    strength: float | None = None
    input_fidelity: str | None = None  # an edit's "low" / "high" where the model has the setting

    def to_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: it deep-copies, and this runs on every rendered job
        data = {name: getattr(self, name) for name in _FIELDS}
        for name, unset in _OMITTED_WHEN_UNSET:
            if data[name] == unset:
                del data[name]  # the stored and published shape of other requests unchanged
        if self.images:
            data["images"] = list(self.images)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CanonicalRequest:
        if "images" in data:
            data = {**data, "images": tuple(data["images"])}
        return cls(**data)

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1_000_000


_FIELDS = tuple(f.name for f in fields(CanonicalRequest))
_OMITTED_WHEN_UNSET = (
    ("workflow_hash", None),
    ("images", ()),
    ("mask", None),
    ("strength", None),
    ("input_fidelity", None),
)


def normalize_prompt(prompt: str) -> str:
    """NFC, whitespace runs collapsed, ends stripped: what the key sees as "the same prompt"."""
    if not prompt.isascii():  # ASCII is already NFC
        prompt = unicodedata.normalize("NFC", prompt)
    return " ".join(prompt.split())


def _fail(field: str, detail: str) -> InvalidRequest:
    return InvalidRequest(detail, field=field)


def _check_prompt(text: str, field: str, max_chars: int) -> str:
    if _CONTROL.search(text):
        raise _fail(field, f"{field} contains control characters; remove them")
    norm = normalize_prompt(text)
    visible = bool(norm) if norm.isascii() else any(unicodedata.category(c) != "Cf" for c in norm)
    if not visible:  # empty, or only invisible format marks (none of them is ASCII)
        raise _fail(field, f"{field} is empty; write 1 to {max_chars} characters")
    if len(norm) > max_chars:
        raise _fail(field, f"{field} has {len(norm)} characters; the limit is {max_chars}")
    return norm


def _resolve_size(req: GenerationRequest, spec: ModelSpec) -> tuple[int, int, str | None]:
    if req.size and req.aspect_ratio:
        raise _fail("size", "give either size or aspect_ratio, not both")
    if req.aspect_ratio is not None:
        if req.aspect_ratio not in spec.aspect_ratios:
            allowed = ", ".join(spec.aspect_ratios)
            raise _fail(
                "aspect_ratio",
                f"aspect_ratio {req.aspect_ratio!r} is not offered by {spec.name}; use one of: "
                f"{allowed}",
            )
        w, h = spec.aspect_ratios[req.aspect_ratio]
        return w, h, req.aspect_ratio
    if req.size is None:
        ar = spec.default_aspect_ratio
        w, h = spec.aspect_ratios[ar]
        return w, h, ar
    m = _SIZE_RE.match(req.size)
    if not m:
        raise _fail("size", f"size {req.size!r} must look like WIDTHxHEIGHT, e.g. 1024x1024")
    w, h = int(m.group(1)), int(m.group(2))
    if not spec.size_allowed(w, h):
        sizes = ", ".join(f"{a}x{b}" for a, b in spec.aspect_ratios.values())
        custom = spec.custom_size
        extra = (
            f" or any size {custom.min}..{custom.max} in multiples of {custom.multiple_of}"
            if custom
            else ""
        )
        raise _fail("size", f"size {req.size} is not offered by {spec.name}; use {sizes}{extra}")
    matched = next((k for k, v in spec.aspect_ratios.items() if v == (w, h)), None)
    return w, h, matched


def _resolve_number(value: float | None, rng: Any, field: str, model: str) -> float | None:
    if rng is None:
        if value is not None:
            raise _fail(field, f"{model} does not take {field}; leave it out")
        return None
    if value is None:
        return float(rng.default)
    if not rng.min <= value <= rng.max:
        raise _fail(field, f"{field} must be between {rng.min:g} and {rng.max:g} for {model}")
    return float(value)


def _resolve_quality(req: GenerationRequest, spec: ModelSpec) -> str | None:
    if not spec.qualities:
        if req.quality is not None:
            raise _fail("quality", f"{spec.name} has no quality tiers; leave quality out")
        return None
    if req.quality is None:
        return spec.default_quality
    if req.quality not in spec.qualities:
        raise _fail("quality", f"quality must be one of {', '.join(spec.qualities)}")
    return req.quality


def _resolve_seed(seed: int | None) -> int:
    if seed is None:
        return random_below(SEED_MAX + 1)
    if not 0 <= seed <= SEED_MAX:
        raise _fail("seed", f"seed must be between 0 and {SEED_MAX}")
    return seed


def input_references(req: GenerationRequest) -> list[tuple[str, str]]:
    """(field, reference) of every input image and the mask, in order."""
    refs = [(f"images[{i}]", ref) for i, ref in enumerate(req.images or ())]
    return refs + ([("mask", req.mask)] if req.mask is not None else [])


def check_inputs(req: GenerationRequest, catalog: Catalog) -> None:
    """Refuse inputs the model cannot take — before any of them is fetched or stored."""
    spec = catalog.get(req.model)
    count = len(req.images or ())
    if count < spec.min_input_images:
        raise _fail(
            "images",
            f"{spec.name} edits images: give {_at_least(spec)} in images (upload ids from "
            "POST /v1/uploads, generation ids or https URLs)",
        )
    if count == 0 and req.mask is None and req.strength is None and req.input_fidelity is None:
        return
    takers = [m.name for m in catalog.models.values() if m.max_input_images > 0]
    which = f"models that do: {', '.join(takers)}" if takers else "no model of this server does"
    if spec.max_input_images == 0:
        raise _fail("images", f"{spec.name} takes no input images; {which}")
    if count == 0:
        raise _fail(
            "images", "a mask, strength or input_fidelity needs at least one input image in images"
        )
    if count > spec.max_input_images:
        raise _fail(
            "images", f"{spec.name} takes at most {spec.max_input_images} input images, not {count}"
        )
    if req.mask is not None and not spec.accepts_mask:
        maskers = ", ".join(m.name for m in catalog.models.values() if m.accepts_mask) or "none"
        raise _fail("mask", f"{spec.name} takes no mask; models that do: {maskers}")
    if req.input_fidelity is not None and req.input_fidelity not in spec.input_fidelities:
        havers = ", ".join(m.name for m in catalog.models.values() if m.input_fidelities) or "none"
        raise _fail(
            "input_fidelity", f"{spec.name} has no input_fidelity setting; models that do: {havers}"
        )


def _at_least(spec: ModelSpec) -> str:
    least, most = spec.min_input_images, spec.max_input_images
    if least == most:
        return f"{least} input image{'s' if least > 1 else ''}"
    return f"at least {least} input image{'s' if least > 1 else ''} (at most {most})"


def _resolve_inputs(
    req: GenerationRequest, spec: ModelSpec, digests: Mapping[str, str]
) -> tuple[tuple[str, ...], str | None, float | None]:
    def digest(field: str, ref: str) -> str:
        found = digests.get(ref)
        if found is None:
            raise _fail(
                field,
                f"{field}: {ref[:80]!r} is not an uploaded image; upload it with "
                "POST /v1/uploads and pass its id",
            )
        return found

    refs = input_references(req)
    resolved = [digest(field, ref) for field, ref in refs]
    mask = resolved.pop() if req.mask is not None else None
    strength = None
    if resolved:
        strength = _resolve_number(req.strength, spec.strength, "strength", spec.name)
    return tuple(resolved), mask, strength


def canonicalize(
    req: GenerationRequest,
    catalog: Catalog,
    *,
    max_prompt_chars: int = 1000,
    inputs: Mapping[str, str] | None = None,
) -> CanonicalRequest:
    """Validate ``req`` against the model's limits and return the complete canonical request.
    ``inputs``: each input reference of ``req`` (``images``, ``mask``) → its stored digest."""
    spec = catalog.get(req.model)
    check_inputs(req, catalog)
    images, mask, strength = _resolve_inputs(req, spec, inputs or {})
    prompt = _check_prompt(req.prompt, "prompt", max_prompt_chars)
    negative = None
    if req.negative_prompt is not None:
        if not spec.negative_prompt:
            raise _fail("negative_prompt", f"{spec.name} does not support a negative prompt")
        negative = _check_prompt(req.negative_prompt, "negative_prompt", max_prompt_chars)
    if req.n != 1:
        raise _fail("n", "n must be 1: send one request per image (each is deduplicated)")
    if req.provider is not None and req.provider not in spec.providers:
        raise _fail("provider", f"{spec.name} is served by: {', '.join(spec.providers)}")
    fmt: str = req.format or spec.default_format
    if fmt not in spec.formats:
        raise _fail("format", f"format must be one of {', '.join(spec.formats)}")
    width, height, ar = _resolve_size(req, spec)
    steps = _resolve_number(req.steps, spec.steps, "steps", spec.name)
    guidance = _resolve_number(req.guidance, spec.guidance, "guidance", spec.name)
    return CanonicalRequest(
        model=spec.name,
        prompt=prompt,
        seed=_resolve_seed(req.seed),
        width=width,
        height=height,
        format=fmt,
        aspect_ratio=ar,
        negative_prompt=negative,
        quality=_resolve_quality(req, spec),
        steps=int(steps) if steps is not None else None,
        guidance=guidance,
        workflow_hash=spec.workflow.digest if spec.workflow is not None else None,
        images=images,
        mask=mask,
        strength=strength,
        input_fidelity=req.input_fidelity if images else None,
    )
