"""Address classification and allowlist matching (pure functions)."""

from __future__ import annotations

import ipaddress

import pytest

from pixelpipe.fetch import host_allowed
from pixelpipe.fetch.addresses import parse_ip, refusal_reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "private"),  # reserved 240/4 is also "private" to Python
        ("100.64.0.1", "not globally routable"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:0a00:0001::1", "private"),  # 6to4 of 10.0.0.1
    ],
)
def test_refused_addresses(address: str, reason: str) -> None:
    refusal = refusal_reason(ipaddress.ip_address(address))
    assert refusal is not None
    assert reason in refusal


@pytest.mark.parametrize(
    "address", ["93.184.216.34", "8.8.8.8", "2606:4700::6810:84e5", "::ffff:8.8.8.8"]
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
def test_test_mode_allows_loopback_only(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_loopback=True) is None


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "0.0.0.0"])
def test_test_mode_still_refuses_the_rest(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address), allow_loopback=True) is not None


def test_parse_ip() -> None:
    assert parse_ip("[::1]") == ipaddress.ip_address("::1")
    assert parse_ip("10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert parse_ip("replicate.delivery") is None
    assert parse_ip("2130706433") is None  # a name to us; the resolver then refuses 127.0.0.1


ALLOW = ("replicate.delivery", "*.replicate.delivery", "*.fal.media")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("replicate.delivery", True),
        ("pbxt.replicate.delivery", True),
        ("a.b.replicate.delivery", True),
        ("v3.fal.media", True),
        ("fal.media", False),  # "*.x" is only names under x
        ("evilreplicate.delivery", False),
        ("replicate.delivery.evil.com", False),
        ("example.com", False),
    ],
)
def test_allowlist(host: str, allowed: bool) -> None:
    assert host_allowed(host, ALLOW) is allowed


def test_empty_allowlist_admits_any_host() -> None:
    assert host_allowed("anything.example", ())


def test_allowlist_is_case_and_dot_insensitive() -> None:
    assert host_allowed("cdn.example", ("CDN.Example.",))
