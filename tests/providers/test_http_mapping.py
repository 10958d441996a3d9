"""Unit level: every error the HTTP layer can produce maps into the tree; parsing helpers.

These tests build answers in memory (and use httpx.MockTransport for the connect-retry rule);
the protocol itself is tested against the fakes over real sockets in the other modules.
"""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from pixelpipe.errors import (
    ConfigError,
    PixelpipeError,
    ProviderAuthError,
    ProviderContentRejected,
    ProviderError,
    ProviderFailed,
    ProviderInvalidInput,
    ProviderJobLost,
    ProviderRateLimited,
    ProviderUnavailable,
)
from pixelpipe.providers.base import Output
from pixelpipe.providers.http import (
    ProviderHTTP,
    ProviderIdentity,
    error_from_exception,
    error_from_response,
    parse_retry_after,
    redact,
)
from pixelpipe.providers.outputs import normalize_outputs
from pixelpipe.providers.signing import (
    SignatureInvalid,
    fal_headers,
    fal_sign,
    fal_verifies,
    jwks_keys,
    public_jwk,
    verify_standard_webhook,
)

IDENT = ProviderIdentity("replicate", "REPLICATE_API_TOKEN", "PIXELPIPE_REPLICATE_BASE_URL")
REQ = httpx.Request("POST", "https://api.example/v1/x")


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=REQ)


# --- HTTP answers ------------------------------------------------------------------------------

STATUS_TABLE: list[tuple[int, Any, type[PixelpipeError]]] = [
    (429, {"detail": "Request was throttled."}, ProviderRateLimited),
    (401, {"detail": "You did not pass a valid authentication token"}, ProviderAuthError),
    (403, {"error": {"message": "no access", "code": "forbidden"}}, ProviderAuthError),
    (
        400,
        {
            "error": {
                "message": "x",
                "type": "image_generation_user_error",
                "code": "moderation_blocked",
            }
        },
        ProviderContentRejected,
    ),
    (
        400,
        {"error": {"message": "rejected", "code": "content_policy_violation"}},
        ProviderContentRejected,
    ),
    (
        422,
        {"detail": [{"loc": ["body", "prompt"], "msg": "bad", "type": "content_policy_violation"}]},
        ProviderContentRejected,
    ),
    (
        422,
        {"detail": "- input.steps: Must be <= 4", "title": "Input validation failed"},
        ProviderInvalidInput,
    ),
    (
        422,
        {"detail": [{"loc": ["body", "seed"], "msg": "bad seed", "type": "int_type"}]},
        ProviderInvalidInput,
    ),
    (400, {"error": {"message": "Unknown parameter: 'x'.", "param": "x"}}, ProviderInvalidInput),
    (404, {"detail": "not found"}, ProviderInvalidInput),
    (418, "teapot", ProviderInvalidInput),
    (408, None, ProviderUnavailable),
    (409, None, ProviderUnavailable),
    (500, {"error": {"message": "server_error"}}, ProviderUnavailable),
    (502, "<html>nginx</html>", ProviderUnavailable),
    (
        503,
        {"detail": "Runner scheduling failure", "error_type": "runner_scheduling_failure"},
        ProviderUnavailable,
    ),
    (504, None, ProviderUnavailable),
]


@pytest.mark.parametrize(("status", "body", "expected"), STATUS_TABLE)
def test_status_codes_map_into_the_tree(
    status: int, body: Any, expected: type[PixelpipeError]
) -> None:
    resp = (
        httpx.Response(status, json=body, request=REQ)
        if body is not None
        else httpx.Response(status, request=REQ)
    )
    err = error_from_response(resp, IDENT)
    assert type(err) is expected
    assert isinstance(err, ProviderError)


def test_404_on_lookup_is_job_lost() -> None:
    assert (
        type(error_from_response(answer(404, {}), IDENT, not_found=ProviderJobLost))
        is ProviderJobLost
    )


