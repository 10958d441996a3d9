"""Live previews travel with a job's ``progress`` events while it runs, and are not replayed after
it ended (``usecases.events.follow_job``), nor shown on the finished job."""

from __future__ import annotations

from pixelpipe.jobs.model import JobStatus
from pixelpipe.notify.public import job_payload
from pixelpipe.services import Services
from pixelpipe.usecases.events import follow_job
from pixelpipe.usecases.submit import submit
from tests.usecases.conftest import body

PREVIEW = "data:image/webp;base64,UklGRg=="


async def _connected() -> bool:
    return False


async def test_a_preview_is_followed_live_and_left_out_once_the_job_ended(svc: Services) -> None:
    job = (await submit(svc, body("a fox"))).job
    await svc.store.add_event(job.id, "progress", {"percent": 50.0, "preview": PREVIEW})
    live = follow_job(svc, job.id, 0, _connected)
    seen = []
    async for ev, _ in live:
        seen.append(ev)
        if ev.type == "progress":
            break
    assert seen[-1].data["preview"] == PREVIEW  # live: the preview
    assert seen[-1].data["percent"] == 50.0 and seen[-1].data["fraction"] == 0.5
    await live.aclose()

    running = await svc.store.get(job.id)
    assert running is not None
    await svc.store.update(
        job.id, provider_state={"progress": {"percent": 50.0, "preview": PREVIEW}}
    )
    shown = await job_payload(svc, await svc.store.get(job.id) or running, "")
    assert shown["progress"]["preview"] == PREVIEW

    ended = await svc.store.transition(
        job.id, job.status, JobStatus.CANCELED, error_code="canceled"
    )
    assert ended is not None
    replay = [ev async for ev, _ in follow_job(svc, job.id, 0, _connected)]
    progress = [ev.data for ev in replay if ev.type == "progress"]
    assert progress == [{"percent": 50.0}]  # the event stays; its preview is not replayed
    shown = await job_payload(svc, ended, "")
    assert shown["progress"] == {"percent": 50.0}
