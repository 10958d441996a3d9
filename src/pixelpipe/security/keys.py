"""API keys: created, listed and revoked (``pixelpipe keys``); verified on every request.

A key looks like ``pp_<id>_<secret>``: ``id`` is 12 Crockford base32 characters (public: it names
the key in the ledger, in budgets as scope ``key:<id>`` and in usage reports) and ``secret`` is 32
random bytes, url-safe base64. Only ``sha256(domain, id, secret)`` is stored: the secret has 256
bits of entropy, so a fast hash is enough (no password KDF needed) and a stolen database does not
reveal usable keys. Verification compares hashes in constant time and answers the same for an
unknown id and a wrong secret, so ids cannot be probed.

Scopes: ``generate`` (start generations, estimates), ``read`` (read jobs, the catalog, costs) and
``admin`` (usage for all keys, metrics, key management), which implies the other two.

A key may carry a default completion webhook (``webhook_url``): every job started with the key
that names no ``webhook`` of its own is reported there (same outbox, signing and retries as a
per-request webhook; :mod:`pixelpipe.notify`). The URL is not secret and is shown by ``keys list``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, insert, select, update

from pixelpipe.db import Database
from pixelpipe.errors import InvalidRequest, NotFound
from pixelpipe.security.tables import api_keys
from pixelpipe.security.webhook_destinations import check_webhook_url

if TYPE_CHECKING:
    from pixelpipe.settings import Settings

SCOPES = ("generate", "read", "admin")
DEFAULT_SCOPES = ("generate", "read")
DEFAULT_RPM = 300
PREFIX = "pp_"
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
_ID_LEN = 12
_KEY_RE = re.compile(r"^pp_([0-9a-hjkmnp-tv-z]{12})_([A-Za-z0-9_-]{43})$")
_DOMAIN = b"pixelpipe-api-key-v1\x00"


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[str]
    rpm: int  # requests per minute; 0 = unlimited
    created_at: float
    revoked_at: float | None
    secret_hash: str = ""
    webhook_url: str | None = None  # default completion webhook of this key's jobs

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


def parse_scopes(raw: str | Iterable[str]) -> frozenset[str]:
    """``"generate,read"`` → the scope set; unknown names raise InvalidRequest."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = frozenset(s.strip().lower() for s in items if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown or not scopes:
        raise InvalidRequest(
            f"unknown scope(s) {', '.join(unknown) or '(none given)'}; use a comma-separated "
            f"subset of {', '.join(SCOPES)}"
        )
    return scopes


def hash_secret(key_id: str, secret: str) -> str:
    return hashlib.sha256(_DOMAIN + key_id.encode() + b"\x00" + secret.encode()).hexdigest()


