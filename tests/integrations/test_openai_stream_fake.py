"""The fake OpenAI streams as OpenAI does: the official SDK's ``images.generate(stream=True)``
against ``pixelpipe fake-providers`` (subprocess) iterates partials, then the completed event."""

from __future__ import annotations

import base64
import io

import openai
import pytest
from PIL import Image

from tests.integrations.conftest import Fakes

pytestmark = pytest.mark.slow


def fake_client(fakes: Fakes) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{fakes.url}/openai/v1", api_key="sk-fake", max_retries=0)


def test_the_fake_streams_partials_then_the_image(fakes: Fakes) -> None:
    stream = fake_client(fakes).images.generate(
        model="gpt-image-1",
        prompt="a fox in the snow",
        size="1024x1024",
        quality="low",
        output_format="webp",
        stream=True,
        partial_images=2,
    )
    events = list(stream)
    assert [e.type for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [e.partial_image_index for e in events[:2]] == [0, 1]
    images = [base64.b64decode(e.b64_json) for e in events]
    assert len(set(images)) == 3
    for e, data in zip(events, images, strict=True):
        assert (e.size, e.quality, e.output_format) == ("1024x1024", "low", "webp")
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "WEBP" and im.size == (1024, 1024)
    completed = events[-1]
    assert completed.usage.output_tokens > 0
    assert completed.usage.total_tokens == (
        completed.usage.input_tokens + completed.usage.output_tokens
    )


def test_the_fake_streams_only_the_image_without_partials_and_refuses_bad_ones(
    fakes: Fakes,
) -> None:
    client = fake_client(fakes)
    events = list(
        client.images.generate(model="gpt-image-1", prompt="a hare", size="1024x1024", stream=True)
    )
    assert [e.type for e in events] == ["image_generation.completed"]
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(model="gpt-image-1", prompt="a hare", stream=True, partial_images=4)
    assert err.value.param == "partial_images"
    with pytest.raises(openai.BadRequestError) as err:  # moderation: before the stream
        client.images.generate(
            model="gpt-image-1", prompt="a hare [blocked]", stream=True, partial_images=1
        )
    assert err.value.code == "moderation_blocked"
