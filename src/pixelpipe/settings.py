"""Settings: one object, built in the entrypoint and passed down (no import-time singletons).

Every field is read from a ``PIXELPIPE_``-prefixed environment variable (or ``.env``), except the
provider credentials, which use the names the providers' own SDKs use (``REPLICATE_API_TOKEN``,
``FAL_KEY``, ``OPENAI_API_KEY``). Backends are chosen by URL; empty URLs fall back to the embedded
defaults under ``PIXELPIPE_DATA_DIR``.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pixelpipe.errors import ConfigError

DeliveryMode = Literal["signed", "public"]

_DB_SCHEMES = ("sqlite", "sqlite+aiosqlite", "postgresql", "postgresql+psycopg", "postgres")
_STORAGE_SCHEMES = ("file", "s3", "r2", "memory")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PIXELPIPE_", env_file=".env", extra="ignore", populate_by_name=True
    )
    _signing_key: bytes | None = PrivateAttr(default=None)  # signing_key(), read once

    # --- where things live -----------------------------------------------------------------
    data_dir: Path = Field(Path("pixelpipe-data"), description="Embedded data directory")
    database_url: str = Field("", description="sqlite:///path.db or postgresql://...")
    queue_url: str = Field("", description="empty = in-process dispatcher; postgresql://... = SAQ")
    redis_url: str = Field("", description="redis://... for cross-process events and rate limits")
    storage_url: str = Field(
        "", description="file:///dir, s3://bucket/prefix, r2://bucket, memory://"
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

    # --- budgets (global; per-key budgets are set with `pixelpipe budgets`) ------------------
    budget_daily_usd: float | None = Field(None, ge=0)
    budget_monthly_usd: float | None = Field(None, ge=0)

    # --- providers -----------------------------------------------------------------------------
    preview_latency_ms: int = Field(0, ge=0)
    preview_failure_rate: float = Field(0.0, ge=0.0, le=1.0)
    replicate_api_token: SecretStr = Field(
        SecretStr(""),
        validation_alias=AliasChoices("REPLICATE_API_TOKEN", "PIXELPIPE_REPLICATE_API_TOKEN"),
    )
    fal_key: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("FAL_KEY", "PIXELPIPE_FAL_KEY")
    )
    openai_api_key: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("OPENAI_API_KEY", "PIXELPIPE_OPENAI_API_KEY")
    )
    replicate_base_url: str = "https://api.replicate.com"
    replicate_webhook_secret: SecretStr = SecretStr("")
    fal_queue_url: str = "https://queue.fal.run"
    fal_jwks_url: str = "https://rest.fal.ai/.well-known/jwks.json"
    openai_base_url: str = "https://api.openai.com/v1"
    provider_order: str = Field("", description="e.g. 'replicate,fal' (default: cheapest first)")

    # --- operability ----------------------------------------------------------------------------
    log_level: str = "INFO"
    log_json: bool = False
    otel: bool = Field(
        False,
        description="FastAPI's OpenTelemetry spans, metrics and logs (needs an OTel SDK "
        "configured in the process); off by default: the checks cost CPU on every request",
    )

    @field_validator("database_url")
    @classmethod
    def _check_db(cls, v: str) -> str:
        if v and v.split(":", 1)[0] not in _DB_SCHEMES:
            raise ValueError(
                f"unsupported scheme in {v.split(':', 1)[0]!r}; use sqlite:///path.db or "
                "postgresql://user:pass@host/db"
            )
        return v

    @field_validator("storage_url")
    @classmethod
    def _check_storage(cls, v: str) -> str:
        if v and v.split(":", 1)[0] not in _STORAGE_SCHEMES:
            raise ValueError(
                "unsupported scheme; use file:///dir, s3://bucket[/prefix], r2://bucket or memory://"
            )
        return v

    # --- derived ------------------------------------------------------------------------------
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


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning validation errors into a message that names the variable and fix."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            var = field if field.isupper() else f"PIXELPIPE_{field.upper()}"
            lines.append(f"{var}: {err['msg']}")
        raise ConfigError("invalid settings:\n  " + "\n  ".join(lines)) from None
