"""An input image given by URL: downloaded through the same SSRF guard as provider outputs.

The URL is the caller's, so it is as hostile as a provider's: ``https`` only, no credentials,
every address it resolves to (and the one really connected to, and each redirect's) public, the
body capped at the input byte limit, one deadline. A refusal is an :class:`InputRejected` (422)
that names the URL's host and path (never its query) and says what to do instead — before
anything is queued or spent.
"""

from __future__ import annotations

from dataclasses import replace

import httpx

from pixelpipe.errors import InputRejected, OutputBlocked, OutputFetchError
from pixelpipe.fetch import FetchPolicy, fetch_url
from pixelpipe.inputs.limits import InputLimits
from pixelpipe.inputs.store import StoredInput, store_input
from pixelpipe.storage import Storage


async def fetch_input(
    url: str,
    storage: Storage,
    limits: InputLimits,
    *,
    policy: FetchPolicy,
    client: httpx.AsyncClient,
    field: str = "images",
) -> StoredInput:
    """Download ``url`` under ``policy`` (its byte cap lowered to the input limit), then verify,
    strip and store it like an upload."""
    capped = replace(policy, max_bytes=min(policy.max_bytes, limits.max_bytes))
    try:
        data, _media_type = await fetch_url(url, capped, client)
    except OutputBlocked as exc:
        raise InputRejected(
            f"{field}: the URL is refused ({exc.detail}); give a public https URL, or upload the "
            "image with POST /v1/uploads and pass its id",
            field=field,
        ) from None
    except OutputFetchError as exc:
        raise InputRejected(
            f"{field}: the image could not be downloaded ({exc.detail}); check the URL, or upload "
            "the image with POST /v1/uploads and pass its id",
            field=field,
        ) from None
    return await store_input(storage, data, limits, field=field)
