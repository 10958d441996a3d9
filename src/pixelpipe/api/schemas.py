"""Public resource shapes (``XPublic``) and their rendering from domain objects."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from pixelpipe.jobs.model import Job
from pixelpipe.notify.public import job_payload
from pixelpipe.services import Services


class ImagePublic(BaseModel):
    url: str
    thumbnail_url: str | None = Field(
        None,
        description="A WebP of at most 320 px a side (the image's own URL when it is one already)",
    )
    content_type: str
    width: int
    height: int
    bytes: int


class CostPublic(BaseModel):
    usd: str | None = Field(
        None, description="Actual cost in USD (string, exact); null = unpriced/pending"
    )
    micros: int | None = None
    status: str = Field(description="pending | priced | unpriced | free")
    estimate_usd: str | None = None


class ErrorPublic(BaseModel):
    code: str
    title: str
    detail: str | None = None


class TimingsPublic(BaseModel):
    created_at: str
    finished_at: str | None = None
    duration_s: float | None = None


class InputPublic(BaseModel):
    role: str = Field(description="image | mask")
    digest: str = Field(description="sha256:<hex> of the stored input (metadata stripped)")
    id: str = Field(description="Its upload id: pass it again to reuse the input")
    source_generation: str | None = Field(
        None, description="The generation it was taken from, when it came from the gallery"
    )
    url: str | None = Field(
        None, description="The stored input, delivered like the image (null when it is gone)"
    )


class GenerationPublic(BaseModel):
    id: str
    object: str = "generation"
    status: str
    model: str
    provider: str | None
    request: dict[str, Any]
    key: str
    image: ImagePublic | None = None
    cached: bool
    cost: CostPublic
    timings: TimingsPublic
    attempt: int
    error: ErrorPublic | None = None
    progress: dict[str, Any] = Field(default_factory=dict)
    group: str | None = None
    revised_prompt: str | None = None
    retry_of: str | None = Field(
        None, description="The failed or canceled generation this one retries"
    )
    priority: int = Field(6, description="0-9, higher runs first (docs/queue.md)")
    inputs: list[InputPublic] = Field(
        default_factory=list, description="An edit's input images and mask, with their lineage"
    )
    moderation: dict[str, Any] | None = Field(
        None,
        description="Output moderation marked the image: action blurred, flagged or unchecked "
        "(moderator down, fail-open), and the categories (docs/moderation.md)",
    )
    links: dict[str, str]


class GenerationList(BaseModel):
    object: str = "list"
    data: list[GenerationPublic]
    next_cursor: str | None = None


async def render_job(svc: Services, job: Job, base: str | None = None) -> GenerationPublic:
    return GenerationPublic.model_validate(await job_payload(svc, job, base))
