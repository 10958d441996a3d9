"""Fields of a ``multipart/form-data`` body, parsed with the standard library.

The body was already read (and capped) by the input-limits middleware, so the parse is one pass
over bytes in hand; no extra dependency. A field given several times (``image[]``) keeps every
value, in order.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass

from pixelpipe.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class FormPart:
    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def form_parts(content_type: str, body: bytes) -> list[FormPart]:
    """Every part of a multipart/form-data ``body``; :class:`InvalidRequest` when it is not one."""
    if (
        not content_type.lower().startswith("multipart/form-data")
        or "boundary=" not in content_type
    ):
        raise InvalidRequest(
            "send the image as multipart/form-data (e.g. curl -F file=@photo.png)", field="body"
        )
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise InvalidRequest("the multipart body has no parts", field="body")
    parts: list[FormPart] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            ctype = part.get("content-type")
            parts.append(
                FormPart(name, part.get_filename(), str(ctype) if ctype else None, payload)
            )
    return parts


def files_named(parts: list[FormPart], *names: str) -> list[FormPart]:
    return [p for p in parts if p.name in names]
