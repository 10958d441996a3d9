"""Stages 10–12: bill the finished run once, fetch its output, verify, store, finish the job."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from pixelpipe.errors import OutputFetchError, PixelpipeError
from pixelpipe.events.partials import HANDOFF_S, Final
from pixelpipe.fetch import (
    VerifiedImage,
    fetch_output,
    is_own_thumbnail,
    thumbnail,
    to_format,
    verify_decoded,
    verify_image_async,
)
from pixelpipe.fetch.png_check import check_png, scanline_bytes
from pixelpipe.fetch.verify import open_image
from pixelpipe.jobs.model import ImageRecord, Job, JobStatus
from pixelpipe.key import CONTENT_TYPES, storage_key, thumbnail_key
from pixelpipe.providers.base import Output, ProviderUpdate
from pixelpipe.worker.billing import actual_cost, record_attempt, timed
from pixelpipe.worker.context import StepContext
from pixelpipe.worker.kept import drop_kept_outputs, kept_outputs, saved_outputs
from pixelpipe.worker.moderation import Marks, marked_key, moderate_output

# outputs this small (a 256x256 WebP is ~10 KB) are verified and thumbnailed on the event loop:
# ~0.2 ms of Pillow work, less than a worker-thread round trip costs — when they are small in
# pixels too: a 1024x1024 PNG of flat colours is ~7 KB, yet ~30 ms to decode and thumbnail
INLINE_IMAGE_BYTES = 16 * 1024
INLINE_IMAGE_PIXELS = 256 * 256
# a PNG this small whose pixels inflate to at most this much is checked (check_png) on the event
# loop: ~1.3 ms at most, less than the thread costs while the bill's SQL holds the GIL
INLINE_CHECK_BYTES = 64 * 1024
INLINE_CHECK_SCANLINES = 4 << 20
_S = JobStatus


async def accept_success(
    ctx: StepContext, job: Job, update: ProviderUpdate, *, attempt: int | None = None
) -> Job | None:
    """Bill the attempt (once) and persist the outputs: from here on we never pay again.

    ``attempt``: the attempt whose run produced ``update`` (an adopted orphan's), if not the
    job's current one."""
    update = timed(ctx, job, update)  # a self-hosted run's GPU time, kept with its usage
    outputs = await kept_outputs(ctx.svc, job, list(update.outputs))  # durable before the row
    billed = record_attempt(ctx, job, update, attempt)  # same group commit as transition
    saved = {**job.provider_state, "outputs": outputs, "usage": update.usage}
    moved = ctx.svc.store.transition(
        job.id,
        job.status,
        _S.FETCHING,
        provider_state=saved,
        next_run_at=time.time(),
        provider=job.provider,  # an adopted run's provider, when it is another's
        provider_job_id=update.provider_job_id,
        revised_prompt=update.revised_prompt or job.revised_prompt,
    )
    _, result = await asyncio.gather(billed, moved)
    return result


async def accept_and_store(ctx: StepContext, job: Job, update: ProviderUpdate) -> None:
    """:func:`accept_success`, then store the run's image — its output fetched, verified,
    converted and thumbnailed while the bill commits. Nothing is stored, indexed or changed before
    that commit: a step that dies or loses its job meanwhile has only spent CPU, and an output
    that turns out unreadable fails the job after it was billed, exactly as it did in sequence.
    Where a stream reader of this process waits for the image: :func:`_hand_over_first`."""
    outputs = list(update.outputs)
    if _handed_over(ctx, job):
        await _hand_over_first(ctx, job, update, outputs)
        return
    ready = asyncio.ensure_future(_ready_output(ctx, job, outputs))
    moved = await _billed(ctx, job, update, ready)
    if moved is not None:
        image, thumb = await ready
        await _moderated_store(ctx, moved, image, thumb)


async def _billed(
    ctx: StepContext, job: Job, update: ProviderUpdate, ready: asyncio.Future[Any]
) -> Job | None:
    """:func:`accept_success` while ``ready`` runs; ``ready`` dropped when there is nothing to
    store (the job moved on meanwhile: its deadline, a cancel) or the bill failed."""
    try:
        moved = await accept_success(ctx, job, update)
    except BaseException:
        _discard(ready)
        raise
    if moved is None:
        _discard(ready)
    return moved


def _handed_over(ctx: StepContext, job: Job) -> bool:
    """A stream reader of this process waits for a PNG the moderation will not look at."""
    return (
        job.request.format == "png"
        and ctx.svc.moderation.outputs is None
        and ctx.svc.partials.watched(job.id)
    )


async def _hand_over_first(
    ctx: StepContext, job: Job, update: ProviderUpdate, outputs: list[Output]
) -> None:
    """The image to the waiting readers first: checked whole (:func:`check_png`, ~1–6 ms at
    1024×1024 instead of a ~8–14 ms decode) while the bill commits, then handed over
    (:meth:`PartialHub.finish`) — once its durable put is done, or, where the provider sent the
    bytes (kept with the bill, in its commit: the step run again after a crash stores these same
    bytes), while the put runs. Then, as always, Pillow's full decode (the thumbnail: a PNG it
    refuses still fails the job), the thumbnail's put and the job's commit. An output the check
    does not prove takes the usual path."""
    checked = asyncio.ensure_future(_checked_output(ctx, job, outputs))
    moved = await _billed(ctx, job, update, checked)
    if moved is None:
        return
    raw, image = await checked
    put = None if image is None else _put_image(ctx, moved, image)
    try:
        if image is not None and put is not None:
            if outputs[0].data is None:  # fetched from a URL, not kept: stored before it is given
                await put
            await _hand_over(ctx, moved, image)
        ready = await asyncio.to_thread(_prepare_image, raw, moved.request.format)
    except PixelpipeError:
        if image is not None:
            await _withdraw(ctx, moved, image, put)
        raise
    except BaseException:
        if put is not None:
            _discard(put)  # a put under way finishes in its thread; it is idempotent
        raise
    if put is not None:
        await put  # stored before the job's commit names it: a failed put fails the step
    await _moderated_store(ctx, moved, *ready, image_stored=image is not None)


def _put_image(ctx: StepContext, job: Job, image: VerifiedImage) -> asyncio.Future[None]:
    """The image's durable put, under way."""
    data, ctype = image.data, image.content_type
    return asyncio.ensure_future(ctx.svc.storage.put(_image_key(job), data, content_type=ctype))


async def _hand_over(ctx: StepContext, job: Job, image: VerifiedImage) -> None:
    """Give the (billed) image to the job's readers in this process."""
    if ctx.svc.partials.finish(job.id, Final(image.data, job.provider_state)):
        await asyncio.sleep(HANDOFF_S)  # their sending goes before the decode's thread


async def _withdraw(
    ctx: StepContext, job: Job, image: VerifiedImage, put: asyncio.Future[None] | None
) -> None:
    """Pillow refused an image :func:`check_png` had passed: once its ``put`` is done, it goes
    from the store, where no row names it (the job fails), unless what is there is not these
    bytes (the put found an image of the same content key there, and left it)."""
    key = _image_key(job)
    with contextlib.suppress(PixelpipeError):
        if put is not None:
            await put
        if await ctx.svc.storage.get(key) == image.data:
            await ctx.svc.storage.delete(key)


async def _checked_output(
    ctx: StepContext, job: Job, outputs: list[Output]
) -> tuple[bytes, VerifiedImage | None]:
    """The first output's bytes, and the PNG they are when :func:`check_png` proves it."""
    raw = await _raw_output(ctx, job, outputs)
    if len(raw) <= INLINE_CHECK_BYTES and 0 < (scanline_bytes(raw) or 0) <= INLINE_CHECK_SCANLINES:
        return raw, check_png(raw)
    return raw, await asyncio.to_thread(check_png, raw)


async def fetch_and_store(ctx: StepContext, job: Job, update: ProviderUpdate | None) -> None:
    if update is None and (stored := await _already_stored(ctx, job)) is not None:
        # a previous run of this step uploaded the image, then crashed (or lost its database):
        # finish from our own copy — the provider's URL may have expired meanwhile
        await _store(ctx, job, *stored)
        return
    outputs = list(update.outputs) if update else await saved_outputs(ctx.svc, job)
    image, thumb = await _ready_output(ctx, job, outputs)
    await _moderated_store(ctx, job, image, thumb)


async def _ready_output(
    ctx: StepContext, job: Job, outputs: list[Output]
) -> tuple[VerifiedImage, VerifiedImage]:
    """The first output's bytes (inline, or fetched under the provider's policy), verified,
    in the requested format, and its thumbnail."""
    raw = await _raw_output(ctx, job, outputs)
    if _inline(raw):  # a thread hop would cost more than the work
        return _prepare_image(raw, job.request.format)
    return await asyncio.to_thread(_prepare_image, raw, job.request.format)


async def _raw_output(ctx: StepContext, job: Job, outputs: list[Output]) -> bytes:
    """The first output's bytes: inline, or fetched under the provider's policy."""
    if not outputs:
        raise OutputFetchError("the provider reported success without an image")
    policy = ctx.svc.fetch_policies.get(job.provider or "")  # every provider has one (bootstrap)
    raw = await fetch_output(outputs[0], policy, ctx.svc.http) if policy else outputs[0].data
    if raw is None:
        raise OutputFetchError("the provider output could not be read")
    return raw


async def _moderated_store(
    ctx: StepContext,
    job: Job,
    image: VerifiedImage,
    thumb: VerifiedImage,
    *,
    image_stored: bool = False,
) -> None:
    image, thumb, marks = await moderate_output(ctx, job, image, thumb)  # may block it
    await _store(ctx, job, image, thumb, marks, image_stored=image_stored)


def _discard(task: asyncio.Future[Any]) -> None:
    """Stop ``task`` (a thread it started runs to its end) and drop its result or error."""
    task.cancel()
    task.add_done_callback(lambda t: t.cancelled() or t.exception())


async def _already_stored(ctx: StepContext, job: Job) -> tuple[Any, Any] | None:
    """The verified image and thumbnail this job's content key already has in storage."""
    storage = ctx.svc.storage
    key = _image_key(job)
    tkey = thumbnail_key(job.content_key, job.model)
    try:
        if await storage.head(key) is None:
            return None
        image = await verify_image_async(await storage.get(key))
        if is_own_thumbnail(image):  # there is no separate thumbnail object
            return image, image
        if await storage.head(tkey) is None:
            return None
        return image, await verify_image_async(await storage.get(tkey))
    except PixelpipeError:  # unreadable or not an image after all: fetch as usual
        return None


async def _store(
    ctx: StepContext,
    job: Job,
    image: Any,
    thumb: Any,
    marks: Marks | None = None,
    *,
    image_stored: bool = False,
) -> None:
    """``marks``: moderation marked the image (blurred, flagged, unchecked): it is stored under
    its own key, kept with the job, and not indexed for reuse by the content-hash cache.
    ``image_stored``: the image is in place already (handed over first), only its thumbnail
    is put."""
    svc = ctx.svc
    key = marked_key(_image_key(job), marks)
    # a small, light image is its own thumbnail (fetch.transcode.is_own_thumbnail): one put
    tkey = key if thumb is image else marked_key(thumbnail_key(job.content_key, job.model), marks)
    puts = []
    if not image_stored:
        puts.append(
            svc.storage.put(key, image.data, content_type=CONTENT_TYPES[job.request.format])
        )
    if tkey != key:
        puts.append(svc.storage.put(tkey, thumb.data, content_type="image/webp"))
    # the puts are idempotent (content-addressed) and come first: a crash after them leaves the
    # row at fetching (or storing), and the step run again finishes from our own copy
    # (_already_stored). Then ONE group commit, in this order: fetching → storing, the image
    # index, storing → succeeded, the reservation's end — so a crash or a locked database cannot
    # leave a finished job without its index entry or holding budget. Each transition is
    # guarded: when the job moved meanwhile (it failed at its deadline), neither matches
    await asyncio.gather(*puts)
    storing = (
        svc.store.transition(job.id, _S.FETCHING, _S.STORING)
        if job.status is _S.FETCHING
        else _same(job)
    )
    now = time.time()
    indexed = (
        _same(job)
        if marks
        else svc.store.save_image(
            ImageRecord(
                job.content_key,
                key,
                CONTENT_TYPES[job.request.format],
                image.width,
                image.height,
                len(image.data),
                job.model,
                job.id,
                now,
                tkey,
            )
        )
    )
    cost, status = actual_cost(ctx, job)
    moved, _, done, _ = await asyncio.gather(
        storing,
        indexed,
        svc.store.transition(
            job.id,
            _S.STORING,
            _S.SUCCEEDED,
            storage_key=key,
            thumb_key=tkey,
            content_type=CONTENT_TYPES[job.request.format],
            width=image.width,
            height=image.height,
            bytes=len(image.data),
            cost_micros=cost,
            cost_status=status,
            error_code=None,
            error_detail=None,
            provider_state=_without_inline_data(job.provider_state, marks),
        ),
        svc.ledger.settle(job.id),
    )
    if moved is not None:
        svc.metrics.stored_bytes.inc(len(image.data))
    if done is not None:
        await drop_kept_outputs(svc, job)
        if not image_stored:  # the bytes put under ``key`` just now
            svc.completion_hooks.hand_image(done.id, image.data)
        await ctx.finished(done)


def _image_key(job: Job) -> str:
    """Where ``job``'s image is stored (unmarked by moderation): its content key's."""
    return storage_key(job.content_key, job.model, job.request.format)


def _inline(raw: bytes) -> bool:
    """Small enough, in bytes and in the pixels its header declares, to verify on the loop."""
    if len(raw) > INLINE_IMAGE_BYTES:
        return False
    try:
        with open_image(raw) as im:  # the header only: no pixel is decoded here
            width, height = im.size
    except PixelpipeError:
        return False  # verify_image, in the thread, says what is wrong with it
    return width * height <= INLINE_IMAGE_PIXELS


def _prepare_image(raw: bytes, fmt: str) -> tuple[VerifiedImage, VerifiedImage]:
    """Verify, convert and thumbnail in one worker-thread hop (all CPU-bound Pillow work)."""
    verified, pixels = verify_decoded(raw)  # decoded once for the conversion and thumbnail
    image = to_format(verified, fmt, pixels=pixels)
    return image, thumbnail(image, pixels=pixels)


async def _same(job: Job) -> Job:
    return job


def _without_inline_data(state: dict[str, Any], marks: Marks | None = None) -> dict[str, Any]:
    """Once stored, inline outputs (base64, or the object keeping them) are dead weight in the
    row: keep only their shape (and the moderation marks, when there are any)."""
    outputs = [
        {k: v for k, v in o.items() if k not in ("data_b64", "kept")}
        for o in state.get("outputs") or []
    ]
    return {**state, "outputs": outputs, **({"moderation": marks} if marks else {})}
