"""fetch_output: inline bytes, data: URIs, and URLs through the guard."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from urllib.parse import quote_from_bytes

import blake3
import httpx
import pytest

from pixelpipe.errors import ImageInvalid, OutputBlocked, OutputFetchError
from pixelpipe.fetch import FetchPolicy, fetch_output
from pixelpipe.fetch.datauri import decode_data_uri
from pixelpipe.providers.base import Output

from .fakes import FakeHost


async def test_inline_bytes_pass_through(
    client: httpx.AsyncClient, production: FetchPolicy, png: bytes
) -> None:
    assert await fetch_output(Output(data=png), production, client) == png


async def test_base64_data_uri(
    client: httpx.AsyncClient, production: FetchPolicy, png: bytes
) -> None:
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    assert await fetch_output(Output(url=uri), production, client) == png


async def test_percent_encoded_data_uri(
    client: httpx.AsyncClient, production: FetchPolicy, png: bytes
) -> None:
    uri = "data:image/png," + quote_from_bytes(png)
    assert await fetch_output(Output(url=uri), production, client) == png


async def test_url_goes_through_the_guard(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy, png: bytes
) -> None:
    assert await fetch_output(Output(url=host.url("/image.png")), test_mode, client) == png
    production = replace(test_mode, allow_http_and_loopback=False)
    with pytest.raises(OutputBlocked):
        await fetch_output(Output(url=host.url("/image.png")), production, client)


async def test_empty_output(client: httpx.AsyncClient, production: FetchPolicy) -> None:
    with pytest.raises(OutputFetchError, match="neither"):
        await fetch_output(Output(), production, client)


async def test_oversized_inline_bytes(client: httpx.AsyncClient, png: bytes) -> None:
    policy = FetchPolicy(max_bytes=len(png) - 1)
    with pytest.raises(OutputFetchError, match="limit"):
        await fetch_output(Output(data=png), policy, client)
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    with pytest.raises(OutputFetchError, match="limit"):
        await fetch_output(Output(url=uri), policy, client)


def test_data_uri_media_type_and_whitespace() -> None:
    data, media = decode_data_uri("DATA:image/webp;base64,aGVs\nbG8=", max_bytes=100)
    assert (data, media) == (b"hello", "image/webp")
    assert decode_data_uri("data:,a%20b", max_bytes=100) == (b"a b", None)


@pytest.mark.parametrize("uri", ["data:image/png;base64,@@@@", "data:image/png;base64", "http://x"])
def test_malformed_data_uri(uri: str) -> None:
    with pytest.raises(ImageInvalid):
        decode_data_uri(uri, max_bytes=100)


def test_oversized_encoded_payload_refused_before_decoding() -> None:
    with pytest.raises(OutputFetchError):
        decode_data_uri("data:;base64," + "A" * 1000, max_bytes=100)


@pytest.mark.parametrize("kind", ["blake3", "sha256"])
async def test_a_url_output_is_checked_against_the_hash_the_provider_gave(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy, png: bytes, kind: str
) -> None:
    """Comfy API v2 lists outputs with their blake3: bytes that do not match are fetched again
    (a transient error), never stored."""
    right = (blake3.blake3(png) if kind == "blake3" else hashlib.sha256(png)).hexdigest()
    url = host.url("/image.png")
    assert await fetch_output(Output(url=url, digest=f"{kind}:{right}"), test_mode, client) == png
    wrong = f"{kind}:{'0' * len(right)}"
    with pytest.raises(OutputFetchError, match=f"does not match the {kind} hash") as caught:
        await fetch_output(Output(url=url, digest=wrong), test_mode, client)
    assert caught.value.retryable or caught.value.extra.get("transient")


async def test_a_hash_of_an_unknown_kind_is_not_a_reason_to_refuse(
    host: FakeHost, client: httpx.AsyncClient, test_mode: FetchPolicy, png: bytes
) -> None:
    output = Output(url=host.url("/image.png"), digest="md17:abc")
    assert await fetch_output(output, test_mode, client) == png
