"""Input images as Replicate takes them: inline as ``data:`` URIs up to
:data:`INLINE_MAX_BYTES` (Replicate recommends data URIs for files up to 256 KB), larger ones
uploaded to its Files API (``POST /v1/files``, multipart ``content`` + ``metadata``) and passed
by the file's ``urls.get``. An uploaded image is remembered by its digest, so a retry or another
job with the same input sends the same URL without uploading it again."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping

from pixelpipe.errors import ProviderUnavailable
from pixelpipe.providers.base import InputImage
from pixelpipe.providers.http import Multipart, ProviderHTTP

INLINE_MAX_BYTES = 256 * 1024
REMEMBERED = 512  # uploaded files remembered per provider (Replicate keeps them a day)
_EXT = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


class InputFiles:
    """Where each input image of a prediction comes from: its data URI, or its uploaded file."""

    def __init__(self, http: ProviderHTTP, base: str) -> None:
        self._http, self._base = http, base
        self._urls: OrderedDict[str, str] = OrderedDict()

    async def uris(self, images: tuple[InputImage, ...]) -> dict[str, str]:
        """digest → what the prediction's input names the image by."""
        return {image.digest: await self._uri(image) for image in images}

    async def _uri(self, image: InputImage) -> str:
        if len(image.data) <= INLINE_MAX_BYTES:
            return image.data_uri()
        if (known := self._urls.get(image.digest)) is not None:
            self._urls.move_to_end(image.digest)
            return known
        url = await self._upload(image)
        self._urls[image.digest] = url
        if len(self._urls) > REMEMBERED:
            self._urls.popitem(last=False)
        return url

    async def _upload(self, image: InputImage) -> str:
        name = f"{image.digest.removeprefix('sha256:')[:16]}.{_EXT.get(image.content_type, 'bin')}"
        form = Multipart(
            fields={"metadata": json.dumps({"sha256": image.digest})},
            files=(("content", (name, image.data, image.content_type)),),
        )
        resp = await self._http.send("POST", f"{self._base}/v1/files", form=form)
        urls = self._http.json_object(resp).get("urls")
        url = urls.get("get") if isinstance(urls, dict) else None
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ProviderUnavailable("replicate answered a file upload without urls.get")
        return url


def image_ref(image: InputImage, uris: Mapping[str, str] | None) -> str:
    """What a prediction's input names ``image`` by: its uploaded file's URL from ``uris``
    (:meth:`InputFiles.uris`), else its data URI."""
    return (uris or {}).get(image.digest) or image.data_uri()
