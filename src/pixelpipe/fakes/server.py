"""Every provider's fake under one server, for offline demos (``pixelpipe fake-providers``).

Each registration with a ``fake`` (see :class:`pixelpipe.providers.registration.FakeSpec`) is
mounted at ``BASE/<name>``; today (``BASE`` = ``http://HOST:PORT``)::

    BASE/replicate   Replicate API      PIXELPIPE_REPLICATE_BASE_URL=BASE/replicate
    BASE/fal         fal queue          PIXELPIPE_FAL_QUEUE_URL=BASE/fal
                                        PIXELPIPE_FAL_JWKS_URL=BASE/fal/.well-known/jwks.json
    BASE/openai/v1   OpenAI Images      PIXELPIPE_OPENAI_BASE_URL=BASE/openai/v1
    BASE/openai_moderation/v1  OpenAI moderation  PIXELPIPE_MODERATION_URL=BASE/openai_moderation/v1

plus ``REPLICATE_API_TOKEN``, ``FAL_KEY`` and ``OPENAI_API_KEY`` (any value; the fakes accept any
key unless built with one; each registration's ``fake.env`` names them) and
``PIXELPIPE_TEST_MODE=true`` (outputs are ``http://`` URLs on a loopback host).

The self-hosted kinds' fakes are mounted too — ``BASE/a1111`` (AUTOMATIC1111/Forge) and
``BASE/openai_compatible`` (an SGLang-style image server serving ``Qwen/Qwen-Image``) and
``BASE/comfyui`` (ComfyUI's native API and WebSocket, :mod:`pixelpipe.fakes.comfyui`) — but no
variable points at them: a backend of the operator's catalog file does, and
:func:`catalog_example` writes one (``GET BASE/`` shows it) — with a ComfyUI workflow model that
runs the example SDXL workflow shipped with pixelpipe (:data:`EXAMPLE_WORKFLOW`). cog is not
faked: the suite and docs/self-hosted.md run the real cog server (``cog``/``coglet`` from PyPI).
Each fake has ``POST /_control`` (switch behaviours) and ``GET /_stats`` (counters) under its
prefix; ``GET BASE/`` lists all of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from pixelpipe.fakes.common import Behaviour, FakeCore
from pixelpipe.fakes.openai_moderation import OpenAIModerationFake
from pixelpipe.providers.registration import FakeSpec
from pixelpipe.providers.registry import registrations

CONTROL_HELP = {
    "POST {prefix}/_control": "JSON with any of the behaviour fields below; also "
    '{"reset": true}, {"expire_outputs": true}; fal: {"rotate_key": true}, '
    '{"sign_with_unknown_key": true}',
    "GET {prefix}/_control": "current behaviours",
    "GET {prefix}/_stats": "creates per model, calls per operation, webhook counters",
}


class Fake(Protocol):
    """What the combined server needs of one provider's fake."""

    core: FakeCore
    app: Any  # the ASGI app to mount

    @property
    def behaviour(self) -> Behaviour: ...

    async def aclose(self) -> None: ...


def faked() -> dict[str, FakeSpec]:
    """Provider name -> its fake, for every registration that has one."""
    return {r.name: r.fake for r in registrations() if r.fake is not None}


def fake_env(base: str) -> dict[str, str]:
    """The variables that point pixelpipe at fakes served at ``base``."""
    base = base.rstrip("/")
    env: dict[str, str] = {}
    for name, spec in faked().items():
        env.update(spec.env(f"{base}/{name}"))
    env["PIXELPIPE_TEST_MODE"] = "true"
    return env


EXAMPLE_WORKFLOW = Path(__file__).with_name("sdxl_txt2img.json")
"""A copy of ``examples/comfyui/sdxl_txt2img.json`` that ships with pixelpipe (installed or
not), so that :func:`catalog_example` can name it by its absolute path."""


def catalog_example(base: str) -> str:
    """A catalog file (``PIXELPIPE_CATALOG_PATH``) whose backends are the self-hosted kinds'
    fakes served at ``base``: one model on each — the A1111 and OpenAI-compatible ones failing
    over to the offline preview, the ComfyUI one running the example SDXL workflow
    (:data:`EXAMPLE_WORKFLOW`, named by its absolute path: the file works from anywhere)."""
    base = base.rstrip("/")
    workflow = json.dumps(str(EXAMPLE_WORKFLOW))  # a TOML basic string, escapes included
    return f"""\
[backends.fake_sd]
kind = "a1111"
url = "{base}/a1111"
usd_per_gpu_hour = 1.20

[backends.fake_qwen]
kind = "openai_compatible"
url = "{base}/openai_compatible"
usd_per_gpu_hour = 2.50
options = {{ model = "Qwen/Qwen-Image" }}

[backends.fake_comfy]
kind = "comfyui"
url = "{base}/comfyui"
slots = 1
usd_per_gpu_hour = 0.90

[models.sd-fake]
extends = "preview"
label = "SD on the fake AUTOMATIC1111"
backends = ["fake_sd", "preview"]
max_input_images = 1  # img2img: one init image (with a mask and a strength)

[models.qwen-fake]
extends = "preview"
label = "Qwen-Image on the fake OpenAI-compatible server"
backends = ["fake_qwen", "preview"]
max_input_images = 0  # text only: its /v1/images/edits takes no mask or strength

[models.sdxl-comfy-fake]
label = "SDXL workflow on the fake ComfyUI"
formats = ["png"]
aspect_ratios = {{ "1:1" = [1024, 1024], "16:9" = [1344, 768], "9:16" = [768, 1344] }}
steps = {{ min = 10, max = 50, default = 30 }}
guidance = {{ min = 1.0, max = 12.0, default = 7.0 }}
negative_prompt = true
typical_latency_s = 1.0
backends = ["fake_comfy"]
workflow = {workflow}  # examples/comfyui/sdxl_txt2img.json
output_node = "9"

[models.sdxl-comfy-fake.workflow_inputs]
prompt = "6.text"
negative_prompt = "7.text"
seed = "3.seed"
steps = "3.steps"
guidance = "3.cfg"
width = "5.width"
height = "5.height"
"""


