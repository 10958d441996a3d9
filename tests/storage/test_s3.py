"""S3Storage beyond the contract, against a real SeaweedFS: object attributes, failure modes."""

from __future__ import annotations

from pathlib import Path

import obstore
import pytest
from obstore.store import S3Store

from pixelpipe.errors import StorageError
from pixelpipe.storage import IMMUTABLE
from tests.servers.seaweedfs import SeaweedFS
from tests.storage.conftest import s3_storage

pytestmark = pytest.mark.servers
KEY = "gpt-image-1/ef/ef987.png"


def raw_store(s3: SeaweedFS) -> S3Store:
    return s3.raw_store()


async def test_objects_carry_content_type_and_immutable_cache_control(
    tmp_path: Path, seaweedfs: SeaweedFS, s3_settings: dict[str, str]
) -> None:
    storage = s3_storage(tmp_path, s3_settings)
    await storage.put(KEY, b"png bytes", content_type="image/png")
    prefix = s3_settings["storage_url"].split("/", 3)[3]
    head = await obstore.get_async(raw_store(seaweedfs), f"{prefix}/{KEY}", options={"head": True})
    assert head.attributes["Content-Type"] == "image/png"
    assert head.attributes["Cache-Control"] == IMMUTABLE
    assert head.meta["size"] == len(b"png bytes")


async def test_presigned_url_includes_the_prefix(
    tmp_path: Path, s3_settings: dict[str, str]
) -> None:
    storage = s3_storage(tmp_path, s3_settings)
    url = await storage.presigned_url(KEY, expires_in=60)
    prefix = s3_settings["storage_url"].split("/", 3)[3]
    assert f"/{prefix}/{KEY}?" in url


async def test_presigned_expiry_is_clamped_to_the_sigv4_maximum(
    tmp_path: Path, s3_settings: dict[str, str]
) -> None:
    storage = s3_storage(tmp_path, s3_settings)
    assert "X-Amz-Expires=604800&" in await storage.presigned_url(KEY, expires_in=10**9)


async def test_check_fails_for_a_missing_bucket(
    tmp_path: Path, s3_settings: dict[str, str]
) -> None:
    storage = s3_storage(tmp_path, {**s3_settings, "storage_url": "s3://no-such-bucket-here"})
    with pytest.raises(StorageError):
        await storage.check()


async def test_wrong_credentials_are_a_storage_error_that_names_no_secret(
    tmp_path: Path, s3_settings: dict[str, str]
) -> None:
    wrong = "wrong-secret-value-123"
    storage = s3_storage(tmp_path, {**s3_settings, "s3_secret_access_key": wrong})
    for call in (storage.check(), storage.put(KEY, b"x", content_type="image/png")):
        with pytest.raises(StorageError) as caught:
            await call
        problem = str(caught.value.to_problem())
        assert caught.value.retryable
        assert wrong not in problem
        assert s3_settings["s3_access_key_id"] not in problem


async def test_unreachable_endpoint_is_a_storage_error_within_the_timeout(
    tmp_path: Path, s3_settings: dict[str, str]
) -> None:
    from tests.servers._process import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    storage = s3_storage(tmp_path, {**s3_settings, "s3_endpoint": dead})
    with pytest.raises(StorageError):
        await storage.get(KEY)
