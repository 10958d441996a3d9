"""``pixelpipe batch`` and ``pixelpipe compare`` as subprocesses (in-process pipeline and --server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pixelpipe.cli_batch import derive_seed, read_items, with_defaults
from pixelpipe.errors import InvalidRequest
from tests.integrations.conftest import Fakes, start_server
from tests.support.serve import CLI

pytestmark = pytest.mark.slow
FLUX_USD = 0.003  # flux-schnell per image (pricing/prices.toml)


def _env(data_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    return {
        **os.environ,
        "PIXELPIPE_DATA_DIR": str(data_dir),
        "PIXELPIPE_LOG_LEVEL": "WARNING",
        **extra,
    }


def _lines(path: Path) -> list[dict]:  # type: ignore[type-arg]
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_batch_of_100_killed_halfway_resumes_from_the_cache(tmp_path: Path, fakes: Fakes) -> None:
    fakes.control(latency_s=0.3)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(f"batch prompt number {i}") + "\n" for i in range(100)))
    first_log, second_log = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    env = _env(tmp_path / "data", {**fakes.env, "PIXELPIPE_LEASE_S": "2"})
    args = [*CLI, "batch", str(prompts), "--model", "flux-schnell", "--concurrency", "8", "--json"]
    creates_before = fakes.creates()

    run = subprocess.Popen(
        [*args, "--results", str(first_log)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while len(_lines(first_log)) < 50:
        assert run.poll() is None, "the batch ended before it was interrupted"
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)  # a crash, not a polite stop
    run.wait(10)
    done_before = {o["prompt"] for o in _lines(first_log) if o["status"] == "succeeded"}
    assert 50 <= len(done_before) < 100
    assert all(o["cost_micros"] == int(FLUX_USD * 1e6) for o in _lines(first_log))

    resumed = subprocess.run(
        [*args, "--results", str(second_log)], env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads(resumed.stdout)
    assert summary["done"] == 100 and summary["failed"] == 0 and not summary["interrupted"]
    assert summary["cached"] >= len(done_before)

    outcomes = {o["prompt"]: o for o in _lines(second_log)}
    assert len(outcomes) == 100
    for prompt in done_before:  # the first half: from the cache, at $0, and what it saved
        o = outcomes[prompt]
        assert o["cached"] is True and o["cost_micros"] == 0, o
        assert o["saved_micros"] == int(FLUX_USD * 1e6)
    assert summary["saved_micros"] >= len(done_before) * int(FLUX_USD * 1e6)
    # each prompt reached a provider once (plus, at most, the runs in flight when it was killed)
    assert 100 <= fakes.creates() - creates_before <= 108


def test_batch_against_a_server_with_failures_in_the_summary(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.csv"
    prompts.write_text(
        "prompt,seed,size\n"
        "a calm lake,1,64x64\n"
        "a beheading scene,2,64x64\n"  # refused by the safety rules
        "a windy hill,,96x64\n"
        "a bad size,3,3x3\n"
    )
    srv = start_server(tmp_path / "data", {})
    try:
        out = tmp_path / "images"
        res = subprocess.run(
            [*CLI, "batch", str(prompts), "--server", srv.url, "--json", "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        srv.stop()
    assert res.returncode == 2, res.stderr  # some failed
    summary = json.loads(res.stdout)
    assert summary["done"] == 2 and summary["failed"] == 2
    assert set(summary["failures"]) == {"prompt_blocked", "invalid_request"}
    assert len(list(out.iterdir())) == 2


def test_compare_prints_time_cost_and_paths(tmp_path: Path, fakes: Fakes) -> None:
    fakes.control(latency_s=0.2)
    out = tmp_path / "cmp"
    env = _env(tmp_path / "data", fakes.env)
    res = subprocess.run(
        [
            *CLI,
            "compare",
            "a tiny robot",
            "--models",
            "preview,flux-schnell,flux-dev",
            "--seed",
            "7",
            "--out",
            str(out),
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    rows = json.loads(res.stdout)
    assert [r["model"] for r in rows] == ["preview", "flux-schnell", "flux-dev"]
    for r in rows:
        assert r["status"] == "succeeded" and r["seed"] == 7
        assert Path(r["path"]).is_file() and r["seconds"] > 0
    assert rows[0]["cost_micros"] == 0 and rows[1]["cost_micros"] > 0
    table = subprocess.run(
        [
            *CLI,
            "compare",
            "a tiny robot",
            "--models",
            "preview,flux-schnell",
            "--seed",
            "7",
            "--out",
            str(out),
        ],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "$0.0000 (cache)" in table.stdout and str(out) in table.stdout


def test_input_formats_and_derived_seeds(tmp_path: Path) -> None:
    jl = tmp_path / "p.jsonl"
    jl.write_text('"a fox"\n\n{"prompt": "an owl", "seed": 3, "steps": "2"}\n')
    items = read_items(jl)
    assert items == [{"prompt": "a fox"}, {"prompt": "an owl", "seed": 3, "steps": 2}]
    a = with_defaults(items[0], {"model": "preview", "size": None})
    assert a["seed"] == derive_seed({"prompt": "a fox", "model": "preview"})
    assert with_defaults(items[0], {"model": "preview"})["seed"] == a["seed"]  # stable
    assert with_defaults(items[0], {"model": "flux-dev"})["seed"] != a["seed"]
    txt = tmp_path / "p.txt"
    txt.write_text("one\ntwo\n")
    assert [i["prompt"] for i in read_items(txt)] == ["one", "two"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x", "colour": "red"}\n')
    with pytest.raises(InvalidRequest, match="colour"):
        read_items(bad)
