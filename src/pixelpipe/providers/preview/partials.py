"""Simulated partial images of the offline preview: the final picture, coarse to fine.

While a preview run waits out its latency, each poll carries a partial image in its progress
(``preview``, a small ``data:`` URL — :func:`pixelpipe.providers.previews.preview_url`), the way a
self-hosted server's denoising previews travel: stage 1 is a heavily blurred thumbnail of the
final picture, stage 2 less so, stage 3 nearly sharp. So streaming
(``client.images.generate(..., stream=True, partial_images=…)``) and the page's live preview work
with no provider key.

Stateless like the provider: the stages are points in the run's latency (:func:`schedule`), the
stage a poll is in follows from the time; the same request and stage give the same bytes. Stages
are at least :data:`MIN_STAGE_S` apart (at most two previews a second per job); a run too short
for one has none. Never the stored image, never billed: the final image is drawn separately.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageFilter

from pixelpipe.providers.previews import PREVIEW_MAX_BYTES, preview_url

MAX_STAGES = 3  # OpenAI's partial_images is 0–3
MIN_STAGE_S = 0.5  # at most two previews a second per job
_SIDES = (256, 192, 128, 96, 64, 48, 32)  # a partial's longest side, tried until it fits
_COARSENESS = {1: 24, 2: 8, 3: 2}  # stage → the factor the picture is shrunk by before blurring
_BLUR = {1: 2.0, 2: 1.0, 3: 0.4}
_PIL_FORMAT = {"webp": "WEBP", "png": "PNG", "jpeg": "JPEG"}
_ENCODER: dict[str, dict[str, int]] = {
    "WEBP": {"quality": 70, "method": 0},
    "JPEG": {"quality": 70},
    "PNG": {"compress_level": 6},
}


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a run of ``latency_s`` shows its partials: ``stages`` of them, ``interval_s`` apart."""

    latency_s: float
    stages: int
    interval_s: float

    def stage_at(self, elapsed_s: float) -> int:
        """The partial shown ``elapsed_s`` into the run (0: none yet)."""
        if self.stages == 0 or elapsed_s < self.interval_s:
            return 0
        return min(self.stages, int(elapsed_s / self.interval_s + 1e-6))

    def next_poll_s(self, elapsed_s: float) -> float:
        """Seconds until the next stage (or the end of the run)."""
        remaining = self.latency_s - elapsed_s
        stage = self.stage_at(elapsed_s)
        if stage >= self.stages:
            return max(0.0, remaining)
        return max(0.0, min(remaining, (stage + 1) * self.interval_s - elapsed_s))


def schedule(latency_s: float) -> Schedule:
    """Up to :data:`MAX_STAGES` stages evenly inside the run, none closer than
    :data:`MIN_STAGE_S` to another or to the end."""
    stages = max(0, min(MAX_STAGES, int(latency_s / MIN_STAGE_S + 1e-6) - 1))
    return Schedule(latency_s, stages, latency_s / (stages + 1) if stages else latency_s)


def partial_preview(final: bytes, fmt: str, stage: int) -> str | None:
    """The ``data:`` URL of partial ``stage`` (1 = coarsest) of the ``final`` picture, encoded as
    ``fmt``; None when even the smallest thumbnail is too large for a progress event."""
    with Image.open(io.BytesIO(final)) as im:
        picture = im.convert("RGB")
    for side in _SIDES:
        data = _encode(_coarse(_fit(picture, side), stage), fmt)
        if len(data) <= PREVIEW_MAX_BYTES:
            return preview_url(data)
    return None


def _fit(picture: Image.Image, side: int) -> Image.Image:
    w, h = picture.size
    scale = min(1.0, side / max(w, h))
    return picture.resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR
    )


def _coarse(thumb: Image.Image, stage: int) -> Image.Image:
    factor = _COARSENESS.get(stage, 1)
    w, h = thumb.size
    small = thumb.resize((max(1, w // factor), max(1, h // factor)), Image.Resampling.BILINEAR)
    return small.resize((w, h), Image.Resampling.BICUBIC).filter(
        ImageFilter.GaussianBlur(_BLUR[stage])
    )


def _encode(img: Image.Image, fmt: str) -> bytes:
    pil = _PIL_FORMAT[fmt]
    buf = io.BytesIO()
    img.save(buf, pil, **_ENCODER[pil])
    return buf.getvalue()
