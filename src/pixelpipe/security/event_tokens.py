"""Event tokens: how a browser's ``EventSource`` follows one job's events while API keys are on.

``EventSource`` cannot send an ``Authorization`` header, so the page first asks for a token with
its key (``POST /v1/generations/{id}/event-token``, scope ``read``) and opens
``GET /v1/generations/{id}/events?token=…``. A token:

* is bound to one job id and to the key that asked for it (anonymous when auth was off);
* is accepted on that job's events route only (``GET``), never on another route or job;
* expires after :data:`TTL_S` (5 minutes); the stream it opened is not cut at expiry, but a
  reconnect after it needs a new token;
* stops working on the next connect once its key is revoked or loses the ``read`` scope: the
  key is looked up each time a token is presented.

Format: ``<key id or ->.<expiry, unix s>.<sig>``, ``sig`` = HMAC-SHA256 with the server's signing
key (the one image URLs use, :meth:`Settings.signing_key`) over a domain-separated message of job
id, key id and expiry, url-safe base64 without padding (no escaping needed in a query string).
Compared in constant time; nothing in an error echoes the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from pixelpipe.db import Database
from pixelpipe.errors import Forbidden, Unauthorized
from pixelpipe.security.keys import ApiKey, get_key

TTL_S = 300
PARAM = "token"
_DOMAIN = b"pixelpipe-event-token-v1\x00"
_ANONYMOUS = "-"
_EVENTS_PATH = re.compile(r"^/v1/generations/([^/]+)/events$")
_RENEW = "ask for a new one with POST /v1/generations/{id}/event-token"


def issue(job_id: str, key_id: str | None, secret: bytes, now: float) -> tuple[str, int]:
    """A token for ``job_id``'s events, and its expiry (unix s)."""
    expires_at = int(now) + TTL_S
    kid = key_id or _ANONYMOUS
    return f"{kid}.{expires_at}.{_sign(job_id, kid, expires_at, secret)}", expires_at


def presented(method: str, path: str, scope: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(job id, token)`` when this is a GET of a job's events with a ``token`` parameter."""
    if method not in ("GET", "HEAD") or b"token=" not in scope.get("query_string", b""):
        return None
    match = _EVENTS_PATH.match(path)
    if match is None:
        return None
    values = parse_qs(bytes(scope["query_string"]).decode("latin-1")).get(PARAM)
    return (match.group(1), values[0]) if values else None


def verify(token: str, job_id: str, secret: bytes, now: float) -> str | None:
    """The key id the token was issued to (None: issued while auth was off); raise
    :class:`Unauthorized` when it is malformed, forged, for another job, or expired."""
    kid, _, rest = token.partition(".")
    raw_exp, _, sig = rest.partition(".")
    if not (kid and raw_exp.isdigit() and sig) or len(raw_exp) > 12:
        raise Unauthorized(f"the event token is malformed (check it was copied whole); {_RENEW}")
    expires_at = int(raw_exp)
    expected = _sign(job_id, kid, expires_at, secret).encode("ascii")
    if not hmac.compare_digest(expected, sig.encode("utf-8", "replace")):
        raise Unauthorized(f"the event token is not valid for this generation; {_RENEW}")
    if now >= expires_at:
        raise Unauthorized(f"the event token has expired; {_RENEW}")
    return None if kid == _ANONYMOUS else kid


async def key_of(db: Database, token: str, job_id: str, secret: bytes, now: float) -> ApiKey:
    """The API key a presented token stands for, checked as it is now (revoked, scopes)."""
    key_id = verify(token, job_id, secret, now)
    if key_id is None:
        raise Unauthorized(
            f"this event token was issued while the server ran without API keys; {_RENEW}"
        )
    key = await get_key(db, key_id)
    if key is None or key.revoked:
        raise Unauthorized("the API key this event token was issued to was revoked")
    if not key.allows("read"):
        raise Forbidden(
            "the API key this event token was issued to lacks the 'read' scope",
            required_scope="read",
        )
    return key


def _sign(job_id: str, kid: str, expires_at: int, secret: bytes) -> str:
    message = b"\x00".join(
        (_DOMAIN, job_id.encode("utf-8", "surrogatepass"), kid.encode(), str(expires_at).encode())
    )
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
