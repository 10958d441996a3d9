"""``pixelpipe.Client`` against ``pixelpipe serve`` (subprocess)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pixelpipe import Client
from pixelpipe.errors import Conflict, InvalidRequest, NotFound, SafetyRejected
from tests.integrations.conftest import start_server
from tests.support.serve import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("client") / "data", {})
    try:
        yield srv
    finally:
        srv.stop()


async def test_generate_list_estimate_usage(server: Server) -> None:
    async with Client(server.url) as client:
        gen = await client.generate("a paper boat", seed=4, size="64x64", group="client-test")
        assert gen.status == "succeeded" and gen.image is not None and not gen.cached
        png = await client.download(gen)
        assert Image.open(io.BytesIO(png)).size == (64, 64)
        again = await client.generate("a paper boat", seed=4, size="64x64")
        assert again.cached and again.cost.usd == "0.00"

        page = await client.list(group="client-test")
        assert [g.id for g in page.data] == [gen.id]
        assert [g.id async for g in client.iterate(group="client-test", limit=1)] == [gen.id]
        assert (await client.get(gen.id)).id == gen.id

        est = await client.estimate("a paper boat", size="64x64")
        assert est.model == "preview" and est.usd == "0.00"
        usage = await client.usage(group_by="model")
        assert usage.total.requests >= 2 and usage.total.cache_hits >= 1
        assert any(m.name == "preview" for m in await client.models())


async def test_errors_are_the_pixelpipe_error_tree(server: Server) -> None:
    async with Client(server.url) as client:
        with pytest.raises(SafetyRejected) as blocked:
            await client.submit("a beheading scene")
        assert blocked.value.reason
        with pytest.raises(InvalidRequest) as bad:
            await client.submit("a cat", size="3x3")
        assert bad.value.extra["field"] == "size"
        with pytest.raises(NotFound):
            await client.get("gen_01aaaaaaaaaaaaaaaaaaaaaaaa")


async def test_wait_follows_events_past_quiet_periods_and_cancel(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", {"PIXELPIPE_PREVIEW_LATENCY_MS": "6500"})
    try:
        async with Client(srv.url) as client:
            slow = await client.submit("a slow snail", seed=1, size="64x64")
            other = await client.submit("a canceled cat", seed=1, size="64x64")
            canceled = await client.cancel(other.id)
            assert canceled.status == "canceled"
            with pytest.raises(Conflict):
                await client.cancel(other.id)
            with pytest.raises(Conflict):  # running: cancel first
                await client.delete(slow.id)
            await client.delete(other.id)
            await client.delete(other.id)  # again: nothing left to do, no error
            with pytest.raises(NotFound):
                await client.get(other.id)
            done = await client.wait(slow.id, timeout_s=60)  # > 5 s without an event
            assert done.status == "succeeded" and done.image is not None
            with pytest.raises(TimeoutError):
                await client.wait(
                    (await client.submit("never waited", seed=2, size="64x64")).id, timeout_s=0.5
                )
    finally:
        srv.stop()
