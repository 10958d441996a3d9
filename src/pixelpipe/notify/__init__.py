"""Completion notifications: what happens when a job reaches a terminal state.

:class:`~pixelpipe.notify.hooks.CompletionHooks` is ``Services.completion_hooks``; the worker (and
the use cases, for cache hits, cancels and timeouts) calls ``job_finished(job)``. It does two
cheap things and returns — it never blocks the pipeline:

1. publishes ``done:<job id>`` on the notifier, so callers waiting for a result (the
   OpenAI-compatible endpoint) wake up without polling;
2. for a job with a ``webhook_url``, writes one row to the ``completion_webhooks`` outbox.

A background loop (:class:`~pixelpipe.notify.deliver.WebhookDeliverer`, started with the embedded
worker and by ``pixelpipe worker``) POSTs each outbox row, signed with the Standard Webhooks scheme
(:mod:`pixelpipe.notify.signing`), and retries on failure with backoff for about three days. The
``webhook-id`` (``msg_<job id>``) is the same on every attempt, so receivers can deduplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pixelpipe.notify.hooks import CompletionHooks, done_channel
    from pixelpipe.notify.signing import sign, webhook_secret

__all__ = ["CompletionHooks", "done_channel", "sign", "webhook_secret"]
_LAZY = {
    "CompletionHooks": "pixelpipe.notify.hooks",
    "done_channel": "pixelpipe.notify.hooks",
    "sign": "pixelpipe.notify.signing",
    "webhook_secret": "pixelpipe.notify.signing",
}


def __getattr__(name: str) -> Any:
    """Import on first use: ``pixelpipe webhook-secret`` needs the signing module, not the outbox
    (which loads SQLAlchemy)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pixelpipe.notify' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
