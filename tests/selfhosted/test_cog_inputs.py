"""Edits on a REAL cog server (coglet serving ``tests/cog_predictor``, issue 16): the images and
the mask travel as ``data:`` URIs in the predictor's ``Path`` inputs and reach it byte for byte,
the mask converted to white = repaint and honoured, the strength passed; the result is stored
through pixelpipe. Input names the predictor's schema lacks are refused before anything runs,
and a model that claims more than the backend can send is refused when the catalog is read."""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from pixelpipe.errors import ConfigError, ProviderInvalidInput
from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import InputImage, ProviderRequest, RunState
from pixelpipe.providers.cog.client import CogProvider
from pixelpipe.providers.cog.inputs import ImageInputs
from pixelpipe.providers.masks import white_repaint_png
from pixelpipe.providers.registry import full_catalog, operator_file
from pixelpipe.settings import load_settings
from tests.cog_predictor.predict import image_colour
from tests.inputs.images import jpeg_with_gps
from tests.selfhosted.inputs_app import (
    generate,
    left_half_mask,
    pixelpipe,
    png,
    stored_image,
    upload,
)
from tests.servers.cog import CogServer

pytestmark = pytest.mark.servers

TEAL = (0, 128, 128)
SIZE = (64, 48)
PROMPT = "dusk over the bay"
CATALOG = """\
[backends.cogbox]
kind = "cog"
url = "{url}"
options = {{ webhooks = false{options} }}

[models.cog-edit]
label = "cog test predictor, edits"
formats = ["png"]
aspect_ratios = {{ "1:1" = [64, 64] }}
max_input_images = {images}
accepts_mask = true
strength = {{ min = 0.0, max = 1.0, default = 0.8 }}
backends = ["cogbox"]
"""


class Cog:
    def __init__(self, server: CogServer, inputs: Path) -> None:
        self.server, self.inputs = server, inputs

    def received(self, data: bytes) -> bytes | None:
        """The bytes the predictor got as a file with ``data``'s digest (None: never)."""
        path = self.inputs / hashlib.sha256(data).hexdigest()
        return path.read_bytes() if path.exists() else None


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cog]:
    inputs = tmp_path_factory.mktemp("predictor-inputs")
    env = {"PREDICTOR_INPUTS_DIR": str(inputs)}
    with CogServer(tmp_path_factory.mktemp("cog-edits"), env=env) as server:
        yield Cog(server, inputs)


def image(data: bytes, content_type: str = "image/png") -> InputImage:
    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
    return InputImage("sha256:" + hashlib.sha256(data).hexdigest(), content_type, data, w, h)


def edit(photo: bytes, mask: bytes | None, strength: float | None) -> ProviderRequest:
    req = CanonicalRequest(
        "cog-edit", PROMPT, 5, *SIZE, "png", images=("sha256:i",), strength=strength
    )
    masked = image(mask) if mask is not None else None
    return ProviderRequest("job_1", 1, req, "cog-edit", images=(image(photo),), mask=masked)


def provider(cog: Cog, names: ImageInputs | None = None) -> CogProvider:
    return CogProvider(
        "cogbox", cog.server.url, secret=b"k" * 32, webhooks=False, image_inputs=names
    )


def blended(base: tuple[int, int, int], strength: float) -> tuple[int, int, int]:
    """What the predictor paints over ``base`` at ``strength`` (its Image.blend, one pixel)."""
    colour = image_colour(PROMPT, 5, 0)
    one = Image.blend(Image.new("RGB", (1, 1), base), Image.new("RGB", (1, 1), colour), strength)
    return one.getpixel((0, 0))  # type: ignore[return-value]


async def test_an_edit_reaches_the_predictor_byte_for_byte_mask_honoured(cog: Cog) -> None:
    photo, mask = png(Image.new("RGB", SIZE, TEAL)), left_half_mask(SIZE)
    cogbox = provider(cog)
    update = await cogbox.submit(edit(photo, mask, 0.5))
    await cogbox.aclose()
    assert update.state is RunState.SUCCEEDED, update.error
    assert cog.received(photo) == photo  # the exact bytes, through a data: URI
    assert cog.received(mask) is None  # the mask went converted: white = repaint
    sent_mask = cog.received(white_repaint_png(image(mask)))
    assert sent_mask is not None
    with Image.open(io.BytesIO(sent_mask)) as m:
        assert m.mode == "L" and m.getpixel((2, 2)) == 255 and m.getpixel((SIZE[0] - 2, 2)) == 0
    with Image.open(io.BytesIO(update.outputs[0].data or b"")) as out:
        rgb = out.convert("RGB")
    assert rgb.size == SIZE
    assert rgb.getpixel((SIZE[0] - 3, 10)) == TEAL  # outside the mask: untouched
    assert rgb.getpixel((3, 10)) == blended(TEAL, 0.5)  # inside: strength 0.5


