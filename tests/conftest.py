"""Suite-wide plugins: the real-server fixtures (PostgreSQL, Redis, SeaweedFS) start on first use."""

pytest_plugins = ["tests.servers.fixtures", "tests.support.services"]
