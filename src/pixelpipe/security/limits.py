"""Input limits: how large a request body may be on each path, and how deep its JSON may nest.

The decisions only; :mod:`pixelpipe.api.middleware` applies them to HTTP requests. A body larger
than ``PIXELPIPE_MAX_BODY_BYTES`` (64 KiB; provider webhooks get 1 MiB, image uploads to
``/v1/uploads`` and ``/v1/images/edits|variations`` ``PIXELPIPE_MAX_UPLOAD_BYTES``, 25 MiB) is
refused with 413 before it is read whole, and JSON nested deeper than
``PIXELPIPE_MAX_JSON_DEPTH`` (32) with 422 — the JSON parser is recursive, so a 64 KiB
body of ``[[[[…`` would otherwise exhaust the stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from pixelpipe.errors import InvalidRequest, PixelpipeError
from pixelpipe.settings import Settings

WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
UPLOAD_PATHS = frozenset({"/v1/images/edits", "/v1/images/variations", "/v1/uploads"})


class PayloadTooLarge(PixelpipeError):
    code = "payload_too_large"
    status = 413
    title = "Request body too large"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    max_body_bytes: int
    max_json_depth: int
    max_upload_bytes: int = 25 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        return cls(settings.max_body_bytes, settings.max_json_depth, settings.max_upload_bytes)

    def limit_for(self, path: str) -> int:
        """The largest body accepted on ``path``, in bytes."""
        if path.startswith("/v1/webhooks/"):
            return max(self.max_body_bytes, WEBHOOK_MAX_BODY_BYTES)
        if path in UPLOAD_PATHS:
            return max(self.max_body_bytes, self.max_upload_bytes)
        return self.max_body_bytes

    def too_large(self, limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body larger than {limit} bytes", limit_bytes=limit)

    def too_deep(self) -> InvalidRequest:
        detail = f"JSON nested deeper than {self.max_json_depth} levels; flatten the document"
        return InvalidRequest(detail, field="body")


def too_deep(body: bytes, max_depth: int) -> bool:
    """True when JSON ``body`` nests arrays/objects deeper than ``max_depth`` (strings skipped)."""
    if body.count(b"[") + body.count(b"{") <= max_depth:
        return False  # cannot be deeper than the number of openers: the common, cheap case
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > max_depth:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False
