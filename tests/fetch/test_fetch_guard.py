"""The outbound fetch guard against a real HTTP(S) server on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import time
from dataclasses import replace

import httpx
import pytest

from pixelpipe.errors import OutputBlocked, OutputFetchError
from pixelpipe.fetch import FetchPolicy, fetch_url, guard
from pixelpipe.fetch.addresses import IPAddress

from .fakes import FakeHost

PUBLIC = ipaddress.ip_address("93.184.216.34")


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Replace the guard's resolver; returns the list of names it was asked about."""
    asked: list[str] = []

    async def resolve(name: str, port: int) -> list[IPAddress]:
        asked.append(name)
        return [ipaddress.ip_address(a) for a in answers[name]]

    monkeypatch.setattr(guard, "resolve_host", resolve)
    return asked


# --- allowed fetches (test mode) ---------------------------------------------------------------


async def test_fetches_image_in_test_mode(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy, png: bytes
) -> None:
    body, content_type = await fetch_url(host.url("/image.png"), test_mode, client)
    assert (body, content_type) == (png, "image/png")
    assert host.requests == ["/image.png"]


async def test_resolves_names_for_real(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy, png: bytes
) -> None:
    body, _ = await fetch_url(host.url("/image.png", host="localhost"), test_mode, client)
    assert body == png


@pytest.mark.parametrize(
    ("path", "expected_type"), [("/octet", "application/octet-stream"), ("/untyped", None)]
)
async def test_accepts_octet_stream_and_missing_type(
    host: FakeHost,
    client: httpx.AsyncClient,
    test_mode: FetchPolicy,
    path: str,
    expected_type: str | None,
) -> None:
    _, content_type = await fetch_url(host.url(path), test_mode, client)
    assert content_type == expected_type


async def test_follows_a_redirect_within_policy(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy, png: bytes
) -> None:
    body, _ = await fetch_url(host.url("/redirect-ok"), test_mode, client)
    assert body == png
    assert host.requests == ["/redirect-ok", "/image.png"]


async def test_allowlist_admits_listed_host(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    policy = replace(test_mode, allowed_hosts=("cdn.example", "127.0.0.1"))
    await fetch_url(host.url("/image.png"), policy, client)
    assert host.requests == ["/image.png"]


async def test_https_fetch_in_test_mode(
    tls_host: FakeHost, tls_client: httpx.AsyncClient, test_mode: FetchPolicy, png: bytes
) -> None:
    body, _ = await fetch_url(tls_host.url("/image.png", host="localhost"), test_mode, tls_client)
    assert body == png


# --- refused before anything is sent -----------------------------------------------------------


@pytest.mark.parametrize("test_mode_on", [False, True])
@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/image.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:169.254.169.254]/latest/meta-data",
        "http://[fe80::1]/x",
        "http://0.0.0.0:{port}/image.png",
        "http://192.168.1.1/x",
        "http://172.16.0.1/x",
        "http://[fd00::1]/x",
        "http://224.0.0.1/x",
        "http://100.64.0.1/x",
        "file:///etc/passwd",
        "ftp://127.0.0.1:{port}/image.png",
        "gopher://127.0.0.1:{port}/_GET",
        "https://user:pw@127.0.0.1:{port}/image.png",
    ],
)
async def test_refuses_dangerous_urls(
    host: FakeHost, client: httpx.AsyncClient, url: str, test_mode_on: bool
) -> None:
    policy = FetchPolicy(allow_http_and_loopback=test_mode_on, timeout_s=5)
    with pytest.raises(OutputBlocked):
        await fetch_url(url.format(port=host.port), policy, client)
    assert host.requests == []


@pytest.mark.parametrize("scheme_host", ["http://127.0.0.1", "http://localhost"])
async def test_refuses_loopback_and_http_without_test_mode(
    host: FakeHost, client: httpx.AsyncClient, production: FetchPolicy, scheme_host: str
) -> None:
    with pytest.raises(OutputBlocked, match="scheme 'http'"):
        await fetch_url(f"{scheme_host}:{host.port}/image.png", production, client)
    assert host.requests == []


async def test_refuses_https_loopback_without_test_mode(
    tls_host: FakeHost, tls_client: httpx.AsyncClient, production: FetchPolicy
) -> None:
    with pytest.raises(OutputBlocked, match="loopback"):
        await fetch_url(tls_host.url("/image.png", host="localhost"), production, tls_client)
    assert tls_host.requests == []


