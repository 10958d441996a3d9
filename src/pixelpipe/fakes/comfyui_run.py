"""How the fake ComfyUI "executes" one prompt: the messages, in ComfyUI's order, and the images.

Order (execution.py ``PromptExecutor.execute_async`` and ``execute``; main.py ``prompt_worker``):
``execution_start`` → ``execution_cached {nodes}`` (the nodes whose outputs are cached from the
previous prompt: same class and inputs; an identical prompt is all cached and makes no new image,
its output nodes answer ``executed`` with the cached output) → per node: ``progress_state``
(running) and ``executing {node, display_node, prompt_id}``; a sampler sends per step
``progress {value, max, prompt_id, node}`` + ``progress_state`` + a preview frame; an output node
sends ``executed {node, display_node, output: {"images": [{filename, subfolder, type}]},
prompt_id}`` → ``execution_success {prompt_id, timestamp}``. The worker then stores the history
entry and sends ``executing {node: null, prompt_id}``. A failing node: ``execution_error
{prompt_id, node_id, node_type, executed, exception_message, exception_type, traceback,
current_inputs, current_outputs, timestamp}``; an interrupt (checked before each node and at each
step, before its progress): ``execution_interrupted {prompt_id, node_id, node_type, executed,
timestamp}``. Both end the run with ``status_str: "error"``, ``completed: false``; the
messages with a ``timestamp`` are the history's ``status.messages`` (``[event, data]`` pairs).

The picture: :func:`pixelpipe.fakes.render.render` of the positive prompt text (the
``CLIPTextEncode`` feeding the sampler's ``positive``/guider) and the seed (``seed`` or
``noise_seed``), at the latent's ``width``x``height``; ``batch_size`` images, seeds ``seed+i``;
an image-to-image or inpainting graph's is derived from its uploaded input
(:mod:`pixelpipe.fakes.comfyui_img2img`).
Saved as ``<prefix>_<counter:05>_.png`` (type ``output``; ``PreviewImage``: ``temp``) with the
prompt JSON in a ``prompt`` text chunk, as SaveImage does.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pixelpipe.fakes import comfyui_graph as graph
from pixelpipe.fakes import comfyui_img2img as img2img
from pixelpipe.fakes.comfyui_img2img import LoadInput
from pixelpipe.fakes.comfyui_nodes import NODE_CLASSES
from pixelpipe.fakes.comfyui_ws import Hub
from pixelpipe.fakes.render import render

Sleep = Callable[[float], Awaitable[bool]]


class Interrupted(Exception):
    pass


class NodeFailed(Exception):
    def __init__(self, exception_type: str, message: str) -> None:
        super().__init__(message)
        self.exception_type = exception_type


class Died(Exception):
    """The server crashed during the run: nothing more is sent or stored."""


@dataclass
class RunKnobs:
    step_s: float
    node_s: float
    fail_node: str  # node id or class_type that raises
    fail_type: str
    fail_message: str
    previews: bool
    crash_at_step: int  # > 0: the server dies at this sampler step


@dataclass
class Outputs:
    """Files the graphs made, by (type, subfolder, filename); they survive a crash (on disk)."""

    files: dict[tuple[str, str, str], bytes] = field(default_factory=dict)
    counter: int = 1

    def save(self, prefix: str, kind: str, data: bytes) -> dict[str, str]:
        subfolder, _, base = prefix.rpartition("/")
        name = f"{base}_{self.counter:05}_.png"
        self.counter += 1
        self.files[(kind, subfolder, name)] = data
        return {"filename": name, "subfolder": subfolder, "type": kind}


@dataclass
class Run:
    """One prompt's execution; ``messages`` and ``ui`` become its history entry."""

    prompt_id: str
    prompt: dict[str, Any]
    outputs_to_execute: list[str]
    client_id: str | None
    messages: list[list[Any]] = field(default_factory=list)
    ui: dict[str, Any] = field(default_factory=dict)
    executed: list[str] = field(default_factory=list)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    success: bool = False


