"""cog's wire format: the prediction id of a run, the ``input`` of a request, and a prediction
object (an HTTP answer or a webhook body) as a :class:`ProviderUpdate`.

Input mapping (a :class:`CanonicalRequest` is one image): ``prompt``, ``seed``, ``width``,
``height``, ``num_outputs = 1``; ``negative_prompt``, ``num_inference_steps`` (steps) and
``guidance_scale`` (guidance) when the request sets them (the names diffusers-based predictors
use); then the backend's own ``options.input`` table, which adds inputs or overrides these (e.g.
``input = { output_format = "png", go_fast = true }``). A predictor built by ``cog build`` (with
``.cog/openapi_schema.json``) drops inputs it does not declare without a word, so a name it spells
differently is simply not used; one run without that schema fails on them ("unexpected keyword
argument 'guidance_scale'", observed on coglet 0.23.1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pixelpipe.errors import (
    PixelpipeError,
    ProviderFailed,
    ProviderJobLost,
    ProviderUnavailable,
)
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import ProviderUpdate, RunState
from pixelpipe.providers.log_progress import log_progress
from pixelpipe.providers.outputs import decode_data_uri, normalize_outputs
from pixelpipe.providers.previews import thumbnail_url
from pixelpipe.providers.run_tag import RUN_PARAM, RunRef, run_webhook_url

GPU_TIME_SERVER = "server"  # metrics.predict_time, measured by cog around the predictor's run
GPU_TIME_WALL = "wall"  # timed by pixelpipe around a synchronous call
WORKER_CRASHED = "Worker crashed"  # coglet's error when the predictor process died (e.g. OOM)
_STATES = {
    "starting": RunState.PENDING,
    "processing": RunState.RUNNING,
    "succeeded": RunState.SUCCEEDED,
    "failed": RunState.FAILED,
    "canceled": RunState.CANCELED,
}


def prediction_id(provider: str, run: RunRef, secret: bytes) -> str:
    """``<job id>.<attempt>.<tag>``: the run tag of the attempt's webhook URL (:mod:`.run_tag`).

    The same job and attempt always give the same id, so a PUT of it is idempotent while the run
    lasts; and since cog does not sign its webhooks, the HMAC tag in the id that every delivery
    body carries is what authenticates a delivery (:func:`verify_prediction_id`).
    """
    query = urlsplit(run_webhook_url("", provider, run, secret)).query
    return parse_qs(query)[RUN_PARAM][0]


def cog_input(req: CanonicalRequest, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The prediction's ``input`` for one canonical request (see the module docstring)."""
    data: dict[str, Any] = {
        "prompt": req.prompt,
        "seed": req.seed,
        "width": req.width,
        "height": req.height,
        "num_outputs": 1,
    }
    if req.negative_prompt:
        data["negative_prompt"] = req.negative_prompt
    if req.steps is not None:
        data["num_inference_steps"] = req.steps
    if req.guidance is not None:
        data["guidance_scale"] = req.guidance
    return data | dict(extra)


def prediction_update(
    provider: str, pred: Mapping[str, Any], *, wall_s: float | None = None
) -> ProviderUpdate:
    """A cog prediction object as an update. ``wall_s``: the time a synchronous call took, used
    as the GPU time when cog's answer has no ``metrics.predict_time``."""
    pid = str(pred.get("id") or "")
    if not pid:
        raise ProviderUnavailable(f"{provider} answered a prediction without an id")
    state = _STATES.get(str(pred.get("status")), RunState.RUNNING)
    if not state.terminal:
        logs = pred.get("logs")
        shown = _outputs_so_far(pred.get("output"))
        # cog sends no delivery id; its logs and outputs only grow: each new logs or output
        # event is a new delivery
        seen = f"{pid}:{state}:{len(logs) if isinstance(logs, str) else 0}:{len(shown)}"
        progress = _progress(logs) | _preview(shown)
        return ProviderUpdate(pid, state, progress=progress, poll_after_s=2.0, delivery_id=seen)
    seconds, source = gpu_time(pred, wall_s)
    # one image is asked for: a predictor that yields its picture forming (an Iterator[Path])
    # ends its output with the image, the frames before it were its previews
    outputs = normalize_outputs(pred.get("output"))[-1:] if state is RunState.SUCCEEDED else ()
    error = _failure(provider, pred) if state is RunState.FAILED else None
    if state is RunState.SUCCEEDED and not outputs:
        error = ProviderFailed(f"{provider}: prediction {pid} succeeded without an output")
        state = RunState.FAILED
    return ProviderUpdate(
        pid,
        state,
        outputs=outputs,
        error=error,
        progress={"percent": 100} if state is RunState.SUCCEEDED else {},
        usage={"image_count": len(outputs), "images": len(outputs)} if outputs else {},
        gpu_seconds=seconds,
        gpu_time_source=source,
    )


def gpu_time(pred: Mapping[str, Any], wall_s: float | None) -> tuple[float | None, str | None]:
    """(seconds, whose measure): cog's ``metrics.predict_time``, else ``wall_s`` if given."""
    metrics = pred.get("metrics")
    predict_time = metrics.get("predict_time") if isinstance(metrics, dict) else None
    if isinstance(predict_time, int | float) and not isinstance(predict_time, bool):
        return float(predict_time), GPU_TIME_SERVER
    if wall_s is not None:
        return wall_s, GPU_TIME_WALL
    return None, None


def _failure(provider: str, pred: Mapping[str, Any]) -> PixelpipeError:
    message = str(pred.get("error") or "the prediction failed without a message")
    if message == WORKER_CRASHED:
        # the predictor process died (out of memory, a segfault): the server is unhealthy, not
        # the request wrong; another backend may well run it
        return ProviderUnavailable(f"{provider}: {message}", provider=provider)
    return ProviderFailed(f"{provider}: {message}", provider=provider)


def _progress(logs: Any) -> dict[str, Any]:
    """``percent`` and ``step``/``steps`` from the tqdm bar a diffusers predictor prints."""
    return log_progress(logs) if isinstance(logs, str) else {}


def _outputs_so_far(output: Any) -> list[Any]:
    """A running prediction's ``output``: what an iterator predictor yielded so far (the
    ``output`` webhooks carry it), in order."""
    if output is None:
        return []
    return list(output) if isinstance(output, list | tuple) else [output]


def _preview(shown: list[Any]) -> dict[str, Any]:
    """The latest frame yielded so far as the run's live ``preview`` (a thumbnail ``data:`` URL,
    never stored as the image, never billed); ``{}`` when there is none or it is not inline (an
    uploaded file's URL is not fetched for a preview)."""
    last = shown[-1] if shown else None
    if not isinstance(last, str) or not last.startswith("data:"):
        return {}
    try:
        data, _ = decode_data_uri(last)
        preview = thumbnail_url(data)
    except (PixelpipeError, OSError, ValueError):
        return {}
    return {"preview": preview} if preview is not None else {}


def gone(provider: str, pid: str) -> ProviderJobLost:
    return ProviderJobLost(
        f"{provider} no longer runs prediction {pid} and its completion webhook never came: "
        "cog keeps no finished predictions (there is nothing to ask for its result)",
        provider=provider,
    )
