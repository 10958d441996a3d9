"""The providers' transport (providers/http_aio.py: httpx over aiohttp) against a real HTTP/1.1
server on 127.0.0.1 that counts its connections: keep-alive reuse, sequential and under
concurrency; a server that closes (said or silent); the connection limit and the pool timeout; a
streamed answer holding its connection until closed; a cancelled request giving its slot back;
each failure as the httpx exception the error mapping expects, sent or not."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from pixelpipe.providers.http import _AFTER_SEND, default_client
from pixelpipe.providers.http_aio import AioTransport
from tests.fetch.conftest import tls_files  # noqa: F401 (a fixture)


@dataclass
class Counting:
    """A tiny HTTP/1.1 server: answers ``ok`` (after ``delay_s``), counts connections."""

    mode: str = "keep"  # keep | close (Connection: close) | silent (closes without saying)
    delay_s: float = 0.0
    connections: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    url: str = ""
    set_cookie: bool = False  # every answer sets a cookie
    heads: list[bytes] = field(default_factory=list)
    _server: asyncio.Server | None = field(default=None, repr=False)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
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
                if self.set_cookie:
                    close += b"Set-Cookie: AWSALB=sticky; Path=/\r\n"
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
        transport=AioTransport(limits=limits), timeout=httpx.Timeout(5.0, pool=pool_s)
    )


async def test_the_providers_client_keeps_no_cookie_an_answer_sets() -> None:
    async with counting(set_cookie=True) as srv, default_client() as http:
        first = await http.get(srv.url)
        assert first.headers["set-cookie"].startswith("AWSALB=")  # the answer still shows it
        await http.get(srv.url)
        http.cookies.set("by_hand", "1")  # one set on the client deliberately is sent
        await http.get(srv.url)
    assert [b"cookie:" in h.lower() for h in srv.heads] == [False, False, True]
    assert b"by_hand=1" in srv.heads[2] and b"AWSALB" not in srv.heads[2]


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


async def test_a_streamed_answer_holds_its_slot_until_closed() -> None:
    async with counting() as srv, client(max_connections=1, pool_s=0.1) as http:
        async with http.stream("GET", srv.url) as streamed:
            with pytest.raises(httpx.PoolTimeout):
                await http.get(srv.url)  # the only slot is the open stream's
            assert await streamed.aread() == b"ok"
        assert (await http.get(srv.url)).text == "ok"
        assert srv.connections == 1  # its connection went back to the pool


async def test_a_cancelled_request_gives_its_slot_back() -> None:
    async with counting(delay_s=0.5) as srv, client(max_connections=1, pool_s=2.0) as http:
        slow = asyncio.create_task(http.get(srv.url))
        await asyncio.sleep(0.1)
        slow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await slow
        assert (await http.get(srv.url)).text == "ok"  # the only slot was free again


# ---- failures, as the error mapping (providers/http.py) expects them ---------------------------


@contextlib.asynccontextmanager
async def raw_server(
    answer: bytes | None, *, after_s: float = 0.0, hold: bool = False
) -> AsyncIterator[str]:
    """Reads one request head, waits ``after_s``, writes ``answer`` (None: nothing), then
    closes — or, with ``hold`` or no answer, holds the connection open."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(after_s)
            if answer is not None:
                writer.write(answer)
                await writer.drain()
            if answer is None or hold:
                await asyncio.sleep(30)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        server.close()


def short(read_s: float = 0.3) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    return httpx.AsyncClient(
        transport=AioTransport(limits=limits), timeout=httpx.Timeout(2.0, read=read_s)
    )


async def test_nobody_listening_is_a_connect_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with short() as http:
        with pytest.raises(httpx.ConnectError):
            await http.post(f"http://127.0.0.1:{port}/", json={})


@pytest.mark.parametrize(
    ("answer", "raised"),
    [
        (None, httpx.ReadTimeout),  # never answers
        (b"", httpx.RemoteProtocolError),  # closes without a byte
        (b"SSH-2.0-OpenSSH\r\n\r\n", httpx.RemoteProtocolError),  # not HTTP
    ],
)
async def test_failures_after_sending_are_the_ones_counted_as_sent(
    answer: bytes | None, raised: type[Exception]
) -> None:
    async with raw_server(answer) as url, short() as http:
        with pytest.raises(raised) as caught:
            await http.post(url, json={"prompt": "x"})
    assert isinstance(caught.value, _AFTER_SEND)  # ambiguous: the run may have started


async def test_a_body_cut_short_or_stalled_fails_while_read() -> None:
    cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"
    async with raw_server(cut) as url, short() as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get(url)
    stalled = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"
    async with (
        raw_server(stalled, hold=True) as url,
        short() as http,
        http.stream("GET", url) as resp,
    ):
        assert resp.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            await resp.aread()


async def test_a_slow_answer_within_the_read_timeout_is_read() -> None:
    ok = b'HTTP/1.1 201 Created\r\nContent-Length: 8\r\nX-Run: r1\r\n\r\n{"a": 1}'
    async with raw_server(ok, after_s=0.1) as url, short(read_s=1.0) as http:
        resp = await http.post(url, json={})
    assert resp.status_code == 201 and resp.headers["x-run"] == "r1" and resp.json() == {"a": 1}
    assert resp.reason_phrase == "Created" and resp.http_version == "HTTP/1.1"


async def test_the_request_goes_out_as_httpx_built_it() -> None:
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        seen.extend([head, await reader.readexactly(length)])
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/images/edits?a=b%2Fc"
    files = {"image": ("in.png", b"\x89PNG" + bytes(range(256)) * 40, "image/png")}
    async with server, short() as http:
        request = http.build_request(
            "POST", url, data={"prompt": "a fox"}, files=files, headers={"Authorization": "k"}
        )
        await http.send(request)
        server.close()
    head, body = seen
    sent = [line.split(b":", 1)[0].lower() for line in head.split(b"\r\n")[1:] if line]
    expected = [name.lower() for name, _ in request.headers.raw]
    assert head.split(b"\r\n")[0] == b"POST /v1/images/edits?a=b%2Fc HTTP/1.1"
    assert sorted(sent) == sorted(expected)  # nothing added, nothing dropped
    assert body == request.content  # the multipart body byte for byte


async def test_tls_with_the_servers_certificate(tls_files: tuple[Path, Path]) -> None:  # noqa: F811
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    url = f"https://localhost:{server.sockets[0].getsockname()[1]}/"
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    async with server:
        untrusted = httpx.AsyncClient(transport=AioTransport(limits=limits))
        async with untrusted:
            with pytest.raises(httpx.ConnectError):  # a self-signed certificate: refused
                await untrusted.get(url)
        transport = AioTransport(limits=limits)
        transport._ssl.load_verify_locations(cert)  # trust the test's certificate
        async with httpx.AsyncClient(transport=transport) as trusted:
            assert (await trusted.get(url)).text == "ok"
            assert (await trusted.get(url)).text == "ok"
        server.close()


async def test_a_kept_alive_connection_dropped_unanswered_is_not_sent_again() -> None:
    """aiohttp would send a GET, PUT or DELETE again on a fresh connection: never here."""
    heads: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                heads.append(await reader.readuntil(b"\r\n\r\n"))
                if len(heads) > 1:
                    break  # the second request on this connection: dropped unanswered
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/predictions/p1"
    async with server, short() as http:
        assert (await http.get(url)).text == "ok"
        with pytest.raises(httpx.RemoteProtocolError):
            await http.put(url, json={"input": {}})
        server.close()
    assert len(heads) == 2  # the PUT went out once
