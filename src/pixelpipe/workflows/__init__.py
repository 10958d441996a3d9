"""ComfyUI workflow templates: an API-format workflow becomes a pixelpipe model.

An operator exports a workflow from ComfyUI in API format (Workflow → Export (API)) and says
where pixelpipe's canonical parameters go — prompt, negative_prompt, seed, width, height, steps,
guidance — either with placeholders in the workflow's own inputs (``"%prompt%"`` as SillyTavern
writes them, or ``"{{prompt}}"``) or with ``"<node id>.<input name>"`` paths in the catalog file
(as Open WebUI maps node ids and input fields). :func:`read_template` checks the file,
:meth:`Template.bind` the mapping and the output node; the :class:`Workflow` it gives renders a
request into the concrete graph both ComfyUI backends send, and carries the digest that goes into
the content key of the model's images (ADR 0002). See docs/comfyui.md.
"""

from pixelpipe.workflows.mapping import MappingError
from pixelpipe.workflows.parameters import PARAMETERS, Parameters
from pixelpipe.workflows.template import Template, load_workflow, read_template
from pixelpipe.workflows.workflow import InputRef, Workflow

__all__ = [
    "PARAMETERS",
    "InputRef",
    "MappingError",
    "Parameters",
    "Template",
    "Workflow",
    "load_workflow",
    "read_template",
]
