"""Pricing as data: versioned price tables (``prices.toml``) -> integer micro-dollar prices."""

from pixelpipe.pricing.gpu_time import GpuHistory, GpuPricing, gpu_micros
from pixelpipe.pricing.rules import Rule, Shape, TokenRates, billed_megapixels, to_micros
from pixelpipe.pricing.table import NO_VERSION, PriceTable, PriceVersion, load_price_table

__all__ = [
    "NO_VERSION",
    "GpuHistory",
    "GpuPricing",
    "PriceTable",
    "PriceVersion",
    "Rule",
    "Shape",
    "TokenRates",
    "billed_megapixels",
    "gpu_micros",
    "load_price_table",
    "to_micros",
]
