"""Load ``models.toml`` into typed, immutable specs."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pixelpipe.errors import ConfigError, InvalidRequest


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
    extra: dict[str, Any] = field(default_factory=dict)

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


def _spec(name: str, raw: dict[str, Any]) -> ModelSpec:
    custom = raw.get("custom_size")
    return ModelSpec(
        name=name,
        label=raw["label"],
        description=raw.get("description", ""),
        providers=tuple(raw["providers"]),
        provider_ids=dict(raw["provider_ids"]),
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


def load_catalog(path: Path | None = None) -> Catalog:
    try:
        if path is None:
            text = resources.files("pixelpipe.catalog").joinpath("models.toml").read_text()
        else:
            text = path.read_text()
        raw = tomllib.loads(text)
        return Catalog({name: _spec(name, m) for name, m in raw["models"].items()})
    except (OSError, KeyError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise ConfigError(f"model catalog could not be loaded: {exc}") from exc
