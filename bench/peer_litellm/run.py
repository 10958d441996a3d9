"""pixelpipe beside LiteLLM's proxy (and a minimal FastAPI + SQLite cache), one run, ratios.

Not a test: it prints figures. Every target stands on the same fake OpenAI images backend
(``fake_openai_images.py``, 0 ms by default) and wrk drives each in turn, on loopback only:

* ``litellm``   LiteLLM's proxy, 1 worker (``litellm[proxy]``, installed on first run into its
                own venv under ``$TMPDIR/peer-litellm/.venv-litellm``; needs PyPI once);
* ``ref``       ``reference_cache_hit.py``: FastAPI + pydantic + aiosqlite answering a stored
                document (what an ordinary Python stack does per cache hit);
* ``pixelpipe`` ``pixelpipe serve`` from this checkout (embedded: SQLite, local disk), its OpenAI
                provider pointed at the fake: submit, call, verify, store (fsynced), bill, answer.

Scenarios (``--scenario``, repeatable; default ``gen hit``):

* ``gen``     a unique prompt per request, 64×64 PNG: litellm vs pixelpipe (full round trip);
* ``hit``     the same seeded request: ref vs pixelpipe (pixelpipe answers from its store);
* ``gen1m``   a unique prompt, the backend answers a ~1 MB PNG as base64: litellm vs pixelpipe;
* ``edit2m``  ``POST /v1/images/edits``, multipart with a 2 MB PNG, unique prompt;
* ``stream2`` ``stream=true, partial_images=2``, unique prompt: pixelpipe relays the backend's
              two partials (a second ``pixelpipe serve``, ``PIXELPIPE_OPENAI_PARTIAL_IMAGES=2``);
              LiteLLM is smoke-tested and marked where it cannot stream.

    .venv/bin/python bench/peer_litellm/run.py                          # gen + hit, -c "64 1"
    .venv/bin/python bench/peer_litellm/run.py --scenario gen -c 1 -d 10 --repeat 2
    .venv/bin/python bench/peer_litellm/run.py --scenario gen1m --scenario edit2m --scenario stream2

``--repeat N`` runs each (scenario, connections) N times alternating the targets (A B A B).
``--baseline DIR`` adds ``pixelpipe@base``: the same serve from another checkout's ``src`` (e.g. a
``git worktree`` of the commit before a change), run beside ``pixelpipe`` wherever it runs.
"CPU ms/req" is the target's process tree (user + system) per answered request. Needs wrk
(``scripts/system-deps``).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.serve import free_port  # noqa: E402

PY = sys.executable
LITELLM_SPEC = os.environ.get("LITELLM_SPEC", "litellm[proxy]==1.106.2")
MASTER_KEY = "sk-bench-1234"
PROMPT = "a red cube on a white table, studio lighting"
CLK = os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    name: str
    base: str
    proc: subprocess.Popen[bytes]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Body:
    path: str  # under the target's base URL
    data: bytes
    content_type: str = "application/json"


@dataclass
class Row:
    scenario: str
    target: str
    conns: int
    rps: float
    p50: float
    p99: float
    cpu_ms: float
    errors: int
    note: str = ""


# -- processes (only those started here, stopped by their process group) --------------------


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=log.parent,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with _quiet():
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with _quiet():
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class _quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is ProcessLookupError


def start_fake(out: Path, latency_ms: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    """The fake OpenAI images backend on a free port, up: (its process, its base URL)."""
    port = free_port()
    log = out / "fake.log"
    cmd = [PY, str(HERE / "fake_openai_images.py"), "--port", str(port)]
    fake = start([*cmd, "--latency-ms", str(latency_ms)], log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url + "/v1/models", fake, log)
    except BaseException:
        stop(fake)
        raise
    return fake, url


def wait_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{url} exited early; see {log}:\n{log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    sys.exit(f"{url} did not come up in {timeout_s:.0f} s; see {log}")


def tree_ticks(pid: int) -> int:
    """User + system clock ticks of a process and all its descendants."""
    total = 0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += tree_ticks(int(child))
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


# -- the servers ---------------------------------------------------------------------------------


def litellm_venv() -> Path:
    venv = Path(
        os.environ.get("VENV_LITELLM", tempfile.gettempdir() + "/peer-litellm/.venv-litellm")
    )
    if not (venv / "bin" / "litellm").exists():
        print(f"creating {venv} with {LITELLM_SPEC} (first run only)", file=sys.stderr)
        subprocess.run(["python3", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", LITELLM_SPEC], check=True)
    return venv


def start_litellm(out: Path, fake: str) -> Target:
    port = free_port()
    config = out / "litellm_config.yaml"
    config.write_text((HERE / "litellm_config.yaml").read_text().replace("__FAKE_URL__", fake))
    env = {
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_LOG": "ERROR",
        "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
        "DISABLE_ADMIN_UI": "True",
    }
    cmd = [str(litellm_venv() / "bin" / "litellm"), "--config", str(config)]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    log = out / "litellm.log"
    proc = start(cmd, log, env)
    base = f"http://127.0.0.1:{port}"
    wait_up(base + "/health/liveliness", proc, log)
    return Target("litellm", base, proc, {"Authorization": f"Bearer {MASTER_KEY}"})


def start_ref(out: Path, seed_body: Path) -> Target:
    port = free_port()
    cmd = [PY, str(HERE / "reference_cache_hit.py"), "--port", str(port)]
    cmd += ["--db", str(out / "refcache.sqlite"), "--seed-body", str(seed_body)]
    log = out / "ref.log"
    proc = start(cmd, log)
    base = f"http://127.0.0.1:{port}"
    wait_up(base + "/health", proc, log)
    return Target("ref", base, proc)


def start_pixelpipe(
    out: Path, fake: str, name: str = "pixelpipe", src: Path | None = None, **env: str
) -> Target:
    port = free_port()
    data = out / name
    data.mkdir()
    env = {
        "PIXELPIPE_DATA_DIR": str(data),
        "PIXELPIPE_LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "sk-fake",
        "PIXELPIPE_OPENAI_BASE_URL": fake + "/v1",
        "PIXELPIPE_TEST_MODE": "true",
        **env,
    }
    if src is not None:  # another checkout's code on this checkout's interpreter
        env["PYTHONPATH"] = str(src / "src")
    cli = "from pixelpipe.cli import main; main()"
    cmd = [str(ROOT / ".venv" / "bin" / "python"), "-c", cli, "serve", "--host", "127.0.0.1"]
    log = data / "serve.log"
    proc = start([*cmd, "--port", str(port)], log, env)
    base = f"http://127.0.0.1:{port}"
    wait_up(base + "/readyz", proc, log)
    return Target(name, base, proc)


# -- bodies ---------------------------------------------------------------------------------


def json_body(**extra: object) -> bytes:
    return json.dumps(
        {"model": "gpt-image-1", "prompt": PROMPT, "size": "1024x1024", **extra}
    ).encode()


def unique(prompt_extra: str = "") -> str:
    return f"{PROMPT}{prompt_extra}, take __N__"


def input_png(target_bytes: int = 2_000_000) -> bytes:
    from PIL import Image

    side = int((target_bytes / 3) ** 0.5)
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, format="PNG")
    return buf.getvalue()


def edit_body() -> Body:
    boundary = "pixelpipebench7f3a"
    parts = [("model", b"gpt-image-1"), ("prompt", unique().encode()), ("size", b"1024x1024")]
    out = b""
    for name, value in parts:  # the prompt first: wrk's script splices the unique token there
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value + b"\r\n"
    out += f'--{boundary}\r\nContent-Disposition: form-data; name="image"; '.encode()
    out += b'filename="in.png"\r\nContent-Type: image/png\r\n\r\n' + input_png() + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return Body("/v1/images/edits", out, f"multipart/form-data; boundary={boundary}")


def scenarios() -> dict[str, tuple[tuple[str, ...], Body]]:
    gen = "/v1/images/generations"
    return {
        "gen": (("litellm", "pixelpipe"), Body(gen, json_body(prompt=unique()))),
        "hit": (("ref", "pixelpipe"), Body(gen, json_body(seed=7))),
        "gen1m": (("litellm", "pixelpipe"), Body(gen, json_body(prompt=unique(" [1mb]")))),
        "edit2m": (("litellm", "pixelpipe"), edit_body()),
        "stream2": (
            ("litellm", "pixelpipe-stream"),
            Body(gen, json_body(prompt=unique(), stream=True, partial_images=2)),
        ),
    }


# -- measuring ------------------------------------------------------------------------------


def smoke(t: Target, body: Body, out: Path, scenario: str) -> str:
    """One request; '' when it answered an image, else why not (the target is then skipped)."""
    data = body.data.replace(b"__N__", f"smoke-{time.time_ns()}".encode())
    headers = {"Content-Type": body.content_type, **t.headers}
    try:
        r = httpx.post(t.base + body.path, content=data, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        return f"no answer ({type(exc).__name__})"
    (out / f"smoke-{scenario}-{t.name}.txt").write_bytes(r.content[:4000])
    if r.status_code >= 300:
        return f"HTTP {r.status_code}: {r.text[:160]!r}"
    if b"b64_json" not in r.content and b'"url"' not in r.content:
        return f"no image in the answer: {r.text[:120]!r}"
    if b"stream" in body.data and b"partial_image" not in r.content:
        return "answered, but not as a stream of partial images"
    return ""


def wrk(t: Target, body: Body, conns: int, seconds: int, out: Path, warm: int) -> Row:
    body_file = out / f"body-{abs(hash(body.data))}.bin"
    if not body_file.exists():
        body_file.write_bytes(body.data)
    hdrs = "|".join(f"{k}: {v}" for k, v in t.headers.items())
    env = {**os.environ, "BODY_FILE": str(body_file), "CONTENT_TYPE": body.content_type}
    env["HEADERS"] = hdrs
    summary = out / "wrk.json"
    cmd = ["wrk", "-t1", f"-c{conns}", "--timeout", "30s", "-s", str(HERE / "post.lua")]
    if warm:
        subprocess.run([*cmd, f"-d{warm}s", t.base + body.path], env=env, capture_output=True)
    before = tree_ticks(t.proc.pid)
    env["WRK_OUT"] = str(summary)
    subprocess.run([*cmd, f"-d{seconds}s", t.base + body.path], env=env, capture_output=True)
    ticks = tree_ticks(t.proc.pid) - before
    r = json.loads(summary.read_text())
    summary.unlink()
    cpu_ms = ticks / CLK * 1000 / max(1, r["requests"])
    return Row("", t.name, conns, r["rps"], r["p50_ms"], r["p99_ms"], cpu_ms, r["errors"])


def table(rows: list[Row], skipped: dict[tuple[str, str], str]) -> str:
    lines = [
        "| scenario | target | conns | req/s | p50 ms | p99 ms | CPU ms/req | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.scenario} | {r.target} | {r.conns} | {r.rps:,.1f} | {r.p50:,.2f} | "
            f"{r.p99:,.1f} | {r.cpu_ms:.2f} | {r.errors} |"
        )
    for (scen, name), why in skipped.items():
        lines.append(f"| {scen} | {name} | | cannot: {why} | | | | |")
    return "\n".join(lines)


def ratios(rows: list[Row]) -> str:
    """Each pixelpipe (this tree, and ``@base`` when given) against the scenario's peer, per
    connection count: medians of the repeats."""
    out = [
        "| scenario | conns | target | vs | req/s ratio | p50 ratio | CPU/req ratio |",
        "|---|---:|---|---|---:|---:|---:|",
    ]

    def med(rs: list[Row], attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in rs))

    for scen, conns in sorted({(r.scenario, r.conns) for r in rows}, key=lambda k: (k[0], -k[1])):
        here = [r for r in rows if (r.scenario, r.conns) == (scen, conns)]
        peers = [r for r in here if not r.target.startswith("pixelpipe")]
        if not peers:
            continue
        for name in sorted({r.target for r in here} - {p.target for p in peers}):
            ours = [r for r in here if r.target == name]
            out.append(
                f"| {scen} | {conns} | {name} | {peers[0].target} | "
                f"{med(ours, 'rps') / med(peers, 'rps'):.2f}× | "
                f"{med(ours, 'p50') / med(peers, 'p50'):.2f}× | "
                f"{med(ours, 'cpu_ms') / med(peers, 'cpu_ms'):.2f}× |"
            )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--scenario", action="append", choices=list(scenarios()))
    p.add_argument("-c", "--conns", default="64 1", help='connection counts, e.g. "64 8 1"')
    p.add_argument("-d", "--duration", type=int, default=10, help="measured seconds per run")
    p.add_argument("-w", "--warmup", type=int, default=2, help="unmeasured seconds before each")
    p.add_argument("--repeat", type=int, default=1, help="A B A B: each pair of runs N times")
    p.add_argument("--latency-ms", type=float, default=0.0, help="the fake backend's latency")
    p.add_argument("--out", type=Path, help="where logs go (default: a new temp dir)")
    p.add_argument("--baseline", type=Path, help="another checkout: pixelpipe@base beside ours")
    o = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (scripts/system-deps, or apt-get install wrk)")
    out = o.out or Path(tempfile.mkdtemp(prefix="peer-litellm-"))
    out.mkdir(parents=True, exist_ok=True)
    chosen = o.scenario or ["gen", "hit"]
    plan = {name: scenarios()[name] for name in chosen}
    if o.baseline is not None:
        for name, (names, body) in plan.items():
            extra = tuple(f"{n}@base" for n in names if n.startswith("pixelpipe"))
            plan[name] = (names + extra, body)
    needed = {t for targets, _ in plan.values() for t in targets}
    procs: list[subprocess.Popen[bytes]] = []
    load_before = os.getloadavg()
    try:
        fake, fake_url = start_fake(out, o.latency_ms)
        procs.append(fake)
        targets: dict[str, Target] = {}
        seed = out / "seed_body.json"
        seed.write_bytes(plan["hit"][1].data if "hit" in plan else json_body(seed=7))
        starters = {
            "litellm": lambda: start_litellm(out, fake_url),
            "ref": lambda: start_ref(out, seed),
            "pixelpipe": lambda: start_pixelpipe(out, fake_url),
            "pixelpipe-stream": lambda: start_pixelpipe(
                out, fake_url, "pixelpipe-stream", PIXELPIPE_OPENAI_PARTIAL_IMAGES="2"
            ),
            "pixelpipe@base": lambda: start_pixelpipe(out, fake_url, "pixelpipe@base", o.baseline),
            "pixelpipe-stream@base": lambda: start_pixelpipe(
                out,
                fake_url,
                "pixelpipe-stream@base",
                o.baseline,
                PIXELPIPE_OPENAI_PARTIAL_IMAGES="2",
            ),
        }
        for name in sorted(needed):
            targets[name] = starters[name]()
            procs.append(targets[name].proc)
        rows: list[Row] = []
        skipped: dict[tuple[str, str], str] = {}
        for scen, (names, body) in plan.items():
            runnable = []
            for name in names:
                why = smoke(targets[name], body, out, scen)
                if why:
                    skipped[(scen, name)] = why
                    print(f"{scen}: {name} cannot: {why}", file=sys.stderr)
                else:
                    runnable.append(targets[name])
            for conns in [int(c) for c in o.conns.split()]:
                for _ in range(o.repeat):
                    for t in runnable:
                        row = wrk(t, body, conns, o.duration, out, o.warmup)
                        row.scenario = scen
                        rows.append(row)
                        print(
                            f"{scen:8s} {t.name:16s} c={conns:<3d} {row.rps:9.1f} req/s  "
                            f"p50 {row.p50:8.2f} ms  p99 {row.p99:8.1f} ms  "
                            f"{row.cpu_ms:6.2f} CPU ms/req  errors {row.errors}",
                            file=sys.stderr,
                        )
    finally:
        for proc in reversed(procs):
            stop(proc)
    load_after = os.getloadavg()
    print(
        f"\n{os.cpu_count()} CPUs; load average before {load_before[0]:.2f}, "
        f"after {load_after[0]:.2f}; "
        f"wrk -t1, {o.duration} s measured after {o.warmup} s warm-up; logs in {out}\n"
    )
    print(table(rows, skipped))
    print()
    print(ratios(rows))


if __name__ == "__main__":
    main()
