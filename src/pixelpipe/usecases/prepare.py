"""Stages 1–2 (intake, safety), shared by :mod:`.submit` and :mod:`.estimate`."""

from __future__ import annotations

from pixelpipe.intake import CanonicalRequest, GenerationRequest, canonicalize
from pixelpipe.safety import check_prompt
from pixelpipe.security.webhook_destinations import check_webhook_url
from pixelpipe.services import Services


def prepare(svc: Services, body: GenerationRequest) -> CanonicalRequest:
    """Intake and safety. Raises before anything is written or spent."""
    req = canonicalize(body, svc.catalog, max_prompt_chars=svc.settings.max_prompt_chars)
    check_prompt(req.prompt, svc.rules)
    if req.negative_prompt:
        check_prompt(req.negative_prompt, svc.rules, field="negative_prompt")
    if body.webhook is not None:
        check_webhook_url(body.webhook, svc.settings)  # the rule its delivery will apply
    return req
