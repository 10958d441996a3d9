"""One fake Replicate prediction: its clock-driven lifecycle and the parts of its JSON snapshot."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

NSFW_ERROR = (
    "All generated images contained NSFW content. Try running it again with a different prompt."
)
POLICY_ERROR = (
    "The input or output was flagged as sensitive. Please try again with different inputs. (E005)"
)
TERMINAL = ("succeeded", "failed", "canceled")


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Prediction:
    id: str
    model: str
    version: str
    input: dict[str, Any]
    created: float
    latency: float
    outcome: str
    base: str
    webhook: str | None = None
    events: frozenset[str] = frozenset()
    echo: dict[str, Any] = field(default_factory=dict)
    canceled_at: float | None = None
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    output: Any = None

    @property
    def started(self) -> float:
        return self.created + self.latency * 0.25

    @property
    def finished(self) -> float:
        return self.created + self.latency

    def phase(self, now: float) -> str:
        if self.canceled_at is not None:
            return "canceled"
        if now >= self.finished:
            return "failed" if self.outcome != "ok" else "succeeded"
        return "processing" if now >= self.started else "starting"


async def sleep_unless_canceled(pred: Prediction, seconds: float) -> None:
    """Sleep up to ``seconds``, waking early if the prediction is canceled."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(pred.cancel.wait(), timeout=max(0.0, seconds))


def logs(pred: Prediction, phase: str, now: float) -> str:
    if phase == "starting":
        return ""
    done = (
        1.0 if phase in TERMINAL else (now - pred.started) / max(1e-6, pred.finished - pred.started)
    )
    steps = int(pred.input.get("num_inference_steps", 4))
    cur = min(steps, int(steps * done))
    pct = int(100 * cur / steps)
    bar = "█" * (pct // 10) + " " * (10 - pct // 10)
    return (
        f"Using seed: {pred.input.get('seed', 0)}\n{pct:3d}%|{bar}| {cur}/{steps} [00:00<00:00]\n"
    )


def error_message(pred: Prediction) -> str:
    return NSFW_ERROR if pred.outcome == "nsfw" else POLICY_ERROR


def metrics(pred: Prediction) -> dict[str, Any]:
    count = 1 if isinstance(pred.output, str) else len(pred.output or [])
    predict = round(pred.latency * 0.75, 3)
    return {"predict_time": predict, "total_time": round(pred.latency, 3), "image_count": count}
