"""``pixelpipe batch`` and ``pixelpipe compare``: many generations from the terminal.

Both run in-process through :class:`~pixelpipe.pipeline.Pipeline` (same data directory and
settings as ``pixelpipe serve``), or against a running server with ``--server URL`` through
:class:`~pixelpipe.client.Client`.

**Resuming a batch.** Every line gets a seed: its own, or one derived from the line's content
(model, prompt and parameters — not its position), so the same line always makes the same request
and therefore the same content key. Rerunning an interrupted batch serves every prompt that was
already done from the cache at $0, attaches to the ones still in flight, and generates only the
rest.

Imports inside functions are lazy on purpose (CLI start-up time, as in :mod:`pixelpipe.cli`).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import orjson
import typer

from pixelpipe.cli_output import (
    ApiKey,
    Server,
    err,
    load_settings_or_die,
    money,
    out,
    print_json,
    table,
)
from pixelpipe.errors import InvalidRequest, PixelpipeError

if TYPE_CHECKING:
    from rich.progress import Progress

    from pixelpipe.intake import GenerationRequest
    from pixelpipe.jobs.model import Job

_T = TypeVar("_T")

FIELDS = (
    "prompt",
    "model",
    "seed",
    "size",
    "aspect_ratio",
    "format",
    "quality",
    "steps",
    "guidance",
    "negative_prompt",
    "provider",
    "group",
    "webhook",
)
_INT = frozenset({"seed", "steps"})
_FLOAT = frozenset({"guidance"})
_EXT = {"image/webp": "webp", "image/png": "png", "image/jpeg": "jpg"}
SEED_SPACE = 2**32


# ---- input ---------------------------------------------------------------------------------------


def read_items(path: Path) -> list[dict[str, Any]]:
    """Lines of ``path``: JSONL (a string or an object per line), CSV (a ``prompt`` column) or
    plain text (one prompt per line). Raises InvalidRequest naming the bad line."""
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(text, path)
    items: list[dict[str, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if suffix in (".jsonl", ".ndjson", ".json"):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"{path}:{n}: not JSON ({exc})", line=n) from None
            if isinstance(value, str):
                value = {"prompt": value}
            if not isinstance(value, dict):
                raise InvalidRequest(f"{path}:{n}: expected a string or an object", line=n)
            items.append(_clean(value, f"{path}:{n}"))
        else:
            items.append({"prompt": line.strip()})
    return items


def _read_csv(text: str, path: Path) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "prompt" not in reader.fieldnames:
        raise InvalidRequest(f"{path}: the CSV needs a header row with a 'prompt' column")
    items = []
    for n, row in enumerate(reader, 2):
        values = {k: v for k, v in row.items() if k and v not in (None, "")}
        if values.get("prompt"):
            items.append(_clean(values, f"{path}:{n}"))
    return items


def _clean(values: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise InvalidRequest(f"{where}: unknown field(s) {', '.join(unknown)}; use {FIELDS}")
    if not isinstance(values.get("prompt"), str) or not values["prompt"].strip():
        raise InvalidRequest(f"{where}: a non-empty 'prompt' is required")
    clean: dict[str, Any] = {}
    for key, value in values.items():
        try:
            if key in _INT:
                clean[key] = int(value)
            elif key in _FLOAT:
                clean[key] = float(value)
            else:
                clean[key] = value
        except (TypeError, ValueError):
            raise InvalidRequest(f"{where}: {key} must be a number, not {value!r}") from None
    return clean


def derive_seed(params: dict[str, Any]) -> int:
    """A seed that depends only on what the line asks for (not its position in the file)."""
    stable = {k: v for k, v in params.items() if k not in ("seed", "group", "webhook")}
    digest = hashlib.sha256(orjson.dumps(stable, option=orjson.OPT_SORT_KEYS)).digest()
    return int.from_bytes(digest[:8], "big") % SEED_SPACE


def with_defaults(item: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    params = {**{k: v for k, v in defaults.items() if v is not None}, **item}
    if params.get("seed") is None:
        params["seed"] = derive_seed(params)
    return params


# ---- running -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one line (or one compared model) came to."""

    index: int
    prompt: str
    model: str
    seed: int | None
    status: str  # succeeded | failed | canceled | refused (never submitted) | timeout
    cached: bool = False
    cost_micros: int | None = None
    saved_micros: int = 0
    provider: str | None = None
    error_code: str | None = None
    error_detail: str | None = None
    generation_id: str | None = None
    url: str | None = None
    seconds: float = 0.0
    path: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"


