"""The fake ComfyUI's prompt queue and history, as ``execution.PromptQueue`` keeps them.

A queue item is ``(number, prompt_id, prompt, extra_data, outputs_to_execute)``; pending items
live in a heap ordered by ``number`` (``front: true`` queues with ``-number``), and ``GET /queue``
shows the heap's list as it is (ComfyUI returns a copy of the heap, not a sorted list).
``task_done`` stores ``{"prompt": item, "outputs", "status": {"status_str", "completed",
"messages"}, "meta"}`` under the prompt id. Every change calls ``on_change`` (ComfyUI's
``queue_updated``: a ``status`` message broadcast to every socket). Nothing here survives a crash:
the fake makes a new one.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
from collections.abc import Callable
from typing import Any

QueueItem = tuple[float, str, dict[str, Any], dict[str, Any], list[str]]
MAXIMUM_HISTORY_SIZE = 10000


class PromptQueue:
    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self.pending: list[QueueItem] = []
        self.running: dict[int, QueueItem] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self._task_counter = 0
        self._wake = asyncio.Event()

    def put(self, item: QueueItem) -> None:
        heapq.heappush(self.pending, item)
        self._wake.set()
        self._on_change()

    async def get(self) -> tuple[QueueItem, int]:
        while not self.pending:
            self._wake.clear()
            await self._wake.wait()
        item = heapq.heappop(self.pending)
        task_id = self._task_counter
        self.running[task_id] = copy.deepcopy(item)
        self._task_counter += 1
        self._on_change()
        return item, task_id

    def task_done(self, task_id: int, result: dict[str, Any], status: dict[str, Any]) -> None:
        item = self.running.pop(task_id)
        if len(self.history) > MAXIMUM_HISTORY_SIZE:
            self.history.pop(next(iter(self.history)))
        self.history[item[1]] = {"prompt": list(item), "outputs": {}, "status": status, **result}
        self._on_change()

    def current(self) -> tuple[list[QueueItem], list[QueueItem]]:
        return list(self.running.values()), list(self.pending)

    def remaining(self) -> int:
        return len(self.pending) + len(self.running)

    def running_ids(self) -> list[str]:
        return [item[1] for item in self.running.values()]

    def delete(self, prompt_id: str) -> bool:
        for i, item in enumerate(self.pending):
            if item[1] == prompt_id:
                self.pending.pop(i)
                heapq.heapify(self.pending)
                self._on_change()
                return True
        return False

    def wipe(self) -> None:
        self.pending = []
        self._on_change()

    def get_history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        if prompt_id is not None:
            entry = self.history.get(prompt_id)
            return {prompt_id: copy.deepcopy(entry)} if entry is not None else {}
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        out: dict[str, Any] = {}
        for i, key in enumerate(self.history):
            if i >= offset:
                out[key] = copy.deepcopy(self.history[key])
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    def delete_history(self, prompt_id: str) -> None:
        self.history.pop(prompt_id, None)

    def wipe_history(self) -> None:
        self.history = {}
