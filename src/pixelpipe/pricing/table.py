"""Versioned price tables loaded from ``prices.toml`` and the providers' ``prices.toml``.

A :class:`PriceTable` holds every version; the one in force at a time is the latest whose effective
date is at or before it. Prices come out as :class:`~pixelpipe.pricing.price.Price` in integer
micro-dollars, carrying the version they were priced with. An unknown (provider, model), size or
quality gives ``Price(None, version, "unknown")``: *unpriced*, never $0.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, cast

from pixelpipe.catalog.sources import provider_files
from pixelpipe.errors import ConfigError
from pixelpipe.intake import CanonicalRequest
from pixelpipe.pricing.gpu_time import BASIS as GPU_TIME
from pixelpipe.pricing.gpu_time import GpuPricing, usage_seconds
from pixelpipe.pricing.price import Price
from pixelpipe.pricing.rules import (
    BASES,
    Basis,
    Rule,
    Shape,
    TokenRates,
    price_by_table,
    price_by_tokens,
    to_micros,
)

NO_VERSION = "none"
_LISTED_MAX = 4096
_SIZE = re.compile(r"^\d+x\d+$")


@dataclass(frozen=True, slots=True)
class PriceVersion:
    version: str
    effective_at: float  # epoch seconds (UTC)
    megapixel: int  # pixels per billed megapixel
    gigabyte: int  # bytes per billed GB (storage)
    rules: Mapping[tuple[str, str], Rule]  # (provider, model) -> rule
    storage: Mapping[str, tuple[int, int]]  # backend -> (micros per GB-month, micros per GB egress)


@dataclass(frozen=True, slots=True)
class PriceTable:
    versions: tuple[PriceVersion, ...]  # sorted by effective_at
    gpu: GpuPricing | None = None  # self-hosted backends, priced in GPU time (gpu_time.py)
    # list prices already worked out (Decimal arithmetic): (version, provider, model, shape)
    _listed: dict[tuple[str, float, str, str, Shape], Price] = field(
        default_factory=dict, compare=False, repr=False
    )

    def with_gpu(self, gpu: GpuPricing) -> PriceTable:
        """This table, pricing ``gpu``'s backends in GPU time."""
        return replace(self, gpu=gpu)

    def version_at(self, at: float | None = None) -> PriceVersion | None:
        """The version in force at ``at`` (now when None); None before the first version."""
        when = time.time() if at is None else at
        current = None
        for v in self.versions:
            if v.effective_at <= when:
                current = v
        return current

    def estimate(self, req: CanonicalRequest, provider: str, *, at: float | None = None) -> Price:
        """The list price of ``req`` on ``provider`` (what a budget reserves); on a self-hosted
        backend, the GPU time its model measured there (else its typical latency)."""
        if self.gpu is not None and self.gpu.priced_in_gpu_time(provider):
            return self._gpu(provider, self.gpu.estimate_seconds(provider, req.model), at)
        return self._price(req.model, provider, _shape(req, {}), {}, at)

    def actual(
        self,
        req: CanonicalRequest,
        provider: str,
        usage: Mapping[str, Any],
        *,
        at: float | None = None,
    ) -> Price:
        """The cost of a finished attempt, from the provider's ``usage`` where it reports one.

        ``usage`` may hold OpenAI token counts (``input_tokens``, ``output_tokens``, details), the
        output ``width``/``height`` (fal bills the produced megapixels) and ``images`` (count);
        a self-hosted backend's run is priced by its ``gpu_seconds`` (the estimate without them).
        """
        if self.gpu is not None and self.gpu.priced_in_gpu_time(provider):
            seconds = usage_seconds(usage)
            if seconds is None:
                return self.estimate(req, provider, at=at)
            return self._gpu(provider, seconds, at)
        return self._price(req.model, provider, _shape(req, usage), usage, at)

    def _gpu(self, provider: str, seconds: float, at: float | None) -> Price:
        assert self.gpu is not None
        v = self.version_at(at)
        return Price(self.gpu.micros(provider, seconds), v.version if v else NO_VERSION, GPU_TIME)

    def display(self, model: str, providers: Iterable[str] | None = None) -> dict[str, int | None]:
        """Provider -> micros for the model's default size and quality (for the model list).

        Without ``providers``: the providers that have a rule for the model. With it: exactly those,
        None for an unpriced one.
        """
        v = self.version_at()
        gpu = self.gpu
        if providers is None:
            names = [p for p, m in v.rules if m == model] if v else []
            names += list(gpu.serves.get(model, ())) if gpu else []
        else:
            names = list(providers)
        shown: dict[str, int | None] = {}
        for p in names:
            if gpu is not None and gpu.priced_in_gpu_time(p):
                shown[p] = gpu.micros(p, gpu.estimate_seconds(p, model))
            else:
                shown[p] = _display_one(v, v.rules.get((p, model))) if v else None
        return shown

    def storage_rates(self, backend: str) -> tuple[int, int]:
        """(micros per GB-month stored, micros per GB egress) of a storage backend (URL scheme)."""
        v = self.version_at()
        rates = v.storage.get(backend) if v else None
        if rates is None:
            raise ConfigError(
                f"no storage price for backend {backend!r}; add it under [versions.storage] in "
                "pixelpipe/pricing/prices.toml"
            )
        return rates

    def storage_month_micros(self, backend: str, stored_bytes: int) -> int:
        """What ``stored_bytes`` cost per month on ``backend``."""
        v = self.version_at()
        per_gb, _ = self.storage_rates(backend)
        gigabyte = v.gigabyte if v else 1 << 30
        return to_micros(Decimal(per_gb) * stored_bytes / gigabyte / 1_000_000)

    def _price(
        self, model: str, provider: str, shape: Shape, usage: Mapping[str, Any], at: float | None
    ) -> Price:
        v = self.version_at(at)
        if v is None:
            return Price(None, NO_VERSION, "unknown")
        if usage:
            return _priced(v, model, provider, shape, usage)
        key = (v.version, v.effective_at, provider, model, shape)
        listed = self._listed.get(key)
        if listed is None:
            listed = _priced(v, model, provider, shape, usage)
            if len(self._listed) < _LISTED_MAX:  # shapes are few; a flood of odd ones is not kept
                self._listed[key] = listed
        return listed


