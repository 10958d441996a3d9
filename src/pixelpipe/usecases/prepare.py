"""Stages 1–2 (intake, safety), shared by :mod:`.submit` and :mod:`.estimate`; and the prompt's
moderation (:func:`prepare_checked`, submissions only), before anything is written or spent."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from pixelpipe.errors import ModerationError, SafetyRejected
from pixelpipe.intake import CanonicalRequest, GenerationRequest, canonicalize
from pixelpipe.moderation.base import ModerationEvent, Source
from pixelpipe.moderation.policy import flagged, rules_for
from pixelpipe.safety import check_prompt
from pixelpipe.security.webhook_destinations import check_webhook_url
from pixelpipe.services import Services
from pixelpipe.usecases.inputs import upload_digests

log = logging.getLogger(__name__)


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


async def prepare_checked(
    svc: Services,
    body: GenerationRequest,
    inputs: Mapping[str, str] | None,
    api_key_id: str | None,
) -> CanonicalRequest:
    """:func:`prepare`, then the prompt's moderation when a provider is configured. A refused
    prompt is logged for the reports (per key and day) and raises SafetyRejected."""
    try:
        req = prepare(svc, body, inputs)
    except SafetyRejected as exc:
        category = str(exc.extra.get("category") or exc.reason)
        await _log_refusal(svc, api_key_id, "blocklist", (category,))
        raise
    await moderate_prompt(svc, req.prompt, api_key_id)
    return req


async def moderate_prompt(svc: Services, prompt: str, api_key_id: str | None) -> None:
    """Refuse ``prompt`` (SafetyRejected, reason ``moderation``) when the moderation provider
    flags it under the key's thresholds. Provider down: fail closed (its error, nothing spent)
    or open (let through, logged), as ``PIXELPIPE_MODERATION_ON_ERROR`` says."""
    moderator = svc.moderation.prompts
    if moderator is None:
        return
    settings = svc.moderation.settings
    try:
        verdict = await moderator.text(prompt)
    except ModerationError as exc:
        if settings.on_error == "closed":
            raise
        log.warning("prompt let through unmoderated (fail-open): %s", exc.detail)
        return
    hits = flagged(verdict, rules_for(settings, api_key_id))
    if hits:
        await _log_refusal(svc, api_key_id, "moderation", hits)
        raise SafetyRejected(
            f"the prompt was flagged by moderation ({', '.join(hits)}), which this server "
            "does not generate; describe a different picture",
            reason="moderation",
            categories=list(hits),
            field="prompt",
        )


async def _log_refusal(
    svc: Services, api_key_id: str | None, source: Source, categories: tuple[str, ...]
) -> None:
    event = ModerationEvent("prompt", "refused", source, api_key_id, categories, time.time())
    await svc.moderation.log.add(event)
