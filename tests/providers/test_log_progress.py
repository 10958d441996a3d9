"""How far a run is, read from what the model prints (Replicate's and cog's ``logs``, fal's queue
status ``logs``), and cog's intermediate outputs as live previews (issue 17)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from PIL import Image

from pixelpipe.providers.base import RunState
from pixelpipe.providers.cog.client import GONE_GRACE_S, PREVIEW_EVERY_S, CogProvider
from pixelpipe.providers.cog.predictions import prediction_id, prediction_update
from pixelpipe.providers.log_progress import log_progress
from pixelpipe.providers.previews import PREVIEW_SIDE
from pixelpipe.providers.run_tag import RunRef

NAME = "cogbox"
SECRET = b"s" * 32


@pytest.mark.parametrize(
    ("text", "progress"),
    [
        ("", {}),
        ("Using seed: 7\nloading weights\n", {}),
        (" 40%|####      | 8/20 [00:02<00:03,  3.1it/s]", {"percent": 40, "step": 8, "steps": 20}),
        # a bar per stage: the last one says where the run is
        (
            "Loading pipeline components...: 100%|██████████| 7/7 [00:01<00:00]\n"
            "  5%|▌         | 1/20 [00:00<00:05]\n",
            {"percent": 5, "step": 1, "steps": 20},
        ),
        ("\r 10%|#| 1/10\r 20%|##| 2/10", {"percent": 20, "step": 2, "steps": 10}),
        (" 75%|###", {"percent": 75}),
        ("step 3/12", {"percent": 25.0, "step": 3, "steps": 12}),
        ("Sampling: Step 5 of 20", {"percent": 25.0, "step": 5, "steps": 20}),
        ("Generating: 40%\nsaving image\n", {"percent": 40}),
        ("progress 12.5 %", {"percent": 12.5}),
        ("step 30/20", {}),  # not a step of its steps: says nothing
        ("999%|#| 1/1", {"percent": 100, "step": 1, "steps": 1}),
    ],
)
def test_log_lines_say_how_far_a_run_is(text: str, progress: dict[str, Any]) -> None:
    assert log_progress(text) == progress


def png_uri(size: int, colour: tuple[int, int, int]) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_cogs_latest_output_so_far_is_a_thumbnail_preview_and_its_last_output_the_image() -> None:
    frames = [png_uri(512, (200, 0, 0)), png_uri(512, (0, 200, 0))]
    running = {"id": "p1", "status": "processing", "logs": " 50%|##  | 2/4\n", "output": frames}
    update = prediction_update(NAME, running)
    preview = update.progress["preview"]
    assert update.progress["step"] == 2 and preview.startswith("data:image/webp;base64,")
    with Image.open(io.BytesIO(base64.b64decode(preview.split(",", 1)[1]))) as im:
        assert im.size == (PREVIEW_SIDE, PREVIEW_SIDE)
        assert im.convert("RGB").getpixel((5, 5))[1] > 150  # the latest frame: green
    # one more frame: a new delivery (cog sends no delivery id)
    more = prediction_update(NAME, {**running, "output": [*frames, png_uri(64, (0, 0, 9))]})
    assert more.delivery_id != update.delivery_id
    # an uploaded file's URL is not fetched for a preview
    linked = prediction_update(NAME, {**running, "output": ["https://files.example/f.png"]})
    assert "preview" not in linked.progress
    final = png_uri(64, (1, 2, 3))
    done = {"id": "p1", "status": "succeeded", "output": [*frames, final]}
    succeeded = prediction_update(NAME, done)
    (image,) = succeeded.outputs  # the image is the last output; the frames were previews
    assert succeeded.state is RunState.SUCCEEDED and image.data is not None
    assert image.data == base64.b64decode(final.split(",", 1)[1])
    assert succeeded.usage["images"] == 1 and "preview" not in succeeded.progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_cog_previews_go_at_most_two_a_second_per_run() -> None:
    clock = Clock()
    cog = CogProvider(NAME, "http://127.0.0.1:9", secret=SECRET, clock=clock)
    pid = prediction_id(NAME, RunRef("job_1", 1), SECRET)
    other = prediction_id(NAME, RunRef("job_2", 1), SECRET)

    async def hook(run: str, frames: int, status: str = "processing") -> dict[str, Any]:
        output = [png_uri(32, (i, i, i)) for i in range(frames)]
        body = {"id": run, "status": status, "output": output}
        update = await cog.parse_webhook({}, json.dumps(body).encode())
        return update.progress

    try:
        assert "preview" in await hook(pid, 1)
        clock.now += PREVIEW_EVERY_S / 2
        assert "preview" not in await hook(pid, 2)  # too soon: left out
        assert "preview" in await hook(other, 1)  # per run
        clock.now += PREVIEW_EVERY_S
        assert "preview" in await hook(pid, 3)
        assert await hook(pid, 4, "succeeded") == {"percent": 100}
        # cog sends its non-terminal hooks unordered: one that comes after the end shows no
        # preview (its percent stays: a short run's only logs hook can come after the end)
        clock.now += PREVIEW_EVERY_S
        body = {"id": pid, "status": "processing", "output": [png_uri(32, (4, 4, 4))]}
        body["logs"] = " 80%|########  | 4/5"
        late = await cog.parse_webhook({}, json.dumps(body).encode())
        assert late.progress == {"percent": 80, "step": 4, "steps": 5}
        assert "preview" in await hook(other, 2)  # another run goes on
        clock.now += GONE_GRACE_S + 1
        assert await hook(other, 3, "succeeded") == {"percent": 100}
        assert "preview" in await hook(pid, 4)  # an end that old is forgotten (bounded memory)
    finally:
        await cog.aclose()
