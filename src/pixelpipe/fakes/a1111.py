"""A protocol-faithful fake of the AUTOMATIC1111 / Forge / SD.Next web UI API (``/sdapi/v1``).

Base URL: ``http://HOST:PORT`` (paths start with ``/sdapi/v1/``). Facts, from AUTOMATIC1111's
source, 1.10 (``requirements_versions.txt``: ``fastapi==0.94.0``): ``modules/api/api.py``
(``api_middleware.handle_exception``, ``Api.auth``, ``validate_sampler_name``, ``text2imgapi``
with ``add_task_to_queue`` then ``with self.queue_lock``, ``progressapi``, ``interruptapi``,
``skip``, ``get_sd_models``, ``get_config``/``set_config``), ``modules/api/models.py`` (commit
008a8e7: ``StableDiffusionTxt2ImgProcessingAPI`` extra fields, ``TextToImageResponse``,
``ProgressRequest``/``ProgressResponse``, ``SDModelItem``), ``modules/shared_state.py`` (commit
0103365: ``State.dict/begin/end/nextjob/set_current_image``), ``modules/processing.py``
(``Processed.js``), ``modules/sd_models.py`` (``select_checkpoint``'s fallback):

- ``POST /sdapi/v1/img2img`` (an edit: ``init_images``, ``mask``, ``denoising_strength``) runs
  like txt2img under the same lock; its facts are in ``a1111_img2img.py``.
- ``POST /sdapi/v1/txt2img`` is synchronous and the server runs **one generation at a time**:
  ``text2imgapi`` holds ``queue_lock`` (a ``threading.Lock``) for the whole run, so a second
  request is neither refused nor queued visibly: its HTTP call just waits, unanswered, until the
  first one finishes (then it runs). The answer is ``{"images": [base64 PNG…], "parameters":
  {the request}, "info": "<JSON string>"}``; each PNG carries the infotext in its
  ``parameters`` text chunk; ``send_images: false`` gives ``images: []``. Sizes are rounded down
  to a multiple of 8 (the latent is 1/8 of the image); ``seed: -1`` is a random seed;
  ``batch_size`` × ``n_iter`` images, seeds ``seed + i``.
- ``override_settings: {"sd_model_checkpoint": name}`` with a name that matches no checkpoint is
  **not an error**: A1111 prints "Checkpoint … not found; loading fallback …" and runs the first
  checkpoint; ``info.sd_model_name``/``sd_model_hash`` tell which one ran.
- ``GET /sdapi/v1/progress``: global, not per request (see ``a1111_state.py``);
  ``?skip_current_image=true`` leaves the preview out. ``POST /sdapi/v1/interrupt`` answers
  ``{}`` and stops the running job after its current step: the txt2img call still answers 200
  with the images sampled so far. ``POST /sdapi/v1/skip`` (answers ``null``) ends the current
  ``n_iter`` iteration only. Both are no-ops while idle (the next job's ``begin`` clears them).
- ``GET /sdapi/v1/sd-models`` → ``[{title, model_name, hash, sha256, filename, config}]``;
  ``GET /sdapi/v1/samplers``; ``GET /sdapi/v1/options`` (dict); ``POST /sdapi/v1/options`` answers
  ``null``, loads a named checkpoint under the queue lock (``model_load_s``) and stores its
  title; an unknown one is a 500 ``RuntimeError`` ``model 'x' not found``.
- Errors: A1111's handler body ``{"error", "detail", "body", "errors"}`` (``a1111_schema.py``):
  unknown sampler → 400 ``HTTPException`` "Sampler not found"; a failure while sampling → 500
  with the exception's class and message (``NansException``; ``OutOfMemoryError`` "CUDA out of
  memory…", the body SD.Next/A1111 users report, e.g. DrCyanide/cyanic-sd-krita#20); with
  ``--api-auth`` a missing/wrong Basic credential → 401 ``Not authenticated`` / ``Incorrect
  username or password`` and ``WWW-Authenticate: Basic``. Validation → 422 pydantic-1 ``detail``
  list. Unknown paths → 404 ``{"detail": "Not Found"}``.

Behaviours (:class:`A1111Behaviour`, via ``POST /_control`` or the constructor): ``step_s`` per
sampling step (progress and previews visible meanwhile), ``fail_next`` / ``oom_next`` (the run
fails at ``fail_at`` of its steps with a 500), ``crash_next`` (the server dies there: the
connection closes unanswered, requests waiting on the queue lock too, and the fake is down for
``crash_restart_s``, then comes back with a fresh state), ``model_load_s``; the action
``{"occupy_s": S}`` makes the web UI's own user run a job for S seconds (the queue is busy).
The shared ``error_next``/``hang_next``/``garbage_next`` apply to txt2img. ``GET /_stats``:
``creates`` per checkpoint title, ``calls`` per endpoint.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import io
import math
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from PIL import Image, PngImagePlugin
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from pixelpipe.fakes import a1111_schema as schema
from pixelpipe.fakes.a1111_img2img import (
    InvalidImage,
    decode_image,
    denoising,
    derive,
    echoed,
    sampling_steps,
)
from pixelpipe.fakes.a1111_state import Preview, State
from pixelpipe.fakes.common import Behaviour, FakeServer
from pixelpipe.fakes.crash import Crashed, CrashSwitch, Dropped, drops_connections
from pixelpipe.fakes.render import render

DEFAULT_CHECKPOINTS = ("sd_xl_base_1.0.safetensors", "v1-5-pruned-emaonly.safetensors")
_FORMATS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}


@dataclass
class A1111Behaviour(Behaviour):
    """The shared behaviours plus A1111's own (see the module docstring)."""

    step_s: float = 0.02  # sampling time per step
    fail_next: int = 0  # next N runs fail mid-run: 500 NansException
    oom_next: int = 0  # next N runs fail mid-run: 500 OutOfMemoryError
    crash_next: int = 0  # next N runs: the server dies mid-run
    fail_at: float = 0.5  # fraction of the steps at which a failure or crash happens
    crash_restart_s: float = 1.0  # how long a crashed server stays down
    model_load_s: float = 0.0  # time to load another checkpoint (under the queue lock)


