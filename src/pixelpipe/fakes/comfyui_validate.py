"""ComfyUI's prompt validation (``POST /prompt``), for the fake ComfyUI.

Follows ``execution.validate_prompt`` / ``validate_inputs`` (ComfyUI execution.py, mid-2025; see
:mod:`pixelpipe.fakes.comfyui` for the sources): a node without ``class_type`` →
``invalid_prompt``; an unknown class → ``missing_node_type`` (both with empty ``node_errors``); no
output node → ``prompt_no_outputs``; otherwise each output node is validated with its inputs,
errors collected per node as ``{"errors": [...], "dependent_outputs": [...], "class_type"}``; the
prompt is refused (``prompt_outputs_failed_validation``) only when *no* output is valid. A link
to a node that does not exist raises a ``KeyError`` inside ComfyUI's validation, reported under
the *output* node as ``exception_during_validation`` with details ``"'<id>'"``. Values:
``value_not_in_list`` (combos), ``invalid_input_type``, ``value_smaller_than_min``,
``value_bigger_than_max``; links: ``bad_linked_input``, ``return_type_mismatch``. A LoadImage /
LoadImageMask whose file was never uploaded: ``custom_validation_failed`` (its VALIDATE_INPUTS:
``image - Invalid image file: <name>``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pixelpipe.fakes.comfyui_nodes import NODE_CLASSES

HasInput = Callable[[str], bool]


def _error(type_: str, message: str, details: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, "message": message, "details": details, "extra_info": extra}


@dataclass
class Validation:
    """What ``validate_prompt`` returns: ``(ok, error, outputs, node_errors)``."""

    ok: bool
    error: dict[str, Any] | None
    outputs: list[str]
    node_errors: dict[str, Any]


def validate_prompt(prompt: Any, has_input: HasInput = lambda _: True) -> Validation:
    """``has_input``: whether a LoadImage / LoadImageMask ``image`` names an uploaded file."""
    if not isinstance(prompt, dict):
        err = _error("invalid_prompt", "Cannot execute because the prompt is not an object.", "")
        return Validation(False, err, [], {})
    outputs: list[str] = []
    for node_id, node in prompt.items():
        if not isinstance(node, dict) or "class_type" not in node:
            err = _error(
                "invalid_prompt",
                "Cannot execute because a node is missing the class_type property.",
                f"Node ID '#{node_id}'",
            )
            return Validation(False, err, [], {})
        cls = NODE_CLASSES.get(node["class_type"])
        if cls is None:
            ct = node["class_type"]
            err = _error(
                "missing_node_type",
                f"Node '{ct}' not found. The custom node may not be installed.",
                f"Node ID '#{node_id}'",
                node_id=node_id,
                class_type=ct,
                node_title=ct,
            )
            return Validation(False, err, [], {})
        if cls.output_node:
            outputs.append(str(node_id))
    if not outputs:
        return Validation(False, _error("prompt_no_outputs", "Prompt has no outputs", ""), [], {})
    return _validate_outputs(prompt, outputs, has_input)


def _validate_outputs(
    prompt: dict[str, Any], outputs: list[str], has_input: HasInput
) -> Validation:
    good: list[str] = []
    failures: list[tuple[str, list[dict[str, Any]]]] = []
    node_errors: dict[str, Any] = {}
    for out in outputs:
        validated: dict[str, tuple[bool, list[dict[str, Any]]]] = {}
        try:
            ok = _validate_node(prompt, out, validated, has_input)
        except Exception as exc:  # ComfyUI reports an exception raised while validating
            reason = _error(
                "exception_during_validation",
                "Exception when validating node",
                str(exc),
                exception_type=type(exc).__name__,
                traceback=[],
            )
            validated[out] = (False, [reason])
            ok = False
        if ok:
            good.append(out)
            continue
        failures.append((out, validated.get(out, (False, []))[1]))
        for node_id, (valid, reasons) in validated.items():
            if not valid and reasons:
                entry = node_errors.setdefault(
                    node_id,
                    {
                        "errors": reasons,
                        "dependent_outputs": [],
                        "class_type": prompt[node_id]["class_type"],
                    },
                )
                entry["dependent_outputs"].append(out)
    if not good:
        details = "\n".join(f"{e['message']}: {e['details']}" for _, errs in failures for e in errs)
        err = _error(
            "prompt_outputs_failed_validation", "Prompt outputs failed validation", details
        )
        return Validation(False, err, [], node_errors)
    return Validation(True, None, good, node_errors)


def _validate_node(
    prompt: dict[str, Any],
    node_id: str,
    validated: dict[str, tuple[bool, list[dict[str, Any]]]],
    has_input: HasInput,
) -> bool:
    if node_id in validated:
        return validated[node_id][0]
    node = prompt[node_id]
    cls = NODE_CLASSES[node["class_type"]]
    inputs = node.get("inputs") or {}
    errors: list[dict[str, Any]] = []
    valid = True
    for name, spec in cls.required.items():
        if name not in inputs:
            errors.append(
                _error("required_input_missing", "Required input is missing", name, input_name=name)
            )
            continue
        value = inputs[name]
        if isinstance(value, list):
            linked_ok, link_errors = _validate_link(prompt, name, value, spec, validated, has_input)
            errors.extend(link_errors)
            valid = valid and linked_ok
        else:
            errors.extend(_validate_value(name, value, spec))
            if cls.loads_file and name == "image" and not has_input(str(value)):
                errors.append(  # LoadImage.VALIDATE_INPUTS, reported by validate_inputs
                    _error(
                        "custom_validation_failed",
                        "Custom validation failed for node",
                        f"image - Invalid image file: {value}",
                        input_name="image",
                    )
                )
    ok = valid and not errors
    validated[node_id] = (ok, errors)
    return ok


def _validate_link(
    prompt: dict[str, Any],
    name: str,
    value: list[Any],
    spec: list[Any],
    validated: dict[str, tuple[bool, list[dict[str, Any]]]],
    has_input: HasInput,
) -> tuple[bool, list[dict[str, Any]]]:
    if len(value) != 2:
        return False, [
            _error(
                "bad_linked_input",
                "Bad linked input, must be a length-2 list of [node_id, slot_index]",
                name,
                input_name=name,
            )
        ]
    source_id, slot = str(value[0]), value[1]
    source = prompt[source_id]  # KeyError for a missing node, as in ComfyUI
    source_cls = NODE_CLASSES[source["class_type"]]
    received = (
        source_cls.outputs[slot]
        if isinstance(slot, int) and slot < len(source_cls.outputs)
        else "*"
    )
    expected = spec[0] if isinstance(spec[0], str) else "COMBO"
    if received != expected:
        detail = f"{name}, received_type({received}) mismatch input_type({expected})"
        return False, [
            _error(
                "return_type_mismatch",
                "Return type mismatch between linked nodes",
                detail,
                input_name=name,
                received_type=received,
            )
        ]
    return _validate_node(prompt, source_id, validated, has_input), []


def _validate_value(name: str, value: Any, spec: list[Any]) -> list[dict[str, Any]]:
    kind, opts = spec[0], (spec[1] if len(spec) > 1 else {})
    if isinstance(kind, list):
        if value not in kind:
            return [
                _error(
                    "value_not_in_list",
                    "Value not in list",
                    f"{name}: '{value}' not in {kind}",
                    input_name=name,
                )
            ]
        return []
    if kind in ("INT", "FLOAT"):
        try:
            number = int(value) if kind == "INT" else float(value)
        except (TypeError, ValueError):
            return [
                _error(
                    "invalid_input_type",
                    f"Failed to convert an input value to a {kind} value",
                    f"{name}, {value}",
                    input_name=name,
                )
            ]
        if "min" in opts and number < opts["min"]:
            return [
                _error(
                    "value_smaller_than_min",
                    f"Value {number} smaller than min of {opts['min']}",
                    f"{name}",
                    input_name=name,
                )
            ]
        if "max" in opts and number > opts["max"]:
            return [
                _error(
                    "value_bigger_than_max",
                    f"Value {number} bigger than max of {opts['max']}",
                    f"{name}",
                    input_name=name,
                )
            ]
    return []
