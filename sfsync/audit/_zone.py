"""Local dates in SQL, which SQLite cannot work out for a time zone on its own.

The business time zone's UTC offsets (:func:`sfsync.audit._calendar.utc_offsets`) go
into a small temporary table for the audit's transaction; the local date of an
instant is then the date of the instant plus the offset in force at it, looked up
by index. A zone with one offset (UTC, a fixed zone) needs no table. Both databases
use the offsets Python's ``zoneinfo`` knows, so a finding's day counts agree with
the rules' cutoffs, which Python computes, whatever time zone data the database has.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, Connection, Integer, MetaData, Table, select
from sqlalchemy.sql.elements import ColumnElement

from sfsync.audit._calendar import utc_offsets
from sfsync.warehouse.dialect import date_of_instant
from sfsync.warehouse.types import UtcDateTime

if TYPE_CHECKING:
    # The rules import this module when the config is validated: no ORM models then.
    from sfsync.audit._context import AuditContext

__all__ = ["drop_zone", "load_zone", "local_date"]


@cache
def _offsets() -> Table:
    """The offsets table, declared on first use: its ``postgresql_on_commit`` makes
    SQLAlchemy import its PostgreSQL dialect, which the config's validation of the
    rules (they import this module) need not pay for."""
    return Table(
        "sfsync_audit_zone_tmp",
        MetaData(),
        Column("starts_at", UtcDateTime(), primary_key=True),
        Column("offset_seconds", Integer(), nullable=False),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


def _fixed(ctx: AuditContext) -> int | None:
    offsets = utc_offsets(ctx.settings.timezone)
    return offsets[0][1] if len(offsets) == 1 else None


def load_zone(conn: Connection, ctx: AuditContext) -> None:
    """Create and fill the offsets table (in the caller's transaction), if the zone needs it."""
    if _fixed(ctx) is not None:
        return
    offsets = _offsets()
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{offsets.name}")
    offsets.create(conn)
    conn.execute(
        offsets.insert(),
        [
            {"starts_at": at, "offset_seconds": seconds}
            for at, seconds in utc_offsets(ctx.settings.timezone)
        ],
    )


def drop_zone(conn: Connection, ctx: AuditContext) -> None:
    if _fixed(ctx) is None:
        _offsets().drop(conn)


def local_date(ctx: AuditContext, instant: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """The date of ``instant`` in the business time zone (NULL for NULL); needs
    :func:`load_zone` in the same transaction."""
    fixed = _fixed(ctx)
    if fixed is not None:
        return date_of_instant(instant, fixed, dialect)
    offsets = _offsets()
    offset = (
        select(offsets.c.offset_seconds)
        .where(offsets.c.starts_at <= instant)
        .order_by(offsets.c.starts_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    return date_of_instant(instant, offset, dialect)