@dataclass(frozen=True)
class Edit:
    """An img2img run's decoded inputs: the first init image and the mask."""

    init: Image.Image | None
    mask: Image.Image | None


class RunFailed(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class FakeA1111(FakeServer):
    """The fake. ``auth=(user, password)`` turns on ``--api-auth``; ``app`` is the ASGI app."""

    def __init__(
        self,
        *,
        checkpoints: tuple[str, ...] = DEFAULT_CHECKPOINTS,
        auth: tuple[str, str] | None = None,
        behaviour: Behaviour | None = None,
        public_url: str | None = None,
    ) -> None:
        knobs = _own_behaviour(behaviour)
        super().__init__(knobs, public_url)
        self.knobs = knobs
        self.auth = auth
        self.checkpoints = [schema.Checkpoint(name) for name in checkpoints]
        first = self.checkpoints[0]
        self.options: dict[str, Any] = {
            "sd_model_checkpoint": first.title,
            "sd_checkpoint_hash": first.sha256,
            "samples_format": "png",
            "jpeg_quality": 80,
            "show_progress_every_n_steps": 10,
            "live_previews_enable": True,
            "live_previews_image_format": "png",
            "CLIP_stop_at_last_layers": 1,
            "sd_vae": "Automatic",
        }
        self.state = State()
        self.queue = asyncio.Lock()  # A1111's queue_lock: one job at a time
        self.switch = CrashSwitch()
        starlette = Starlette(
            routes=self._routes(),
            lifespan=self._lifespan,
            exception_handlers={HTTPException: _fastapi_http_error},
        )
        self.app = drops_connections(starlette, self.switch)

    def _routes(self) -> list[Route]:
        return [
            Route("/sdapi/v1/txt2img", self.txt2img, methods=["POST"]),
            Route("/sdapi/v1/img2img", self.img2img, methods=["POST"]),
            Route("/sdapi/v1/progress", self.progress, methods=["GET"]),
            Route("/sdapi/v1/interrupt", self.interrupt, methods=["POST"]),
            Route("/sdapi/v1/skip", self.skip, methods=["POST"]),
            Route("/sdapi/v1/sd-models", self.sd_models, methods=["GET"]),
            Route("/sdapi/v1/samplers", self.samplers, methods=["GET"]),
            Route("/sdapi/v1/options", self.get_options, methods=["GET"]),
            Route("/sdapi/v1/options", self.set_options, methods=["POST"]),
            *self.core.control_routes(self._actions),
        ]

    # --- endpoints -------------------------------------------------------------------------

    async def txt2img(self, request: Request) -> Response:
        if (denied := await self._gate(request, "txt2img")) is not None:
            return denied
        try:
            body = schema.parse_body(await request.body())
        except schema.Invalid as exc:
            return exc.response()
        sampler = body["sampler_name"] or body["sampler_index"] or "Euler"
        if not schema.valid_sampler(sampler):
            return schema.http_exception(400, "Sampler not found")
        try:
            async with self.queue:
                if self.switch.down:
                    raise Crashed("the server died while this request waited")
                return JSONResponse(await self._generate(body, sampler))
        except RunFailed as exc:
            return schema.a1111_error(500, exc.kind, str(exc))
        except Crashed:
            return Dropped()

    async def img2img(self, request: Request) -> Response:
        """``img2imgapi`` (facts in ``a1111_img2img.py``)."""
        if (denied := await self._gate(request, "img2img")) is not None:
            return denied
        try:
            body = schema.parse_body(await request.body(), img2img=True)
        except schema.Invalid as exc:
            return exc.response()
        if body["init_images"] is None:
            return schema.http_exception(404, "Init image not found")
        try:
            mask = decode_image(body["mask"]) if body["mask"] else None
        except InvalidImage as exc:
            return schema.http_exception(500, str(exc))
        sampler = body["sampler_name"] or body["sampler_index"] or "Euler"
        if not schema.valid_sampler(sampler):
            return schema.http_exception(400, "Sampler not found")
        try:
            async with self.queue:
                if self.switch.down:
                    raise Crashed("the server died while this request waited")
                inits = [decode_image(i) for i in body["init_images"]]
                batch = _count(body, "batch_size")
                if len(inits) > batch:
                    message = (
                        f"bad number of images passed: {len(inits)}; expecting {batch} or less"
                    )
                    raise RunFailed("RuntimeError", message)
                edit = Edit(inits[0] if inits else None, mask)
                answer = await self._generate(body, sampler, edit)
                return JSONResponse(answer | {"parameters": echoed(body)})
        except InvalidImage as exc:
            return schema.http_exception(500, str(exc))
        except RunFailed as exc:
            return schema.a1111_error(500, exc.kind, str(exc))
        except Crashed:
            return Dropped()

    async def progress(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        self.core.stats.calls["progress"] += 1
        skip = request.query_params.get("skip_current_image", "false").lower() in ("true", "1")
        return JSONResponse(self.state.progress(self.options, skip))

    async def interrupt(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        self.core.stats.calls["interrupt"] += 1
        self.state.interrupted = True
        return JSONResponse({})

    async def skip(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        self.state.skipped = True
        return JSONResponse(None)

    async def sd_models(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        return JSONResponse([c.as_item() for c in self.checkpoints])

    async def samplers(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        return JSONResponse([{"name": s, "aliases": [], "options": {}} for s in schema.SAMPLERS])

    async def get_options(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        return JSONResponse(self.options)

    async def set_options(self, request: Request) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        try:
            changes = schema.json_object(await request.body())
        except schema.Invalid as exc:
            return exc.response()
        name = changes.pop("sd_model_checkpoint", None)
        if name is not None:
            ckpt = schema.find_checkpoint(self.checkpoints, str(name))
            if ckpt is None:
                return schema.a1111_error(500, "RuntimeError", f"model {name!r} not found")
            async with self.queue:  # reload_model_weights runs as a queued call
                await self.core.background.sleep(self.knobs.model_load_s)
                self.options["sd_model_checkpoint"] = ckpt.title
                self.options["sd_checkpoint_hash"] = ckpt.sha256
        self.options |= changes
        return JSONResponse(None)

    # --- a run -----------------------------------------------------------------------------

    async def _generate(
        self, body: dict[str, Any], sampler: str, edit: Edit | None = None
    ) -> dict[str, Any]:
        ckpt = self._checkpoint_for(body.get("override_settings") or {})
        self.core.stats.creates[ckpt.title] += 1
        fault = self._take_fault()
        seed = schema.resolve_seed(body["seed"])
        self.state.begin("scripts_img2img" if edit else "scripts_txt2img")
        try:
            if ckpt.title != self.options["sd_model_checkpoint"]:
                await self.core.background.sleep(self.knobs.model_load_s)
            steps = _count(body, "steps")
            if edit is not None:  # img2img samples only the part denoising_strength asks for
                steps = sampling_steps(steps, denoising(body))
            seeds = await self._sample(body, seed, fault, steps)
        finally:
            self.state.end()
        images = [self._image(body, ckpt, s, sampler, edit) for s in seeds]
        return {
            "images": images if body["send_images"] else [],
            "parameters": body,
            "info": schema.info_json(body, ckpt, seeds, sampler, self.state.job_timestamp),
        }

    async def _sample(
        self, body: dict[str, Any], seed: int, fault: str | None, steps: int
    ) -> list[int]:
        st, knobs = self.state, self.knobs
        n_iter, batch = (_count(body, k) for k in ("n_iter", "batch_size"))
        width, height = _latent_size(body["width"]), _latent_size(body["height"])
        st.job_count, st.sampling_steps = n_iter, steps
        fail_step = min(steps, max(1, math.ceil(steps * knobs.fail_at)))
        seeds: list[int] = []
        for it in range(n_iter):
            if st.interrupted or st.stopping_generation:
                break
            st.skipped = False
            st.preview = Preview(str(body["prompt"]), seed + it * batch, width, height)
            for step in range(1, steps + 1):
                if not await self.core.background.sleep(knobs.step_s):
                    raise Crashed("the fake is closing")
                st.sampling_step = step
                if fault is not None and it == 0 and step == fail_step:
                    self._fail(fault)
                if st.interrupted or st.skipped:
                    break
            seeds.extend(seed + it * batch + b for b in range(batch))
            st.nextjob()
        return seeds

    def _fail(self, fault: str) -> None:
        if fault == "crash":
            self.switch.crash(self.knobs.crash_restart_s)
            self.state = State()  # the restarted process starts afresh
            raise Crashed("the server died mid-run")
        if fault == "oom":
            raise RunFailed("OutOfMemoryError", schema.OOM_MESSAGE)
        raise RunFailed("NansException", schema.NANS_MESSAGE)

    def _take_fault(self) -> str | None:
        for name, fault in (("crash_next", "crash"), ("oom_next", "oom"), ("fail_next", "fail")):
            if self.knobs.take(name):
                return fault
        return None

    def _checkpoint_for(self, override: dict[str, Any]) -> schema.Checkpoint:
        name = str(override.get("sd_model_checkpoint") or self.options["sd_model_checkpoint"])
        # an unknown name loads the first checkpoint ("… not found; loading fallback …")
        return schema.find_checkpoint(self.checkpoints, name) or self.checkpoints[0]

    def _image(
        self,
        body: dict[str, Any],
        ckpt: schema.Checkpoint,
        seed: int,
        sampler: str,
        edit: Edit | None = None,
    ) -> str:
        fmt = _FORMATS.get(str(self.options.get("samples_format", "png")).lower(), "png")
        w, h = _latent_size(body["width"]), _latent_size(body["height"])
        if edit is not None and edit.init is not None:
            data = _encoded(derive(edit.init, edit.mask, body, seed, (w, h)), fmt)
        else:
            data = render(str(body["prompt"]), seed, w, h, fmt)
        if fmt == "png":
            data = _with_parameters(data, schema.infotext(body, ckpt, seed, sampler))
        return base64.b64encode(data).decode()

    # --- gates and actions -----------------------------------------------------------------

    async def _gate(self, request: Request, operation: str) -> Response | None:
        if (denied := self._auth(request)) is not None:
            return denied
        fault = await self.core.fault(operation)
        if fault == "garbage":
            return self.core.garbage_response()
        if fault is not None:  # A1111 has no rate limit: a 429 here comes from a proxy
            status = 429 if fault == "rate_limit" else self.behaviour.error_status
            return schema.http_exception(status, HTTPStatus(status).phrase)
        return None

    def _auth(self, request: Request) -> Response | None:
        if self.auth is None:
            return None
        challenge = {"www-authenticate": "Basic"}
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic" or not token:
            return schema.http_exception(401, "Not authenticated", challenge)
        try:
            user, _, password = base64.b64decode(token).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return schema.http_exception(401, "Invalid authentication credentials", challenge)
        if (user, password) != self.auth:
            return schema.http_exception(401, "Incorrect username or password", challenge)
        return None

    def _actions(self, changes: dict[str, Any]) -> None:
        occupy = changes.pop("occupy_s", None)
        if occupy is not None:
            self.core.background.spawn(self._ui_job(float(occupy)))

    async def _ui_job(self, seconds: float) -> None:
        """Someone generating in the web UI: holds the queue lock for ``seconds``."""
        async with self.queue:
            st, steps = self.state, 20
            st.begin("txt2img")
            st.job_count, st.sampling_steps = 1, steps
            st.preview = Preview("someone else's picture", 1, 512, 512)
            try:
                for step in range(1, steps + 1):
                    if not await self.core.background.sleep(seconds / steps) or st.interrupted:
                        break
                    st.sampling_step = step
            finally:
                st.end()


def _own_behaviour(behaviour: Behaviour | None) -> A1111Behaviour:
    if isinstance(behaviour, A1111Behaviour):
        return behaviour
    if behaviour is None:
        return A1111Behaviour()
    return A1111Behaviour(**dataclasses.asdict(behaviour))


def _count(body: dict[str, Any], name: str) -> int:
    return max(1, int(body[name] or 1))


def _latent_size(value: Any) -> int:
    return max(8, int(value or 512) // 8 * 8)


def _encoded(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format={"jpeg": "JPEG", "webp": "WEBP"}.get(fmt, "PNG"))
    return out.getvalue()


def _with_parameters(png: bytes, text: str) -> bytes:
    """The PNG with A1111's ``parameters`` text chunk (``encode_pil_to_base64``)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    out = io.BytesIO()
    with Image.open(io.BytesIO(png)) as image:
        image.save(out, format="PNG", pnginfo=info)
    return out.getvalue()


async def _fastapi_http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer to a routing error (404, 405): ``{"detail": "Not Found"}``."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "Internal Server Error"
    return JSONResponse({"detail": detail}, status_code=status)
