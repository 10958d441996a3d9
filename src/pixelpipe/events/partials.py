"""A run's raw partial images, relayed in-process to the stream readers of the same process.

The worker publishes each partial image an upstream streamed (OpenAI's ``partial_image``: its
base64 as received) the moment it arrives, before it thumbnails it for the job's stored
``progress`` event; an OpenAI-compatible stream reader of the same process subscribes to its job
and sends the partial on as it is — full size, with no store write, wake-up or re-encode between.
Readers elsewhere (another process, or one that attached after the partial) get the stored
event's thumbnail as before; so does a reader whose partial was dropped here.

The worker also hands over the run's final image (:class:`Final`) as soon as it is billed and
proven whole (:mod:`pixelpipe.fetch.png_check`) — its bytes durable with the bill, their put under
way (a URL's: once stored); before its thumbnail and the job's last commit: a reader sends its
completed event then, the job finishing behind it. Only where someone reads
(:meth:`PartialHub.watched`): otherwise the image is decoded once for both.

Bounded: each subscriber keeps at most ``keep`` partials (the oldest is dropped, publishing never
waits), and a job's entry exists only while someone subscribes to it. Publishing to a job nobody
subscribes to is one dictionary look-up. Single event loop: no locks.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

KEEP = 2  # partials a subscriber that does not read holds at most (1-2 MB each at 1024x1024)
# after a partial or the final image went to readers of this process: their sending it goes
# first, before the publisher's next thread (a thumbnail: Python code that holds the GIL for up to
# the 5 ms switch interval at a time) competes with the event loop; the handoff takes a few loop
# turns, well under 1 ms
HANDOFF_S = 0.002


@dataclass(frozen=True, slots=True)
class Partial:
    """One partial image of a run, as the upstream sent it."""

    b64_json: str  # its image, base64, exactly as received (never decoded here)
    output_format: str  # png, jpeg or webp
    index: int  # the upstream's ``partial_image_index`` in this run
    percent: float  # the job's progress it stands for: the same as its stored progress event's


@dataclass(frozen=True, slots=True)
class Final:
    """A run's image, billed, its bytes durable with the bill (as they are stored)."""

    data: bytes
    provider_state: dict[str, Any]  # the job's as billed (its ``usage``, for the reader)


class Subscription:
    """One reader's partials of one job, then its final image (once, after the partials it
    holds): an async iterator that never ends by itself."""

    def __init__(self, keep: int) -> None:
        self._partials: deque[Partial] = deque(maxlen=keep)
        self._final: Final | None = None
        self._ready = asyncio.Event()
        self.dropped = 0  # partials pushed out unread (their stored events stand in)

    def put(self, partial: Partial) -> None:
        if len(self._partials) == self._partials.maxlen:
            self.dropped += 1
        self._partials.append(partial)  # a full deque drops its oldest
        self._ready.set()

    def finish(self, final: Final) -> None:
        self._final = final
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Partial | Final:
        while not self._partials and self._final is None:
            self._ready.clear()
            await self._ready.wait()
        if self._partials:
            return self._partials.popleft()
        final, self._final = self._final, None
        assert final is not None  # the loop above waits for one or the other
        return final


class PartialHub:
    """publish(job_id, partial) to every :meth:`subscribe` of that job in this process."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self._subscribers: dict[str, set[Subscription]] = {}

    def publish(self, job_id: str, partial: Partial) -> int:
        """Hand ``partial`` to the job's subscribers (how many); never waits."""
        subscriptions = self._subscribers.get(job_id, ())
        for subscription in subscriptions:
            subscription.put(partial)
        return len(subscriptions)

    def finish(self, job_id: str, final: Final) -> int:
        """Hand the job's billed image to its subscribers (how many); never waits."""
        subscriptions = self._subscribers.get(job_id, ())
        for subscription in subscriptions:
            subscription.finish(final)
        return len(subscriptions)

    def watched(self, job_id: str) -> bool:
        """Someone in this process reads ``job_id`` now."""
        return job_id in self._subscribers

    @asynccontextmanager
    async def subscribe(self, job_id: str) -> AsyncIterator[Subscription]:
        """The partials of ``job_id`` published from now until the block ends."""
        subscription = Subscription(self.keep)
        self._subscribers.setdefault(job_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscribers.get(job_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscribers[job_id]

    def jobs(self) -> int:
        """How many jobs have a subscriber now."""
        return len(self._subscribers)
