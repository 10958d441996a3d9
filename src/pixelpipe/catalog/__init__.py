"""The model catalog: which models exist, who serves them, and their parameter limits (data)."""

from pixelpipe.catalog.catalog import Catalog, ModelSpec, NumericRange, SizeRange, load_catalog

__all__ = ["Catalog", "ModelSpec", "NumericRange", "SizeRange", "load_catalog"]
