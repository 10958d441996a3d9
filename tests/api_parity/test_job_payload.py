"""The hand-written job rendering (``job_payload``, what the hot POSTs answer without building the
pydantic model) has exactly the fields of ``GenerationPublic``, nested models included, in every
state a job can be in — a field added to the model and not to the rendering fails here."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from pixelpipe.api.schemas import GenerationPublic, job_payload
from pixelpipe.intake import CanonicalRequest
from pixelpipe.jobs.model import Job, JobStatus
from tests.security.conftest import running_app

NOW = time.time()
QUEUED = Job(
    id="gen_01m93cq12qcgmbn9022qkg678r",
    status=JobStatus.QUEUED,
    model="preview",
    request=CanonicalRequest("preview", "a fox", 7, 64, 64, "webp"),
    content_key="k" * 64,
    created_at=NOW,
    updated_at=NOW,
    deadline_at=NOW + 1800,
    estimate_micros=0,
)
STORED = {
    "storage_key": "ab/abcdef.webp",
    "thumb_key": "ab/abcdef.thumb.webp",
    "content_type": "image/webp",
    "width": 64,
    "height": 64,
    "bytes": 1234,
    "finished_at": NOW + 1.5,
    "cost_micros": 3000,
    "cost_status": "priced",
}
STATES: dict[str, Job] = {
    **{
        status.value: dataclasses.replace(
            QUEUED, status=status, provider="preview", attempt=1, provider_state={"progress": {}}
        )
        for status in JobStatus
        if not status.terminal and status is not JobStatus.QUEUED
    },
    "queued": QUEUED,
    "succeeded": dataclasses.replace(
        QUEUED, status=JobStatus.SUCCEEDED, provider="preview", revised_prompt="a red fox", **STORED
    ),
    "failed": dataclasses.replace(
        QUEUED,
        status=JobStatus.FAILED,
        error_code="provider_failed",
        error_detail="the provider said no",
        finished_at=NOW + 2,
        group_id="cmp-1",
    ),
    "failed-unknown-code": dataclasses.replace(
        QUEUED, status=JobStatus.FAILED, error_code="no_such_code", finished_at=NOW + 2
    ),
    "canceled": dataclasses.replace(
        QUEUED, status=JobStatus.CANCELED, error_code="canceled", finished_at=NOW + 1
    ),
    "cached": dataclasses.replace(
        QUEUED, status=JobStatus.SUCCEEDED, cached=True, **{**STORED, "cost_micros": 0}
    ),
    "image-without-thumbnail": dataclasses.replace(
        QUEUED, status=JobStatus.SUCCEEDED, **{**STORED, "thumb_key": None}
    ),
}


def field_drift(payload: dict[str, Any], model: type[BaseModel], where: str = "") -> list[str]:
    """Where ``payload``'s keys differ from ``model``'s fields, nested models included."""
    drift = [f"{where}{k}: not in the model" for k in payload.keys() - model.model_fields.keys()]
    drift += [f"{where}{k}: not rendered" for k in model.model_fields.keys() - payload.keys()]
    for name, info in model.model_fields.items():
        nested = [a for a in (info.annotation, *get_args(info.annotation)) if _is_model(a)]
        value = payload.get(name)
        if nested and isinstance(value, dict):
            drift += field_drift(value, nested[0], f"{where}{name}.")
    return drift


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def test_every_state_is_covered() -> None:
    assert {j.status for j in STATES.values()} == set(JobStatus)
    assert any(j.cached for j in STATES.values())


async def test_the_rendering_has_the_fields_of_the_public_model(tmp_path: Path) -> None:
    async with running_app(tmp_path, embedded_worker=False) as app:
        for state, job in STATES.items():
            for base in ("http://127.0.0.1:8000", None):
                payload = await job_payload(app.svc, job, base)
                assert field_drift(payload, GenerationPublic) == [], state
                rendered = GenerationPublic.model_validate(payload).model_dump(mode="json")
                assert rendered == payload, state


def test_the_check_sees_a_field_added_to_the_model() -> None:
    class WithTags(GenerationPublic):
        tags: list[str] = []

    payload = GenerationPublic.model_validate(
        {
            "id": "gen_1",
            "status": "queued",
            "model": "preview",
            "provider": None,
            "request": {},
            "key": "k",
            "cached": False,
            "cost": {"status": "pending"},
            "timings": {"created_at": "now"},
            "attempt": 0,
            "links": {},
        }
    ).model_dump(mode="json")
    assert field_drift(payload, GenerationPublic) == []
    assert field_drift(payload, WithTags) == ["tags: not rendered"]
    payload["cost"]["currency"] = "usd"
    assert field_drift(payload, GenerationPublic) == ["cost.currency: not in the model"]
