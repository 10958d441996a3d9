"""Where the providers' data files are: ``pixelpipe/providers/<name>/<file>``.

Found by layout, not by importing the providers (the catalog sits below them: a provider's code
imports the catalog). The registry checks that each such package is a registered provider.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

PROVIDERS_PACKAGE = "pixelpipe.providers"


def provider_files(filename: str) -> list[tuple[str, Path]]:
    """(provider, path) of each provider package that ships ``filename``, by provider name."""
    spec = importlib.util.find_spec(PROVIDERS_PACKAGE)  # imports pixelpipe, not the providers
    locations = list(spec.submodule_search_locations or ()) if spec else []
    found: dict[str, Path] = {}
    for location in locations:
        for package in sorted(Path(location).iterdir()):
            path = package / filename
            if (package / "__init__.py").is_file() and path.is_file():
                found.setdefault(package.name, path)
    return sorted(found.items())
