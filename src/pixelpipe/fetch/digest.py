"""A provider output's bytes against the content hash the provider gave for them.

Comfy API v2 lists each output with ``hash: "blake3:<hex>"`` (Comfy Cloud; comfy-api-proxy 0.1.6
leaves it null): bytes that do not match were cut short or changed on the way, and are fetched
again rather than stored. ``sha256:<hex>`` is understood too; a hash of another kind is not
checked (logged once per kind), never a reason to refuse an image.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable

import blake3

from pixelpipe.errors import OutputFetchError

log = logging.getLogger("pixelpipe.fetch")

_HASHERS: dict[str, Callable[[bytes], str]] = {
    "blake3": lambda data: blake3.blake3(data).hexdigest(),
    "sha256": lambda data: hashlib.sha256(data).hexdigest(),
}
_unknown_seen: set[str] = set()


def check_digest(data: bytes, digest: str, where: str) -> None:
    """Raise a transient :class:`OutputFetchError` when ``data`` does not hash to ``digest``
    (``"<kind>:<hex>"``); ``where`` names the output in the message."""
    kind, _, expected = digest.partition(":")
    hasher = _HASHERS.get(kind.lower())
    if hasher is None or not expected:
        if kind not in _unknown_seen:
            _unknown_seen.add(kind)
            log.info("output hashes of kind %r are not checked", kind)
        return
    if not hmac.compare_digest(hasher(data), expected.lower()):
        raise OutputFetchError(
            f"the image fetched from {where} does not match the {kind} hash the provider gave "
            f"for it ({len(data)} bytes): cut short or changed on the way; fetching again",
            transient=True,
        )
