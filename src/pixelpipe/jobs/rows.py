"""Mapping between table rows and the Job / JobEvent / ImageRecord dataclasses."""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from pixelpipe.intake import CanonicalRequest
from pixelpipe.jobs.model import ImageRecord, Job, JobEvent, JobStatus

_JOB_FIELDS = {f.name for f in fields(Job)}
_IMAGE_FIELDS = {f.name for f in fields(ImageRecord)}


def job_to_row(job: Job) -> dict[str, Any]:
    row = {name: getattr(job, name) for name in _JOB_FIELDS}
    row["status"] = str(job.status)
    row["request"] = job.request.to_dict()
    return row


def row_to_job(row: Any) -> Job:
    """A job from a result row or a plain mapping of column names (``compiled_sql``)."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    data = {k: v for k, v in mapping.items() if k in _JOB_FIELDS}
    data["status"] = JobStatus(data["status"])
    data["request"] = CanonicalRequest.from_dict(data["request"])
    data["provider_state"] = data.get("provider_state") or {}
    data["cached"] = bool(data.get("cached"))
    return Job(**data)


def row_to_event(row: Any) -> JobEvent:
    m = row._mapping
    return JobEvent(m["id"], m["job_id"], m["type"], m["data"], m["created_at"], m.get("snapshot"))


def image_to_row(rec: ImageRecord) -> dict[str, Any]:
    return asdict(rec)


def row_to_image(row: Any) -> ImageRecord:
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return ImageRecord(**{k: v for k, v in mapping.items() if k in _IMAGE_FIELDS})
