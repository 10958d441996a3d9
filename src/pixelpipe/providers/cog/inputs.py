"""An edit's images on a cog server: which of the predictor's inputs take them, and checking
those names against the predictor's schema.

cog takes files as ``Path`` inputs given as URLs; it also takes ``data:`` URIs (the Python SDK
decodes them into a temporary file before ``run``/``predict``), so the clean bytes travel in the
prediction's body and the server needs no access to pixelpipe. The names differ per predictor
(Replicate's SDXL: ``image``, ``mask``, ``prompt_strength``; FLUX Kontext: ``input_image``); the
backend's ``options.image_inputs`` table names them:

- ``image`` (default ``"image"``): a ``Path`` input, for a model that takes one image;
- ``images``: a ``list[Path]`` input (the schema says ``"type": "array"``), for a model that
  takes several: all the images go there, in order (a model with ``max_input_images`` > 1 on a
  backend without it is refused when the catalog file is read);
- ``mask`` (default ``"mask"``): the mask, sent **white = repaint** (the SDXL convention),
  converted from OpenAI's transparent = edit (:mod:`pixelpipe.providers.masks`);
- ``strength`` (default ``"prompt_strength"``): the request's ``strength``.

Before its first edit the provider reads the predictor's schema (``GET /openapi.json``, what
``cog build`` bakes in) and refuses an edit whose inputs it lacks (or a list input that is not an
array) with the names it has, before any prediction starts. A server without a schema (503) is
not checked: coglet then passes every input through.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pixelpipe.catalog.operator_spec import InputClaims
from pixelpipe.providers.base import ProviderRequest
from pixelpipe.providers.masks import white_repaint_png

OPTION = "image_inputs"
KEYS = ("image", "images", "mask", "strength")


@dataclass(frozen=True, slots=True)
class ImageInputs:
    """The predictor's input names for an edit (see the module docstring)."""

    image: str = "image"
    images: str | None = None  # a list[Path] input: all the images go there
    mask: str = "mask"
    strength: str = "prompt_strength"

    def used(self, req: ProviderRequest) -> dict[str, bool]:
        """The inputs ``req`` fills: name -> whether it must be an array."""
        names = {self.images: True} if self.images else {self.image: False}
        if req.mask is not None:
            names[self.mask] = False
        if req.request.strength is not None:
            names[self.strength] = False
        return names

    def fields(self, req: ProviderRequest) -> dict[str, Any]:
        """The prediction inputs of ``req``'s images, mask and strength."""
        uris = [i.data_uri() for i in req.images]
        out: dict[str, Any] = {self.images: uris} if self.images else {self.image: uris[0]}
        if req.mask is not None:
            out[self.mask] = _png_uri(white_repaint_png(req.mask))
        if req.request.strength is not None:
            out[self.strength] = req.request.strength
        return out


def read_image_inputs(options: Mapping[str, Any]) -> ImageInputs | str:
    """The backend's ``options.image_inputs``, or what is wrong with it."""
    table = options.get(OPTION, {})
    fix = (
        f'{OPTION} must be a table of input names, e.g. {OPTION} = {{ image = "input_image", '
        f'mask = "mask", strength = "prompt_strength" }} (keys: {", ".join(KEYS)})'
    )
    if not isinstance(table, Mapping):
        return fix
    unknown = [k for k in table if k not in KEYS]
    bad = [k for k, v in table.items() if not isinstance(v, str) or not v]
    if unknown or bad:
        return f"{fix}; not {', '.join(repr(k) for k in unknown + bad)}"
    return ImageInputs(**dict(table))


def check_inputs(options: Mapping[str, Any], claims: InputClaims) -> str | None:
    """The catalog's check of a model with image inputs on a ``cog`` backend: what to fix, or
    None."""
    names = read_image_inputs(options)
    if isinstance(names, str):
        return f"options.{names}"
    if claims.max_images > 1 and names.images is None:
        return (
            f"max_input_images = {claims.max_images}, but the backend sends one image (to the "
            f"Path input {names.image!r}); name the predictor's list[Path] input in the "
            f'backend\'s options ({OPTION} = {{ images = "<input>" }}) or set '
            "max_input_images = 1"
        )
    return None


def schema_problem(schema: Any, used: Mapping[str, bool]) -> str | None:
    """What the predictor's schema (``/openapi.json``) lacks of ``used`` (name -> array), or
    None; a schema without an ``Input`` object is not checked."""
    props = _input_properties(schema)
    if props is None:
        return None
    for name, array in used.items():
        field = props.get(name)
        if not isinstance(field, Mapping):
            have = ", ".join(sorted(props)) or "none"
            return f"its predictor has no input {name!r} (its inputs: {have})"
        if array and field.get("type") != "array":
            return f"its predictor's input {name!r} is not a list (type {field.get('type')!r})"
    return None


def _png_uri(png: bytes) -> str:
    """The converted mask inline (the images use :meth:`InputImage.data_uri`)."""
    return f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}"


def _input_properties(schema: Any) -> Mapping[str, Any] | None:
    if not isinstance(schema, Mapping):
        return None
    components = schema.get("components")
    schemas = components.get("schemas") if isinstance(components, Mapping) else None
    inputs = schemas.get("Input") if isinstance(schemas, Mapping) else None
    props = inputs.get("properties") if isinstance(inputs, Mapping) else None
    return props if isinstance(props, Mapping) else None
