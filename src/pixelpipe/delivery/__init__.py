"""Stage 12 — delivery: URLs for stored images (public, presigned, or app-signed)."""

from __future__ import annotations

from pixelpipe.delivery.delivery import Delivery
from pixelpipe.delivery.signing import expiry_for, sign, verify

__all__ = ["Delivery", "expiry_for", "sign", "verify"]
