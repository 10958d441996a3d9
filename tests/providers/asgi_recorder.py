"""An ASGI wrapper for the self-hosted kinds' tests: what a fake server was sent, and how many
calls to each path were in flight at once (the fakes count runs, not concurrent requests)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorder:
    app: ASGIApp
    seen: list[Seen] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    most_in_flight: Counter[str] = field(default_factory=Counter)

    def sent(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, chunks = str(scope["path"]), list[bytes]()

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        headers = {k.decode(): v.decode() for k, v in scope.get("headers") or []}
        self.in_flight[path] += 1
        self.most_in_flight[path] = max(self.most_in_flight[path], self.in_flight[path])
        try:
            await self.app(scope, receiving, send)
        finally:
            self.in_flight[path] -= 1
            self.seen.append(Seen(str(scope["method"]), path, b"".join(chunks), headers))