def test_messages_keep_the_provider_text_and_redact_secrets() -> None:
    body = {"error": {"message": "Incorrect API key provided: sk-secret-value-1"}}
    err = error_from_response(answer(401, body), IDENT, secrets=["sk-secret-value-1"])
    assert "REPLICATE_API_TOKEN" in str(err) and "sk-secret-value-1" not in str(err)
    assert err.extra["variable"] == "REPLICATE_API_TOKEN"
    assert redact("id:secret and id", ["id-long:secret-long"]) == "id:secret and id"
    assert redact("key kid1:sec2 here", ["kid1:sec2"]) == "key *** here"


def test_unavailable_answers_are_not_billable_and_retryable() -> None:
    err = error_from_response(answer(503), IDENT)
    assert err.retryable and err.extra["billable"] is False


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "12"}, 12.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "2500", "retry-after": "9"}, 2.5),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(httpx.Headers(headers)) == expected


def test_retry_after_http_date() -> None:
    now = time.time()
    when = format_datetime(datetime.fromtimestamp(now + 40, UTC), usegmt=True)
    assert parse_retry_after(httpx.Headers({"retry-after": when}), now=now) == pytest.approx(
        40, abs=1
    )
    past = format_datetime(datetime.fromtimestamp(now - 40, UTC), usegmt=True)
    assert parse_retry_after(httpx.Headers({"retry-after": past}), now=now) == 0.0


def test_retry_after_falls_back_to_the_replicate_message() -> None:
    err = error_from_response(answer(429, {"detail": "Your rate limit resets in ~30s."}), IDENT)
    assert isinstance(err, ProviderRateLimited) and err.retry_after == 30.0


# --- httpx exceptions --------------------------------------------------------------------------


def _subclasses(cls: type) -> set[type]:
    return {cls, *(s for sub in cls.__subclasses__() for s in _subclasses(sub))}


HTTPX_ERRORS = sorted(
    {
        *_subclasses(httpx.HTTPError),
        httpx.InvalidURL,
        *_subclasses(httpx.StreamError),
        httpx.CookieConflict,
    },
    key=lambda c: c.__name__,
)
EXPECTED: dict[str, type[PixelpipeError]] = {
    "UnsupportedProtocol": ConfigError,
    "InvalidURL": ConfigError,
    "LocalProtocolError": ProviderError,
    "TooManyRedirects": ProviderError,
    "HTTPStatusError": ProviderUnavailable,  # built with a 503 below
}
TRANSIENT = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
    httpx.DecodingError,
)


def _instance(cls: type) -> Exception:
    if cls is httpx.HTTPStatusError:
        return httpx.HTTPStatusError("boom", request=REQ, response=answer(503))
    for args, kw in ((("boom",), {"request": REQ}), (("boom",), {}), ((), {})):
        try:
            return cls(*args, **kw)  # type: ignore[no-any-return]
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls}")


@pytest.mark.parametrize("cls", HTTPX_ERRORS, ids=lambda c: c.__name__)
def test_every_httpx_error_maps_into_the_tree(cls: type) -> None:
    err = error_from_exception(_instance(cls), IDENT)
    assert isinstance(err, PixelpipeError)
    if issubclass(cls, TRANSIENT):
        assert type(err) is ProviderUnavailable and err.retryable
    elif cls.__name__ in EXPECTED:
        assert type(err) is EXPECTED[cls.__name__]
    else:
        assert type(err) is ProviderError and not err.retryable
    assert "PIXELPIPE_REPLICATE_BASE_URL" in str(err) if type(err) is ConfigError else True


