"""The packaged price table prices every catalog combination exactly as providers.md says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pixelpipe.catalog import load_catalog
from pixelpipe.errors import ConfigError
from pixelpipe.intake import CanonicalRequest
from pixelpipe.pricing import billed_megapixels, load_price_table
from pixelpipe.pricing.price import Price

AT = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
VERSION = "2026-01"

# Written out by hand from the vendors' price pages (not derived from prices.toml).
PER_IMAGE = {
    "flux-schnell": 3_000,
    "flux-dev": 25_000,
    "flux-1.1-pro": 40_000,
    "flux-kontext-pro": 40_000,
}
FAL_PER_IMAGE = {"flux-kontext-pro": 40_000}  # fal bills Kontext per image, not per megapixel
PER_MP = {"flux-schnell": 3_000, "flux-dev": 25_000, "flux-1.1-pro": 40_000}
# whole megapixels billed by fal (1 MP = 1024*1024 = 1,048,576 pixels, rounded up):
# every catalog aspect ratio is just under or at one such megapixel
FAL_MP = {
    "1024x1024": 1,
    "1344x768": 1,
    "1536x640": 1,
    "1216x832": 1,
    "832x1216": 1,
    "896x1088": 1,
    "1088x896": 1,
    "896x1152": 1,
    "1152x896": 1,
    "768x1344": 1,
    "640x1536": 1,
}
QUALITY_SIZE = {
    ("gpt-image-1", "low", "1024x1024"): 11_000,
    ("gpt-image-1", "low", "1536x1024"): 16_000,
    ("gpt-image-1", "low", "1024x1536"): 16_000,
    ("gpt-image-1", "medium", "1024x1024"): 42_000,
    ("gpt-image-1", "medium", "1536x1024"): 63_000,
    ("gpt-image-1", "medium", "1024x1536"): 63_000,
    ("gpt-image-1", "high", "1024x1024"): 167_000,
    ("gpt-image-1", "high", "1536x1024"): 250_000,
    ("gpt-image-1", "high", "1024x1536"): 250_000,
    ("gpt-image-1.5", "low", "1024x1024"): 9_000,
    ("gpt-image-1.5", "low", "1536x1024"): 13_000,
    ("gpt-image-1.5", "low", "1024x1536"): 13_000,
    ("gpt-image-1.5", "medium", "1024x1024"): 34_000,
    ("gpt-image-1.5", "medium", "1536x1024"): 50_000,
    ("gpt-image-1.5", "medium", "1024x1536"): 50_000,
    ("gpt-image-1.5", "high", "1024x1024"): 133_000,
    ("gpt-image-1.5", "high", "1536x1024"): 200_000,
    ("gpt-image-1.5", "high", "1024x1536"): 200_000,
    ("dall-e-3", "standard", "1024x1024"): 40_000,
    ("dall-e-3", "standard", "1792x1024"): 80_000,
    ("dall-e-3", "standard", "1024x1792"): 80_000,
    ("dall-e-3", "hd", "1024x1024"): 80_000,
    ("dall-e-3", "hd", "1792x1024"): 120_000,
    ("dall-e-3", "hd", "1024x1792"): 120_000,
}


def expected(model: str, provider: str, size: str, quality: str | None) -> Price:
    if provider == "preview":
        return Price(0, VERSION, "free")
    if provider == "replicate":
        return Price(PER_IMAGE[model], VERSION, "per_image")
    if provider == "fal" and model in FAL_PER_IMAGE:
        return Price(FAL_PER_IMAGE[model], VERSION, "per_image")
    if provider == "fal":
        return Price(PER_MP[model] * FAL_MP[size], VERSION, "per_megapixel")
    assert quality is not None
    return Price(QUALITY_SIZE[(model, quality, size)], VERSION, "quality_size")


def combinations() -> list[tuple[str, str, int, int, str | None]]:
    out = []
    for spec in load_catalog().models.values():
        qualities: tuple[str | None, ...] = spec.qualities or (None,)
        for provider in spec.providers:
            for width, height in spec.aspect_ratios.values():
                for quality in qualities:
                    out.append((spec.name, provider, width, height, quality))
    return out


def request(model: str, width: int, height: int, quality: str | None = None) -> CanonicalRequest:
    return CanonicalRequest(model, "a red fox", 1, width, height, "png", quality=quality)


COMBOS = combinations()


def test_every_quality_size_entry_is_reachable_from_the_catalog() -> None:
    seen = {(m, q, f"{w}x{h}") for m, _, w, h, q in COMBOS if q is not None}
    assert seen == set(QUALITY_SIZE)
    assert len(COMBOS) > 60


@pytest.mark.parametrize(("model", "provider", "width", "height", "quality"), COMBOS)
def test_estimate_matches_the_published_price(
    model: str, provider: str, width: int, height: int, quality: str | None
) -> None:
    table = load_price_table()
    price = table.estimate(request(model, width, height, quality), provider, at=AT)
    assert price == expected(model, provider, f"{width}x{height}", quality)


def test_default_quality_is_used_when_request_has_none() -> None:
    table = load_price_table()
    price = table.estimate(request("gpt-image-1", 1024, 1024), "openai", at=AT)
    assert price.amount_micros == 42_000


def test_fal_megapixels_round_up() -> None:
    assert billed_megapixels(1344, 768, 1_000_000) == 2
    assert billed_megapixels(1024, 768, 1_000_000) == 1
    assert billed_megapixels(64, 64, 1_000_000) == 1
    assert billed_megapixels(2048, 2048, 1_000_000) == 5


def test_fal_actual_uses_the_produced_size() -> None:
    table = load_price_table()
    price = table.actual(
        request("flux-dev", 1024, 1024), "fal", {"width": 1024, "height": 768}, at=AT
    )
    assert price == Price(25_000, VERSION, "per_megapixel")


def test_gpt_image_actual_uses_usage_tokens() -> None:
    table = load_price_table()
    usage = {
        "input_tokens": 50,
        "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
        "output_tokens": 1056,
        "total_tokens": 1106,
    }
    price = table.actual(request("gpt-image-1", 1024, 1024, "medium"), "openai", usage, at=AT)
    # 10 * $5/1M + 40 * $10/1M + 1056 * $40/1M = 50 + 400 + 42240 micros
    assert price == Price(42_690, VERSION, "tokens")


def test_gpt_image_actual_without_usage_falls_back_to_the_table() -> None:
    table = load_price_table()
    req = request("gpt-image-1", 1536, 1024, "high")
    assert table.actual(req, "openai", {}, at=AT) == Price(250_000, VERSION, "quality_size")
    bad = {"input_tokens": "ten", "output_tokens": 3}
    assert table.actual(req, "openai", bad, at=AT) == Price(250_000, VERSION, "quality_size")


def test_dalle_usage_is_ignored_because_it_has_no_token_rates() -> None:
    table = load_price_table()
    req = request("dall-e-3", 1024, 1024, "hd")
    usage = {"input_tokens": 1, "output_tokens": 1}
    assert table.actual(req, "openai", usage, at=AT) == Price(80_000, VERSION, "quality_size")


@pytest.mark.parametrize(
    ("model", "provider", "width", "height", "quality"),
    [
        ("flux-dev", "openai", 1024, 1024, None),  # provider does not serve it
        ("mystery-model", "replicate", 1024, 1024, None),
        ("gpt-image-1", "openai", 512, 512, "low"),  # size missing from the table
        ("gpt-image-1", "openai", 1024, 1024, "ultra"),  # quality missing from the table
    ],
)
def test_unknown_price_is_unpriced_never_zero(
    model: str, provider: str, width: int, height: int, quality: str | None
) -> None:
    table = load_price_table()
    req = request(model, width, height, quality)
    assert table.estimate(req, provider, at=AT) == Price(None, VERSION, "unknown")
    assert table.actual(req, provider, {}, at=AT) == Price(None, VERSION, "unknown")


def test_before_the_first_version_everything_is_unpriced() -> None:
    table = load_price_table()
    early = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    price = table.estimate(request("flux-dev", 1024, 1024), "replicate", at=early)
    assert price == Price(None, "none", "unknown")


def test_display_gives_each_provider_at_the_default_size() -> None:
    table = load_price_table()
    assert table.display("flux-schnell") == {"replicate": 3_000, "fal": 3_000}
    assert table.display("gpt-image-1") == {"openai": 42_000}
    assert table.display("dall-e-3") == {"openai": 40_000}
    assert table.display("preview") == {"preview": 0}
    assert table.display("mystery") == {}
    assert table.display("flux-dev", ["replicate", "selfhosted"]) == {
        "replicate": 25_000,
        "selfhosted": None,
    }


def test_storage_rates_by_backend() -> None:
    table = load_price_table()
    assert table.storage_rates("r2") == (15_000, 0)
    assert table.storage_rates("s3") == (23_000, 90_000)
    assert table.storage_rates("file") == (0, 0)
    assert table.storage_rates("memory") == (0, 0)
    assert table.storage_month_micros("r2", 10 * 2**30) == 150_000
    with pytest.raises(ConfigError, match=r"prices\.toml"):
        table.storage_rates("tape")


VERSIONED = """
[[versions]]
version = "v2"
effective = 2026-07-01

