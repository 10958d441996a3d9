"""A backend's fetch policy: its own host over plain http at a private or loopback address;
never another host, never a link-local (metadata) address."""

from __future__ import annotations

import httpx
import pytest

from pixelpipe.errors import OutputBlocked
from pixelpipe.fetch.addresses import parse_ip, refusal_reason
from pixelpipe.fetch.guard import FetchPolicy, check_url_form

OWN = FetchPolicy(allowed_hosts=("10.1.2.3",), own_network=True)


def test_its_own_private_host_over_http() -> None:
    assert check_url_form(httpx.URL("http://10.1.2.3:5000/out/1.png"), OWN) == "10.1.2.3"


@pytest.mark.parametrize(
    "url",
    ["http://10.1.2.4/x.png", "https://example.com/x.png", "http://169.254.169.254/latest"],
)
def test_nothing_else(url: str) -> None:
    with pytest.raises(OutputBlocked):
        check_url_form(httpx.URL(url), OWN)


def test_private_addresses_only_for_an_operators_own_server() -> None:
    for text in ("10.1.2.3", "192.168.1.9", "127.0.0.1", "fd00::1"):
        ip = parse_ip(text)
        assert ip is not None
        assert refusal_reason(ip, allow_private=True) is None
        assert refusal_reason(ip) is not None  # the default is unchanged
    metadata = parse_ip("169.254.169.254")
    assert metadata is not None and refusal_reason(metadata, allow_private=True)
    blocked = FetchPolicy(allowed_hosts=("10.1.2.3",))
    with pytest.raises(OutputBlocked):
        check_url_form(httpx.URL("http://10.1.2.3/x.png"), blocked)
