"""What the operator's catalog file holds once checked (see :mod:`.operator_file`)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One ``[backends.<name>]`` table, checked (the credential read from its variable)."""

    name: str
    kind: str
    url: str
    api_key: str = ""
    slots: int = 1
    usd_per_gpu_hour: Decimal | None = None
    timeout_s: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""  # "catalog.toml:12"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One ``[models.<name>]`` table: the spec keys it sets, what it extends, who serves it."""

    name: str
    extends: str | None
    spec: Mapping[str, Any]  # the keys of SPEC_KEYS it sets
    providers: tuple[str, ...] | None  # failover order; None: the extended model's
    ids: Mapping[str, str]  # provider -> that provider's id for the model
    source: str


@dataclass(frozen=True, slots=True)
class OperatorFile:
    path: str
    backends: tuple[BackendSpec, ...]
    models: tuple[ModelEntry, ...]

    def backend_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.backends)


@dataclass(frozen=True, slots=True)
class Known:
    """What the file is checked against: installed kinds, hosted providers and their model ids
    (provider -> model -> id), built-in model names, and the environment (credentials)."""

    kinds: Collection[str]
    hosted: Mapping[str, Mapping[str, str]]
    models: Collection[str]
    env: Mapping[str, str]
