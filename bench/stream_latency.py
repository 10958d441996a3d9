"""Time to first partial image and to the final image: through pixelpipe vs. directly from the
fake OpenAI, at C concurrent streams, in the same run (issue 17: added latency <= 10 ms p50).

Starts ``pixelpipe fake-providers`` and a ``pixelpipe serve`` pointed at it, relaying OpenAI's
partials (``PIXELPIPE_OPENAI_PARTIAL_IMAGES``). Each stream is ``POST /v1/images/generations`` with
``stream=true, partial_images=P`` for ``gpt-image-1`` at 1024x1024 and a unique prompt
(no cache hit), read as raw SSE. Rounds alternate: direct to the fake, then through pixelpipe: C
streams each, their starts spread evenly over one run of the fake (``--latency``), so that about C
are open at once without a burst. The fake's latency is long (24 s) because the fake itself spends
~0.4 s of CPU per image (blurring 1024x1024 partials): at 64 streams and 1.5 s it would need ~17
cores and measure only its own queueing. The fake spreads the partials and the final image evenly
over its latency; a partial through pixelpipe is OpenAI's as it came (relayed in-process,
``events/partials.py``), and the final image is the one pixelpipe stored. Prints p50/p95 of both
times for both paths and the difference.

``--fake light`` uses ``bench/stream_light_fake.py`` instead: the same events from an OpenAI fake
that draws its pictures once at start (PNG; each final image made unique by a byte splice), so
the fake's own CPU is next to nothing and a short latency (e.g. 6 s) keeps C streams open.

Run: ``.venv/bin/python bench/stream_latency.py [--streams 64] [--rounds 2] [--latency 24]
[--fake light] [--size 256x256]``. ``--size``: the light fake's pictures (partials and image)
are drawn that size, whatever was asked (1024x1024, the size ``gpt-image-1`` takes; pixelpipe
checks the image's pixels are within bounds, not that they match): a small one shows pixelpipe's
own overhead apart from decoding 1024x1024 PNGs (each partial's thumbnail, the image's check).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from math import nan
from pathlib import Path

import httpx
from _server import bench_server
from tests.support.serve import Server, free_port, start_fake_providers, stop_pid

from pixelpipe.fakes.server import fake_env


@dataclass
class Times:
    first_partial: list[float]
    final: list[float]
    failed: int = 0
    cpu_s: float = 0.0


def cpu_s(srv: Server) -> float:
    """CPU seconds (user + system) the server's process has used so far."""
    assert srv.proc is not None
    fields = Path(f"/proc/{srv.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_stream(
    client: httpx.AsyncClient, url: str, body: dict[str, object]
) -> tuple[float, float]:
    """(seconds to the first partial, seconds to the completed event) of one streamed request."""
    started = time.perf_counter()
    first = final = float("nan")
    async with client.stream("POST", url, json=body) as res:
        res.raise_for_status()
        async for line in res.aiter_lines():
            if line == "event: image_generation.partial_image" and first != first:
                first = time.perf_counter() - started
            elif line == "event: image_generation.completed":
                final = time.perf_counter() - started
            elif line == "event: error":
                raise RuntimeError("an error event")
    return first, final


async def round_of(
    url: str,
    headers: dict[str, str],
    tag: str,
    n: int,
    partials: int,
    stagger_s: float,
    fmt: str,
) -> Times:
    limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=n + 8)
    async with httpx.AsyncClient(headers=headers, timeout=120, limits=limits) as client:
        bodies = [
            {
                "model": "gpt-image-1",
                "prompt": f"bench {tag} {i} {time.time_ns()}",
                "size": "1024x1024",  # what gpt-image-1 takes (the light fake draws --size)
                "quality": "low",
                "output_format": fmt,
                "stream": True,
                "partial_images": partials,
            }
            for i in range(n)
        ]

        async def staggered(i: int, body: dict[str, object]) -> tuple[float, float]:
            await asyncio.sleep(i * stagger_s)  # spread the starts over one run: C streams open
            return await one_stream(client, url, body)

        results = await asyncio.gather(
            *(staggered(i, b) for i, b in enumerate(bodies)), return_exceptions=True
        )
    times = Times([], [])
    for r in results:
        if isinstance(r, BaseException) or r[1] != r[1]:
            times.failed += 1
            continue
        if r[0] == r[0]:
            times.first_partial.append(r[0])
        times.final.append(r[1])
    return times


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, direct: list[float], through: list[float]) -> None:
    d50, d95, t50, t95 = pct(direct, 0.5), pct(direct, 0.95), pct(through, 0.5), pct(through, 0.95)
    print(
        f"{name:<14} direct p50 {d50 * 1000:7.0f} ms p95 {d95 * 1000:7.0f} ms | "
        f"pixelpipe p50 {t50 * 1000:7.0f} ms p95 {t95 * 1000:7.0f} ms | "
        f"added p50 {(t50 - d50) * 1000:+6.1f} ms p95 {(t95 - d95) * 1000:+6.1f} ms "
        f"(n={len(direct)}/{len(through)}, mean {statistics.fmean(through or [nan]) * 1000:.0f} ms)"
    )


