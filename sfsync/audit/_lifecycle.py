"""The findings lifecycle (docs/rules.md, "Findings"), applied set-based in one transaction.

The matches of the evaluated rules are loaded into a temporary table; four
statements then bring ``finding`` in line with it:

1. live findings (open or waived) of an evaluated rule with no match: resolved;
2. live findings whose match differs (details, profile, severity, settings
   hash, or waived-ness): updated in place;
3. matches without a live finding: a new finding opens;
4. nothing else is written, so a re-audit with nothing changed changes no row.

Waived means an active waiver (``until >= as_of``) exists for (rule,
opportunity): it is decided in SQL from the ``waiver`` table, so a waiver's
expiry turns the finding back to ``open`` at the next audit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any, cast

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.sql.elements import ColumnElement

from sfsync.audit.rules import RuleMatch
from sfsync.warehouse._engine import Warehouse
from sfsync.warehouse.models import Finding, Waiver
from sfsync.warehouse.types import JsonDocument, UtcDateTime

__all__ = [
    "FINDING",
    "LIVE_STATUSES",
    "Merged",
    "ResultLoader",
    "live_counts",
    "merge_findings",
    "no_jit",
    "waiver_active",
    "write_transaction",
]

FINDING = cast(Table, Finding.__table__)
WAIVER = cast(Table, Waiver.__table__)
LIVE_STATUSES = ("open", "waived")

_RESULT = Table(
    "sfsync_audit_result_tmp",
    MetaData(),
    Column("rule", String(64), primary_key=True),
    Column("opportunity_id", String(18), primary_key=True),
    Column("profile", String(32), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("settings_hash", String(64), nullable=False),
    Column("details", JsonDocument(), nullable=False),
    # The live finding of (rule, opportunity), linked before anything is written.
    Column("finding_id", Integer(), nullable=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

_BATCH = 5000
_SQLITE_INSERT = (
    "INSERT INTO sfsync_audit_result_tmp "
    "(rule, opportunity_id, profile, severity, settings_hash, details) VALUES (?, ?, ?, ?, ?, ?)"
)


@contextmanager
def write_transaction(warehouse: Warehouse, *, commit: bool = True) -> Iterator[Connection]:
    """One transaction for the whole audit: all of it commits, or none of it.

    On PostgreSQL it is REPEATABLE READ so every rule sees the same snapshot of
    the warehouse. On SQLite it begins IMMEDIATE: the write lock is taken up
    front, so a concurrent sync cannot make the upgrade from reader to writer
    fail half-way. Without ``commit`` (a what-if audit) it is rolled back at the
    end: the block sees its own writes, and nobody else ever does.
    """
    with warehouse.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin() as transaction:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                no_jit(conn)
            yield conn
            if not commit:
                transaction.rollback()


def no_jit(conn: Connection) -> None:
    """Plan the audit's PostgreSQL queries for reading every row, without JIT.

    The rule queries are single scans whose cost estimates cross the JIT
    thresholds; compiling them takes seconds and saves milliseconds (measured:
    3.3 s of JIT for a 0.4 s query at 50,000 opportunities). They are streamed
    through a server-side cursor, which PostgreSQL otherwise plans for the
    first 10 % of the rows (``cursor_tuple_fraction``): nested loops where the
    whole result wants hash joins.
    """
    conn.exec_driver_sql("SET LOCAL jit = off")
    conn.exec_driver_sql("SET LOCAL cursor_tuple_fraction = 1.0")


class ResultLoader:
    """Streams rule matches into the temporary result table, in batches."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{_RESULT.name}")
        _RESULT.create(conn)

    def load(
        self,
        matches: Iterable[RuleMatch],
        *,
        severity: str,
        settings_hash: Mapping[str, str],
    ) -> int:
        """Load matches of one rule; ``settings_hash`` maps profile -> hash. Returns the count."""
        count = 0
        iterator = iter(matches)
        while batch := list(islice(iterator, _BATCH)):
            rows = [
                (m.rule, m.opportunity_id, m.profile, severity, settings_hash[m.profile], m.details)
                for m in batch
            ]
            self._write(rows)
            count += len(rows)
        return count

    def _write(self, rows: Sequence[tuple[str, str, str, str, str, dict[str, Any]]]) -> None:
        if self.conn.dialect.name == "postgresql":
            # COPY is an order of magnitude faster than INSERT for bulk loads on PostgreSQL.
            dbapi: Any = self.conn.connection.dbapi_connection
            columns = "rule, opportunity_id, profile, severity, settings_hash, details"
            with (
                dbapi.cursor() as cursor,
                cursor.copy(f"COPY {_RESULT.name} ({columns}) FROM STDIN") as copy,
            ):
                for rule, opp, profile, severity, digest, details in rows:
                    copy.write_row((rule, opp, profile, severity, digest, json.dumps(details)))
            return
        # SQLite: one executemany on the driver, JSON serialized once per row, the
        # way SQLAlchemy's JSON type would (json.dumps): findings copy this text.
        dbapi_sqlite: Any = self.conn.connection.dbapi_connection
        dbapi_sqlite.executemany(
            _SQLITE_INSERT,
            [
                (rule, opp, profile, severity, digest, json.dumps(details))
                for rule, opp, profile, severity, digest, details in rows
            ],
        )

    def finish(self) -> None:
        """Fresh statistics for the merge's joins (PostgreSQL).

        The result table went from empty to possibly a million rows, and
        ``finding`` may have grown by as much in the previous audit, before
        autovacuum looked at it: with stale statistics the planner joins them
        with nested sequential scans (measured: 26 s instead of 0.3 s at
        50,000 opportunities). ANALYZE samples, so it stays cheap.
        """
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql(f"ANALYZE {_RESULT.name}")
            self.conn.exec_driver_sql("ANALYZE finding")

    def drop(self) -> None:
        _RESULT.drop(self.conn)


