"""The storage contract, run against every backend: MemoryStorage (the fake), LocalDiskStorage and
S3Storage against a real SeaweedFS. A behaviour the pipeline relies on belongs here, so the fake
cannot drift from the real stores."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from pixelpipe.errors import InvalidRequest, NotFound
from pixelpipe.storage import IMMUTABLE, Storage, StoredObject

KEY = "flux-schnell/ab/ab12cd34.webp"

BAD_KEYS = [
    "",
    "../escape.webp",
    "a/../../escape.webp",
    "a/..",
    "./a.webp",
    "/etc/passwd",
    "a\\..\\b.webp",
    "a//b.webp",
    "a/",
    "a/b\x00.webp",
    "a/\nb.webp",
    ".hidden",
    "a/.b.webp.ct",
    "x" * 1025,
]


async def test_put_get_head_roundtrip(storage: Storage) -> None:
    data = os.urandom(4096)
    assert await storage.head(KEY) is None
    await storage.put(KEY, data, content_type="image/webp")
    assert await storage.get(KEY) == data
    assert await storage.head(KEY) == StoredObject(key=KEY, size=4096, content_type="image/webp")


async def test_second_put_is_a_noop_and_first_write_wins(storage: Storage) -> None:
    await storage.put(KEY, b"first", content_type="image/webp")
    await storage.put(KEY, b"second!", content_type="image/png")
    assert await storage.get(KEY) == b"first"
    assert await storage.head(KEY) == StoredObject(key=KEY, size=5, content_type="image/webp")


async def test_missing_object(storage: Storage) -> None:
    with pytest.raises(NotFound):
        await storage.get("flux-dev/00/missing.png")
    assert await storage.head("flux-dev/00/missing.png") is None
    await storage.delete("flux-dev/00/missing.png")  # deleting nothing is fine


async def test_delete_then_put_again(storage: Storage) -> None:
    await storage.put(KEY, b"one", content_type="image/webp")
    await storage.delete(KEY)
    with pytest.raises(NotFound):
        await storage.get(KEY)
    await storage.put(KEY, b"two", content_type="image/webp")
    assert await storage.get(KEY) == b"two"


@pytest.mark.parametrize(
    ("key", "content_type"),
    [
        ("m/aa/x.png", "image/png"),
        ("m/aa/x.jpg", "image/jpeg"),
        ("m/aa/x.webp", "application/x-unusual"),  # disagrees with the extension
        ("m/aa/noext", "image/avif"),
    ],
)
async def test_content_type_roundtrip(storage: Storage, key: str, content_type: str) -> None:
    await storage.put(key, b"bytes", content_type=content_type)
    head = await storage.head(key)
    assert head is not None
    assert head.content_type == content_type


async def test_content_type_that_could_split_a_header_is_rejected(storage: Storage) -> None:
    with pytest.raises(InvalidRequest):
        await storage.put(KEY, b"x", content_type="image/png\r\nX-Evil: 1")
    assert await storage.head(KEY) is None


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_unsafe_keys_are_rejected_by_every_operation(storage: Storage, key: str) -> None:
    with pytest.raises(InvalidRequest):
        await storage.put(key, b"x", content_type="image/webp")
    with pytest.raises(InvalidRequest):
        await storage.get(key)
    with pytest.raises(InvalidRequest):
        await storage.head(key)
    with pytest.raises(InvalidRequest):
        await storage.delete(key)
    with pytest.raises(InvalidRequest):
        storage.local_path(key)
    with pytest.raises(InvalidRequest):
        await storage.presigned_url(key, expires_in=60)


async def test_concurrent_puts_of_one_key_leave_one_intact_object(storage: Storage) -> None:
    payloads = [bytes([i]) * 256_000 for i in range(12)]
    await asyncio.gather(*(storage.put(KEY, p, content_type="image/webp") for p in payloads))
    stored = await storage.get(KEY)
    assert stored in payloads  # one whole payload, never a mix or a truncation
    assert await storage.head(KEY) == StoredObject(KEY, 256_000, "image/webp")


async def test_presigned_url_downloads_the_object_when_the_backend_signs(storage: Storage) -> None:
    data = os.urandom(1000)
    await storage.put(KEY, data, content_type="image/webp")
    url = await storage.presigned_url(KEY, expires_in=300)
    if storage.scheme not in ("s3", "r2"):
        assert url is None  # the app serves these through its own signed URLs
        return
    assert url is not None
    async with httpx.AsyncClient(timeout=10) as client:
        resp = await client.get(url)
        assert resp.status_code == 200
        assert resp.content == data
        assert resp.headers["content-type"] == "image/webp"
        assert resp.headers["cache-control"] == IMMUTABLE
        forged = await client.get(url.replace("X-Amz-Expires=300", "X-Amz-Expires=301"))
        assert forged.status_code == 403  # the signature, not the URL's shape, grants access


async def test_check_passes_on_a_healthy_backend(storage: Storage) -> None:
    await storage.check()


async def test_local_path_only_for_disk(storage: Storage) -> None:
    path = storage.local_path(KEY)
    if storage.scheme == "file":
        assert path is not None
        assert path.parts[-3:] == ("flux-schnell", "ab", "ab12cd34.webp")
    else:
        assert path is None
