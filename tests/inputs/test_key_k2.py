"""The content key of a request with image inputs is k2; without inputs it is k1, unchanged."""

from __future__ import annotations

import dataclasses
import hashlib
import re

import orjson

from pixelpipe.intake import CanonicalRequest
from pixelpipe.key import content_key

BASE = CanonicalRequest(
    model="preview", prompt="a red fox", seed=42, width=64, height=64, format="webp", steps=4
)
IMG_A = "sha256:" + "a" * 64
IMG_B = "sha256:" + "b" * 64


def test_k1_keys_are_byte_identical_to_before() -> None:
    # the identity JSON exactly as k1 always hashed it: no images/mask/strength fields
    identity = {
        "v": "k1",
        "model": "preview",
        "prompt": "a red fox",
        "negative_prompt": None,
        "seed": 42,
        "width": 64,
        "height": 64,
        "format": "webp",
        "quality": None,
        "steps": 4,
        "guidance": None,
    }
    expected = hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert content_key(BASE) == f"k1:{expected}"


def test_a_request_with_inputs_is_k2_and_every_input_field_counts() -> None:
    edit = dataclasses.replace(BASE, images=(IMG_A,))
    key = content_key(edit)
    assert re.fullmatch(r"k2:[0-9a-f]{64}", key)
    assert content_key(dataclasses.replace(edit)) == key  # stable
    variants = [
        dataclasses.replace(edit, images=(IMG_B,)),
        dataclasses.replace(edit, images=(IMG_A, IMG_B)),
        dataclasses.replace(edit, images=(IMG_B, IMG_A)),
        dataclasses.replace(edit, mask=IMG_B),
        dataclasses.replace(edit, strength=0.5),
        dataclasses.replace(edit, prompt="a blue fox"),
    ]
    keys = {content_key(v) for v in variants}
    assert len(keys) == len(variants) and key not in keys
    assert key != content_key(BASE)