def waiver_active(rule: Any, opportunity_id: Any, as_of: date) -> ColumnElement[bool]:
    """An active waiver exists for (rule, opportunity) on ``as_of``."""
    return exists(
        select(WAIVER.c.id).where(
            WAIVER.c.rule == rule,
            WAIVER.c.opportunity_id == opportunity_id,
            WAIVER.c.until >= as_of,
        )
    )


@dataclass(frozen=True)
class Merged:
    new: dict[str, int]
    resolved: dict[str, int]
    updated: int


def merge_findings(
    conn: Connection, *, rules: tuple[str, ...], run_id: int | None, as_of: date
) -> Merged:
    """Bring the live findings of ``rules`` in line with the loaded matches."""
    f, r = FINDING, _RESULT
    now = datetime.now(UTC)
    live = f.c.status.in_(LIVE_STATUSES)
    as_of_value = literal(as_of, Date())
    target_status = case(
        (waiver_active(r.c.rule, r.c.opportunity_id, as_of), "waived"), else_="open"
    )

    # Link each match to its live finding first, while ``finding`` is unchanged:
    # the statements below then never read the table they are writing (an
    # INSERT ... WHERE NOT EXISTS (SELECT ... FROM finding) re-scans the rows it
    # has just inserted, quadratic on PostgreSQL when the planner picks a seq scan).
    conn.execute(
        update(r)
        .where(f.c.rule == r.c.rule, f.c.opportunity_id == r.c.opportunity_id, live)
        .values(finding_id=f.c.id)
    )

    resolved: dict[str, int] = {}
    for rule in rules:
        matched = exists(
            select(r.c.rule).where(r.c.rule == f.c.rule, r.c.opportunity_id == f.c.opportunity_id)
        )
        result = conn.execute(
            update(f)
            .where(f.c.rule == rule, live, ~matched)
            .values(
                status="resolved",
                resolved_run_id=run_id,
                resolved_at=now,
                resolved_as_of=as_of,
            )
        )
        resolved[rule] = int(result.rowcount or 0)

    changed = conn.execute(
        update(f)
        .where(
            f.c.id == r.c.finding_id,
            or_(
                f.c.status != target_status,
                f.c.details != r.c.details,
                f.c.profile != r.c.profile,
                f.c.severity != r.c.severity,
                f.c.settings_hash != r.c.settings_hash,
            ),
        )
        .values(
            status=target_status,
            details=r.c.details,
            profile=r.c.profile,
            severity=r.c.severity,
            settings_hash=r.c.settings_hash,
            last_seen_run_id=run_id,
        )
    )

    new: dict[str, int] = {}
    for rule in rules:
        source = select(
            r.c.rule,
            r.c.opportunity_id,
            target_status,
            r.c.profile,
            r.c.severity,
            r.c.details,
            r.c.settings_hash,
            literal(run_id, Integer()),
            literal(run_id, Integer()),
            literal(now, UtcDateTime()),
            as_of_value,
        ).where(r.c.rule == rule, r.c.finding_id.is_(None))
        result = conn.execute(
            insert(f).from_select(
                [
                    "rule",
                    "opportunity_id",
                    "status",
                    "profile",
                    "severity",
                    "details",
                    "settings_hash",
                    "opened_run_id",
                    "last_seen_run_id",
                    "opened_at",
                    "opened_as_of",
                ],
                source,
            ),
            # INSERT ... SELECT reports its row count only when asked to (SQLAlchemy 2).
            execution_options={"preserve_rowcount": True},
        )
        new[rule] = int(result.rowcount or 0)
    return Merged(new=new, resolved=resolved, updated=int(changed.rowcount or 0))


def live_counts(conn: Connection, rules: tuple[str, ...]) -> dict[tuple[str, str, str], int]:
    """(rule, status, severity) -> number of live findings."""
    rows = conn.execute(
        select(FINDING.c.rule, FINDING.c.status, FINDING.c.severity, func.count())
        .where(FINDING.c.rule.in_(list(rules)), FINDING.c.status.in_(LIVE_STATUSES))
        .group_by(FINDING.c.rule, FINDING.c.status, FINDING.c.severity)
    )
    return {(row[0], row[1], row[2]): int(row[3]) for row in rows}
