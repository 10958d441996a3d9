"""A cog predictor that serves a diffusers text-to-image pipeline (FLUX.1 schnell by default)
with the inputs pixelpipe's cog backend sends, so that a catalog entry of ``kind = "cog"`` can
call it unchanged. See README.md.

Only the cog glue is here: inputs are checked and mapped in ``txt2img.py``, the pipeline is
loaded in ``pipelines.py`` (torch and diffusers are imported in ``setup``, not before).

The limits in ``run``'s signature are literals on purpose: ``cog build`` reads the signature
without running it to write the input schema (tests/examples checks they match txt2img's).
"""

import os
import shutil
import tempfile
import time

from cog import BaseRunner, Input, Path
from pipelines import ExampleSettings, ImagePipeline, load_pipeline
from txt2img import Preset, Txt2ImgCall, check_output, plan, resolve_seed, save_images


class Predictor(BaseRunner):
    preset: Preset
    pipeline: ImagePipeline
    previous_outputs: Path | None = None  # removed when the next run starts (one at a time)

    def setup(self, weights: Path | str | None = None) -> None:
        """Load the pipeline (``weights``, cog's ``COG_WEIGHTS``, is not used: the model is
        ``PIXELPIPE_EXAMPLE_MODEL``, see pipelines.py)."""
        settings = ExampleSettings.from_env(os.environ)
        started = time.monotonic()
        self.preset, self.pipeline = load_pipeline(settings)
        took = time.monotonic() - started
        what = f"{self.preset.family}, {settings.pipeline} pipeline"
        print(f"loaded {settings.model} ({what}) in {took:.1f} s")

    def run(
        self,
        prompt: str = Input(description="What to draw"),
        seed: int | None = Input(
            default=None,
            ge=0,
            le=4294967295,
            description="Same inputs, same seed: same image. Left out: a random one, reported "
            "in the logs and in metrics.seed",
        ),
        width: int = Input(
            default=1024, ge=128, le=2048, description="Rounded to a multiple of 16 (FLUX) or 8"
        ),
        height: int = Input(
            default=1024, ge=128, le=2048, description="Rounded to a multiple of 16 (FLUX) or 8"
        ),
        num_outputs: int = Input(default=1, ge=1, le=4, description="Images to make"),
        negative_prompt: str = Input(default="", description="What not to draw (SDXL; FLUX: none)"),
        num_inference_steps: int | None = Input(
            default=None,
            ge=1,
            le=100,
            description="Default: the model's (4 schnell, 28 dev, 30 SDXL)",
        ),
        guidance_scale: float | None = Input(
            default=None,
            ge=0.0,
            le=30.0,
            description="Default: the model's (0 schnell, 3.5 dev, 7 SDXL)",
        ),
        output_format: str = Input(default="png", choices=["png", "webp", "jpg"]),
        output_quality: int = Input(default=90, ge=1, le=100, description="WebP and JPEG only"),
    ) -> list[Path]:
        check_output(output_format, output_quality)
        self.forget_previous_outputs()
        chosen, drawn = resolve_seed(seed)
        call, notes = plan(
            self.preset,
            prompt=prompt,
            seed=chosen,
            width=width,
            height=height,
            num_outputs=num_outputs,
            negative_prompt=negative_prompt,
            steps=num_inference_steps,
            guidance=guidance_scale,
        )
        for note in notes:
            print(note)
        print(f"seed {chosen}{' (random)' if drawn else ''}: {describe(call)}")
        started = time.monotonic()
        images = self.pipeline(call)
        generated = time.monotonic()
        directory = self.previous_outputs = Path(tempfile.mkdtemp(prefix="cog-diffusers-"))
        paths = save_images(images, output_format, output_quality, directory)
        self.record(call, inference_s=generated - started, encode_s=time.monotonic() - generated)
        return [Path(p) for p in paths]

    def forget_previous_outputs(self) -> None:
        """The files of the last run were sent with its answer: do not let them fill the disk."""
        if self.previous_outputs is not None:
            shutil.rmtree(self.previous_outputs, ignore_errors=True)
            self.previous_outputs = None

    def record(self, call: Txt2ImgCall, *, inference_s: float, encode_s: float) -> None:
        """Metrics beside cog's own ``predict_time`` (the GPU time pixelpipe bills)."""
        for key, value in (
            ("seed", call.seed),
            ("width", call.width),
            ("height", call.height),
            ("steps", call.steps),
            ("guidance_scale", call.guidance),
            ("inference_time", round(inference_s, 4)),
            ("encode_time", round(encode_s, 4)),
        ):
            self.record_metric(key, value)


def describe(call: Txt2ImgCall) -> str:
    return (
        f"{call.num_images} image(s) {call.width}x{call.height}, {call.steps} steps, "
        f"guidance {call.guidance}"
    )
