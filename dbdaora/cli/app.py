"""The ``dbdaora`` command line: the typer application and its commands.

Every ``DBDaoraError`` (a bad model path, bad settings, a store that does not
answer) ends the command with one line on stderr and exit status 1, no traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from dbdaora.backends import open_fallback
from dbdaora.cli import check as checks
from dbdaora.cli import repair as repairs
from dbdaora.cli.compare import Verdict
from dbdaora.cli.loading import configure, load_model
from dbdaora.cli.raw import RawRedis, require_server
from dbdaora.cli.warm import PAGE, warm
from dbdaora.exceptions import DBDaoraError
from dbdaora.session import Session

T = TypeVar("T")

app = typer.Typer(
    name="dbdaora",
    help="Check the stores, warm Redis from the fallback, repair and inspect Redis copies.\n\n"
    "The stores come from the settings module named by DBDAORA_SETTINGS, or --memory "
    "and --fallback.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

Memory = Annotated[
    str | None, typer.Option(help="URL of the Redis side, over the settings' MEMORY.")
]
Fallback = Annotated[
    str | None, typer.Option(help="URL of the fallback store, over the settings' FALLBACK.")
]
Timeout = Annotated[float, typer.Option(help="Seconds each store may take to answer.")]
ModelPath = Annotated[str, typer.Argument(help="The model, as module:Model.", show_default=False)]


@contextlib.contextmanager
def _one_line() -> Iterator[None]:
    """A dbdaora error as one line on stderr and exit status 1."""
    try:
        yield
    except DBDaoraError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    with _one_line():
        return asyncio.run(work())


def _progress(what: str) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn(what),
        BarColumn(),
        TextColumn("{task.completed:,}"),
        TimeElapsedColumn(),
        console=err,
    )


@app.command()
def check(memory: Memory = None, fallback: Fallback = None, timeout: Timeout = 5.0) -> None:
    """Connect to each store: its URL (password masked), server version and a round trip."""
    with _one_line():
        config = configure(memory, fallback)

    async def both() -> list[checks.Answer | DBDaoraError]:
        found = await asyncio.gather(
            checks.check_memory(config.memory, timeout),
            checks.check_fallback(config.fallback, timeout),
            return_exceptions=True,
        )
        for answer in found:
            if not isinstance(answer, checks.Answer | DBDaoraError):
                raise answer
        return list(found)  # type: ignore[arg-type]  # narrowed by the loop above

    failed = False
    for answer in _run(both):
        if isinstance(answer, DBDaoraError):
            err.print(f"[red]error:[/] {escape(str(answer))}")
            failed = True
            continue
        took = "" if answer.round_trip is None else f"{answer.round_trip * 1000:.2f} ms"
        out.print(f"{answer.side:<9} {escape(answer.url)}  {escape(answer.version)}  {took}")
    if failed:
        raise typer.Exit(1)


@app.command(name="warm")
def warm_command(
    model: ModelPath,
    memory: Memory = None,
    fallback: Fallback = None,
    page: Annotated[int, typer.Option(min=1, help="Records read and filled at a time.")] = PAGE,
    timeout: Timeout = 5.0,
) -> None:
    """Fill Redis with every fallback record of MODEL, with the model's TTL.

    Safe while the service writes: it reads through the model's own read-through,
    so a Redis copy is left as it is and a missing one is filled under a lease,
    never over a newer write.
    """
    with _one_line():
        meta = load_model(model)
        config = configure(memory, fallback)
        require_server(config.memory)

    async def work() -> Any:
        async with Session(cache=None, breaker=None) as session:
            await checks.reach("memory", config.memory, session.memory.ping, timeout)
            await checks.reach("fallback", config.fallback, session.fallback.ping, timeout)
            with _progress(f"warming {meta.name}") as progress:
                task = progress.add_task("warm", total=None)
                return await warm(
                    meta,
                    session,
                    page=page,
                    advance=lambda n: progress.advance(task, n),
                )

    done = _run(work)
    marked = (
        f", {done.marked_missing:,} marked not found in Redis (dbdaora repair clears such markers)"
        if done.marked_missing
        else ""
    )
    out.print(
        f"warmed {done.records:,} {meta.name} records: {done.filled:,} filled, "
        f"{done.in_redis:,} already in Redis{marked}"
    )


@app.command(name="repair")
def repair_command(
    model: ModelPath,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only; delete nothing.")] = False,
    memory: Memory = None,
    fallback: Fallback = None,
    timeout: Timeout = 5.0,
) -> None:
    """Compare every Redis copy of MODEL with the fallback; delete those that differ.

    Counts the copies that agree, that differ and that have no fallback record,
    and deletes the last two (unless --dry-run). Deleting is always safe: the next
    read fills the key again from the fallback. A not-found marker where the
    fallback has the record differs; a lease in flight is left alone.
    """
    with _one_line():
        meta = load_model(model)
        config = configure(memory, fallback)

    async def work() -> Any:
        raw, store = RawRedis(config.memory, timeout), open_fallback(config.fallback)
        try:
            await checks.reach("memory", config.memory, raw.ping, timeout)
            await checks.reach("fallback", config.fallback, store.ping, timeout)
            with _progress(f"comparing {meta.name}") as progress:
                task = progress.add_task("repair", total=None)
                return await repairs.repair(
                    meta,
                    raw,
                    store,
                    dry_run=dry_run,
                    advance=lambda n: progress.advance(task, n),
                )
        finally:
            await raw.close()
            await store.close()

    counts = _run(work)
    agree, differ = counts[Verdict.AGREE], counts[Verdict.DIFFER]
    orphans, in_flight = counts[Verdict.NO_RECORD], counts[Verdict.IN_FLIGHT]
    deleted = differ + orphans
    out.print(
        f"{meta.name}: {agree:,} agree, {differ:,} differ, "
        f"{orphans:,} without a fallback record, {in_flight:,} in flight"
    )
    out.print(f"{'would delete' if dry_run else 'deleted'} {deleted:,} Redis copies")


@app.command(name="inspect")
def inspect_command(
    model: ModelPath,
    keys: Annotated[
        list[str],
        typer.Argument(help="Record names: key parts joined with ':'.", show_default=False),
    ],
    memory: Memory = None,
    fallback: Fallback = None,
    timeout: Timeout = 5.0,
) -> None:
    """Show, for each key of MODEL: the Redis copy (fields, TTL), its marker, the fallback
    record, and whether they agree."""
    with _one_line():
        meta = load_model(model)
        config = configure(memory, fallback)

    async def work() -> None:
        raw, store = RawRedis(config.memory, timeout), open_fallback(config.fallback)
        try:
            await checks.reach("memory", config.memory, raw.ping, timeout)
            await repairs.inspect(meta, raw, store, keys, out)
        finally:
            await raw.close()
            await store.close()

    _run(work)


def main() -> None:
    """The console script."""
    app()
