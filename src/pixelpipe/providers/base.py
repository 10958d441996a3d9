"""Stage 8 boundary — a provider runs a model for one canonical request.

A provider is a small async protocol. ``submit`` starts a run and returns a :class:`ProviderUpdate`
(possibly already terminal, e.g. OpenAI or a fast ``Prefer: wait`` answer); ``poll`` asks for the
state of a run; ``parse_webhook`` verifies and decodes a provider's webhook delivery; ``cancel``
stops a run. Every method translates foreign errors into :mod:`pixelpipe.errors` at this boundary:
429 → ProviderRateLimited(retry_after), 5xx/connection/timeout → ProviderUnavailable, content policy
→ ProviderContentRejected, 4xx validation → ProviderInvalidInput, 401/403 → ProviderAuthError.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pixelpipe.errors import PixelpipeError
from pixelpipe.intake import CanonicalRequest
from pixelpipe.workflows import Workflow


class RunState(StrEnum):
    PENDING = "pending"  # accepted, queued at the provider
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELED)


@dataclass(frozen=True, slots=True)
class InputImage:
    """An input image (or mask) of an edit, as a provider sends it: verified, metadata stripped,
    content-addressed (``digest`` = ``CanonicalRequest.images``' entry)."""

    digest: str  # "sha256:<hex>" of ``data``
    content_type: str  # image/png, image/jpeg or image/webp
    data: bytes
    width: int
    height: int

    def data_uri(self) -> str:
        """The image inline, as APIs that take "a URL or a data URI" accept it."""
        return f"data:{self.content_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """What a provider needs to start (or look up) one run."""

    job_id: str
    attempt: int
    request: CanonicalRequest
    model_id: str  # the provider's own id, e.g. "black-forest-labs/flux-schnell"
    webhook_url: str | None = None  # where the provider should POST completion (None = poll)
    # the model's ComfyUI workflow (catalog file): what a kind that runs workflows renders
    # ``request`` into (``workflow.render(request)``); None for every other model
    workflow: Workflow | None = None
    # an edit's input images, in ``request.images`` order, and its mask (loaded by the worker
    # from storage before the call); empty / None for text-to-image
    images: tuple[InputImage, ...] = ()
    mask: InputImage | None = None


@dataclass(frozen=True, slots=True)
class Output:
    """One produced image: a URL to fetch (expires!) or bytes already in hand (base64, data:)."""

    url: str | None = None
    data: bytes | None = None
    content_type: str | None = None
    # the content hash the provider gives for the bytes ("blake3:<hex>", "sha256:<hex>"): the
    # fetch checks it (fetch/digest.py)
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderUpdate:
    """The state of one provider run, as the provider reported it."""

    provider_job_id: str
    state: RunState
    outputs: tuple[Output, ...] = ()
    error: PixelpipeError | None = None  # set when state is FAILED
    progress: dict[str, Any] = field(default_factory=dict)  # percent, queue_position, logs
    poll_after_s: float | None = None  # hint: when polling next makes sense
    usage: dict[str, Any] = field(default_factory=dict)  # e.g. OpenAI token usage, image_count
    revised_prompt: str | None = None
    billable: bool = True  # False when the provider does not charge this attempt (e.g. 5xx)
    delivery_id: str | None = None  # webhook delivery id, for idempotency
    # self-hosted runs are priced in GPU time: the seconds the run took, and whose measure that is
    # ("server": the backend's own, e.g. cog's metrics.predict_time; "wall": timed by pixelpipe)
    gpu_seconds: float | None = None
    gpu_time_source: str | None = None


@runtime_checkable
class Provider(Protocol):
    """A source of images. Implementations: preview, replicate, fal, openai (and fakes in tests)."""

    name: str
    supports_webhooks: bool

    async def submit(self, req: ProviderRequest) -> ProviderUpdate: ...

    async def poll(self, provider_job_id: str, req: ProviderRequest) -> ProviderUpdate: ...

    async def cancel(self, provider_job_id: str, req: ProviderRequest) -> None: ...

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> ProviderUpdate:
        """Verify the signature (raise errors.Unauthorized if it fails) and decode the body."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class FindsLostRuns(Protocol):
    """A provider that can look up a run whose create call's answer was lost (Replicate lists
    predictions); a crashed submit is then resumed on that run instead of starting another."""

    async def find_run(self, req: ProviderRequest, since: float) -> ProviderUpdate | None:
        """The run made for ``req`` at or after ``since`` (unix s), or None."""
        ...


@runtime_checkable
class NamesItsRuns(Protocol):
    """A provider whose run id for an attempt is ours, known before the create call (cog: the
    prediction id is the attempt's run tag). A run found nowhere after a crashed submit may have
    ended meanwhile: its completion webhook will name that id, so the worker waits for it on
    that id (``poll`` bounds the wait) rather than start a second, billed run."""

    def run_id(self, req: ProviderRequest) -> str:
        """The id the run of ``req`` (its job and attempt) has, or would have, at the provider."""
        ...


@runtime_checkable
class WatchesProgress(Protocol):
    """A provider whose ``submit`` holds a run to its end (a synchronous server) but can tell its
    progress meanwhile (A1111's ``/sdapi/v1/progress``). The worker iterates this beside the
    submit and writes what it yields as the job's progress events (``worker/progress.py``)."""

    def watch_progress(self, job_id: str) -> AsyncGenerator[dict[str, Any], None]:
        """Progress dicts shaped like :attr:`ProviderUpdate.progress` while the job's submit is
        in flight; the caller closes it when the submit returns."""
        ...


class HealthState(StrEnum):
    """A self-hosted backend's health, as the background checker sees it."""

    READY = "ready"  # answers and has a free slot
    BUSY = "busy"  # answers, every slot taken: jobs wait for it (not a failure)
    STARTING = "starting"  # answers, still loading its model: not sent work yet
    DOWN = "down"  # unreachable, or says it is broken (cog SETUP_FAILED, DEFUNCT, UNHEALTHY)
    UNKNOWN = "unknown"  # not checked yet

    @property
    def takes_work(self) -> bool:
        """Jobs may be sent to it (a busy one queues them)."""
        return self in (HealthState.READY, HealthState.BUSY, HealthState.UNKNOWN)


@dataclass(frozen=True, slots=True)
class BackendHealth:
    """One health check's answer: the state and what the server said (e.g. cog's status)."""

    state: HealthState
    detail: str = ""
    busy_slots: int | None = None  # runs in flight there, where the kind knows (None: unknown)
    queued: int | None = None  # jobs of this process waiting for it, where the kind knows


@runtime_checkable
class ReportsHealth(Protocol):
    """A provider that can say whether its server is up (the self-hosted kinds). Asked every few
    seconds by the engine's health checker; never raises: an unreachable server is DOWN."""

    async def backend_health(self) -> BackendHealth: ...
