"""pixelpipe: prompt → safety → budget → dedup → job → provider → storage → delivery → ledger.

Python API (see docs/python.md)::

    from pixelpipe import Client, Pipeline

    async with Client("http://127.0.0.1:8000") as client:  # a running server
        gen = await client.generate("a red fox", model="preview")

    async with Pipeline() as p:  # in this process (embedded SQLite + local disk by default)
        result = await p.generate("a red fox", model="preview")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pixelpipe.version import __version__

__all__ = ["Client", "GenerationResult", "Pipeline", "__version__"]

if TYPE_CHECKING:
    from pixelpipe.client import Client
    from pixelpipe.pipeline import GenerationResult, Pipeline

_LAZY = {
    "Client": "pixelpipe.client",
    "Pipeline": "pixelpipe.pipeline",
    "GenerationResult": "pixelpipe.pipeline",
}


def __getattr__(name: str) -> Any:
    """Import the API classes on first use (``import pixelpipe`` stays cheap for the CLI)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pixelpipe' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
