"""``sfsync demo``: a generated dev org, a SQLite warehouse and one run, on defaults."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sfsync.cli._app import App, global_options
from sfsync.logging import configure_logging

__all__ = ["demo"]


@click.command("demo")
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
@global_options
@click.pass_context
def demo(ctx: click.Context, directory: Path, opportunities: int, seed: int) -> None:
    """Everything on embedded defaults: a generated dev org, a SQLite warehouse, one run."""
    from sfsync.demo import run_demo

    app = ctx.find_object(App)
    if app is not None and app.log_format is None:
        # The demo talks to a person: keep the event stream out of the way unless asked.
        configure_logging("json" if not sys.stderr.isatty() else "console", level="WARNING")
    sys.exit(run_demo(directory, opportunities=opportunities, seed=seed, echo=click.echo))