def _priced(
    v: PriceVersion, model: str, provider: str, shape: Shape, usage: Mapping[str, Any]
) -> Price:
    """The list (or ``usage``) price of one (provider, model) at version ``v``."""
    rule = v.rules.get((provider, model))
    if rule is None:
        return Price(None, v.version, "unknown")
    if rule.tokens is not None and usage:
        dollars = price_by_tokens(rule.tokens, usage)
        if dollars is not None:
            return Price(to_micros(dollars), v.version, "tokens")
    dollars = price_by_table(rule, shape, v.megapixel)
    if dollars is None:
        return Price(None, v.version, "unknown")
    return Price(to_micros(dollars), v.version, rule.basis)


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value


def _shape(req: CanonicalRequest, usage: Mapping[str, Any]) -> Shape:
    return Shape(
        width=_positive_int(usage.get("width")) or req.width,
        height=_positive_int(usage.get("height")) or req.height,
        quality=req.quality,
        images=_positive_int(usage.get("images")) or 1,
        input_images=len(req.images),
        high_fidelity=req.input_fidelity == "high",
    )


def _display_one(v: PriceVersion, rule: Rule | None) -> int | None:
    if rule is None:
        return None
    width, height = (int(x) for x in rule.default_size.split("x"))
    dollars = price_by_table(rule, Shape(width, height, rule.default_quality), v.megapixel)
    return None if dollars is None else to_micros(dollars)


# --- loading ---------------------------------------------------------------------------------


def load_price_table(path: Path | None = None) -> PriceTable:
    """The packaged table (``pricing/prices.toml`` with every provider's ``prices.toml``), or the
    one complete file at ``path``; ConfigError when invalid."""
    where = str(path) if path else "pixelpipe/pricing/prices.toml"
    try:
        if path is None:
            text = resources.files("pixelpipe.pricing").joinpath("prices.toml").read_text()
        else:
            text = path.read_text()
        raw = tomllib.loads(text, parse_float=Decimal)
        versions = sorted(raw["versions"], key=lambda v: _epoch(v["effective"]))
        if path is None:
            versions = _with_provider_rules(versions, _provider_prices())
        parsed = tuple(_version(v) for v in versions)
    except (OSError, KeyError, tomllib.TOMLDecodeError, TypeError, ValueError) as exc:
        raise ConfigError(f"price table {where} could not be loaded: {exc!r}") from exc
    if not parsed:
        raise ConfigError(f"price table {where} has no [[versions]]")
    return PriceTable(parsed)


ProviderPrices = dict[str, tuple[str, dict[str, Any]]]  # provider -> (file, version -> rules)


