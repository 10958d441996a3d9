"""Edits on OpenAI-compatible image servers (issue 16): ``POST /v1/images/edits`` of vLLM-Omni
and SGLang (multipart, repeated ``image`` parts, no mask, no strength), against both flavours of
the protocol-faithful fake over real sockets; and what the catalog lets such a model take."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from pixelpipe.errors import ConfigError
from pixelpipe.fakes.openai_compatible import FakeOpenAICompatible, OpenAICompatibleBehaviour
from pixelpipe.fakes.openai_compatible_schema import Flavour
from pixelpipe.fakes.render import render
from pixelpipe.fakes.server import serve_app
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import InputImage, ProviderRequest, RunState
from pixelpipe.providers.openai_compatible.client import OpenAICompatibleProvider
from pixelpipe.providers.registration import Backend
from pixelpipe.providers.registry import full_catalog, operator_file
from pixelpipe.settings import load_settings
from tests.providers.asgi_recorder import Recorder

MODEL = "Qwen/Qwen-Image-Edit-2511"
EDITS = "/v1/images/edits"
TEAL, ORANGE = (0, 128, 128), (250, 150, 20)


def png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 64)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def image(data: bytes) -> InputImage:
    return InputImage("sha256:" + hashlib.sha256(data).hexdigest(), "image/png", data, 64, 64)


def edit(*images: bytes) -> ProviderRequest:
    req = CanonicalRequest(
        "qwen-edit", "make it dusk", 9, 64, 64, "png", steps=8, images=("sha256:a",) * len(images)
    )
    return ProviderRequest("job_1", 1, req, MODEL, images=tuple(image(i) for i in images))


@pytest.fixture(params=["sglang", "vllm"])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, Recorder]]:
    flavour: Flavour = request.param
    fake = FakeOpenAICompatible(
        model=MODEL, flavour=flavour, behaviour=OpenAICompatibleBehaviour(latency_s=0.05)
    )
    seen = Recorder(fake.app)
    async with serve_app(seen) as url:
        yield url, seen


def parts(body: bytes, content_type: str) -> list[tuple[str, str | None, bytes]]:
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    found = []
    for part in message.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        found.append((name, part.get_filename(), payload if isinstance(payload, bytes) else b""))
    return found


async def test_an_edit_posts_the_images_as_repeated_image_parts(
    server: tuple[str, Recorder],
) -> None:
    url, seen = server
    first, second = png(TEAL), png(ORANGE)
    provider = OpenAICompatibleProvider(
        Backend(name="omni", kind="openai_compatible", url=url, options={"model": MODEL})
    )
    update = await provider.submit(edit(first, second))
    await provider.aclose()
    assert update.state is RunState.SUCCEEDED, update.error
    assert seen.sent("/v1/images/generations") == []
    (sent,) = seen.sent(EDITS)
    form = parts(sent.body, sent.headers["content-type"])
    files = [(name, data) for name, filename, data in form if filename is not None]
    assert files == [("image", first), ("image", second)]  # exact bytes, in order
    text = {name: data.decode() for name, filename, data in form if filename is None}
    assert text | {"prompt": "…"} == {
        "model": MODEL,
        "prompt": "…",
        "n": "1",
        "size": "64x64",
        "seed": "9",
        "response_format": "b64_json",
        "num_inference_steps": "8",
    }
    out = Image.open(io.BytesIO(update.outputs[0].data or b"")).convert("RGB")
    picture = Image.open(io.BytesIO(render("make it dusk", 9, 64, 64, "png"))).convert("RGB")
    # derived from the inputs: the first one blended with the prompt's picture, the second a
    # thumbnail in the top-right corner
    expected = Image.blend(Image.new("RGB", (1, 1), TEAL), picture.crop((5, 40, 6, 41)), 0.5)
    assert out.getpixel((5, 40)) == expected.getpixel((0, 0))
    assert out.getpixel((60, 3)) == ORANGE


async def test_no_image_is_a_422_in_the_servers_shape(server: tuple[str, Recorder]) -> None:
    url, _ = server
    async with httpx.AsyncClient(base_url=url.removesuffix("/v1")) as client:
        resp = await client.post(EDITS, data={"prompt": "x"}, files={"other": ("a.txt", b"a")})
    assert resp.status_code == 422
    body: dict[str, Any] = resp.json()
    message = "Field 'image' or 'url' is required"
    assert body in ({"detail": message}, {"error": body.get("error")})
    assert message in str(body)


CATALOG = """\
[backends.omni]
kind = "openai_compatible"
url = "http://127.0.0.1:9"
options = { model = "Qwen/Qwen-Image-Edit-2511" }

[models.qwen-edit]
label = "Qwen image edit"
formats = ["png"]
aspect_ratios = { "1:1" = [1024, 1024] }
max_input_images = 3
backends = ["omni"]
"""


def load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return full_catalog(operator_file(load_settings(data_dir=tmp_path / "d", catalog_path=path)))


def test_such_a_model_takes_images_but_no_mask_nor_strength(tmp_path: Path) -> None:
    assert load(tmp_path, CATALOG).get("qwen-edit").max_input_images == 3
    with pytest.raises(ConfigError, match=r"accepts_mask = true, but the OpenAI-compatible"):
        load(tmp_path, CATALOG + "accepts_mask = true\n")
    with pytest.raises(ConfigError, match=r"takes no strength: take strength out of the model"):
        load(tmp_path, CATALOG + "strength = { min = 0.1, max = 1.0, default = 0.5 }\n")
