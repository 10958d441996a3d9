"""A completion webhook the delivery loop would refuse is refused when it is given (issue 12).

Before, ``"webhook": "http://169.254.169.254/latest/meta-data"`` (or loopback, a private address…)
was accepted with 202 and failed only when the job ended. Now every way of naming a webhook — the
native API (fast lane and routes), the OpenAI endpoint's extension, the Python ``Pipeline``,
``pixelpipe keys create --webhook`` / ``keys set-webhook`` — applies the rule the delivery loop
applies (:mod:`pixelpipe.security.webhook_destinations`), and the opt-ins agree at both ends.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from pixelpipe.cli import app as cli_app
from pixelpipe.db import Database, open_database
from pixelpipe.errors import InvalidRequest, OutputBlocked, OutputError
from pixelpipe.fetch import check_url
from pixelpipe.fetch.addresses import is_loopback_name
from pixelpipe.migrations.runner import upgrade_async
from pixelpipe.pipeline import Pipeline
from pixelpipe.security.keys import create_key, list_keys, set_key_webhook
from pixelpipe.security.webhook_destinations import check_webhook_url, webhook_policy
from pixelpipe.settings import Settings, load_settings
from tests.security.conftest import Running, is_problem, running_app

BODY = {"prompt": "a lighthouse at dusk", "model": "preview", "size": "64x64"}
REFUSED = [
    ("http://127.0.0.1:9/hook", "scheme 'http'"),
    ("https://127.0.0.1/hook", "loopback"),
    ("https://127.8.9.1:8443/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://api.localhost./hook", "loopback"),
    ("https://2130706433/hook", "means 127.0.0.1"),
    ("https://0x7f.1/hook", "means 127.0.0.1"),
    ("https://10.0.0.5/hook", "private"),
    ("https://192.168.1.20/hook", "private"),
    ("https://169.254.169.254/latest/meta-data/", "link-local"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://[64:ff9b::a9fe:a9fe]/hook", "link-local"),  # NAT64 of 169.254.169.254
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://100.64.0.1/hook", "not globally routable"),
    ("ftp://hooks.example.com/hook", "absolute http(s) URL"),
    ("https://user:pw@hooks.example.com/hook", "credentials"),
    ("hooks.example.com/hook", "absolute http(s) URL"),
]
PUBLIC = "https://hooks.example.com/pixelpipe?team=7"


@pytest.fixture
async def srv(tmp_path: Path) -> AsyncIterator[Running]:
    async with running_app(tmp_path / "data") as running:
        yield running


@pytest.mark.parametrize("path", ["/v1/generations", "/v1/estimates"])  # fast lane, route
@pytest.mark.parametrize(("url", "says"), REFUSED)
async def test_a_webhook_the_delivery_would_refuse_is_a_422_at_submit(
    srv: Running, path: str, url: str, says: str
) -> None:
    async with srv.client() as c:
        r = await c.post(path, json={**BODY, "webhook": url})
        assert r.status_code == 422 and is_problem(r), r.text
        problem = r.json()
        assert problem["code"] == "invalid_request" and problem["field"] == "webhook"
        assert says in problem["detail"], problem["detail"]
        assert (await c.get("/v1/generations")).json()["data"] == []  # nothing was started


async def test_a_public_host_name_is_accepted_without_a_dns_lookup(srv: Running) -> None:
    async with srv.client() as c:
        r = await c.post("/v1/generations", json={**BODY, "webhook": PUBLIC})
    assert r.status_code == 202, r.text  # hooks.example.com has no address: not asked at submit


async def test_openai_endpoint_refuses_the_webhook_extension_the_same_way(srv: Running) -> None:
    body = {"prompt": "a fox", "model": "preview", "size": "256x256"}
    async with srv.client() as c:
        r = await c.post(
            "/v1/images/generations", json={**body, "webhook": "https://169.254.169.254/x"}
        )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "webhook" and "link-local" in error["message"]


@pytest.mark.parametrize(("url", "says"), REFUSED)
async def test_every_url_refused_at_submit_is_refused_by_the_delivery_guard(
    url: str, says: str
) -> None:
    policy = webhook_policy(Settings())
    assert policy is not None
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        return  # not a URL at all: nothing to deliver to
    if target.scheme not in ("http", "https") or not target.host:
        return  # the delivery loop never sees what intake refuses for its form
    # refused, or (a *.localhost name this resolver does not know) not resolvable: never sent
    with pytest.raises(OutputError if is_loopback_name(target.host) else OutputBlocked):
        await check_url(target, policy)


@pytest.mark.parametrize(
    ("overrides", "loopback_ok", "private_ok"),
    [
        ({}, False, False),
        ({"test_mode": True}, True, False),  # fakes on 127.0.0.1 over http
        ({"webhook_allow_private": True}, True, True),  # the operators' and tests' opt-in
    ],
)
async def test_the_opt_ins_mean_the_same_at_submit_and_at_delivery(
    overrides: dict[str, bool], loopback_ok: bool, private_ok: bool
) -> None:
    settings = Settings(**overrides)  # type: ignore[arg-type]
    for url, ok in (("http://127.0.0.1:9/hook", loopback_ok), ("https://10.0.0.5/h", private_ok)):
        try:
            check_webhook_url(url, settings)
            at_submit = True
        except InvalidRequest:
            at_submit = False
        policy = webhook_policy(settings)
        try:
            if policy is not None:
                await check_url(httpx.URL(url), policy)
            at_delivery = True
        except OutputBlocked:
            at_delivery = False
        assert (at_submit, at_delivery) == (ok, ok), (url, overrides)


async def test_the_python_pipeline_refuses_it_too(tmp_path: Path) -> None:
    async with Pipeline(load_settings(data_dir=tmp_path / "p"), worker=False) as p:
        with pytest.raises(InvalidRequest, match="link-local") as made:
            await p.submit("a fox", size="64x64", webhook="https://169.254.169.254/")
        assert made.value.extra["field"] == "webhook"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    await upgrade_async(url)
    database = open_database(url)
    try:
        yield database
    finally:
        await database.dispose()


async def test_key_webhooks_follow_the_same_rule(db: Database) -> None:
    with pytest.raises(InvalidRequest, match="loopback") as made:
        await create_key(db, name="x", webhook_url="https://localhost/hook")
    assert made.value.extra["field"] == "webhook"
    assert await list_keys(db) == []
    key, _ = await create_key(db, name="ok", webhook_url=PUBLIC)
    with pytest.raises(InvalidRequest, match="private"):
        await set_key_webhook(db, key.id, "https://10.1.2.3/hook")
    opted_in = Settings(webhook_allow_private=True)
    changed = await set_key_webhook(db, key.id, "http://10.1.2.3/hook", opted_in)
    assert changed.webhook_url == "http://10.1.2.3/hook"


def test_keys_cli_refuses_a_metadata_webhook_and_honours_the_opt_in(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"PIXELPIPE_DATA_DIR": str(tmp_path / "d"), "PIXELPIPE_LOG_LEVEL": "WARNING"}
    made = runner.invoke(
        cli_app, ["keys", "create", "--webhook", "https://169.254.169.254/x", "--json"], env=env
    )
    assert made.exit_code == 1
    said = " ".join(made.output.split())
    assert "link-local" in said and "PIXELPIPE_WEBHOOK_ALLOW_PRIVATE" in said
    made = runner.invoke(cli_app, ["keys", "create", "--json"], env=env)
    key_id = json.loads(made.stdout)["id"]
    bad = runner.invoke(cli_app, ["keys", "set-webhook", key_id, "https://[::1]/h"], env=env)
    assert bad.exit_code == 1 and "loopback" in bad.output
    private = {**env, "PIXELPIPE_WEBHOOK_ALLOW_PRIVATE": "true"}
    ok = runner.invoke(
        cli_app, ["keys", "set-webhook", key_id, "http://127.0.0.1:9/h"], env=private
    )
    assert ok.exit_code == 0, ok.output
