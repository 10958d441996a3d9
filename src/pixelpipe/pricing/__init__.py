"""Pricing as data: versioned price tables (``prices.toml``) -> integer micro-dollar prices."""

from pixelpipe.pricing.rules import Rule, Shape, TokenRates, billed_megapixels, to_micros
from pixelpipe.pricing.table import NO_VERSION, PriceTable, PriceVersion, load_price_table

__all__ = [
    "NO_VERSION",
    "PriceTable",
    "PriceVersion",
    "Rule",
    "Shape",
    "TokenRates",
    "billed_megapixels",
    "load_price_table",
    "to_micros",
]
