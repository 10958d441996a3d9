"""The workflow digest in the content key: only for a model backed by a workflow, so that every
other model's key stays byte-identical (ADR 0002, addendum)."""

from __future__ import annotations

import dataclasses

from pixelpipe.intake import CanonicalRequest
from pixelpipe.key import content_key

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
NEGATIVE = CanonicalRequest(
    model="sdxl-house",
    prompt="a red fox",
    seed=7,
    width=1344,
    height=768,
    format="png",
    negative_prompt="blur",
)


def test_keys_without_a_workflow_are_the_keys_k1_always_gave() -> None:
    # computed by the key function before workflows existed: a change here re-keys every image
    assert (
        content_key(BASE) == "k1:d5cfb1b4c7ce21946f6d0723370d1747f38a0b3d6ae58a8cd08a82263d042253"
    )
    assert (
        content_key(NEGATIVE)
        == "k1:c7ebea638dadb8866bc1cb54d6712d507bc481eaf083b3d9ff641fc9bc0a022b"
    )


def test_the_workflow_digest_changes_the_key() -> None:
    one = dataclasses.replace(BASE, workflow_hash="a" * 64)
    other = dataclasses.replace(BASE, workflow_hash="b" * 64)
    assert len({content_key(BASE), content_key(one), content_key(other)}) == 3
    assert content_key(one).startswith("k1:")


def test_the_stored_request_has_the_digest_only_when_there_is_one() -> None:
    assert "workflow_hash" not in BASE.to_dict()
    with_workflow = dataclasses.replace(BASE, workflow_hash="c" * 64)
    assert with_workflow.to_dict()["workflow_hash"] == "c" * 64
    assert CanonicalRequest.from_dict(with_workflow.to_dict()) == with_workflow
    assert CanonicalRequest.from_dict(BASE.to_dict()) == BASE
