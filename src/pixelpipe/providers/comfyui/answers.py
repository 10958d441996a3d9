"""What ComfyUI's native API answers, read: our prompt id, a ``POST /prompt`` refusal, a
``/history`` entry and a ``/queue`` listing (protocol facts in ``pixelpipe/fakes/comfyui.py``).

- ``POST /prompt`` takes the client's ``prompt_id``. The ``server.py`` versions read (2025-26)
  accept any string (``str(json_data.get("prompt_id", uuid.uuid4()))``); comfy-api-proxy says
  newer ones want a UUID, which is what ComfyUI makes itself, so ours is one: derived from the
  attempt's run tag (:func:`prompt_id`), the same job attempt always names the same prompt and a
  restart can look it up instead of queueing it again.
- A refused graph is 400 ``{"error": {type, message, details, extra_info}, "node_errors": {id:
  {"errors": [{type, message, details, extra_info}], "dependent_outputs", "class_type"}}}``:
  :func:`refusal_message` names each node (the workflow's ``describe_node``) with ComfyUI's text.
- ``/history/{id}`` is ``{}`` until the prompt ended, then ``{id: {"outputs": {node: {"images":
  [{filename, subfolder, type}]}}, "status": {"status_str", "completed", "messages": [[event,
  data]…]}}}``; every message's data has a ``timestamp`` (ms): ``execution_start`` to
  ``execution_success`` is the run's time on the server (ComfyUI reports no GPU time).
- ``/queue`` items are ``[number, prompt_id, prompt, extra_data, outputs]``; pending ones run in
  the order of ``number`` (the listing is a heap, not sorted).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pixelpipe.providers.run_tag import RunRef, run_webhook_url

# uuid5 namespace of pixelpipe's ComfyUI prompt ids (any fixed UUID: it only keeps them apart)
PROMPT_NAMESPACE = uuid.UUID("6f1c8f5e-2b7a-4c0e-9d4b-3a5e7c9d1f20")
GPU_TIME_SERVER = "server"  # execution_start → execution_success in the history's messages
GPU_TIME_WALL = "wall"  # timed by pixelpipe: from its submit (or first sight) to the end

Describe = Callable[[str], str]  # how an error names a node (Workflow.describe_node)


def prompt_id(provider: str, run: RunRef, secret: bytes) -> str:
    """The UUID of the attempt's prompt: uuid5 over its HMAC run tag (stable per job, attempt
    and backend under the server's signing key; unguessable without it)."""
    return str(uuid.uuid5(PROMPT_NAMESPACE, run_webhook_url("", provider, run, secret)))


def refusal_message(body: Any, describe: Describe) -> str:
    """What a 400 from ``POST /prompt`` says, each failing node named."""
    if not isinstance(body, Mapping):
        return str(body)[:500]
    nodes = body.get("node_errors")
    parts = [
        f"{describe(str(node))}: {_errors_text(entry)}"
        for node, entry in (nodes.items() if isinstance(nodes, Mapping) else ())
        if isinstance(entry, Mapping)
    ]
    if parts:
        return "; ".join(parts)
    error = body.get("error")
    if not isinstance(error, Mapping):
        return str(error or "the workflow was refused")
    extra = error.get("extra_info")
    node = extra.get("node_id") if isinstance(extra, Mapping) else None
    text = _error_text(error)
    return f"{describe(str(node))}: {text}" if node is not None else text


def _errors_text(entry: Mapping[str, Any]) -> str:
    errors = entry.get("errors")
    texts = [_error_text(e) for e in errors if isinstance(e, Mapping)] if errors else []
    return "; ".join(texts) or "refused"


def _error_text(error: Mapping[str, Any]) -> str:
    message = str(error.get("message") or error.get("type") or "error")
    details = str(error.get("details") or "")
    return f"{message}: {details}" if details else message


