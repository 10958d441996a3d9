"""Input images in storage, content-addressed: ``inputs/<sha256 hex>.<ext>``.

The name is the sha256 of the clean bytes (:mod:`.clean`), so storing the same picture twice
writes one object under one name (storage puts are idempotent), and the upload id handed back to
the caller is derived from that digest. Inputs are objects of their own: deleting a generation
never deletes the inputs it was made from, nor a generation's image that was an input elsewhere
(its bytes were copied under ``inputs/`` when it was used).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pixelpipe.errors import InputRejected, NotFound
from pixelpipe.fetch import VerifiedImage
from pixelpipe.fetch.verify import CONTENT_TYPES, open_image
from pixelpipe.inputs.clean import clean_image_async
from pixelpipe.inputs.limits import INPUT_FORMATS, InputLimits
from pixelpipe.providers.base import InputImage
from pixelpipe.storage import Storage

UPLOAD_ID_PREFIX = "upl_"
_EXT = {"png": "png", "jpeg": "jpg", "webp": "webp"}
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_UPLOAD_ID = re.compile(rf"^{UPLOAD_ID_PREFIX}([0-9a-f]{{64}})$")


@dataclass(frozen=True, slots=True)
class StoredInput:
    """An input image as stored: what ``POST /v1/uploads`` answers."""

    digest: str  # "sha256:<hex>" of the stored (clean) bytes
    content_type: str
    format: str
    width: int
    height: int
    bytes: int
    key: str  # the storage key

    @property
    def id(self) -> str:
        return upload_id(self.digest)


def upload_id(digest: str) -> str:
    return UPLOAD_ID_PREFIX + _hex(digest)


def digest_of_upload_id(value: str) -> str | None:
    """The digest an upload id stands for, or None when ``value`` is not an upload id."""
    found = _UPLOAD_ID.match(value)
    return f"sha256:{found.group(1)}" if found else None


def input_key(digest: str, fmt: str) -> str:
    return f"inputs/{_hex(digest)}.{_EXT[fmt]}"


async def store_input(
    storage: Storage, data: bytes, limits: InputLimits, *, field: str = "image"
) -> StoredInput:
    """Verify, strip and store ``data``; the same picture always gives the same record."""
    clean = await clean_image_async(data, limits, field=field)
    return await store_clean(storage, clean)


async def store_clean(storage: Storage, clean: VerifiedImage) -> StoredInput:
    digest = "sha256:" + hashlib.sha256(clean.data).hexdigest()
    key = input_key(digest, clean.format)
    await storage.put(key, clean.data, content_type=clean.content_type)
    return StoredInput(
        digest, clean.content_type, clean.format, clean.width, clean.height, len(clean.data), key
    )


async def find_input(storage: Storage, digest: str) -> StoredInput:
    """The stored input of ``digest`` (its key, type and size; width and height are not read:
    0); :class:`NotFound` naming it when there is none."""
    for fmt in INPUT_FORMATS:
        key = input_key(digest, fmt)
        head = await storage.head(key)
        if head is not None:
            content_type = head.content_type or CONTENT_TYPES[fmt]
            return StoredInput(digest, content_type, fmt, 0, 0, head.size, key)
    raise NotFound(
        f"no input image {upload_id(digest)} is stored; upload it with POST /v1/uploads",
        field="images",
    )


async def load_input(storage: Storage, digest: str) -> InputImage:
    """The bytes of a stored input, as a provider gets them (dimensions read from the bytes)."""
    stored = await find_input(storage, digest)
    data = await storage.get(stored.key)
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise InputRejected(f"the stored input {upload_id(digest)} does not match its digest")
    width, height = _dimensions(data)
    return InputImage(digest, stored.content_type, data, width, height)


def _dimensions(data: bytes) -> tuple[int, int]:
    with open_image(data) as im:
        width, height = im.size
    return width, height


def _hex(digest: str) -> str:
    found = _DIGEST.match(digest)
    if found is None:
        raise InputRejected(f"{digest!r} is not an input digest (sha256:<64 hex>)")
    return found.group(1)
