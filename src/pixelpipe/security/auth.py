"""Who may call what: API-key authentication, scopes and per-key rate limits.

Every path under ``/v1/`` (and ``/metrics``) needs a key, except the ones that carry their own
proof: provider webhooks (signed by the provider) and image URLs (HMAC-signed or public by opt-in).
The web page shells, static files, health checks and the OpenAPI document carry no data and stay
open. Which scope a request needs follows from the path and method (:func:`required_scope`), so a
route added later is protected by default:

* ``admin``: ``/metrics``, ``/v1/usage`` (all keys), ``/v1/keys…``, ``/v1/budgets…``,
  ``/v1/admin…``;
* ``generate``: any other unsafe method under ``/v1/`` (POST generations, estimates, cancel, …);
* ``read``: any other ``GET``/``HEAD`` under ``/v1/``.

Auth is *off* (every request is the anonymous :class:`~pixelpipe.security.caller.Caller`) only
while all of these hold: the server binds a loopback address, no API key was ever created, the peer
is a loopback address and the request carries no proxy header (``Forwarded``, ``X-Forwarded-For``,
``X-Real-IP``) — a reverse proxy in front of a loopback bind does not open the API by accident.
Binding any other address without a key refuses to start (:mod:`.startup`).

"Was a key ever created?" fails closed (:class:`KeyExistence`): the answer is loaded while the app
starts, before the first request is served, and once a key exists it stays known (keys are revoked,
never deleted). While no key is known, every request that would be let in anonymously is decided by
a database query that *started after the request arrived*, so a key made by another process
(``pixelpipe keys create``, another API node) counts from the next request on. On a SQLite file
that query runs on the event loop's thread, never waiting for a lock (:mod:`.key_probe`); when it
cannot answer at once (or on PostgreSQL) it goes through a thread, and concurrent requests share
those queries (a burst costs at most two). A database error during that check answers 503, never
anonymous.

Keys are sent as ``Authorization: Bearer pp_<id>_<secret>`` (what the OpenAI SDKs send as well).
No cookie is ever set, so there is nothing for a cross-site request to ride on (no CSRF surface).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from pixelpipe.db import Database
from pixelpipe.errors import DatabaseUnavailable, Forbidden, RateLimited, Unauthorized
from pixelpipe.security import event_tokens
from pixelpipe.security.caller import Caller
from pixelpipe.security.key_probe import KeyProbe
from pixelpipe.security.keys import ApiKey, any_key, verify_key
from pixelpipe.security.startup import is_loopback
from pixelpipe.settings import Settings

Scope = Literal["read", "generate", "admin"]
CALLER_KEY = "pixelpipe.caller"  # where the middleware leaves the caller in the ASGI scope
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ADMIN_PREFIXES = ("/v1/usage", "/v1/keys", "/v1/budgets", "/v1/admin")
_PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")
log = logging.getLogger("pixelpipe.security")


def required_scope(method: str, path: str) -> Scope | None:
    """The scope a request needs, or None for an open path."""
    if path == "/metrics" or path.startswith("/metrics/"):
        return "admin"
    if not (path.startswith("/v1/") or path == "/v1"):
        return None  # pages, static files, health, OpenAPI document, public images (/i/)
    safe = method.upper() in _SAFE_METHODS
    if path.startswith("/v1/webhooks/") or (safe and path.startswith("/v1/images/")):
        return None  # signed by the provider / by us (POST /v1/images/generations is not open)
    if path.startswith(_ADMIN_PREFIXES):
        return "admin"
    if path.endswith("/event-token") and path.startswith("/v1/generations/"):
        return "read"  # a token to read one job's events (security/event_tokens.py)
    return "read" if safe else "generate"


@dataclass(frozen=True, slots=True)
class Decision:
    caller: Caller
    key: ApiKey | None = None


class Authenticator:
    """``app.state.auth``: decides who is calling (used by the middleware and ``get_caller``)."""

    def __init__(self, settings: Settings, *, limiter_storage: Storage | None = None) -> None:
        self.settings = settings
        self.bind_loopback = is_loopback(settings.host)
        self._storage = limiter_storage or MemoryStorage()
        self._limiter = MovingWindowRateLimiter(self._storage)
        self.keys = KeyExistence()

    async def start(self, db: Database) -> None:
        """Called by the app's lifespan before it serves: learn whether keys exist."""
        if self.bind_loopback:  # beyond loopback auth is always on: nothing to learn
            await self.keys.prime(db)

    def stop(self) -> None:
        """Called by the app's lifespan when it stops serving."""
        self.keys.close()

    # -- the public interface used by api.deps.get_caller --
    async def authenticate(self, request: Request) -> Caller:
        found = request.scope.get(CALLER_KEY)
        if isinstance(found, Caller):
            return found
        decision = await self.check(request.scope, scope_database(request.scope))
        return decision.caller

    # -- the whole decision for one request --
    async def check(self, scope: Mapping[str, Any], db: Database) -> Decision:
        """Raise Unauthorized / Forbidden / RateLimited, or return the caller."""
        method = str(scope.get("method", "GET"))
        path = str(scope.get("path", "/"))
        needed = required_scope(method, path)
        if needed is None:
            return Decision(Caller())
        if await self.auth_off(scope, db):
            return Decision(Caller())
        if (stream := event_tokens.presented(method, path, scope)) is not None:
            holder = await event_tokens.key_of(
                db, stream[1], stream[0], self.settings.signing_key(), time.time()
            )
            await self._rate_limit(holder)  # EventSource sends no header: the token stands for it
            return Decision(Caller(holder.id, webhook_url=holder.webhook_url), holder)
        presented = _bearer(scope)
        if presented is None:
            raise Unauthorized(
                "this server requires an API key: send `Authorization: Bearer pp_…` "
                "(an admin creates one with `pixelpipe keys create`)"
            )
        key = await verify_key(db, presented)
        if key is None:
            raise Unauthorized("the API key is not valid (check it was copied whole)")
        if key.revoked:
            raise Unauthorized("this API key was revoked; ask an admin for a new one")
        if not key.allows(needed):
            have = ", ".join(sorted(key.scopes))
            raise Forbidden(
                f"this API key lacks the {needed!r} scope needed for {method} {path} "
                f"(it has: {have})",
                required_scope=needed,
            )
        await self._rate_limit(key)
        caller = Caller(key.id, webhook_url=key.webhook_url, admin=key.allows("admin"))
        return Decision(caller, key)

    async def auth_off(self, scope: Mapping[str, Any], db: Database) -> bool:
        if not self.bind_loopback:
            return False
        client = scope.get("client")
        if client and not is_loopback(str(client[0])):
            return False
        headers = scope.get("headers") or []
        if any(name in _PROXY_HEADERS for name, _ in headers):
            return False
        # last: the only step that may ask the database
        return not await self.keys.exist(db)

    async def _rate_limit(self, key: ApiKey) -> None:
        if key.rpm <= 0:
            return
        item = RateLimitItemPerMinute(key.rpm)
        if await self._limiter.hit(item, "key", key.id):
            return
        stats = await self._limiter.get_window_stats(item, "key", key.id)
        wait = max(1.0, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            f"API key {key.id} is limited to {key.rpm} requests per minute; retry in {wait:g} s",
            retry_after=wait,
            retry_after_s=wait,
        )