def split_key(presented: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed key, or None."""
    m = _KEY_RE.match(presented)
    return (m.group(1), m.group(2)) if m else None


def _new_id() -> str:
    value = secrets.randbits(5 * _ID_LEN)
    return "".join(_ALPHABET[(value >> (5 * i)) & 31] for i in range(_ID_LEN))


def _row_to_key(row: object) -> ApiKey:
    m = row._mapping  # type: ignore[attr-defined]
    return ApiKey(
        id=m["id"],
        name=m["name"],
        scopes=frozenset(str(m["scopes"]).split(",")),
        rpm=int(m["rpm"]),
        created_at=float(m["created_at"]),
        revoked_at=m["revoked_at"],
        secret_hash=m["secret_hash"],
        webhook_url=m["webhook_url"],
    )


def check_key_webhook(url: str, settings: Settings | None = None) -> str:
    """The URL a key's webhook is set to, checked as a per-request ``webhook`` is, under the
    server's ``settings`` (None: public https hosts only); raises InvalidRequest saying what to
    fix."""
    url = url.strip()
    try:
        check_webhook_url(url, settings)
    except InvalidRequest as exc:
        raise InvalidRequest(
            f"invalid key webhook {url!r}: {exc.detail} (or leave it unset: the key's jobs then "
            "send no webhook unless a request names one)",
            field="webhook",
        ) from None
    return url


async def create_key(
    db: Database,
    *,
    name: str = "",
    scopes: Iterable[str] = DEFAULT_SCOPES,
    rpm: int = DEFAULT_RPM,
    webhook_url: str | None = None,
    settings: Settings | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key; returns it and the full key string (the only time it exists in clear).
    ``settings``: the server's, whose webhook rules ``webhook_url`` must pass."""
    chosen = parse_scopes(scopes)
    webhook = check_key_webhook(webhook_url, settings) if webhook_url is not None else None
    if rpm < 0:
        raise InvalidRequest("--rpm cannot be negative (0 = no rate limit)")
    if len(name) > 100:
        raise InvalidRequest("a key name is at most 100 characters")
    key_id, secret = _new_id(), secrets.token_urlsafe(32)
    key = ApiKey(
        id=key_id,
        name=name,
        scopes=chosen,
        rpm=rpm,
        created_at=time.time(),
        revoked_at=None,
        secret_hash=hash_secret(key_id, secret),
        webhook_url=webhook,
    )
    async with db.begin() as conn:
        await conn.execute(
            insert(api_keys).values(
                id=key.id,
                name=key.name,
                secret_hash=key.secret_hash,
                scopes=",".join(s for s in SCOPES if s in chosen),
                rpm=key.rpm,
                created_at=key.created_at,
                revoked_at=None,
                webhook_url=key.webhook_url,
            )
        )
    return key, f"{PREFIX}{key_id}_{secret}"


async def list_keys(db: Database) -> list[ApiKey]:
    async with db.read() as conn:
        rows = (await conn.execute(select(api_keys).order_by(api_keys.c.created_at))).all()
    return [_row_to_key(r) for r in rows]


async def get_key(db: Database, key_id: str) -> ApiKey | None:
    async with db.read() as conn:
        row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
    return _row_to_key(row) if row is not None else None


async def revoke_key(db: Database, key_id: str) -> ApiKey:
    """Revoke (idempotent); the row stays so that the ledger's key ids keep their meaning."""
    async with db.begin() as conn:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=time.time())
        )
    key = await get_key(db, key_id)
    if key is None:
        raise NotFound(f"no API key with id {key_id!r} (see `pixelpipe keys list`)")
    return key


async def set_key_webhook(
    db: Database, key_id: str, webhook_url: str | None, settings: Settings | None = None
) -> ApiKey:
    """Set (a URL) or clear (None) the default completion webhook of a key; jobs started from now
    on use it (every request reads the key's row, so no restart is needed). ``settings``: the
    server's, whose webhook rules the URL must pass."""
    url = check_key_webhook(webhook_url, settings) if webhook_url is not None else None
    async with db.begin() as conn:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(webhook_url=url))
    key = await get_key(db, key_id)
    if key is None:
        raise NotFound(f"no API key with id {key_id!r} (see `pixelpipe keys list`)")
    return key


async def any_key(db: Database) -> bool:
    """Whether a key row exists (revoked ones too): the per-request question of a server that
    has none yet, so one read on a synchronous connection (one thread hop) rather than the
    async engine (several hops and a greenlet: ~0.7 ms of CPU per request, measured)."""
    stmt = select(api_keys.c.id).limit(1)
    return await db.read_sync(lambda conn: conn.execute(stmt).first() is not None)


async def count_keys(db: Database, *, active_only: bool = False) -> int:
    stmt = select(func.count()).select_from(api_keys)
    if active_only:
        stmt = stmt.where(api_keys.c.revoked_at.is_(None))
    async with db.read() as conn:
        return int((await conn.execute(stmt)).scalar() or 0)


async def verify_key(db: Database, presented: str) -> ApiKey | None:
    """The stored key ``presented`` proves, or None (malformed, unknown id or wrong secret)."""
    parts = split_key(presented)
    if parts is None:
        return None
    key_id, secret = parts
    key = await get_key(db, key_id)
    expected = key.secret_hash if key is not None else "0" * 64
    ok = hmac.compare_digest(expected, hash_secret(key_id, secret))
    return key if ok and key is not None else None
