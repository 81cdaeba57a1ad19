"""The ``sfsync`` command line: parse, call the library, print, exit.

Every command is a few lines over a library call that a Python caller can make
too. Failures end with one readable paragraph on stderr (and an ``error`` event
in JSON log mode) and the exit code of :mod:`sfsync.errors`; a traceback only
with ``-v``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, NoReturn, TypeVar, cast

import click

from sfsync import __version__
from sfsync.config import LoadedSettings, Settings, load_settings
from sfsync.errors import (
    EXIT_INTERNAL,
    EXIT_OK,
    Interrupted,
    SfsyncError,
    UsageError,
    exit_code_for,
)
from sfsync.logging import LogFormat, configure_logging, get_logger, redact_text, register_secrets
from sfsync.stop import StopSignal

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class App:
    """What every command gets: the global options and lazily loaded settings."""

    config_path: Path | None
    verbose: int
    log_format: LogFormat | None
    _loaded: LoadedSettings | None = field(default=None, repr=False)

    @property
    def loaded(self) -> LoadedSettings:
        if self._loaded is None:
            loaded = load_settings(self.config_path)
            register_secrets(loaded.settings.secret_values())
            configure_logging(
                self.log_format or loaded.settings.logging.format,
                level=loaded.settings.logging.level,
                verbosity=self.verbose,
            )
            log = get_logger()
            for warning in loaded.warnings:
                log.warning("config.warning", message=warning)
            self._loaded = loaded
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    @property
    def json_logs(self) -> bool:
        if self.log_format is not None:
            return self.log_format == "json"
        if self._loaded is not None and self._loaded.settings.logging.format != "auto":
            return self._loaded.settings.logging.format == "json"
        return not sys.stderr.isatty()


def _fail(app: App | None, exc: BaseException) -> NoReturn:
    from sfsync.console import printable

    code = exit_code_for(exc)
    if isinstance(exc, SfsyncError):
        message = redact_text(exc.message)
    else:
        message = redact_text(
            f"internal error: {type(exc).__name__}: {exc}. This is a bug in sfsync; "
            "run again with -v and report the traceback."
        )
    if app is not None and app.verbose:
        trace = redact_text("".join(traceback.format_exception(exc)))
        sys.stderr.write(printable(trace, newlines=True))
    if app is not None and app.json_logs:
        get_logger().error("error", message=message, exit_code=code)
    # Messages quote Salesforce's answers and record values: no control characters.
    click.echo(f"error: {printable(message, newlines=True)}", err=True)
    sys.exit(code)


# Commands that live beside their subsystem, imported only when invoked (start-up stays fast).
LAZY_COMMANDS = {
    "audit": "sfsync.audit.cli:audit_command",
    "findings": "sfsync.audit.cli:findings_command",
    "waive": "sfsync.audit.cli:waive_command",
    "writeback": "sfsync.writeback.cli:writeback_command",
    "report": "sfsync.report.cli:report_command",
    "devorg": "sfsync.devorg.cli:devorg",
}


class SfsyncGroup(click.Group):
    """Turns sfsync errors (and bugs) into a paragraph and an exit code; loads commands lazily."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            import importlib

            module, attribute = LAZY_COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(module), attribute)
            assert isinstance(command, click.Command)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            _reader_went_away(EXIT_OK)
        except Exception as exc:
            app = ctx.find_object(App)
            _fail(app, _environment_failure(app, exc) or exc)


def _silence_stdout() -> None:
    """Point stdout's descriptor at /dev/null: what is still buffered goes nowhere, quietly."""
    with contextlib.suppress(OSError, ValueError):  # in-process runners have no real fd
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)


def _reader_went_away(code: int) -> NoReturn:
    """stdout's reader closed the pipe (``sfsync findings | head -1``): not an error.

    Exit quietly, like ripgrep: no message, and nothing left for Python to fail to
    flush at shutdown ("Exception ignored ... BrokenPipeError").
    """
    _silence_stdout()
    sys.exit(code)


def _environment_failure(app: App | None, exc: Exception) -> SfsyncError | None:
    """A database that failed under the command (full disk, server gone) as an sfsync error.

    Every command gets this one mapping; the original stays the cause (``-v`` shows it).
    """
    if app is None or app._loaded is None:
        return None
    from sfsync.warehouse import database_failure

    mapped = database_failure(exc, app._loaded.settings.database)
    if mapped is not None:
        mapped.__cause__ = exc
    return mapped


pass_app = click.make_pass_decorator(App)


# The dates an ``--as-of`` may name: the audit, the report and the write-back count
# quarters, months and days around it, which must stay inside Python's years 1..9999.
AS_OF_RANGE = (date(1900, 1, 1), date(2999, 12, 31))


