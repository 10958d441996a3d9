"""``pixelpipe --help`` and the small commands start without the heavy modules.

Deterministic, not timed: each case runs the CLI in a fresh interpreter and lists what it imported
(``bench/cli_startup.py`` prints the timings).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# what the server, the pipeline and the providers need, and a help text or a key listing does not
SERVER_SIDE = (
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "PIL",
    "obstore",
    "alembic",
    "pixelpipe.api",
    "pixelpipe.bootstrap",
    "pixelpipe.pipeline",
    "pixelpipe.providers",
    "pixelpipe.worker",
    "pixelpipe.client",
)
DATABASE = ("sqlalchemy", "aiosqlite", "pixelpipe.db")
SETTINGS = ("pydantic_settings", "pixelpipe.settings")

PROBE = """
import json, sys
sys.argv = ["pixelpipe", *json.loads(sys.argv[1])]
from pixelpipe.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def imported(args: list[str], data_dir: Path) -> set[str]:
    env = {"PIXELPIPE_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    if "PYTHONPATH" in os.environ:
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["code"] in (0, None), proc.stderr
    return set(report["modules"])


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["generate", "--help"],
        ["serve", "--help"],
        ["batch", "--help"],
        ["keys", "--help"],
        ["keys", "create", "--help"],
        ["usage", "--help"],
        ["budgets", "--help"],
    ],
    ids=" ".join,
)
def test_help_loads_no_server_database_or_settings_module(args: list[str], tmp_path: Path) -> None:
    modules = imported(args, tmp_path)
    assert loaded(modules, SERVER_SIDE + DATABASE + SETTINGS) == []


def test_top_level_help_does_not_even_load_rich(tmp_path: Path) -> None:
    assert loaded(imported(["--help"], tmp_path), ("rich", "pydantic")) == []


def test_small_commands_load_only_what_they_use(tmp_path: Path) -> None:
    assert loaded(imported(["webhook-secret"], tmp_path), SERVER_SIDE + DATABASE) == []
    # the first run creates the database (Alembic); later ones find it at the newest revision
    imported(["keys", "list"], tmp_path)
    for args in (["keys", "list"], ["keys", "list", "--json"], ["usage", "--json"]):
        modules = imported(args, tmp_path)
        assert loaded(modules, SERVER_SIDE) == [], args
        # flags and text options are checked without building pydantic adapters (¼ s)
        assert "typer._adapters" not in modules, args
