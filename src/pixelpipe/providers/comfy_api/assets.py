"""A request's input images as Comfy API v2 assets (comfy-api-proxy 0.1.6, Comfy Cloud).

``POST /api/v2/assets`` (multipart ``file`` + ``file_path`` ``input/<name>``) → 201 ``{"id",
"hash", …}`` (the proxy passes the bytes to ComfyUI's ``/upload/image``), or 200 with the asset
it already has for the same bytes: a retry, or another job with the same image, reuses it. The
workflow's LoadImage / LoadImageMask input then holds ``{"__type": "core/ASSET", "info": {"id":
<asset id>}}``, which the server replaces with the uploaded file's name before ComfyUI sees it.

There is no ``/upload/mask`` in v2: a mask that is an image's alpha (a mask mapped to an image
slot) is put into that image here, exactly as ComfyUI's ``/upload/mask`` would, and the result is
uploaded as one asset.
"""

from __future__ import annotations

from typing import Any

from pixelpipe.errors import ProviderInvalidInput
from pixelpipe.providers.base import ProviderRequest
from pixelpipe.providers.http import Multipart, ProviderHTTP
from pixelpipe.workflows import InputRef, Workflow
from pixelpipe.workflows.inputs import MissingInputs, slot_files, with_alpha

ASSETS = "/api/v2/assets"


async def upload_assets(
    http: ProviderHTTP, base: str, name: str, workflow: Workflow, req: ProviderRequest
) -> dict[InputRef, Any]:
    """Upload what ``workflow``'s image and mask inputs load for ``req``; each input's asset
    reference."""
    try:
        files = slot_files(workflow, req.images, req.mask)
    except MissingInputs as exc:
        raise ProviderInvalidInput(f"{name}: {exc}", provider=name) from None
    values: dict[InputRef, Any] = {}
    ids: dict[str, str] = {}  # our file name -> asset id
    for file in files:
        data = file.data if file.alpha_of is None else with_alpha(file.alpha_of.data, file.data)
        if file.name not in ids:
            ids[file.name] = await _upload(http, base, name, file.name, data, file.content_type)
        values[file.ref] = {"__type": "core/ASSET", "info": {"id": ids[file.name]}}
    return values


async def _upload(
    http: ProviderHTTP, base: str, name: str, filename: str, data: bytes, content_type: str
) -> str:
    form = Multipart(
        fields={"file_path": f"input/{filename}"},
        files=(("file", (filename, data, content_type)),),
    )
    resp = await http.send("POST", base + ASSETS, form=form)
    asset_id = http.json_object(resp).get("id")
    if not isinstance(asset_id, str) or not asset_id:
        raise ProviderInvalidInput(
            f"{name}: {ASSETS} answered without an asset id for {filename}", provider=name
        )
    return asset_id