def _provider_prices() -> ProviderPrices:
    return {
        provider: (str(file), tomllib.loads(file.read_text(), parse_float=Decimal)["versions"])
        for provider, file in provider_files("prices.toml")
    }


def _with_provider_rules(
    versions: list[dict[str, Any]], prices: ProviderPrices
) -> list[dict[str, Any]]:
    """Each version with each provider's rules under ``models.<provider>``: those the provider
    lists for it, else those of the latest earlier version it lists (rules carry forward)."""
    names = {str(v["version"]) for v in versions}
    for file, by_version in prices.values():
        unknown = sorted(set(by_version) - names)
        if unknown:
            raise ValueError(f"{file} prices version(s) {unknown} that prices.toml does not list")
    merged, current = [], {provider: None for provider in prices}
    for v in versions:
        models = dict(v.get("models", {}))
        for provider, (file, by_version) in prices.items():
            current[provider] = by_version.get(str(v["version"]), current[provider])
            if current[provider] is None:
                continue
            if provider in models:
                raise ValueError(f"{provider}'s prices are in both prices.toml and {file}")
            models[provider] = current[provider]
        merged.append({**v, "models": models})
    return merged


def _epoch(value: Any) -> float:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    raise ValueError(f"effective must be a TOML date or datetime, not {value!r}")


def _usd(value: Any) -> Decimal:
    amount = Decimal(str(value))  # ints and (parse_float=Decimal) floats
    if amount < 0:
        raise ValueError(f"negative price {value!r}")
    return amount


def _version(raw: Mapping[str, Any]) -> PriceVersion:
    rules = {
        (provider, model): _rule(provider, model, spec)
        for provider, models in raw.get("models", {}).items()
        for model, spec in models.items()
    }
    storage = {
        backend: (to_micros(_usd(s["gb_month_usd"])), to_micros(_usd(s["egress_gb_usd"])))
        for backend, s in raw.get("storage", {}).items()
    }
    return PriceVersion(
        version=str(raw["version"]),
        effective_at=_epoch(raw["effective"]),
        megapixel=int(raw.get("megapixel", 1_000_000)),
        gigabyte=int(raw.get("gigabyte", 1 << 30)),
        rules=rules,
        storage=storage,
    )


def _rule(provider: str, model: str, spec: Mapping[str, Any]) -> Rule:
    basis = spec["basis"]
    if basis not in BASES:
        raise ValueError(f"{provider}/{model}: basis {basis!r} is not one of {', '.join(BASES)}")
    table = {
        quality: {size: _usd(p) for size, p in _sizes(provider, model, sizes).items()}
        for quality, sizes in spec.get("table", {}).items()
    }
    rule = Rule(
        basis=cast(Basis, basis),
        usd=_usd(spec["usd"]) if "usd" in spec else None,
        usd_with_images=_usd(spec["usd_with_images"]) if "usd_with_images" in spec else None,
        table=table,
        tokens=_tokens(spec["tokens"]) if "tokens" in spec else None,
        default_quality=spec.get("default_quality"),
        default_size=str(spec.get("default_size", "1024x1024")),
    )
    _check_rule(provider, model, rule)
    return rule


def _sizes(provider: str, model: str, sizes: Mapping[str, Any]) -> Mapping[str, Any]:
    bad = [s for s in sizes if not _SIZE.match(s)]
    if bad:
        raise ValueError(f"{provider}/{model}: sizes must look like 1024x1024, not {bad}")
    return sizes


def _tokens(raw: Mapping[str, Any]) -> TokenRates:
    return TokenRates(
        text_input=_usd(raw["text_input_per_m_usd"]),
        image_input=_usd(raw["image_input_per_m_usd"]),
        image_output=_usd(raw["image_output_per_m_usd"]),
        input_image_tokens=int(raw.get("input_image_tokens", 0)),
        high_fidelity_tokens=int(raw.get("high_fidelity_tokens", 0)),
    )


def _check_rule(provider: str, model: str, rule: Rule) -> None:
    if rule.basis in ("per_image", "per_megapixel") and rule.usd is None:
        raise ValueError(f"{provider}/{model}: basis {rule.basis} needs usd = <price>")
    if rule.basis == "quality_size" and rule.default_quality not in rule.table:
        raise ValueError(f"{provider}/{model}: default_quality must name a table.<quality>")
    if not _SIZE.match(rule.default_size):
        raise ValueError(f"{provider}/{model}: default_size must look like 1024x1024")
