"""Pricing rules: how one (provider, model) turns a request (and usage) into dollars.

Every function here works in exact :class:`~decimal.Decimal` dollars and returns ``None`` when the
price is unknown (a size or quality missing from the table): the caller records that as *unpriced*,
never as $0. Rounding to integer micro-dollars happens once, in :func:`to_micros`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pixelpipe.pricing.price import MICROS

Basis = Literal["per_image", "per_megapixel", "quality_size", "free"]
BASES: tuple[str, ...] = ("per_image", "per_megapixel", "quality_size", "free")
PER_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class TokenRates:
    """Dollars per one million tokens (OpenAI GPT image models)."""

    text_input: Decimal
    image_input: Decimal
    image_output: Decimal
    # what an estimate counts for each input image of an edit (before the run, only the count
    # is known): at most this many tokens at the default fidelity, plus the extra tokens of
    # ``input_fidelity = "high"``; the actual price uses the tokens the provider reports
    input_image_tokens: int = 0
    high_fidelity_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Rule:
    basis: Basis
    usd: Decimal | None = None  # per_image, per_megapixel
    # the same unit when the request has input images, where the provider's image-to-image
    # endpoint is priced apart (fal's FLUX dev); None: ``usd`` either way
    usd_with_images: Decimal | None = None
    table: Mapping[str, Mapping[str, Decimal]] = field(default_factory=dict)  # quality -> size -> $
    tokens: TokenRates | None = None
    default_quality: str | None = None
    default_size: str = "1024x1024"


@dataclass(frozen=True, slots=True)
class Shape:
    """What a price depends on: the output size, the quality tier and the number of images."""

    width: int
    height: int
    quality: str | None = None
    images: int = 1
    input_images: int = 0  # an edit's input images (priced by token where the rule has rates)
    high_fidelity: bool = False

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def to_micros(usd: Decimal) -> int:
    """Dollars to integer micro-dollars, half-up (the one rounding step)."""
    return int((usd * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def billed_megapixels(width: int, height: int, megapixel: int) -> int:
    """Whole megapixels, rounded up: 1344x768 = 1.03 MP -> 2 MP (at 1,000,000 pixels per MP)."""
    return max(1, math.ceil(width * height / megapixel))


def price_by_table(rule: Rule, shape: Shape, megapixel: int) -> Decimal | None:
    """The list price of ``shape`` under ``rule`` (the estimate, and the actual without usage)."""
    if rule.basis == "free":
        return Decimal(0)
    usd = rule.usd_with_images if shape.input_images and rule.usd_with_images else rule.usd
    if rule.basis == "per_image" and usd is not None:
        return usd * shape.images
    if rule.basis == "per_megapixel" and usd is not None:
        return usd * billed_megapixels(shape.width, shape.height, megapixel) * shape.images
    if rule.basis == "quality_size":
        per_size = rule.table.get(shape.quality or rule.default_quality or "", {})
        unit = per_size.get(shape.size)
        return None if unit is None else (unit + input_images_usd(rule, shape)) * shape.images
    return None


def input_images_usd(rule: Rule, shape: Shape) -> Decimal:
    """What an edit's input images add before the run: each at the most tokens it can count
    (:attr:`TokenRates.input_image_tokens`, plus the high-fidelity extra), at the image rate."""
    rates = rule.tokens
    if rates is None or shape.input_images == 0:
        return Decimal(0)
    each = rates.input_image_tokens + (rates.high_fidelity_tokens if shape.high_fidelity else 0)
    return shape.input_images * each * rates.image_input / PER_MILLION


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def price_by_tokens(rates: TokenRates, usage: Mapping[str, Any]) -> Decimal | None:
    """Cost from an OpenAI ``usage`` object; None when it carries no usable token counts.

    Input tokens are split by ``input_tokens_details`` (text / image); without details they are all
    text. Output tokens are all billed at the image-output rate (the output is an image).
    """
    total_in = _count(usage.get("input_tokens"))
    total_out = _count(usage.get("output_tokens"))
    if total_in is None or total_out is None:
        return None
    details = usage.get("input_tokens_details")
    details = details if isinstance(details, Mapping) else {}
    image_in = _count(details.get("image_tokens")) or 0
    text_in = _count(details.get("text_tokens"))
    text_in = max(total_in - image_in, 0) if text_in is None else text_in
    dollars = (
        text_in * rates.text_input + image_in * rates.image_input + total_out * rates.image_output
    )
    return dollars / PER_MILLION
