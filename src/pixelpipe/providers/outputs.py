"""Normalise what providers return into :class:`~pixelpipe.providers.base.Output` values.

Shapes seen in the wild: a list of URLs (Replicate flux-schnell/dev), a single URL string
(Replicate flux-1.1-pro), image objects ``{"url", "content_type"}`` (fal), ``{"b64_json"}`` or
``{"url"}`` items (OpenAI), and ``data:`` URIs (Replicate or fal ``sync_mode``). URLs are kept as
URLs (they expire: the fetch stage downloads them at once); base64 and data URIs become bytes.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote_to_bytes

from pixelpipe.errors import ProviderFailed
from pixelpipe.providers.base import Output

_SCHEMES = ("https://", "http://")


def normalize_outputs(value: Any, content_type: str | None = None) -> tuple[Output, ...]:
    """Every image in ``value`` (a string, a list, or image objects) as an :class:`Output`."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(out for item in value for out in normalize_outputs(item, content_type))
    if isinstance(value, dict):
        return (_from_object(value, content_type),)
    if isinstance(value, str):
        return (_from_string(value, content_type),)
    raise ProviderFailed(f"unrecognised provider output of type {type(value).__name__}")


def _from_object(obj: dict[str, Any], content_type: str | None) -> Output:
    ctype = obj.get("content_type") or content_type
    if obj.get("b64_json"):
        return Output(data=decode_base64(str(obj["b64_json"])), content_type=ctype)
    url = obj.get("url")
    if isinstance(url, str) and url:
        return _from_string(url, ctype)
    raise ProviderFailed("provider output object has neither url nor b64_json")


def _from_string(value: str, content_type: str | None) -> Output:
    if value.startswith("data:"):
        data, ctype = decode_data_uri(value)
        return Output(data=data, content_type=ctype or content_type)
    if value.startswith(_SCHEMES):
        return Output(url=value, content_type=content_type)
    raise ProviderFailed("provider output is neither an http(s) URL nor a data: URI")


def decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProviderFailed("provider returned invalid base64 image data") from None


def decode_data_uri(uri: str) -> tuple[bytes, str | None]:
    """Bytes and media type of a ``data:[<type>][;base64],<payload>`` URI (RFC 2397)."""
    header, sep, payload = uri[5:].partition(",")
    if not sep:
        raise ProviderFailed("provider returned a malformed data: URI")
    params = header.split(";")
    ctype = params[0] or None
    if "base64" in params[1:]:
        return decode_base64(payload), ctype
    return unquote_to_bytes(payload), ctype
