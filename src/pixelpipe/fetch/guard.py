"""Stage 9 — the outbound fetch guard (SSRF defence) for provider output URLs.

A provider answer names a URL and we download it from inside our network, so the URL is treated as
hostile. Every hop (the first URL and each redirect, followed by hand) passes the same checks
before a byte is sent:

1. the scheme is ``https`` (``http`` too in test mode) and there is no ``user:password@`` part;
2. the host matches the policy's allowlist (exact names or ``*.suffix`` wildcards);
3. the name is resolved here and *every* address must be public (:mod:`.addresses`);
4. when httpx opens the TCP connection, the address it really connected to is checked again
   *before the request is written* (an httpcore ``trace`` hook), which defeats DNS rebinding
   (a name that answered "public" to us and "private" to httpx); a pooled connection is checked
   from the response's ``network_stream`` before the body is read.

Then the status (403/404/410 mean the temporary URL expired), the Content-Type (``image/*`` or
``application/octet-stream``; the verifier decides the truth), the Content-Length and the streamed
body against ``max_bytes``, all under one overall deadline. Error messages and logs name the
scheme, host and path of a URL, never its query string (signed URLs carry their token there).

The client must connect directly, not through a proxy (the proxy's address is what a connection
check would see): build it with :func:`new_fetch_client`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from pixelpipe.errors import OutputBlocked, OutputFetchError
from pixelpipe.fetch.addresses import IPAddress, literal_ip, parse_ip, refusal_reason
from pixelpipe.fetch.datauri import decode_data_uri, is_data_uri
from pixelpipe.fetch.digest import check_digest
from pixelpipe.providers.base import Output

log = logging.getLogger(__name__)

MiB = 1024 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_GONE = frozenset({403, 404, 410})
_HEADERS = {"Accept": "image/*", "Accept-Encoding": "identity"}
_CONNECT_EVENT = "connection.connect_tcp.complete"  # httpcore trace event: TCP connected
_DEFAULT_PORTS = {"https": 443, "http": 80}

TraceHook = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Where and how much the fetch stage may download (one policy per provider)."""

    allowed_hosts: tuple[str, ...] = ()  # exact hosts or "*.suffix"; empty = any public host
    allow_http_and_loopback: bool = False  # test mode ONLY: fakes on 127.0.0.1 over http
    # the allowlist names an operator's own server (a self-hosted backend of the catalog file):
    # plain http and its private or loopback addresses are allowed (link-local/metadata never)
    own_network: bool = False
    max_bytes: int = 25 * MiB
    timeout_s: float = 30.0
    max_redirects: int = 3


def new_fetch_client(policy: FetchPolicy | None = None) -> httpx.AsyncClient:
    """A client fit for the guard: direct connections (no proxy from the environment)."""
    timeout = (policy or FetchPolicy()).timeout_s
    return httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=timeout)


async def fetch_output(output: Output, policy: FetchPolicy, client: httpx.AsyncClient) -> bytes:
    """The raw bytes of one provider output: inline bytes, a ``data:`` URI or a guarded fetch."""
    if output.data is not None:
        if len(output.data) > policy.max_bytes:
            raise OutputFetchError(f"inline output larger than the {policy.max_bytes}-byte limit")
        return output.data
    if output.url is None:
        raise OutputFetchError("provider output has neither a URL nor bytes")
    if is_data_uri(output.url):
        return decode_data_uri(output.url, max_bytes=policy.max_bytes)[0]
    body, _content_type = await fetch_url(output.url, policy, client)
    if output.digest:
        check_digest(body, output.digest, describe_url(_parse(output.url)))
    return body


async def fetch_url(
    url: str, policy: FetchPolicy, client: httpx.AsyncClient
) -> tuple[bytes, str | None]:
    """Download ``url`` under ``policy``: (body, media type or None when the host sent none)."""
    target = _parse(url)
    try:
        async with asyncio.timeout(policy.timeout_s):
            return await _fetch(target, policy, client)
    except TimeoutError as exc:
        detail = f"no complete answer within {policy.timeout_s:g}s from {describe_url(target)}"
        raise OutputFetchError(detail, transient=True) from exc


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (tests replace this function to fake DNS)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise OutputFetchError(f"cannot resolve output host {host}", transient=True) from exc
    return [ip for info in infos if (ip := parse_ip(str(info[4][0]))) is not None]


