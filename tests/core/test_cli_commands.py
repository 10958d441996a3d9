"""What the CLI prints: whole lines off a terminal, ids never cut, one money format, JSON where a
script needs it, help a person can read (every case runs ``pixelpipe`` as a subprocess)."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from pathlib import Path

import pytest

from pixelpipe import cli_keys
from pixelpipe.api.routes_usage import UsagePublic
from pixelpipe.security import keys as security_keys
from pixelpipe.settings import Settings
from tests.support.serve import CLI

MONEY = re.compile(r"\$\d[\d.]*")
LONG_HOOK = "https://hooks.example.com/" + "pixelpipe/" * 12 + "end"  # > 80 columns


def cli(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PIXELPIPE_DATA_DIR": str(data), "PATH": "/usr/bin:/bin", **env}
    if "PYTHONPATH" in os.environ:
        base["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return subprocess.run([*CLI, *args], env=base, capture_output=True, text=True, timeout=120)


def on_a_terminal(data: Path, *args: str, columns: int) -> str:
    """Run the CLI with stdout on a pseudo-terminal ``columns`` wide; what it showed."""
    env = {**os.environ, "PIXELPIPE_DATA_DIR": str(data), "COLUMNS": str(columns), "LINES": "50"}
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*CLI, *args], env=env, stdout=follower, stderr=subprocess.PIPE)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(60) == 0, proc.stderr.read() if proc.stderr else ""
    return re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())


def money_amounts(text: str) -> list[str]:
    return MONEY.findall(text)


def assert_one_money_format(text: str) -> None:
    amounts = money_amounts(text)
    assert amounts, text
    for amount in amounts:
        assert re.fullmatch(r"\$\d+\.\d{4}", amount), f"{amount!r} in:\n{text}"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli") / "data"


@pytest.fixture(scope="module")
def key(data: Path) -> dict[str, object]:
    made = cli(
        data,
        "keys",
        "create",
        "--name",
        "robot",
        "--scopes",
        "generate,read",
        "--daily-usd",
        "0.03",
        "--monthly-usd",
        "2",
        "--rpm",
        "60",
        "--webhook",
        LONG_HOOK,
        "--json",
    )
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout)  # type: ignore[no-any-return]


def test_piped_url_is_one_whole_line(data: Path) -> None:
    res = cli(data, "generate", "a lighthouse at dusk", "--seed", "7", "--size", "64x64")
    assert res.returncode == 0, res.stderr
    last = res.stdout.splitlines()[-1]  # `pixelpipe generate … | tail -1`
    assert len(last) > 80, res.stdout  # would have been cut at 80 columns
    assert re.fullmatch(r"(file|https?)://\S+/preview/\S+\.webp\S*", last), res.stdout
    if last.startswith("file://"):  # the stored file itself (no server in an in-process run)
        assert Path(last.removeprefix("file://")).is_file()


def test_keys_create_echoes_what_it_set(data: Path) -> None:
    res = cli(
        data, "keys", "create", "--name", "ops", "--scopes", "admin", "--daily-usd", "5",
        "--rpm", "0", "--webhook", LONG_HOOK,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    text = res.stdout
    assert "scopes:   admin" in text
    assert "budgets:  $5.0000/day" in text
    assert "rate:     no limit" in text
    assert f"webhook:  {LONG_HOOK}\n" in text  # whole, on one line
    assert re.search(r"^pp_\w+_\S+$", text, re.M)


def test_keys_create_json_carries_the_budgets(key: dict[str, object]) -> None:
    assert key["scopes"] == ["generate", "read"] and key["rpm"] == 60
    assert key["budgets"] == [
        {"period": "day", "limit_micros": 30_000, "limit_usd": "0.03"},
        {"period": "month", "limit_micros": 2_000_000, "limit_usd": "2.00"},
    ]
    assert key["webhook"] == LONG_HOOK and str(key["key"]).startswith("pp_")


def test_keys_list_json_and_whole_ids(data: Path, key: dict[str, object]) -> None:
    listed = cli(data, "keys", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {k["id"]: k for k in json.loads(listed.stdout)}
    row = rows[key["id"]]
    assert row["name"] == "robot" and row["budgets"] == key["budgets"]
    assert row["revoked_at"] is None and "key" not in row  # never the secret
    piped = cli(data, "keys", "list")
    assert str(key["id"]) in piped.stdout
    assert f"{key['id']}  {LONG_HOOK}\n" in piped.stdout
    assert_one_money_format(piped.stdout)
    narrow = on_a_terminal(data, "keys", "list", columns=60)
    assert str(key["id"]) in narrow, narrow  # squeezed: other columns wrap, the id stays whole
    assert LONG_HOOK in narrow.replace("\r\n", "").replace("\n", "")


def test_revoke_takes_the_listed_id(data: Path) -> None:
    made = json.loads(cli(data, "keys", "create", "--name", "temp", "--json").stdout)
    listed = cli(data, "keys", "list").stdout
    shown = next(line for line in listed.splitlines() if " temp " in line)
    key_id = re.search(r"│ (\S+)\s+│ temp ", shown)
    assert key_id is not None and key_id.group(1) == made["id"], shown
    assert cli(data, "keys", "revoke", key_id.group(1)).returncode == 0


def test_usage_json_has_the_http_shape(data: Path) -> None:
    assert cli(data, "generate", "a usage probe", "--size", "64x64").returncode == 0
    res = cli(data, "usage", "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert set(UsagePublic.model_fields) <= set(report)
    UsagePublic.model_validate({k: report[k] for k in UsagePublic.model_fields})
    assert any(r["group"] == "preview" for r in report["rows"])
    assert report["storage"]["images"] >= 1
    table = cli(data, "usage").stdout
    assert "preview" in table
    assert_one_money_format(table)


def test_costs_print_in_one_format(data: Path) -> None:
    first = cli(data, "generate", "a cost probe", "--size", "64x64", "--seed", "1")
    again = cli(data, "generate", "a cost probe", "--size", "64x64", "--seed", "1")
    assert "cost=$0.0000 " in first.stdout and "cached=no" in first.stdout, first.stdout
    assert "cost=$0.0000 (cache)" in again.stdout
    set_ = cli(data, "budgets", "set", "2.5", "--scope", "global", "--period", "month")
    assert set_.stdout.strip() == "budget global/month = $2.5000"
    assert_one_money_format(cli(data, "budgets", "list").stdout)


def test_generate_passes_the_new_options(data: Path) -> None:
    res = cli(
        data, "generate", "a misty forest", "--size", "64x64", "--steps", "4", "--guidance",
        "3.5", "--negative-prompt", "blur", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    request = json.loads(res.stdout)["request"]
    assert (request["steps"], request["guidance"], request["negative_prompt"]) == (4, 3.5, "blur")
    refused = cli(data, "generate", "a misty forest", "--quality", "hd")
    assert refused.returncode == 1 and "quality" in refused.stderr  # preview has no tiers


def test_help_is_readable() -> None:
    env = {"PATH": "/usr/bin:/bin", **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"}}
    gen = subprocess.run([*CLI, "generate", "--help"], env=env, capture_output=True, text=True)
    assert "Usage: pixelpipe generate [OPTIONS] PROMPT" in gen.stdout
    assert "{prompt}" not in gen.stdout and "<bool>" not in gen.stdout and "<str>" not in gen.stdout
    for flag in ("--quality TIER", "--negative-prompt TEXT", "--steps N", "--guidance SCALE"):
        assert flag in gen.stdout
    assert re.search(r"^  --json\s+Print", gen.stdout, re.M)
    assert "--server URL" in gen.stdout and "PIXELPIPE_API_KEY" in gen.stdout
    serve = subprocess.run([*CLI, "serve", "--help"], env=env, capture_output=True, text=True)
    defaults = Settings()
    assert f"default {defaults.host}" in serve.stdout and f"default {defaults.port}" in serve.stdout
    create = subprocess.run(
        [*CLI, "keys", "create", "--help"], env=env, capture_output=True, text=True
    )
    assert "admin = GET /v1/usage" in " ".join(create.stdout.split())


def test_cli_scope_constants_match_the_key_module() -> None:
    assert cli_keys.SCOPES == security_keys.SCOPES
    assert cli_keys.DEFAULT_RPM == security_keys.DEFAULT_RPM
