"""The use-case tests' request helper; the ``svc`` fixture is ``tests/support/services.py``."""

from __future__ import annotations

from pixelpipe.intake import GenerationRequest


def body(prompt: str, **fields: object) -> GenerationRequest:
    defaults: dict[str, object] = {"model": "preview", "seed": 1, "size": "64x64"}
    return GenerationRequest.model_validate({"prompt": prompt, **defaults, **fields})
