"""The moderation boundary: a verdict on a text or an image, and the log of what it refused.

A :class:`Moderator` scores one input per call (OpenAI's categories: ``sexual``, ``violence``,
``self-harm``, …; scores 0–1) and says which categories it flags itself. What pixelpipe then does
(refuse the prompt; block, blur or flag the image; per-category thresholds, per API key) is
:mod:`.policy`; a moderator that cannot answer raises :class:`~pixelpipe.errors.ModerationError`
(translated where it enters), and the caller applies the fail-open/fail-closed setting.

:class:`ModerationLog` keeps what moderation refused or marked (prompts and images, per key and
day, with the image attempt's price) and where blocked bytes sit in quarantine until they expire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

# what the moderation of an image (or a prompt) ended in
Action = Literal["refused", "blocked", "blurred", "flagged", "unchecked"]
Kind = Literal["prompt", "image"]
Source = Literal["blocklist", "moderation", "provider"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """One moderator's answer: ``flagged`` and ``categories`` are its own judgement, ``scores``
    every category it scored (0–1)."""

    flagged: bool
    scores: Mapping[str, float] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    model: str = ""

    def flagged_under(self, thresholds: Mapping[str, float]) -> tuple[str, ...]:
        """The categories flagged under ``thresholds``: a category that has one is flagged when
        its score reaches it; any other when the moderator flagged it itself. Sorted."""
        own = {c for c in self.categories if c not in thresholds}
        over = {c for c, limit in thresholds.items() if self.scores.get(c, 0.0) >= limit}
        return tuple(sorted(own | over))


CLEAN = Verdict(False)


@runtime_checkable
class Moderator(Protocol):
    """Scores a text or an image. Raises ModerationError when it cannot answer (down, timeout,
    rate limit, credentials): never hangs past its timeout."""

    name: str
    reads_text: bool  # False: an image classifier only; prompts are not checked by it

    async def text(self, text: str) -> Verdict: ...

    async def image(self, data: bytes, content_type: str) -> Verdict: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ModerationEvent:
    """What moderation refused or marked. ``job_id`` is set for images (one event per job and
    kind: writing it again changes nothing); ``amount_micros`` is the image attempt's price
    (None: unpriced); ``quarantine_key`` the blocked bytes' storage key while kept."""

    kind: Kind
    action: Action
    source: Source
    api_key_id: str | None
    categories: tuple[str, ...]
    created_at: float
    job_id: str | None = None
    amount_micros: int | None = None
    quarantine_key: str | None = None
    quarantine_until: float | None = None


@dataclass(frozen=True, slots=True)
class ModerationRow:
    """A report row: events of one (day, key, kind, action) and what their images cost."""

    day: str
    api_key_id: str | None
    kind: Kind
    action: Action
    count: int
    spent_micros: int
    unpriced: int


@runtime_checkable
class ModerationLog(Protocol):
    async def add(self, event: ModerationEvent) -> bool:
        """Keep ``event``; idempotent per (job_id, kind) for job events. True when new."""
        ...

    async def report(
        self, *, since: float | None = None, until: float | None = None
    ) -> list[ModerationRow]:
        """Counts and spend per (day, key, kind, action), ordered by day, key, kind, action."""
        ...

    async def expired_quarantine(self, now: float, limit: int = 100) -> list[tuple[str, str]]:
        """(job_id, storage key) of quarantined bytes whose retention has passed."""
        ...

    async def released(self, job_id: str) -> None:
        """The job's quarantined bytes are deleted: forget their key."""
        ...