async def test_strength_is_the_predictors_prompt_strength(cog: Cog) -> None:
    photo = png(Image.new("RGB", SIZE, (200, 40, 40)))
    cogbox = provider(cog)
    strong = await cogbox.submit(edit(photo, None, 0.9))
    default = await cogbox.submit(edit(photo, None, None))  # the predictor's own 0.8
    await cogbox.aclose()
    for update, strength in ((strong, 0.9), (default, 0.8)):
        with Image.open(io.BytesIO(update.outputs[0].data or b"")) as out:
            assert out.convert("RGB").getpixel((30, 30)) == blended((200, 40, 40), strength)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            ImageInputs(image="init_image"),
            r"its predictor has no input 'init_image' \(its inputs: ",
        ),
        (ImageInputs(mask="mask_image"), r"no input 'mask_image'"),
        (ImageInputs(images="image"), r"input 'image' is not a list \(type 'string'\)"),
    ],
)
async def test_an_input_the_schema_lacks_is_refused_before_anything_runs(
    cog: Cog, names: ImageInputs, message: str
) -> None:
    photo = png(Image.new("RGB", SIZE, (1, 2, 3)))
    cogbox = provider(cog, names)
    try:
        with pytest.raises(ProviderInvalidInput, match=message) as refused:
            await cogbox.submit(edit(photo, left_half_mask(SIZE), None))
    finally:
        await cogbox.aclose()
    assert "image_inputs = {" in str(refused.value)  # the fix: name the inputs
    assert cog.received(photo) is None  # nothing ran


def load(tmp_path: Path, images: int, options: str = "") -> object:
    path = tmp_path / "catalog.toml"
    path.write_text(CATALOG.format(url="http://127.0.0.1:9", images=images, options=options))
    return full_catalog(operator_file(load_settings(data_dir=tmp_path / "d", catalog_path=path)))


def test_several_images_need_a_list_input_named_in_the_backend(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"catalog.toml:\d+: model cog-edit on backend cogbox "
        r"\(cog\): max_input_images = 3, but the backend sends one image .*"
        r'images = "<input>"',
    ):
        load(tmp_path, 3)
    listed = load(tmp_path, 3, ', image_inputs = { images = "refs", mask = "inpaint_mask" }')
    assert listed.get("cog-edit").max_input_images == 3  # type: ignore[attr-defined]
    with pytest.raises(
        ConfigError,
        match=r"options.image_inputs must be a table of input names"
        r".*not 'picture'",
    ):
        load(tmp_path, 1, ', image_inputs = { picture = "image" }')


async def test_an_edit_through_pixelpipe_is_stored(cog: Cog, tmp_path: Path) -> None:
    photo, mask = jpeg_with_gps("teal"), left_half_mask((64, 64))
    catalog = CATALOG.format(url=cog.server.url, images=1, options="")
    async with pixelpipe(tmp_path, catalog) as client:
        uploaded = await upload(client, photo, "photo.jpg")
        masked = await upload(client, mask, "mask.png")
        body = {
            "prompt": PROMPT,
            "model": "cog-edit",
            "seed": 5,
            "strength": 0.25,
            "images": [uploaded["id"]],
            "mask": masked["id"],
        }
        job = await generate(client, body)
        assert job["status"] == "succeeded", job
        out = await stored_image(client, job)
    digest = uploaded["digest"].removeprefix("sha256:")
    clean = (cog.inputs / digest).read_bytes()  # the stored, metadata-free bytes reached it
    assert b"ACME Camera" in photo and b"ACME Camera" not in clean
    with Image.open(io.BytesIO(clean)) as im:
        base = im.convert("RGB").resize((64, 64))
    assert out.size == (64, 64)
    assert out.getpixel((60, 30)) == base.getpixel((60, 30))
    assert out.getpixel((4, 30)) == blended(base.getpixel((4, 30)), 0.25)  # type: ignore[arg-type]


async def test_a_photo_of_several_megabytes_travels_inline(cog: Cog) -> None:
    """coglet takes a prediction body of 16 MB and more (a data: URI is 4/3 of the file; a
    12 MB file was accepted by hand), so a camera photo needs no upload URL."""
    noise = Image.frombytes("RGB", (1200, 1200), random.Random(7).randbytes(1200 * 1200 * 3))
    photo = png(noise)
    assert len(photo) > 4_000_000
    cogbox = provider(cog)
    update = await cogbox.submit(edit(photo, None, 0.3))
    await cogbox.aclose()
    assert update.state is RunState.SUCCEEDED, update.error
    assert cog.received(photo) == photo
