"""Provider webhooks: verified by the provider's signature scheme, idempotent per delivery."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pixelpipe.api.deps import ServicesDep
from pixelpipe.webhooks import handle_provider_webhook

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post("/{provider}", responses={401: {"description": "Signature invalid"}})
async def provider_webhook(provider: str, request: Request, svc: ServicesDep) -> JSONResponse:
    """Receive a provider's completion webhook (Replicate: Standard Webhooks; fal: Ed25519)."""
    body = await request.body()
    query = dict(request.query_params)  # ?run=… names an orphaned run's job and attempt
    outcome = await handle_provider_webhook(svc, provider, dict(request.headers), body, query)
    return JSONResponse({"status": outcome})