def start_fake(
    kind: str, latency_s: float, log: Path, size: str = "1024x1024"
) -> tuple[subprocess.Popen[bytes], str, dict[str, str], str]:
    """(process, the fake OpenAI's base URL (``…/v1`` is under it), pixelpipe's env, format)."""
    if kind == "full":
        proc, base = start_fake_providers(log)
        httpx.post(f"{base}/openai/_control", json={"latency_s": latency_s}, timeout=10)
        return proc, f"{base}/openai", fake_env(base), "webp"
    port = free_port()
    script = Path(__file__).with_name("stream_light_fake.py")
    args = [sys.executable, str(script), "--port", str(port), "--latency", str(latency_s)]
    args += ["--size", size]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(base + "/", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                stop_pid(proc)
                raise RuntimeError(f"light fake down: {log.read_text()[-2000:]}") from None
            time.sleep(0.2)
    env = {
        "PIXELPIPE_OPENAI_BASE_URL": f"{base}/v1",
        "OPENAI_API_KEY": "sk-fake",
        "PIXELPIPE_TEST_MODE": "true",
    }
    return proc, base, env, "png"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--streams", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--latency", type=float, default=24.0, help="the fake's seconds per image")
    p.add_argument("--partials", type=int, default=2)
    p.add_argument("--fake", choices=("full", "light"), default="full")
    p.add_argument("--size", default="1024x1024", help="WxH the light fake draws (1024x1024 asked)")
    o = p.parse_args()
    log = Path(tempfile.mkdtemp(prefix="pixelpipe-bench-fakes-")) / "fakes.log"
    fake_proc, fake, env, fmt = start_fake(o.fake, o.latency, log, o.size)
    print(f"load before: {os.getloadavg()}  cpus: {os.cpu_count()}  fake: {o.fake}")
    try:
        env |= {
            "PIXELPIPE_OPENAI_PARTIAL_IMAGES": str(o.partials),
            "PIXELPIPE_WORKER_CONCURRENCY": str(2 * o.streams),
        }
        with bench_server(**env) as srv:
            direct, through = Times([], []), Times([], [])
            key = {"authorization": "Bearer sk-fake"}
            for r in range(o.rounds):
                for tag, url, headers, into in (
                    ("direct", f"{fake}/v1/images/generations", key, direct),
                    ("pixelpipe", f"{srv.url}/v1/images/generations", {}, through),
                ):
                    stagger = o.latency / o.streams
                    cpu_before = cpu_s(srv)
                    got = asyncio.run(
                        round_of(url, headers, f"{tag}{r}", o.streams, o.partials, stagger, fmt)
                    )
                    if tag == "pixelpipe":  # what pixelpipe's process spent per stream
                        into.cpu_s += cpu_s(srv) - cpu_before
                    into.first_partial += got.first_partial
                    into.final += got.final
                    into.failed += got.failed
                    load = os.getloadavg()[0]
                    print(f"round {r} {tag}: {len(got.final)} done, {got.failed} failed, {load=}")
    finally:
        stop_pid(fake_proc)
    print(
        f"{o.streams} concurrent streams x {o.rounds} rounds, {o.fake} fake, latency {o.latency} s,"
        f" {o.size}"
    )
    report("first partial", direct.first_partial, through.first_partial)
    report("final image", direct.final, through.final)
    per_stream = 1000 * through.cpu_s / max(1, len(through.final))
    print(f"pixelpipe CPU per stream: {per_stream:.0f} ms (its process, user + system)")
    print(
        f"failed: direct {direct.failed}, pixelpipe {through.failed}; load after: {os.getloadavg()}"
    )


if __name__ == "__main__":
    sys.exit(main())
