"""The fake ComfyUI's files: ``GET /view`` and ``POST /upload/image`` (server.py).

``/view?filename&subfolder&type`` serves what a graph saved (``type`` output/temp, see
:class:`pixelpipe.fakes.comfyui_run.Outputs`) or what was uploaded (``type=input``): 400 for a
filename starting with ``/`` or holding ``..``, 404 when unknown; ``Content-Type`` from the name
and ``Content-Disposition: filename="…"``. ``/upload/image`` takes multipart ``image`` (+
``type`` default ``input``, ``subfolder``, ``overwrite``) and answers ``{"name", "subfolder",
"type"}``; a name already taken by other bytes becomes ``name (1).ext`` unless ``overwrite`` is
``true``/``1`` (identical bytes keep the name). No ``image`` part → 400, empty body; a
subfolder leaving the input folder → 400; an unknown ``type`` → 500 (server.py has no folder for
it). ``/upload/mask`` is the same upload plus ``original_ref``: see :meth:`Files.upload_mask`.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import mimetypes
from typing import Any, Literal

from PIL import Image
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pixelpipe.fakes.comfyui_run import Outputs


class Files:
    """Saved outputs and uploaded inputs (by subfolder and name); both survive a crash."""

    def __init__(self, outputs: Outputs) -> None:
        self.outputs = outputs
        self.inputs: dict[tuple[str, str], bytes] = {}
        self.uploads: list[tuple[str, str]] = []  # (subfolder, name) of each upload, in order

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
        return self._upload(fields, None)

    async def upload_mask(self, request: Request) -> Response:
        """server.py ``upload_mask``: the uploaded image's alpha is copied onto the file
        ``original_ref`` names (``{"filename", "subfolder", "type"}``, type default ``output``),
        saved as PNG under the new name. As in ComfyUI, an ``original_ref`` naming no file (or a
        bad path) saves nothing and still answers 200 with the name; none at all is a 500."""
        fields = _multipart(request.headers.get("content-type", ""), await request.body())
        try:
            ref = json.loads(fields["original_ref"][1])
            original = self._original(ref)
        except (KeyError, TypeError, ValueError):
            return Response("500 Internal Server Error", status_code=500)
        return self._upload(fields, original)

    def _upload(
        self, fields: dict[str, tuple[str, bytes]], original: bytes | Literal[False] | None
    ) -> Response:
        """server.py ``image_upload``; ``original``: None for /upload/image, the original's
        bytes for /upload/mask (False: it names no file, nothing is saved)."""
        image = fields.get("image")
        if image is None or not image[0]:
            return Response(status_code=400)
        filename, data = image
        subfolder = fields.get("subfolder", ("", b""))[1].decode()
        kind = fields.get("type", ("", b"input"))[1].decode() or "input"
        if kind not in ("input", "temp", "output"):
            return Response("500 Internal Server Error", status_code=500)
        if any(".." in p or p.startswith("/") for p in (subfolder, filename)):
            return Response(status_code=400)
        overwrite = fields.get("overwrite", ("", b""))[1].decode() in ("true", "1")
        name, n = filename, 1
        stem, dot, ext = filename.rpartition(".")
        while not overwrite and (subfolder, name) in self.inputs:
            if self.inputs[(subfolder, name)] == data:
                break
            name = f"{stem} ({n}){dot}{ext}" if dot else f"{filename} ({n})"
            n += 1
        if original is None:
            self.inputs[(subfolder, name)] = data
        elif original is not False:
            self.inputs[(subfolder, name)] = _alpha_copied(original, data)
        self.uploads.append((subfolder, name))
        return JSONResponse({"name": name, "subfolder": subfolder, "type": kind})

    def _original(self, ref: dict[str, Any]) -> bytes | Literal[False]:
        filename = str(ref["filename"])
        if not filename or filename.startswith("/") or ".." in filename:
            return False
        kind = str(ref.get("type", "output"))
        subfolder = str(ref.get("subfolder", ""))
        if kind == "input":
            return self.inputs.get((subfolder, filename), False)
        return self.outputs.files.get((kind, subfolder, filename), False)

    def has_input(self, value: str) -> bool:
        """Whether a LoadImage ``image`` value names an uploaded file (``sub/name.png``, or
        annotated ``name.png [input]``): ``folder_paths.exists_annotated_filepath``."""
        if value.endswith(" [input]"):
            value = value[: -len(" [input]")]
        subfolder, _, name = value.rpartition("/")
        return (subfolder, name) in self.inputs

    def input_file(self, value: str) -> bytes | None:
        value = value.removesuffix(" [input]")
        subfolder, _, name = value.rpartition("/")
        return self.inputs.get((subfolder, name))


def _alpha_copied(original: bytes, mask: bytes) -> bytes:
    """The original, RGBA, with the mask's alpha; PNG (compress_level 4), as server.py saves."""
    with Image.open(io.BytesIO(original)) as im, Image.open(io.BytesIO(mask)) as m:
        rgba = im.convert("RGBA")
        rgba.putalpha(m.convert("RGBA").getchannel("A"))
    out = io.BytesIO()
    rgba.save(out, format="PNG", compress_level=4)
    return out.getvalue()


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
