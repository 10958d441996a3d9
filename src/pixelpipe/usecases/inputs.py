"""Stage 1b — the input images of an edit, resolved to stored digests before intake keys them.

Each reference in ``images`` / ``mask`` is one of:

- an upload id (``upl_<hex>``, from ``POST /v1/uploads``): must be stored;
- a generation id of this server (``gen_…``) or one of its image URLs (``/v1/images/<key>``,
  ``/i/<key>``): the gallery image is copied in as an input (verified, stripped), and the
  generation is remembered as the input's source (lineage);
- any other URL: downloaded through the fetch guard (public https only), verified, stripped and
  stored like an upload.

The model's capabilities and the prompt's safety are checked first
(:func:`pixelpipe.intake.check_inputs`, :func:`pixelpipe.safety.check_prompt`), so a model that
takes no inputs, or a blocked prompt or negative prompt, is refused before anything is downloaded;
every refusal happens before a job exists or anything is spent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pixelpipe.errors import InvalidRequest, NotFound
from pixelpipe.fetch import FetchPolicy
from pixelpipe.inputs import (
    InputLimits,
    StoredInput,
    digest_of_upload_id,
    fetch_input,
    find_input,
    record_source,
    store_input,
)
from pixelpipe.intake import GenerationRequest, check_inputs, input_references, normalize_prompt
from pixelpipe.jobs.model import JobStatus
from pixelpipe.safety import check_prompt
from pixelpipe.services import Services

_GENERATION_ID = re.compile(r"^gen_[0-9a-z]{26}$")
_IMAGE_PATH = re.compile(r"^/(?:v1/images|i)/(?P<key>[^?#]+)$")
_KEY_NAME = re.compile(r"/(?P<hex>[0-9a-f]{64})\.[a-z]+$")


@dataclass(frozen=True, slots=True)
class ResolvedInputs:
    """Each reference as given → its stored digest; digest → the generation it came from."""

    digests: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def upload_digests(body: GenerationRequest) -> dict[str, str]:
    """The references that are upload ids, mapped without any I/O (estimates)."""
    found = {ref: digest_of_upload_id(ref) for _, ref in input_references(body)}
    return {ref: digest for ref, digest in found.items() if digest is not None}


async def resolve_inputs(svc: Services, body: GenerationRequest) -> ResolvedInputs:
    refs = input_references(body)
    resolved = ResolvedInputs()
    if not refs:
        return resolved
    check_inputs(body, svc.catalog)
    check_prompt(normalize_prompt(body.prompt), svc.rules)  # a blocked prompt fetches nothing
    if body.negative_prompt:
        check_prompt(normalize_prompt(body.negative_prompt), svc.rules, field="negative_prompt")
    for where, ref in refs:
        if ref in resolved.digests:
            continue
        stored, source = await _resolve_one(svc, where, ref)
        resolved.digests[ref] = stored.digest
        if source is not None:
            resolved.sources[stored.digest] = source
    return resolved


async def _resolve_one(svc: Services, where: str, ref: str) -> tuple[StoredInput, str | None]:
    limits = InputLimits.from_settings(svc.settings)
    digest = digest_of_upload_id(ref)
    if digest is not None:
        try:
            return await find_input(svc.storage, digest), None
        except NotFound as exc:
            raise InvalidRequest(f"{where}: {exc.detail}", field=where) from None
    if _GENERATION_ID.match(ref):
        return await _from_generation(svc, where, ref, limits)
    if ref.startswith(("https://", "http://")):
        own = await _own_image(svc, ref)
        if own is not None:
            return await _from_generation(svc, where, own, limits)
        policy = FetchPolicy(allow_http_and_loopback=svc.settings.test_mode)
        stored = await fetch_input(
            ref, svc.storage, limits, policy=policy, client=svc.http, field=where
        )
        return stored, None
    raise InvalidRequest(
        f"{where}: {ref[:80]!r} is neither an upload id (upl_…), a generation id (gen_…) nor an "
        "https URL; upload the image with POST /v1/uploads and pass its id",
        field=where,
    )


async def _from_generation(
    svc: Services, where: str, job_id: str, limits: InputLimits
) -> tuple[StoredInput, str]:
    job = await svc.store.get(job_id)
    if job is None or job.status is not JobStatus.SUCCEEDED or job.storage_key is None:
        state = "no such generation" if job is None else f"it is {job.status.value}"
        raise InvalidRequest(
            f"{where}: generation {job_id} has no image to edit ({state}); pass a succeeded "
            "generation, an upload id or an https URL",
            field=where,
        )
    data = await svc.storage.get(job.storage_key)
    stored = await store_input(svc.storage, data, limits, field=where)
    await record_source(svc.storage, stored.digest, job.id)
    return stored, job.id


async def _own_image(svc: Services, url: str) -> str | None:
    """The generation whose image ``url`` (one of this server's image URLs) is, else None."""
    public = svc.settings.public_url.rstrip("/")
    if public and not url.startswith(public + "/"):
        return None
    path = urlsplit(url).path
    if public:
        path = path[len(urlsplit(public).path) :]
    found = _IMAGE_PATH.match(path)
    key = found.group("key") if found else ""
    name = _KEY_NAME.search(key)
    if name is None:
        return None
    for version in ("k1", "k2"):  # the storage key names the content key's hash, not its version
        image = await svc.store.find_image(f"{version}:{name.group('hex')}")
        if image is not None and image.storage_key == key:
            return image.job_id
    return None
