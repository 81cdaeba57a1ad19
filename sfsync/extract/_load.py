"""Writing rows into the warehouse: set-based upserts, delete marks, snapshots.

Every statement is one round trip per batch (``INSERT ... ON CONFLICT (id) DO
UPDATE`` with executemany), on SQLite and PostgreSQL alike; a sync's pages go
through :class:`PageUpsert`, which on PostgreSQL copies a page's rows into a
staging table and upserts them in one statement.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Dialect,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session

from sfsync.warehouse import dialect as dialect_sql
from sfsync.warehouse.models import Opportunity, OpportunitySnapshot, SObjectRow, table_of

__all__ = [
    "PageUpsert",
    "id_scratch_table",
    "mark_deleted",
    "mark_missing_deleted",
    "record_snapshots",
    "upsert_rows",
]


def _insert(session: Session | Connection, table: Any) -> Any:
    dialect = (
        session.get_bind().dialect.name if isinstance(session, Session) else session.dialect.name
    )
    return dialect_sql.insert(table, dialect)


def upsert_rows(session: Session, model: type[SObjectRow], rows: Sequence[dict[str, Any]]) -> int:
    """Insert or update ``rows`` (database-native values, see ``_convert``) by Id.

    The statement is built and compiled by SQLAlchemy once per table and column
    set; the rows go to the driver's ``executemany`` as they are.
    """
    if not rows:
        return 0
    connection = session.connection()
    columns = tuple(rows[0])
    sql, order = _compiled_upsert(connection.dialect, model, columns)
    if order is not None:
        connection.exec_driver_sql(sql, [tuple(row[c] for c in order) for row in rows])
    else:
        connection.exec_driver_sql(sql, list(rows))
    return len(rows)


class PageUpsert:
    """The rows of one page, upserted by Id in the page's transaction.

    On SQLite each batch is an ``executemany`` of the upsert as it comes. On
    PostgreSQL each batch is ``COPY``-ed into a temporary staging table, and
    :meth:`finish` upserts the whole page from it in one ``INSERT ... SELECT``:
    measured on 521,732 OpportunityHistory rows, 1.7x faster than
    ``executemany`` to insert and half the client's CPU to insert or update.
    The staging table is emptied at commit; its name carries a digest of the
    column set, so a connection reused with other columns gets another one.
    """

    def __init__(self, model: type[SObjectRow]) -> None:
        self.model = model
        self._staged: tuple[str, ...] | None = None  # the columns of the rows staged

    def add(self, session: Session, rows: Sequence[dict[str, Any]]) -> int:
        """Write (SQLite) or stage (PostgreSQL) ``rows``; returns how many."""
        if not rows:
            return 0
        connection = session.connection()
        if not dialect_sql.is_postgresql(connection.dialect.name):
            return upsert_rows(session, self.model, rows)
        columns = tuple(rows[0])
        if self._staged is not None and self._staged != columns:
            self.finish(session)  # a batch with other columns: upsert what is staged first
        stage, create, _ = _staging(connection.dialect, self.model, columns)
        if self._staged is None:
            connection.exec_driver_sql(create)
            self._staged = columns
        dbapi: Any = connection.connection.dbapi_connection
        with (
            dbapi.cursor() as cursor,
            cursor.copy(f"COPY {stage} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(tuple(row[c] for c in columns))
        return len(rows)

    def finish(self, session: Session) -> None:
        """Upsert what is staged (PostgreSQL; nothing to do on SQLite)."""
        if self._staged is None:
            return
        connection = session.connection()
        stage, _, upsert = _staging(connection.dialect, self.model, self._staged)
        connection.exec_driver_sql(upsert)
        connection.exec_driver_sql(f"TRUNCATE {stage}")
        self._staged = None

    def discard(self) -> None:
        """Forget what was staged (its transaction was rolled back)."""
        self._staged = None


@functools.lru_cache(maxsize=128)
def _staging(
    dialect: Dialect, model: type[SObjectRow], columns: tuple[str, ...]
) -> tuple[str, str, str]:
    """(staging table, its CREATE, the upsert from it) for ``model`` and ``columns``."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    table = table_of(model)
    digest = hashlib.sha256(",".join(columns).encode()).hexdigest()[:8]
    stage = f"sfsync_stage_{table.name}_{digest}"
    staged = Table(
        stage,
        MetaData(),
        # No constraints here: the upsert into the table checks the rows.
        *[Column(c, table.c[c].type) for c in columns],
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )
    create = str(CreateTable(staged, if_not_exists=True).compile(dialect=dialect))
    # A page read again after a broken transfer stages its rows twice: one per Id.
    rows = select(*[staged.c[c] for c in columns]).ext(postgresql.distinct_on(staged.c.id))
    stmt = postgresql.insert(table).from_select(list(columns), rows)
    updates: dict[str, Any] = {c: stmt.excluded[c] for c in columns if c != "id"}
    if model is Opportunity:
        updates.update(_last_human_updates(stmt, table))
    upsert = stmt.on_conflict_do_update(index_elements=["id"], set_=updates)
    return stage, create, str(upsert.compile(dialect=dialect))


@functools.lru_cache(maxsize=128)
def _compiled_upsert(
    dialect: Dialect, model: type[SObjectRow], columns: tuple[str, ...]
) -> tuple[str, tuple[str, ...] | None]:
    table = table_of(model)
    base = dialect_sql.insert(table, dialect.name)
    stmt = base.values({c: bindparam(c, type_=table.c[c].type) for c in columns})
    updates: dict[str, Any] = {c: stmt.excluded[c] for c in columns if c != "id"}
    if model is Opportunity:
        updates.update(_last_human_updates(stmt, table))
    compiled = stmt.on_conflict_do_update(index_elements=["id"], set_=updates).compile(
        dialect=dialect
    )
    order = tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
    return str(compiled), order