async def check_url(url: httpx.URL, policy: FetchPolicy) -> None:
    """Raise OutputBlocked unless ``url`` may be fetched (scheme, host, resolved addresses)."""
    try:
        host = check_url_form(url, policy)
    except OutputBlocked as exc:
        log.warning("fetch guard refused %s: %s", describe_url(url), exc.extra.get("reason"))
        raise
    if literal_ip(host) is not None:
        return  # the address itself was judged by check_url_form
    for ip in await _addresses(host, url.port or _DEFAULT_PORTS[url.scheme]):
        _refuse_address(url, ip, policy)


def check_url_form(url: httpx.URL, policy: FetchPolicy) -> str:
    """What can be refused from the URL as written, without DNS (returns its host): the scheme,
    credentials, the allowlist and a host that spells an address (:func:`literal_ip`). A name is
    judged by :func:`check_url` from the addresses it resolves to. Raises OutputBlocked (not
    logged)."""
    plain = policy.allow_http_and_loopback or policy.own_network
    allowed_schemes = ("https", "http") if plain else ("https",)
    if url.scheme not in allowed_schemes:
        raise _refused(url, f"scheme {url.scheme!r} is not allowed")
    if url.userinfo:
        raise _refused(url, "credentials in the URL are not allowed")
    host = url.raw_host.decode("ascii").lower().rstrip(".")
    if not host:
        raise _refused(url, "no host")
    if not host_allowed(host, policy.allowed_hosts):
        raise _refused(url, f"host {host} is not in the allowlist")
    ip = literal_ip(host)
    if ip is not None:
        reason = refusal_reason(
            ip, allow_loopback=policy.allow_http_and_loopback, allow_private=policy.own_network
        )
        if reason is not None:
            spelled = host.strip("[]")
            said = spelled if str(ip) == spelled else f"{spelled} means {ip}"
            raise _refused(url, f"{said} ({reason})")
    return host


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """Exact match, or ``*.suffix`` matching any name under ``suffix``; no patterns = any host."""
    if not patterns:
        return True
    return any(_host_matches(host, p.lower().rstrip(".")) for p in patterns)


def describe_url(url: httpx.URL) -> str:
    """``scheme://host[:port]/path`` — safe for messages and logs (no query, no credentials)."""
    port = f":{url.port}" if url.port else ""
    path = url.path if len(url.path) <= 100 else url.path[:100] + "…"
    return f"{url.scheme}://{url.host}{port}{path}"


