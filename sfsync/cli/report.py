"""``sfsync report``: parse, call :func:`sfsync.report.write_report`, print, exit."""

from __future__ import annotations

from pathlib import Path

import click

from sfsync.cli._app import App, global_options, parse_iso_date, pass_app

__all__ = ["report_command"]


@click.command("report")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    metavar="FILE.html",
    help="Where to write the self-contained HTML page (replaced atomically).",
)
@click.option(
    "--as-of",
    "as_of",
    metavar="YYYY-MM-DD",
    help="Compute the pipeline-quality metrics as of this date (default today).",
)
@global_options
@pass_app
def report_command(app: App, out: Path, as_of: str | None) -> None:
    """Write the pipeline-hygiene report: findings, owners, slip metrics, trends, runs."""
    from sfsync.report import write_report
    from sfsync.warehouse import open_warehouse

    day = parse_iso_date(as_of, "--as-of")
    warehouse = open_warehouse(app.settings.database)
    try:
        path = write_report(warehouse, app.settings, out, as_of=day)
    finally:
        warehouse.dispose()
    click.echo(f"wrote {path}")
