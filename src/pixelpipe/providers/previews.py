"""Images in a provider's answers: their type from their first bytes, and a run's live preview as
the job's progress carries it — a small ``data:`` URL, never stored as the image, never billed.

Each progress event is kept with the job and replayed by its event stream, so a preview travels
only while it is small (:data:`PREVIEW_MAX_BYTES`); a larger one is left out.
"""

from __future__ import annotations

import base64

PREVIEW_MAX_BYTES = 24 * 1024


def image_type(data: bytes) -> str | None:
    """``image/png``, ``image/jpeg`` or ``image/webp`` from the first bytes; None otherwise."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def preview_url(image: bytes, content_type: str | None = None) -> str | None:
    """``image`` as a ``data:`` URL for a progress event; None when empty or too large.
    ``content_type``: what the server said it is (else read from its bytes)."""
    if not image or len(image) > PREVIEW_MAX_BYTES:
        return None
    kind = content_type or image_type(image) or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(image).decode()}"
