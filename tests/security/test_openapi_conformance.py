"""``/openapi.json`` describes what the server answers: schemathesis's response-conformance checks.

A real ``pixelpipe serve`` (subprocess, loopback) is driven with cases that schemathesis generates
from the served OpenAPI document — positive (valid by the schema) and negative (wrong types, missing
fields, out-of-range values) — first with auth off (loopback, no key yet: every handler reachable),
then with API keys on (an admin key on every request), then with a wrong key (the 401s). Every
answer must pass:

* ``not_a_server_error`` — no 5xx;
* ``status_code_conformance`` — the status is one the operation documents;
* ``content_type_conformance`` — the Content-Type is the one documented for that status
  (``application/problem+json`` for problems, ``application/json`` for OpenAI error objects);
* ``response_schema_conformance`` — the body validates against the documented schema.

Seeded (hypothesis ``derandomize``): the same cases on every run. ``GET /v1/events`` is left out
(an unbounded event stream). Figures and the command are in docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.serve import CLI, Server

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("PIXELPIPE_CONFORMANCE_EXAMPLES", "35"))
MIN_CASES = 1000
UNBOUNDED = {("GET", "/v1/events")}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class Run:
    """Sends the cases of one phase and keeps the figures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.headers: dict[str, str] = {}
        self.phase = "auth off"
        self.cases: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.failures: list[dict[str, Any]] = []
        self.unsendable = 0

    def fuzz(self, op: Any, mode: GenerationMode, n: int) -> Callable[[], None]:
        where = f"{op.method.upper()} {op.path}"

        @hypothesis.settings(
            max_examples=n,
            deadline=None,
            database=None,
            derandomize=True,  # seeded: the same cases every run
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @hypothesis.given(case=op.as_strategy(generation_mode=mode))
        def one(case: Any) -> None:
            try:
                resp = case.call(
                    base_url=self.url,
                    session=self.session,
                    timeout=30,
                    headers=self.headers or None,
                )
            except (requests.exceptions.InvalidHeader, ValueError, UnicodeError):
                self.unsendable += 1  # e.g. a header value no HTTP client can send
                return
            self.cases[f"{where} [{mode.value}, {self.phase}]"] += 1
            self.statuses[resp.status_code] += 1
            try:
                case.validate_response(resp, checks=CHECKS, headers=self.headers or None)
            except AssertionError as exc:  # schemathesis Failure / FailureGroup
                self.failures.append(self.failure(where, resp, case, exc))
            except BaseExceptionGroup as group:
                self.failures.append(self.failure(where, resp, case, group))

        return one

    def failure(self, where: str, resp: Any, case: Any, exc: BaseException) -> dict[str, Any]:
        return {
            "operation": where,
            "phase": self.phase,
            "status": resp.status_code,
            "content_type": resp.headers.get("content-type", ""),
            "check": str(exc).strip().splitlines()[:6],
            "body": resp.text[:300],
            "curl": case.as_curl_command(),
        }

    def everything(self, schema: Any, n: int) -> None:
        for result in schema.get_all_operations():
            op = result.ok()
            if (op.method.upper(), op.path) in UNBOUNDED:
                continue
            for mode in GenerationMode:
                try:
                    self.fuzz(op, mode, n)()
                except hypothesis.errors.Unsatisfiable:  # nothing to vary in this mode
                    pass


def _admin_key(srv: Server) -> str:
    made = subprocess.run(
        [*CLI, "keys", "create", "--scopes", "admin", "--rpm", "0", "--json"],
        env=srv.env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return str(json.loads(made.stdout)["key"])


@pytest.mark.timeout(600)
def test_every_answer_conforms_to_the_served_openapi_document(tmp_path: Path) -> None:
    env = {"PIXELPIPE_OPENAI_WAIT_S": "30", "PIXELPIPE_LOG_LEVEL": "ERROR"}
    started = time.monotonic()
    with Server(tmp_path / "data", env) as srv:
        spec = requests.get(f"{srv.url}/openapi.json", timeout=10).json()
        schema = schemathesis.openapi.from_dict(spec)
        run = Run(srv.url)
        run.everything(schema, EXAMPLES)  # loopback, no key yet: auth off
        run.headers = {"Authorization": f"Bearer {_admin_key(srv)}"}
        run.phase = "admin key"
        run.everything(schema, max(3, EXAMPLES // 5))  # keys on: the handlers behind auth
        run.headers = {"Authorization": "Bearer pp_not_a_key"}
        run.phase = "bad key"
        run.everything(schema, 2)  # keys on, a wrong key: the auth layer's 401s

    total = sum(run.cases.values())
    summary = {
        "cases": total,
        "cases_auth_off": sum(n for k, n in run.cases.items() if "auth off" in k),
        "cases_admin_key": sum(n for k, n in run.cases.items() if "admin key" in k),
        "cases_bad_key": sum(n for k, n in run.cases.items() if "bad key" in k),
        "operations": len({k.rsplit(" [", 1)[0] for k in run.cases}),
        "5xx": sum(n for s, n in run.statuses.items() if s >= 500),
        "conformance_failures": len(run.failures),
        "unsendable_skipped": run.unsendable,
        "status_counts": dict(sorted(run.statuses.items())),
        "seconds": round(time.monotonic() - started, 1),
    }
    print("\nCONFORMANCE RESULT\n" + json.dumps(summary, indent=2))
    report = os.environ.get("PIXELPIPE_CONFORMANCE_REPORT")
    if report:
        Path(report).write_text(json.dumps({**summary, "failures": run.failures}, indent=2))
    assert not run.failures, json.dumps(run.failures[:8], indent=2)
    assert summary["cases"] >= MIN_CASES, summary
