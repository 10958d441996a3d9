"""What a generation would cost: intake, safety, provider choice and price; nothing is spent."""

from __future__ import annotations

from dataclasses import dataclass

from pixelpipe.intake import CanonicalRequest, GenerationRequest
from pixelpipe.pricing.price import Price
from pixelpipe.services import Services
from pixelpipe.usecases.prepare import prepare


@dataclass(frozen=True, slots=True)
class Estimate:
    request: CanonicalRequest
    provider: str
    price: Price


def estimate(svc: Services, body: GenerationRequest) -> Estimate:
    req = prepare(svc, body)
    provider = svc.gate.choose(svc.catalog.get(req.model), preferred=body.provider)
    return Estimate(req, provider, svc.prices.estimate(req, provider))
