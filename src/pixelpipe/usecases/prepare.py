"""Stages 1–2 (intake, safety), shared by :mod:`.submit` and :mod:`.estimate`."""

from __future__ import annotations

from collections.abc import Mapping

from pixelpipe.intake import CanonicalRequest, GenerationRequest, canonicalize
from pixelpipe.safety import check_prompt
from pixelpipe.security.webhook_destinations import check_webhook_url
from pixelpipe.services import Services
from pixelpipe.usecases.inputs import upload_digests


def prepare(
    svc: Services, body: GenerationRequest, inputs: Mapping[str, str] | None = None
) -> CanonicalRequest:
    """Intake and safety. Raises before anything is written or spent. ``inputs``: the input
    references resolved to digests (:mod:`.inputs`); without, upload ids only (estimates)."""
    digests = upload_digests(body) if inputs is None else inputs
    req = canonicalize(
        body, svc.catalog, max_prompt_chars=svc.settings.max_prompt_chars, inputs=digests
    )
    check_prompt(req.prompt, svc.rules)
    if req.negative_prompt:
        check_prompt(req.negative_prompt, svc.rules, field="negative_prompt")
    if body.webhook is not None:
        check_webhook_url(body.webhook, svc.settings)  # the rule its delivery will apply
    return req
