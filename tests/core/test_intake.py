"""Intake: every validation rule returns its documented code and field, nothing else passes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pixelpipe.catalog import load_catalog
from pixelpipe.errors import InvalidRequest
from pixelpipe.intake import SEED_MAX, GenerationRequest, canonicalize

CATALOG = load_catalog()


def canon(**kw: object):  # type: ignore[no-untyped-def]
    return canonicalize(GenerationRequest(**kw), CATALOG)  # type: ignore[arg-type]


def test_defaults_are_resolved_explicitly() -> None:
    req = canon(prompt="  a  red\tfox ", model="flux-schnell", seed=7)
    assert req.prompt == "a red fox"
    assert (req.width, req.height, req.aspect_ratio) == (1024, 1024, "1:1")
    assert req.format == "webp"
    assert req.steps == 4
    assert req.guidance is None


def test_random_seed_is_drawn_within_32_bits() -> None:
    seeds = {canon(prompt="x").seed for _ in range(20)}
    assert len(seeds) > 1
    assert all(0 <= s <= SEED_MAX for s in seeds)


def test_aspect_ratio_and_size_are_the_same_request() -> None:
    a = canon(prompt="x", model="flux-dev", aspect_ratio="16:9", seed=1)
    b = canon(prompt="x", model="flux-dev", size="1344x768", seed=1)
    assert (a.width, a.height, a.aspect_ratio) == (b.width, b.height, b.aspect_ratio)


@pytest.mark.parametrize(
    ("kw", "field", "needle"),
    [
        ({"prompt": "   "}, "prompt", "empty"),
        ({"prompt": "x" * 1001}, "prompt", "limit is 1000"),
        ({"prompt": "bad\x07bell"}, "prompt", "control characters"),
        ({"prompt": "x", "model": "nope"}, "model", "unknown model"),
        ({"prompt": "x", "model": "flux-schnell", "size": "999x999"}, "size", "not offered"),
        ({"prompt": "x", "size": "big"}, "size", "WIDTHxHEIGHT"),
        ({"prompt": "x", "size": "64x64", "aspect_ratio": "1:1"}, "size", "not both"),
        (
            {"prompt": "x", "model": "flux-schnell", "aspect_ratio": "7:1"},
            "aspect_ratio",
            "use one of",
        ),
        ({"prompt": "x", "seed": -1}, "seed", "between 0"),
        ({"prompt": "x", "seed": SEED_MAX + 1}, "seed", "between 0"),
        ({"prompt": "x", "model": "flux-schnell", "steps": 9}, "steps", "between 1 and 4"),
        ({"prompt": "x", "model": "flux-schnell", "guidance": 3.0}, "guidance", "does not take"),
        (
            {"prompt": "x", "model": "gpt-image-1", "quality": "ultra"},
            "quality",
            "low, medium, high",
        ),
        ({"prompt": "x", "model": "flux-dev", "quality": "hd"}, "quality", "no quality tiers"),
        (
            {"prompt": "x", "model": "flux-dev", "negative_prompt": "blur"},
            "negative_prompt",
            "does not support",
        ),
        (
            {"prompt": "x", "model": "dall-e-3", "format": "webp", "size": "512x512"},
            "size",
            "not offered",
        ),
        ({"prompt": "x", "n": 2}, "n", "n must be 1"),
        ({"prompt": "x", "model": "flux-dev", "provider": "openai"}, "provider", "served by"),
    ],
)
def test_invalid_requests_name_the_field_and_the_fix(
    kw: dict[str, object], field: str, needle: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        canon(**kw)
    assert info.value.code == "invalid_request"
    assert info.value.status == 422
    assert info.value.extra["field"] == field
    assert needle in info.value.detail


def test_unknown_fields_are_rejected_not_ignored() -> None:
    with pytest.raises(ValidationError) as info:
        GenerationRequest(prompt="x", colour="red")  # type: ignore[call-arg]
    assert "extra_forbidden" in str(info.value)


def test_bad_format_literal_is_rejected() -> None:
    with pytest.raises(ValidationError):
        GenerationRequest(prompt="x", format="gif")  # type: ignore[arg-type]


def test_custom_size_on_preview_respects_bounds() -> None:
    assert canon(prompt="x", size="64x64").width == 64
    with pytest.raises(InvalidRequest):
        canon(prompt="x", size="60x64")
    with pytest.raises(InvalidRequest):
        canon(prompt="x", size="4096x4096")
