"""Bulk download: selected generations as one zip, streamed as it is written.

Nothing is built in memory: the zip is written (stdlib ``zipfile`` on a non-seekable sink, so each
entry carries a data descriptor) into a small buffer that is handed out after every write. Images
are read one at a time, in 1 MiB pieces where storage is a local disk, and stored as they are (PNG,
JPEG and WebP do not compress further); the metadata files are deflated. Jobs are read 100 at a
time, in three passes (images, ``metadata.json``, ``metadata.csv``): what stays in memory is one
image, one batch of jobs and the zip's central directory (about 100 bytes per entry).

The archive::

    images/<created date>_<id>.<ext>   each succeeded generation's image
    metadata.json                      {"generations": [...], "missing": [...]}
    metadata.csv                       one row per generation, the same fields flattened
"""

from __future__ import annotations

import csv
import io
import mimetypes
import time
import zipfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from pixelpipe.errors import NotFound
from pixelpipe.inputs import render_inputs
from pixelpipe.jobs.listing import JobFilter
from pixelpipe.jobs.model import Job
from pixelpipe.notify.public import iso, usd
from pixelpipe.services import Services
from pixelpipe.usecases.gallery import selection

READ_CHUNK = 1024 * 1024
_BATCH = 100
CSV_FIELDS = (
    "id",
    "file",
    "status",
    "prompt",
    "negative_prompt",
    "model",
    "provider",
    "seed",
    "width",
    "height",
    "cost_usd",
    "cost_status",
    "cached",
    "retry_of",
    "made_from",
    "inputs",
    "group",
    "created_at",
    "finished_at",
)


class _Sink(io.RawIOBase):
    """Where zipfile writes: keeps what was written until :meth:`drain` hands it out. It can
    tell its position but not seek, so zipfile streams (data descriptors, no rewriting)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._at = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._at += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._at

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


@dataclass(frozen=True, slots=True)
class Archive:
    """A checked selection, ready to stream (:func:`stream`)."""

    ids: list[str]
    filename: str


def prepare(ids: Sequence[str], *, now: float | None = None) -> Archive:
    """Check the selection before the first byte is sent (a bad one is a 422, not a broken zip)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    return Archive(selection(ids), f"pixelpipe-{stamp}.zip")


def image_name(job: Job) -> str | None:
    if job.storage_key is None:
        return None
    ext = mimetypes.guess_extension(job.content_type or "") or (
        "." + job.storage_key.rsplit(".", 1)[-1] if "." in job.storage_key else ""
    )
    day = time.strftime("%Y-%m-%d", time.gmtime(job.created_at))
    return f"images/{day}_{job.id}{'.jpg' if ext == '.jpe' else ext}"


async def _batches(svc: Services, ids: list[str]) -> AsyncIterator[list[Job]]:
    for at in range(0, len(ids), _BATCH):
        chunk = frozenset(ids[at : at + _BATCH])
        yield await svc.store.list_jobs(limit=len(chunk), where=JobFilter(ids=chunk))


async def _image_pieces(svc: Services, key: str) -> AsyncIterator[bytes]:
    path = svc.storage.local_path(key)
    if path is None:
        yield await svc.storage.get(key)
        return
    try:
        with path.open("rb") as f:
            while piece := f.read(READ_CHUNK):
                yield piece
    except FileNotFoundError:
        raise NotFound(f"stored image {key} is gone") from None


async def metadata(svc: Services, job: Job, unreadable: set[str]) -> dict[str, Any]:
    """What the archive says about one generation (``metadata.json``; the CSV flattens it).
    ``file`` is null when it has no image (not succeeded, or its stored image is gone)."""
    req = job.request
    inputs = await render_inputs(svc.storage, req) if req.images or req.mask else []
    return {
        "id": job.id,
        "file": image_name(job) if job.status == "succeeded" and job.id not in unreadable else None,
        "status": str(job.status),
        "prompt": req.prompt,
        "negative_prompt": req.negative_prompt,
        "model": job.model,
        "provider": job.provider,
        "seed": req.seed,
        "width": job.width or req.width,
        "height": job.height or req.height,
        "cost_usd": usd(job.cost_micros),
        "cost_status": job.cost_status,
        "cached": job.cached,
        "retry_of": job.retry_of,
        "made_from": [i["source_generation"] for i in inputs if i["source_generation"]],
        "inputs": [{"role": i["role"], "digest": i["digest"]} for i in inputs],
        "group": job.group_id,
        "created_at": iso(job.created_at),
        "finished_at": iso(job.finished_at),
    }


