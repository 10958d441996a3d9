"""The operator's catalog file (``PIXELPIPE_CATALOG_PATH``): self-hosted backends and models.

A TOML file with ``[backends.<name>]`` (one model server each: its kind, URL, credential variable,
slots and price per GPU-hour, the kind's own keys under ``options``) and ``[models.<name>]`` (a
new model, or one that ``extends`` a built-in model, served by ``backends`` in failover order,
self-hosted and hosted mixed). Read and checked once at start; anything wrong is a
:class:`~pixelpipe.errors.ConfigError` naming the file, the line and the fix. The catalog sits
below the providers, so what it checks against (the kinds, the hosted providers, the
environment) is handed in. See docs/self-hosted.md.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pixelpipe.catalog.operator_backends import BackendReader
from pixelpipe.catalog.operator_lines import FileLines, top_line
from pixelpipe.catalog.operator_models import ModelReader
from pixelpipe.catalog.operator_spec import BackendSpec, Known, ModelEntry, OperatorFile
from pixelpipe.errors import ConfigError

__all__ = ["BackendSpec", "Known", "ModelEntry", "OperatorFile", "load_operator_file"]


def load_operator_file(path: Path, known: Known) -> OperatorFile:
    """The checked file at ``path``; ConfigError naming the file, the line and the fix."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"PIXELPIPE_CATALOG_PATH={path}: the catalog file cannot be read ({exc.strerror}); "
            "point PIXELPIPE_CATALOG_PATH at an existing TOML file or unset it"
        ) from None
    return _Reader(str(path), text, known).read()


class _Reader(FileLines):
    # --- the file -------------------------------------------------------------------------
    def read(self) -> OperatorFile:
        try:
            raw = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            found = re.search(r"line (\d+)", str(exc))
            raise self.fail(
                int(found.group(1)) if found else 1,
                f"not valid TOML ({exc}); fix the syntax (https://toml.io)",
            ) from None
        for key in raw:
            if key not in ("backends", "models"):
                raise self.fail(
                    top_line(self.lines, key),
                    f"unknown top-level key {key!r}: the file has [backends.<name>] and "
                    "[models.<name>] tables only",
                )
        reader = BackendReader(self.path, self.text, self.known)
        backends = tuple(
            reader.backend(name, entry) for name, entry in self.tables(raw, "backends").items()
        )
        kinds = {b.name: b.kind for b in backends}
        options = {b.name: b.options for b in backends}
        models_reader = ModelReader(self.path, self.text, self.known)
        models = tuple(
            models_reader.model(name, entry, kinds, options)
            for name, entry in self.tables(raw, "models").items()
        )
        return OperatorFile(self.path, backends, models)

    def tables(self, raw: Mapping[str, Any], table: str) -> dict[str, Mapping[str, Any]]:
        found = raw.get(table, {})
        if not isinstance(found, dict):
            raise self.fail(top_line(self.lines, table), f"{table} must be [{table}.<name>] tables")
        for name, entry in found.items():
            if not isinstance(entry, dict):
                raise self.fail(
                    top_line(self.lines, table), f"{table}.{name} must be a [{table}.{name}] table"
                )
        return found
