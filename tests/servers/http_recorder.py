"""A tiny HTTP server on 127.0.0.1 that records every request it gets: a webhook receiver and an
upload target for the real model servers (cog posts its webhooks and PUTs its uploads to it).

``respond`` picks the answer per request (status and headers, 200 without headers by default), so
a test can make the receiver fail (5xx) or answer an upload with a ``Location``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from tests.servers._process import LOOPBACK


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


Responder = Callable[[RecordedRequest], Answer]


def always_ok(_: RecordedRequest) -> Answer:
    return Answer()


class HttpRecorder:
    """``with HttpRecorder() as hooks: hooks.url("/hook/1"); hooks.wait_for(pred)``."""

    def __init__(self, respond: Responder = always_ok) -> None:
        self.respond = respond
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer((LOOPBACK, 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://{LOOPBACK}:{self.port}{path}"

    def requests(self, path_prefix: str = "") -> list[RecordedRequest]:
        with self._changed:
            return [r for r in self._requests if r.path.startswith(path_prefix)]

    def wait_for(
        self,
        done: Callable[[list[RecordedRequest]], bool],
        *,
        path_prefix: str = "",
        timeout: float = 15.0,
    ) -> list[RecordedRequest]:
        """Block until ``done(requests under path_prefix)``; fail with what did arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                seen = [r for r in self._requests if r.path.startswith(path_prefix)]
                if done(seen):
                    return seen
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for requests under {path_prefix!r}; "
                        f"got {[(r.method, r.path, r.body[:200]) for r in seen]}"
                    )
                self._changed.wait(left)

    def _record(self, request: RecordedRequest) -> Answer:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
        return self.respond(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = recorder._record(RecordedRequest(self.command, self.path, headers, body))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_POST = do_PUT = _any

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
