"""The real-server helpers themselves: isolation per test, loopback only, auth on, stop by PID."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import obstore
import psycopg
import pytest
import redis
from obstore.exceptions import PermissionDeniedError
from obstore.store import S3Store

from tests.servers import PostgresServer, RedisServer, SeaweedFS, ServerStartError
from tests.servers._process import stop_process, wait_until


@pytest.mark.servers
def test_postgres_url_is_a_fresh_database_on_loopback(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    assert postgres_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
    with psycopg.connect(postgres_url.replace("+psycopg", ""), connect_timeout=5) as conn:
        name = conn.execute("select current_database()").fetchone()
        tables = conn.execute("select count(*) from pg_tables where schemaname='public'")
        assert name is not None and postgres_url.endswith("/" + name[0])
        assert tables.fetchone() == (0,)
        conn.execute("create table t (x int)")
    pid_lines = (postgres_server.data / "postmaster.pid").read_text().splitlines()
    assert pid_lines[5] == "127.0.0.1"  # listen_addresses: loopback only


@pytest.mark.servers
def test_redis_url_is_empty_and_answers(redis_url: str, redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        assert client.dbsize() == 0
        client.set("k", "v")
        assert client.get("k") == b"v"
    finally:
        client.close()
    redis_server.flushall()


@pytest.mark.servers
async def test_seaweedfs_enforces_credentials(seaweedfs: SeaweedFS) -> None:
    wrong = S3Store(
        seaweedfs.bucket,
        endpoint=seaweedfs.endpoint,
        access_key_id=seaweedfs.access_key,
        secret_access_key="not-the-secret",
        client_options={"allow_http": True},
        retry_config={"max_retries": 0},
    )
    with pytest.raises(PermissionDeniedError):
        await obstore.head_async(wrong, "anything")
    async with httpx.AsyncClient(timeout=5) as client:
        anonymous = await client.get(f"{seaweedfs.endpoint}/{seaweedfs.bucket}/anything")
    assert anonymous.status_code == 403


def test_stop_falls_back_to_sigkill_when_sigterm_is_ignored() -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(60)"
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == b"1\n"
        stop_process(proc, grace_s=0.3)
    assert proc.returncode == -signal.SIGKILL


def test_a_server_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("FATAL: could not bind\n")
    with (
        subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]) as proc,
        pytest.raises(ServerStartError, match=r"(?s)exited with code 3.*could not bind"),
    ):
        wait_until(lambda: False, proc=proc, what="fake", log=log, timeout=30)


def test_a_server_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(ServerStartError, match="not ready after"):
            wait_until(lambda: False, proc=proc, what="fake", log=tmp_path / "x", timeout=0.2)
    finally:
        stop_process(proc, grace_s=1)
