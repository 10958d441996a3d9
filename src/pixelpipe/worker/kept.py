"""A provider's large inline output, kept as an object of its job's from billing until the job's
image is stored (stage 10): put durably before the row names it, deleted once the job ends.

A 1 MB PNG kept in the row as base64 is ~1.3 MB that SQLite writes, rewrites and reads back at
every transition (~28 ms per image); the row names the object instead. The object is the job's
own (never shared, so it can go when the job ends), named by its bytes (a put of the same output
again is a no-op), in one of 256 folders, with the extension of its type.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from typing import Any

from pixelpipe.errors import PixelpipeError
from pixelpipe.jobs.model import Job
from pixelpipe.providers.base import Output
from pixelpipe.services import Services

# an inline output (base64 in the provider's answer) larger than this is kept as an object
KEPT_OUTPUT_BYTES = 64 * 1024
KEPT_OUTPUT_PREFIX = "provider-outputs"
_KEPT_EXT = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
log = logging.getLogger("pixelpipe.worker")


async def kept_outputs(svc: Services, job: Job, outputs: list[Output]) -> list[dict[str, Any]]:
    """The outputs as the row keeps them: a URL; a small inline output as base64; a large one
    put (durably) as an object of this job's, named by its digest, before the row names it."""
    kept: list[dict[str, Any]] = []
    for o in outputs:
        if o.url:
            kept.append({"url": o.url, "content_type": o.content_type, "digest": o.digest})
        elif len(o.data or b"") > KEPT_OUTPUT_BYTES and (key := await _keep(svc, job, o)):
            kept.append({"kept": key, "content_type": o.content_type})
        else:
            data = base64.b64encode(o.data or b"").decode()
            kept.append({"data_b64": data, "content_type": o.content_type})
    return kept


async def _keep(svc: Services, job: Job, output: Output) -> str | None:
    """Put a large inline output as the job's object; None when the storage fails (the row then
    keeps it as base64, as before: a paid-for output is never lost to a storage outage)."""
    data = output.data or b""
    ctype = output.content_type or "application/octet-stream"
    key = kept_output_key(job.id, data, ctype)
    try:
        await svc.storage.put(key, data, content_type=ctype)
    except PixelpipeError as exc:
        log.warning("keeping job %s's output in its row: storage failed (%s)", job.id, exc.code)
        return None
    return key


def kept_output_key(job_id: str, data: bytes, content_type: str | None = None) -> str:
    """A kept output's object key (see the module docstring)."""
    digest = hashlib.sha256(data).hexdigest()
    ext = _KEPT_EXT.get(content_type or "", "")
    return f"{KEPT_OUTPUT_PREFIX}/{digest[:2]}/{job_id}-{digest}{ext}"


async def drop_kept_outputs(svc: Services, job: Job) -> None:
    """``job`` no longer needs its kept outputs: its image is stored, or it ended without one
    (failed for good, canceled, past its deadline). Best effort: one left behind by a crash
    here is an unreferenced object, never a wrong image."""
    for o in job.provider_state.get("outputs") or []:
        if o.get("kept"):
            try:
                await svc.storage.delete(o["kept"])
            except PixelpipeError as exc:
                log.warning("could not delete %s: %s", o["kept"], exc.code)


async def saved_outputs(svc: Services, job: Job) -> list[Output]:
    """The outputs the row keeps, readable again (a kept one read back from storage)."""
    saved = job.provider_state.get("outputs") or []
    return [
        Output(
            url=o.get("url"),
            data=await _saved_data(svc, o),
            content_type=o.get("content_type"),
            digest=o.get("digest"),
        )
        for o in saved
    ]


async def _saved_data(svc: Services, saved: dict[str, Any]) -> bytes | None:
    if saved.get("kept"):
        return await svc.storage.get(saved["kept"])  # NotFound: the step fails, retried
    return base64.b64decode(saved["data_b64"]) if saved.get("data_b64") else None
