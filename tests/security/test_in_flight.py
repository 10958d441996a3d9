"""A request counts as in flight (for the key check's probe) until its answer starts: a stream
whose events are flowing is not work in hand, and must not push every new request's key check
onto a thread (``security.auth.KeyExistence``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.security.conftest import LOOPBACK, running_app


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1:8000")],
        "client": LOOPBACK,
        "server": ("127.0.0.1", 8000),
    }


async def test_a_request_stops_counting_when_its_answer_starts(tmp_path: Path) -> None:
    async with running_app(tmp_path / "d") as running:
        auth = running.app.state.auth
        seen: list[tuple[str, int]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            seen.append((message["type"], auth.in_flight))

        for path in ("/v1/models", "/v1/generations/gen_missing"):  # an answer, a refusal
            seen.clear()
            await running.app(_scope(path), receive, send)
            assert seen[0] == ("http.response.start", 0), path
            assert all(count == 0 for _, count in seen), seen
            assert auth.in_flight == 0


async def test_the_count_is_given_back_once(tmp_path: Path) -> None:
    async with running_app(tmp_path / "d") as running:
        auth = running.app.state.auth
        with auth.serving() as answered:
            with auth.serving():
                assert auth.in_flight == 2
            answered()
            answered()  # once only
            assert auth.in_flight == 0
        assert auth.in_flight == 0  # leaving the block after the answer started: no more
