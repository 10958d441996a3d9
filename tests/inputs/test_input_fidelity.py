"""An edit's ``input_fidelity`` (OpenAI's low / high): accepted only where the model has it, part
of the k2 key only when given, and counted in the estimate with the edit's input images."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime

import orjson
import pytest

from pixelpipe.catalog import load_catalog
from pixelpipe.errors import InvalidRequest
from pixelpipe.intake import CanonicalRequest, canonicalize, new_request
from pixelpipe.key import content_key
from pixelpipe.pricing import load_price_table
from pixelpipe.pricing.price import Price

CATALOG = load_catalog()
UPLOAD = "upl_" + "a" * 64
DIGEST = "sha256:" + "a" * 64
AT = datetime(2026, 6, 1, tzinfo=UTC).timestamp()


def edit(model: str = "gpt-image-1", **kw: object) -> CanonicalRequest:
    body = new_request("make it dusk", model=model, seed=7, images=[UPLOAD], **kw)
    return canonicalize(body, CATALOG, inputs={UPLOAD: DIGEST})


def test_a_k2_key_without_fidelity_is_byte_identical_to_before() -> None:
    req = edit()
    identity = {
        "v": "k2",
        "model": "gpt-image-1",
        "prompt": "make it dusk",
        "negative_prompt": None,
        "seed": 7,
        "width": 1024,
        "height": 1024,
        "format": "png",
        "quality": "medium",
        "steps": None,
        "guidance": None,
        "images": [DIGEST],
        "mask": None,
        "strength": None,
    }
    expected = hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert content_key(req) == f"k2:{expected}"
    assert "input_fidelity" not in req.to_dict()


def test_fidelity_is_part_of_the_request_and_of_its_key() -> None:
    low, high, unset = edit(input_fidelity="low"), edit(input_fidelity="high"), edit()
    assert (low.input_fidelity, high.input_fidelity) == ("low", "high")
    assert high.to_dict()["input_fidelity"] == "high"
    assert CanonicalRequest.from_dict(high.to_dict()) == high  # survives the job row
    assert len({content_key(low), content_key(high), content_key(unset)}) == 3


def test_fidelity_is_refused_where_the_model_has_no_such_setting() -> None:
    with pytest.raises(InvalidRequest) as err:
        edit("preview", input_fidelity="high")
    assert err.value.extra["field"] == "input_fidelity"
    assert "preview has no input_fidelity setting" in err.value.detail
    assert "gpt-image-1" in err.value.detail
    text_only = new_request("x", model="gpt-image-1", input_fidelity="high")
    with pytest.raises(InvalidRequest, match="needs at least one input image"):
        canonicalize(text_only, CATALOG)
    with pytest.raises(InvalidRequest, match="input_fidelity"):
        new_request("x", model="gpt-image-1", images=[UPLOAD], input_fidelity="extreme")


@pytest.mark.parametrize(
    ("images", "fidelity", "micros"),
    [
        (0, None, 42_000),  # the table's medium 1024x1024 image
        (1, None, 42_000 + 5_810),  # + 581 image tokens at $10 / 1M
        (2, "low", 42_000 + 2 * 5_810),
        (2, "high", 42_000 + 2 * (5_810 + 62_400)),  # + 6,240 high-fidelity tokens each
    ],
)
def test_the_estimate_counts_each_input_image_at_its_most_tokens(
    images: int, fidelity: str | None, micros: int
) -> None:
    req = dataclasses.replace(
        edit(), images=(DIGEST,) * images, input_fidelity=fidelity if images else None
    )
    assert load_price_table().estimate(req, "openai", at=AT) == Price(
        micros, "2026-01", "quality_size"
    )


def test_the_catalog_says_which_models_have_fidelity() -> None:
    havers = {m.name for m in CATALOG.models.values() if m.input_fidelities}
    assert havers == {"gpt-image-1", "gpt-image-1.5"}
    assert CATALOG.get("gpt-image-1").input_fidelities == ("low", "high")