async def test_get_is_retried_once_on_connect_error_post_is_not() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) == 1 or request.method == "POST":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"ok": True})

    http = ProviderHTTP(
        IDENT,
        auth="Bearer t",
        secrets=["t"],
        client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    try:
        assert (await http.send("GET", "http://x/a")).status_code == 200
        assert calls == ["GET", "GET"]
        with pytest.raises(ProviderUnavailable):
            await http.send("POST", "http://x/a", json={})
        assert calls == ["GET", "GET", "POST"]
    finally:
        await http.aclose()


@pytest.mark.parametrize("url", ["ftp://x/a", "http:///no-host"])
async def test_bad_base_url_is_a_config_error_naming_the_variable(url: str) -> None:
    http = ProviderHTTP(IDENT, auth="Bearer t", secrets=["t"])
    try:
        with pytest.raises(ConfigError, match="PIXELPIPE_REPLICATE_BASE_URL"):
            await http.send("GET", url)
    finally:
        await http.aclose()


# --- output normalisation ----------------------------------------------------------------------

PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, ()),
        (
            ["https://r.delivery/a.webp", "https://r.delivery/b.webp"],
            (Output(url="https://r.delivery/a.webp"), Output(url="https://r.delivery/b.webp")),
        ),
        ("https://r.delivery/a.webp", (Output(url="https://r.delivery/a.webp"),)),
        (
            {"url": "https://v3.fal.media/x.jpg", "content_type": "image/jpeg"},
            (Output(url="https://v3.fal.media/x.jpg", content_type="image/jpeg"),),
        ),
        ([{"b64_json": PNG_B64}], (Output(data=b"\x89PNG\r\n\x1a\nfake"),)),
        (
            f"data:image/png;base64,{PNG_B64}",
            (Output(data=b"\x89PNG\r\n\x1a\nfake", content_type="image/png"),),
        ),
        (
            "data:text/plain,hello%20world",
            (Output(data=b"hello world", content_type="text/plain"),),
        ),
    ],
)
def test_outputs_are_normalised(value: Any, expected: tuple[Output, ...]) -> None:
    assert normalize_outputs(value) == expected


@pytest.mark.parametrize(
    "value",
    ["ftp://x/y.png", "not a url", 42, [{"b64_json": "@@@"}], "data:image/png;base64", {"x": 1}],
)
def test_unusable_outputs_fail(value: Any) -> None:
    with pytest.raises(ProviderFailed):
        normalize_outputs(value)


# --- signatures --------------------------------------------------------------------------------


def test_standard_webhooks_documented_vector() -> None:
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v2,abc v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        verify_standard_webhook(secret, headers, body, now=1614265330 + 10) == headers["webhook-id"]
    )
    with pytest.raises(SignatureInvalid, match="tolerance"):
        verify_standard_webhook(secret, headers, body, now=1614265330 + 301)


def test_standard_webhooks_agrees_with_the_reference_library() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    now = int(time.time())
    sig = Webhook(secret).sign("msg_1", datetime.fromtimestamp(now, UTC), "{}")
    headers = {"Webhook-Id": "msg_1", "Webhook-Timestamp": str(now), "Webhook-Signature": sig}
    assert verify_standard_webhook(secret, headers, b"{}", now=now) == "msg_1"


def test_fal_signature_round_trip_and_jwks_parsing() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    doc = {
        "keys": [
            {"kty": "RSA", "n": "x"},
            public_jwk(key.public_key(), "k1"),
            {"kty": "OKP", "crv": "Ed25519", "x": "!!"},
        ]
    }
    keys = jwks_keys(doc)
    assert len(keys) == 1
    now = int(time.time())
    sig = fal_sign(key, "rid", "uid", now, b"{}")
    headers = {
        "X-Fal-Webhook-Request-Id": "rid",
        "X-Fal-Webhook-User-Id": "uid",
        "X-Fal-Webhook-Timestamp": str(now),
        "X-Fal-Webhook-Signature": sig,
    }
    delivery = fal_headers(headers, now=now)
    assert fal_verifies(keys, delivery, b"{}") and not fal_verifies(keys, delivery, b"{ }")
    with pytest.raises(SignatureInvalid):
        fal_headers({**headers, "X-Fal-Webhook-Signature": "zz"}, now=now)
    with pytest.raises(SignatureInvalid):
        jwks_keys({"nokeys": []})
