"""Stage 12 — turn a storage key into the URL a client should fetch.

``signed`` mode (default): the bucket's own presigned GET URL when the backend can sign (S3, R2),
else an app URL ``/v1/images/{key}?exp=&sig=`` signed with :mod:`pixelpipe.delivery.signing`.
``public`` mode: ``PIXELPIPE_DELIVERY_BASE_URL/{key}`` (custom domain / CDN in front of the bucket;
include the bucket prefix in it), else the app's public route ``/i/{key}``.

Expiry is rounded up to a bucket boundary (:func:`signing.expiry_for`) so one image keeps one URL
for a while: caches hit and two identical requests get identical answers. App-signed URLs are a
pure function of (key, expiry); presigned URLs embed their signing time. Both are remembered per
(key, expiry) in a small in-process LRU, so a cache hit signs nothing. Signed URLs live at most
7 days on every backend (the SigV4 limit), so switching storage never changes what a client can
rely on.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import quote

from pixelpipe.delivery.signing import (
    MAX_URL_LIFETIME_S,
    bucket_size,
    expiry_for,
    sign,
    verify,
)
from pixelpipe.settings import Settings
from pixelpipe.storage.base import Storage

PRESIGNED_CACHE_SIZE = 4096


class Delivery:
    """URLs for stored images, according to ``settings.delivery``."""

    def __init__(
        self, storage: Storage, settings: Settings, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._storage = storage
        self._settings = settings
        self._clock = clock
        self._ttl = _capped_ttl(settings.signed_url_ttl_s)
        self._presigned: OrderedDict[tuple[str, int], str] = OrderedDict()

    @property
    def storage(self) -> Storage:
        """The storage it serves (read by renderers, e.g. an edit's input lineage)."""
        return self._storage

    async def url_for(self, storage_key: str) -> str:
        """The URL to hand to a client for ``storage_key``."""
        if self._settings.delivery == "public":
            return self._public_url(storage_key)
        return await self._signed_url(storage_key)

    async def local_url(self, storage_key: str) -> str:
        """The URL for a reader in a process with no server (``Pipeline``, an in-process CLI
        run): never a server address made up. An absolute delivery URL (a presigned or public
        bucket URL, ``PIXELPIPE_DELIVERY_BASE_URL``, an app URL under ``PIXELPIPE_PUBLIC_URL``)
        as for the API; else the stored file's ``file://`` URL (local storage); else (memory
        storage) the app path, which only a server on the same storage would answer."""
        url = await self.url_for(storage_key)
        if not url.startswith("/"):
            return url
        path = self._storage.local_path(storage_key)
        return path.resolve().as_uri() if path is not None else url

    def verify(self, storage_key: str, expires_at: int, sig: str) -> None:
        """Check an app-signed URL's query (raises :class:`~pixelpipe.errors.DeliveryError`)."""
        verify(storage_key, expires_at, sig, self._settings.signing_key(), now=self._clock())

    def _public_url(self, key: str) -> str:
        base = self._settings.delivery_base_url.rstrip("/")
        if base:
            return f"{base}/{_quote(key)}"
        return self._app_url(f"/i/{_quote(key)}")

    async def _signed_url(self, key: str) -> str:
        now = self._clock()
        expires_at = expiry_for(now, self._ttl)
        cached = self._presigned.get((key, expires_at))
        if cached is not None:
            self._presigned.move_to_end((key, expires_at))
            return cached
        url = await self._storage.presigned_url(key, expires_in=expires_at - int(now))
        if url is None:
            sig = sign(key, expires_at, self._settings.signing_key())
            url = self._app_url(f"/v1/images/{_quote(key)}?exp={expires_at}&sig={sig}")
        self._remember((key, expires_at), url)
        return url

    def _app_url(self, path: str) -> str:
        """Absolute under ``PIXELPIPE_PUBLIC_URL``, else a path: the API puts it on the request's
        base URL (``api/urls.py``), an in-process reader gets the file (:meth:`local_url`)."""
        return self._settings.public_url.rstrip("/") + path

    def _remember(self, entry: tuple[str, int], url: str) -> None:
        self._presigned[entry] = url
        if len(self._presigned) > PRESIGNED_CACHE_SIZE:
            self._presigned.popitem(last=False)


def _capped_ttl(ttl_s: int) -> int:
    """The TTL to use, shortened so that TTL plus rounding stays within 7 days."""
    return min(ttl_s, MAX_URL_LIFETIME_S - bucket_size(ttl_s))


def _quote(key: str) -> str:
    return quote(key, safe="/")
