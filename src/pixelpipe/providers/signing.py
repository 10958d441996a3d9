"""Webhook signatures: Standard Webhooks HMAC (Replicate) and Ed25519 with JWKS (fal).

Both verifiers check the timestamp first (cheap, and a replay outside the window is refused even
with a valid signature), then the signature in constant time. They raise :class:`SignatureInvalid`
with a reason; providers turn it into :class:`pixelpipe.errors.Unauthorized`.

Standard Webhooks (spec v1): signed content is ``f"{webhook-id}.{webhook-timestamp}.{raw body}"``,
HMAC-SHA256 with the base64-decoded part of the ``whsec_`` secret; ``webhook-signature`` is a
space-separated list of ``v1,<base64>`` entries, any of which may match.

fal: the message is ``request_id \\n user_id \\n timestamp \\n sha256hex(raw body)``, signed
with Ed25519; ``X-Fal-Webhook-Signature`` is the hex signature; keys come from a JWKS (OKP/Ed25519).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

TOLERANCE_S = 300.0


class SignatureInvalid(Exception):
    """A webhook failed verification (the message says why, without secrets)."""


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def check_timestamp(raw: str, now: float, tolerance_s: float = TOLERANCE_S) -> int:
    try:
        ts = int(raw)
    except ValueError:
        raise SignatureInvalid("timestamp is not an integer") from None
    if abs(now - ts) > tolerance_s:
        raise SignatureInvalid("timestamp outside the tolerance window")
    return ts


# --- Standard Webhooks (HMAC) ------------------------------------------------------------------


def decode_whsec(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureInvalid("webhook secret is not valid base64") from None


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` entry for one message."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(decode_whsec(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_standard_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float
) -> str:
    """Verify a Standard Webhooks delivery; return its ``webhook-id``."""
    h = lower_headers(headers)
    msg_id, raw_ts, sigs = (h.get(k, "") for k in _STD_HEADERS)
    if not (msg_id and raw_ts and sigs):
        raise SignatureInvalid("missing webhook-id, webhook-timestamp or webhook-signature")
    ts = check_timestamp(raw_ts, now)
    expected = standard_signature(secret, msg_id, ts, body).encode()
    if not any(hmac.compare_digest(e.encode(), expected) for e in sigs.split()):
        raise SignatureInvalid("no matching v1 signature")
    return msg_id


_STD_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


# --- fal (Ed25519 + JWKS) ----------------------------------------------------------------------

FAL_HEADERS = (
    "x-fal-webhook-request-id",
    "x-fal-webhook-user-id",
    "x-fal-webhook-timestamp",
    "x-fal-webhook-signature",
)


@dataclass(frozen=True, slots=True)
class FalDelivery:
    request_id: str
    user_id: str
    timestamp: int
    signature: bytes


def fal_message(request_id: str, user_id: str, timestamp: int, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{request_id}\n{user_id}\n{timestamp}\n{digest}".encode()


def fal_headers(headers: Mapping[str, str], *, now: float) -> FalDelivery:
    """Parse and time-check fal's signature headers (before any key is needed)."""
    h = lower_headers(headers)
    rid, uid, raw_ts, sig = (h.get(k, "") for k in FAL_HEADERS)
    if not (rid and uid and raw_ts and sig):
        raise SignatureInvalid("missing X-Fal-Webhook-* headers")
    ts = check_timestamp(raw_ts, now)
    try:
        signature = bytes.fromhex(sig)
    except ValueError:
        raise SignatureInvalid("signature is not hex") from None
    return FalDelivery(rid, uid, ts, signature)


def fal_verifies(keys: Sequence[Ed25519PublicKey], delivery: FalDelivery, body: bytes) -> bool:
    message = fal_message(delivery.request_id, delivery.user_id, delivery.timestamp, body)
    return any(_ed25519_ok(key, delivery.signature, message) for key in keys)


def _ed25519_ok(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def fal_sign(key: Ed25519PrivateKey, request_id: str, user_id: str, ts: int, body: bytes) -> str:
    return key.sign(fal_message(request_id, user_id, ts, body)).hex()


def jwks_keys(doc: Any) -> list[Ed25519PublicKey]:
    """The Ed25519 public keys of a JWKS document (other key types are skipped)."""
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise SignatureInvalid("JWKS document has no keys list")
    return [k for k in (_okp_key(item) for item in keys) if k is not None]


def _okp_key(item: Any) -> Ed25519PublicKey | None:
    if not isinstance(item, dict) or item.get("kty") != "OKP" or item.get("crv") != "Ed25519":
        return None
    x = str(item.get("x", ""))
    try:
        raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        return None


def public_jwk(key: Ed25519PublicKey, kid: str) -> dict[str, str]:
    raw = key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}