@dataclass(frozen=True, slots=True)
class Ended:
    """A prompt's history entry, read."""

    succeeded: bool
    interrupted: bool
    images: tuple[Mapping[str, Any], ...]  # the output node's {filename, subfolder, type}
    error: str  # why it failed (execution_error), naming the node; "" otherwise
    server_seconds: float | None  # execution_start → its end (success, error, interrupt)


def read_history(entry: Mapping[str, Any], output_node: str | None, describe: Describe) -> Ended:
    status = entry.get("status")
    status = status if isinstance(status, Mapping) else {}
    messages = _messages(status.get("messages"))
    succeeded = status.get("status_str") == "success" and bool(status.get("completed", True))
    return Ended(
        succeeded=succeeded,
        interrupted="execution_interrupted" in messages,
        images=_images(entry.get("outputs"), output_node),
        error="" if succeeded else _failure(messages, describe),
        server_seconds=_seconds(messages),
    )


def _messages(value: Any) -> dict[str, Mapping[str, Any]]:
    """The history's ``[event, data]`` pairs as event → data (the last of each)."""
    out: dict[str, Mapping[str, Any]] = {}
    for item in value if isinstance(value, list) else ():
        if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[1], Mapping):
            out[str(item[0])] = item[1]
    return out


def _images(outputs: Any, output_node: str | None) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(outputs, Mapping):
        return ()
    nodes = [output_node] if output_node else sorted(outputs)
    found: list[Mapping[str, Any]] = []
    for node in nodes:
        ui = outputs.get(node)
        images = ui.get("images") if isinstance(ui, Mapping) else None
        found += [i for i in images or () if isinstance(i, Mapping) and i.get("filename")]
    return tuple(found)


def _failure(messages: Mapping[str, Mapping[str, Any]], describe: Describe) -> str:
    error = messages.get("execution_error")
    if error is None:
        stopped = messages.get("execution_interrupted")
        if stopped is not None:
            return f"interrupted at {describe(str(stopped.get('node_id')))}"
        return "the prompt ended without a result"
    node = describe(str(error.get("node_id")))
    kind = str(error.get("exception_type") or "error")
    text = str(error.get("exception_message") or "").strip()
    return f"{node} failed: {kind}: {text}" if text else f"{node} failed: {kind}"


def _seconds(messages: Mapping[str, Mapping[str, Any]]) -> float | None:
    start = messages.get("execution_start", {}).get("timestamp")
    last = next((messages[e] for e in _ENDS if e in messages), {})
    end = last.get("timestamp")
    if not (isinstance(start, int | float) and isinstance(end, int | float)):
        return None
    return max(0.0, (float(end) - float(start)) / 1000)


_ENDS = ("execution_success", "execution_error", "execution_interrupted")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def queue_place(listing: Mapping[str, Any], pid: str) -> tuple[bool, int | None]:
    """(running, position): whether ``pid`` runs now; else its place among the pending prompts
    (1 = next), or None when it is in neither list."""
    running = listing.get("queue_running")
    if isinstance(running, list) and any(_item_id(i) == pid for i in running):
        return True, None
    pending = listing.get("queue_pending")
    items = [i for i in pending if _item_id(i)] if isinstance(pending, list) else []
    items.sort(key=_item_number)
    for place, item in enumerate(items, start=1):
        if _item_id(item) == pid:
            return False, place
    return False, None


def queue_sizes(listing: Mapping[str, Any]) -> tuple[int, int]:
    """(running, pending) counts of a ``/queue`` listing."""
    running, pending = listing.get("queue_running"), listing.get("queue_pending")
    return (
        len(running) if isinstance(running, list) else 0,
        len(pending) if isinstance(pending, list) else 0,
    )


def _item_id(item: Any) -> str | None:
    return str(item[1]) if isinstance(item, list) and len(item) > 1 else None


def _item_number(item: Any) -> float:
    number = item[0] if isinstance(item, list) and item else 0
    return float(number) if _number(number) else 0.0
