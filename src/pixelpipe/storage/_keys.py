"""Object-key validation shared by every backend.

Keys reach storage from the pipeline (:func:`pixelpipe.key.storage_key`) but also from URLs served
by the app (``/v1/images/{key}``), so a key is untrusted input. The rules make a key safe to join
onto a directory on any filesystem and mean the same thing on every backend, which keeps the fake
honest: a key the memory store accepts is one the disk store can hold without escaping its root.
"""

from __future__ import annotations

import re

from pixelpipe.errors import InvalidRequest

MAX_KEY_BYTES = 1024  # S3's limit on object names
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_SEGMENT_BYTES = 255  # common filesystem limit on one path component


def validate_key(key: str) -> str:
    """Return ``key`` unchanged, or raise :class:`InvalidRequest` naming the broken rule.

    Rejected: empty keys, absolute paths, backslashes, NUL and other control characters, empty
    segments (``a//b``, trailing ``/``), and segments starting with ``.`` (covers ``.`` and ``..``;
    dot-names are reserved for the backends' own temp files and sidecars).
    """
    problem = _problem(key)
    if problem:
        raise InvalidRequest(f"invalid storage key: {problem}", field="key")
    return key


def _problem(key: str) -> str | None:
    if not key:
        return "empty"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if size > MAX_KEY_BYTES:
        return f"longer than {MAX_KEY_BYTES} bytes"
    if "\\" in key:
        return "contains a backslash"
    if _CONTROL.search(key):
        return "contains a control character"
    if key.startswith("/"):
        return "absolute path"
    return _segment_problem(key.split("/"))


def _segment_problem(segments: list[str]) -> str | None:
    for segment in segments:
        if not segment:
            return "empty path segment"
        if segment.startswith("."):
            return "path segment starts with '.'"
        if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
            return f"path segment longer than {MAX_SEGMENT_BYTES} bytes"
    return None


def validate_content_type(content_type: str) -> str:
    """Return ``content_type`` unchanged, or raise :class:`InvalidRequest`.

    It is sent back verbatim as an HTTP header (by S3, or by the app for local files), so it must be
    a short printable-ASCII ``type/subtype`` with no line breaks that could split a header.
    """
    printable = all(0x20 <= ord(c) < 0x7F for c in content_type)
    if not printable or "/" not in content_type or len(content_type) > 255:
        raise InvalidRequest("invalid content type: use a MIME type such as 'image/webp'")
    return content_type
