"""Every catalog model, on every hosted provider, for every size and format it offers, translates
into parameters the provider's documented schema accepts, and asks for the size intake promised."""

from __future__ import annotations

import pytest

from pixelpipe.fakes import fal_schema, replicate_schema
from pixelpipe.fakes.openai import _validate as openai_validate
from pixelpipe.providers.fal.client import fal_input
from pixelpipe.providers.fal.kontext import is_kontext, kontext_path
from pixelpipe.providers.openai.client import openai_body
from pixelpipe.providers.replicate.client import replicate_input

from .conftest import CATALOG, canon

CASES = [
    (spec.name, provider, model_id, ratio, fmt)
    for spec in CATALOG.models.values()
    for provider, model_id in spec.provider_ids.items()
    if provider != "preview"
    for ratio in spec.aspect_ratios
    for fmt in spec.formats
]


def test_every_hosted_model_is_covered() -> None:
    covered = {(c[0], c[1]) for c in CASES}
    assert ("flux-schnell", "fal") in covered and ("dall-e-3", "openai") in covered
    assert ("flux-kontext-pro", "replicate") in covered and ("flux-kontext-pro", "fal") in covered
    assert len(covered) == 11


@pytest.mark.parametrize(("model", "provider", "model_id", "ratio", "fmt"), CASES)
def test_translation_is_accepted_and_keeps_the_size(
    model: str, provider: str, model_id: str, ratio: str, fmt: str
) -> None:
    req = canon(model=model, aspect_ratio=ratio, format=fmt)
    if provider == "replicate":
        data = replicate_input(req, model_id)
        assert replicate_schema.validate(model_id, data) == []
        assert replicate_schema.output_size(model_id, data) == (req.width, req.height)
    elif provider == "fal":
        data = fal_input(req, model_id)
        endpoint = kontext_path(model_id, ()) if is_kontext(model_id) else model_id
        assert fal_schema.validate(endpoint, data) == []
        assert fal_schema.output_size(endpoint, data) == (req.width, req.height)
    else:
        body = openai_body(req, model_id)
        assert openai_validate(body)[0] == model_id
        assert body["size"] == f"{req.width}x{req.height}"
