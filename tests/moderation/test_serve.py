"""Moderation through ``pixelpipe serve`` (subprocess) on the fake providers and the fake
moderation API (``pixelpipe fake-providers`` at ``/openai_moderation/v1``).

``closed``: block, fail-closed, quarantine kept 5 s; ``open``: two API keys whose own policies
are blur and flag, fail-open; ``dead``: the moderation API's address has nothing listening.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from PIL import Image, ImageFilter, ImageStat

from tests.integrations.conftest import Fakes, start_server
from tests.support.serve import Server, run_cli

pytestmark = pytest.mark.slow
QUARANTINE_S = 5.0
MODEL = "flux-schnell"  # $0.003 an image on the fake Replicate and fal


def moderation_env(fakes: Fakes, **extra: str) -> dict[str, str]:
    return {
        **fakes.env,
        "PIXELPIPE_MODERATION_URL": f"{fakes.url}/openai_moderation/v1",
        "PIXELPIPE_MODERATION_API_KEY": "sk-moderation",
        "PIXELPIPE_MODERATION_TIMEOUT_S": "1",
        "PIXELPIPE_MAX_ATTEMPTS": "2",
        "PIXELPIPE_SWEEP_INTERVAL_S": "0.5",
        **extra,
    }


def new_key(data: Path, name: str) -> dict[str, Any]:
    made = run_cli("keys", "create", "--name", name, "--json", PIXELPIPE_DATA_DIR=str(data))
    assert made.returncode == 0, made.stderr
    return dict(json.loads(made.stdout))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory,
    fakes: Fakes,
) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("moderation")
    keys = {name: new_key(root / "open" / "data", name) for name in ("blur", "flag")}
    policies = {keys["blur"]["id"]: {"action": "blur"}, keys["flag"]["id"]: {"action": "flag"}}
    envs = {
        "closed": moderation_env(
            fakes, PIXELPIPE_MODERATION_QUARANTINE_DAYS=str(QUARANTINE_S / 86_400)
        ),
        "open": moderation_env(
            fakes,
            PIXELPIPE_MODERATION_ON_ERROR="open",
            PIXELPIPE_MODERATION_KEYS=json.dumps(policies),
        ),
        "dead": moderation_env(
            fakes, PIXELPIPE_MODERATION_URL=f"http://127.0.0.1:{free_port()}/v1"
        ),
    }
    with ThreadPoolExecutor(3) as pool:
        futures = {n: pool.submit(start_server, root / n / "data", e) for n, e in envs.items()}
        started = {n: f.result() for n, f in futures.items()}
    try:
        yield {**started, "keys": {n: k["key"] for n, k in keys.items()}}
    finally:
        for srv in started.values():
            srv.stop()


@pytest.fixture
def moderation(fakes: Fakes) -> Iterator[str]:
    """The fake moderation API's control URL; reset after each test."""
    url = f"{fakes.url}/openai_moderation/_control"
    httpx.post(url, json={"reset": True}, timeout=10).raise_for_status()
    try:
        yield url
    finally:
        httpx.post(url, json={"reset": True}, timeout=10).raise_for_status()


def steer(control: str, **changes: Any) -> None:
    httpx.post(control, json=changes, timeout=10).raise_for_status()


