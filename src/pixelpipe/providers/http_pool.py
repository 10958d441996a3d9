"""The providers' connection pool: O(1) work per request, keep-alive that holds under load.

httpcore 1.0's ``AsyncConnectionPool`` (what httpx uses) rescans every connection at each
request and each response close — a readability poll (a syscall) per idle connection, and a
count of all connections inside that loop — and it closes an idle connection whenever the pool
holds more than ``max_keepalive_connections`` connections *in all*, busy ones counted. At 64
concurrent generations that cost ~3 ms of event-loop CPU per request (py-spy, docs/performance.md)
and a new TCP connection for most of them.

:class:`StackPool` keeps, per origin, a stack of idle connections — httpcore's own
``AsyncHTTPConnection``, so the HTTP/1.1 handling, TLS and timeouts are unchanged. A request
takes the most recently used idle connection that is still usable (not closed, not expired, no
unread bytes from the server: the same checks httpcore makes, on one connection instead of all),
else opens one; its response's stream, once closed, gives the connection back, or closes it
when it cannot be reused or the stack is full. At most ``max_connections`` requests are in
flight at once; the others wait for a slot, in order, up to the request's ``pool`` timeout.
:class:`LeanTransport` is httpx's transport with this pool in place of httpcore's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import httpcore
import httpx


class LeanTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` (request and error translation unchanged) over a
    :class:`StackPool`. No proxy: a proxy from the environment is mounted by httpx itself."""

    def __init__(self, *, limits: httpx.Limits, verify: bool = True) -> None:
        super().__init__(limits=limits, verify=verify)
        self._pool = StackPool(  # type: ignore[assignment]
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections or 100,
            max_keepalive=limits.max_keepalive_connections or 0,
            keepalive_expiry=limits.keepalive_expiry,
        )


class StackPool:
    """See the module docstring. Implements what httpx's transport calls on its pool."""

    def __init__(
        self,
        *,
        ssl_context: Any,
        max_connections: int,
        max_keepalive: int,
        keepalive_expiry: float | None,
    ) -> None:
        self._ssl = ssl_context
        self._expiry = keepalive_expiry
        self._max_keepalive = max_keepalive
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}  # per origin
        self._closing: set[asyncio.Task[None]] = set()  # unusable connections being closed

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        _check_scheme(request.url.scheme)
        await self._take_slot(request)
        origin = request.url.origin
        try:
            conn = self._reusable(origin) or self._open(origin)
            try:
                response = await conn.handle_async_request(request)
            except BaseException:
                await conn.aclose()
                raise
        except BaseException:
            self._slots.release()
            raise
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_GivesBack(response.stream, self, origin, conn),
            extensions=response.extensions,
        )

    async def _take_slot(self, request: httpcore.Request) -> None:
        timeouts = request.extensions.get("timeout") or {}
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpcore.PoolTimeout("no connection slot free within the pool timeout") from None

    def _reusable(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection | None:
        """The most recently used idle connection to ``origin`` that can take a request now;
        the unusable ones met on the way are closed in the background."""
        stack = self._idle.get(_key(origin))
        while stack:
            conn = stack.pop()
            if conn.is_available() and not conn.has_expired():
                return conn
            task = asyncio.get_running_loop().create_task(_quiet_close(conn))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return None

    def _open(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        """A new connection (it connects on its first request, under its connect timeout)."""
        return httpcore.AsyncHTTPConnection(
            origin=origin, ssl_context=self._ssl, keepalive_expiry=self._expiry
        )

    async def give_back(self, origin: httpcore.Origin, conn: httpcore.AsyncHTTPConnection) -> None:
        """A response is done with ``conn``: keep it for the next request, or close it."""
        self._slots.release()
        stack = self._idle.setdefault(_key(origin), [])
        if conn.is_idle() and not conn.has_expired() and len(stack) < self._max_keepalive:
            stack.append(conn)
        else:
            await conn.aclose()

    def idle_connections(self) -> int:
        """How many connections wait for a request (all origins)."""
        return sum(len(stack) for stack in self._idle.values())

    async def aclose(self) -> None:
        idle = [conn for stack in self._idle.values() for conn in stack]
        self._idle.clear()
        for conn in idle:
            await conn.aclose()

    async def __aenter__(self) -> StackPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.aclose()


class _GivesBack:
    """A response's body stream that gives its connection back to the pool once closed."""

    def __init__(
        self,
        stream: Any,
        pool: StackPool,
        origin: httpcore.Origin,
        conn: httpcore.AsyncHTTPConnection,
    ) -> None:
        self._stream, self._pool, self._origin, self._conn = stream, pool, origin, conn
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if hasattr(self._stream, "aclose"):
                await self._stream.aclose()
        finally:
            await self._pool.give_back(self._origin, self._conn)


_Key = tuple[bytes, bytes, int]


def _check_scheme(scheme: bytes) -> None:
    """What httpcore's pool refuses, refused alike (httpx maps it to ``UnsupportedProtocol``)."""
    if scheme == b"":
        raise httpcore.UnsupportedProtocol(
            "Request URL is missing an 'http://' or 'https://' protocol."
        )
    if scheme not in (b"http", b"https"):
        raise httpcore.UnsupportedProtocol(
            f"Request URL has an unsupported protocol '{scheme.decode(errors='replace')}://'."
        )


def _key(origin: httpcore.Origin) -> _Key:
    """``origin`` as a dict key (httpcore's Origin is not hashable)."""
    return origin.scheme, origin.host, origin.port


async def _quiet_close(conn: httpcore.AsyncHTTPConnection) -> None:
    with contextlib.suppress(Exception):
        await conn.aclose()
