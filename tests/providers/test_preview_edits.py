"""The offline preview provider edits: a deterministic picture derived from the input images."""

from __future__ import annotations

import hashlib
import io
import tomllib
from pathlib import Path

import pytest
from PIL import Image, ImageStat

from pixelpipe.intake import CanonicalRequest
from pixelpipe.providers.base import InputImage, ProviderRequest, RunState
from pixelpipe.providers.preview import client as preview_client
from pixelpipe.providers.preview.client import PreviewProvider, render_for
from pixelpipe.providers.preview.edit import edit_region


def _image(
    colour: tuple[int, ...], size: tuple[int, int] = (300, 200), mode: str = "RGB"
) -> InputImage:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, "PNG")
    data = buf.getvalue()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return InputImage(digest, "image/png", data, size[0], size[1])


def _mask(size: tuple[int, int] = (300, 200)) -> InputImage:
    """OpenAI's convention: transparent where to edit (here the left half)."""
    im = Image.new("RGBA", size, (0, 0, 0, 255))
    im.paste((0, 0, 0, 0), (0, 0, size[0] // 2, size[1]))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    data = buf.getvalue()
    return InputImage("sha256:" + hashlib.sha256(data).hexdigest(), "image/png", data, *size)


def _req(
    images: tuple[InputImage, ...],
    mask: InputImage | None = None,
    *,
    prompt: str = "make it blue",
    seed: int = 7,
    size: int = 256,
    fmt: str = "png",
    strength: float | None = None,
) -> ProviderRequest:
    canon = CanonicalRequest(
        model="preview",
        prompt=prompt,
        seed=seed,
        width=size,
        height=size,
        format=fmt,
        images=tuple(i.digest for i in images),
        mask=mask.digest if mask else None,
        strength=strength,
    )
    return ProviderRequest("gen_e", 1, canon, "preview", images=images, mask=mask)


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


RED = _image((220, 20, 20))
GREEN = _image((20, 200, 20))


@pytest.mark.parametrize("size", [64, 320])  # drawn on the loop / in a worker thread
async def test_an_edit_answers_at_once_with_the_requested_size_and_format(size: int) -> None:
    upd = await PreviewProvider().submit(_req((RED,), size=size, fmt="webp"))
    assert upd.state is RunState.SUCCEEDED and upd.usage == {"image_count": 1}
    (out,) = upd.outputs
    assert out.content_type == "image/webp" and out.data
    with Image.open(io.BytesIO(out.data)) as im:
        assert im.size == (size, size) and im.format == "WEBP"


def test_the_picture_is_derived_from_the_first_input() -> None:
    red, green = _open(render_for(_req((RED,)))), _open(render_for(_req((GREEN,))))
    # the top half (above the label) keeps the input's dominant channel
    r_mean = ImageStat.Stat(red.crop((0, 0, 256, 120))).mean
    g_mean = ImageStat.Stat(green.crop((0, 0, 256, 120))).mean
    assert r_mean[0] > g_mean[0] and g_mean[1] > r_mean[1]


def test_same_inputs_prompt_and_seed_give_the_same_bytes_and_any_change_does_not() -> None:
    base = render_for(_req((RED,), _mask()))
    assert render_for(_req((RED,), _mask())) == base
    changed = [
        _req((GREEN,), _mask()),
        _req((RED,)),
        _req((RED,), _mask(), prompt="make it gold"),
        _req((RED,), _mask(), seed=8),
        _req((RED,), _mask(), strength=0.9),
        _req((RED, GREEN), _mask()),
    ]
    assert len({render_for(r) for r in changed} | {base}) == len(changed) + 1


def test_the_mask_limits_the_change_to_its_transparent_area() -> None:
    plain = _open(render_for(_req((RED,), strength=1.0)))
    masked = _open(render_for(_req((RED,), _mask(), strength=1.0)))
    original = (220, 20, 20)

    def distance(im: Image.Image, box: tuple[int, int, int, int]) -> float:
        mean = ImageStat.Stat(im.crop(box)).mean
        return sum(abs(m - o) for m, o in zip(mean, original, strict=True))

    left, right = (8, 8, 120, 120), (136, 8, 248, 120)
    # the edited (left) half moves away from the input; the kept (right) half stays close
    assert distance(masked, right) < 60 < distance(masked, left)
    assert distance(plain, right) > distance(masked, right)


def test_a_mask_without_alpha_edits_where_it_is_white() -> None:
    im = Image.new("L", (100, 100), 0)
    im.paste(255, (0, 0, 50, 100))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    mask = InputImage("sha256:x", "image/png", buf.getvalue(), 100, 100)
    region = edit_region(mask, (10, 10))
    assert region.getpixel((1, 5)) == 255 and region.getpixel((8, 5)) == 0


def test_the_preview_model_says_it_takes_images_and_a_mask() -> None:
    path = Path(preview_client.__file__).with_name("models.toml")
    spec = tomllib.loads(path.read_text())["models"]["preview"]
    assert spec["max_input_images"] == 16 and spec["accepts_mask"] is True