def _csv_row(meta: dict[str, Any]) -> bytes:
    flat = {
        **meta,
        "made_from": " ".join(meta["made_from"]),
        "inputs": " ".join(f"{i['role']}:{i['digest']}" for i in meta["inputs"]),
    }
    out = io.StringIO()
    csv.DictWriter(out, CSV_FIELDS, lineterminator="\r\n").writerow(
        {k: "" if v is None else v for k, v in flat.items()}
    )
    return out.getvalue().encode()


def _entry(name: str, compress: int, size: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    if size is not None:
        info.file_size = size  # lets zipfile pick ZIP64 for a huge image up front
    return info


@dataclass
class _Writing:
    """One archive being written: the zip, its sink, and what the image pass learnt."""

    svc: Services
    archive: Archive
    sink: _Sink = field(default_factory=_Sink)
    found: set[str] = field(default_factory=set)  # selected ids that are generations
    unreadable: set[str] = field(default_factory=set)  # succeeded, but the image is gone

    def __post_init__(self) -> None:
        self.zf = zipfile.ZipFile(self.sink, "w", allowZip64=True)

    def kept(self) -> list[str]:
        return [i for i in self.archive.ids if i in self.found]

    async def images(self) -> AsyncIterator[bytes]:
        async for batch in _batches(self.svc, self.archive.ids):
            for job in batch:
                self.found.add(job.id)
                async for piece in self._image(job):
                    yield piece

    async def _image(self, job: Job) -> AsyncIterator[bytes]:
        name = image_name(job)
        if job.status != "succeeded" or name is None or job.storage_key is None:
            return
        pieces = _image_pieces(self.svc, job.storage_key)
        try:  # read before the entry starts: a gone image is left out, not a broken zip
            first = await anext(pieces)
        except NotFound:
            self.unreadable.add(job.id)
            return
        with self.zf.open(_entry(name, zipfile.ZIP_STORED, job.bytes), "w") as out:
            out.write(first)
            async for piece in pieces:
                yield self.sink.drain()
                out.write(piece)
        yield self.sink.drain()

    async def json(self) -> AsyncIterator[bytes]:
        with self.zf.open(_entry("metadata.json", zipfile.ZIP_DEFLATED), "w") as out:
            out.write(b'{"generations":[')
            comma = b""
            async for batch in _batches(self.svc, self.kept()):
                for job in batch:
                    out.write(comma + orjson.dumps(await metadata(self.svc, job, self.unreadable)))
                    comma = b","
                yield self.sink.drain()
            missing = [i for i in self.archive.ids if i not in self.found]
            out.write(b'],"missing":' + orjson.dumps(missing) + b"}")
        yield self.sink.drain()

    async def csv(self) -> AsyncIterator[bytes]:
        with self.zf.open(_entry("metadata.csv", zipfile.ZIP_DEFLATED), "w") as out:
            header = io.StringIO()
            csv.writer(header, lineterminator="\r\n").writerow(CSV_FIELDS)
            out.write(header.getvalue().encode())
            async for batch in _batches(self.svc, self.kept()):
                for job in batch:
                    out.write(_csv_row(await metadata(self.svc, job, self.unreadable)))
                yield self.sink.drain()
        self.zf.close()
        yield self.sink.drain()


async def stream(svc: Services, archive: Archive) -> AsyncIterator[bytes]:
    """The zip's bytes, piece by piece, as they are written (never an empty piece)."""
    writing = _Writing(svc, archive)
    for part in (writing.images, writing.json, writing.csv):
        async for piece in part():
            if piece:
                yield piece
