"""``pixelpipe generate --server URL``: the same command against a running server (through the
Python ``Client``), with ``--api-key`` / ``PIXELPIPE_API_KEY`` when the server requires keys."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.serve import Server, run_cli


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    """A server whose database holds one API key (so every /v1 call needs it)."""
    data = tmp_path_factory.mktemp("cli-server") / "data"
    made = run_cli("keys", "create", "--name", "cli", "--json", PIXELPIPE_DATA_DIR=str(data))
    assert made.returncode == 0, made.stderr
    with Server(data) as srv:
        deadline = time.monotonic() + 30
        while httpx.get(f"{srv.url}/v1/models", timeout=5).status_code != 401:
            assert time.monotonic() < deadline, "the server never started requiring the key"
            time.sleep(0.1)
        yield srv, json.loads(made.stdout)["key"]


def test_generate_on_a_server_with_a_key(keyed: tuple[Server, str], tmp_path: Path) -> None:
    srv, key = keyed
    out = tmp_path / "fox.png"
    args = ["generate", "a red fox", "--seed", "5", "--size", "64x64", "--format", "png", "--steps"]
    args.append("3")
    res = run_cli(*args, "--server", srv.url, "-o", str(out), PIXELPIPE_API_KEY=key)
    assert res.returncode == 0, res.stderr
    assert out.read_bytes().startswith(b"\x89PNG")
    assert res.stdout.startswith("succeeded gen_") and "cost=$0.0000" in res.stdout
    # the job ran on the server: it is in its gallery, with the options given
    listed = httpx.get(f"{srv.url}/v1/generations", headers={"authorization": f"Bearer {key}"})
    request = listed.json()["data"][0]["request"]
    assert (request["prompt"], request["steps"], request["width"]) == ("a red fox", 3, 64)

    again = run_cli(*args, "--server", srv.url, "--api-key", key)
    assert again.returncode == 0, again.stderr
    assert "cached=yes" in again.stdout
    url = again.stdout.splitlines()[-1]
    assert url.startswith(srv.url + "/") or url.startswith("http"), again.stdout
    assert httpx.get(url if url.startswith("http") else srv.url + url).status_code == 200

    as_json = run_cli(*args, "--server", srv.url, "--json", PIXELPIPE_API_KEY=key)
    assert json.loads(as_json.stdout)["cached"] is True


def test_generate_on_a_server_without_the_key_says_so(keyed: tuple[Server, str]) -> None:
    srv, _ = keyed
    res = run_cli("generate", "a red fox", "--server", srv.url)
    assert res.returncode == 1
    assert "unauthorized" in res.stderr and "API key" in res.stderr


def test_generate_on_a_server_that_is_not_there() -> None:
    res = run_cli("generate", "a red fox", "--server", "http://127.0.0.1:9")
    assert res.returncode == 1
    assert "cannot reach the pixelpipe server at http://127.0.0.1:9" in res.stderr
    assert "Traceback" not in res.stderr
