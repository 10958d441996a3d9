"""HMAC-signed image URLs: valid, tampered, expired; and one URL per image per expiry bucket."""

from __future__ import annotations

import pytest

from pixelpipe.delivery.signing import bucket_size, expiry_for, sign, verify
from pixelpipe.errors import DeliveryError

SECRET = b"s" * 48
KEY = "flux-schnell/ab/ab12.webp"
NOW = 1_800_000_000.0
EXP = 1_800_003_600


def test_valid_signature_verifies() -> None:
    verify(KEY, EXP, sign(KEY, EXP, SECRET), SECRET, now=NOW)


def test_signature_is_urlsafe_base64_without_padding() -> None:
    sig = sign(KEY, EXP, SECRET)
    assert len(sig) == 43  # 32 bytes of HMAC-SHA256
    assert set(sig) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize(
    ("key", "exp", "secret"),
    [
        ("flux-schnell/ab/ab13.webp", EXP, SECRET),  # another image
        (KEY, EXP + 1, SECRET),  # a longer life
        (KEY, EXP, b"t" * 48),  # another server's key
    ],
    ids=["tampered-key", "tampered-exp", "wrong-secret"],
)
def test_tampered_url_is_refused(key: str, exp: int, secret: bytes) -> None:
    with pytest.raises(DeliveryError, match="invalid"):
        verify(key, exp, sign(KEY, EXP, SECRET), secret, now=NOW)


@pytest.mark.parametrize(
    "sig",
    ["", "A" * 43, "not base64 at all ✗", "x" * 500],
    ids=["empty", "forged", "non-ascii", "oversized"],
)
def test_tampered_signature_is_refused(sig: str) -> None:
    with pytest.raises(DeliveryError, match="invalid"):
        verify(KEY, EXP, sig, SECRET, now=NOW)


def test_one_flipped_character_is_refused() -> None:
    sig = sign(KEY, EXP, SECRET)
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    with pytest.raises(DeliveryError):
        verify(KEY, EXP, flipped, SECRET, now=NOW)


def test_expired_url_is_refused_from_its_expiry_second() -> None:
    sig = sign(KEY, EXP, SECRET)
    verify(KEY, EXP, sig, SECRET, now=EXP - 0.001)
    with pytest.raises(DeliveryError, match="expired"):
        verify(KEY, EXP, sig, SECRET, now=EXP)


def test_error_messages_do_not_echo_the_signature() -> None:
    sig = sign(KEY, EXP, SECRET)
    with pytest.raises(DeliveryError) as caught:
        verify(KEY, EXP + 1, sig, SECRET, now=NOW)
    assert sig not in str(caught.value.to_problem())


@pytest.mark.parametrize("ttl", [60, 3600, 86_400, 7 * 86_400])
def test_expiry_is_at_least_ttl_and_stable_within_a_bucket(ttl: int) -> None:
    bucket = bucket_size(ttl)
    start = NOW - NOW % bucket + 1  # just after a boundary
    first = expiry_for(start, ttl)
    assert first >= start + ttl
    assert first - (start + ttl) < bucket  # never more than one bucket longer than asked
    assert expiry_for(start + bucket - 2, ttl) == first  # same URL for the whole window
    assert expiry_for(start + bucket, ttl) == first + bucket  # then the next one


def test_bucket_is_a_quarter_of_the_ttl_between_a_minute_and_an_hour() -> None:
    assert bucket_size(60) == 60
    assert bucket_size(3600) == 900
    assert bucket_size(7 * 86_400) == 3600