def rows(srv: Server, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(srv.data_dir / "pixelpipe.db") as db:
        return list(db.execute(sql, args).fetchall())


def ledger_count(srv: Server) -> int:
    return int(rows(srv, "SELECT count(*) FROM ledger_entries")[0][0])


def submit(srv: Server, prompt: str, key: str | None = None, **body: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    payload = {"prompt": prompt, "model": MODEL, **body}
    return httpx.post(f"{srv.url}/v1/generations", json=payload, headers=headers, timeout=30)


def finish(srv: Server, job_id: str, key: str | None = None, timeout_s: float = 60) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    deadline = time.monotonic() + timeout_s
    while True:
        job = httpx.get(f"{srv.url}/v1/generations/{job_id}", headers=headers, timeout=10).json()
        if job["status"] in ("succeeded", "failed", "canceled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def unique(text: str) -> str:
    return f"{text} {secrets.token_hex(4)}"


def test_a_flagged_prompt_is_refused_and_nothing_is_spent(
    servers: dict[str, Any],
    fakes: Fakes,
    moderation: str,
) -> None:
    srv = servers["closed"]
    spent, creates = ledger_count(srv), fakes.creates()
    answer = submit(srv, unique("a duel at dawn [mod:violence]"))
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["code"] == "prompt_blocked" and problem["reason"] == "moderation"
    assert problem["categories"] == ["violence"] and problem["field"] == "prompt"
    assert "flagged by moderation (violence)" in problem["detail"]
    assert (ledger_count(srv), fakes.creates()) == (spent, creates)
    refused = rows(srv, "SELECT source, categories FROM moderation_events WHERE kind='prompt'")
    assert ("moderation", '["violence"]') in refused
    # the same refusal on the OpenAI endpoint is OpenAI's content-policy error
    sdk = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        sdk.images.generate(prompt=unique("a duel [mod:violence]"), model=MODEL)
    assert err.value.code == "content_policy_violation"
    assert ledger_count(srv) == spent


def test_a_blocked_image_is_paid_not_delivered_and_the_sdk_gets_moderation_blocked(
    servers: dict[str, Any],
    fakes: Fakes,
    moderation: str,
) -> None:
    srv = servers["closed"]
    prompt = unique("a portrait in a studio")
    steer(moderation, image_scores={"sexual": 0.97})
    sdk = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as err:
        sdk.images.generate(prompt=prompt, model=MODEL, size="1024x1024")
    assert err.value.code == "moderation_blocked"
    assert err.value.type == "image_generation_user_error"
    job_id = re.search(r"generation (gen_\w+)", err.value.message).group(1)  # type: ignore[union-attr]
    job = finish(srv, job_id)
    assert job["status"] == "failed" and job["error"]["code"] == "output_blocked"
    assert job["image"] is None
    assert job["cost"]["micros"] and job["cost"]["micros"] > 0  # paid, shown on the job
    [(state, outcome, amount)] = rows(
        srv,
        "SELECT state, outcome, amount_micros FROM ledger_entries WHERE job_id=? AND kind='attempt'",
        job_id,
    )
    assert (state, outcome) == ("billed", "blocked") and amount == job["cost"]["micros"]
    # quarantined, never served, then swept after its retention
    [(key,)] = rows(srv, "SELECT quarantine_key FROM moderation_events WHERE job_id=?", job_id)
    quarantined = srv.data_dir / "images" / key
    assert key.startswith(f"quarantine/{job_id}.") and quarantined.is_file()
    assert httpx.get(f"{srv.url}/i/{key}", timeout=10).status_code == 404
    deadline = time.monotonic() + QUARANTINE_S + 20
    while quarantined.exists():
        assert time.monotonic() < deadline, "the sweeper never removed the quarantined image"
        time.sleep(0.2)
    assert rows(srv, "SELECT quarantine_key FROM moderation_events WHERE job_id=?", job_id) == [
        (None,)
    ]
    # never reused by the content-hash cache: the same request generates (and pays) again
    steer(moderation, reset=True)
    creates = fakes.creates()
    again = sdk.images.with_raw_response.generate(prompt=prompt, model=MODEL, size="1024x1024")
    assert again.headers["x-pixelpipe-cached"] == "false" and fakes.creates() == creates + 1
    # the usage report counts the blocked image and its spend
    report = httpx.get(f"{srv.url}/v1/usage", params={"group_by": "day"}, timeout=10).json()
    blocked = [r for r in report["moderation"] if r["kind"] == "image"]
    assert blocked and blocked[0]["action"] == "blocked" and blocked[0]["spent_micros"] >= amount


def test_a_blocked_image_in_a_stream_is_an_error_event(
    servers: dict[str, Any], moderation: str
) -> None:
    srv = servers["closed"]
    steer(moderation, image_scores={"violence": 0.99})
    sdk = openai.OpenAI(base_url=f"{srv.url}/v1", api_key="sk-unused", max_retries=0)
    with pytest.raises(openai.APIError) as err:
        list(sdk.images.generate(prompt=unique("a fox"), model=MODEL, stream=True))
    assert not isinstance(err.value, openai.APIStatusError)
    assert err.value.code == "moderation_blocked"


def test_moderation_down_fails_closed_without_a_stuck_job(
    servers: dict[str, Any],
    fakes: Fakes,
    moderation: str,
) -> None:
    srv = servers["closed"]
    # the prompt: refused while the API answers 500, nothing spent
    steer(moderation, error_next=1, error_status=500)
    spent = ledger_count(srv)
    answer = submit(srv, unique("a harbour"))
    assert answer.status_code == 503 and answer.json()["code"] == "moderation_unavailable"
    assert ledger_count(srv) == spent
    # the image: the API hangs past the 1 s timeout on every call → tried again, then failed
    job = submit(srv, unique("a meadow")).json()
    steer(moderation, hang_next=100, hang_s=3.0)
    done = finish(srv, job["id"], timeout_s=90)
    assert done["status"] == "failed" and done["error"]["code"] == "moderation_unavailable"
    assert done["image"] is None


def test_moderation_stopped_fails_closed_for_prompts(servers: dict[str, Any]) -> None:
    answer = submit(servers["dead"], unique("a harbour"))
    assert answer.status_code == 503 and answer.json()["code"] == "moderation_unavailable"
    assert "could not be reached" in answer.json()["detail"]
    assert ledger_count(servers["dead"]) == 0


def sharp_edges(data: bytes) -> int:
    """Pixels on a hard edge (a jump of more than 24 grey levels to a neighbour)."""
    picture = Image.open(io.BytesIO(data)).convert("L")
    edges = picture.filter(ImageFilter.FIND_EDGES).point(lambda v: 255 if v > 24 else 0)
    edges = edges.crop((2, 2, edges.width - 2, edges.height - 2))  # the filter's own border
    return int(ImageStat.Stat(edges).sum[0] // 255)


def test_per_key_policies_blur_and_flag(servers: dict[str, Any], moderation: str) -> None:
    srv, keys = servers["open"], servers["keys"]
    steer(moderation, image_scores={"sexual": 0.9})
    request = {"seed": 7, "format": "png"}
    prompt = unique("a garden")
    images = {}
    for name in ("flag", "blur"):
        job = submit(srv, prompt, keys[name], **request).json()
        done = finish(srv, job["id"], keys[name])
        assert done["status"] == "succeeded", done
        expected = {"flag": "flagged", "blur": "blurred"}[name]
        assert done["moderation"] == {"action": expected, "categories": ["sexual"]}
        assert done["cached"] is False  # a marked image is never served from the cache
        images[name] = httpx.get(done["image"]["url"], timeout=10).content
    assert sharp_edges(images["flag"]) > 1000 and sharp_edges(images["blur"]) < 50
    assert Image.open(io.BytesIO(images["blur"])).size == (1024, 1024)


def test_moderation_down_fails_open_and_marks_the_image(
    servers: dict[str, Any], moderation: str
) -> None:
    srv, key = servers["open"], servers["keys"]["flag"]
    steer(moderation, error_next=100, error_status=500)
    job = submit(srv, unique("a lake [mod:violence]"), key)  # not checked: the API is down
    assert job.status_code == 202, job.text
    done = finish(srv, job.json()["id"], key)
    assert done["status"] == "succeeded"
    assert done["moderation"] == {"action": "unchecked", "categories": []}
    # hanging past the 1 s timeout: the same, a few seconds later, never a stuck request or job
    steer(moderation, reset=True)
    steer(moderation, hang_next=100, hang_s=5.0)
    started = time.monotonic()
    job = submit(srv, unique("a pier [mod:violence]"), key)
    assert job.status_code == 202, job.text
    done = finish(srv, job.json()["id"], key)
    assert done["status"] == "succeeded" and done["moderation"]["action"] == "unchecked"
    assert time.monotonic() - started < 20
