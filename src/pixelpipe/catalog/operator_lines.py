"""Reading the operator's catalog file: errors that name the file, the line and the fix."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from pixelpipe.catalog.operator_spec import Known
from pixelpipe.errors import ConfigError


class FileLines:
    """The file's text, what it is checked against, and where a table or key is written."""

    def __init__(self, path: str, text: str, known: Known) -> None:
        self.path, self.text, self.known = path, text, known
        self.lines = text.splitlines()

    # --- errors with a line ---------------------------------------------------------------
    def fail(self, line: int, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line}: {message}")

    def line_of(self, table: str, name: str, key: str | None = None) -> int:
        """The line of ``[table.name]`` (or of ``key`` inside it); 1 when it cannot be found."""
        header = re.compile(
            rf"^\s*\[\s*{table}\s*\.\s*(\"{re.escape(name)}\"|'{re.escape(name)}'|"
            rf"{re.escape(name)})\s*(\.|\])"
        )
        start = next((i for i, line in enumerate(self.lines) if header.match(line)), None)
        if start is None:
            return 1
        if key is None:
            return start + 1
        key_line = re.compile(rf"^\s*(\"{re.escape(key)}\"|{re.escape(key)})\s*[=.]")
        for i in range(start + 1, len(self.lines)):
            if self.lines[i].lstrip().startswith("["):
                break
            if key_line.match(self.lines[i]):
                return i + 1
        return start + 1

    def unknown_keys(
        self, table: str, name: str, raw: Mapping[str, Any], allowed: tuple[str, ...], hint: str
    ) -> None:
        for key in raw:
            if key not in allowed:
                raise self.fail(
                    self.line_of(table, name, key),
                    f"unknown key {key!r} in [{table}.{name}]: use {', '.join(allowed)} ({hint})",
                )


def number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def top_line(lines: list[str], key: str) -> int:
    pattern = re.compile(rf"^\s*(\[+\s*)?{re.escape(key)}\b")
    return next((i + 1 for i, line in enumerate(lines) if pattern.match(line)), 1)
