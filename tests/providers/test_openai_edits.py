"""OpenAI image edits: the client's multipart against the OpenAI fake, over real sockets; the fake
checked against the official SDK's ``images.edit`` and the real API's refusals."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from pixelpipe.errors import ProviderInvalidInput
from pixelpipe.fakes.openai import FakeOpenAI
from pixelpipe.fakes.server import serve_app
from pixelpipe.pricing.table import load_price_table
from pixelpipe.providers.base import InputImage, ProviderRequest, RunState
from pixelpipe.providers.openai.client import OpenAIProvider
from pixelpipe.providers.openai.edits import edit_fields, edit_form, openai_mask

from .conftest import OPENAI_KEY, Running, canon, fast


def _png(colour: tuple[int, ...], size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "PNG")
    return buf.getvalue()


def _input(data: bytes, content_type: str = "image/png") -> InputImage:
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
    return InputImage("sha256:" + hashlib.sha256(data).hexdigest(), content_type, data, w, h)


def _jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), colour).save(buf, "JPEG")
    return buf.getvalue()


RED = _input(_png((200, 30, 30)))
BLUE = _input(_jpeg((30, 30, 200)), "image/jpeg")
ALPHA_MASK = _input(_png((0, 0, 0, 0), mode="RGBA"))  # RED's size, all transparent
WHITE_HALF = _input(_png(255, (32, 32), mode="L"))  # no alpha, another size: converted


def _edit(*images: InputImage, mask: InputImage | None = None, **kw: Any) -> ProviderRequest:
    kw.setdefault("model", "gpt-image-1")
    kw.setdefault("quality", "low")
    req = canon(**kw)
    return ProviderRequest("job_e", 1, req, req.model, images=images, mask=mask)


@pytest.fixture
async def provider(openai_fake: Running) -> AsyncIterator[OpenAIProvider]:
    p = OpenAIProvider(OPENAI_KEY, base_url=openai_fake.url)
    yield p
    await p.aclose()


def test_the_text_fields_are_a_generations_body_as_strings() -> None:
    assert edit_fields(canon(model="gpt-image-1", quality="high"), "gpt-image-1") == {
        "model": "gpt-image-1",
        "prompt": "a red fox",
        "n": "1",
        "size": "1024x1024",
        "output_format": "png",
        "quality": "high",
    }


def test_one_image_is_sent_as_image_and_several_as_repeated_image_brackets() -> None:
    one = edit_form(_edit(RED))
    assert [(name, f[0], f[2]) for name, f in one.files] == [("image", "image-1.png", "image/png")]
    two = edit_form(_edit(RED, BLUE, mask=ALPHA_MASK))
    assert [(name, f[0], f[2]) for name, f in two.files] == [
        ("image[]", "image-1.png", "image/png"),
        ("image[]", "image-2.jpg", "image/jpeg"),
        ("mask", "mask.png", "image/png"),
    ]
    assert two.files[0][1][1] == RED.data and two.files[1][1][1] == BLUE.data


def test_an_alpha_mask_of_the_right_size_is_sent_as_it_is_and_another_is_converted() -> None:
    assert openai_mask(ALPHA_MASK, RED) == ALPHA_MASK.data
    converted = Image.open(io.BytesIO(openai_mask(WHITE_HALF, RED)))
    assert converted.format == "PNG" and converted.mode == "RGBA"
    assert converted.size == (RED.width, RED.height)
    assert converted.getchannel("A").getextrema() == (0, 0)  # all white: all edited


@pytest.mark.parametrize(
    ("model", "rates"), [("gpt-image-1", (5, 10, 40)), ("gpt-image-1.5", (5, 8, 32))]
)  # $ per 1M tokens: text in, image in, image out
async def test_an_edit_answers_bytes_with_image_token_usage_priced_by_tokens(
    provider: OpenAIProvider, openai_fake: Running, model: str, rates: tuple[int, int, int]
) -> None:
    req = _edit(RED, model=model, format="webp")
    upd = await provider.submit(req)
    assert upd.state is RunState.SUCCEEDED and upd.provider_job_id.startswith("req_")
    (out,) = upd.outputs
    assert out.data and out.content_type == "image/webp"
    assert Image.open(io.BytesIO(out.data)).size == (1024, 1024)
    details = upd.usage["input_tokens_details"]
    assert details["image_tokens"] > 0 and details["text_tokens"] > 0
    assert upd.usage["input_tokens"] == details["image_tokens"] + details["text_tokens"]
    (seen,) = openai_fake.fake.edits
    assert seen.model == model and [i.field for i in seen.images] == ["image"]
    assert seen.body["output_format"] == "webp" and seen.mask is None
    price = load_price_table().actual(req.request, "openai", upd.usage)
    text, image, output = rates
    per_m = (
        details["text_tokens"] * text
        + details["image_tokens"] * image
        + upd.usage["output_tokens"] * output
    )
    assert price.basis == "tokens"
    assert price.amount_micros == int(Decimal(per_m))  # $/1M tokens = micro-dollars per token


async def test_several_images_and_a_mask_reach_the_fake_as_the_sdk_sends_them(
    provider: OpenAIProvider, openai_fake: Running
) -> None:
    upd = await provider.submit(_edit(RED, BLUE, RED, mask=WHITE_HALF))
    assert upd.state is RunState.SUCCEEDED
    (seen,) = openai_fake.fake.edits
    assert [(i.field, i.content_type) for i in seen.images] == [
        ("image[]", "image/png"),
        ("image[]", "image/jpeg"),
        ("image[]", "image/png"),
    ]
    assert seen.mask is not None and (seen.mask.width, seen.mask.height) == (64, 48)
    one = upd.usage["input_tokens_details"]["image_tokens"]
    single = await provider.submit(_edit(RED))
    assert one > single.usage["input_tokens_details"]["image_tokens"]  # three images cost more


async def test_the_same_edit_gives_the_same_picture_and_another_input_another(
    provider: OpenAIProvider,
) -> None:
    first = (await provider.submit(_edit(RED))).outputs[0].data
    again = (await provider.submit(_edit(RED))).outputs[0].data
    other = (await provider.submit(_edit(BLUE))).outputs[0].data
    assert first == again and first != other


async def test_a_refused_edit_is_invalid_input(openai_fake: Running) -> None:
    small = FakeOpenAI(api_key=OPENAI_KEY, behaviour=fast(), max_image_bytes=100)
    async with serve_app(small.app) as url:
        p = OpenAIProvider(OPENAI_KEY, base_url=f"{url}/v1")
        try:
            with pytest.raises(ProviderInvalidInput, match="too large"):
                await p.submit(_edit(RED))
        finally:
            await p.aclose()
    assert small.edits == []


# --- the fake refuses what the real API refuses (raw multipart, as any client could send it)


async def _post(
    fake: Running, files: list[tuple[str, tuple[str, bytes, str]]], **fields: str
) -> httpx.Response:
    fields.setdefault("model", "gpt-image-1")
    fields.setdefault("prompt", "make it blue")
    text: list[tuple[str, Any]] = [(k, (None, v)) for k, v in fields.items()]  # form parts
    async with httpx.AsyncClient() as c:
        return await c.post(
            f"{fake.url}/images/edits",
            headers={"Authorization": f"Bearer {OPENAI_KEY}"},
            files=[*text, *files],
        )


def _error(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 400, resp.text
    return dict(resp.json()["error"])


async def test_the_fake_refuses_a_missing_image(openai_fake: Running) -> None:
    err = _error(await _post(openai_fake, []))
    assert err["message"] == "Missing required parameter: 'image'."
    assert err["param"] == "image" and err["code"] == "missing_required_parameter"


async def test_the_fake_refuses_a_mask_of_another_size_or_without_alpha(
    openai_fake: Running,
) -> None:
    image = ("image", ("a.png", RED.data, "image/png"))
    other = ("mask", ("m.png", _png((0, 0, 0, 0), (32, 32), "RGBA"), "image/png"))
    err = _error(await _post(openai_fake, [image, other]))
    assert err["message"] == "Invalid mask image format - mask size does not match image size"
    opaque = ("mask", ("m.png", _png((0, 0, 0), (64, 48)), "image/png"))
    err = _error(await _post(openai_fake, [image, opaque]))
    assert err["message"] == "Invalid mask image format - mask image missing alpha channel"


async def test_the_fake_refuses_other_mimetypes_too_many_images_and_a_model_without_edits(
    openai_fake: Running,
) -> None:
    octet = ("image", ("a.png", RED.data, "application/octet-stream"))
    err = _error(await _post(openai_fake, [octet]))
    assert err["code"] == "unsupported_file_mimetype" and err["message"].startswith(
        "Invalid file 'image': unsupported mimetype ('application/octet-stream'). "
        "Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'."
    )
    many = [("image[]", (f"{i}.png", RED.data, "image/png")) for i in range(17)]
    assert _error(await _post(openai_fake, many))["code"] == "array_above_max_length"
    one = [("image", ("a.png", RED.data, "image/png"))]
    assert _error(await _post(openai_fake, one, model="dall-e-3"))["param"] == "model"
    assert (await openai_fake.stats())["creates"] == {}


# --- the official SDK's images.edit works against the fake unchanged


@pytest.fixture
def sdk(openai_fake: Running) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=openai_fake.url, api_key=OPENAI_KEY, max_retries=0)


async def test_the_sdk_edits_one_image_several_and_with_a_mask(
    sdk: openai.AsyncOpenAI, openai_fake: Running
) -> None:
    one = await sdk.images.edit(
        model="gpt-image-1", image=("a.png", RED.data, "image/png"), prompt="make it blue"
    )
    several = await sdk.images.edit(
        model="gpt-image-1",
        image=[("a.png", RED.data, "image/png"), ("b.jpg", BLUE.data, "image/jpeg")],
        mask=("m.png", ALPHA_MASK.data, "image/png"),
        prompt="make it blue",
        input_fidelity="high",
        size="1536x1024",
        quality="low",
        output_format="jpeg",
    )
    for answer in (one, several):
        assert answer.data and answer.data[0].b64_json and answer.usage
        assert base64.b64decode(answer.data[0].b64_json)
    assert several.size == "1536x1024" and several.output_format == "jpeg"
    assert several.usage and several.usage.input_tokens_details.image_tokens > 4096
    fields = [[i.field for i in e.images] for e in openai_fake.fake.edits]
    assert fields == [["image"], ["image[]", "image[]"]]
    assert openai_fake.fake.edits[1].mask is not None


async def test_input_fidelity_is_sent_on_and_counts_more_image_tokens(
    provider: OpenAIProvider, openai_fake: Running
) -> None:
    plain = _edit(RED)
    high = dataclasses.replace(plain.request, images=(RED.digest,), input_fidelity="high")
    low_upd = await provider.submit(plain)
    high_upd = await provider.submit(dataclasses.replace(plain, request=high))
    sent = [e.body.get("input_fidelity") for e in openai_fake.fake.edits]
    assert sent == [None, "high"]
    tokens = [u.usage["input_tokens_details"]["image_tokens"] for u in (low_upd, high_upd)]
    assert tokens[1] > tokens[0] + 4000  # the fake counts 4,096 more per image at high fidelity
