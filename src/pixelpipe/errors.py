"""The one error tree of pixelpipe.

Every error that can leave a pipeline stage is a :class:`PixelpipeError` with a stable ``code``
(machine-readable, documented, never renamed), an HTTP ``status``, a human ``title`` and whether the
operation may be ``retryable``. Third-party errors (httpx, SQLAlchemy, obstore, Pillow, provider
HTTP answers) are translated into this tree where they enter; the worker decides retries from
``retryable`` and the API renders any of them as ``application/problem+json``.

::

    PixelpipeError
    ├── ConfigError                     500  config_error          a setting is missing or wrong
    ├── InvalidRequest                  422  invalid_request       intake validation (field + fix)
    ├── SafetyRejected                  422  prompt_blocked        pre-flight rule hit (reason code)
    ├── NotFound                        404  not_found
    ├── Conflict                        409  conflict              e.g. cancel a terminal job
    ├── IdempotencyMismatch             422  idempotency_key_reused
    ├── BudgetExceeded                  402  budget_exceeded
    ├── Unauthorized                    401  unauthorized
    ├── Forbidden                       403  forbidden
    ├── RateLimited                     429  rate_limited          carries retry_after
    ├── ProviderError                   502  provider_error        (base of provider failures)
    │   ├── ProviderContentRejected     422  provider_rejected     content policy / NSFW
    │   ├── ProviderRateLimited         429  provider_rate_limited retryable, retry_after
    │   ├── ProviderUnavailable         503  provider_unavailable  5xx, connection, timeout
    │   ├── ProviderInvalidInput        422  provider_invalid_input
    │   ├── ProviderAuthError           500  provider_auth         names the variable to set
    │   ├── ProviderJobLost             502  provider_job_lost     provider no longer knows the job
    │   └── ProviderFailed              502  provider_failed       model run failed
    ├── OutputError                     502  output_invalid        (base of fetched-output failures)
    │   ├── OutputFetchError            502  output_fetch_failed   expired URL, too big, too slow
    │   ├── OutputBlocked               502  output_url_refused    SSRF guard refused the URL
    │   ├── OutputModerated             422  output_blocked        moderation blocked the image
    │   └── ImageInvalid                502  image_invalid         not an image / bomb / truncated
    ├── StorageError                    503  storage_unavailable   retryable
    ├── DatabaseUnavailable             503  database_unavailable  retryable (locked, unreachable)
    ├── InternalStepError               500  internal_error        a bug in a step; retried later
    ├── DeliveryError                   403  delivery_forbidden    bad or expired signed URL
    └── JobTimedOut                     504  timed_out             deadline passed
"""

from __future__ import annotations

from typing import Any, ClassVar