class Executor:
    """Runs prompts one at a time against ``hub``; ``cache`` maps node signatures to the output
    (ui) they made, for the previous prompt's nodes only (ComfyUI's classic cache)."""

    def __init__(
        self, hub: Hub, outputs: Outputs, sleep: Sleep, load_input: LoadInput = lambda _: None
    ) -> None:
        self.hub = hub
        self.outputs = outputs
        self.load_input = load_input  # a LoadImage value -> the uploaded file's bytes
        self.sleep = sleep
        self.cache: dict[str, dict[str, Any] | None] = {}
        self.interrupted = False

    async def execute(self, run: Run, knobs: RunKnobs) -> None:
        self.interrupted = False  # nodes.interrupt_processing(False)
        self.hub.client_id = run.client_id
        await self._message(run, "execution_start", {"prompt_id": run.prompt_id})
        order = graph.run_order(run.prompt, run.outputs_to_execute)
        sigs = {n: graph.signature(run.prompt, n) for n in run.prompt}
        cached = [n for n in run.prompt if sigs[n] in self.cache]
        await self._message(run, "execution_cached", {"nodes": cached, "prompt_id": run.prompt_id})
        current = [n for n in cached]
        try:
            for node_id in order:
                await self._node(run, node_id, node_id in cached, knobs)
        except Interrupted:
            await self._stopped(run, "execution_interrupted", {})
        except NodeFailed as exc:
            await self._stopped(
                run,
                "execution_error",
                {
                    "exception_message": f"{exc}\n",
                    "exception_type": exc.exception_type,
                    "traceback": [f'  File "nodes.py", line 1, in {exc.exception_type}\n'],
                    "current_inputs": {},
                    "current_outputs": current,
                },
            )
        else:
            run.success = True
            await self._message(run, "execution_success", {"prompt_id": run.prompt_id})
        self.cache = {sigs[n]: run.ui.get(n) for n in run.executed + cached}

    async def _node(self, run: Run, node_id: str, cached: bool, knobs: RunKnobs) -> None:
        node = run.prompt[node_id]
        cls = NODE_CLASSES[node["class_type"]]
        if cached:
            if cls.output_node:
                ui = self.cache.get(graph.signature(run.prompt, node_id))
                run.ui[node_id] = ui
                await self._executed(run, node_id, ui)
            return
        await self._state(run, node_id, "running", 0, 1)
        self.hub.last_node_id = node_id
        await self._send(
            "executing", {"node": node_id, "display_node": node_id, "prompt_id": run.prompt_id}, run
        )
        self._check_interrupt()
        if knobs.fail_node in (node_id, node["class_type"]):
            raise NodeFailed(knobs.fail_type, knobs.fail_message)
        if cls.sampler:
            await self._sample(run, node_id, knobs)
        elif not await self.sleep(knobs.node_s):
            raise Died
        if cls.output_node:
            ui = {"images": self._save(run, node_id)}
            run.ui[node_id] = ui
            await self._executed(run, node_id, ui)
        run.executed.append(node_id)
        await self._state(run, node_id, "finished", 1, 1)

    async def _sample(self, run: Run, node_id: str, knobs: RunKnobs) -> None:
        steps = graph.sampler_steps(run.prompt, node_id)
        text, seed, (w, h, _) = graph.picture_inputs(run.prompt)
        for step in range(1, steps + 1):
            if not await self.sleep(knobs.step_s) or step == knobs.crash_at_step:
                raise Died
            self._check_interrupt()
            await self._send(
                "progress",
                {"value": step, "max": steps, "prompt_id": run.prompt_id, "node": node_id},
                run,
            )
            await self._state(run, node_id, "running", step, steps)
            if knobs.previews:
                image = graph.preview(text, seed, w, h, step / steps)
                meta = {
                    "node_id": node_id,
                    "prompt_id": run.prompt_id,
                    "display_node_id": node_id,
                    "parent_node_id": None,
                    "real_node_id": node_id,
                }
                await self.hub.send_preview(image, "JPEG", meta, run.client_id)

    def _save(self, run: Run, node_id: str) -> list[dict[str, str]]:
        node = run.prompt[node_id]
        is_preview = node["class_type"] == "PreviewImage"
        prefix = (
            "ComfyUI_temp"
            if is_preview
            else str(node.get("inputs", {}).get("filename_prefix", "ComfyUI"))
        )
        text, seed, (w, h, batch) = graph.picture_inputs(run.prompt)
        src = img2img.source(run.prompt, self.load_input)
        files = []
        for i in range(batch):
            if src is None:
                drawn = render(text, seed + i, w, h, "png")
            else:  # image-to-image: derived from the uploaded picture
                drawn = img2img.picture(text, seed + i, src)
            data = graph.png(drawn, run.prompt)
            files.append(self.outputs.save(prefix, "temp" if is_preview else "output", data))
        return files

    def _check_interrupt(self) -> None:
        if self.interrupted:
            raise Interrupted

    async def _executed(self, run: Run, node_id: str, ui: dict[str, Any] | None) -> None:
        await self._send(
            "executed",
            {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": run.prompt_id},
            run,
        )

    async def _stopped(self, run: Run, event: str, extra: dict[str, Any]) -> None:
        node_id = self.hub.last_node_id or ""
        await self._message(
            run,
            event,
            {
                "prompt_id": run.prompt_id,
                "node_id": node_id,
                "node_type": run.prompt.get(node_id, {}).get("class_type"),
                "executed": list(run.executed),
                **extra,
            },
        )

    async def _state(self, run: Run, node_id: str, state: str, value: int, top: int) -> None:
        run.states[node_id] = {
            "value": value,
            "max": top,
            "state": state,
            "node_id": node_id,
            "prompt_id": run.prompt_id,
            "display_node_id": node_id,
            "parent_node_id": None,
            "real_node_id": node_id,
        }
        await self._send(
            "progress_state", {"prompt_id": run.prompt_id, "nodes": dict(run.states)}, run
        )

    async def _message(self, run: Run, event: str, data: dict[str, Any]) -> None:
        """``PromptExecutor.add_message``: kept for the history and sent to the client."""
        data = {**data, "timestamp": int(time.time() * 1000)}
        run.messages.append([event, data])
        await self._send(event, data, run)

    async def _send(self, event: str, data: dict[str, Any], run: Run) -> None:
        if run.client_id is not None:
            await self.hub.send(event, data, run.client_id)
