"""The content key: what is part of an image's identity and what is not."""

from __future__ import annotations

import dataclasses
import re

from pixelpipe.intake import CanonicalRequest
from pixelpipe.key import content_key, storage_key, thumbnail_key

BASE = CanonicalRequest(
    model="flux-dev",
    prompt="a red fox",
    seed=42,
    width=1024,
    height=1024,
    format="webp",
    aspect_ratio="1:1",
    steps=28,
    guidance=3.0,
)


def test_key_is_versioned_and_stable() -> None:
    key = content_key(BASE)
    assert re.fullmatch(r"k1:[0-9a-f]{64}", key)
    assert content_key(dataclasses.replace(BASE)) == key


def test_every_identity_field_changes_the_key() -> None:
    changes = {
        "model": "flux-schnell",
        "prompt": "a blue fox",
        "seed": 43,
        "width": 1344,
        "height": 768,
        "format": "png",
        "steps": 20,
        "guidance": 2.5,
        "quality": "hd",
        "negative_prompt": "blur",
    }
    keys = {content_key(dataclasses.replace(BASE, **{f: v})) for f, v in changes.items()}
    assert len(keys) == len(changes)
    assert content_key(BASE) not in keys


def test_aspect_ratio_label_is_not_identity() -> None:
    assert content_key(dataclasses.replace(BASE, aspect_ratio=None)) == content_key(BASE)


def test_storage_key_is_sharded_by_model_and_prefix() -> None:
    key = content_key(BASE)
    digest = key.split(":")[1]
    assert storage_key(key, "flux-dev", "webp") == f"flux-dev/{digest[:2]}/{digest}.webp"
    assert storage_key(key, "flux-dev", "jpeg").endswith(".jpg")
    assert thumbnail_key(key, "flux-dev").startswith("thumbs/flux-dev/")
