"""How far a run is, read from the text a model prints while it runs (Replicate's and cog's
``logs``, the messages of fal's queue status ``logs``): a progress dict shaped like
:attr:`~pixelpipe.providers.base.ProviderUpdate.progress` — ``percent``, and ``step``/``steps``
where the line says them.

The last line that says something wins (a pipeline prints a bar per stage: loading, then
sampling). Recognised, as diffusers, ComfyUI-style and fal apps print them::

     40%|████      | 8/20 [00:02<00:03,  3.1it/s]     tqdm: percent, step 8 of 20
    step 8/20   Step 8 of 20                          percent from the steps
    Generating: 40%                                   a bare percent

Anything else says nothing: ``{}``.
"""

from __future__ import annotations

import re
from typing import Any

_TQDM = re.compile(r"(\d{1,3})%\|[^|\n]*\|\s*(\d+)/(\d+)")
_BAR = re.compile(r"(\d{1,3})%\|")
_STEP = re.compile(r"\bstep\s*(\d+)\s*(?:/|of)\s*(\d+)", re.IGNORECASE)
_PERCENT = re.compile(r"(\d{1,3}(?:\.\d+)?)\s*%")


def log_progress(text: str) -> dict[str, Any]:
    """The progress the last telling line of ``text`` shows (see the module docstring)."""
    for line in reversed(text.replace("\r", "\n").splitlines()):
        found = _line_progress(line)
        if found:
            return found
    return {}


def _line_progress(line: str) -> dict[str, Any]:
    tqdm = list(_TQDM.finditer(line))
    if tqdm:
        pct, step, steps = (int(g) for g in tqdm[-1].groups())
        return _with_steps(min(100, pct), step, steps)
    bar = _BAR.findall(line)
    if bar:
        return {"percent": min(100, int(bar[-1]))}
    step_of = _STEP.findall(line)
    if step_of:
        step, steps = (int(g) for g in step_of[-1])
        if steps > 0 and step <= steps:
            return _with_steps(round(100 * step / steps, 1), step, steps)
    percent = _PERCENT.findall(line)
    if percent:
        value = float(percent[-1])
        return {"percent": min(100, int(value) if value.is_integer() else round(value, 1))}
    return {}


def _with_steps(percent: float, step: int, steps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"percent": percent}
    if steps > 0 and step <= steps:
        out |= {"step": step, "steps": steps}
    return out
