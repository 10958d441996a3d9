"""Text the server cannot store or hash gets a 422 that says what to fix, never a 500 (issue 12).

A JSON string may spell a lone UTF-16 surrogate (``"\\ud800"``): it is not a character, cannot be
encoded as UTF-8, and used to crash the content key (500). And a body that is not JSON used to be
answered ``"1: JSON decode error"`` with ``field: "1"``: now the answer says where it broke.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pixelpipe.cli import app as cli_app
from pixelpipe.errors import InvalidRequest
from pixelpipe.intake import new_request
from tests.security.conftest import Running, is_problem, running_app

LONE = "\\ud800"  # as it is written inside a JSON string: six characters, backslash first
JSON = {"content-type": "application/json"}


@pytest.fixture
async def srv(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_app(tmp_path / "data") as running:
        yield running


@pytest.fixture
async def client(srv: Running) -> AsyncIterator[httpx.AsyncClient]:
    # a 500 must come back as an answer (the app's own handler), not as an exception here
    transport = httpx.ASGITransport(
        app=srv.app, client=("127.0.0.1", 50123), raise_app_exceptions=False
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
        yield c


def _body(**fields: str) -> bytes:
    parts = {"prompt": '"a red fox"', "size": '"64x64"'}
    parts.update({k: f'"{v}"' for k, v in fields.items()})
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in parts.items()) + "}").encode()


TEXT_FIELDS = [
    ("prompt", f"a {LONE} fox"),
    ("negative_prompt", f"blurry {LONE}"),
    ("webhook", f"https://hooks.example.com/{LONE}"),
    ("group", f"g{LONE}"),
    ("model", LONE),
    ("size", f"64x{LONE}"),
    ("aspect_ratio", LONE),
    ("quality", LONE),
    ("provider", LONE),
]


@pytest.mark.parametrize("path", ["/v1/generations", "/v1/estimates"])
@pytest.mark.parametrize(("field", "value"), TEXT_FIELDS)
async def test_a_lone_surrogate_in_any_text_field_is_a_422_naming_the_field(
    client: httpx.AsyncClient, path: str, field: str, value: str
) -> None:
    r = await client.post(path, content=_body(**{field: value}), headers=JSON)
    assert r.status_code == 422, r.text
    assert is_problem(r)
    problem = r.json()
    assert problem["code"] == "invalid_request"
    assert problem["errors"][0]["field"] == field
    assert "lone UTF-16 surrogate" in problem["detail"] and "\\ud800" in problem["detail"]
    assert problem["detail"].startswith(f"{field}: ")


async def test_a_surrogate_pair_is_a_character_and_is_accepted(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/generations", content=_body(prompt="a \\ud83e\\udd8a"), headers=JSON)
    assert r.status_code == 202, r.text
    assert r.json()["request"]["prompt"] == "a \U0001f98a"


async def test_a_low_surrogate_first_is_refused_too(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/generations", content=_body(prompt="\\udd8a\\ud83e fox"), headers=JSON
    )
    assert r.status_code == 422 and "\\udd8a" in r.json()["detail"]


async def test_openai_endpoint_says_what_is_wrong_with_a_lone_surrogate(
    client: httpx.AsyncClient,
) -> None:
    body = f'{{"prompt": "a {LONE} fox", "model": "preview", "size": "256x256"}}'.encode()
    r = await client.post("/v1/images/generations", content=body, headers=JSON)
    assert 400 <= r.status_code < 500, r.text
    error = r.json()["error"]
    assert "lone UTF-16 surrogate" in error["message"] and error["param"] == "prompt"


async def test_an_idempotency_key_of_any_bytes_is_kept_not_crashed(
    client: httpx.AsyncClient,
) -> None:
    # header bytes are latin-1 (what would be a UTF-8-encoded surrogate, then 0xff): no 500,
    # and the same bytes find the same job again
    headers = [(b"content-type", b"application/json"), (b"idempotency-key", b"k\xed\xa0\x80\xff")]
    first = await client.post("/v1/generations", content=_body(), headers=headers)
    again = await client.post("/v1/generations", content=_body(), headers=headers)
    assert first.status_code in (200, 202), first.text
    assert again.status_code in (200, 202) and again.json()["id"] == first.json()["id"]


async def test_a_lone_surrogate_in_a_field_name_is_a_422_too(client: httpx.AsyncClient) -> None:
    raw = f'{{"prompt": "a fox", "{LONE}x": 1}}'.encode()
    r = await client.post("/v1/generations", content=raw, headers=JSON)
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == "body"
    assert "lone UTF-16 surrogate" in r.json()["detail"]


def test_the_python_api_refuses_a_lone_surrogate_naming_the_field() -> None:
    with pytest.raises(InvalidRequest, match="lone UTF-16 surrogate") as made:
        new_request("a \ud800 fox")
    assert made.value.extra["field"] == "prompt"
    with pytest.raises(InvalidRequest, match="negative_prompt: contains a lone"):
        new_request("a fox", negative_prompt="\udfff")


def test_the_cli_refuses_a_prompt_that_is_not_utf8(tmp_path: Path) -> None:
    # bytes that are not UTF-8 reach Python's argv as lone surrogates (surrogateescape)
    env = {"PIXELPIPE_DATA_DIR": str(tmp_path / "d"), "PIXELPIPE_LOG_LEVEL": "WARNING"}
    made = CliRunner().invoke(cli_app, ["generate", "a \udced\udca0 fox"], env=env)
    assert made.exit_code == 1, made.output
    assert "lone UTF-16 surrogate" in " ".join(made.output.split())
    assert made.exception is None or isinstance(made.exception, SystemExit)


MALFORMED = [
    (b'{"prompt": "a fox" "seed": 1}', "Expecting ',' delimiter at line 1, column 20"),
    (b'{\n  "prompt": "a fox",\n  "seed": 1,\n}', "Expecting property name enclosed in double"),
    (b'{"prompt": ', "Expecting value at line 1, column 12"),
    (b"{'prompt': 'a fox'}", "Expecting property name enclosed in double quotes at line 1, col"),
]


@pytest.mark.parametrize("path", ["/v1/generations", "/v1/estimates"])  # fast lane, route only
@pytest.mark.parametrize(("raw", "says"), MALFORMED)
async def test_malformed_json_says_where_it_broke(
    client: httpx.AsyncClient, path: str, raw: bytes, says: str
) -> None:
    r = await client.post(path, content=raw, headers=JSON)
    assert r.status_code == 422 and is_problem(r), r.text
    problem = r.json()
    assert problem["detail"].startswith("request body is not valid JSON: "), problem
    assert says in problem["detail"]
    assert problem["errors"] == [{"field": "body", "message": problem["detail"]}]


async def test_malformed_json_on_the_second_line_names_line_and_column(
    client: httpx.AsyncClient,
) -> None:
    raw = b'{\n  "prompt": "a fox",\n  "seed": 1,\n}'
    r = await client.post("/v1/generations", content=raw, headers=JSON)
    assert r.json()["detail"] == (
        "request body is not valid JSON: Expecting property name enclosed in double quotes "
        "at line 4, column 1"
    )


async def test_openai_endpoint_names_line_and_column_of_malformed_json(
    client: httpx.AsyncClient,
) -> None:
    r = await client.post(
        "/v1/images/generations", content=b'{"prompt": "a"  "n": 1}', headers=JSON
    )
    message = r.json()["error"]["message"]
    assert message.startswith("request body is not valid JSON: "), message
    assert "line 1, column 17" in message
