"""``pixelpipe.security`` is a boundary layer: it decides (who may call what, how large a body may
be) and imports nothing above it — not the API adapter that applies its decisions over HTTP, nor
the service/use-case layers, bootstrap or the CLI. Function-body imports count too."""

from __future__ import annotations

import ast
from pathlib import Path

import pixelpipe.security

ABOVE = ("pixelpipe.api", "pixelpipe.web", "pixelpipe.service", "pixelpipe.usecases")
ABOVE_TOO = ("pixelpipe.bootstrap", "pixelpipe.cli", "pixelpipe.pipeline", "pixelpipe.runner")


def imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_security_imports_nothing_above_it() -> None:
    package = Path(pixelpipe.security.__file__).parent
    modules = sorted(package.rglob("*.py"))
    assert len(modules) > 5
    upward = {
        f"{path.relative_to(package)}: {name}"
        for path in modules
        for name in imported(path)
        if name.startswith(ABOVE + ABOVE_TOO)
    }
    assert upward == set()
