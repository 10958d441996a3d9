"""The providers' transport: httpx's requests and responses, carried by aiohttp's client.

httpx stays the providers' API (requests, responses, timeouts, the error tree in
:mod:`pixelpipe.providers.http`); only the wire changes. httpcore speaks HTTP/1.1 through h11 (pure
Python) over anyio streams, with cancel scopes and locks around every request: ~0.4 ms of CPU
per provider call on this project's 2-core VM beside ~0.1 ms for aiohttp's client (C parser,
asyncio protocols, a per-host pool with keep-alive) — docs/performance.md, "Sixth pass".

What httpx's own transport guarantees, kept here:

* **Timeouts** — the request's ``pool`` (waiting for a slot: ``PoolTimeout``) is kept here; its
  ``connect`` (a new connection) and ``read`` (between two reads of the answer) are aiohttp's
  ``sock_connect`` and ``sock_read``; the whole send, up to the answer's headers, is also bounded
  by ``connect + write + read`` (aiohttp has no write timeout of its own).
* **Errors** are httpx's, raised with the request, so the error mapping and the "was it sent?"
  rule (``_AFTER_SEND`` in :mod:`~pixelpipe.providers.http`) hold as before: a connection never
  made is ``ConnectError``/``ConnectTimeout``; anything after the request may have gone out is
  ``ReadTimeout``, ``ReadError`` or ``RemoteProtocolError`` (ambiguous: the run may have started).
* **Bytes as sent**: httpx's headers go out as they are (aiohttp adds none of its own), the body
  as httpx encoded it; answers come back undecoded (httpx decodes them), redirects unfollowed.
* **Once**: a request goes out once; aiohttp's silent second try of an idempotent request on a
  dropped kept-alive connection is off.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import httpx
from multidict import CIMultiDict
from yarl import URL

# set from the body by aiohttp (httpx computed the same values from the same bytes)
_FRAMING = frozenset({"content-length", "transfer-encoding"})
_NO_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


class AioTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` over one ``aiohttp.ClientSession`` (made on first use,
    in the running loop). At most ``limits.max_connections`` requests are in flight, each
    holding its slot until its answer's body is closed; the others wait in order, up to the
    request's ``pool`` timeout (``httpx.PoolTimeout``). No proxy: a proxy from the environment
    is mounted by httpx itself."""

    def __init__(self, *, limits: httpx.Limits, verify: bool = True) -> None:
        self._limits = limits
        self._ssl: ssl.SSLContext = httpx.create_ssl_context(verify=verify)
        self._slots = asyncio.Semaphore(limits.max_connections or 100)
        self._session: aiohttp.ClientSession | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _check_scheme(request.url.scheme)
        body = await request.aread()
        timeouts = request.extensions.get("timeout") or {}
        await self._take_slot(request, timeouts.get("pool"))
        try:
            resp = await self._send(request, body, timeouts)
        except BaseException:
            self._slots.release()
            raise
        return httpx.Response(
            status_code=resp.status,
            headers=resp.raw_headers,
            stream=_Body(resp, request, self._slots.release),
            extensions={
                "http_version": _version(resp),
                "reason_phrase": (resp.reason or "").encode("latin-1", "replace"),
            },
        )

    async def _take_slot(self, request: httpx.Request, pool_s: float | None) -> None:
        try:
            async with asyncio.timeout(pool_s):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout(
                "no connection slot free within the pool timeout", request=request
            ) from None

    async def _send(
        self, request: httpx.Request, body: bytes, timeouts: dict[str, float | None]
    ) -> aiohttp.ClientResponse:
        session = self._session or self._open()
        try:
            async with asyncio.timeout(_bound(timeouts)):
                return await session.request(
                    request.method,
                    URL(str(request.url), encoded=True),
                    headers=_headers(request),
                    data=body or None,
                    allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(
                        sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
                    ),
                    skip_auto_headers=_NO_AUTO_HEADERS,
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translated(exc, request) from exc

    def _open(self) -> aiohttp.ClientSession:
        limits = self._limits
        connector = aiohttp.TCPConnector(
            limit=0,  # the slots above bound the requests in flight
            keepalive_timeout=limits.keepalive_expiry or 5.0,
            force_close=limits.max_keepalive_connections == 0,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # httpx decodes the body by its content-encoding
            cookie_jar=aiohttp.DummyCookieJar(),  # httpx keeps the cookies
            trust_env=False,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        # aiohttp sends an idempotent request (GET, PUT, DELETE) again, unasked, when a kept-alive
        # connection drops it; retries are the job's to decide (ADR 0004): off, as aiohttp's own
        # test client turns them off (aiohttp/test_utils.py)
        self._session._retry_connection = False
        return self._session

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


class _Body(httpx.AsyncByteStream):
    """An answer's body as it comes, failures as httpx's. Closing it gives the connection back
    to aiohttp's pool when the body was read to its end (else aiohttp closes the connection)
    and frees the request's slot."""

    def __init__(
        self, resp: aiohttp.ClientResponse, request: httpx.Request, done: Callable[[], None]
    ) -> None:
        self._resp, self._request, self._done = resp, request, done
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        read: Callable[[], Awaitable[bytes]] = self._resp.content.readany
        while True:
            try:
                chunk = await read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _translated(exc, self._request) from exc
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._resp.release()
        finally:
            self._done()


def _version(resp: aiohttp.ClientResponse) -> bytes:
    version = resp.version
    return b"HTTP/1.1" if version is None else b"HTTP/%d.%d" % (version.major, version.minor)


def _headers(request: httpx.Request) -> CIMultiDict[str]:
    return CIMultiDict(
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in request.headers.raw
        if name.lower().decode("latin-1") not in _FRAMING
    )


def _bound(timeouts: dict[str, float | None]) -> float | None:
    """The longest a send may take, from its slot to the answer's headers: each phase at its
    limit."""
    parts = [timeouts.get(k) for k in ("connect", "write", "read")]
    return None if any(p is None for p in parts) else sum(p for p in parts if p is not None)


def _translated(exc: BaseException, request: httpx.Request) -> httpx.HTTPError:
    """aiohttp's failure as the httpx exception httpcore would have raised for it."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused, TLS: nothing was sent
        return httpx.ConnectError(message, request=request)
    if isinstance(exc, TimeoutError):  # sock_read, or the whole send past its bound
        return httpx.ReadTimeout(message, request=request)
    # closed unanswered, a body cut short, an answer that is not HTTP
    broken = (
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError
    )
    if isinstance(exc, broken):
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)  # reset mid-exchange: it may have gone out


def _check_scheme(scheme: str) -> None:
    """What httpcore's pool refuses, refused alike (httpx maps it to ``UnsupportedProtocol``)."""
    if scheme == "":
        raise httpx.UnsupportedProtocol(
            "Request URL is missing an 'http://' or 'https://' protocol."
        )
    if scheme not in ("http", "https"):
        raise httpx.UnsupportedProtocol(f"Request URL has an unsupported protocol '{scheme}://'.")