def parse_iso_date(
    value: str | None, option: str, *, within: tuple[date, date] | None = AS_OF_RANGE
) -> date | None:
    """``YYYY-MM-DD`` only (docs/contracts.md), inside ``within`` (``None``: any date).

    Anything else is a usage error naming the option, the value and the range.
    """
    if value is None:
        return None
    from sfsync.salesforce.formats import parse_date

    try:
        day = parse_date(value)
    except ValueError:
        raise UsageError(f"{option}: {value!r} is not a date in the form YYYY-MM-DD") from None
    if within is not None and not within[0] <= day <= within[1]:
        raise UsageError(
            f"{option}: {value} is outside the supported range "
            f"{within[0].isoformat()} .. {within[1].isoformat()}"
        )
    return day


@click.group(cls=SfsyncGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="sfsync")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file (else $SFSYNC_CONFIG, else config/sfsync.yaml, else defaults).",
)
@click.option("-v", "--verbose", count=True, help="More output; tracebacks on errors.")
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default=None,
    help="JSON lines or console logs (default: JSON unless stderr is a terminal).",
)
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: int, log_format: str | None) -> None:
    """Keep a SQL warehouse in sync with Salesforce, audit the pipeline, write back Tasks."""
    fmt = cast(LogFormat | None, log_format)
    configure_logging(fmt or "auto", verbosity=verbose)
    ctx.obj = App(config_path, verbose, fmt)


# --------------------------------------------------------------------------- db


@cli.group()
def db() -> None:
    """Warehouse schema: create, upgrade, inspect."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Create or upgrade the warehouse schema to this sfsync's head revision."""
    from sfsync.warehouse import open_warehouse, upgrade

    warehouse = open_warehouse(app.settings.database, require_head=False, create=True)
    try:
        with warehouse.engine.begin() as conn:
            before, after = upgrade(conn)
    finally:
        warehouse.dispose()
    where = app.settings.database.display_url()
    if before == after:
        click.echo(f"{where}: already at revision {after}")
    else:
        click.echo(f"{where}: upgraded from {before or 'empty'} to {after}")
    get_logger().info("db.upgrade", before=before, after=after)


@db.command("current")
@pass_app
def db_current(app: App) -> None:
    """Show the warehouse's schema revision and this sfsync's head."""
    from sfsync.warehouse import current_revision, head_revision, open_warehouse
    from sfsync.warehouse.migrate import unrecorded_schema

    warehouse = open_warehouse(app.settings.database, require_head=False)
    try:
        with warehouse.engine.connect() as conn:
            current = current_revision(conn)
            unrecorded = unrecorded_schema(conn) if current is None else None
    finally:
        warehouse.dispose()
    if unrecorded is not None:
        raise unrecorded
    head = head_revision()
    state = "up to date" if current == head else "needs `sfsync db upgrade`"
    click.echo(f"current: {current or '(empty)'}\nhead:    {head}\n{state}")


# --------------------------------------------------------------------------- check


@cli.command()
@pass_app
def check(app: App) -> None:
    """Preflight: config, database, schema, Salesforce login, fields, API budget."""
    from sfsync.checks import run_checks, worst_exit_code
    from sfsync.console import printable

    results = run_checks(app.loaded)
    for result in results:
        mark = "warn" if result.warning else ("ok" if result.ok else "FAIL")
        click.echo(f"[{mark:>4}] {result.name}: {printable(redact_text(result.detail))}")
    code = worst_exit_code(results)
    if code:
        failed = sum(1 for r in results if not r.ok)
        click.echo(f"{failed} check(s) failed", err=True)
        sys.exit(code)


# --------------------------------------------------------------------------- sync


@cli.command()
@click.option(
    "--object",
    "objects",
    multiple=True,
    metavar="NAME",
    help="Sync only this object (repeatable). Default: sync.objects.",
)
@click.option("--full", is_flag=True, help="Re-pull everything and reconcile deletes.")
@pass_app
def sync(app: App, objects: tuple[str, ...], full: bool) -> None:
    """Pull changes since the last watermark (or everything) into the warehouse."""
    from sfsync.config import SYNC_OBJECTS
    from sfsync.console import print_table, sync_progress
    from sfsync.extract import run_sync
    from sfsync.warehouse import open_warehouse

    unknown = [name for name in objects if name not in SYNC_OBJECTS]
    if unknown:
        raise UsageError(
            f"--object: unknown object {unknown[0]!r}; sfsync syncs {', '.join(SYNC_OBJECTS)}"
        )
    warehouse = open_warehouse(app.settings.database)
    try:
        with sync_progress() as progress, StopSignal().on_signals(signal.SIGTERM) as stop:
            result = run_sync(
                warehouse,
                app.settings,
                objects=list(objects) or None,
                full=full,
                progress=progress,
                should_stop=stop,
            )
    finally:
        warehouse.dispose()
    print_table(
        f"sync run {result.run_id}: {result.status} in {result.seconds:.1f}s, "
        f"{result.api_calls} API calls",
        ["object", "mode", "upserted", "deleted", "problems", "api calls", "seconds"],
        [
            [r.name, r.mode, r.upserted, r.deleted, r.problems, r.api_calls, f"{r.seconds:.1f}"]
            for r in result.objects.values()
        ],
    )
    if result.error is not None:
        raise result.error


