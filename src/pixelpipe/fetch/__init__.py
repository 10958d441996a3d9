"""Stage 9 — fetch: turn a provider :class:`~pixelpipe.providers.base.Output` into verified image
bytes in the requested format, safely.

``fetch_output`` downloads through the SSRF guard (or decodes inline bytes / ``data:`` URIs),
``verify_image`` proves the bytes decode as a sane image, ``to_format`` re-encodes and
``thumbnail`` makes the gallery WebP. Failures are :class:`~pixelpipe.errors.OutputBlocked`,
:class:`~pixelpipe.errors.OutputFetchError` (``extra["transient"]`` says whether a retry may help)
and :class:`~pixelpipe.errors.ImageInvalid`.
"""

from pixelpipe.fetch.guard import (
    FetchPolicy,
    check_url,
    check_url_form,
    describe_url,
    fetch_output,
    fetch_url,
    host_allowed,
    new_fetch_client,
)
from pixelpipe.fetch.transcode import (
    OUTPUT_FORMATS,
    is_own_thumbnail,
    thumbnail,
    thumbnail_async,
    to_format,
    to_format_async,
)
from pixelpipe.fetch.verify import (
    ACCEPTED_FORMATS,
    VerifiedImage,
    normalise_format,
    verify_decoded,
    verify_image,
    verify_image_async,
)

__all__ = [
    "ACCEPTED_FORMATS",
    "OUTPUT_FORMATS",
    "FetchPolicy",
    "VerifiedImage",
    "check_url",
    "check_url_form",
    "describe_url",
    "fetch_output",
    "fetch_url",
    "host_allowed",
    "is_own_thumbnail",
    "new_fetch_client",
    "normalise_format",
    "thumbnail",
    "thumbnail_async",
    "to_format",
    "to_format_async",
    "verify_decoded",
    "verify_image",
    "verify_image_async",
]
