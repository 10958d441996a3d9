"""Watching a generation: ``Client.stream`` against ``pixelpipe serve`` (subprocess) yields its
events — progress with ``fraction`` and an ``eta_s`` measured from the jobs before it — until the
final status; ``pixelpipe generate --watch`` prints a line per change on stderr, on a server and
in-process; the line's wording."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pixelpipe import Client
from pixelpipe.cli import watch_line
from pixelpipe.errors import NotFound
from tests.integrations.conftest import start_server
from tests.support.serve import CLI, Server

LATENCY = {"PIXELPIPE_PREVIEW_LATENCY_MS": "1500"}


def test_the_watch_line_says_place_percent_steps_and_eta() -> None:
    assert watch_line("queued", {}) == "queued"
    assert (
        watch_line("queued", {"queue_position": 2, "eta_s": 12.4}) == "queued  position 2  eta 12s"
    )
    progress = {"percent": 40.0, "fraction": 0.4, "step": 8, "steps": 20, "eta_s": 4.53}
    assert watch_line("waiting", progress) == "waiting  40%  step 8/20  eta 4.5s"
    assert watch_line("succeeded", {"percent": 100}) == "succeeded"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("watch") / "data", LATENCY)
    try:
        yield srv
    finally:
        srv.stop()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "COLUMNS": "200", **(env or {})}
    if "PYTHONPATH" in os.environ:
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run([*CLI, *args], env=base, capture_output=True, text=True, timeout=180)


@pytest.mark.slow
async def test_client_stream_yields_progress_with_an_eta_then_the_final_status(
    server: Server,
) -> None:
    async with Client(server.url) as client:
        earlier = [await client.submit(f"a measured heron {i}", size="64x64") for i in range(3)]
        await asyncio.gather(*(client.wait(g.id) for g in earlier))  # service times to measure

        gen = await client.submit("a watched heron", size="64x64")
        events = [event async for event in client.stream(gen.id, timeout_s=120)]

        assert events[-1].final and events[-1].status == "succeeded"
        assert events[-1].generation is not None and events[-1].generation.image is not None
        assert sum(e.final for e in events) == 1
        ids = [int(e.id or 0) for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        running = [e.progress for e in events if e.type == "progress"]
        assert running, [e.type for e in events]
        percents = [p["percent"] for p in running]
        assert percents == sorted(percents) and 0 < percents[-1] < 100
        assert all(p["fraction"] == round(p["percent"] / 100, 3) for p in running)
        assert all(0 < p["eta_s"] < 10 for p in running)  # measured: about 1.5 s a run
        with pytest.raises(NotFound):
            async for _ in client.stream("gen_01aaaaaaaaaaaaaaaaaaaaaaaa"):
                pass


@pytest.mark.slow
def test_generate_watch_prints_progress_lines_then_the_result(
    server: Server, tmp_path: Path
) -> None:
    there = cli("generate", "a watched kite", "--size", "64x64", "--watch", "--server", server.url)
    assert there.returncode == 0, there.stderr
    lines = there.stderr.splitlines()
    assert lines[0].startswith("queued") and lines[-1] == "succeeded", lines
    assert any(line.startswith("waiting") and "%" in line for line in lines), lines
    assert "succeeded gen_" in there.stdout  # the result on stdout, as without --watch

    env = {**LATENCY, "PIXELPIPE_DATA_DIR": str(tmp_path / "data")}
    out = tmp_path / "kite.png"
    here = cli("generate", "a kite here", "--size", "64x64", "--watch", "-o", str(out), env=env)
    assert here.returncode == 0, here.stderr
    lines = here.stderr.splitlines()
    assert lines[-1] == "succeeded" and any("%" in line for line in lines), lines
    assert out.stat().st_size > 0
