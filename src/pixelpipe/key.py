"""Stage 4 — the content key: the identity of an image, defined once.

``content_key(req)`` is ``"k1:" + sha256(canonical JSON)`` over the canonical request. It is the
dedup key (cache and single-flight) and the storage key is derived from it. Why each field is
part of it:

- ``model``: different models draw different pictures.
- ``prompt`` (normalised: NFC, whitespace collapsed) and ``negative_prompt``: the content asked for;
  normalising means trivially different spellings of one prompt are paid for once.
- ``seed``: the same prompt with another seed is another picture (a random seed is drawn *before*
  keying, so unseeded requests never collide).
- ``width``/``height``: another size is another picture (``aspect_ratio`` is derived from them and
  left out so that "16:9" and "1344x768" are the same request).
- ``format``: the stored bytes differ, so the object differs.
- ``quality``, ``steps``, ``guidance``: model parameters that change the output (and the price).
- ``workflow`` — only for a model backed by a ComfyUI workflow, and only then present in the
  JSON: the workflow's digest, so that an edited workflow never serves an image of the old one.
  Absent for every other model, which keeps their keys byte-identical (ADR 0002, addendum).
- ``images``, ``mask``, ``strength`` — only for a request with image inputs (an edit, issue 16):
  the inputs' content digests in order, the mask's, and the image-to-image strength. Such a key
  is version ``k2`` (``INPUTS_KEY_VERSION``); a request without inputs keeps its ``k1`` key
  byte-identical (ADR 0002, addendum 2). An edit's ``input_fidelity`` joins them only when given,
  so the k2 keys of edits without it are unchanged (addendum 3).

Not part of it: the provider (failover between providers serving one model must not break dedup),
the caller, the group label, the webhook. Changing what goes in means bumping ``KEY_VERSION``, which
makes every old key a miss — never reinterpret an existing version.
"""

from __future__ import annotations

import hashlib

import orjson

from pixelpipe.intake import CanonicalRequest

KEY_VERSION = "k1"
INPUTS_KEY_VERSION = "k2"  # a request with image inputs (ADR 0002, addendum 2)

_EXT = {"webp": "webp", "png": "png", "jpeg": "jpg"}
CONTENT_TYPES = {"webp": "image/webp", "png": "image/png", "jpeg": "image/jpeg"}


def content_key(req: CanonicalRequest) -> str:
    version = INPUTS_KEY_VERSION if _has_inputs(req) else KEY_VERSION
    identity: dict[str, object] = {
        "v": version,
        "model": req.model,
        "prompt": req.prompt,
        "negative_prompt": req.negative_prompt,
        "seed": req.seed,
        "width": req.width,
        "height": req.height,
        "format": req.format,
        "quality": req.quality,
        "steps": req.steps,
        "guidance": req.guidance,
    }
    if req.workflow_hash is not None:
        identity["workflow"] = req.workflow_hash
    if version == INPUTS_KEY_VERSION:
        identity["images"] = list(req.images)
        identity["mask"] = req.mask
        identity["strength"] = req.strength
        if req.input_fidelity is not None:  # keys of edits without it unchanged
            identity["input_fidelity"] = req.input_fidelity
    digest = hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{version}:{digest}"


def _has_inputs(req: CanonicalRequest) -> bool:
    return bool(req.images) or req.mask is not None or req.strength is not None


def key_digest(key: str) -> str:
    return key.split(":", 1)[1]


def storage_key(key: str, model: str, fmt: str) -> str:
    """Sharded object name: ``<model>/<2 hex>/<hash>.<ext>``."""
    digest = key_digest(key)
    return f"{model}/{digest[:2]}/{digest}.{_EXT[fmt]}"


def thumbnail_key(key: str, model: str) -> str:
    digest = key_digest(key)
    return f"thumbs/{model}/{digest[:2]}/{digest}.webp"
