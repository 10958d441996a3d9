"""Every example in README.md and docs/*.md runs as written, on a fresh install with no provider key.

The fenced ``bash``/``sh`` and ``python`` blocks are extracted and run against one real
``pixelpipe serve`` that this module starts on a free 127.0.0.1 port with a temporary data
directory (shared by the in-process CLI examples, as on a real machine), from a working directory
that looks like the checkout (links to ``bench/``, ``scripts/``, ``.venv/``…):

* ``localhost:8000`` / ``127.0.0.1:8000`` become the test server's address and ``.venv/bin/`` this
  interpreter's ``bin/``; ``curl`` gets ``-sS --fail-with-body`` so an HTTP error fails the example;
* placeholders are filled from what earlier examples printed: ``gen_…`` (the latest generation
  id), ``upl_…`` (the latest upload id), ``pp_…`` (the latest API key), ``KEY_ID`` (the latest
  key id);
* a block that cannot run here (a provider key, ``scripts/``, a cluster, a benchmark) is skipped
  only by a visible marker on the line before its fence, with the reason:
  ``<!-- example: skip (needs REPLICATE_API_TOKEN) -->``.

Blocks run in document order (README first), except that blocks which create or use API keys run
last: once a key exists the server requires one for every ``/v1`` call. A failure names the file,
the line of the block, the command and its output.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.serve import Server

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)\s*$")
SKIP = re.compile(r"^<!--\s*example:\s*skip\s*\((.+)\)\s*-->$")
MARKER = re.compile(r"^<!--\s*example:")
PROVIDER_KEYS = ("REPLICATE_API_TOKEN", "FAL_KEY", "OPENAI_API_KEY")
KEY_WORDS = ("keys create", "Bearer pp_", "keys set-webhook", "PIXELPIPE_API_KEY")
VENV_BIN = Path(sys.executable).parent
CHECKOUT = (".venv", "bench", "docs", "scripts", "src", "tests", "pyproject.toml", "README.md")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence
    lang: str
    body: str
    skip: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def uses_keys(self) -> bool:
        return any(word in self.body for word in KEY_WORDS)


def extract(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file whose language we can run."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence), len(lines))
        before = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        marker = SKIP.match(before)
        if MARKER.match(before) and not marker:
            raise AssertionError(
                f"{path.relative_to(ROOT)}:{i}: unreadable marker {before!r}; "
                "write <!-- example: skip (the reason) -->"
            )
        if lang in RUNNABLE:
            body = "\n".join(lines[i + 1 : end])
            blocks.append(Block(path, i + 1, lang, body, marker.group(1) if marker else None))
        i = end + 1
    return blocks


def all_blocks() -> list[Block]:
    blocks = [b for path in DOCS for b in extract(path)]
    return [b for b in blocks if not b.uses_keys] + [b for b in blocks if b.uses_keys]


def commands(body: str) -> Iterator[str]:
    """Shell commands of a block: continuation lines joined, comment-only lines dropped."""
    pending = ""
    for raw in body.splitlines():
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield (pending + line).strip()
        pending = ""
    if pending.strip():
        yield pending.strip()


@dataclass
class Context:
    """The server, the working directory and what earlier examples printed."""

    server: Server
    workdir: Path
    env: dict[str, str]
    seen: dict[str, str] = field(default_factory=dict)

    def rewrite(self, text: str) -> str:
        text = re.sub(r"(localhost|127\.0\.0\.1):8000\b", f"127.0.0.1:{self.server.port}", text)
        return text.replace(".venv/bin/", f"{VENV_BIN}/")

    def fill(self, text: str, where: str) -> str:
        for placeholder, name in (
            ("gen_…", "generation"),
            ("upl_…", "upload"),
            ("pp_…", "key"),
            ("KEY_ID", "key_id"),
        ):
            if placeholder in text:
                if name not in self.seen:
                    raise AssertionError(
                        f"{where}: {placeholder} stands for a {name} that no earlier example "
                        "printed; print one first, or mark the block <!-- example: skip (…) -->"
                    )
                text = text.replace(placeholder, self.seen[name])
        return text

    def harvest(self, output: str) -> None:
        for name, pattern in (
            ("generation", r"\bgen_[0-9a-z]{20,}\b"),
            ("upload", r"\bupl_[0-9a-f]{64}\b"),
            ("key", r"\bpp_[0-9a-z]+_[\w-]{20,}"),
            ("key_id", r"created API key (\w+)"),
        ):
            found = re.findall(pattern, output)
            if found:
                self.seen[name] = found[-1]

    def run(self, args: list[str], where: str, shown: str) -> None:
        try:
            proc = subprocess.run(
                args, cwd=self.workdir, env=self.env, capture_output=True, text=True, timeout=60
            )
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"{where}: the example ran over 60 s:\n{shown}\nA doc example should be quick; "
                "mark a long one (a test run, a benchmark) <!-- example: skip (why) -->.",
                pytrace=False,
            )
        if proc.returncode != 0:
            pytest.fail(
                f"{where}: the example failed (exit {proc.returncode})\n"
                f"--- as written (then rewritten for the test server):\n{shown}\n"
                f"--- stdout:\n{proc.stdout[-3000:]}\n--- stderr:\n{proc.stderr[-3000:]}\n"
                "Fix the example, or mark it <!-- example: skip (why) --> if it cannot run here.",
                pytrace=False,
            )
        self.harvest(proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    base = tmp_path_factory.mktemp("doc-examples")
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_KEYS}
    env = {k: v for k, v in env.items() if not k.startswith("PIXELPIPE_")}
    data = base / "data"
    server = Server(data)
    for k in PROVIDER_KEYS:
        server.env.pop(k, None)
    with server:
        run_env = {
            **env,
            "PATH": f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}",
            "PIXELPIPE_DATA_DIR": str(data),
            "PIXELPIPE_LOG_LEVEL": "WARNING",
        }
        workdir = base / "work"  # a checkout as the reader has it (bench/, scripts/, .venv/…),
        workdir.mkdir()  # with the files the examples write kept out of the real one
        for name in CHECKOUT:
            if (ROOT / name).exists():
                (workdir / name).symlink_to(ROOT / name)
        yield Context(server, workdir, run_env)


BLOCKS = all_blocks()


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_example_runs(block: Block, ctx: Context) -> None:
    if block.skip is not None:
        pytest.skip(f"{block.where}: marked in the doc: {block.skip}")
    if block.lang in ("bash", "sh", "shell"):
        for command in commands(block.body):
            line = ctx.fill(ctx.rewrite(command), block.where)
            if line.startswith("curl "):
                line = "curl -sS --fail-with-body --max-time 60 " + line[len("curl ") :]
            ctx.run(["bash", "-euo", "pipefail", "-c", line], block.where, command)
    else:
        script = ctx.workdir / f"example_{block.path.stem}_{block.line}.py"
        script.write_text(ctx.fill(ctx.rewrite(block.body), block.where), encoding="utf-8")
        ctx.run([sys.executable, str(script)], block.where, block.body)


def test_the_extractor_finds_the_examples() -> None:
    """A guard on the guard: the README's CLI and curl examples are found, and every skip has a
    reason (a marker without one is refused when the docs are read)."""
    readme = [b for b in BLOCKS if b.path.name == "README.md"]
    assert any("pixelpipe generate" in b.body and b.skip is None for b in readme)
    assert any("curl" in b.body and b.skip is None for b in readme)
    assert all(b.skip is None or b.skip.strip() for b in BLOCKS)
    body = "# note\ncurl -s a \\\n  -d 'x'\n\npixelpipe usage  # spend\n"
    assert list(commands(body)) == ["curl -s a    -d 'x'", "pixelpipe usage  # spend"]
