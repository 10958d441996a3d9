"""Settings fail at start with the variable and the fix; the CLI reports results and refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pixelpipe.bootstrap import build_services
from pixelpipe.errors import ConfigError
from pixelpipe.settings import Settings, load_settings
from tests.support.serve import CLI


def test_wrong_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIXELPIPE_PORT", "eighty")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "PIXELPIPE_PORT" in info.value.detail


async def test_unknown_backend_scheme_stops_the_start_and_says_what_to_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PIXELPIPE_STORAGE_URL", "ftp://somewhere")
    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(ConfigError) as info:
        await build_services(settings)
    assert "PIXELPIPE_STORAGE_URL" in info.value.detail
    assert "'ftp'" in info.value.detail
    for form in ("file:///dir", "s3://bucket[/prefix]", "r2://bucket", "memory://"):
        assert form in info.value.detail


def test_short_secret_key_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="short")  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        settings.signing_key()
    assert "PIXELPIPE_SECRET_KEY" in info.value.detail


def test_generated_signing_key_persists(tmp_path: Path) -> None:
    a = Settings(data_dir=tmp_path).signing_key()
    assert a == Settings(data_dir=tmp_path).signing_key()
    assert len(a) >= 32
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PIXELPIPE_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=60)


def test_cli_generate_saves_the_image_and_reports_cost(tmp_path: Path) -> None:
    out = tmp_path / "fox.png"
    first = run_cli(
        tmp_path,
        "generate",
        "a red fox",
        "--seed",
        "3",
        "--size",
        "128x128",
        "--format",
        "png",
        "-o",
        str(out),
    )
    assert first.returncode == 0, first.stderr
    assert out.read_bytes().startswith(b"\x89PNG")
    assert "cost=$0.00" in first.stdout
    assert "cached=no" in first.stdout
    again = run_cli(
        tmp_path, "generate", "a red fox", "--seed", "3", "--size", "128x128", "--format", "png"
    )
    assert again.returncode == 0, again.stderr
    assert "cached=yes" in again.stdout
    assert "file:///" in again.stdout  # no server here: the stored file itself


def test_cli_generate_refusal_exits_nonzero_with_reason(tmp_path: Path) -> None:
    blocked = run_cli(tmp_path, "generate", "a beheading scene")
    assert blocked.returncode == 1
    assert "prompt_blocked" in blocked.stderr
    assert "blocked_term" in blocked.stderr
    bad = run_cli(tmp_path, "generate", "x", "--size", "7x7")
    assert bad.returncode == 1
    assert "invalid_request" in bad.stderr


def test_serve_with_bad_setting_exits_with_message(tmp_path: Path) -> None:
    env = {
        "PIXELPIPE_DATA_DIR": str(tmp_path),
        "PIXELPIPE_DATABASE_URL": "mysql://x",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run([*CLI, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "PIXELPIPE_DATABASE_URL" in proc.stderr