def _build_fake(spec: FakeSpec, behaviour: Behaviour, public_url: str | None) -> Fake:
    module, _, cls = spec.factory.partition(":")
    fake: Fake = getattr(importlib.import_module(module), cls)(
        behaviour=behaviour, public_url=public_url
    )
    return fake


class FakeProviders:
    """Every provider's fake and the Starlette app that mounts them (``fake(name)``, or as an
    attribute: ``fakes.replicate``)."""

    def __init__(
        self, *, latency_s: float = 1.0, public_url: str | None = None, **behaviour: Any
    ) -> None:
        """``behaviour``: initial :class:`Behaviour` fields shared by the three fakes."""

        def behaviour_() -> Behaviour:
            b = Behaviour(latency_s=latency_s)
            b.update(behaviour)
            return b

        root = public_url.rstrip("/") if public_url else None
        self.fakes: dict[str, Fake] = {
            name: _build_fake(spec, behaviour_(), _sub(root, name))
            for name, spec in faked().items()
        }
        mounts = [Mount(f"/{name}", app=fake.app) for name, fake in self.fakes.items()]
        # not a provider: OpenAI moderation (PIXELPIPE_MODERATION_URL=BASE/openai_moderation/v1)
        self.moderation = OpenAIModerationFake()
        mounts.append(Mount("/openai_moderation", app=self.moderation.app))
        self.app = Starlette(
            routes=[Route("/", self._index, methods=["GET"]), *mounts], lifespan=self._lifespan
        )
        self.app.state.fakes = self

    def fake(self, name: str) -> Fake:
        return self.fakes[name]

    def __getattr__(self, name: str) -> Any:
        """``fakes.replicate``: the named provider's fake (its concrete class, for tests)."""
        fakes = self.__dict__.get("fakes", {})
        if name in fakes:
            return fakes[name]
        raise AttributeError(name)

    async def aclose(self) -> None:
        await asyncio.gather(*(fake.aclose() for fake in self.fakes.values()))
        await self.moderation.aclose()

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        yield
        await self.aclose()

    async def _index(self, request: Request) -> Response:
        base = f"{request.url.scheme}://{request.url.netloc}{request.scope.get('root_path', '')}"
        return JSONResponse(
            {
                "fakes": list(self.fakes),
                "env": fake_env(base),
                "moderation": {
                    "PIXELPIPE_MODERATION_URL": f"{base}/openai_moderation/v1",
                    "markers": "[mod:<category>] in a prompt; magenta images; "
                    "POST /openai_moderation/_control",
                },
                "catalog_example": catalog_example(base),
                "control": CONTROL_HELP,
                "behaviour_fields": Behaviour().as_dict(),
                "prompt_markers": {"[nsfw]": "NSFW failure", "[blocked]": "content policy"},
            }
        )


def _sub(root: str | None, prefix: str) -> str | None:
    return f"{root}/{prefix}" if root else None


def build_fakes_app(**kwargs: Any) -> Starlette:
    """One ASGI app: each fake at ``/<provider>`` (``app.state.fakes``)."""
    return FakeProviders(**kwargs).app


@contextlib.asynccontextmanager
async def serve_app(app: Any, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn in this event loop; yield its base URL (port 0 = free)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def serve_fakes(host: str = "127.0.0.1", port: int = 9100, **kwargs: Any) -> None:
    """Run the fakes until interrupted (Ctrl-C / SIGTERM end it cleanly)."""
    fakes = FakeProviders(**kwargs)
    config = uvicorn.Config(fakes.app, host=host, port=port, log_level="info", lifespan="on")
    print(f"fake providers on http://{host}:{port}; point pixelpipe at them with:")
    for name, value in fake_env(f"http://{host}:{port}").items():
        print(f"  export {name}={value}")
    print(
        f"and a catalog file for the self-hosted fakes (PIXELPIPE_CATALOG_PATH): "
        f"curl -s http://{host}:{port}/ | jq -r .catalog_example > catalog.toml"
    )
    await uvicorn.Server(config).serve()


def run_fake_providers(host: str, port: int, **kwargs: Any) -> None:
    """Blocking entry point of ``pixelpipe fake-providers`` (kwargs as for FakeProviders)."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_fakes(host, port, **kwargs))
