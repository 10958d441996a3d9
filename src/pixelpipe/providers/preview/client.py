"""The offline preview provider: a deterministic picture drawn from the request, locally.

It is not AI and says so on the picture and in its label. It exists so that a newcomer can run the
whole pipeline — storage, dedup, gallery, costs, live status — with no account and no network. It is
stateless: the provider job id encodes when the run is "ready", so a restart loses nothing.
Latency and transient failures are configurable for demos and tests.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import random
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from PIL import Image, ImageDraw

from pixelpipe.errors import ProviderJobLost, ProviderUnavailable, Unauthorized
from pixelpipe.intake import CanonicalRequest
from pixelpipe.key import CONTENT_TYPES
from pixelpipe.providers.base import Output, ProviderRequest, ProviderUpdate, RunState
from pixelpipe.providers.preview.edit import render_edit_preview
from pixelpipe.providers.preview.partials import partial_preview, schedule

_PIL_FORMAT = {"webp": "WEBP", "png": "PNG", "jpeg": "JPEG"}


class PreviewProvider:
    name = "preview"
    supports_webhooks = False

    def __init__(self, *, latency_ms: int = 0, failure_rate: float = 0.0) -> None:
        self.latency_s = latency_ms / 1000
        self.failure_rate = failure_rate
        self.submissions = 0  # observable by tests: how many runs were started

    async def submit(self, req: ProviderRequest) -> ProviderUpdate:
        if self._should_fail(req):
            raise ProviderUnavailable("preview provider: injected transient failure", retry=True)
        self.submissions += 1
        ready_at_ms = int((time.time() + self.latency_s) * 1000)
        run_id = f"pv_{ready_at_ms}_{req.job_id}_{req.attempt}"
        if self.latency_s <= 0:
            return await self._done(run_id, req)
        first = schedule(self.latency_s).next_poll_s(0.0)
        return ProviderUpdate(run_id, RunState.RUNNING, poll_after_s=first)

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate:
        try:
            ready_at = int(provider_job_id.split("_")[1]) / 1000
        except (IndexError, ValueError):
            raise ProviderJobLost(f"preview run {provider_job_id!r} is unknown") from None
        remaining = ready_at - time.time()
        if remaining > 0:
            return await self._running(provider_job_id, req, remaining)
        return await self._done(provider_job_id, req)

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None:
        return None

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        raise Unauthorized("the preview provider sends no webhooks")

    async def aclose(self) -> None:
        return None

    async def _running(self, run_id: str, req: ProviderRequest, remaining: float) -> ProviderUpdate:
        """Still drawing: the percent done and, from the first stage on, a partial image."""
        pct = 100 * (1 - remaining / self.latency_s) if self.latency_s else 99
        progress: dict[str, Any] = {"percent": round(max(0.0, min(pct, 99.0)), 1)}
        plan = schedule(self.latency_s)
        elapsed = max(0.0, self.latency_s - remaining)
        stage = plan.stage_at(elapsed)
        if stage:
            preview = await _off_loop(req, _partial, req, stage)
            if preview is not None:
                progress["preview"] = preview
        poll_after = plan.next_poll_s(elapsed) if self.latency_s else remaining
        return ProviderUpdate(run_id, RunState.RUNNING, poll_after_s=poll_after, progress=progress)

    async def _done(self, run_id: str, req: ProviderRequest) -> ProviderUpdate:
        data = await _off_loop(req, render_for, req)
        out = Output(data=data, content_type=CONTENT_TYPES[req.request.format])
        return ProviderUpdate(run_id, RunState.SUCCEEDED, outputs=(out,), usage={"image_count": 1})

    def _should_fail(self, req: ProviderRequest) -> bool:
        if self.failure_rate <= 0:
            return False
        h = hashlib.sha256(f"{req.job_id}:{req.attempt}".encode()).digest()
        return int.from_bytes(h[:4], "big") / 2**32 < self.failure_rate


INLINE_PIXELS = 128 * 128
_T = TypeVar("_T")


async def _off_loop(req: ProviderRequest, fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)``: on the loop for a small picture (cheaper than a worker-thread round
    trip), else in a worker thread."""
    if req.request.width * req.request.height <= INLINE_PIXELS:
        return fn(*args)
    return await asyncio.to_thread(fn, *args)


def _partial(req: ProviderRequest, stage: int) -> str | None:
    """Partial ``stage`` of the picture ``req`` will get, as a ``data:`` URL."""
    return partial_preview(render_for(req), req.request.format, stage)


def render_for(req: ProviderRequest) -> bytes:
    """The preview of a generation, or of an edit when the request has input images."""
    if req.images:
        return render_edit_preview(req.request, req.images, req.mask)
    return render_preview(req.request)


# fastest encoder settings: a preview is a placeholder, not a deliverable (WebP method 0 encodes
# ~2.5x faster than the default for files ~1.3x the size)
_ENCODER: dict[str, dict[str, int]] = {
    "WEBP": {"quality": 85, "method": 0},
    "JPEG": {"quality": 85},
    "PNG": {"compress_level": 1},
}


@functools.lru_cache(maxsize=32)
def _gradient(width: int, height: int) -> Image.Image:
    """The vertical ramp every preview of a size blends with (read-only once made)."""
    return Image.linear_gradient("L").resize((width, height))


def render_preview(req: CanonicalRequest) -> bytes:
    """Draw the picture: a seeded gradient and shapes, with a 'PREVIEW — not AI' label."""
    seed = int.from_bytes(
        hashlib.sha256(f"{req.prompt}\x00{req.seed}".encode()).digest()[:8], "big"
    )
    rng = random.Random(seed)
    w, h = req.width, req.height
    top = tuple(rng.randrange(40, 230) for _ in range(3))
    bottom = tuple(rng.randrange(10, 200) for _ in range(3))
    grad = _gradient(w, h)
    img = Image.composite(Image.new("RGB", (w, h), bottom), Image.new("RGB", (w, h), top), grad)
    draw = ImageDraw.Draw(img, "RGBA")
    for _ in range(3 + rng.randrange(5)):
        x, y = rng.randrange(w), rng.randrange(h)
        r = rng.randrange(max(4, min(w, h) // 12), max(8, min(w, h) // 3))
        fill = (*(rng.randrange(256) for _ in range(3)), rng.randrange(70, 170))
        box = (x - r, y - r, x + r, y + r)
        (draw.ellipse if rng.random() < 0.6 else draw.rectangle)(box, fill=fill)
    if min(w, h) >= 128:
        _label(draw, w, h, req.prompt)
    buf = io.BytesIO()
    fmt = _PIL_FORMAT[req.format]
    img.save(buf, fmt, **_ENCODER[fmt])
    return buf.getvalue()


def _label(draw: ImageDraw.ImageDraw, w: int, h: int, prompt: str) -> None:
    size = max(10, min(w, h) // 28)
    text = "PREVIEW - not AI"
    draw.rectangle((0, h - size * 4, w, h), fill=(0, 0, 0, 150))
    draw.text((size, h - size * 3.6), text, fill=(255, 255, 255, 255), font_size=size)
    snippet = prompt if len(prompt) <= 60 else prompt[:57] + "..."
    draw.text((size, h - size * 2.1), snippet, fill=(230, 230, 230, 255), font_size=size * 0.8)
