"""POST /v1/uploads on the real app: multipart in, the stored input's id out."""

from __future__ import annotations

from pathlib import Path

from pixelpipe.inputs import digest_of_upload_id
from tests.inputs.images import jpeg_with_gps, picture, png_bomb
from tests.security.conftest import bearer, is_problem, running_app


async def test_upload_answers_a_stable_id_and_strips_metadata(tmp_path: Path) -> None:
    async with running_app(tmp_path, storage_url="memory://") as app, app.client() as c:
        files = {"file": ("photo.jpg", jpeg_with_gps(), "image/jpeg")}
        first = await c.post("/v1/uploads", files=files)
        assert first.status_code == 200, first.text
        body = first.json()
        assert set(body) == {"id", "digest", "content_type", "width", "height", "bytes"}
        assert body["content_type"] == "image/jpeg"
        assert (body["width"], body["height"]) == (40, 30)
        assert digest_of_upload_id(body["id"]) == body["digest"]
        again = await c.post("/v1/uploads", files=files)
        assert again.json() == body
        stored = await app.svc.storage.get(f"inputs/{body['digest'][7:]}.jpg")
        assert len(stored) == body["bytes"] and b"ACME Camera" not in stored


async def test_hostile_uploads_are_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    async with running_app(tmp_path, storage_url="memory://") as app, app.client() as c:
        for data, says in [
            (png_bomb(), "pixel"),
            (picture("GIF"), "PNG, JPEG or WebP"),
            (b"%PDF-1.7 not an image", "not a recognised image"),
        ]:
            r = await c.post("/v1/uploads", files={"file": ("x", data, "image/png")})
            assert r.status_code == 422 and is_problem(r), r.text
            assert r.json()["code"] == "input_invalid" and says in r.json()["detail"]
        missing = await c.post("/v1/uploads", files={"other": ("x", picture(), "image/png")})
        assert missing.status_code == 422 and "`file`" in missing.json()["detail"]
        not_form = await c.post(
            "/v1/uploads", content=picture(), headers={"content-type": "image/png"}
        )
        assert not_form.status_code == 422 and "multipart" in not_form.json()["detail"]
        assert not app.svc.storage._objects  # type: ignore[attr-defined]


async def test_an_upload_over_the_limit_is_413(tmp_path: Path) -> None:
    async with (
        running_app(tmp_path, storage_url="memory://", max_upload_bytes=100_000) as app,
        app.client() as c,
    ):
        big = b"\0" * 200_000
        r = await c.post("/v1/uploads", files={"file": ("big.png", big, "image/png")})
        assert r.status_code == 413 and is_problem(r)


async def test_uploads_need_a_generate_key_once_keys_exist(tmp_path: Path) -> None:
    async with running_app(tmp_path, storage_url="memory://") as app:
        reader = await app.key(scopes="read")
        writer = await app.key(scopes="generate")
        files = {"file": ("a.png", picture(), "image/png")}
        async with app.client() as c:
            assert (await c.post("/v1/uploads", files=files)).status_code == 401
        async with app.client(headers=bearer(reader)) as c:
            assert (await c.post("/v1/uploads", files=files)).status_code == 403
        async with app.client(headers=bearer(writer)) as c:
            assert (await c.post("/v1/uploads", files=files)).status_code == 200


async def test_the_models_say_which_take_inputs(tmp_path: Path) -> None:
    async with running_app(tmp_path, storage_url="memory://") as app, app.client() as c:
        models = {m["id"]: m for m in (await c.get("/v1/models")).json()["data"]}
    preview = models["preview"]
    assert preview["max_input_images"] == 16 and preview["accepts_mask"] is True
    assert preview["strength"] == {"min": 0.0, "max": 1.0, "default": 0.8}
