"""The fake ComfyUI's files: ``GET /view`` and ``POST /upload/image`` (server.py).

``/view?filename&subfolder&type`` serves what a graph saved (``type`` output/temp, see
:class:`pixelpipe.fakes.comfyui_run.Outputs`) or what was uploaded (``type=input``): 400 for a
filename starting with ``/`` or holding ``..``, 404 when unknown; ``Content-Type`` from the name
and ``Content-Disposition: filename="…"``. ``/upload/image`` takes multipart ``image`` (+
``type`` default ``input``, ``subfolder``, ``overwrite``) and answers ``{"name", "subfolder",
"type"}``; a name already taken by other bytes becomes ``name (1).ext`` unless ``overwrite`` is
``true``/``1`` (identical bytes keep the name). No ``image`` part → 400, empty body.
"""

from __future__ import annotations

import email.parser
import email.policy
import mimetypes

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pixelpipe.fakes.comfyui_run import Outputs


class Files:
    """Saved outputs and uploaded inputs (by subfolder and name); both survive a crash."""

    def __init__(self, outputs: Outputs) -> None:
        self.outputs = outputs
        self.inputs: dict[tuple[str, str], bytes] = {}

    async def view(self, request: Request) -> Response:
        q = request.query_params
        filename = q.get("filename", "")
        if not filename:
            return Response(status_code=404)
        if filename.startswith("/") or ".." in filename or ".." in q.get("subfolder", ""):
            return Response(status_code=400)
        key = (q.get("type", "output"), q.get("subfolder", ""), filename)
        data = self.outputs.files.get(key)
        if data is None and key[0] == "input":
            data = self.inputs.get((key[1], filename))
        if data is None:
            return Response(status_code=404)
        media = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return Response(
            data, media_type=media, headers={"Content-Disposition": f'filename="{filename}"'}
        )

    async def upload_image(self, request: Request) -> Response:
        fields = _multipart(request.headers.get("content-type", ""), await request.body())
        image = fields.get("image")
        if image is None or not image[0]:
            return Response(status_code=400)
        filename, data = image
        subfolder = fields.get("subfolder", ("", b""))[1].decode()
        kind = fields.get("type", ("", b"input"))[1].decode() or "input"
        overwrite = fields.get("overwrite", ("", b""))[1].decode() in ("true", "1")
        name, n = filename, 1
        stem, dot, ext = filename.rpartition(".")
        while not overwrite and (subfolder, name) in self.inputs:
            if self.inputs[(subfolder, name)] == data:
                break
            name = f"{stem} ({n}){dot}{ext}" if dot else f"{filename} ({n})"
            n += 1
        self.inputs[(subfolder, name)] = data
        return JSONResponse({"name": name, "subfolder": subfolder, "type": kind})


def _multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """Form fields of a multipart/form-data body: name -> (filename, bytes)."""
    raw = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    fields: dict[str, tuple[str, bytes]] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = (part.get_filename() or "", payload)
    return fields