class Runner(Protocol):
    async def run(
        self, index: int, params: dict[str, Any], *, timeout_s: float, save: Saver | None
    ) -> Outcome: ...


def _outcome(index: int, params: dict[str, Any]) -> Outcome:
    return Outcome(
        index=index,
        prompt=str(params["prompt"]),
        model=str(params.get("model") or "preview"),
        seed=params.get("seed"),
        status="refused",
        seconds=0.0,
    )


Saver = Callable[[Outcome, bytes, str | None], str]  # (outcome, image, content type) -> path


def saver(directory: Path, name: Callable[[Outcome], str]) -> Saver:
    """Write images as ``directory/<name(outcome)>.<ext>``."""

    def save(o: Outcome, data: bytes, content_type: str | None) -> str:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name(o)}.{_EXT.get(content_type or '', 'img')}"
        path.write_bytes(data)
        return str(path)

    return save


async def _timed(o: Outcome, timeout_s: float, call: Callable[[], Awaitable[_T]]) -> _T | None:
    """Await ``call()`` and time it into ``o.seconds``; a refusal or a timeout is recorded on
    ``o`` and gives None."""
    started = time.monotonic()
    try:
        return await call()
    except PixelpipeError as exc:
        o.error_code, o.error_detail = exc.code, exc.detail
    except TimeoutError:
        o.status, o.error_code = "timeout", "timeout"
        o.error_detail = f"not finished within {timeout_s:g} s (it keeps running)"
    finally:
        o.seconds = time.monotonic() - started
    return None


class LocalRunner:
    """In this process, through the use cases, on the services of a started :class:`Pipeline`."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    async def run(
        self, index: int, params: dict[str, Any], *, timeout_s: float, save: Saver | None
    ) -> Outcome:
        from pixelpipe.intake import GenerationRequest
        from pixelpipe.usecases.batch import submit_many, wait_many
        from pixelpipe.usecases.estimate import estimate
        from pixelpipe.usecases.images import image_bytes, local_image_url

        svc = self.pipeline.services
        o = _outcome(index, params)

        async def generate() -> tuple[GenerationRequest, Job]:
            body = GenerationRequest(**params)
            (sub,) = await submit_many(svc, [body])
            o.generation_id = sub.job.id
            (job,) = await wait_many(svc, [sub.job], timeout_s=timeout_s)
            return body, job

        done = await _timed(o, timeout_s, generate)
        if done is None:
            return o
        body, job = done
        o.status, o.cached, o.provider = str(job.status), job.cached, job.provider
        o.cost_micros = job.cost_micros
        o.error_code, o.error_detail = job.error_code, job.error_detail
        if o.ok and job.storage_key:
            o.url = await local_image_url(svc, job)
            if save is not None:
                o.path = save(o, await image_bytes(svc, job), job.content_type)
            if job.cached:
                o.provider = "cache"
                with contextlib.suppress(PixelpipeError):
                    price = estimate(svc, body).price.amount_micros
                    o.saved_micros = price or 0
        return o


class RemoteRunner:
    """Against a running server, through :class:`~pixelpipe.client.Client`."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def run(
        self, index: int, params: dict[str, Any], *, timeout_s: float, save: Saver | None
    ) -> Outcome:
        o = _outcome(index, params)
        fields = {k: v for k, v in params.items() if k != "prompt"}

        async def generate() -> Any:
            return await self.client.generate(
                params["prompt"], timeout_s=timeout_s, raise_on_failure=False, **fields
            )

        gen = await _timed(o, timeout_s, generate)
        if gen is None:
            return o
        o.generation_id, o.status, o.cached = gen.id, gen.status, gen.cached
        o.provider, o.cost_micros = gen.provider, gen.cost.micros
        if gen.error is not None:
            o.error_code, o.error_detail = gen.error.code, gen.error.detail
        if o.ok and gen.image is not None:
            url = gen.image.url
            o.url = self.client.base_url + url if url.startswith("/") else url
            if save is not None:
                o.path = save(o, await self.client.download(gen), gen.image.content_type)
            if gen.cached:
                with contextlib.suppress(PixelpipeError):
                    est = await self.client.estimate(params["prompt"], **fields)
                    o.saved_micros = est.micros or 0
        return o