class PixelpipeError(Exception):
    """Base of every error pixelpipe raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    retryable: ClassVar[bool] = False

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, Any] = extra

    def to_problem(self) -> dict[str, Any]:
        """RFC 9457 problem document (``type`` is a stable, dereferenceable-looking URN)."""
        body: dict[str, Any] = {
            "type": f"https://pixelpipe.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        body.update(self.extra)
        return body


class ConfigError(PixelpipeError):
    code = "config_error"
    title = "Configuration error"


class InvalidRequest(PixelpipeError):
    code = "invalid_request"
    status = 422
    title = "Invalid request"


class InputRejected(InvalidRequest):
    """An input image (an upload, a URL, a mask) that cannot be used: not an image, a format we
    do not take, too large, a decompression bomb, a URL the fetch guard refuses.
    Nothing is spent."""

    code = "input_invalid"
    title = "Input image refused"


class SafetyRejected(PixelpipeError):
    code = "prompt_blocked"
    status = 422
    title = "Prompt blocked by the safety pre-flight"

    def __init__(self, detail: str, *, reason: str, **extra: Any) -> None:
        super().__init__(detail, reason=reason, **extra)
        self.reason = reason


class NotFound(PixelpipeError):
    code = "not_found"
    status = 404
    title = "Not found"


class Conflict(PixelpipeError):
    code = "conflict"
    status = 409
    title = "Conflict"


class IdempotencyMismatch(PixelpipeError):
    code = "idempotency_key_reused"
    status = 422
    title = "Idempotency key reused with a different request"


class BudgetExceeded(PixelpipeError):
    code = "budget_exceeded"
    status = 402
    title = "Budget exceeded"


class Unauthorized(PixelpipeError):
    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class UnsupportedEndpoint(PixelpipeError):
    """An endpoint of the OpenAI API that pixelpipe does not implement (yet)."""

    code = "unsupported_endpoint"
    status = 400
    title = "Not supported"


class Forbidden(PixelpipeError):
    code = "forbidden"
    status = 403
    title = "Forbidden"


class RateLimited(PixelpipeError):
    code = "rate_limited"
    status = 429
    title = "Rate limited"
    retryable = True

    def __init__(self, detail: str, *, retry_after: float | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class ProviderError(PixelpipeError):
    code = "provider_error"
    status = 502
    title = "Provider error"


class ProviderContentRejected(ProviderError):
    code = "provider_rejected"
    status = 422
    title = "Prompt rejected by the provider's content policy"


class ProviderRateLimited(ProviderError):
    code = "provider_rate_limited"
    status = 429
    title = "Provider rate limit"
    retryable = True

    def __init__(self, detail: str, *, retry_after: float | None = None, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    status = 503
    title = "Provider unavailable"
    retryable = True


class ProviderInvalidInput(ProviderError):
    code = "provider_invalid_input"
    status = 422
    title = "Provider refused the input"


class ProviderAuthError(ProviderError):
    code = "provider_auth"
    status = 500
    title = "Provider credentials missing or rejected"


class ProviderJobLost(ProviderError):
    code = "provider_job_lost"
    title = "The provider no longer knows this job"


class ProviderFailed(ProviderError):
    code = "provider_failed"
    title = "The model run failed"


class OutputError(PixelpipeError):
    code = "output_invalid"
    status = 502
    title = "Provider output unusable"


class OutputFetchError(OutputError):
    code = "output_fetch_failed"
    title = "Could not download the provider output"


class OutputBlocked(OutputError):
    code = "output_url_refused"  # "output_blocked" is the moderation outcome (OutputModerated)
    title = "Provider output URL refused by the fetch guard"


class OutputModerated(OutputError):
    """Output moderation (ours, or the provider's NSFW filter) blocked the image: it is never
    delivered or reused; the attempt stays in the ledger at its price (paid and blocked)."""

    code = "output_blocked"
    status = 422
    title = "Image blocked by output moderation"


class ImageInvalid(OutputError):
    code = "image_invalid"
    title = "Provider output is not a valid image"


class StorageError(PixelpipeError):
    code = "storage_unavailable"
    status = 503
    title = "Storage unavailable"
    retryable = True


class DatabaseUnavailable(PixelpipeError):
    code = "database_unavailable"
    status = 503
    title = "Database busy or unreachable"
    retryable = True


class InternalStepError(PixelpipeError):
    """A bug in a worker step: logged with its trace; the step is retried later."""

    code = "internal_error"
    title = "Internal error"
    retryable = True


class DeliveryError(PixelpipeError):
    code = "delivery_forbidden"
    status = 403
    title = "Image URL invalid or expired"


class JobTimedOut(PixelpipeError):
    code = "timed_out"
    status = 504
    title = "Generation timed out"


class ModerationError(PixelpipeError):
    """The moderation provider could not give a verdict (translated at its boundary)."""

    code = "moderation_error"
    status = 502
    title = "Moderation provider error"


class ModerationUnavailable(ModerationError):
    code = "moderation_unavailable"
    status = 503
    title = "Moderation provider unavailable"
    retryable = True


class ModerationRateLimited(ModerationError):
    code = "moderation_rate_limited"
    status = 429
    title = "Moderation provider rate limit"
    retryable = True


class ModerationAuthError(ModerationError):
    code = "moderation_auth"
    status = 500
    title = "Moderation provider credentials missing or rejected"


ERROR_CODES: dict[str, type[PixelpipeError]] = {}


def _register(cls: type[PixelpipeError]) -> None:
    ERROR_CODES[cls.code] = cls
    for sub in cls.__subclasses__():
        _register(sub)


_register(PixelpipeError)
