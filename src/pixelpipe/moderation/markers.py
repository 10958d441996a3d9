"""How the in-memory moderator and the fake moderation server decide, so tests can steer them.

Text: ``[mod:<category>]`` flags that category (score 0.99); ``[mod:<category>=0.4]`` gives it
that score (flagged by the moderator itself from 0.5). Images: a picture whose mean colour is
magenta (255, 0, 255, within 24 per channel) scores ``sexual`` 0.99. Every other category scores
a small constant. The category names are OpenAI's (``omni-moderation-latest``).
"""

from __future__ import annotations

import io
import re

from PIL import Image, ImageStat

from pixelpipe.moderation.base import Verdict

TEXT_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
# the categories omni-moderation scores images in (the others are text only)
IMAGE_CATEGORIES = (
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "violence",
    "violence/graphic",
)
FLAG_AT = 0.5  # the moderator's own flag: a score from here on
BASELINE = 0.0001
MAGENTA = (255, 0, 255)
_MARKER = re.compile(r"\[mod:([a-z/-]+)(?:=([01](?:\.\d+)?))?\]")


def text_scores(text: str) -> dict[str, float]:
    scores = dict.fromkeys(TEXT_CATEGORIES, BASELINE)
    for category, score in _MARKER.findall(text.lower()):
        if category in scores:
            scores[category] = float(score) if score else 0.99
    return scores


def image_scores(data: bytes) -> dict[str, float]:
    """Scores of an image's pixels (magenta: ``sexual``); raises ValueError when unreadable."""
    scores = dict.fromkeys(IMAGE_CATEGORIES, BASELINE)
    try:
        with Image.open(io.BytesIO(data)) as picture:
            mean = ImageStat.Stat(picture.convert("RGB").resize((16, 16))).mean
    except Exception as exc:  # Pillow raises many kinds on a bad image
        raise ValueError(f"not a readable image ({type(exc).__name__})") from None
    if all(abs(m - t) <= 24 for m, t in zip(mean, MAGENTA, strict=True)):
        scores["sexual"] = 0.99
    return scores


def verdict_of(scores: dict[str, float], model: str = "") -> Verdict:
    flagged = tuple(sorted(c for c, s in scores.items() if s >= FLAG_AT))
    return Verdict(bool(flagged), scores, flagged, model)


def magenta_png(width: int = 64, height: int = 64) -> bytes:
    """A picture the markers flag as ``sexual`` (tests, docs)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), MAGENTA).save(buf, format="PNG")
    return buf.getvalue()
