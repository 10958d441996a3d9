"""The Moderator contract, run against MemoryModerator and OpenAIModerator on the fake API."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pixelpipe.errors import InvalidRequest, ModerationError
from pixelpipe.moderation.base import Moderator, Verdict
from pixelpipe.moderation.markers import magenta_png

from .conftest import Harness


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (48, 32), colour).save(buf, format="PNG")
    return buf.getvalue()


async def test_implements_the_protocol(harness: Harness) -> None:
    assert isinstance(harness.moderator, Moderator)


async def test_an_ordinary_prompt_is_clean(harness: Harness) -> None:
    verdict = await harness.moderator.text("a lighthouse at dusk, oil painting")
    assert not verdict.flagged and verdict.categories == ()
    assert {"sexual", "violence", "hate"} <= set(verdict.scores)
    assert max(verdict.scores.values()) < 0.5


async def test_a_flagged_prompt_names_its_category_and_score(harness: Harness) -> None:
    verdict = await harness.moderator.text("a scene [mod:violence]")
    assert verdict.flagged and verdict.categories == ("violence",)
    assert verdict.scores["violence"] >= 0.9


async def test_a_low_score_is_not_flagged_but_scored(harness: Harness) -> None:
    verdict = await harness.moderator.text("a scene [mod:violence=0.3]")
    assert not verdict.flagged and verdict.scores["violence"] == pytest.approx(0.3)
    # a threshold below the moderator's own flag makes it a hit for us
    assert verdict.flagged_under({"violence": 0.25}) == ("violence",)
    assert verdict.flagged_under({"violence": 0.5}) == ()


async def test_images_are_scored_from_their_pixels(harness: Harness) -> None:
    clean = await harness.moderator.image(png((20, 120, 40)), "image/png")
    assert not clean.flagged
    hit = await harness.moderator.image(magenta_png(), "image/png")
    assert hit.flagged and hit.categories == ("sexual",)
    # images are scored in the image categories only (OpenAI: sexual, violence, self-harm)
    assert "hate" not in hit.categories


async def test_a_category_threshold_overrides_the_moderators_flag() -> None:
    verdict = Verdict(True, {"sexual": 0.7, "violence": 0.2}, ("sexual",))
    assert verdict.flagged_under({}) == ("sexual",)
    assert verdict.flagged_under({"sexual": 0.9}) == ()  # a laxer threshold for this key
    assert verdict.flagged_under({"violence": 0.1}) == ("sexual", "violence")


async def test_not_an_image_is_a_clear_error(harness: Harness) -> None:
    with pytest.raises((InvalidRequest, ModerationError)):
        await harness.moderator.image(b"not an image at all", "image/png")
