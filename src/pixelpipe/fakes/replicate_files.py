"""Replicate's Files API as the fake serves it: ``POST /v1/files`` (multipart: the file in
``content``, optional ``metadata`` as a JSON string) answers 201 with the file object
(``id``, ``name``, ``content_type``, ``size``, ``etag``, ``checksums``, ``metadata``,
``created_at``, ``expires_at``, ``urls.get``); ``GET /v1/files/{id}`` answers it again. A
prediction's input may name a file by its ``urls.get``: the model reads the file's bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pixelpipe.fakes.openai_multipart import NotMultipart, Part, parse_form

FILE_TTL_S = 24 * 3600  # Replicate keeps an uploaded file for a day


class FileRefused(ValueError):
    """The upload is not one Replicate takes (no ``content`` part, bad metadata)."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    name: str
    content_type: str
    data: bytes
    metadata: dict[str, Any]
    created: float

    def public(self, base: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "content_type": self.content_type,
            "size": len(self.data),
            "etag": hashlib.md5(self.data, usedforsecurity=False).hexdigest(),
            "checksums": {
                "sha256": hashlib.sha256(self.data).hexdigest(),
                "md5": hashlib.md5(self.data, usedforsecurity=False).hexdigest(),
            },
            "metadata": self.metadata,
            "created_at": _iso(self.created),
            "expires_at": _iso(self.created + FILE_TTL_S),
            "urls": {"get": f"{base}/v1/files/{self.id}"},
        }


@dataclass
class UploadedFiles:
    files: dict[str, StoredFile] = field(default_factory=dict)

    def create(self, content_type: str, body: bytes) -> StoredFile:
        try:
            parts = parse_form(content_type, body)
        except NotMultipart:
            raise FileRefused("the body must be multipart/form-data") from None
        content = _one(parts, "content")
        if content is None or content.filename is None:
            raise FileRefused("missing file in the content field")
        metadata: dict[str, Any] = {}
        if (meta := _one(parts, "metadata")) is not None:
            try:
                metadata = json.loads(meta.text)
            except ValueError:
                raise FileRefused("metadata is not valid JSON") from None
            if not isinstance(metadata, dict):
                raise FileRefused("metadata must be a JSON object")
        fid = base64.b32encode(secrets.token_bytes(15)).decode().lower()
        stored = StoredFile(
            fid, content.filename, content.content_type, content.data, metadata, time.time()
        )
        self.files[fid] = stored
        return stored

    def resolve(self, value: Any, base: str) -> Any:
        """``value`` with this server's file URLs read as data URIs (what the model gets)."""
        prefix = f"{base}/v1/files/"
        if isinstance(value, str) and value.startswith(prefix):
            stored = self.files.get(value.removeprefix(prefix))
            if stored is None:
                raise FileRefused(f"file {value} does not exist")
            return f"data:{stored.content_type};base64,{base64.b64encode(stored.data).decode()}"
        return value


def _one(parts: list[Part], name: str) -> Part | None:
    return next((p for p in parts if p.name == name), None)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
