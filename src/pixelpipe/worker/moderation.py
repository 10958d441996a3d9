"""Output moderation, between verify (stage 9) and store (stage 10): the image the provider made
is checked before it is stored, indexed for reuse or delivered.

Under the job's API key's rules (:func:`pixelpipe.moderation.policy.rules_for`) a flagged image is

- ``block``: never stored where it could be delivered or reused; its attempt is marked
  paid-and-blocked in the ledger (:meth:`Ledger.mark_blocked`: its price stays spent), its bytes
  go to quarantine (``quarantine/<job id>.<ext>``, never served) when a retention is set, and the
  job fails ``output_blocked`` (:class:`~pixelpipe.errors.OutputModerated`);
- ``blur``: a blurred copy is stored and delivered instead, marked;
- ``flag``: delivered as it is, marked.

Marked images (blurred, flagged, or let through unchecked when the moderator was down and
``PIXELPIPE_MODERATION_ON_ERROR=open``) are stored under their own key and never indexed for
reuse by the content-hash cache. Every step here is idempotent, so a step that runs again after
a crash records nothing twice. Fail-closed: the moderator's error goes to the retry policy (a
transient one is tried again like a fetch, never paying again; then the job fails).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pixelpipe.errors import ModerationError, OutputModerated, ProviderContentRejected
from pixelpipe.fetch import VerifiedImage, thumbnail, to_format, verify_image
from pixelpipe.jobs.model import Job
from pixelpipe.key import CONTENT_TYPES
from pixelpipe.moderation.base import Action, ModerationEvent, Source
from pixelpipe.moderation.blur import blurred_png
from pixelpipe.moderation.policy import flagged, rules_for
from pixelpipe.moderation.stage import Moderation
from pixelpipe.providers.base import ProviderUpdate
from pixelpipe.services import Services
from pixelpipe.worker.billing import actual_cost
from pixelpipe.worker.context import StepContext

log = logging.getLogger(__name__)
QUARANTINE_PREFIX = "quarantine/"
Marks = dict[str, Any]


async def moderate_output(
    ctx: StepContext, job: Job, image: VerifiedImage, thumb: VerifiedImage
) -> tuple[VerifiedImage, VerifiedImage, Marks | None]:
    """The image and thumbnail to store, and the marks they carry (None: clean or not
    moderated). Raises OutputModerated when the image is blocked."""
    stage = ctx.svc.moderation
    moderator = stage.outputs
    if moderator is None:
        return image, thumb, None
    try:
        verdict = await moderator.image(image.data, CONTENT_TYPES[job.request.format])
    except ModerationError as exc:
        if stage.settings.on_error == "closed":
            raise
        log.warning("job %s: image delivered unmoderated (fail-open): %s", job.id, exc.detail)
        await _log(ctx, job, "unchecked", "moderation", ())
        return image, thumb, {"action": "unchecked", "categories": []}
    rules = rules_for(stage.settings, job.api_key_id)
    hits = flagged(verdict, rules)
    if not hits:
        return image, thumb, None
    if rules.action == "block":
        await block(ctx, job, image.data, hits, "moderation")
    if rules.action == "blur":
        image, thumb = await asyncio.to_thread(_blurred, image, job.request.format, stage)
    action: Action = "blurred" if rules.action == "blur" else "flagged"
    await _log(ctx, job, action, "moderation", hits)
    return image, thumb, {"action": action, "categories": list(hits)}


async def block(
    ctx: StepContext,
    job: Job,
    data: bytes | None,
    hits: tuple[str, ...],
    source: Source,
    *,
    paid: bool = True,
) -> None:
    """Mark the attempt paid-and-blocked, keep the bytes in quarantine (when a retention is
    set), log it, and raise OutputModerated. Safe to run again. ``paid`` False: the provider
    does not bill the run (a failed Replicate prediction): it costs $0 and has no ledger row."""
    svc = ctx.svc
    await svc.ledger.mark_blocked(job.id, job.attempt)
    amount, status = actual_cost(ctx, job) if paid else (0, "free")
    days = svc.moderation.settings.quarantine_days
    key = until = None
    if data is not None and days > 0:
        key = f"{QUARANTINE_PREFIX}{job.id}.{job.request.format}"
        until = time.time() + days * 86_400
        await svc.storage.put(key, data, content_type=CONTENT_TYPES[job.request.format])
    await _log(ctx, job, "blocked", source, hits, amount, key, until)
    await svc.store.update(job.id, cost_micros=amount, cost_status=status)
    what = ", ".join(hits) or "unsafe content"
    by = "the provider's safety filter" if source == "provider" else "output moderation"
    raise OutputModerated(
        f"the generated image was blocked by {by} ({what}); "
        f"{'it was paid for and ' if paid and amount != 0 else ''}it is not delivered",
        categories=list(hits),
        source=source,
    )


async def _log(
    ctx: StepContext,
    job: Job,
    action: Action,
    source: Source,
    hits: tuple[str, ...],
    amount: int | None = None,
    key: str | None = None,
    until: float | None = None,
) -> None:
    if amount is None and action != "blocked":
        amount, _ = actual_cost(ctx, job)
    event = ModerationEvent(
        "image", action, source, job.api_key_id, hits, time.time(), job.id, amount, key, until
    )
    await ctx.svc.moderation.log.add(event)


def _blurred(
    image: VerifiedImage, fmt: str, stage: Moderation
) -> tuple[VerifiedImage, VerifiedImage]:
    blurred = to_format(verify_image(blurred_png(image.data, stage.settings.blur_radius)), fmt)
    return blurred, thumbnail(blurred)


def provider_blocked(update: ProviderUpdate) -> tuple[str, ...] | None:
    """The categories when a failed run is the provider's own NSFW filter blocking the image it
    made (fal's ``has_nsfw_concepts``, a Replicate run failing "NSFW content"), else None. Other
    content-policy failures (the prompt refused) stay ``provider_rejected``."""
    error = update.error
    if isinstance(error, OutputModerated):
        return tuple(error.extra.get("categories") or ("sexual",))
    nsfw = isinstance(error, ProviderContentRejected) and "nsfw" in error.detail.lower()
    return ("sexual",) if nsfw else None


def marked_key(key: str, marks: Marks | None) -> str:
    """Where a marked image is stored: beside the clean one's key, never the same object."""
    if not marks:
        return key
    stem, dot, ext = key.rpartition(".")
    return f"{stem}.{marks['action']}{dot}{ext}"


async def sweep_quarantine(svc: Services, now: float | None = None) -> int:
    """Delete quarantined bytes whose retention has passed; how many went."""
    done = 0
    for job_id, key in await svc.moderation.log.expired_quarantine(now or time.time()):
        await svc.storage.delete(key)
        await svc.moderation.log.released(job_id)
        done += 1
    return done
