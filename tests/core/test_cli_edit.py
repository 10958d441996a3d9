"""``pixelpipe edit IMAGE... PROMPT``: in-process edits on the offline preview model, run as a
subprocess like every CLI test (files, upload ids, URLs through the fetch guard, the cache)."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.support.serve import run_cli


def cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, PIXELPIPE_DATA_DIR=str(data))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-edit") / "data"


def png(path: Path, colour: str, mode: str = "RGB") -> Path:
    Image.new(mode, (64, 64), colour).save(path, "PNG")
    return path


def as_json(res: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert res.returncode == 0, res.stderr
    body: dict[str, Any] = json.loads(res.stdout)
    return body


def test_a_file_is_edited_and_saved_derived_from_it(data: Path, tmp_path: Path) -> None:
    def edit(colour: str) -> tuple[float, ...]:
        out = tmp_path / f"out-{colour}.png"
        source = png(tmp_path / f"{colour}.png", colour)
        res = cli(data, "edit", str(source), "add a boat", "--size", "64x64", "--seed", "5", "--strength", "0.1",
                  "--format", "png", "-o", str(out))  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert "succeeded" in res.stdout and f"saved to {out}" in res.stdout
        img = Image.open(io.BytesIO(out.read_bytes())).convert("RGB")
        assert img.size == (64, 64)
        pixels = list(img.getdata())
        return tuple(sum(p[c] for p in pixels) / len(pixels) for c in range(3))

    red, blue = edit("red"), edit("blue")  # same prompt and seed: only the input differs
    assert red[0] > blue[0] + 100 and blue[2] > red[2] + 100


def test_several_files_a_mask_then_the_upload_id_again_is_a_cache_hit(
    data: Path, tmp_path: Path
) -> None:
    a, b = png(tmp_path / "a.png", "red"), png(tmp_path / "b.png", "blue")
    mask = png(tmp_path / "mask.png", (0, 0, 0, 0), "RGBA")
    args = ("two boats", "--mask", str(mask), "--size", "64x64", "--seed", "7", "--json")
    first = as_json(cli(data, "edit", str(a), str(b), *args))
    assert first["status"] == "succeeded" and not first["cached"]
    roles = [i["role"] for i in first["inputs"]]
    assert roles == ["image", "image", "mask"]
    ids = [i["id"] for i in first["inputs"]]
    assert all(i.startswith("upl_") for i in ids)

    # the same inputs by upload id: the same content key, so the cache answers
    again = as_json(cli(data, "edit", ids[0], ids[1], "two boats", "--mask", ids[2],
                        "--size", "64x64", "--seed", "7", "--json"))  # fmt: skip
    assert again["cached"] and again["key"] == first["key"]
    assert [i["id"] for i in again["inputs"]] == ids


def test_what_is_not_an_image_or_a_reference_is_refused(data: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    res = cli(data, "edit", str(text), "x")
    assert res.returncode == 1 and "image" in res.stderr
    missing = cli(data, "edit", str(tmp_path / "nowhere.png"), "x")
    assert missing.returncode == 1 and "not a file, an upload id or a URL" in missing.stderr


def test_a_url_goes_through_the_fetch_guard(data: Path) -> None:
    res = cli(data, "edit", "http://127.0.0.1:9/cat.png", "x")
    assert res.returncode == 1
    assert "127.0.0.1" in res.stderr or "private" in res.stderr.lower()


def test_an_unknown_model_is_refused(data: Path, tmp_path: Path) -> None:
    red = png(tmp_path / "red.png", "red")
    res = cli(data, "edit", str(red), "x", "--model", "no-such-model")
    assert res.returncode == 1 and "no-such-model" in res.stderr
