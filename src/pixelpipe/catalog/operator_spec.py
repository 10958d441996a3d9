"""What the operator's catalog file holds once checked (see :mod:`.operator_file`)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pixelpipe.workflows import Workflow


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
    workflow: Workflow | None = None  # a ComfyUI workflow model: its bound template


@dataclass(frozen=True, slots=True)
class OperatorFile:
    path: str
    backends: tuple[BackendSpec, ...]
    models: tuple[ModelEntry, ...]

    def backend_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.backends)

    def workflows(self) -> dict[str, Workflow]:
        """Model name -> its workflow, for the models backed by one (what a backend of a kind
        that runs workflows renders)."""
        return {m.name: m.workflow for m in self.models if m.workflow is not None}


@dataclass(frozen=True, slots=True)
class InputClaims:
    """What a model of the file says it takes as image inputs (its own keys, or its base's)."""

    max_images: int = 0  # max_input_images
    mask: bool = False  # accepts_mask
    strength: bool = False  # a strength range

    def any(self) -> bool:
        """Whether it takes any: a mask or a strength without an image is refused at intake, so
        ``max_input_images = 0`` makes a model text-only whatever else it inherits."""
        return self.max_images > 0


# A kind's check of a model with image inputs on one of its backends: (the backend's options,
# the model's claims) -> what to fix, or None when the backend can take them.
InputCheck = Callable[[Mapping[str, Any], InputClaims], "str | None"]


@dataclass(frozen=True, slots=True)
class Known:
    """What the file is checked against: installed kinds, hosted providers and their model ids
    (provider -> model -> id), built-in model names, the environment (credentials), and the
    installed kinds that run ComfyUI workflows (the only ones a workflow model may name), and the
    kinds that take image inputs, with their check (a model with inputs on a backend of another
    kind is refused)."""

    kinds: Collection[str]
    hosted: Mapping[str, Mapping[str, str]]
    models: Collection[str]
    env: Mapping[str, str]
    workflow_kinds: Collection[str] = ()
    input_kinds: Mapping[str, InputCheck] = field(default_factory=dict)
