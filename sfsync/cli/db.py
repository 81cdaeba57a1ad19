"""``sfsync db upgrade`` and ``sfsync db current``: the warehouse's schema."""

from __future__ import annotations

import sys

import click

from sfsync.cli._app import App, global_options, pass_app
from sfsync.errors import EXIT_USAGE
from sfsync.logging import get_logger

__all__ = ["db"]


@click.group("db")
@global_options
def db() -> None:
    """Warehouse schema: create, upgrade, inspect."""


@db.command("upgrade")
@global_options
@pass_app
def db_upgrade(app: App) -> None:
    """Create or upgrade the warehouse schema to this sfsync's head revision."""
    from sfsync.warehouse import current_revision, open_warehouse, upgrade
    from sfsync.warehouse.lock import run_lock_held

    warehouse = open_warehouse(app.settings.database, require_head=False, create=True)
    try:
        with warehouse.engine.connect() as conn:
            existing = current_revision(conn) is not None
        # Not under a running sync or run: an existing warehouse is upgraded holding the
        # run lock (a new one has no lock table yet, and nobody can be using it).
        with run_lock_held(warehouse, take=existing), warehouse.engine.begin() as conn:
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
@global_options
@pass_app
def db_current(app: App) -> None:
    """Show the warehouse's schema revision and this sfsync's head (exit 2: upgrade needed)."""
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
    if current != head:
        # A deployment gate: `sfsync db current && sfsync worker`.
        sys.exit(EXIT_USAGE)