def _last_human_updates(stmt: Any, table: Any) -> dict[str, Any]:
    """Keep the stored human modification when the integration user wrote last.

    The incoming row marks ``last_human_assumed`` when sfsync's own user is the
    last modifier; then the previously seen human value wins, if there is one
    (docs/rules.md: sfsync's own writes never make a stale deal look fresh).
    """
    incoming_is_ours = stmt.excluded.last_human_assumed
    have_human = table.c.last_human_modified_date.is_not(None)
    keep = and_(incoming_is_ours, have_human)
    return {
        "last_human_modified_date": case(
            (keep, table.c.last_human_modified_date), else_=stmt.excluded.last_human_modified_date
        ),
        "last_human_modified_by_id": case(
            (keep, table.c.last_human_modified_by_id),
            else_=stmt.excluded.last_human_modified_by_id,
        ),
        "last_human_assumed": case(
            (keep, table.c.last_human_assumed), else_=stmt.excluded.last_human_assumed
        ),
    }


def mark_deleted(
    session: Session,
    model: type[SObjectRow],
    deleted: Iterable[tuple[str, datetime | None]],
    synced_at: datetime,
) -> int:
    """Mark ids deleted (``getDeleted``), unless the warehouse saw them change afterwards."""
    table = table_of(model)
    count = 0
    for record_id, deleted_at in deleted:
        condition = and_(table.c.id == record_id, table.c.is_deleted.is_(False))
        if deleted_at is not None:
            condition = and_(
                condition,
                or_(table.c.system_modstamp.is_(None), table.c.system_modstamp <= deleted_at),
            )
        result = session.execute(
            update(table).where(condition).values(is_deleted=True, synced_at=synced_at)
        )
        count += int(getattr(result, "rowcount", 0) or 0)
    return count


def mark_missing_deleted(
    session: Session, model: type[SObjectRow], seen: Table, synced_at: datetime, before: datetime
) -> int:
    """Mark live rows whose ids are not in ``seen`` deleted (an Id reconciliation sweep).

    Only rows the warehouse last saw change before ``before`` (the start of the
    sweep) are eligible: a record created during the sweep is not missing.
    """
    table = table_of(model)
    result = session.execute(
        update(table)
        .where(
            table.c.is_deleted.is_(False),
            or_(table.c.system_modstamp.is_(None), table.c.system_modstamp < before),
            table.c.id.not_in(select(seen.c.id)),
        )
        .values(is_deleted=True, synced_at=synced_at)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def id_scratch_table(name: str) -> Table:
    """A temporary table of ids (per connection) for reconciliation sweeps."""
    return Table(
        name,
        MetaData(),
        Column("id", String(18), primary_key=True),
        prefixes=["TEMPORARY"],
    )


def record_snapshots(
    session: Session,
    today: date,
    now: datetime,
    touched_since: datetime,
    *,
    stamped_since: datetime | None = None,
) -> int:
    """Snapshot open opportunities synced since ``touched_since`` whose close date or stage moved.

    One row per opportunity per day, only when the values differ from its latest
    snapshot: the table is a change log, the fallback history for slip metrics.
    ``stamped_since``: every opportunity synced since then has a SystemModstamp at or
    after it (the sync's window starts there), so only those are looked at.
    """
    opp = table_of(Opportunity)
    snap = table_of(OpportunitySnapshot)
    latest_day = (
        select(func.max(snap.c.captured_on))
        .where(snap.c.opportunity_id == opp.c.id)
        .correlate(opp)
        .scalar_subquery()
    )
    latest = snap.alias("latest")
    source = (
        select(
            opp.c.id,
            literal(today, snap.c.captured_on.type),
            opp.c.close_date,
            opp.c.stage_name,
            opp.c.amount,
            opp.c.is_closed,
            literal(now, snap.c.captured_at.type),
        )
        .select_from(
            opp.outerjoin(
                latest,
                and_(latest.c.opportunity_id == opp.c.id, latest.c.captured_on == latest_day),
            )
        )
        .where(
            opp.c.synced_at >= touched_since,
            opp.c.system_modstamp >= stamped_since if stamped_since is not None else true(),
            opp.c.is_deleted.is_(False),
            opp.c.is_closed.is_not(True),
            or_(
                latest.c.opportunity_id.is_(None),
                latest.c.close_date.is_distinct_from(opp.c.close_date),
                latest.c.stage_name.is_distinct_from(opp.c.stage_name),
            ),
        )
    )
    stmt = _insert(session, snap).from_select(
        [
            "opportunity_id",
            "captured_on",
            "close_date",
            "stage_name",
            "amount",
            "is_closed",
            "captured_at",
        ],
        source,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["opportunity_id", "captured_on"],
        set_={
            "close_date": stmt.excluded.close_date,
            "stage_name": stmt.excluded.stage_name,
            "amount": stmt.excluded.amount,
            "is_closed": stmt.excluded.is_closed,
            "captured_at": stmt.excluded.captured_at,
        },
    )
    # An INSERT's rowcount is only kept when asked for (psycopg would report -1).
    result = session.execute(stmt, execution_options={"preserve_rowcount": True})
    return int(getattr(result, "rowcount", 0) or 0)
