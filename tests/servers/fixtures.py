"""pytest fixtures for the real servers; register once with
``pytest_plugins = ["tests.servers.fixtures"]`` in the top-level ``tests/conftest.py``.

Session-scoped servers start on first use only, so a run that needs none starts none. The
function-scoped helpers give each test a clean slate on the shared server: a unique S3 prefix, a
fresh PostgreSQL database, an emptied Redis; a cog server is shared, so each test gives its
predictions ids of its own. Mark tests that use them ``@pytest.mark.servers``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest

from tests.servers.cog import CogServer, CogServers
from tests.servers.comfy_proxy import ComfyStack
from tests.servers.http_recorder import HttpRecorder
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer
from tests.servers.seaweedfs import SeaweedFS

_db_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    """``weed mini`` with auth on and the bucket ``seaweedfs.bucket`` created."""
    with SeaweedFS(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_settings(seaweedfs: SeaweedFS) -> dict[str, str]:
    """``Settings(**s3_settings)`` kwargs for storage under a prefix unique to this test."""
    return seaweedfs.settings(prefix=f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """``redis://127.0.0.1:<port>/0``, emptied before the test."""
    redis_server.flushall()
    return redis_server.url


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with PostgresServer(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL (``postgresql+psycopg://``) of a fresh, empty database for this test."""
    return postgres_server.create_database(f"test_{next(_db_numbers)}_{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def cog_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CogServers]:
    """Real cog servers (coglet) serving ``tests/cog_predictor``: ``cog_servers.get(slots=2)``
    starts one per slot count on first use; all stop at the end of the session."""
    servers = CogServers(tmp_path_factory.mktemp("cog"))
    try:
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="session")
def cog_server(cog_servers: CogServers) -> CogServer:
    """A real cog server with one slot (``COG_MAX_CONCURRENCY=1``), READY."""
    return cog_servers.get(slots=1)


@pytest.fixture
def http_recorder() -> Iterator[HttpRecorder]:
    """An HTTP receiver on 127.0.0.1 that records every POST/PUT (webhooks, uploads)."""
    with HttpRecorder() as recorder:
        yield recorder


@pytest.fixture(scope="session")
def comfy_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyStack]:
    """The fake ComfyUI (``pixelpipe fake-providers``) and the real comfy-api-proxy in front of
    it, started once per session (see tests/servers/comfy_proxy.py)."""
    stack = ComfyStack(tmp_path_factory.mktemp("comfy")).start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def comfy(comfy_stack: ComfyStack) -> ComfyStack:
    """The shared stack with the fake's behaviours reset and its queue emptied (the running
    prompt interrupted), so a test starts from an idle ComfyUI."""
    comfy_stack.comfyui.reset()
    return comfy_stack
