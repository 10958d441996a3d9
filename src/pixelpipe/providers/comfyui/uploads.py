"""A request's input images, uploaded to ComfyUI's input folder (server.py's upload routes).

- ``POST /upload/image``: multipart ``image`` (the file, under its content-derived name),
  ``type=input``, ``overwrite=true`` → ``{"name", "subfolder", "type"}``. The name is the
  file's own digest, so overwriting writes the same bytes: a retry, or another job with the same
  image, loads the same file.
- ``POST /upload/mask``: the same fields plus ``original_ref`` (``{"filename", "subfolder",
  "type"}`` of an uploaded image); ComfyUI saves that image with the uploaded mask's alpha under
  the new name — what its mask editor does — and a LoadImage node of it gives the mask as its
  MASK output (``1 - alpha``).

Both go through the backend's :class:`~pixelpipe.providers.http.ProviderHTTP` (its timeouts,
its error mapping). A 400 (ComfyUI's answer to a missing part or a bad path) is
ProviderInvalidInput.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pixelpipe.errors import ProviderInvalidInput
from pixelpipe.providers.base import ProviderRequest
from pixelpipe.providers.http import Multipart, ProviderHTTP
from pixelpipe.workflows import InputRef, Workflow
from pixelpipe.workflows.inputs import MissingInputs, SlotFile, slot_files


async def upload_inputs(
    http: ProviderHTTP, base: str, name: str, workflow: Workflow, req: ProviderRequest
) -> dict[InputRef, str]:
    """Upload what ``workflow``'s image and mask inputs load for ``req``; the value each input
    gets (the name ComfyUI gave the file, ``subfolder/name`` when in a subfolder)."""
    try:
        files = slot_files(workflow, req.images, req.mask)
    except MissingInputs as exc:
        raise ProviderInvalidInput(f"{name}: {exc}", provider=name) from None
    values: dict[InputRef, str] = {}
    uploaded: dict[str, Mapping[str, Any]] = {}  # our name -> ComfyUI's answer
    for file in files:
        if file.name not in uploaded:
            uploaded[file.name] = await _upload(http, base, name, file, uploaded)
        values[file.ref] = _value(uploaded[file.name])
    return values


async def _upload(
    http: ProviderHTTP,
    base: str,
    name: str,
    file: SlotFile,
    uploaded: Mapping[str, Mapping[str, Any]],
) -> Mapping[str, Any]:
    fields = {"type": "input", "overwrite": "true"}
    route = "/upload/image"
    if file.alpha_of is not None:
        original = uploaded[file.alpha_of.name]
        route = "/upload/mask"
        fields["original_ref"] = json.dumps(
            {
                "filename": str(original.get("name") or file.alpha_of.name),
                "subfolder": str(original.get("subfolder") or ""),
                "type": str(original.get("type") or "input"),
            }
        )
    form = Multipart(fields=fields, files=(("image", (file.name, file.data, file.content_type)),))
    resp = await http.send("POST", f"{base}{route}", form=form, allow=(400,))
    if resp.status_code == 400:
        raise ProviderInvalidInput(
            f"{name} refused the upload of {file.name} for input {file.ref} ({route}: 400)",
            provider=name,
        )
    answer = http.json_object(resp)
    if not isinstance(answer.get("name"), str) or not answer["name"]:
        raise ProviderInvalidInput(
            f"{name}: {route} answered without a file name: {str(answer)[:200]}", provider=name
        )
    return answer


def _value(answer: Mapping[str, Any]) -> str:
    """What a LoadImage node's ``image`` input says for an uploaded file."""
    subfolder = str(answer.get("subfolder") or "")
    return f"{subfolder}/{answer['name']}" if subfolder else str(answer["name"])
