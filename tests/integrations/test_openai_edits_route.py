"""``client.images.edit`` from the official ``openai`` SDK, unchanged, against ``pixelpipe serve``
(a subprocess) on the offline preview model: one image, several, a mask, the cache, hostile
inputs."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from pixelpipe.api.fast_lane import HOT_POSTS
from tests.inputs.images import picture, png_bomb
from tests.integrations.conftest import Fakes, start_server
from tests.support.serve import Server, metric

pytestmark = pytest.mark.slow
SUBMISSIONS = "pixelpipe_provider_submissions_total"
PREVIEW = 'provider="preview"'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("oai-edits") / "data", {})
    try:
        yield srv
    finally:
        srv.stop()


def client(srv: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-unused", max_retries=0)


def decoded(b64: str | None) -> Image.Image:
    assert b64 is not None
    return Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")


def mean(img: Image.Image, box: tuple[int, int, int, int] | None = None) -> tuple[float, ...]:
    part = img.crop(box) if box else img
    pixels = list(part.getdata())
    return tuple(sum(p[c] for p in pixels) / len(pixels) for c in range(3))


def generation(srv: Server, gen_id: str) -> dict[str, object]:
    res = httpx.get(f"{srv.url}/v1/generations/{gen_id}", timeout=10)
    res.raise_for_status()
    body: dict[str, object] = res.json()
    return body


def test_one_image_comes_back_derived_from_it_and_the_same_edit_is_a_cache_hit(
    server: Server,
) -> None:
    red = picture("PNG", (64, 64), "red")
    raw = client(server).images.with_raw_response.edit(
        image=("red.png", red, "image/png"),
        prompt="add a small boat",
        model="preview",
        size="64x64",
        response_format="b64_json",
        output_format="png",
        extra_body={"seed": 5},
    )
    res = raw.parse()
    assert len(res.data) == 1 and res.data[0].url is None
    img = decoded(res.data[0].b64_json)
    assert img.size == (64, 64)
    r, g, b = mean(img)
    assert r > g + 40 and r > b + 40  # the red input shows through the edit
    assert raw.headers["x-pixelpipe-cached"] == "false"
    (gen_id,) = raw.headers["x-pixelpipe-generation-ids"].split(",")
    inputs = generation(server, gen_id)["inputs"]
    assert isinstance(inputs, list) and len(inputs) == 1

    calls = metric(server.url, SUBMISSIONS, PREVIEW)
    again = client(server).images.with_raw_response.edit(
        image=("another-name.png", red, "image/png"),
        prompt="add a small boat",
        model="preview",
        size="64x64",
        response_format="b64_json",
        output_format="png",
        extra_body={"seed": 5},
    )
    assert again.headers["x-pixelpipe-cached"] == "true"
    assert again.parse().data[0].b64_json == res.data[0].b64_json
    assert metric(server.url, SUBMISSIONS, PREVIEW) == calls  # one provider call for both


def test_a_different_input_is_a_different_edit(server: Server) -> None:
    def edit(colour: str) -> Image.Image:
        res = client(server).images.edit(
            image=(f"{colour}.png", picture("PNG", (64, 64), colour), "image/png"),
            prompt="a lighthouse",
            size="64x64",
            response_format="b64_json",
            extra_body={"seed": 9},
        )
        return decoded(res.data[0].b64_json)

    blue = mean(edit("blue"))
    assert blue[2] > blue[0] + 40  # now blue shows through, not red
    green = mean(edit("lime"))
    assert green[1] > green[0] + 40


def test_several_images_in_order_and_url_response(server: Server) -> None:
    images = [
        ("a.png", picture("PNG", (64, 64), "red"), "image/png"),
        ("b.jpg", picture("JPEG", (40, 30), "blue"), "image/jpeg"),
        ("c.webp", picture("WEBP", (30, 30), "yellow"), "image/webp"),
    ]
    raw = client(server).images.with_raw_response.edit(
        image=images, prompt="combine them", size="128x128", n=2, response_format="url"
    )
    res = raw.parse()
    assert len(res.data) == 2 and all(d.url for d in res.data)
    url = res.data[0].url
    assert url is not None and url.startswith(f"{server.url}/v1/images/")
    got = httpx.get(url, timeout=10)
    assert got.status_code == 200
    assert Image.open(io.BytesIO(got.content)).size == (128, 128)
    for gen_id in raw.headers["x-pixelpipe-generation-ids"].split(","):
        gen = generation(server, gen_id)
        inputs = gen["inputs"]
        assert isinstance(inputs, list) and len(inputs) == 3
        request = gen["request"]
        assert isinstance(request, dict) and len(request["images"]) == 3
    assert [i["role"] for i in inputs] == ["image", "image", "image"]


def test_a_mask_edits_only_where_it_is_transparent(server: Server) -> None:
    mask = Image.new("RGBA", (64, 64), (0, 0, 0, 255))
    mask.paste((0, 0, 0, 0), (0, 0, 32, 64))  # left half transparent: edit there
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    res = client(server).images.edit(
        image=("red.png", picture("PNG", (64, 64), "red"), "image/png"),
        mask=("mask.png", buf.getvalue(), "image/png"),
        prompt="paint the left side",
        size="64x64",
        response_format="b64_json",
        extra_body={"seed": 21, "strength": 1.0},
    )
    img = decoded(res.data[0].b64_json)
    kept = mean(img, (40, 8, 60, 56))  # right half: kept (barely tinted)
    assert kept[0] > 200 and kept[1] < 60 and kept[2] < 60
    edited = mean(img, (4, 8, 28, 56))
    assert abs(edited[0] - kept[0]) + abs(edited[1] - kept[1]) + abs(edited[2] - kept[2]) > 60


def test_a_model_that_takes_no_images_is_a_400_naming_those_that_do(
    tmp_path: Path, fakes: Fakes
) -> None:
    srv = start_server(tmp_path / "data", fakes.env)
    try:
        creates = fakes.creates()
        with pytest.raises(openai.BadRequestError) as err:
            client(srv).images.edit(
                image=("red.png", picture(), "image/png"), prompt="x", model="flux-schnell"
            )
        assert err.value.type == "invalid_request_error" and err.value.param == "model"
        message = err.value.message
        assert "flux-schnell" in message and "preview" in message and "gpt-image-1" in message
        assert fakes.creates() == creates
    finally:
        srv.stop()


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("notes.png", b"hello, I am text pretending to be a PNG", "image"),
        ("bomb.png", png_bomb(), "pixels"),
        ("anim.gif", picture("GIF"), "gif"),
    ],
    ids=["not-an-image", "bomb", "wrong-format"],
)
def test_hostile_inputs_are_400_in_openais_envelope_and_spend_nothing(
    server: Server, name: str, data: bytes, says: str
) -> None:
    calls = metric(server.url, SUBMISSIONS, PREVIEW)
    listed = httpx.get(f"{server.url}/v1/generations", timeout=10).json()["data"]
    with pytest.raises(openai.BadRequestError) as err:
        client(server).images.edit(image=(name, data, "image/png"), prompt="hostile")
    assert err.value.status_code == 400
    assert err.value.type == "invalid_request_error" and err.value.code == "invalid_image"
    assert says in err.value.message.lower()
    body = err.value.body
    assert isinstance(body, dict) and body["pixelpipe_code"] == "input_invalid"
    assert metric(server.url, SUBMISSIONS, PREVIEW) == calls
    assert httpx.get(f"{server.url}/v1/generations", timeout=10).json()["data"] == listed


def test_missing_image_and_bad_fields_are_invalid_requests(server: Server) -> None:
    res = httpx.post(f"{server.url}/v1/images/edits", data={"prompt": "x"}, files={"other": b"x"})
    assert res.status_code == 400
    assert res.json()["error"]["param"] == "image"
    with pytest.raises(openai.BadRequestError) as err:
        client(server).images.edit(image=("a.png", picture(), "image/png"), prompt="x", n=11)
    assert err.value.param == "n"


def test_the_fast_lane_leaves_the_multipart_route_to_fastapi() -> None:
    assert "/v1/images/edits" not in HOT_POSTS  # the lane reads JSON bodies only


def stored_inputs(srv: Server) -> set[Path]:
    return {p for p in srv.data_dir.rglob("*") if p.is_file() and p.parent.name == "inputs"}


def test_a_blocked_prompt_stores_no_input_and_spends_nothing(server: Server) -> None:
    before = stored_inputs(server)
    calls = metric(server.url, SUBMISSIONS, PREVIEW)
    with pytest.raises(openai.BadRequestError) as err:
        client(server).images.edit(
            image=("teal.png", picture("PNG", (48, 48), "teal"), "image/png"),
            prompt="a beheading scene",
        )
    assert err.value.code == "content_policy_violation"
    assert stored_inputs(server) == before
    assert metric(server.url, SUBMISSIONS, PREVIEW) == calls
    client(server).images.edit(
        image=("teal.png", picture("PNG", (48, 48), "teal"), "image/png"), prompt="a teal sea"
    )
    assert len(stored_inputs(server) - before) == 1  # the same picture with a fine prompt


def test_input_fidelity_goes_only_to_models_that_have_it(server: Server) -> None:
    # OpenAI clients send input_fidelity whatever the model: the preview model has no such
    # setting, so the edit runs without it (and keys like the edit without it: one provider call)
    image = ("navy.png", picture("PNG", (64, 64), "navy"), "image/png")
    seed = {"seed": 5}
    plain = client(server).images.edit(
        image=image, prompt="fidelity", size="64x64", extra_body=seed
    )
    calls = metric(server.url, SUBMISSIONS, PREVIEW)
    high = client(server).images.edit(
        image=image, prompt="fidelity", size="64x64", input_fidelity="high", extra_body=seed
    )
    assert high.data[0].b64_json == plain.data[0].b64_json
    assert metric(server.url, SUBMISSIONS, PREVIEW) == calls
    with pytest.raises(openai.BadRequestError) as err:
        client(server).images.edit(image=image, prompt="x", input_fidelity="max")  # type: ignore[arg-type]
    assert err.value.param == "input_fidelity"
