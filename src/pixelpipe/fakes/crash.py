"""A fake server that crashes: the connection closes with no response, and it is down a while.

A model server that dies mid-run (killed by the OOM killer, a segfault in a CUDA kernel) never
answers: its client sees the connection closed without a status line (httpx raises
``RemoteProtocolError: Server disconnected without sending a response``), and connections made
before it is restarted fail the same way. :class:`CrashSwitch` holds that "down" state a handler
that dies returns :class:`Dropped`, and :func:`drops_connections` wraps the app so that requests
reaching it while it is down are dropped the same way.

How the connection is closed without a byte: uvicorn (httptools or h11) marks a response as started
*before* it validates the headers of ``http.response.start``; a header value with a newline is
refused there, nothing is written, and an application that then fails after "starting" a response
gets its connection closed (``uvicorn/protocols/http/httptools_impl.py`` ``send`` and
``run_asgi``). ``tests/fakes`` checks this on every run, so a uvicorn that changes it fails loudly.
"""

from __future__ import annotations

import time

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send


class Crashed(Exception):
    """Raised inside a handler whose server "dies" now; the handler answers :class:`Dropped`."""


class Dropped(Response):
    """Not a response: the connection closes without one (return it from a handler)."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _drop(send)


class CrashSwitch:
    """Whether the fake is down (crashed, not yet restarted) and until when."""

    def __init__(self) -> None:
        self._down_until = 0.0
        self.crashes = 0

    def crash(self, restart_s: float) -> None:
        self.crashes += 1
        self._down_until = max(self._down_until, time.monotonic() + restart_s)

    @property
    def down(self) -> bool:
        return time.monotonic() < self._down_until


def drops_connections(app: ASGIApp, switch: CrashSwitch) -> ASGIApp:
    """Wrap ``app``: HTTP requests that come while ``switch`` is down get their connection
    closed without any response (``/_control`` and ``/_stats`` excepted)."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and switch.down and not _is_control(scope):
            await _drop(send)
        await app(scope, receive, send)

    return wrapped


def _is_control(scope: Scope) -> bool:
    """``/_control`` and ``/_stats`` stay reachable so tests can steer a crashed fake."""
    path = str(scope.get("path", ""))
    return path.endswith("/_control") or path.endswith("/_stats")


async def _drop(send: Send) -> None:
    # uvicorn refuses this header before writing anything, with the response marked started:
    # the RuntimeError it raises makes it close the connection unanswered (see the docstring);
    # Starlette's middleware sees a started response and lets the error through.
    await send({"type": "http.response.start", "status": 500, "headers": [(b"x-crash", b"\n")]})
    raise RuntimeError("the server was to drop this connection")  # pragma: no cover
