"""S3Storage — S3 and S3-compatible object stores (``s3://bucket[/prefix]``, ``r2://bucket``).

Built on obstore's ``S3Store`` (native async, far less client CPU than boto3, presigning built in).
Objects are written with ``Content-Type`` and ``Cache-Control: public, max-age=31536000, immutable``
so a CDN or browser in front of the bucket may cache them forever (keys are content-addressed).

Idempotency: ``put`` uses put-if-not-exists (``If-None-Match: *``); the answer "already exists"
is success, so concurrent and repeated puts of one key leave exactly one object. On a store that
does not support conditional writes it falls back to a plain put, harmless for content-addressed
keys. Every request has a connect timeout, a per-request timeout and a bounded retry budget.

The prefix is applied here rather than by obstore so that presigned URLs, listing and every other
call agree on the full object name.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotSupportedError
from obstore.store import S3Store

from pixelpipe.errors import ConfigError
from pixelpipe.settings import Settings
from pixelpipe.storage._errors import translated
from pixelpipe.storage._keys import validate_content_type, validate_key
from pixelpipe.storage.base import IMMUTABLE, StoredObject

if TYPE_CHECKING:
    from pathlib import Path

    from obstore.store import ClientConfig, RetryConfig, S3Config

MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4 presigned URLs cannot live longer than 7 days
CONNECT_TIMEOUT = "5s"
REQUEST_TIMEOUT = "30s"
_FOREIGN = (BaseError, OSError)
_CHECK_PREFIX = ".pixelpipe-check/"  # a name no image key can have: listing it is one cheap call


class S3Storage:
    """One bucket (and optional prefix) of an S3-compatible store."""

    def __init__(self, store: S3Store, *, scheme: str = "s3", prefix: str = "") -> None:
        self.scheme = scheme
        self._store = store
        self._prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        """Build from ``settings.effective_storage_url`` and the ``PIXELPIPE_S3_*`` fields."""
        scheme, bucket, prefix = _parse_url(settings.effective_storage_url)
        endpoint = settings.s3_endpoint.rstrip("/")
        if scheme == "r2" and not endpoint:
            raise ConfigError(
                "PIXELPIPE_S3_ENDPOINT is required for r2:// storage: set it to "
                "https://<account_id>.r2.cloudflarestorage.com"
            )
        try:
            store = S3Store(
                bucket,
                config=_config(settings, scheme, endpoint),
                client_options=_client_options(endpoint),
                retry_config=_retry_config(),
            )
        except (BaseError, ValueError) as exc:
            raise ConfigError(
                f"cannot configure {scheme}:// storage ({type(exc).__name__})"
            ) from exc
        return cls(store, scheme=scheme, prefix=prefix)

    async def put(self, key: str, data: bytes, *, content_type: str) -> None:
        path = self._path(key)
        attributes = {
            "Content-Type": validate_content_type(content_type),
            "Cache-Control": IMMUTABLE,
        }
        with translated(self.scheme, "put", key, _FOREIGN, missing_is_not_found=False):
            try:
                await obstore.put_async(
                    self._store, path, data, attributes=attributes, mode="create"
                )
            except AlreadyExistsError:
                return  # first writer won; the object is immutable and content-addressed
            except NotSupportedError:
                await obstore.put_async(self._store, path, data, attributes=attributes)

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        with translated(self.scheme, "get", key, _FOREIGN):
            result = await obstore.get_async(self._store, path)
            return bytes(await result.bytes_async())

    async def head(self, key: str) -> StoredObject | None:
        """One HEAD request; unlike obstore's ``head`` it also returns the Content-Type."""
        path = self._path(key)
        with translated(self.scheme, "head", key, _FOREIGN):
            try:
                result = await obstore.get_async(self._store, path, options={"head": True})
            except FileNotFoundError:
                return None
        content_type = result.attributes.get("Content-Type")
        return StoredObject(key=key, size=result.meta["size"], content_type=content_type)

    async def delete(self, key: str) -> None:
        path = self._path(key)
        with translated(self.scheme, "delete", key, _FOREIGN, missing_is_not_found=False):
            await obstore.delete_async(self._store, path)

    async def presigned_url(self, key: str, *, expires_in: int) -> str:
        """A SigV4 GET URL, valid for ``expires_in`` seconds (clamped to 1 s .. 7 days)."""
        path = self._path(key)
        seconds = min(max(int(expires_in), 1), MAX_PRESIGN_S)
        with translated(self.scheme, "sign", key, _FOREIGN, missing_is_not_found=False):
            return await obstore.sign_async(self._store, "GET", path, timedelta(seconds=seconds))

    def local_path(self, key: str) -> Path | None:
        """None: objects are fetched from the bucket, never from a local file."""
        validate_key(key)
        return None

    async def check(self) -> None:
        """One LIST call on an empty prefix: proves endpoint, credentials and bucket."""
        with translated(self.scheme, "check", None, _FOREIGN, missing_is_not_found=False):
            await obstore.list_with_delimiter_async(self._store, self._prefix + _CHECK_PREFIX)

    async def aclose(self) -> None:
        """Nothing to release: obstore pools connections inside the store object."""

    def _path(self, key: str) -> str:
        return self._prefix + validate_key(key)


def _parse_url(url: str) -> tuple[str, str, str]:
    """``s3://bucket/some/prefix`` → ("s3", "bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme not in ("s3", "r2") or not parts.netloc:
        raise ConfigError(
            f"PIXELPIPE_STORAGE_URL: expected s3://bucket[/prefix] or r2://bucket, got {url!r}"
        )
    return parts.scheme, parts.netloc, parts.path.strip("/")


def _config(settings: Settings, scheme: str, endpoint: str) -> S3Config:
    """Region, endpoint and credentials; unset credentials fall back to obstore's AWS chain."""
    config: S3Config = {"region": "auto" if scheme == "r2" else settings.s3_region}
    if endpoint:
        config["endpoint"] = endpoint
    key_id = settings.s3_access_key_id.get_secret_value()
    secret = settings.s3_secret_access_key.get_secret_value()
    if key_id or secret:
        config["access_key_id"] = key_id
        config["secret_access_key"] = secret
    return config


def _client_options(endpoint: str) -> ClientConfig:
    """Timeouts on every request; plain http only when the operator configured an http endpoint."""
    return {
        "connect_timeout": CONNECT_TIMEOUT,
        "timeout": REQUEST_TIMEOUT,
        "allow_http": endpoint.startswith("http://"),
    }


def _retry_config() -> RetryConfig:
    """A few quick retries inside one step; longer waits belong to the job's own backoff."""
    return {"max_retries": 3, "retry_timeout": timedelta(seconds=60)}
