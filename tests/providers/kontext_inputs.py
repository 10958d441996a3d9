"""Input images for the FLUX Kontext tests (Replicate and fal)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
from typing import Any

from PIL import Image

from pixelpipe.providers.base import InputImage, ProviderRequest

from .conftest import CATALOG, canon


def input_image(size: tuple[int, int] = (600, 400), fmt: str = "PNG") -> InputImage:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(buf, fmt)
    data = buf.getvalue()
    ctype = f"image/{fmt.lower()}"
    return InputImage("sha256:" + hashlib.sha256(data).hexdigest(), ctype, data, *size)


def edit(provider: str, *images: InputImage, **kw: Any) -> ProviderRequest:
    kw.setdefault("model", "flux-kontext-pro")
    req = canon(**kw)
    model_id = CATALOG.get(req.model).provider_ids[provider]
    return ProviderRequest("job_k", 1, req, model_id, images=images)


def decoded(uri: str) -> bytes:
    head, _, data = uri.partition(",")
    assert head.endswith(";base64")
    return base64.b64decode(data)


def match_input(req: ProviderRequest) -> ProviderRequest:
    """``req`` with no aspect ratio asked: Kontext draws at the input image's shape."""
    return dataclasses.replace(req, request=dataclasses.replace(req.request, aspect_ratio=None))
