"""``pixelpipe edit --server URL``: files uploaded to the server, the edit run there; and an
edit's lineage read back after the server restarts (SIGKILL, then a new process on the same data
directory)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.serve import Server, run_cli

pytestmark = pytest.mark.slow


def png(path: Path, colour: str, mode: str = "RGB") -> Path:
    Image.new(mode, (64, 64), colour).save(path, "PNG")
    return path


def generation(srv: Server, gen_id: str) -> dict[str, Any]:
    res = httpx.get(f"{srv.url}/v1/generations/{gen_id}", timeout=10)
    assert res.status_code == 200, res.text
    body: dict[str, Any] = res.json()
    return body


def without_host(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The inputs with each signed url cut to its path and query (the server's port changes)."""
    return [i | {"url": i["url"].split("/v1/", 1)[1] if i.get("url") else None} for i in inputs]


def test_edit_on_a_server_uploads_the_files_and_keeps_lineage_across_a_restart(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))
    mask.save(tmp_path / "mask.png")
    photo = png(tmp_path / "photo.png", "teal")
    out = tmp_path / "out.png"
    with Server(data) as srv:
        base = run_cli(
            "generate", "a harbour", "--seed", "3", "--size", "64x64", "--server", srv.url
        )
        assert base.returncode == 0, base.stderr
        base_id = base.stdout.split()[1]
        args = [
            "edit",
            str(photo),
            base_id,
            "the harbour at dusk",
            "--mask",
            str(tmp_path / "mask.png"),
        ]
        args += ["--seed", "9", "--size", "64x64", "--server", srv.url]
        res = run_cli(*args, "-o", str(out))
        assert res.returncode == 0, res.stderr
        assert res.stdout.startswith("succeeded gen_") and "cached=no" in res.stdout
        assert Image.open(out).size == (64, 64)
        edit_id = res.stdout.split()[1]
        again = run_cli(*args, "--json")
        assert again.returncode == 0, again.stderr
        gen = json.loads(again.stdout)
        assert gen["id"] != edit_id and gen["cached"] is True  # the same edit: a cache hit
        before = generation(srv, edit_id)
        srv.kill()  # a crash, not a shutdown
    roles = [(i["role"], i["source_generation"]) for i in before["inputs"]]
    assert roles == [("image", None), ("image", base_id), ("mask", None)]
    assert all(i["id"].startswith("upl_") for i in before["inputs"])
    with Server(data) as srv:
        after = generation(srv, edit_id)
        assert without_host(after["inputs"]) == without_host(before["inputs"])  # a new port
        assert after["request"]["images"] == before["request"]["images"]
        # the source generation goes; the edit keeps its inputs and the record of their source
        assert httpx.delete(f"{srv.url}/v1/generations/{base_id}", timeout=10).status_code == 204
        kept = generation(srv, edit_id)
        assert without_host(kept["inputs"]) == without_host(before["inputs"])
        for entry in kept["inputs"]:
            body = {"prompt": "again", "model": "preview", "size": "64x64", "images": [entry["id"]]}
            assert httpx.post(f"{srv.url}/v1/generations", json=body, timeout=10).status_code in (
                200,
                202,
            ), entry


def test_edit_on_an_unreachable_server_says_so(tmp_path: Path) -> None:
    photo = png(tmp_path / "photo.png", "red")
    res = run_cli("edit", str(photo), "x", "--server", "http://127.0.0.1:9")
    assert res.returncode == 1
    assert "127.0.0.1:9" in res.stderr
