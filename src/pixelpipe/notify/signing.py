"""Standard Webhooks (v1, HMAC-SHA256) signing for completion webhooks.

The secret is ``PIXELPIPE_WEBHOOK_SECRET`` (``whsec_`` + base64 of 24–64 random bytes), or one
generated on first use and kept in ``<data_dir>/webhook.secret`` (mode 0600), so that it survives
restarts like the URL-signing key. Receivers verify with any Standard Webhooks library::

    from standardwebhooks import Webhook
    Webhook("whsec_...").verify(body, headers)  # raises WebhookVerificationError if tampered
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from pixelpipe.errors import ConfigError
from pixelpipe.settings import Settings

PREFIX = "whsec_"
SECRET_FILE = "webhook.secret"  # noqa: S105 - a file name, not a secret


def _decode(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except ValueError:
        raise ConfigError(
            "PIXELPIPE_WEBHOOK_SECRET is not valid base64 after the whsec_ prefix; generate one "
            "with `python -c 'import base64,secrets; "
            'print("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode())\'`'
        ) from None
    if not 24 <= len(key) <= 64:
        raise ConfigError(
            f"PIXELPIPE_WEBHOOK_SECRET decodes to {len(key)} bytes; use 24 to 64 random bytes"
        )
    return key


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def webhook_secret(settings: Settings) -> str:
    """The ``whsec_…`` secret: configured, or generated once and kept in the data directory."""
    configured = settings.webhook_secret.get_secret_value().strip()
    if configured:
        _decode(configured)
        return configured if configured.startswith(PREFIX) else PREFIX + configured
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(new_secret())
        tmp.chmod(0o600)
        tmp.replace(path)
    stored = path.read_text().strip()
    _decode(stored)
    return stored


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256(id.timestamp.body)>``."""
    key = _decode(secret)
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }
