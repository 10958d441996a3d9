"""The official npm ``openai`` package, installed from the registry for the tests that run it.

Its exact version is pinned in ``package.json`` + ``package-lock.json`` (with its integrity
hash) beside this file. The fixture installs it once per lock file into a cache directory
(``$PIXELPIPE_NPM_CACHE``, else ``$TMPDIR/pixelpipe-npm/<lock hash>``) with ``npm ci``, so a
fresh CI machine gets it on its first run (node and npm come from ``scripts/system-deps``).
The only reason to skip: the registry cannot be reached (``npm ping`` fails). No node or npm,
or an install that fails otherwise, is a failure that says what to do.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PINNED = ("package.json", "package-lock.json")
SCRIPT = "stream.mjs"
INSTALL_TIMEOUT_S = 300.0  # a cold npm cache on a slow link


def _cache_dir() -> Path:
    lock = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in PINNED)).hexdigest()
    root = os.environ.get("PIXELPIPE_NPM_CACHE") or str(
        Path(tempfile.gettempdir()) / "pixelpipe-npm"
    )
    return Path(root) / lock[:16]


def _npm(*args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", *args, "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _install(target: Path) -> None:
    """``npm ci`` of the pinned files into a fresh directory, then moved to ``target`` at once (a
    run beside this one that got there first wins; its copy is the same)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="install-", dir=target.parent))
    try:
        for name in PINNED:
            shutil.copyfile(HERE / name, work / name)
        done = _npm("ci", cwd=work, timeout=INSTALL_TIMEOUT_S)
        if done.returncode != 0:
            pytest.fail(f"npm ci of the pinned openai package failed:\n{done.stderr[-2000:]}")
        try:
            work.rename(target)
        except OSError:  # already there (another run installed it meanwhile)
            pass
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def npm_openai() -> Path:
    """A directory with ``node_modules/openai`` (the pinned version) and ``stream.mjs``."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(
                f"{tool} is not installed: run scripts/system-deps (it installs nodejs, npm)"
            )
    target = _cache_dir()
    if not (target / "node_modules" / "openai" / "package.json").is_file():
        ping = _npm("ping", cwd=HERE, timeout=60)
        if ping.returncode != 0:
            pytest.skip(
                f"the npm registry cannot be reached (npm ping): {ping.stderr.strip()[-300:]}"
            )
        _install(target)
    shutil.copyfile(HERE / SCRIPT, target / SCRIPT)  # node resolves "openai" from beside it
    return target
