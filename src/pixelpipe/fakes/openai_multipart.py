"""A multipart/form-data reader for the OpenAI fake's ``/v1/images/edits`` (stdlib ``email``).

Each part keeps what OpenAI looks at: its field name (a field may repeat: ``image[]``), its
filename (a file part without one is refused), its content type (the API checks the part's
mimetype, not the bytes) and its bytes.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class NotMultipart(ValueError):
    """The body is not multipart/form-data."""


def parse_form(content_type: str, body: bytes) -> list[Part]:
    """The parts of a multipart/form-data body, in order."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise NotMultipart(content_type or "no content type")
    head = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise NotMultipart(content_type)
    parts = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        parts.append(Part(name, part.get_filename(), part.get_content_type(), data))
    return parts
