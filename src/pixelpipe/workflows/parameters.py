"""pixelpipe's canonical parameters a workflow can take, their placeholders and their types."""

from __future__ import annotations

import re
from typing import Protocol

TEXT = ("prompt", "negative_prompt")
INTEGER = ("seed", "width", "height", "steps")
DECIMAL = ("guidance", "strength")
# Input files: the request's images (one slot per image, in order) and its mask, uploaded to
# ComfyUI and loaded by a LoadImage / LoadImageMask node; mapped by path only (no placeholder).
FILES = ("image", "mask")
VALUES = (*TEXT, *INTEGER, *DECIMAL)  # the names of CanonicalRequest they are read from
PARAMETERS = (*VALUES, *FILES)
REQUIRED = ("prompt",)

# Other integrations' names for the same parameter: SillyTavern's CFG is %scale%, its
# image-to-image strength %denoise%.
ALIASES = {"scale": "guidance", "cfg": "guidance", "cfg_scale": "guidance", "denoise": "strength"}

# A whole string input that is a placeholder: "%prompt%" (SillyTavern) or "{{prompt}}".
WHOLE = re.compile(r"^(?:%([A-Za-z_]+)%|\{\{\s*([A-Za-z_]+)\s*\}\})$")
# A placeholder of ours written inside a longer text (not filled: only whole values are).
_NAMES = "|".join(sorted({*VALUES, *ALIASES}, key=len, reverse=True))
INSIDE = re.compile(rf"%({_NAMES})%|\{{\{{\s*({_NAMES})\s*\}}\}}")


class Parameters(Protocol):
    """What a workflow is rendered from: :class:`pixelpipe.intake.CanonicalRequest` is one."""

    @property
    def prompt(self) -> str: ...
    @property
    def negative_prompt(self) -> str | None: ...
    @property
    def seed(self) -> int: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def steps(self) -> int | None: ...
    @property
    def guidance(self) -> float | None: ...
    @property
    def strength(self) -> float | None: ...


def placeholder_name(value: str) -> str | None:
    """The name in a whole-value placeholder ("%seed%" → "seed"), as written; else None."""
    found = WHOLE.match(value)
    return None if found is None else found.group(1) or found.group(2)


def canonical(name: str) -> str | None:
    """The parameter a placeholder name stands for (aliases resolved); None if none."""
    name = ALIASES.get(name, name)
    return name if name in PARAMETERS else None


def kind_of(parameter: str) -> str:
    if parameter in FILES:
        return "file"
    return "text" if parameter in TEXT else "number"
