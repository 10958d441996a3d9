"""Job-level retry schedule: exponential backoff with full jitter, honouring Retry-After."""

from __future__ import annotations

import random

from pixelpipe.errors import PixelpipeError, ProviderRateLimited, RateLimited

BASE_S = 1.0
CAP_S = 300.0


def backoff_s(attempt: int, *, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (1-based): full jitter over base·2^(attempt-1)."""
    ceiling = min(CAP_S, BASE_S * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def retry_delay_s(error: PixelpipeError, attempt: int) -> float:
    """The provider's Retry-After when it gave one (plus a little jitter), else backoff."""
    hinted = getattr(error, "retry_after", None)
    if isinstance(error, ProviderRateLimited | RateLimited) and hinted:
        return float(hinted) + random.uniform(0, 0.25 * float(hinted) + 0.05)
    return backoff_s(attempt)
