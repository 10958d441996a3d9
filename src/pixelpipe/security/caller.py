"""Who is asking: the identity every use case is called with."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: an API key id (None when auth is off) and its budget scope."""

    key_id: str | None = None
    webhook_url: str | None = None  # the key's default completion webhook (a request's wins)
    admin: bool = False  # the key has the admin scope: it may act on every key's jobs
