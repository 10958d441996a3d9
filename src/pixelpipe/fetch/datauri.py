"""Decode ``data:`` URIs (RFC 2397), base64 or percent-encoded, with a size cap."""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote_to_bytes

from pixelpipe.errors import ImageInvalid, OutputFetchError

_WHITESPACE = re.compile(rb"\s+")


def is_data_uri(url: str) -> bool:
    return url[:5].lower() == "data:"


def decode_data_uri(uri: str, *, max_bytes: int) -> tuple[bytes, str | None]:
    """The payload and media type of a ``data:`` URI; refuses payloads over ``max_bytes``."""
    if not is_data_uri(uri):
        raise ImageInvalid("not a data: URI")
    header, comma, payload = uri[5:].partition(",")
    if not comma:
        raise ImageInvalid("malformed data: URI (no comma before the payload)")
    params = [p.strip().lower() for p in header.split(";")]
    is_base64 = params[-1] == "base64"
    encoded_limit = (max_bytes * 4 // 3 + 4) if is_base64 else 3 * max_bytes
    _refuse_oversized(len(payload) > encoded_limit, max_bytes)
    raw = unquote_to_bytes(payload)
    data = _b64decode(raw) if is_base64 else raw
    _refuse_oversized(len(data) > max_bytes, max_bytes)
    return data, (params[0] or None)


def _b64decode(raw: bytes) -> bytes:
    try:
        return base64.b64decode(_WHITESPACE.sub(b"", raw), validate=True)
    except binascii.Error as exc:
        raise ImageInvalid("data: URI payload is not valid base64") from exc


def _refuse_oversized(too_big: bool, max_bytes: int) -> None:
    if too_big:
        raise OutputFetchError(f"inline output larger than the {max_bytes}-byte limit")
