"""The providers' connection pool (providers/http_pool.py) against a real HTTP/1.1 server on
127.0.0.1 that counts its connections: keep-alive reuse, sequential and under concurrency; a
server that closes (said or silent); the connection limit and the pool timeout; a streamed
answer holding its connection until closed; a cancelled request giving its slot back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest

from pixelpipe.providers.http import default_client
from pixelpipe.providers.http_pool import LeanTransport, StackPool


@dataclass
class Counting:
    """A tiny HTTP/1.1 server: answers ``ok`` (after ``delay_s``), counts connections."""

    mode: str = "keep"  # keep | close (Connection: close) | silent (closes without saying)
    delay_s: float = 0.0
    connections: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    url: str = ""
    _server: asyncio.Server | None = field(default=None, repr=False)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                await asyncio.sleep(self.delay_s)
                self.in_flight -= 1
                close = b"Connection: close\r\n" if self.mode == "close" else b""
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + close + b"\r\nok")
                await writer.drain()
                if self.mode != "keep":
                    break
        writer.close()


@contextlib.asynccontextmanager
async def counting(**kw: object) -> AsyncIterator[Counting]:
    srv = Counting(**kw)  # type: ignore[arg-type]
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0)
    srv.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    async with server:
        yield srv
        server.close()


def client(max_connections: int = 100, pool_s: float = 5.0) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=100)
    return httpx.AsyncClient(
        transport=LeanTransport(limits=limits), timeout=httpx.Timeout(5.0, pool=pool_s)
    )


async def test_sequential_requests_reuse_one_connection() -> None:
    async with counting() as srv, default_client() as http:
        for _ in range(20):
            assert (await http.post(srv.url, json={"a": 1})).text == "ok"
    assert srv.connections == 1


async def test_under_concurrency_connections_are_kept_and_reused() -> None:
    async with counting(delay_s=0.05) as srv, client() as http:
        for _ in range(3):  # three waves of 64 at once
            answers = await asyncio.gather(*(http.get(srv.url) for _ in range(64)))
            assert all(a.status_code == 200 for a in answers)
        pool = http._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool, StackPool) and pool.idle_connections() == 64
    assert srv.connections == 64  # the second and third waves opened none


async def test_a_server_that_closes_after_each_answer() -> None:
    for mode in ("close", "silent"):
        async with counting(mode=mode) as srv, client() as http:
            for _ in range(5):
                assert (await http.get(srv.url)).text == "ok"
                await asyncio.sleep(0.05)  # a silent close reaches the client's socket
        assert srv.connections == 5, mode


async def test_the_connection_limit_holds_and_the_pool_timeout_fires() -> None:
    async with counting(delay_s=0.2) as srv:
        async with client(max_connections=2) as http:
            answers = await asyncio.gather(*(http.get(srv.url) for _ in range(6)))
            assert all(a.text == "ok" for a in answers)
        assert srv.most_in_flight == 2
        async with client(max_connections=1, pool_s=0.05) as http:
            first = asyncio.create_task(http.get(srv.url))
            await asyncio.sleep(0.05)
            with pytest.raises(httpx.PoolTimeout):
                await http.get(srv.url)
            assert (await first).text == "ok"


async def test_a_streamed_answer_holds_its_connection_until_closed() -> None:
    async with counting() as srv, client() as http:
        async with http.stream("GET", srv.url) as streamed:
            assert (await http.get(srv.url)).text == "ok"  # the stream's connection is busy
            assert srv.connections == 2
            await streamed.aread()
        assert (await http.get(srv.url)).text == "ok"
        assert srv.connections == 2  # both back in the pool, one reused


async def test_a_cancelled_request_gives_its_slot_back() -> None:
    async with counting(delay_s=0.5) as srv, client(max_connections=1, pool_s=2.0) as http:
        slow = asyncio.create_task(http.get(srv.url))
        await asyncio.sleep(0.1)
        slow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await slow
        assert (await http.get(srv.url)).text == "ok"  # the only slot was free again
