"""A cache hit's CPU, in process: the app called as ASGI, no HTTP, no wrk (not a test).

Starts the fake OpenAI backend, builds ``create_app`` with the embedded defaults (as
``pixelpipe serve`` does, the worker in process), makes the image once, then sends the same
seeded ``POST /v1/images/generations`` ``-n`` times from ``-c`` concurrent tasks and prints the
process CPU per hit (``time.process_time``: every thread) and the wall time per hit. With
``--cprofile FILE`` the event loop's thread is profiled (worker threads are not: read the
thread hops from the CPU figure instead).

    .venv/bin/python bench/peer_litellm/hit_inproc.py -n 3000 -c 1
    .venv/bin/python bench/peer_litellm/hit_inproc.py -n 3000 -c 64 --cprofile /tmp/hit.prof
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_HERE = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if p != _HERE]  # profile.py here shadows the stdlib's
import cProfile  # noqa: E402

sys.path.insert(0, _HERE)
from run import json_body, start_fake, stop  # noqa: E402


class Answer:
    def __init__(self) -> None:
        self.status = 0
        self.body = b""

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


async def call(app: Any, body: bytes) -> Answer:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/images/generations",
        "raw_path": b"/v1/images/generations",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    answer = Answer()
    await app(scope, receive, answer.send)
    return answer


def embedded_app(fake: str) -> Any:
    """The app ``pixelpipe serve`` runs (embedded defaults, a fresh data dir), its OpenAI
    provider pointed at the fake backend ``fake``."""
    from pixelpipe.api.app import create_app
    from pixelpipe.settings import load_settings

    os.environ.update(
        {
            "PIXELPIPE_DATA_DIR": tempfile.mkdtemp(prefix="pixelpipe-inproc-"),
            "PIXELPIPE_LOG_LEVEL": "WARNING",
            "OPENAI_API_KEY": "sk-fake",
            "PIXELPIPE_OPENAI_BASE_URL": fake + "/v1",
            "PIXELPIPE_TEST_MODE": "true",
        }
    )
    app = create_app(load_settings(), freeze_gc=True)
    gc.set_threshold(20_000, 20, 50)  # as `pixelpipe serve`
    return app


async def drive(o: argparse.Namespace, fake: str) -> None:
    app = embedded_app(fake)
    body = json_body(seed=7)
    async with app.router.lifespan_context(app):
        first = await call(app, body)
        assert first.status == 200, first.body[:300]
        for _ in range(200):  # warm-up
            await call(app, body)
        queue = list(range(o.n))
        profiler = cProfile.Profile() if o.cprofile else None

        async def client() -> None:
            while queue:
                queue.pop()
                answer = await call(app, body)
                assert answer.status == 200, answer.body[:300]

        cpu, wall = time.process_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        await asyncio.gather(*(client() for _ in range(o.c)))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(o.cprofile)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"c={o.c} n={o.n}: {cpu / o.n * 1e3:.3f} CPU ms/hit, {wall / o.n * 1e3:.3f} wall ms/hit, "
        f"{o.n / wall:.0f} hits/s (load {os.getloadavg()[0]:.2f})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-n", type=int, default=3000)
    p.add_argument("-c", type=int, default=1)
    p.add_argument("--cprofile", help="write the event loop thread's cProfile here")
    p.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop", help="as uvicorn")
    o = p.parse_args()
    fake, fake_url = start_fake(Path(tempfile.mkdtemp(prefix="pixelpipe-hit-fake-")))
    try:
        if o.loop == "uvloop":
            import uvloop

            uvloop.run(drive(o, fake_url))
        else:
            asyncio.run(drive(o, fake_url))
    finally:
        stop(fake)


if __name__ == "__main__":
    main()
