"""In-memory moderation: a moderator driven by markers (:mod:`.markers`) and a log in a list —
for tests and embedded use. ``fail_with`` makes the moderator raise (an outage, in tests)."""

from __future__ import annotations

import dataclasses

from pixelpipe.errors import InvalidRequest, ModerationError
from pixelpipe.ledger.policy import utc_day
from pixelpipe.moderation.base import ModerationEvent, ModerationRow, Verdict
from pixelpipe.moderation.markers import image_scores, text_scores, verdict_of


class MemoryModerator:
    name = "memory"
    reads_text = True

    def __init__(self) -> None:
        self.fail_with: ModerationError | None = None
        self.calls: list[str] = []  # "text" / "image", in order

    async def text(self, text: str) -> Verdict:
        self._called("text")
        return verdict_of(text_scores(text), "memory")

    async def image(self, data: bytes, content_type: str) -> Verdict:
        self._called("image")
        try:
            return verdict_of(image_scores(data), "memory")
        except ValueError as exc:
            raise InvalidRequest(f"moderation: {exc}") from None

    async def aclose(self) -> None:
        return None

    def _called(self, what: str) -> None:
        self.calls.append(what)
        if self.fail_with is not None:
            raise self.fail_with


class MemoryModerationLog:
    def __init__(self) -> None:
        self.events: list[ModerationEvent] = []

    async def add(self, event: ModerationEvent) -> bool:
        if event.job_id is not None and any(
            e.job_id == event.job_id and e.kind == event.kind for e in self.events
        ):
            return False
        self.events.append(event)
        return True

    async def report(
        self, *, since: float | None = None, until: float | None = None
    ) -> list[ModerationRow]:
        groups: dict[tuple[str, str, str, str], list[ModerationEvent]] = {}
        for e in self.events:
            if (since is not None and e.created_at < since) or (
                until is not None and e.created_at >= until
            ):
                continue
            group = (utc_day(e.created_at), e.api_key_id or "", e.kind, e.action)
            groups.setdefault(group, []).append(e)
        return [
            ModerationRow(
                day,
                key or None,
                events[0].kind,
                events[0].action,
                len(events),
                sum(e.amount_micros or 0 for e in events),
                sum(e.amount_micros is None and e.kind == "image" for e in events),
            )
            for (day, key, _, _), events in sorted(groups.items())
        ]

    async def expired_quarantine(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        return [
            (e.job_id, e.quarantine_key)
            for e in self.events
            if e.job_id and e.quarantine_key and (e.quarantine_until or 0) <= now
        ][:limit]

    async def released(self, job_id: str) -> None:
        self.events = [
            dataclasses.replace(e, quarantine_key=None, quarantine_until=None)
            if e.job_id == job_id
            else e
            for e in self.events
        ]
