"""The Notifier boundary: wakes listeners; the events themselves live in the job store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

ALL = "all"  # channel that hears every job (gallery, cost counter)


@runtime_checkable
class Notifier(Protocol):
    async def publish(self, channel: str, message: str) -> None: ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[str]]: ...

    async def ping(self) -> None:
        """Raise if the notifier's backend does not answer (readiness)."""
        ...

    async def aclose(self) -> None: ...