def _host_matches(host: str, pattern: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def _parse(url: str) -> httpx.URL:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise OutputBlocked("malformed output URL", reason="malformed URL") from exc


async def _addresses(host: str, port: int) -> list[IPAddress]:
    literal = literal_ip(host)
    addresses = [literal] if literal is not None else await resolve_host(host, port)
    if not addresses:
        raise OutputFetchError(f"output host {host} has no address", transient=True)
    return addresses


def _refuse_address(url: httpx.URL, ip: IPAddress, policy: FetchPolicy) -> None:
    reason = refusal_reason(
        ip, allow_loopback=policy.allow_http_and_loopback, allow_private=policy.own_network
    )
    if reason is not None:
        raise _blocked(url, f"{url.host} resolves to {ip} ({reason})")


def _blocked(url: httpx.URL, reason: str) -> OutputBlocked:
    log.warning("fetch guard refused %s: %s", describe_url(url), reason)
    return _refused(url, reason)


def _refused(url: httpx.URL, reason: str) -> OutputBlocked:
    return OutputBlocked(f"refused to fetch {describe_url(url)}: {reason}", reason=reason)


async def _fetch(
    url: httpx.URL, policy: FetchPolicy, client: httpx.AsyncClient
) -> tuple[bytes, str | None]:
    first = url
    for _hop in range(policy.max_redirects + 1):
        await check_url(url, policy)
        with _translate_errors(url):
            async with client.stream(
                "GET",
                url,
                headers=_HEADERS,
                follow_redirects=False,
                extensions={"trace": _connect_hook(url, policy)},
            ) as response:
                _vet_connection(url, response.extensions.get("network_stream"), policy)
                target = _redirect_target(response)
                if target is None:
                    return await _read_image(url, response, policy)
        url = target
    raise OutputFetchError(
        f"more than {policy.max_redirects} redirects from {describe_url(first)}", transient=False
    )


@contextmanager
def _translate_errors(url: httpx.URL) -> Iterator[None]:
    try:
        yield
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        detail = f"{type(exc).__name__} fetching {describe_url(url)}"
        raise OutputFetchError(detail, transient=True) from exc
    except httpx.HTTPError as exc:
        detail = f"{type(exc).__name__} fetching {describe_url(url)}"
        raise OutputFetchError(detail, transient=False) from exc


def _connect_hook(url: httpx.URL, policy: FetchPolicy) -> TraceHook:
    """An httpcore trace hook that vets each new TCP connection before the request is sent."""

    async def hook(event: str, info: dict[str, Any]) -> None:
        if event != _CONNECT_EVENT:
            return
        stream = info.get("return_value")
        try:
            _vet_connection(url, stream, policy)
        except OutputBlocked:
            if stream is not None:
                await stream.aclose()
            raise

    return hook


def _vet_connection(url: httpx.URL, stream: Any, policy: FetchPolicy) -> None:
    """Refuse unless the peer address of ``stream`` (an httpcore network stream) is allowed."""
    if stream is None:
        if policy.allow_http_and_loopback:
            return  # test transports (httpx.MockTransport) have no socket
        raise _blocked(url, "the connected address cannot be verified")
    peer = stream.get_extra_info("server_addr")
    ip = parse_ip(str(peer[0])) if isinstance(peer, tuple) and peer else None
    if ip is None:
        raise _blocked(url, "the connected address cannot be verified")
    reason = refusal_reason(
        ip, allow_loopback=policy.allow_http_and_loopback, allow_private=policy.own_network
    )
    if reason is not None:
        raise _blocked(url, f"connected to {ip} ({reason})")


def _redirect_target(response: httpx.Response) -> httpx.URL | None:
    location = response.headers.get("location")
    if response.status_code not in _REDIRECTS or not location:
        return None
    try:
        return response.url.join(location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise OutputBlocked("malformed redirect target", reason="malformed URL") from exc


async def _read_image(
    url: httpx.URL, response: httpx.Response, policy: FetchPolicy
) -> tuple[bytes, str | None]:
    _check_status(url, response)
    content_type = _check_content_type(url, response)
    _check_declared_length(url, response, policy.max_bytes)
    return await _read_capped(url, response, policy.max_bytes), content_type


def _check_status(url: httpx.URL, response: httpx.Response) -> None:
    code = response.status_code
    if code == 200:
        return
    where = describe_url(url)
    if code in _GONE:
        detail = f"output URL expired or gone (HTTP {code} from {where})"
        raise OutputFetchError(detail, upstream_status=code, transient=False)
    transient = code >= 500 or code == 429
    raise OutputFetchError(f"HTTP {code} from {where}", upstream_status=code, transient=transient)


def _check_content_type(url: httpx.URL, response: httpx.Response) -> str | None:
    header: str | None = response.headers.get("content-type")
    if header is None:
        return None
    media = header.split(";", 1)[0].strip().lower()
    if media.startswith("image/") or media == "application/octet-stream":
        return media
    detail = f"output is {media or 'untyped'}, not an image ({describe_url(url)})"
    raise OutputFetchError(detail, transient=False)


def _check_declared_length(url: httpx.URL, response: httpx.Response, max_bytes: int) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_big(url, max_bytes)


async def _read_capped(url: httpx.URL, response: httpx.Response, max_bytes: int) -> bytes:
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            raise _too_big(url, max_bytes)
    return bytes(body)


def _too_big(url: httpx.URL, max_bytes: int) -> OutputFetchError:
    detail = f"output larger than the {max_bytes}-byte limit ({describe_url(url)})"
    return OutputFetchError(detail, transient=False)