@dataclass
class Summary:
    total: int
    outcomes: list[Outcome] = field(default_factory=list)
    interrupted: bool = False

    @property
    def done(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def cached(self) -> int:
        return sum(o.ok and o.cached for o in self.outcomes)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def cost_micros(self) -> int:
        return sum(o.cost_micros or 0 for o in self.outcomes)

    @property
    def unpriced(self) -> int:
        return sum(o.ok and o.cost_micros is None for o in self.outcomes)

    @property
    def saved_micros(self) -> int:
        return sum(o.saved_micros for o in self.outcomes)

    def failures(self) -> dict[str, dict[str, Any]]:
        counts = Counter(o.error_code or o.status for o in self.failed)
        examples: dict[str, str] = {}
        for o in self.failed:
            examples.setdefault(o.error_code or o.status, o.error_detail or o.status)
        return {code: {"count": n, "example": examples[code]} for code, n in counts.items()}

    def as_dict(self) -> dict[str, Any]:
        from pixelpipe.ledger.policy import decimal_usd

        return {
            "total": self.total,
            "finished": len(self.outcomes),
            "done": self.done,
            "generated": self.done - self.cached,
            "cached": self.cached,
            "failed": len(self.failed),
            "not_run": self.total - len(self.outcomes),
            "cost_micros": self.cost_micros,
            "cost_usd": decimal_usd(self.cost_micros),
            "saved_micros": self.saved_micros,
            "saved_usd": decimal_usd(self.saved_micros),
            "unpriced": self.unpriced,
            "failures": self.failures(),
            "interrupted": self.interrupted,
        }


async def run_all(
    runner: Runner,
    items: list[dict[str, Any]],
    *,
    concurrency: int,
    timeout_s: float,
    save: Saver | None,
    on_done: Callable[[Outcome], None],
) -> list[Outcome]:
    """Run every item, at most ``concurrency`` at a time; ``on_done`` after each."""
    import asyncio

    sem = asyncio.Semaphore(concurrency)
    results: list[Outcome] = []

    async def one(index: int, params: dict[str, Any]) -> None:
        async with sem:
            o = await runner.run(index, params, timeout_s=timeout_s, save=save)
        results.append(o)
        on_done(o)

    await asyncio.gather(*(one(i, p) for i, p in enumerate(items)))
    return results


async def _with_runner(
    server: str | None, api_key: str | None, fn: Callable[[Runner], Awaitable[None]]
) -> None:
    if server:
        from pixelpipe.client import Client

        async with Client(server, api_key=api_key, timeout=60.0) as client:
            await fn(RemoteRunner(client))
        return
    from pixelpipe.pipeline import Pipeline

    async with Pipeline(load_settings_or_die()) as p:
        await fn(LocalRunner(p))


def _cancel_on_sigterm() -> None:
    """SIGTERM stops a run like Ctrl-C does: in-flight jobs are handed back, the summary prints."""
    import asyncio

    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


# ---- pixelpipe batch -----------------------------------------------------------------------------


def batch(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="prompts.jsonl, prompts.csv or prompts.txt")
    ],
    model: Annotated[
        str | None, typer.Option(metavar="MODEL", help="Default model for lines without one")
    ] = None,
    size: Annotated[str | None, typer.Option(metavar="WxH", help="Default WIDTHxHEIGHT")] = None,
    format: Annotated[
        str | None, typer.Option("--format", metavar="FORMAT", help="webp, png or jpeg")
    ] = None,
    quality: Annotated[
        str | None, typer.Option(metavar="TIER", help="Default quality tier")
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option("-c", "--concurrency", min=1, max=256, metavar="N", help="Prompts at once"),
    ] = 4,
    out_dir: Annotated[
        Path | None,
        typer.Option("-o", "--out", metavar="DIR", help="Save every image in this directory"),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option("--results", metavar="FILE", help="Append one JSON line per finished prompt"),
    ] = None,
    group: Annotated[
        str | None, typer.Option(metavar="LABEL", help="Group label for the gallery")
    ] = None,
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds to wait for each image")
    ] = 600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Generate every prompt of a file, N at a time, with a live progress bar.

    Interrupt it at any time and run the same command again: finished prompts come from the
    cache at $0 (each line's seed is derived from its content unless it sets one).
    """
    try:
        items = read_items(file)
    except (OSError, PixelpipeError) as exc:
        _fail(exc)
    defaults = {"model": model, "size": size, "format": format, "quality": quality}
    defaults["group"] = group
    params = [with_defaults(item, defaults) for item in items]
    summary = Summary(total=len(params))
    sink = results.open("a", encoding="utf-8") if results else None

    async def go(runner: Runner) -> None:
        _cancel_on_sigterm()
        with _progress(len(params)) as (progress, update):

            def on_done(o: Outcome) -> None:
                summary.outcomes.append(o)
                if sink is not None:
                    sink.write(orjson.dumps(asdict(o)).decode() + "\n")
                    sink.flush()
                update(progress, summary)

            await run_all(
                runner,
                params,
                concurrency=concurrency,
                timeout_s=timeout,
                save=saver(out_dir, lambda o: f"{o.index:05d}-{o.model}-{o.seed}")
                if out_dir
                else None,
                on_done=on_done,
            )

    code = _drive(lambda: _with_runner(server, api_key, go), summary)
    if sink is not None:
        sink.close()
    _print_summary(summary, as_json)
    raise typer.Exit(code if code else (2 if summary.failed else 0))


def _drive(make: Callable[[], Awaitable[None]], summary: Summary) -> int:
    import asyncio

    async def main() -> None:
        await make()

    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        summary.interrupted = True
        return 130
    except PixelpipeError as exc:
        _fail(exc)
    return 0


@contextlib.contextmanager
def _progress(total: int) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[stats]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err(),
        transient=False,
    )
    task = progress.add_task("batch", total=total, stats="")

    def update(p: Progress, s: Summary) -> None:
        stats = (
            f"[green]✓ {s.done}[/] ([cyan]{s.cached} cached[/])  [red]✗ {len(s.failed)}[/]  "
            f"{money(s.cost_micros)} spent"
        )
        p.update(task, completed=len(s.outcomes), stats=stats)

    with progress:
        yield progress, update


def _print_summary(summary: Summary, as_json: bool) -> None:
    data = summary.as_dict()
    if as_json:
        print_json(data)
        return
    cost, saved = money(data["cost_micros"]), money(data["saved_micros"])
    t = table("batch summary" + (" (interrupted)" if summary.interrupted else ""), ["", "prompts"])
    t.add_column("cost", justify="right")
    t.columns[1].justify = "right"
    t.add_row("done", str(data["done"]), cost)
    t.add_row("  generated", str(data["generated"]), cost)
    t.add_row("  from cache", str(data["cached"]), f"{money(0)} (saved {saved})")
    t.add_row("failed", str(data["failed"]), "")
    if data["not_run"]:
        t.add_row("not finished", str(data["not_run"]), "")
    if data["unpriced"]:
        t.add_row("unpriced", str(data["unpriced"]), "price unknown (not $0)")
    t.add_row("total", str(data["total"]), cost)
    out().print(t)
    if data["failures"]:
        why = table("failures", ["code", "count", "example"], ids=("code",))
        why.columns[1].justify = "right"
        for code, info in sorted(data["failures"].items(), key=lambda kv: -kv[1]["count"]):
            why.add_row(code, str(info["count"]), str(info["example"])[:120])
        out().print(why)
    if summary.interrupted:
        err().print("interrupted: run the same command again to resume (done prompts cost $0)")


def _fail(exc: BaseException) -> Any:
    if isinstance(exc, PixelpipeError):
        err().print(f"[bold red]error[/] ({exc.code}): {exc.detail}")
    else:
        err().print(f"[bold red]error[/]: {exc}")
    raise typer.Exit(1)


# ---- pixelpipe compare ---------------------------------------------------------------------------


def compare(
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="What to draw")],
    models: Annotated[
        str, typer.Option("--models", metavar="A,B,C", help="Comma-separated model names")
    ],
    seed: Annotated[
        int | None, typer.Option(metavar="N", help="Same seed for every model (default: derived)")
    ] = None,
    size: Annotated[
        str | None, typer.Option(metavar="WxH", help="WIDTHxHEIGHT (default: each model's)")
    ] = None,
    aspect_ratio: Annotated[
        str | None, typer.Option("--aspect-ratio", metavar="W:H", help="e.g. 16:9")
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("-o", "--out", metavar="DIR", help="Where the images go")
    ] = Path("pixelpipe-compare"),
    timeout: Annotated[
        float, typer.Option(metavar="SECONDS", help="Seconds to wait for each image")
    ] = 600.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON")] = False,
    server: Server = None,
    api_key: ApiKey = None,
) -> None:
    """Run one prompt on several models side by side: time, cost and image path per model."""
    names = [m.strip() for m in models.split(",") if m.strip()]
    if not names:
        _fail(InvalidRequest("--models needs at least one model name"))
    base = {"prompt": prompt, "size": size, "aspect_ratio": aspect_ratio}
    the_seed = seed if seed is not None else derive_seed({"prompt": prompt})
    group = "cmp_" + hashlib.sha256(f"{prompt}\0{the_seed}\0{names}".encode()).hexdigest()[:12]
    params = [
        {**{k: v for k, v in base.items() if v is not None}, "model": m, "seed": the_seed}
        | {"group": group}
        for m in names
    ]
    summary = Summary(total=len(params))

    async def go(runner: Runner) -> None:
        _cancel_on_sigterm()
        with err().status(f"comparing {len(names)} models…"):
            await run_all(
                runner,
                params,
                concurrency=len(params),
                timeout_s=timeout,
                save=saver(out_dir, lambda o: f"{o.model}-{o.seed}"),
                on_done=summary.outcomes.append,
            )

    code = _drive(lambda: _with_runner(server, api_key, go), summary)
    rows = sorted(summary.outcomes, key=lambda o: o.index)
    if as_json:
        print_json([asdict(o) for o in rows])
    else:
        _print_compare(f"{prompt!r}  seed={the_seed}  group={group}", rows)
    raise typer.Exit(code if code else (2 if summary.failed else 0))


def _print_compare(title: str, rows: list[Outcome]) -> None:
    """The table (model, provider, status, time, cost), then each image path or error on a line of
    its own, whole: a path or URL is never folded into a table cell."""
    t = table(title, ["model", "provider", "status", "time", "cost"], ids=("model",))
    for col in t.columns[3:]:
        col.justify = "right"
    for o in rows:
        cost = f"{money(0)} (cache)" if o.cached else money(o.cost_micros) if o.ok else "-"
        t.add_row(o.model, o.provider or "-", o.status, f"{o.seconds:.2f}s", cost)
    out().print(t)
    for o in rows:
        where = (o.path or o.url or "") if o.ok else f"{o.error_code}: {o.error_detail}"
        out().print(f"{o.model}  {where}", markup=False, highlight=False)


# ---- pixelpipe webhook-secret --------------------------------------------------------------------


def webhook_secret_cmd() -> None:
    """Print the whsec_… secret that signs completion webhooks (give it to your receiver)."""
    from pixelpipe.notify.signing import webhook_secret

    try:
        print(webhook_secret(load_settings_or_die()))
    except PixelpipeError as exc:
        _fail(exc)