async def test_refuses_host_outside_allowlist(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    policy = replace(test_mode, allowed_hosts=("replicate.delivery", "*.replicate.delivery"))
    with pytest.raises(OutputBlocked, match="not in the allowlist"):
        await fetch_url(host.url("/image.png"), policy, client)
    assert host.requests == []


@pytest.mark.parametrize("answers", [["10.0.0.7"], ["93.184.216.34", "192.168.0.2"], ["::1"]])
async def test_refuses_name_resolving_to_a_private_address(
    monkeypatch: pytest.MonkeyPatch,
    client: httpx.AsyncClient,
    production: FetchPolicy,
    answers: list[str],
) -> None:
    asked = fake_dns(monkeypatch, {"images.example": answers})
    with pytest.raises(OutputBlocked, match="resolves to"):
        await fetch_url("https://images.example/out.png", production, client)
    assert asked == ["images.example"]


# --- refused after a hop or at connect time ----------------------------------------------------


async def test_refuses_redirect_to_metadata(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    with pytest.raises(OutputBlocked, match="link-local"):
        await fetch_url(host.url("/redirect-metadata"), test_mode, client)
    assert host.requests == ["/redirect-metadata"]


async def test_refuses_redirect_to_file(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    with pytest.raises(OutputBlocked, match="scheme 'file'"):
        await fetch_url(host.url("/redirect-file"), test_mode, client)


async def test_redirect_rechecks_the_allowlist(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    policy = replace(test_mode, allowed_hosts=("127.0.0.1",))
    with pytest.raises(OutputBlocked, match="localhost is not in the allowlist"):
        await fetch_url(host.url("/redirect-localhost"), policy, client)
    assert host.requests == ["/redirect-localhost"]


async def test_too_many_redirects(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    with pytest.raises(OutputFetchError, match="more than 3 redirects"):
        await fetch_url(host.url("/redirect-loop"), test_mode, client)
    assert len(host.requests) == 4


async def test_dns_rebinding_is_caught_before_the_request_is_sent(
    monkeypatch: pytest.MonkeyPatch,
    tls_host: FakeHost,
    tls_client: httpx.AsyncClient,
    production: FetchPolicy,
) -> None:
    """Our lookup says "public", httpx's own lookup lands on 127.0.0.1: refused at connect."""
    fake_dns(monkeypatch, {"localhost": [str(PUBLIC)]})
    with pytest.raises(OutputBlocked, match=r"connected to 127\.0\.0\.1 \(loopback"):
        await fetch_url(tls_host.url("/image.png", host="localhost"), production, tls_client)
    assert tls_host.requests == []


async def test_pooled_connection_is_checked_too(
    monkeypatch: pytest.MonkeyPatch,
    tls_host: FakeHost,
    tls_client: httpx.AsyncClient,
    test_mode: FetchPolicy,
    production: FetchPolicy,
) -> None:
    url = tls_host.url("/image.png", host="localhost")
    await fetch_url(url, test_mode, tls_client)  # leaves a keep-alive connection in the pool
    fake_dns(monkeypatch, {"localhost": [str(PUBLIC)]})
    with pytest.raises(OutputBlocked, match=r"connected to 127\.0\.0\.1"):
        await fetch_url(url, production, tls_client)
    # the request went out on the pooled connection; the answer was refused before its body
    assert tls_host.requests == ["/image.png", "/image.png"]


async def test_unverifiable_connection_is_refused(
    monkeypatch: pytest.MonkeyPatch, production: FetchPolicy, png: bytes
) -> None:
    fake_dns(monkeypatch, {"cdn.example": [str(PUBLIC)]})
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=png))
    async with httpx.AsyncClient(transport=transport) as mock_client:
        with pytest.raises(OutputBlocked, match="cannot be verified"):
            await fetch_url("https://cdn.example/out.png", production, mock_client)
        test_mode = replace(production, allow_http_and_loopback=True)
        assert (await fetch_url("https://cdn.example/out.png", test_mode, mock_client))[0] == png


# --- answers that are not a usable image -------------------------------------------------------


@pytest.mark.parametrize("path", ["/gone?token=SECRET", "/expired?X-Amz-Signature=SECRET"])
async def test_expired_url(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy, path: str
) -> None:
    with pytest.raises(OutputFetchError, match="expired or gone") as caught:
        await fetch_url(host.url(path), test_mode, client)
    assert caught.value.extra["transient"] is False
    assert "SECRET" not in str(caught.value)
    assert "SECRET" not in str(caught.value.to_problem())


@pytest.mark.parametrize(("path", "transient"), [("/unavailable", True), ("/teapot", False)])
async def test_other_statuses(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy, path: str, transient: bool
) -> None:
    with pytest.raises(OutputFetchError) as caught:
        await fetch_url(host.url(path), test_mode, client)
    assert caught.value.extra["transient"] is transient


async def test_refuses_non_image_content_type(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    with pytest.raises(OutputFetchError, match="text/html"):
        await fetch_url(host.url("/html"), test_mode, client)


async def test_refuses_declared_oversize_body(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    with pytest.raises(OutputFetchError, match="limit"):
        await fetch_url(host.url("/declared-huge"), test_mode, client)


async def test_stops_reading_at_max_bytes(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    policy = replace(test_mode, max_bytes=100_000)
    with pytest.raises(OutputFetchError, match="100000-byte limit") as caught:
        await fetch_url(host.url("/stream-huge"), policy, client)
    assert caught.value.extra["transient"] is False


async def test_slow_body_hits_the_deadline(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    policy = replace(test_mode, timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(OutputFetchError, match=r"within 0\.5s") as caught:
        await fetch_url(host.url("/slow"), policy, client)
    assert time.monotonic() - started < 2
    assert caught.value.extra["transient"] is True


async def test_connection_refused_is_transient(
    client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    with pytest.raises(OutputFetchError) as caught:
        await fetch_url("http://127.0.0.1:9/image.png", test_mode, client)
    assert caught.value.extra["transient"] is True


async def test_blocked_message_never_shows_the_query(
    client: httpx.AsyncClient, test_mode: FetchPolicy
) -> None:
    with pytest.raises(OutputBlocked) as caught:
        await fetch_url("http://10.0.0.1/out.png?sig=SECRET#frag", test_mode, client)
    assert "SECRET" not in str(caught.value)
    assert "http://10.0.0.1/out.png" in str(caught.value)
