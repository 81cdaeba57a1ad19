"""``sfsync sync``: pull changes (or everything) into the warehouse, print per object."""

from __future__ import annotations

import signal

import click

from sfsync.cli._app import App, global_options, pass_app
from sfsync.errors import UsageError
from sfsync.stop import StopSignal

__all__ = ["sync"]


@click.command("sync")
@click.option(
    "--object",
    "objects",
    multiple=True,
    metavar="NAME",
    help="Sync only this object (repeatable). Default: sync.objects.",
)
@click.option("--full", is_flag=True, help="Re-pull everything and reconcile deletes.")
@global_options
@pass_app
def sync(app: App, objects: tuple[str, ...], full: bool) -> None:
    """Pull changes since the last watermark (or everything) into the warehouse."""
    from sfsync import extract
    from sfsync.config import SYNC_OBJECTS
    from sfsync.console import print_table, sync_progress
    from sfsync.context import run_context

    unknown = [name for name in objects if name not in SYNC_OBJECTS]
    if unknown:
        raise UsageError(
            f"--object: unknown object {unknown[0]!r}; sfsync syncs {', '.join(SYNC_OBJECTS)}"
        )
    with (
        sync_progress() as progress,
        StopSignal().on_signals(signal.SIGTERM) as stop,
        run_context(app.settings, stop=stop) as ctx,
    ):
        result = extract.run(ctx, objects=list(objects) or None, full=full, progress=progress)
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
