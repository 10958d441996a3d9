"""Load the model catalog into typed, immutable specs.

The catalog is gathered from data files: ``catalog/models.toml`` defines the models several
providers serve (the open-weight FLUX models), and each provider's ``models.toml`` (beside its
registration, ``pixelpipe/providers/<name>/models.toml``) says which models it serves, under which
id and rank, and defines the models only it brings. A model's spec is written once.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pixelpipe.catalog.sources import provider_files
from pixelpipe.errors import ConfigError, InvalidRequest
from pixelpipe.workflows import Workflow

SERVES = ("id", "rank")  # a provider's own keys in a model entry (the rest is the model's spec)
DEFAULT_RANK = 100  # failover order among a model's providers: lower first (cheapest first)
DEFAULT_POSITION = 1000  # where the model is listed: lower first


@dataclass(frozen=True, slots=True)
class NumericRange:
    min: float
    max: float
    default: float


@dataclass(frozen=True, slots=True)
class SizeRange:
    min: int
    max: int
    multiple_of: int


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    label: str
    description: str
    providers: tuple[str, ...]
    provider_ids: dict[str, str]
    typical_latency_s: float
    formats: tuple[str, ...]
    default_format: str
    aspect_ratios: dict[str, tuple[int, int]]
    custom_size: SizeRange | None = None
    steps: NumericRange | None = None
    guidance: NumericRange | None = None
    qualities: tuple[str, ...] = ()
    default_quality: str | None = None
    negative_prompt: bool = False
    max_n: int = 1
    # image inputs (issue 16): how many input images a request may give (0: text-to-image only),
    # whether it takes a mask (inpainting), and the image-to-image strength range if it has one
    max_input_images: int = 0
    # the fewest a request must give: 0 for a model that also draws from text alone; a model
    # that only edits (an img2img workflow, an edit-only endpoint) needs at least one
    min_input_images: int = 0
    accepts_mask: bool = False
    strength: NumericRange | None = None
    # OpenAI's ``input_fidelity`` (how closely an edit keeps faces and details of its inputs):
    # the values the model takes; empty for a model that has no such setting
    input_fidelities: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    workflow: Workflow | None = None  # a model of the operator's file backed by a ComfyUI workflow

    @property
    def default_aspect_ratio(self) -> str:
        return "1:1" if "1:1" in self.aspect_ratios else next(iter(self.aspect_ratios))

    def size_allowed(self, width: int, height: int) -> bool:
        if (width, height) in self.aspect_ratios.values():
            return True
        c = self.custom_size
        return bool(
            c
            and c.min <= width <= c.max
            and c.min <= height <= c.max
            and width % c.multiple_of == 0
            and height % c.multiple_of == 0
        )


def _range(raw: dict[str, Any] | None) -> NumericRange | None:
    if raw is None:
        return None
    return NumericRange(float(raw["min"]), float(raw["max"]), float(raw["default"]))


def _min_inputs(raw: dict[str, Any]) -> int:
    least, most = int(raw.get("min_input_images", 0)), int(raw.get("max_input_images", 0))
    if not 0 <= least <= most:
        raise ValueError(
            f"min_input_images = {least} must be between 0 and max_input_images ({most})"
        )
    return least


def spec_from_raw(name: str, raw: dict[str, Any]) -> ModelSpec:
    custom = raw.get("custom_size")
    return ModelSpec(
        name=name,
        label=raw["label"],
        description=raw.get("description", ""),
        providers=tuple(raw.get("providers", ())),
        provider_ids=dict(raw.get("provider_ids", {})),
        typical_latency_s=float(raw.get("typical_latency_s", 0.0)),
        formats=tuple(raw["formats"]),
        default_format=raw.get("default_format", raw["formats"][0]),
        aspect_ratios={k: (int(v[0]), int(v[1])) for k, v in raw["aspect_ratios"].items()},
        custom_size=SizeRange(**custom) if custom else None,
        steps=_range(raw.get("steps")),
        guidance=_range(raw.get("guidance")),
        qualities=tuple(raw.get("qualities", ())),
        default_quality=raw.get("default_quality"),
        negative_prompt=bool(raw.get("negative_prompt", False)),
        max_n=int(raw.get("max_n", 1)),
        max_input_images=int(raw.get("max_input_images", 0)),
        min_input_images=_min_inputs(raw),
        accepts_mask=bool(raw.get("accepts_mask", False)),
        strength=_range(raw.get("strength")),
        input_fidelities=tuple(raw.get("input_fidelities", ())),
    )


@dataclass(frozen=True, slots=True)
class Catalog:
    models: dict[str, ModelSpec]

    def get(self, name: str) -> ModelSpec:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models))
            raise InvalidRequest(
                f"unknown model {name!r}; choose one of: {known}", field="model"
            ) from None

    def names(self) -> list[str]:
        return list(self.models)

    def restricted_to(self, providers: set[str]) -> Catalog:
        """Only models served by at least one configured provider (providers filtered too)."""
        kept: dict[str, ModelSpec] = {}
        for name, spec in self.models.items():
            served = tuple(p for p in spec.providers if p in providers)
            if served:
                kept[name] = _replace_providers(spec, served)
        return Catalog(kept)


def _replace_providers(spec: ModelSpec, providers: tuple[str, ...]) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, providers=providers)


Source = tuple[str, str | None, dict[str, Any]]  # (file, provider or None for shared, its data)


def load_catalog(path: Path | None = None) -> Catalog:
    """The packaged catalog (shared models + every provider's ``models.toml``); or, with ``path``,
    one complete file whose models list ``providers`` and ``provider_ids`` themselves."""
    where = str(path) if path else "pixelpipe/catalog/models.toml"
    try:
        if path is not None:
            raw = tomllib.loads(path.read_text())
            return Catalog({name: spec_from_raw(name, m) for name, m in raw["models"].items()})
        shared = resources.files("pixelpipe.catalog").joinpath("models.toml").read_text()
        sources: list[Source] = [(where, None, tomllib.loads(shared))]
        for provider, file in provider_files("models.toml"):
            sources.append((str(file), provider, tomllib.loads(file.read_text())))
        return _gather(sources)
    except (OSError, KeyError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise ConfigError(f"model catalog could not be loaded: {exc}") from exc


def _gather(sources: list[Source]) -> Catalog:
    """One catalog from the shared file and the providers' files (see the module docstring)."""
    specs: dict[str, tuple[dict[str, Any], str]] = {}
    serves: dict[str, list[tuple[int, str, str]]] = {}
    for where, provider, raw in sources:
        for name, entry in raw.get("models", {}).items():
            spec = {k: v for k, v in entry.items() if k not in SERVES}
            if provider is not None:
                rank = int(entry.get("rank", DEFAULT_RANK))
                serves.setdefault(name, []).append((rank, provider, str(entry["id"])))
            if spec:
                _define_once(specs, name, spec, where)
    for name, served in serves.items():
        if name not in specs:
            raise ConfigError(
                f"{served[0][1]} serves model {name!r}, which no models.toml defines: give its "
                f"spec (label, formats, aspect_ratios, ...) under [models.{name}] in "
                f"pixelpipe/providers/{served[0][1]}/models.toml"
            )
    listed = sorted(
        (name for name in specs if name in serves),
        key=lambda n: int(specs[n][0].get("position", DEFAULT_POSITION)),
    )
    return Catalog({name: _served(name, specs[name][0], serves[name]) for name in listed})


def _define_once(
    specs: dict[str, tuple[dict[str, Any], str]], name: str, spec: dict[str, Any], where: str
) -> None:
    if name in specs:
        raise ConfigError(
            f"model {name!r} is defined in {specs[name][1]} and in {where}: write a model's spec "
            "once; another provider that serves it lists only its id (and rank)"
        )
    specs[name] = (spec, where)


def _served(name: str, spec: dict[str, Any], served: list[tuple[int, str, str]]) -> ModelSpec:
    ranked = sorted(served)
    return spec_from_raw(
        name,
        {
            **spec,
            "providers": [provider for _, provider, _ in ranked],
            "provider_ids": {provider: pid for _, provider, pid in ranked},
        },
    )
