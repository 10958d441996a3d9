"""FLUX.1 Kontext as the fakes serve it (Replicate's ``flux-kontext-pro`` and fal's
``flux-pro/kontext``: the same model on two hosts): its sizes, and the input image it is given.

Kept apart from the providers' own tables on purpose (as ``replicate_schema.FLUX_SIZES``): a
mistake in a client shows up in the tests instead of hiding.
"""

from __future__ import annotations

import base64
import binascii
import io
import re

from PIL import Image, UnidentifiedImageError

# Kontext's preferred resolutions (about 1 MP); "match_input_image" takes the nearest ratio
KONTEXT_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1392, 752),
    "9:16": (752, 1392),
    "4:3": (1184, 880),
    "3:4": (880, 1184),
    "3:2": (1248, 832),
    "2:3": (832, 1248),
    "21:9": (1568, 672),
    "9:21": (672, 1568),
}
INPUT_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_DATA_URI = re.compile(r"^data:(?P<type>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)


def is_uri(value: object) -> bool:
    """An http(s) URL or a data URI: what a Kontext image input accepts."""
    return isinstance(value, str) and value.startswith(("http://", "https://", "data:"))


def data_uri_image(value: str) -> Image.Image | None:
    """The image a data URI carries (None for a URL); ValueError when it carries no image of a
    type Kontext takes."""
    m = _DATA_URI.match(value)
    if m is None:
        if value.startswith("data:"):
            raise ValueError("the data URI is not base64")
        return None
    if m["type"] not in INPUT_TYPES:
        raise ValueError(f"unsupported image type {m['type']}")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(m["data"], validate=True)))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError):
        raise ValueError("the data URI does not hold a readable image") from None
    return image


def kontext_size(ratio: str | None, image_uri: str | None) -> tuple[int, int]:
    """The size Kontext draws: the ratio's, or the one nearest the input image's shape."""
    if ratio and ratio != "match_input_image":
        return KONTEXT_SIZES[ratio]
    image = data_uri_image(image_uri) if image_uri else None
    if image is None:
        return KONTEXT_SIZES["1:1"]
    shape = image.width / image.height
    return min(KONTEXT_SIZES.values(), key=lambda s: abs(s[0] / s[1] - shape))
