"""Settings: one object, built in the entrypoint and passed down (no import-time singletons).

Every field is read from a ``PIXELPIPE_``-prefixed environment variable (or ``.env``). Backends are
chosen by URL; empty URLs fall back to the embedded defaults under ``PIXELPIPE_DATA_DIR``.

A provider declares its own settings as a :class:`SettingsSection` (its keys and URLs, e.g.
``REPLICATE_API_TOKEN`` and ``PIXELPIPE_REPLICATE_BASE_URL``) and reads it with
``settings.section(ReplicateSettings)``: read from the same environment and ``.env`` as the rest,
with keyword overrides given to ``Settings(replicate_api_token=...)`` (the section's env prefix,
less ``PIXELPIPE_``, then the field name; or one of the field's aliases, e.g. ``FAL_KEY=...``).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.sources import ENV_FILE_SENTINEL

from pixelpipe.errors import ConfigError

DeliveryMode = Literal["signed", "public"]

_DB_SCHEMES = ("sqlite", "sqlite+aiosqlite", "postgresql", "postgresql+psycopg", "postgres")
_ROOT_PREFIX = "PIXELPIPE_"


class SettingsSection(BaseSettings):
    """Settings a part of the system declares for itself (a provider's keys and URLs).

    Subclasses set ``env_prefix`` (e.g. ``PIXELPIPE_REPLICATE_``); that prefix, lower-cased and
    less ``PIXELPIPE_``, also names the section's keyword overrides on :class:`Settings`
    (``Settings(replicate_base_url=...)`` sets ``base_url`` of section ``PIXELPIPE_REPLICATE_``).
    """

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    @classmethod
    def keyword_prefix(cls) -> str:
        return str(cls.model_config.get("env_prefix", "")).lower().removeprefix("pixelpipe_")

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable that sets ``field`` (its first alias, if it has any)."""
        aliases = _aliases(cls.model_fields[field])
        return aliases[0] if aliases else f"{cls.model_config.get('env_prefix', '')}{field}".upper()


Section = TypeVar("Section", bound=SettingsSection)


def _aliases(info: FieldInfo) -> tuple[str, ...]:
    alias = info.validation_alias
    if isinstance(alias, str):
        return (alias,)
    if isinstance(alias, AliasChoices):
        return tuple(a for a in alias.choices if isinstance(a, str))
    return ()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PIXELPIPE_", env_file=".env", extra="ignore", populate_by_name=True
    )
    _signing_key: bytes | None = PrivateAttr(default=None)  # signing_key(), read once
    _overrides: dict[str, Any] = PrivateAttr(default_factory=dict)  # keywords for the sections
    _env_file: Any = PrivateAttr(default=ENV_FILE_SENTINEL)
    _sections: dict[type[SettingsSection], SettingsSection] = PrivateAttr(default_factory=dict)

    def __init__(self, **values: Any) -> None:
        """As BaseSettings; keywords that are not fields here are kept for :meth:`section`."""
        fields = type(self).model_fields
        overrides = {k: values.pop(k) for k in list(values) if k[:1] != "_" and k not in fields}
        super().__init__(**values)
        self._overrides = overrides
        self._env_file = values.get("_env_file", ENV_FILE_SENTINEL)

    # --- where things live -----------------------------------------------------------------
    data_dir: Path = Field(Path("pixelpipe-data"), description="Embedded data directory")
    database_url: str = Field("", description="sqlite:///path.db or postgresql://...")
    queue_url: str = Field("", description="empty = in-process dispatcher; postgresql://... = SAQ")
    redis_url: str = Field("", description="redis://... for cross-process events and rate limits")
    storage_url: str = Field(
        "", description="file:///dir, s3://bucket/prefix, r2://bucket, memory:// (storage.factory)"
    )
    s3_endpoint: str = Field("", description="S3-compatible endpoint URL (R2, MinIO, SeaweedFS)")
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr = SecretStr("")
    s3_secret_access_key: SecretStr = SecretStr("")

    # --- serving and delivery --------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    public_url: str = Field("", description="Public base URL of this server (enables webhooks)")
    delivery: DeliveryMode = "signed"
    delivery_base_url: str = Field("", description="Custom domain / CDN for public delivery")
    signed_url_ttl_s: int = Field(7 * 24 * 3600, ge=60)
    secret_key: SecretStr = Field(SecretStr(""), description="HMAC key for signed URLs")

    # --- pipeline ---------------------------------------------------------------------------
    max_prompt_chars: int = Field(1000, ge=1, le=32000)
    safety_rules_path: Path | None = None
    worker_concurrency: int = Field(64, ge=1, le=10000)
    embedded_worker: bool = True
    webhook_deadline_s: float = Field(300.0, gt=0)
    job_deadline_s: float = Field(1800.0, gt=0)
    lease_s: float = Field(60.0, gt=0)
    max_attempts: int = Field(5, ge=1, le=50)
    sweep_interval_s: float = Field(2.0, gt=0)

    # --- the queue: priority, fair share, quarantine (docs/queue.md) --------------------------
    queue_poison_after: int = Field(
        3, ge=0, le=100, description="Quarantine a job after this many crashed steps (0: never)"
    )
    queue_priority_ceiling: int = Field(
        6, ge=0, le=9, description="Highest priority a non-admin key may ask for (admin: 9)"
    )
    queue_ceilings: str = Field(
        "", description="Per-key priority ceilings, 'key_id=8,other=4' (else the default)"
    )
    queue_shares: str = Field(
        "", description="Per-key shares of capacity, 'key_id=3,other=2' (else 1)"
    )
    test_mode: bool = Field(False, description="Allow http:// and loopback outputs (fakes only)")

    # --- security: input limits, outbound fetch (issue 7; keys: `pixelpipe keys`) ---------------
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Largest request body (413)")
    max_json_depth: int = Field(32, ge=2, le=1000, description="Deepest JSON nesting (422)")
    max_upload_bytes: int = Field(
        25 * 1024 * 1024,
        ge=1024,
        description="Largest image upload (multipart, POST /v1/images/edits|variations; 413)",
    )
    output_hosts: str = Field(
        "",
        description="Extra hosts provider outputs may be fetched from (comma-separated, "
        "'*.cdn.example' wildcards; '*' = any public host); address checks always apply",
    )
    provider_timeout_s: float | None = Field(
        None, gt=0, description="Read timeout of provider API calls (default: per provider)"
    )

    # --- integrations: completion webhooks, OpenAI-compatible endpoint -------------------------
    webhook_secret: SecretStr = Field(
        SecretStr(""),
        description="whsec_… key that signs completion webhooks (empty: generated in data_dir)",
    )
    webhook_retry_schedule_s: str = Field(
        "5,300,1800,7200,18000,36000,50400,72000,86400",
        description="Seconds between completion-webhook attempts (comma-separated; then give up)",
    )
    webhook_allow_private: bool = Field(
        False, description="Allow completion webhooks to private/loopback hosts and plain http"
    )
    openai_wait_s: float = Field(
        300.0, gt=0, description="How long POST /v1/images/generations waits for its images"
    )
    stream_keepalive_s: float = Field(
        15.0,
        ge=0,
        description="A streamed image request sends an SSE comment after this many quiet "
        "seconds, so proxies keep it open (0: never)",
    )

    # --- budgets (global; per-key budgets are set with `pixelpipe budgets`) ------------------
    budget_daily_usd: float | None = Field(None, ge=0)
    budget_monthly_usd: float | None = Field(None, ge=0)

    # --- providers (each provider's own keys and URLs: its SettingsSection) --------------------
    provider_order: str = Field("", description="e.g. 'replicate,fal' (default: cheapest first)")
    catalog_path: Path | None = Field(
        None,
        description="The operator's catalog file (TOML): self-hosted backends and models "
        "(docs/self-hosted.md)",
    )

    # --- operability ----------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = False
    otel: bool = Field(
        False,
        description="FastAPI's OpenTelemetry spans, metrics and logs (needs an OTel SDK "
        "configured in the process); off by default: the checks cost CPU on every request",
    )

    @field_validator("queue_ceilings", "queue_shares")
    @classmethod
    def _key_numbers(cls, value: str) -> str:
        key_numbers(value)  # a bad value fails at start, naming what to fix
        return value

    def queue_share(self, key_id: str | None) -> int:
        """The share of capacity of ``key_id``'s jobs (PIXELPIPE_QUEUE_SHARES; default 1)."""
        return key_numbers(self.queue_shares).get(key_id or "", 1)

    def queue_ceiling(self, key_id: str | None, *, admin: bool) -> int:
        """The highest priority ``key_id`` may ask for (no key, or an admin key: 9)."""
        if admin or key_id is None:
            return 9
        return key_numbers(self.queue_ceilings).get(key_id, self.queue_priority_ceiling)

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, v: str) -> str:
        if v and v.split(":", 1)[0] not in _DB_SCHEMES:
            raise ValueError(
                f"unsupported scheme in {v.split(':', 1)[0]!r}; use sqlite:///path.db or "
                "postgresql://user:pass@host/db"
            )
        return v

    @field_validator("catalog_path", mode="before")
    @classmethod
    def _no_empty_path(cls, v: object) -> object:
        return None if v == "" else v  # PIXELPIPE_CATALOG_PATH= (empty): no catalog file

    # --- derived ------------------------------------------------------------------------------
    def section(self, kind: type[Section]) -> Section:
        """The ``kind`` section, read once per settings object (a bad value is a ConfigError)."""
        found = self._sections.get(kind)
        if found is None:
            kwargs = _section_keywords(kind, self._overrides)
            if self._env_file is not ENV_FILE_SENTINEL:
                kwargs["_env_file"] = self._env_file
            try:
                found = kind(**kwargs)
            except ValidationError as exc:
                raise _config_error(exc, kind) from None
            self._sections[kind] = found
        assert isinstance(found, kind)
        return found

    @property
    def effective_database_url(self) -> str:
        url = self.database_url or f"sqlite:///{(self.data_dir / 'pixelpipe.db').resolve()}"
        if url.startswith("sqlite:"):
            return "sqlite+aiosqlite:" + url.split(":", 1)[1]
        if url.startswith(("postgresql:", "postgres:")):
            return "postgresql+psycopg:" + url.split(":", 1)[1]
        return url

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "images").resolve().as_uri()

    @property
    def is_embedded_db(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    def signing_key(self) -> bytes:
        """The HMAC key: configured, or generated once and kept in the data directory. Read once
        per settings object: image URLs, event tokens and provider runs sign on hot paths."""
        if self._signing_key is None:
            self._signing_key = self._load_signing_key()
        return self._signing_key

    def _load_signing_key(self) -> bytes:
        configured = self.secret_key.get_secret_value()
        if configured:
            if len(configured) < 32:
                raise ConfigError(
                    "PIXELPIPE_SECRET_KEY is too short: use at least 32 random characters, e.g. "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
            return configured.encode()
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(48))
            tmp.chmod(0o600)
            tmp.replace(path)
        return path.read_text().strip().encode()


def _section_keywords(kind: type[SettingsSection], overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides meant for ``kind``: ``<prefix><field>=`` as ``<field>=``, aliases as given."""
    prefix = kind.keyword_prefix()
    aliases = {a for info in kind.model_fields.values() for a in _aliases(info)}
    kwargs: dict[str, Any] = {}
    for key, value in overrides.items():
        field = key.lower().removeprefix(prefix) if key.lower().startswith(prefix) else None
        if prefix and field in kind.model_fields:
            kwargs[field] = value
        elif key in aliases:
            kwargs[key] = value
    return kwargs


def _config_error(exc: ValidationError, kind: type[BaseSettings]) -> ConfigError:
    """A validation error as a message that names each variable and what is wrong with it."""
    prefix = str(kind.model_config.get("env_prefix", _ROOT_PREFIX))
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "?"
        var = field if field.isupper() else f"{prefix}{field.upper()}"
        lines.append(f"{var}: {err['msg']}")
    return ConfigError("invalid settings:\n  " + "\n  ".join(lines))


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into a message that names the variable and fix."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _config_error(exc, Settings) from None


def key_numbers(value: str) -> dict[str, int]:
    """``'key_id=3,other=2'`` as a mapping (PIXELPIPE_QUEUE_SHARES, PIXELPIPE_QUEUE_CEILINGS)."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        key, sep, number = part.partition("=")
        if not sep or not key.strip() or not number.strip().isdigit():
            raise ValueError(f"{part!r}: write key_id=NUMBER, comma-separated")
        out[key.strip()] = int(number)
    return out
