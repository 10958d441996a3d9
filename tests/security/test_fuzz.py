"""API fuzzing with schemathesis against the served OpenAPI document of ``pixelpipe serve``.

Every operation in ``/openapi.json`` gets ``FUZZ_EXAMPLES`` generated cases in schemathesis's
positive mode (valid by the schema) and as many in its negative mode (invalid by the schema: wrong
types, missing fields, out-of-range values, odd path segments and headers), sent over HTTP to a real
server process. Whatever comes in, the answer must not be a 5xx, and every 4xx must be
``application/problem+json`` with a ``code`` — except on the OpenAI-compatible routes
(``/v1/images/generations|edits|variations``, ``/v1/models``), whose 4xx are OpenAI error objects
(``{"error": {...}}``) by design.

``GET /v1/events`` is left out: it is an unbounded server-sent event stream (its per-job sibling
is fuzzed; with an unknown id it answers 404 at once).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode

from tests.support.serve import CLI, Server

pytestmark = pytest.mark.slow

FUZZ_EXAMPLES = int(os.environ.get("PIXELPIPE_FUZZ_EXAMPLES", "70"))
UNBOUNDED = {("GET", "/v1/events")}
OPENAI_STYLE = {
    ("POST", "/v1/images/generations"),
    ("POST", "/v1/images/edits"),
    ("POST", "/v1/images/variations"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model}"),
}


def _header(resp: Any, name: str) -> str:
    """A header of a schemathesis Response (values are lists there)."""
    for key, value in resp.headers.items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) else value)
    return ""


def _problem_ok(resp: Any, openai_style: bool) -> bool:
    ctype = _header(resp, "content-type")
    try:
        body: Any = resp.json()
    except ValueError:
        return False
    if openai_style:
        return ctype.startswith("application/json") and isinstance(body.get("error"), dict)
    return ctype.startswith("application/problem+json") and bool(body.get("code"))


@pytest.mark.timeout(600)
def test_fuzzed_requests_never_get_a_5xx_and_every_4xx_is_a_problem(tmp_path: Path) -> None:
    env = {"PIXELPIPE_OPENAI_WAIT_S": "30", "PIXELPIPE_LOG_LEVEL": "ERROR"}
    with Server(tmp_path / "data", env) as srv:
        spec = requests.get(f"{srv.url}/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(spec)
        cases: Counter[str] = Counter()
        statuses: Counter[int] = Counter()
        failures: list[dict[str, Any]] = []
        unsendable = 0
        no_cases: list[str] = []
        session = requests.Session()

        auth: dict[str, str] = {}
        phase = "auth off"

        def fuzz(op: Any, where: tuple[str, str], mode: GenerationMode, n: int) -> Any:
            @hypothesis.settings(
                max_examples=n,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            @hypothesis.given(case=op.as_strategy(generation_mode=mode))
            def one(case: Any) -> None:
                nonlocal unsendable
                try:
                    resp = case.call(
                        base_url=srv.url, session=session, timeout=30, headers=auth or None
                    )
                except (requests.exceptions.InvalidHeader, ValueError, UnicodeError):
                    unsendable += 1  # e.g. a header value no HTTP client can send
                    return
                cases[f"{where[0]} {where[1]} [{mode.value}, {phase}]"] += 1
                statuses[resp.status_code] += 1
                bad_5xx = resp.status_code >= 500
                bad_4xx = 400 <= resp.status_code < 500 and not _problem_ok(
                    resp, where in OPENAI_STYLE
                )
                if bad_5xx or bad_4xx:
                    failures.append(
                        {
                            "operation": " ".join(where),
                            "phase": phase,
                            "status": resp.status_code,
                            "content_type": _header(resp, "content-type"),
                            "body": resp.text[:300],
                            "curl": case.as_curl_command(),
                        }
                    )

            return one

        def everything(n: int) -> None:
            for result in schema.get_all_operations():
                op = result.ok()
                where = (op.method.upper(), op.path)
                if where in UNBOUNDED:
                    continue
                for mode in GenerationMode:
                    try:
                        fuzz(op, where, mode, n)()
                    except hypothesis.errors.Unsatisfiable:  # nothing to vary in this mode
                        no_cases.append(f"{where[0]} {where[1]} [{mode.value}, {phase}]")

        everything(FUZZ_EXAMPLES)  # loopback, no key yet: auth off, every handler reachable
        # then with API keys on: an admin key on every request (handlers behind the auth check)
        made = subprocess.run(
            [*CLI, "keys", "create", "--scopes", "admin", "--rpm", "0", "--json"],
            env=srv.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        auth = {"Authorization": f"Bearer {json.loads(made.stdout)['key']}"}
        phase = "admin key"
        time.sleep(1.2)  # the server re-checks "no keys yet" once a second
        assert requests.get(f"{srv.url}/v1/models", timeout=10).status_code == 401
        everything(max(5, FUZZ_EXAMPLES // 4))

    total = sum(cases.values())
    summary = {
        "cases": total,
        "operations": len({k.rsplit(" [", 1)[0] for k in cases}),
        "cases_auth_off": sum(n for k, n in cases.items() if "auth off" in k),
        "cases_admin_key": sum(n for k, n in cases.items() if "admin key" in k),
        "unsendable_skipped": unsendable,
        "modes_without_cases": no_cases,
        "status_counts": dict(sorted(statuses.items())),
        "5xx": sum(n for s, n in statuses.items() if s >= 500),
        "4xx_not_problem_json": sum(1 for f in failures if f["status"] < 500),
        "per_operation": dict(sorted(cases.items())),
    }
    print("\nFUZZ RESULT\n" + json.dumps(summary, indent=2))
    report = os.environ.get("PIXELPIPE_FUZZ_REPORT")
    if report:
        Path(report).write_text(json.dumps(summary, indent=2))
    assert not failures, json.dumps(failures[:10], indent=2)
    assert total >= min(1000, 25 * FUZZ_EXAMPLES), summary
