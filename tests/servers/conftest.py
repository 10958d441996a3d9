"""Until the top-level conftest registers ``tests.servers.fixtures`` as a plugin, import the
fixtures these self-tests use (remove these imports then)."""

from tests.servers.fixtures import (  # noqa: F401
    postgres_server,
    postgres_url,
    redis_server,
    redis_url,
    s3_settings,
    seaweedfs,
)
