"""``pixelpipe gallery`` and ``pixelpipe boards``: in process on the data directory, and against a
running server with ``--server`` (the same use cases, the same answers)."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.support.serve import Server, run_cli

pytestmark = pytest.mark.slow


def _json(*args: str, **env: str) -> object:
    r = run_cli(*args, "--json", **env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _ok(*args: str, **env: str) -> str:
    r = run_cli(*args, **env)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _generate(prompt: str, env: dict[str, str]) -> str:
    r = run_cli("generate", prompt, "--model", "preview", "--size", "64x64", **env)
    assert r.returncode == 0, r.stderr
    return r.stdout.split()[1]  # "succeeded gen_… model=…"


def test_in_process(tmp_path: Path) -> None:
    env = {"PIXELPIPE_DATA_DIR": str(tmp_path / "data")}
    fox, owl = _generate("a red fox", env), _generate("an owl", env)
    board = _ok("boards", "create", "Animals", **env).split()[0]
    assert _ok("boards", "add", board, fox, owl, **env).strip() == "added 2"
    assert _ok("gallery", "favourite", fox, **env).strip() == "marked 1"
    page = _json("gallery", "list", "--favourite", "--board", board, **env)
    assert [g["id"] for g in page["data"]] == [fox]  # type: ignore[index]
    assert page["data"][0]["favourite"] is True  # type: ignore[index]
    bad = run_cli("gallery", "list", "--sort", "price", **env)
    assert bad.returncode == 1 and "use one of newest" in bad.stderr
    out = tmp_path / "a.zip"
    _ok("gallery", "download", "--board", board, "--out", str(out), **env)
    with zipfile.ZipFile(out) as zf:
        meta = json.loads(zf.read("metadata.json"))
    assert {g["id"] for g in meta["generations"]} == {fox, owl}
    done = run_cli("gallery", "delete", fox, "gen_0000000000000000000000zzzz", **env)
    assert done.returncode == 2 and "deleted 1" in done.stdout and "not found" in done.stderr
    rows = _json("boards", "list", **env)
    assert [(b["name"], b["images"]) for b in rows] == [("Animals", 1)]  # type: ignore[index]


def test_against_a_server(tmp_path: Path) -> None:
    with Server(tmp_path / "srv").start() as srv:
        env = {"PIXELPIPE_DATA_DIR": str(tmp_path / "unused")}
        r = httpx.post(
            f"{srv.url}/v1/generations",
            json={"prompt": "a heron", "model": "preview", "size": "64x64"},
            timeout=60,
        )
        gen = r.json()["id"]
        for _ in range(100):
            if httpx.get(f"{srv.url}/v1/generations/{gen}").json()["status"] == "succeeded":
                break
            time.sleep(0.1)
        there = ("--server", srv.url)
        board = _ok("boards", "create", "Birds", *there, **env).split()[0]
        _ok("boards", "add", board, gen, *there, **env)
        _ok("gallery", "favourite", gen, *there, **env)
        page = _json("gallery", "list", "--board", board, *there, **env)
        assert [(g["id"], g["favourite"]) for g in page["data"]] == [(gen, True)]  # type: ignore[index]
        out = tmp_path / "b.zip"
        _ok("gallery", "download", gen, "--out", str(out), *there, **env)
        with zipfile.ZipFile(out) as zf:
            assert any(n.startswith("images/") for n in zf.namelist())
        _ok("boards", "rename", board, "Herons", *there, **env)
        assert _ok("boards", "list", *there, **env).count("Herons") == 1
        _ok("boards", "delete", board, *there, **env)
        assert _json("boards", "list", *there, **env) == []
        assert "deleted 1" in _ok("gallery", "delete", gen, *there, **env)
