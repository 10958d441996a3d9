"""HMAC-signed, expiring URLs for images the app serves itself (local disk, memory).

A URL ``/v1/images/{key}?exp=<unix>&sig=<sig>`` grants a GET of exactly that key until ``exp``.
``sig`` is HMAC-SHA256 over a versioned, unambiguous message (``key`` and ``exp`` separated by NUL,
which valid keys cannot contain), encoded as url-safe base64 without padding so it needs no
escaping in a query string. Verification compares in constant time, so response timing does not
reveal how much of a forged signature was right.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math

from pixelpipe.errors import DeliveryError

_DOMAIN = b"pixelpipe-image-url-v1\x00"
MAX_BUCKET_S = 3600
MAX_URL_LIFETIME_S = 7 * 24 * 3600  # SigV4's limit; app-signed URLs keep to it too (see Delivery)


def sign(key: str, expires_at: int, secret: bytes) -> str:
    """The signature that lets anyone holding it GET ``key`` until ``expires_at`` (unix s)."""
    message = _DOMAIN + key.encode("utf-8", "surrogatepass") + b"\x00" + str(expires_at).encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(key: str, expires_at: int, sig: str, secret: bytes, now: float) -> None:
    """Raise :class:`DeliveryError` unless ``sig`` matches ``key`` and ``expires_at`` is ahead.

    The signature is checked before the expiry so that an expired-but-forged URL is reported as
    invalid, and neither message echoes the signature.
    """
    expected = sign(key, expires_at, secret).encode("ascii")
    if not hmac.compare_digest(expected, sig.encode("utf-8", "replace")):
        raise DeliveryError("image URL signature is invalid")
    if now >= expires_at:
        raise DeliveryError("image URL has expired; ask the API for a fresh one")


def bucket_size(ttl_s: int) -> int:
    """Granularity of expiry times: a quarter of the TTL, between 1 minute and 1 hour.

    Rounding the expiry up to a bucket boundary makes every request for one image inside the same
    bucket get the same URL (browser and CDN caches hit, and two identical API answers agree),
    while a URL never lives more than 25 % longer than the configured TTL.
    """
    return min(MAX_BUCKET_S, max(60, ttl_s // 4))


def expiry_for(now: float, ttl_s: int) -> int:
    """The first bucket boundary at or after ``now + ttl_s``: a URL lives at least ``ttl_s``."""
    bucket = bucket_size(ttl_s)
    return math.ceil((now + ttl_s) / bucket) * bucket
