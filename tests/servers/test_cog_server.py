"""The real cog server (coglet 0.23.1) behaves as tests/servers/cog.py's docstring says: these
are the facts the cog provider and its fake are built on, checked against the server itself."""

from __future__ import annotations

import base64
import inspect
import io
import json
import os
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.cog_predictor.predict import Runner, image_colour
from tests.servers import ServerStartError
from tests.servers.cog import COG_VERSION, PREDICTOR_DIR, CogServer, CogServers
from tests.servers.http_recorder import Answer, HttpRecorder, RecordedRequest

pytestmark = pytest.mark.servers

ASYNC = {"Prefer": "respond-async"}
PNG_DATA_URI = "data:image/png;base64,"


def new_id() -> str:
    """A prediction id as cog's docs suggest: base32 of a UUID4, lower case, no padding."""
    return base64.b32encode(uuid.uuid4().bytes).decode().lower().rstrip("=")


def decode_png(uri: str) -> Image.Image:
    assert uri.startswith(PNG_DATA_URI), uri[:60]
    return Image.open(io.BytesIO(base64.b64decode(uri.removeprefix(PNG_DATA_URI))))


def wait_for_status(client: httpx.Client, status: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (now := client.get("/health-check").json()["status"]) != status:
        assert time.monotonic() < deadline, f"health-check stayed {now}, expected {status}"
        time.sleep(0.05)


@pytest.fixture
def cog(cog_server: CogServer) -> Iterator[httpx.Client]:
    """A client of the shared 1-slot server; the slot is free before and after each test."""
    with httpx.Client(base_url=cog_server.url, timeout=30.0) as client:
        wait_for_status(client, "READY")
        yield client
        wait_for_status(client, "READY", timeout=30.0)  # a failed test's prediction ends first


def post_when_free(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    """POST a prediction, asked again while the server answers 409: coglet answers a sync POST
    before it frees the slot, so the next POST at once may find it still busy (a fact the cog
    provider handles the same way, see providers/cog/client.py BUSY_REASK_S)."""
    deadline = time.monotonic() + 5.0
    while (response := client.post("/predictions", json=body)).status_code == 409:
        assert time.monotonic() < deadline, "the slot stayed busy for 5 s"
        time.sleep(0.05)
    return response


def put_async(client: httpx.Client, pid: str, body: dict[str, Any]) -> httpx.Response:
    return client.put(f"/predictions/{pid}", json=body, headers=ASYNC)


def completed(hooks: list[RecordedRequest]) -> bool:
    return any(h.json()["status"] in {"succeeded", "failed", "canceled"} for h in hooks)


def test_starts_ready_with_versions_and_discovery(cog: httpx.Client) -> None:
    health = cog.get("/health-check").json()
    assert health["status"] == "READY"
    assert health["setup"]["status"] == "succeeded"
    assert {"started_at", "completed_at", "logs"} <= set(health["setup"])
    assert health["version"]["coglet"] == COG_VERSION
    assert health["version"]["python_sdk"] == COG_VERSION
    root = cog.get("/").json()
    assert root["predictions_idempotent_url"] == "/predictions/{prediction_id}"
    assert root["predictions_cancel_url"] == "/predictions/{prediction_id}/cancel"
    assert cog.get("/openapi.json").json()["components"]["schemas"]["Input"]["required"] == [
        "prompt"
    ]


def test_sync_post_returns_data_uri_pngs_and_predict_time(cog: httpx.Client) -> None:
    inputs = {"prompt": "a red fox", "seed": 7, "width": 16, "height": 8, "num_outputs": 2}
    response = post_when_free(cog, {"input": inputs | {"sleep_s": 0.2}})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "logs", "metrics", "output", "status"}
    assert body["status"] == "succeeded"
    assert body["id"].startswith("pred_")
    assert body["logs"].endswith("\n100%|####| 4/4\ndrew 2 image(s) for seed 7\n")  # the bar
    assert 0.2 <= body["metrics"]["predict_time"] < 5
    images = [decode_png(uri) for uri in body["output"]]
    assert [im.size for im in images] == [(16, 8), (16, 8)]
    assert [im.getpixel((0, 0)) for im in images] == [
        image_colour("a red fox", 7, i) for i in range(2)
    ]
    again = post_when_free(cog, {"input": inputs}).json()
    assert again["output"] == body["output"]  # deterministic from prompt + seed
    assert again["id"] != body["id"]


def test_failed_prediction_is_200_with_error(cog: httpx.Client) -> None:
    response = post_when_free(cog, {"input": {"prompt": "boom", "fail": True}})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert "output" not in body
    assert "PredictorFailedError: asked to fail (prompt 'boom')" in body["error"]
    assert body["metrics"]["predict_time"] >= 0


def test_invalid_input_is_422_and_unknown_inputs_are_dropped(cog: httpx.Client) -> None:
    missing = cog.post("/predictions", json={"input": {"seed": 1}})
    assert missing.status_code == 422
    assert missing.json() == {
        "detail": [
            {
                "loc": ["body", "input", "prompt"],
                "msg": "Field required",
                "type": "value_error.missing",
            }
        ]
    }
    small = cog.put(f"/predictions/{new_id()}", json={"input": {"prompt": "x", "width": 3}})
    assert small.status_code == 422
    assert small.json()["detail"][0]["loc"] == ["body", "input", "width"]
    extra = {"prompt": "x", "negative_prompt": "no such input"}
    ok = post_when_free(cog, {"input": extra, "output_file_prefix": "http://x/"})
    assert ok.json()["status"] == "succeeded"
    assert ok.json()["output"][0].startswith(PNG_DATA_URI)  # output_file_prefix is ignored
    mismatch = cog.put(f"/predictions/{new_id()}", json={"id": "other", "input": {"prompt": "x"}})
    assert mismatch.status_code == 422
    assert mismatch.json()["detail"][0]["loc"] == ["body", "id"]


def test_async_put_sends_webhooks_and_a_second_put_joins_the_running_prediction(
    cog: httpx.Client, http_recorder: HttpRecorder
) -> None:
    pid = new_id()
    hook = http_recorder.url(f"/hook/{pid}?token=per-job-secret")
    body = {"input": {"prompt": "cat", "seed": 3, "sleep_s": 0.8}, "webhook": hook}
    first = put_async(cog, pid, body)
    assert (first.status_code, first.json()) == (202, {"id": pid, "status": "starting"})
    other_hook = {"webhook": http_recorder.url(f"/other/{pid}")}
    second = put_async(cog, pid, body | other_hook)  # the running prediction keeps its webhook
    assert second.status_code == 202
    assert second.json() | {"status": None} == {
        "id": pid,
        "input": body["input"],
        "logs": "",
        "metrics": {},
        "status": None,
    }
    assert second.json()["status"] in {"starting", "processing"}  # before/after the worker took it
    blocking = cog.put(f"/predictions/{pid}", json=body)  # no Prefer: still answers at once
    assert (blocking.status_code, blocking.json()["status"]) == (202, "processing")
    hooks = http_recorder.wait_for(completed, path_prefix=f"/hook/{pid}")
    time.sleep(0.3)  # a second prediction would have sent its own webhooks by now
    hooks = http_recorder.requests(f"/hook/{pid}")
    bodies = [h.json() for h in hooks]
    # start, logs (at most one per 500 ms: the bar's lines come in fewer hooks), output, completed
    statuses = sorted(b["status"] for b in bodies)
    assert statuses[-1] == "succeeded" and set(statuses[:-1]) == {"processing"}
    assert len(statuses) >= 4
    start, done = bodies[0], next(b for b in bodies if b["status"] == "succeeded")
    assert start == {"id": pid, "logs": "", "metrics": {}, "status": "processing"}
    # a logs event while it ran (the bar so far: the run's progress), and the whole log at the end
    assert any(b.keys() == start.keys() and "%|" in b["logs"] for b in bodies[1:]), bodies
    assert done["logs"].endswith("100%|####| 4/4\ndrew 1 image(s) for seed 3\n")
    assert done | {"status": "processing", "metrics": {}} in bodies
    assert set(done) == {"id", "logs", "metrics", "output", "status"}
    assert done["metrics"]["predict_time"] >= 0.8
    assert decode_png(done["output"][0]).getpixel((0, 0)) == image_colour("cat", 3, 0)
    assert {h.path for h in hooks} == {f"/hook/{pid}?token=per-job-secret"}
    assert http_recorder.requests(f"/other/{pid}") == []
    headers = hooks[0].headers
    assert headers["user-agent"] == f"coglet/{COG_VERSION}"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers  # unsigned: only WEBHOOK_AUTH_TOKEN adds a Bearer


def test_put_after_completion_runs_the_prediction_again(
    cog: httpx.Client, http_recorder: HttpRecorder
) -> None:
    pid = new_id()
    body = {
        "input": {"prompt": "twice"},
        "webhook": http_recorder.url(f"/hook/{pid}"),
        "webhook_events_filter": ["completed"],
    }
    assert put_async(cog, pid, body).status_code == 202
    http_recorder.wait_for(lambda hooks: len(hooks) == 1, path_prefix=f"/hook/{pid}")
    # the completed hook is sent before the slot is freed: a PUT at once may still get 409
    wait_for_status(cog, "READY")
    again = put_async(cog, pid, body)
    assert (again.status_code, again.json()) == (202, {"id": pid, "status": "starting"})
    hooks = http_recorder.wait_for(lambda hooks: len(hooks) == 2, path_prefix=f"/hook/{pid}")
    assert [h.json()["status"] for h in hooks] == ["succeeded", "succeeded"]
    assert cog.post(f"/predictions/{pid}/cancel").status_code == 404  # forgotten once done


def test_events_filter_start_and_completed_and_failed_webhook(
    cog: httpx.Client, http_recorder: HttpRecorder
) -> None:
    pid = new_id()
    body = {
        "input": {"prompt": "nope", "fail": True},
        "webhook": http_recorder.url(f"/hook/{pid}"),
        "webhook_events_filter": ["start", "completed"],
    }
    assert put_async(cog, pid, body).status_code == 202
    # cog sends non-terminal hooks without waiting for them: the start hook may land after the
    # failed one, so wait for both and compare them by status, not by arrival order
    hooks = http_recorder.wait_for(
        lambda hooks: completed(hooks) and len(hooks) >= 2, path_prefix=f"/hook/{pid}"
    )
    bodies = {h.json()["status"]: h.json() for h in hooks}
    assert len(hooks) == 2 and set(bodies) == {"processing", "failed"}
    assert set(bodies["failed"]) == {"id", "error", "logs", "metrics", "status"}
    assert "PredictorFailedError" in bodies["failed"]["error"]


def test_completed_webhook_is_retried_after_a_5xx(cog: httpx.Client) -> None:
    answers = iter([Answer(503), Answer(200)])
    with HttpRecorder(lambda _: next(answers)) as hooks:
        pid = new_id()
        body = {
            "input": {"prompt": "retry"},
            "webhook": hooks.url(f"/hook/{pid}"),
            "webhook_events_filter": ["completed"],
        }
        assert put_async(cog, pid, body).status_code == 202
        got = hooks.wait_for(lambda hooks: len(hooks) == 2)
    assert got[0].body == got[1].body
    assert 0.15 < got[1].at - got[0].at < 2.0  # backoff 100 ms x 2^attempt, attempt 1


def test_one_slot_busy_409_health_busy_and_cancel(
    cog: httpx.Client, http_recorder: HttpRecorder
) -> None:
    pid = new_id()
    hook = http_recorder.url(f"/hook/{pid}")
    body = {"input": {"prompt": "slow", "sleep_s": 20}, "webhook": hook}
    assert put_async(cog, pid, body).status_code == 202
    assert cog.get("/health-check").json()["status"] == "BUSY"
    busy = {"error": "At capacity - all prediction slots busy", "status": "failed"}
    for response in (
        cog.post("/predictions", json={"input": {"prompt": "x"}}),
        put_async(cog, new_id(), {"input": {"prompt": "x"}}),
    ):
        assert (response.status_code, response.json()) == (409, busy)
        assert "retry-after" not in response.headers
    # cancel once it runs (its start hook): a cancel while it is still starting can be lost on a
    # loaded machine, and the run then takes its whole 20 s
    http_recorder.wait_for(lambda hooks: bool(hooks), path_prefix=f"/hook/{pid}")
    cancel = cog.post(f"/predictions/{pid}/cancel")
    assert (cancel.status_code, cancel.json()) == (200, {})
    hooks = http_recorder.wait_for(completed, path_prefix=f"/hook/{pid}")
    assert hooks[-1].json() | {"metrics": None} == {
        "id": pid,
        "logs": "",
        "metrics": None,
        "status": "canceled",
    }
    assert hooks[-1].json()["metrics"]["predict_time"] < 5
    assert cog.get("/health-check").json()["status"] == "READY"
    assert cog.post(f"/predictions/{pid}/cancel").status_code == 404
    assert cog.post(f"/predictions/{new_id()}/cancel").status_code == 404


@pytest.mark.parametrize("slots", [2, 4])
def test_slots_run_predictions_at_once_then_409(cog_servers: CogServers, slots: int) -> None:
    server = cog_servers.get(slots=slots)
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        ids = [new_id() for _ in range(slots)]
        for n, pid in enumerate(ids):
            status = client.get("/health-check").json()["status"]
            assert status == "READY", f"{n} of {slots} slots busy"
            assert put_async(client, pid, {"input": {"prompt": "x", "sleep_s": 1.0}}).is_success
        assert client.get("/health-check").json()["status"] == "BUSY"
        assert put_async(client, new_id(), {"input": {"prompt": "x"}}).status_code == 409
        for pid in ids:
            assert client.post(f"/predictions/{pid}/cancel").status_code == 200
        wait_for_status(client, "READY")
        started = time.monotonic()
        with ThreadPoolExecutor(slots) as pool:
            bodies = list(
                pool.map(
                    lambda i: client.post(
                        "/predictions", json={"input": {"prompt": str(i), "sleep_s": 1.0}}
                    ).json(),
                    range(slots),
                )
            )
        assert [b["status"] for b in bodies] == ["succeeded"] * slots
        # overlapped, not one after another (that would take slots × 1 s); half a run of margin
        # for a loaded machine
        assert time.monotonic() - started < (slots - 0.5) * 1.0


def test_upload_url_puts_each_file_and_outputs_its_url(tmp_path: Path) -> None:
    def answer(request: RecordedRequest) -> Answer:
        if request.path.endswith("out-1.png"):
            return Answer(201, {"Location": "http://files.example/stored/1.png?sig=abc"})
        return Answer(500 if request.path.endswith("out-2.png") else 200)

    with (
        HttpRecorder(answer) as uploads,
        CogServer(tmp_path, upload_url=uploads.url("/upload/")) as server,
        httpx.Client(base_url=server.url, timeout=30.0) as client,
    ):
        body = client.post("/predictions", json={"input": {"prompt": "up", "num_outputs": 2}})
        puts = uploads.requests()
        broken = post_when_free(client, {"input": {"prompt": "up", "num_outputs": 3}})
        group = os.getpgid(server._proc.pid) if server._proc else 0
    assert body.json()["status"] == "succeeded"
    # uploads run at once and each URL is appended when its PUT ends: any order
    assert sorted(body.json()["output"]) == [
        uploads.url("/upload/out-0.png"),  # no Location: the PUT URL
        "http://files.example/stored/1.png",  # Location, query stripped
    ]
    assert sorted((p.method, p.path) for p in puts) == [
        ("PUT", "/upload/out-0.png"),
        ("PUT", "/upload/out-1.png"),
    ]
    assert {p.headers["x-prediction-id"] for p in puts} == {body.json()["id"]}
    assert {p.headers["content-type"] for p in puts} == {"image/png"}
    first = next(p for p in puts if p.path.endswith("out-0.png"))
    assert Image.open(io.BytesIO(first.body)).getpixel((0, 0)) == image_colour("up", 1, 0)
    assert broken.status_code == 200
    assert broken.json() | {"id": None, "metrics": None} == {
        "id": None,
        "error": "Failed to upload output: upload returned status 500 Internal Server Error",
        "logs": "",
        "metrics": None,
        "status": "failed",
    }
    assert process_group_ends(group)  # SIGTERM took the worker subprocess down too


def process_group_ends(group: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_setup_failure_is_reported_and_predictions_get_503(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match=r"reached SETUP_FAILED, not READY.*FileNotFound"):
        CogServer(tmp_path / "a", predictor_ref="missing.py:Runner").start()
    missing = CogServer(tmp_path / "b", predictor_ref="missing.py:Runner", expect="SETUP_FAILED")
    with missing as server:
        health = server.health()
        response = httpx.post(f"{server.url}/predictions", json={"input": {"prompt": "x"}})
    assert health is not None and health["setup"]["status"] == "failed"
    assert "FileNotFoundError" in health["setup"]["logs"]
    assert response.status_code == 503
    assert response.json() == {
        "error": "Setup has not finished yet. Wait until it has finished, "
        "or GET /health-check for status.",
        "status": "failed",
    }


def test_schema_file_matches_the_predictor_signature() -> None:
    """``.cog/openapi_schema.json`` is what ``cog build`` would generate (coglet validates inputs
    against it); it is written by hand here, so it must follow ``Runner.run``."""
    schema = json.loads((PREDICTOR_DIR / ".cog" / "openapi_schema.json").read_text())
    inputs = schema["components"]["schemas"]["Input"]
    params = list(inspect.signature(Runner.run).parameters.values())[1:]
    assert list(inputs["properties"]) == [p.name for p in params]
    # Input() without a default (None) on a non-Optional type: a required input
    optional = [p.name for p in params if "None" in str(p.annotation)]  # `Path | None`
    assert inputs["required"] == [
        p.name for p in params if p.default.default is None and p.name not in optional
    ]
    for p in params:
        field = inputs["properties"][p.name]
        if p.default.default is not None:
            assert field["default"] == p.default.default, p.name
        assert (field.get("minimum"), field.get("maximum")) == (p.default.ge, p.default.le)


def test_sync_client_that_disconnects_cancels_its_prediction(cog: httpx.Client) -> None:
    with pytest.raises(httpx.ReadTimeout):
        cog.post("/predictions", json={"input": {"prompt": "x", "sleep_s": 20}}, timeout=0.5)
    wait_for_status(cog, "READY", timeout=5.0)  # long before the 20 s it would have slept


def test_worker_crash_fails_the_prediction_and_leaves_the_server_unhealthy_with_auth_token(
    tmp_path: Path, http_recorder: HttpRecorder
) -> None:
    auth = {"WEBHOOK_AUTH_TOKEN": "server-wide-token"}
    with CogServer(tmp_path, env=auth) as server, httpx.Client(base_url=server.url) as client:
        pid = new_id()
        body = {"input": {"prompt": "x", "crash": True}, "webhook": http_recorder.url("/h")}
        assert put_async(client, pid, body).status_code == 202
        hooks = http_recorder.wait_for(completed)
        wait_for_status(client, "UNHEALTHY")
        health = client.get("/health-check").json()
        after = client.post("/predictions", json={"input": {"prompt": "x"}})
        alive = server._proc is not None and server._proc.poll() is None
    assert hooks[-1].json() | {"metrics": None} == {
        "id": pid,
        "error": "Worker crashed",
        "logs": "",
        "metrics": None,
        "status": "failed",
    }
    assert {h.headers["authorization"] for h in hooks} == {"Bearer server-wide-token"}
    assert health["user_healthcheck_error"].startswith("Healthcheck error:")
    assert after.status_code == 409  # the slot is poisoned for good: restart the server
    assert alive
