"""Real servers for tests (no Docker here): SeaweedFS (S3), Redis, PostgreSQL, cog (a model
server, with :class:`HttpRecorder` to receive its webhooks and uploads) on 127.0.0.1.

Each class starts its server on free loopback ports, waits until it really answers (with a timeout
and the log tail in the error), and stops it by PID: SIGTERM (SIGINT for PostgreSQL's fast
shutdown), then SIGKILL. Use them as context managers, or through the pytest fixtures in
:mod:`tests.servers.fixtures` (register with ``pytest_plugins = ["tests.servers.fixtures"]``).
"""

from tests.servers._process import ServerStartError
from tests.servers.cog import CogServer
from tests.servers.http_recorder import HttpRecorder
from tests.servers.postgres import PostgresServer
from tests.servers.redis import RedisServer
from tests.servers.seaweedfs import SeaweedFS

__all__ = [
    "CogServer",
    "HttpRecorder",
    "PostgresServer",
    "RedisServer",
    "SeaweedFS",
    "ServerStartError",
]
