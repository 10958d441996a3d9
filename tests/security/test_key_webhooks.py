"""Per-API-key completion webhooks: stored on the key, checked like a request's, used by its jobs.

The delivery itself (signing, retries) is the per-request machinery, tested end to end in
``tests/integrations/test_key_webhooks.py``; here: the key store, the CLI and the wiring from the
verified key to the job's ``webhook_url``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from pixelpipe.cli import app as cli_app
from pixelpipe.db import Database, open_database
from pixelpipe.errors import InvalidRequest, NotFound
from pixelpipe.jobs.model import Job
from pixelpipe.migrations.runner import upgrade, upgrade_async
from pixelpipe.security.keys import create_key, get_key, list_keys, set_key_webhook, split_key
from tests.security.conftest import Running, bearer, running_app

HOOK = "https://hooks.example.com/pixelpipe"
OTHER = "https://other.example.org/hook?team=7"
BODY = {"prompt": "a lighthouse at dusk", "model": "preview", "size": "64x64"}


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    await upgrade_async(url)
    database = open_database(url)
    try:
        yield database
    finally:
        await database.dispose()


async def test_create_with_a_webhook_then_set_and_clear_it(db: Database) -> None:
    plain, _ = await create_key(db, name="plain")
    hooked, _ = await create_key(db, name="hooked", webhook_url=f"  {HOOK} ")
    assert plain.webhook_url is None
    assert hooked.webhook_url == HOOK  # surrounding blanks are dropped
    stored = await get_key(db, hooked.id)
    assert stored is not None and stored.webhook_url == HOOK

    changed = await set_key_webhook(db, plain.id, OTHER)
    assert changed.webhook_url == OTHER
    assert {k.id: k.webhook_url for k in await list_keys(db)} == {
        plain.id: OTHER,
        hooked.id: HOOK,
    }
    cleared = await set_key_webhook(db, hooked.id, None)
    assert cleared.webhook_url is None
    again = await get_key(db, hooked.id)
    assert again is not None and again.webhook_url is None


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://files.example.com/x", "absolute http(s) URL"),
        ("hooks.example.com/pixelpipe", "absolute http(s) URL"),
        ("", "absolute http(s) URL"),
        ("https://user:pw@hooks.example.com/x", "must not contain credentials"),
        ("https://hooks.example.com/" + "a" * 2100, "the limit is 2000"),
    ],
)
async def test_an_invalid_webhook_is_refused_saying_what_to_fix(
    db: Database, url: str, says: str
) -> None:
    with pytest.raises(InvalidRequest) as made:
        await create_key(db, name="bad", webhook_url=url)
    assert "invalid key webhook" in made.value.detail and says in made.value.detail
    assert made.value.extra["field"] == "webhook"
    assert await list_keys(db) == []  # nothing was stored

    key, _ = await create_key(db, name="ok", webhook_url=HOOK)
    with pytest.raises(InvalidRequest, match="invalid key webhook") as changed:
        await set_key_webhook(db, key.id, url)
    assert says in changed.value.detail
    kept = await get_key(db, key.id)
    assert kept is not None and kept.webhook_url == HOOK  # the old one stays


async def test_setting_the_webhook_of_an_unknown_key_is_not_found(db: Database) -> None:
    with pytest.raises(NotFound, match="keys list"):
        await set_key_webhook(db, "0" * 12, HOOK)


def test_migration_0006_adds_and_removes_the_column(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    upgrade(url, "0005")
    engine = create_engine(url.replace("+aiosqlite", ""))
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, secret_hash, scopes, rpm, created_at) "
                    "VALUES ('k1', 'old', :h, 'generate,read', 0, 1.0)"
                ),
                {"h": "0" * 64},
            )
        upgrade(url, "0006")
        cols = {c["name"] for c in inspect(engine).get_columns("api_keys")}
        assert "webhook_url" in cols
        with engine.connect() as conn:
            row = conn.execute(text("SELECT name, webhook_url FROM api_keys")).one()
        assert tuple(row) == ("old", None)  # existing keys keep working, with no webhook

        from alembic import command

        from pixelpipe.migrations.runner import alembic_config

        command.downgrade(alembic_config(url), "0005")
        engine.dispose()
        cols = {c["name"] for c in inspect(engine).get_columns("api_keys")}
        assert "webhook_url" not in cols
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM api_keys")).scalar_one() == "old"
    finally:
        engine.dispose()


def test_keys_cli_create_list_set_and_clear_webhooks(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"PIXELPIPE_DATA_DIR": str(tmp_path / "d")}

    def keys(*args: str) -> tuple[int, str]:
        res = runner.invoke(cli_app, ["keys", *args], env=env, terminal_width=250)
        return res.exit_code, res.output

    made = runner.invoke(cli_app, ["keys", "create", "--webhook", HOOK, "--json"], env=env)
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    key_id, secret = created["id"], created["key"].split("_", 2)[2]
    assert created["webhook"] == HOOK
    code, listed = keys("list")
    assert code == 0 and f"{key_id}  {HOOK}\n" in listed and secret not in listed  # whole URL

    code, said = keys("set-webhook", key_id, OTHER)
    assert code == 0 and OTHER in said
    code, listed = keys("list")
    assert f"{key_id}  {OTHER}\n" in listed and HOOK not in listed

    code, said = keys("set-webhook", key_id, "--clear")
    assert code == 0 and "cleared" in said
    code, listed = keys("list")
    assert OTHER not in listed and HOOK not in listed

    code, said = keys("set-webhook", key_id)  # neither a URL nor --clear
    assert code == 2 and "--clear" in said
    code, said = keys("set-webhook", key_id, HOOK, "--clear")  # both
    assert code == 2
    code, said = keys("set-webhook", key_id, "ftp://x/y")
    assert code == 1 and "absolute http(s) URL" in said
    code, said = keys("set-webhook", "0" * 12, HOOK)
    assert code == 1 and "no API key" in said
    code, said = keys("create", "--webhook", "example.com/hook")
    assert code == 1 and "invalid key webhook" in said
    code, plain = keys("create")
    assert code == 0 and "webhook" not in plain


async def test_the_keys_webhook_goes_to_its_jobs_and_a_requests_own_wins(tmp_path: Path) -> None:
    async with running_app(tmp_path / "data", embedded_worker=False) as srv:
        hooked = await srv.key()
        hooked_id = split_key(hooked)[0]  # type: ignore[index]
        await set_key_webhook(srv.svc.db, hooked_id, HOOK)
        plain = await srv.key()
        job = await _job(srv, plain, seed=1)
        assert job.webhook_url is None and job.api_key_id == split_key(plain)[0]  # type: ignore[index]
        job = await _job(srv, hooked, seed=2)
        assert job.webhook_url == HOOK and job.api_key_id == hooked_id
        job = await _job(srv, hooked, seed=3, webhook=OTHER)
        assert job.webhook_url == OTHER  # the request's own webhook wins
        # a change applies to the very next request: the key's row is read on every request
        await set_key_webhook(srv.svc.db, hooked_id, OTHER)
        assert (await _job(srv, hooked, seed=4)).webhook_url == OTHER
        await set_key_webhook(srv.svc.db, hooked_id, None)
        assert (await _job(srv, hooked, seed=5)).webhook_url is None


async def _job(srv: Running, key: str, *, seed: int, webhook: str | None = None) -> Job:
    body: dict[str, object] = {**BODY, "seed": seed}
    if webhook is not None:
        body["webhook"] = webhook
    async with srv.client() as c:
        r = await c.post("/v1/generations", json=body, headers=bearer(key))
    assert r.status_code == 202, r.text
    job = await srv.svc.store.get(r.json()["id"])
    assert job is not None
    return job
