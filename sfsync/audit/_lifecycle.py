"""The findings lifecycle (docs/rules.md, "Findings"), applied set-based in one transaction.

Rule by rule, one statement evaluates the rule's query, builds each match's
details in SQL, links the match to its live finding (open or waived) and
compares the two, into a temporary table (on PostgreSQL a ``CREATE TABLE AS``,
which may run in parallel where an ``INSERT ... SELECT`` may not). Then, each
only when it has rows to write:

1. live findings of the rule with no match: resolved;
2. live findings whose match differs (details, profile, severity, settings
   hash, or waived-ness): updated in place;
3. matches without a live finding: a new finding opens;
4. nothing else is written, so a re-audit with nothing changed changes no row.

Details compare as stored: on PostgreSQL key by key against the ``jsonb``,
without building the new document for a finding that keeps its details; on SQLite
as JSON text (both sides spelled by the same SQL, so the same values are the same
text). See ``sfsync.warehouse.dialect.json_differs``.

Waived means an active waiver (``until >= as_of``) exists for (rule,
opportunity): it is decided in SQL from the ``waiver`` table, so a waiver's
expiry turns the finding back to ``open`` at the next audit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.sql.expression import Executable

from sfsync.audit._context import AuditContext
from sfsync.audit._zone import drop_zone, load_zone
from sfsync.audit.rules import get_rule
from sfsync.warehouse._engine import Warehouse
from sfsync.warehouse.dialect import json_differs, json_object
from sfsync.warehouse.models import Finding, Waiver, table_of
from sfsync.warehouse.types import JsonDocument, UtcDateTime

__all__ = [
    "FINDING",
    "FindingMerger",
    "RuleMerge",
    "no_jit",
    "waiver_active",
    "write_transaction",
]

FINDING = table_of(Finding)
WAIVER = table_of(Waiver)

# One rule's matches at a time: the live finding each one is, and its details only
# where the finding must change (a new one, or different details, profile, severity,
# settings hash or waived-ness). A match of an unchanged finding is a narrow row.
_RESULT = Table(
    "sfsync_audit_result_tmp",
    MetaData(),
    Column("opportunity_id", String(18), nullable=False),
    Column("profile", String(32), nullable=False),
    Column("finding_id", Integer(), nullable=True),
    Column("details", JsonDocument(), nullable=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

# The matches of a rule whose details are computed in Python (see Rule.details_sql).
_MATCHES = Table(
    "sfsync_audit_match_tmp",
    MetaData(),
    Column("opportunity_id", String(18), nullable=False),
    Column("profile", String(32), nullable=False),
    Column("details", JsonDocument(), nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

# Literal, so that SQLite and PostgreSQL see the predicate of the partial index
# uq_finding_live_rule_opportunity and use it.
_LIVE = FINDING.c.status.in_([literal_column("'open'"), literal_column("'waived'")])

_BATCH = 5000
_SQLITE_INSERT = (
    "INSERT INTO sfsync_audit_match_tmp (opportunity_id, profile, details) VALUES (?, ?, ?)"
)


class _CreateTempTableAs(Executable, ClauseElement):
    """``CREATE TEMPORARY TABLE <table> ON COMMIT DROP AS <select>`` (PostgreSQL).

    PostgreSQL plans the SELECT of a ``CREATE TABLE AS`` with parallel workers, as it
    would a plain SELECT, and an ``INSERT ... SELECT`` without them (measured: 0.52 s
    against 0.69 s for close_date_past's staging at 200,000 opportunities).
    """

    inherit_cache = False

    def __init__(self, table: Table, select: Any) -> None:
        self.table = table
        self.select = select


@compiles(_CreateTempTableAs)
def _create_temp_table_as(element: _CreateTempTableAs, compiler: SQLCompiler, **kw: Any) -> str:
    query = compiler.process(element.select, **kw)
    return f"CREATE TEMPORARY TABLE {element.table.name} ON COMMIT DROP AS {query}"


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


def _statistics_stale(conn: Connection) -> bool:
    """Whether ``finding`` was never analyzed, or its pages are off by more than a tenth
    from what its statistics recorded.

    ``finding`` only grows (resolved findings stay), one audit at a time. Comparing
    its pages now with the pages ANALYZE saw costs two catalog reads; counting its rows
    read the whole table in every audit (0.15 s at 1,000,000 opportunities, a fifth of
    an audit of missing_rev_rec_terms with nothing changed). A night that rewrites most
    findings also adds pages, so the next one may analyze again: a sample of 30,000
    rows, whatever the table's size.
    """
    planned, planned_pages, pages = conn.exec_driver_sql(
        "SELECT reltuples, relpages, pg_relation_size(oid) / current_setting('block_size')::int "
        "FROM pg_class WHERE oid = 'finding'::regclass"
    ).one()
    if float(planned) < 0:  # never analyzed
        return True
    return bool(abs(int(pages) - int(planned_pages)) > max(int(planned_pages), 100) / 10)


@dataclass(frozen=True)
class RuleMerge:
    """What merging one rule's matches did to ``finding``, and the live findings it left.

    After the merge every match is one live finding and every live finding of the rule
    a match, at the rule's severity: ``live`` is the number of matches, ``waived`` those
    with an active waiver.
    """

    new: int
    resolved: int
    updated: int
    live: int
    waived: int


class FindingMerger:
    """Brings the live findings of one rule after another in line with the rule's matches.

    For each rule, one INSERT ... SELECT runs the rule's query, builds each match's
    details in SQL (:meth:`Rule.details_sql`), links the match to its live finding
    and compares the two, into the temporary result table; the statements of the
    module docstring then run only when some finding must change. A rule without
    SQL details has its matches loaded from Python first (COPY on PostgreSQL).
    """

    def __init__(self, conn: Connection, ctx: AuditContext, *, run_id: int | None) -> None:
        self.conn = conn
        self.ctx = ctx
        self.run_id = run_id
        self.dialect = conn.dialect.name
        self.now = datetime.now(UTC)
        # On PostgreSQL the result table is created by each rule's staging statement.
        self.temporary = (_MATCHES,) if self.dialect == "postgresql" else (_RESULT, _MATCHES)
        for table in self.temporary:
            if self.dialect == "sqlite":
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS temp.{table.name}")
            table.create(conn)
        load_zone(conn, ctx)
        if self.dialect == "postgresql" and _statistics_stale(conn):
            # The staging joins every match to ``finding``, which may have grown by a
            # million rows in the previous audit, before autovacuum looked at it: with
            # stale statistics the planner picks nested sequential scans (measured:
            # 26 s instead of 0.3 s at 50,000 opportunities).
            conn.exec_driver_sql("ANALYZE finding")
        if self.dialect == "postgresql":
            # From here on the only ANALYZE is of a rule's result table, whose writes
            # need its row count and how many rows carry details, not histograms of
            # JSON: 3,000 sampled rows instead of 30,000 (measured: 11-15 ms against
            # 50-100 ms for stale_last_modified at 1,000,000 opportunities).
            conn.exec_driver_sql("SET LOCAL default_statistics_target = 10")

    def merge(self, rule_id: str) -> RuleMerge:
        """Evaluate ``rule_id`` and merge its matches into ``finding``."""
        ctx, conn = self.ctx, self.conn
        rule = get_rule(rule_id)
        query = rule.query(ctx, self.dialect).subquery("matched")
        fields = rule.details_sql(ctx, query.c, self.dialect)
        if fields is None:
            self._load_python_matches(rule_id)
            opportunity_id: ColumnElement[Any] = _MATCHES.c.opportunity_id
            profile: ColumnElement[Any] = _MATCHES.c.profile
            details: ColumnElement[Any] = _MATCHES.c.details
            changed = FINDING.c.details != details
            source: Any = _MATCHES
        else:
            opportunity_id = query.c.id
            profile = ctx.profile_column(query.c.scope_value)
            details = json_object(fields, self.dialect)
            changed = json_differs(FINDING.c.details, fields, self.dialect)
            source = query
        severity = ctx.settings.rule(rule_id).severity
        status, waivers = self._status(rule_id)
        settings_hash = self._settings_hash(rule_id)
        f = FINDING
        differs = or_(
            f.c.id.is_(None),
            changed,
            f.c.profile != profile,
            f.c.severity != severity,
            f.c.settings_hash != settings_hash(profile),
            f.c.status != status(opportunity_id),
        )
        staged = select(
            opportunity_id.label("opportunity_id"),
            profile.label("profile"),
            f.c.id.label("finding_id"),
            case((differs, details), else_=null()).label("details"),
        ).select_from(
            source.outerjoin(
                f, and_(f.c.rule == rule_id, f.c.opportunity_id == opportunity_id, _LIVE)
            )
        )
        if self.dialect == "postgresql":
            conn.execute(_CreateTempTableAs(_RESULT, staged))
        else:
            conn.execute(insert(_RESULT).from_select([c.name for c in _RESULT.c], staged))
        if fields is None:
            conn.execute(delete(_MATCHES))
        merged = self._apply(rule_id, severity, status, settings_hash, waivers=waivers)
        if self.dialect == "postgresql":
            _RESULT.drop(conn)
        else:
            conn.execute(delete(_RESULT))
        return merged

    def _apply(
        self,
        rule_id: str,
        severity: str,
        status: Callable[[Any], ColumnElement[Any]],
        settings_hash: Callable[[Any], ColumnElement[Any]],
        *,
        waivers: bool,
    ) -> RuleMerge:
        conn, f, r = self.conn, FINDING, _RESULT
        total, linked, changing = conn.execute(
            select(func.count(), func.count(r.c.finding_id), func.count(r.c.details))
        ).one()
        new = total - linked
        updated = changing - new
        live = conn.execute(
            select(func.count()).select_from(f).where(f.c.rule == rule_id, _LIVE)
        ).scalar_one()
        if self.dialect == "postgresql" and (changing or live > linked):
            self.conn.exec_driver_sql(f"ANALYZE {_RESULT.name}")
        resolved = 0
        if live > linked:  # some live finding has no match any more
            if self.dialect == "postgresql":
                matched: ColumnElement[bool] = exists(
                    select(r.c.finding_id).where(r.c.finding_id == f.c.id)
                )
            else:  # one ephemeral index over the ids, not a scan per finding
                matched = f.c.id.in_(select(r.c.finding_id).where(r.c.finding_id.is_not(None)))
            resolved = conn.execute(
                update(f)
                .where(f.c.rule == rule_id, _LIVE, ~matched)
                .values(
                    status="resolved",
                    resolved_run_id=self.run_id,
                    resolved_at=self.now,
                    resolved_as_of=self.ctx.as_of,
                )
            ).rowcount
        if updated:
            conn.execute(
                update(f)
                .where(f.c.id == r.c.finding_id, r.c.details.is_not(None))
                .values(
                    status=status(r.c.opportunity_id),
                    details=r.c.details,
                    profile=r.c.profile,
                    severity=severity,
                    settings_hash=settings_hash(r.c.profile),
                    last_seen_run_id=self.run_id,
                )
            )
        if new:
            run_id = literal(self.run_id, Integer())
            source = select(
                literal(rule_id),
                r.c.opportunity_id,
                status(r.c.opportunity_id),
                r.c.profile,
                literal(severity),
                r.c.details,
                settings_hash(r.c.profile),
                run_id,
                run_id,
                literal(self.now, UtcDateTime()),
                literal(self.ctx.as_of, Date()),
            ).where(r.c.finding_id.is_(None))
            conn.execute(
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
                )
            )
        waived = 0
        if waivers:
            waived = conn.execute(
                select(func.count()).where(status(r.c.opportunity_id) == "waived")
            ).scalar_one()
        return RuleMerge(
            new=new, resolved=int(resolved or 0), updated=updated, live=total, waived=waived
        )

    def _status(self, rule_id: str) -> tuple[Callable[[Any], ColumnElement[Any]], bool]:
        """``waived`` with an active waiver for (rule, opportunity), else ``open``; and
        whether the rule has any active waiver at all."""
        as_of = self.ctx.as_of
        any_waiver = self.conn.execute(
            select(WAIVER.c.id).where(WAIVER.c.rule == rule_id, WAIVER.c.until >= as_of).limit(1)
        ).first()
        if any_waiver is None:
            return (lambda _opportunity_id: literal("open")), False
        return (
            lambda opportunity_id: case(
                (waiver_active(literal(rule_id), opportunity_id, as_of), literal("waived")),
                else_=literal("open"),
            )
        ), True

    def _settings_hash(self, rule_id: str) -> Callable[[Any], ColumnElement[Any]]:
        """The settings hash of ``rule_id`` for a profile (an expression)."""
        hashes = {p: self.ctx.settings_hash(rule_id, p) for p in self.ctx.profiles()}
        first, *others = hashes
        if not others:
            return lambda _profile: literal(hashes[first])
        return lambda profile: case(
            *[(profile == p, literal(hashes[p])) for p in others], else_=literal(hashes[first])
        )

    def _load_python_matches(self, rule_id: str) -> None:
        """Run the rule's query and :meth:`Rule.match` per row, into the matches table."""
        rule = get_rule(rule_id)
        result = self.conn.execute(
            rule.query(self.ctx, self.dialect), execution_options={"yield_per": _BATCH}
        )
        matches = (rule.match(self.ctx, row) for row in result)
        while batch := list(islice(matches, _BATCH)):
            self._write([(m.opportunity_id, m.profile, json.dumps(m.details)) for m in batch])

    def _write(self, rows: Sequence[tuple[str, str, str]]) -> None:
        dbapi: Any = self.conn.connection.dbapi_connection
        if self.dialect == "postgresql":
            # COPY is an order of magnitude faster than INSERT for bulk loads on PostgreSQL.
            columns = "opportunity_id, profile, details"
            with (
                dbapi.cursor() as cursor,
                cursor.copy(f"COPY {_MATCHES.name} ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            return
        dbapi.executemany(_SQLITE_INSERT, rows)

    def close(self) -> None:
        for table in self.temporary:
            table.drop(self.conn)
        drop_zone(self.conn, self.ctx)


def waiver_active(rule: Any, opportunity_id: Any, as_of: date) -> ColumnElement[bool]:
    """An active waiver exists for (rule, opportunity) on ``as_of``."""
    return exists(
        select(WAIVER.c.id).where(
            WAIVER.c.rule == rule,
            WAIVER.c.opportunity_id == opportunity_id,
            WAIVER.c.until >= as_of,
        )
    )