[versions.models.replicate.flux-dev]
basis = "per_image"
usd = 0.03

[[versions]]
version = "v1"
effective = 2026-01-01

[versions.models.replicate.flux-dev]
basis = "per_image"
usd = 0.025
"""


def test_a_newer_version_applies_only_from_its_effective_date(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(VERSIONED)
    table = load_price_table(path)
    req = request("flux-dev", 1024, 1024)
    before = datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC).timestamp()
    after = datetime(2026, 7, 1, tzinfo=UTC).timestamp()
    assert table.estimate(req, "replicate", at=before) == Price(25_000, "v1", "per_image")
    assert table.estimate(req, "replicate", at=after) == Price(30_000, "v2", "per_image")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[[versions]]\nversion='x'\neffective=2026-01-01\n[versions.models.a.b]\nbasis='magic'\n",
            "basis",
        ),
        (
            "[[versions]]\nversion='x'\neffective=2026-01-01\n[versions.models.a.b]\nbasis='per_image'\n",
            "usd",
        ),
        ("[[versions]]\nversion='x'\n", "effective"),
        ("versions = []\n", "no"),
        ("not toml ===", "could not be loaded"),
    ],
)
def test_invalid_tables_are_refused_with_a_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_price_table(path)


def test_prices_are_exact_decimals_not_floats() -> None:
    table = load_price_table()
    # 0.003 * 3 in binary floating point is 0.009000000000000001
    req = request("flux-schnell", 2048, 1536)  # exactly 3 MP of 1024*1024 pixels
    assert table.estimate(req, "fal", at=AT).amount_micros == 9_000


def test_remembered_list_prices_follow_the_version_in_force(tmp_path: Path) -> None:
    """List prices are worked out once per (version, provider, model, shape): asking again, in
    either order across a version change, gives each version's own price."""
    path = tmp_path / "prices.toml"
    path.write_text(VERSIONED)
    table = load_price_table(path)
    before = datetime(2026, 6, 30, tzinfo=UTC).timestamp()
    after = datetime(2026, 7, 2, tzinfo=UTC).timestamp()
    for _ in range(2):
        for at, price in (
            (after, Price(30_000, "v2", "per_image")),
            (before, Price(25_000, "v1", "per_image")),
        ):
            assert table.estimate(request("flux-dev", 1024, 1024), "replicate", at=at) == price
    assert table.estimate(request("flux-dev", 512, 512), "replicate", at=before).version == "v1"
    assert len(table._listed) == 3


def test_remembered_list_prices_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import pixelpipe.pricing.table as table_module

    monkeypatch.setattr(table_module, "_LISTED_MAX", 2)
    table = load_price_table()
    sizes = [(1024, 1024), (1344, 768), (768, 1344), (1024, 1024)]
    prices = [table.estimate(request("flux-dev", w, h), "fal", at=AT) for w, h in sizes]
    assert prices[0] == prices[3] and all(p.amount_micros for p in prices)
    assert len(table._listed) == 2
