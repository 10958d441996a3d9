"""Where completion webhooks may go: one rule, applied when a URL is given and on every delivery.

A webhook URL is refused when it is named (``POST /v1/generations`` and ``/v1/estimates``, the
fast lane, the OpenAI endpoint's ``webhook`` extension, the Python ``Pipeline``, ``pixelpipe keys
create --webhook`` and ``keys set-webhook``) by the same checks the delivery loop applies before
each attempt (:func:`pixelpipe.fetch.guard.check_url_form`, with :func:`webhook_policy`), so a URL
that could never be delivered is a 422 now instead of a failed webhook later:

* an absolute ``https`` URL (``http`` too in test mode), at most 2,000 characters, no
  ``user:password@``;
* a host that *spells* an address (``127.0.0.1``, ``[::1]``, ``10.0.0.5``, ``169.254.169.254``,
  ``2130706433``, ``0x7f.1``, IPv4-mapped or NAT64 IPv6 …) must be a public address; the names
  ``localhost`` and ``*.localhost`` are loopback by definition;
* any other host name is accepted as written — no DNS lookup happens while a request waits —
  and judged by the addresses it resolves to on every delivery attempt (a name that resolves to
  a private address fails then, with ``destination refused``).

``PIXELPIPE_WEBHOOK_ALLOW_PRIVATE=true`` lifts the address rules at both ends (private networks,
loopback and plain ``http``; how the tests reach a receiver on 127.0.0.1); test mode
(``PIXELPIPE_TEST_MODE``) allows loopback and ``http`` at both ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pixelpipe.errors import InvalidRequest

if TYPE_CHECKING:
    from pixelpipe.fetch.guard import FetchPolicy
    from pixelpipe.settings import Settings

MAX_URL_CHARS = 2000
ALLOW_HINT = "PIXELPIPE_WEBHOOK_ALLOW_PRIVATE=true"


def webhook_policy(settings: Settings | None) -> FetchPolicy | None:
    """The guard policy for completion webhooks under ``settings`` (None: the production rule,
    public https hosts); None means no address rules (``webhook_allow_private``)."""
    from pixelpipe.fetch.guard import FetchPolicy  # lazy: `pixelpipe keys create` start-up time

    if settings is None:
        return FetchPolicy()
    if settings.webhook_allow_private:
        return None
    return FetchPolicy(allow_http_and_loopback=settings.test_mode)


def check_webhook_url(url: str, settings: Settings | None = None) -> None:
    """Raise InvalidRequest (``field: webhook``, saying what to fix) unless the delivery loop of
    a server with ``settings`` would send to ``url`` (None: the production rule)."""
    if len(url) > MAX_URL_CHARS:
        raise _invalid(f"webhook URL has {len(url)} characters; the limit is {MAX_URL_CHARS}")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme not in ("https", "http") or not host:
        raise _invalid(
            "webhook must be an absolute http(s) URL, e.g. https://example.com/hooks/pixelpipe"
        )
    if parts.username or parts.password:
        raise _invalid("webhook URL must not contain credentials")
    policy = webhook_policy(settings)
    if policy is not None:
        _check_destination(url, policy)


def _check_destination(url: str, policy: FetchPolicy) -> None:
    import httpx  # lazy, as the imports below: `pixelpipe keys create --webhook` start-up time

    from pixelpipe.errors import OutputBlocked
    from pixelpipe.fetch.addresses import is_loopback_name
    from pixelpipe.fetch.guard import check_url_form

    try:
        host = check_url_form(httpx.URL(url), policy)
    except (httpx.InvalidURL, ValueError):
        raise _invalid("webhook is not a valid URL (check its host and port)") from None
    except OutputBlocked as exc:
        raise _undeliverable(url, str(exc.extra.get("reason", "refused"))) from None
    if is_loopback_name(host) and not policy.allow_http_and_loopback:
        # what the delivery's lookup would answer, said now instead of after the job
        raise _undeliverable(url, f"{host} is a loopback name (loopback address)")


def _undeliverable(url: str, reason: str) -> InvalidRequest:
    return _invalid(
        f"webhook {url.split('?', 1)[0]} would never be delivered: {reason}. Completion webhooks "
        f"go to public https hosts only (a receiver on a private network needs {ALLOW_HINT} on "
        "the server)"
    )


def _invalid(detail: str) -> InvalidRequest:
    return InvalidRequest(detail, field="webhook")
