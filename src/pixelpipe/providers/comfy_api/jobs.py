"""Comfy API v2's wire format: the idempotency key of an attempt, a job object as a
:class:`ProviderUpdate`, and its error answers in the error tree.

A job (``POST /api/v2/jobs`` → 201, ``GET /api/v2/jobs/{id}``) is ``{id, status, queue_position,
progress, outputs: [{node_id, type, url, content_type, hash}], error, metrics?}``. Its statuses:

    v2 status           RunState     what pixelpipe does
    ------------------  -----------  ----------------------------------------------------------
    queued              PENDING      waits (``queue_position`` as progress)
    running, canceling  RUNNING      waits, polling twice a second (live progress: ``events.py``)
    succeeded           SUCCEEDED    fetches the output node's image by its URL
    failed              FAILED       the node that raised is named (``error.node_id``)
    canceled            CANCELED     the job ends canceled
    expired             (raises)     ProviderJobLost, transient: ComfyUI lost the prompt (a
                                     restart empties its queue), so the job runs again

Errors are ``{"error": {"code", "message", "details"}}``: 422 ``invalid_workflow`` with
``details.node_errors`` (ComfyUI's validation) names each node with its title and class
(:meth:`Workflow.describe_node`); 409 (Comfy Cloud: a concurrent retry of one key) and 429
(Cloud: ``queue_full``; comfy-api-proxy: ``too_many_streams``) with ``Retry-After`` are rate
limits; ``idempotency_key_reuse`` is handled by the client (it looks the job up).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pixelpipe.errors import (
    PixelpipeError,
    ProviderFailed,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderUnavailable,
)
from pixelpipe.providers.base import Output, ProviderUpdate, RunState
from pixelpipe.providers.run_tag import RUN_PARAM, RunRef, run_webhook_url
from pixelpipe.workflows import Workflow

GPU_TIME_SERVER = "server"  # metrics.execution_ms (Comfy Cloud); comfy-api-proxy 0.1.6 has none
KEY_REUSE = "idempotency_key_reuse"
INVALID_WORKFLOW = "invalid_workflow"
_WAITING = {"queued": RunState.PENDING, "running": RunState.RUNNING, "canceling": RunState.RUNNING}
_NODE_ERRORS_SHOWN = 3


def run_key(provider: str, run: RunRef, secret: bytes) -> str:
    """``<job id>.<attempt>.<tag>``: the attempt's run tag (:mod:`..run_tag`), its
    ``Idempotency-Key`` and ``metadata``. The same attempt always sends the same key, so a submit
    resent after a crash is recognised (Cloud replays it; comfy-api-proxy refuses it, and the job
    is found by its ``metadata``)."""
    query = urlsplit(run_webhook_url("", provider, run, secret)).query
    return parse_qs(query)[RUN_PARAM][0]


def error_body(body: Any) -> Mapping[str, Any]:
    """The ``error`` object of a v2 error answer (empty when it has none)."""
    err = body.get("error") if isinstance(body, Mapping) else None
    return err if isinstance(err, Mapping) else {}


def invalid_workflow(
    provider: str, err: Mapping[str, Any], workflow: Workflow | None
) -> PixelpipeError:
    """422 ``invalid_workflow`` (ComfyUI refused the graph): the nodes at fault, named."""
    details = err.get("details")
    node_errors = details.get("node_errors") if isinstance(details, Mapping) else None
    message = str(err.get("message") or "the workflow was refused")
    faults = [
        _node_fault(node_id, info, workflow)
        for node_id, info in (node_errors.items() if isinstance(node_errors, Mapping) else ())
    ]
    more = len(faults) - _NODE_ERRORS_SHOWN
    shown = "; ".join(faults[:_NODE_ERRORS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
    detail = f"{provider} refused the workflow: {message}" + (f": {shown}" if shown else "")
    return ProviderInvalidInput(detail, provider=provider, nodes=sorted(node_errors or {}))


def _node_fault(node_id: str, info: Any, workflow: Workflow | None) -> str:
    name = workflow.describe_node(node_id) if workflow else f"node {node_id}"
    errors = info.get("errors") if isinstance(info, Mapping) else None
    first = errors[0] if isinstance(errors, list) and errors else {}
    if not isinstance(first, Mapping):
        return name
    what = str(first.get("message") or first.get("type") or "invalid")
    extra = first.get("details")
    return f"{name}: {what}" + (f" ({extra})" if extra else "")


def job_update(
    provider: str,
    job: Mapping[str, Any],
    workflow: Workflow | None,
    progress: Mapping[str, Any] | None = None,
) -> ProviderUpdate:
    """A v2 job as an update. ``progress``: the live progress the event stream saw (replaces the
    job's own, which comfy-api-proxy reports as 0 while a job runs)."""
    job_id = str(job.get("id") or "")
    if not job_id:
        raise ProviderUnavailable(f"{provider} answered a job without an id", provider=provider)
    status = str(job.get("status") or "")
    if status in _WAITING:
        return _waiting(job_id, _WAITING[status], job, progress)
    if status == "succeeded":
        return _succeeded(provider, job_id, job, workflow)
    if status == "failed":
        return _failed(provider, job_id, job, workflow)
    if status == "canceled":
        return ProviderUpdate(job_id, RunState.CANCELED, **_gpu_time(job))
    if status == "expired":
        raise expired(provider, job_id)
    raise ProviderUnavailable(f"{provider}: job {job_id} has an unknown status {status!r}")


def expired(provider: str, job_id: str) -> ProviderJobLost:
    return ProviderJobLost(
        f"{provider}: job {job_id} expired: ComfyUI no longer knows its prompt (restarted, or "
        "it was taken off the queue); it runs again",
        provider=provider,
        transient=True,
        reason="expired",
    )


def _waiting(
    job_id: str, state: RunState, job: Mapping[str, Any], live: Mapping[str, Any] | None
) -> ProviderUpdate:
    if state is RunState.PENDING:
        progress: dict[str, Any] = {"state": "queued", "percent": 0}
        position = job.get("queue_position")
        if isinstance(position, int):
            progress["queue_position"] = position
        return ProviderUpdate(job_id, state, progress=dict(live or progress), poll_after_s=1.0)
    progress = dict(live) if live else _job_progress(job)
    return ProviderUpdate(job_id, state, progress=progress, poll_after_s=0.5)


def _job_progress(job: Mapping[str, Any]) -> dict[str, Any]:
    """What ``GET`` says of a running job's progress (Cloud fills it; the proxy says 0)."""
    raw = job.get("progress")
    value = raw.get("value") if isinstance(raw, Mapping) else None
    percent = round(100 * float(value), 1) if isinstance(value, int | float) else 0
    return {"state": "running", "percent": percent}


def _succeeded(
    provider: str, job_id: str, job: Mapping[str, Any], workflow: Workflow | None
) -> ProviderUpdate:
    chosen = _images(job.get("outputs"), workflow.output_node if workflow else None)
    if not chosen:
        error = ProviderFailed(
            f"{provider}: job {job_id} succeeded without an image output", provider=provider
        )
        return ProviderUpdate(job_id, RunState.FAILED, error=error, **_gpu_time(job))
    first = chosen[0]
    digest = _str(first.get("hash"))  # Comfy Cloud's blake3: the fetch checks the bytes against it
    output = Output(
        url=str(first["url"]), content_type=_str(first.get("content_type")), digest=digest
    )
    usage: dict[str, Any] = {"image_count": 1, "images": 1}
    if digest:
        usage["output_hash"] = digest
    return ProviderUpdate(
        job_id,
        RunState.SUCCEEDED,
        outputs=(output,),
        progress={"state": "succeeded", "percent": 100},
        usage=usage,
        **_gpu_time(job),
    )


def _images(outputs: Any, node: str | None) -> list[Mapping[str, Any]]:
    """The image outputs with a URL, the output node's only when it has any."""
    images = [
        o
        for o in (outputs if isinstance(outputs, list) else ())
        if isinstance(o, Mapping) and o.get("url") and o.get("type", "image") == "image"
    ]
    own = [o for o in images if str(o.get("node_id")) == node]
    return own or images


def _failed(
    provider: str, job_id: str, job: Mapping[str, Any], workflow: Workflow | None
) -> ProviderUpdate:
    raw = job.get("error")
    err: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    message = str(err.get("message") or "the job failed without a message").strip()
    node_id = err.get("node_id")
    if node_id is not None:
        name = workflow.describe_node(str(node_id)) if workflow else f"node {node_id}"
        message = f"{name} failed: {message}"
    error = ProviderFailed(f"{provider}: {message}", provider=provider, node=node_id)
    return ProviderUpdate(job_id, RunState.FAILED, error=error, **_gpu_time(job))


def _gpu_time(job: Mapping[str, Any]) -> dict[str, Any]:
    """``metrics.execution_ms`` as the GPU time where the server gives it (Comfy Cloud); else
    nothing, and the worker bills the wall time since the submit (``gpu_time_source="wall"``)."""
    metrics = job.get("metrics")
    ms = metrics.get("execution_ms") if isinstance(metrics, Mapping) else None
    if isinstance(ms, int | float) and not isinstance(ms, bool):
        return {"gpu_seconds": float(ms) / 1000, "gpu_time_source": GPU_TIME_SERVER}
    return {}


def _str(value: Any) -> str | None:
    return str(value) if value else None