# --------------------------------------------------------------------------- run, worker, runs


@cli.command("run")
@click.option("--as-of", "as_of", metavar="YYYY-MM-DD", help="Audit as of this date.")
@click.option("--apply", is_flag=True, help="Perform the write-back (default: preview only).")
@click.option("--force", is_flag=True, help="Write back even after a partial sync or over the cap.")
@pass_app
def run_command(app: App, as_of: str | None, apply: bool, force: bool) -> None:
    """Sync, audit and write back as one recorded run (holding the run lock)."""
    from sfsync.runner import run_once
    from sfsync.warehouse import open_warehouse

    day = parse_iso_date(as_of, "--as-of")
    warehouse = open_warehouse(app.settings.database)
    try:
        # SIGTERM (a CronJob's pod going away) finishes the current page or batch first.
        with StopSignal().on_signals(signal.SIGTERM) as stop:
            outcome = run_once(
                warehouse, app.settings, as_of=day, apply=apply, force=force, should_stop=stop
            )
    finally:
        warehouse.dispose()
    stages = ", ".join(f"{name} {status}" for name, status in outcome.stages.items())
    click.echo(
        f"run {outcome.run_id}: {outcome.status} ({stages}) in {outcome.seconds:.1f}s, "
        f"{outcome.api_calls} API calls"
    )
    if outcome.error is not None:
        raise outcome.error
    if outcome.status == "interrupted":
        raise Interrupted(
            f"run {outcome.run_id} stopped on request; what it committed is kept and the "
            "next run goes on from there"
        )
    if outcome.exit_code:
        sys.exit(outcome.exit_code)


@cli.command()
@click.option("--now", "run_now", is_flag=True, help="Also run once right away.")
@pass_app
def worker(app: App, run_now: bool) -> None:
    """Run on schedule.cron until SIGTERM/SIGINT (the nightly container's command)."""
    from sfsync.scheduler import Worker

    sys.exit(Worker(app.settings, run_now=run_now).serve())


@cli.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_app
def runs(app: App, limit: int, fmt: str) -> None:
    """Recent runs: status, per-stage counts, API calls used, duration."""
    import json

    from sfsync.console import print_table
    from sfsync.runs_view import run_rows
    from sfsync.warehouse import open_warehouse

    warehouse = open_warehouse(app.settings.database)
    try:
        rows = run_rows(warehouse, limit)
    finally:
        warehouse.dispose()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    print_table(
        f"last {len(rows)} runs",
        [
            "run",
            "kind",
            "status",
            "started (UTC)",
            "seconds",
            "API calls",
            "synced",
            "open",
            "new",
            "resolved",
            "created",
            "completed",
            "failed",
            "reassigned",
            "error",
        ],
        [
            [
                r["id"],
                r["kind"],
                r["status"],
                r["started_at"][:19].replace("T", " "),
                r["seconds"],
                r["api_calls"],
                r["synced"],
                r["open"],
                r["new"],
                r["resolved"],
                r["tasks_created"],
                r["tasks_completed"],
                r["tasks_failed"],
                r["reassigned"],
                (r["error"] or "")[:60],
            ]
            for r in rows
        ],
    )


# --------------------------------------------------------------------------- demo


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("sfsync-demo"),
    show_default=True,
    help="Where the demo writes its org, warehouse, config and report.",
)
@click.option("--opportunities", default=3000, show_default=True, type=click.IntRange(10, 200_000))
@click.option("--seed", default=42, show_default=True, type=int)
@click.pass_context
def demo(ctx: click.Context, directory: Path, opportunities: int, seed: int) -> None:
    """Everything on embedded defaults: a generated dev org, a SQLite warehouse, one run."""
    from sfsync.demo import run_demo

    app = ctx.find_object(App)
    if app is not None and app.log_format is None:
        # The demo talks to a person: keep the event stream out of the way unless asked.
        configure_logging("json" if not sys.stderr.isatty() else "console", level="WARNING")
    sys.exit(run_demo(directory, opportunities=opportunities, seed=seed, echo=click.echo))


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="sfsync")
    except SystemExit as done:
        # The command has finished; a reader that went away since only loses the tail.
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _reader_went_away(done.code if isinstance(done.code, int) else EXIT_OK)
        raise
    except BaseException as exc:  # pragma: no cover - SfsyncGroup catches first
        from sfsync.console import printable

        click.echo(f"error: {printable(redact_text(str(exc)), newlines=True)}", err=True)
        sys.exit(EXIT_INTERNAL)
