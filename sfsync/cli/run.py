"""``sfsync run``, ``sfsync worker`` and ``sfsync runs``: recorded runs, now or on schedule."""

from __future__ import annotations

import signal
import sys

import click

from sfsync.cli._app import App, global_options, parse_iso_date, pass_app
from sfsync.errors import Interrupted, UsageError
from sfsync.stop import StopSignal

__all__ = ["run_command", "runs", "worker"]


@click.command("run")
@click.option(
    "--as-of",
    "as_of",
    metavar="YYYY-MM-DD",
    help="Audit as of this past date (a backfill: the write-back refuses to act on it).",
)
@click.option("--apply", is_flag=True, help="Perform the write-back (default: preview only).")
@click.option("--force", is_flag=True, help="Write back even after a partial sync or over the cap.")
@global_options
@pass_app
def run_command(app: App, as_of: str | None, apply: bool, force: bool) -> None:
    """Sync, audit and write back as one recorded run (holding the run lock)."""
    from sfsync import runner
    from sfsync.context import run_context

    day = parse_iso_date(as_of, "--as-of")
    if day is not None:
        from zoneinfo import ZoneInfo

        from sfsync.audit import today_in

        tz = app.settings.audit.timezone
        today = today_in(ZoneInfo(tz))
        if day > today:
            raise UsageError(
                f"--as-of: {day.isoformat()} is in the future (today is {today.isoformat()} in "
                f"{tz}); a run records its audit and writes back from it, so it audits today "
                f"or a past day. For a what-if, use `sfsync audit --as-of {day.isoformat()}`"
            )
    # SIGTERM (a CronJob's pod going away) finishes the current page or batch first.
    with (
        StopSignal().on_signals(signal.SIGTERM) as stop,
        run_context(app.settings, stop=stop, as_of=day) as ctx,
    ):
        outcome = runner.run(ctx, apply=apply, force=force)
    stages = ", ".join(f"{name} {status}" for name, status in outcome.stages.items())
    click.echo(
        f"run {outcome.run_id}: {outcome.status} ({stages}) in {outcome.seconds:.1f}s, "
        f"{outcome.api_calls} API calls"
    )
    click.echo(outcome.summary())
    if outcome.error is not None:
        raise outcome.error
    if outcome.status == "interrupted":
        raise Interrupted(
            f"run {outcome.run_id} stopped on request; what it committed is kept and the "
            "next run goes on from there"
        )
    if outcome.exit_code:
        sys.exit(outcome.exit_code)


@click.command("worker")
@click.option("--now", "run_now", is_flag=True, help="Also run once right away.")
@global_options
@pass_app
def worker(app: App, run_now: bool) -> None:
    """Run on schedule.cron until SIGTERM/SIGINT (the nightly container's command)."""
    from sfsync.scheduler import Worker

    sys.exit(Worker(app.settings, run_now=run_now).serve())


@click.command("runs")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@global_options
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