class KeyExistence:
    """Whether any API key was ever created, answered fail-closed.

    ``True`` is sticky (keys are revoked, never deleted). While the answer is "no", a caller of
    :meth:`exist` gets the result of a query that started after it called. On a SQLite file that
    is the :class:`~pixelpipe.security.key_probe.KeyProbe`'s read, made right there on the event
    loop's thread (~10 µs; under load too: measured cheaper than sharing a threaded query, whose
    wait held every request of a burst back, docs/performance.md). When the probe cannot tell,
    or there is none (PostgreSQL), the query goes through a thread: when one is already running
    (it may have read the table before a key was committed), the caller waits for the next one,
    which every caller arriving meanwhile shares — at most two queries per burst.
    """

    def __init__(self) -> None:
        self.known = False
        self.queries = 0  # how many times the table was asked through a thread (tests)
        self.probe: KeyProbe | None = None  # asks on the calling thread (SQLite files)
        self._running: asyncio.Future[bool] | None = None
        self._next: asyncio.Future[bool] | None = None
        self._task: asyncio.Task[None] | None = None

    async def prime(self, db: Database) -> None:
        """The first answer, before anything is served (a database error stops the start)."""
        self.queries += 1
        self.known = self.known or await any_key(db)
        if not self.known and self.probe is None:
            self.probe = KeyProbe.open(db.sync_reader.url)

    def close(self) -> None:
        if self.probe is not None:
            self.probe.close()
            self.probe = None

    async def exist(self, db: Database) -> bool:
        if self.known:
            return True
        probe = self.probe
        if probe is not None and (found := probe.ask()) is not None:
            if found:  # sticky: the probe is not needed any more
                self.known = True
                self.close()
            return found
        loop = asyncio.get_running_loop()
        if self._running is None:
            self._running = fut = loop.create_future()
            self._task = asyncio.create_task(self._ask(db), name="api-key-existence")
        else:  # the running query may predate this request: wait for the next one
            if self._next is None:
                self._next = loop.create_future()
            fut = self._next
        return await asyncio.shield(fut)

    async def _ask(self, db: Database) -> None:
        """Answer ``_running``, then ``_next`` (promoted) while callers keep queueing."""
        while (fut := self._running) is not None:
            try:
                self.queries += 1
                found = await any_key(db)
            except Exception as exc:  # never anonymous on an error: the callers answer 503
                log.warning("API key check failed (%s): answering 503", type(exc).__name__)
                fut.set_exception(
                    DatabaseUnavailable(
                        "cannot check API keys: the database is busy or unreachable; retry in a "
                        "moment",
                        retry_after=1,
                    )
                )
            else:
                self.known = self.known or found
                fut.set_result(self.known)
            self._running, self._next = self._next, None


def _bearer(scope: Mapping[str, Any]) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"authorization":
            scheme, _, token = bytes(value).decode("latin-1").strip().partition(" ")
            found = token.strip()
            return found if scheme.lower() == "bearer" and found else None
    return None


def scope_database(scope: Mapping[str, Any]) -> Database:
    """The database of the app serving this ASGI ``scope`` (its services, once started)."""
    app = scope.get("app")
    services = getattr(getattr(app, "state", None), "services", None)
    if services is None:
        raise Unauthorized("the server is starting; try again in a moment")
    db: Database = services.db
    return db


def limiter_storage(settings: Settings) -> Storage:
    """Per-key rate-limit counters: in memory (embedded), or in Redis when one is configured."""
    if settings.redis_url:
        try:
            from limits.aio.storage import RedisStorage  # optional extra: only with Redis

            return RedisStorage("async+" + settings.redis_url, implementation="redispy")
        except Exception as exc:  # missing client library or a bad URL: keep serving
            log.warning("rate limits stay per process (Redis storage unavailable: %s)", exc)
    return MemoryStorage()
