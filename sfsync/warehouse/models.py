"""The warehouse schema: one table per synced Salesforce object, plus sfsync's bookkeeping.

Object tables carry typed columns for the fields the rules and the write-back
use, the full record as ``raw`` JSON, ``is_deleted`` (deletes are marked, never
dropped), the record's ``system_modstamp`` and our own ``synced_at``. Their
primary key is the 18-character Salesforce Id.

Schema changes are Alembic revisions only (``migrations/``); the naming
convention below makes autogenerate diffs stable on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Date,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sfsync.config import SYNC_OBJECTS
from sfsync.warehouse.types import JsonDocument, UtcDateTime

__all__ = [
    "OBJECT_MODELS",
    "Base",
    "CurrencyType",
    "Finding",
    "Opportunity",
    "OpportunityHistory",
    "OpportunityLineItem",
    "OpportunitySnapshot",
    "OpportunityStage",
    "Organization",
    "Product2",
    "RecordType",
    "Run",
    "RunLock",
    "SObjectRow",
    "SyncState",
    "Task",
    "User",
    "Waiver",
    "WritebackLedger",
    "live_rows",
    "table_of",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SfId = String(18)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UtcDateTime(),
        date: Date(),
        dict[str, Any]: JsonDocument(),
        float: Float(precision=53),
    }


class SObjectRow(Base):
    """Columns every synced object table has."""

    __abstract__ = True
    sobject: str = ""

    id: Mapped[str] = mapped_column(SfId, primary_key=True)
    raw: Mapped[dict[str, Any]]
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    system_modstamp: Mapped[datetime | None]
    synced_at: Mapped[datetime]


# --------------------------------------------------------------------------- objects


class Organization(SObjectRow):
    __tablename__ = "organization"
    sobject = "Organization"

    name: Mapped[str | None] = mapped_column(String(255))
    fiscal_year_start_month: Mapped[int | None]
    time_zone_sid_key: Mapped[str | None] = mapped_column(String(64))
    default_currency_iso_code: Mapped[str | None] = mapped_column(String(3))
    is_sandbox: Mapped[bool | None]


class User(SObjectRow):
    __tablename__ = "user"
    sobject = "User"

    username: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool | None]
    manager_id: Mapped[str | None] = mapped_column(SfId)
    user_type: Mapped[str | None] = mapped_column(String(64))


class RecordType(SObjectRow):
    __tablename__ = "record_type"
    sobject = "RecordType"

    name: Mapped[str | None] = mapped_column(String(255))
    developer_name: Mapped[str | None] = mapped_column(String(255))
    sobject_type: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool | None]


class OpportunityStage(SObjectRow):
    __tablename__ = "opportunity_stage"
    sobject = "OpportunityStage"

    api_name: Mapped[str | None] = mapped_column(String(255), index=True)
    master_label: Mapped[str | None] = mapped_column(String(255))
    sort_order: Mapped[int | None]
    is_active: Mapped[bool | None]
    is_closed: Mapped[bool | None]
    is_won: Mapped[bool | None]
    default_probability: Mapped[float | None]
    forecast_category_name: Mapped[str | None] = mapped_column(String(64))


class CurrencyType(SObjectRow):
    __tablename__ = "currency_type"
    sobject = "CurrencyType"

    iso_code: Mapped[str | None] = mapped_column(String(3), index=True)
    conversion_rate: Mapped[float | None]
    decimal_places: Mapped[int | None]
    is_active: Mapped[bool | None]
    is_corporate: Mapped[bool | None]


class Product2(SObjectRow):
    __tablename__ = "product2"
    sobject = "Product2"

    name: Mapped[str | None] = mapped_column(String(255))
    product_code: Mapped[str | None] = mapped_column(String(255))
    family: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool | None]


class Opportunity(SObjectRow):
    """The audited object.

    ``rev_rec_terms``, ``instrument_flag`` and ``scope_value`` hold the values of the
    custom fields named in ``audit.fields`` / ``audit.instrument.field`` /
    ``audit.scope.field``. ``last_human_modified_*`` is maintained by the sync: the
    latest modification by anyone but the integration user, kept when sfsync itself
    writes last (docs/rules.md, "last human modification").
    """

    __tablename__ = "opportunity"
    sobject = "Opportunity"

    name: Mapped[str | None] = mapped_column(String(255))
    account_id: Mapped[str | None] = mapped_column(SfId)
    owner_id: Mapped[str | None] = mapped_column(SfId, index=True)
    record_type_id: Mapped[str | None] = mapped_column(SfId)
    stage_name: Mapped[str | None] = mapped_column(String(255))
    close_date: Mapped[date | None]
    amount: Mapped[float | None]
    currency_iso_code: Mapped[str | None] = mapped_column(String(3))
    probability: Mapped[float | None]
    forecast_category_name: Mapped[str | None] = mapped_column(String(64))
    is_closed: Mapped[bool | None]
    is_won: Mapped[bool | None]
    created_date: Mapped[datetime | None]
    created_by_id: Mapped[str | None] = mapped_column(SfId)
    last_modified_date: Mapped[datetime | None]
    last_modified_by_id: Mapped[str | None] = mapped_column(SfId)
    last_stage_change_date: Mapped[datetime | None]
    rev_rec_terms: Mapped[str | None] = mapped_column(Text)
    instrument_flag: Mapped[bool | None]
    scope_value: Mapped[str | None] = mapped_column(String(255))
    last_human_modified_date: Mapped[datetime | None]
    last_human_modified_by_id: Mapped[str | None] = mapped_column(SfId)
    last_human_assumed: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )

    __table_args__ = (
        Index("ix_opportunity_open_close_date", "is_closed", "close_date"),
        Index("ix_opportunity_system_modstamp", "system_modstamp"),
    )


class OpportunityLineItem(SObjectRow):
    __tablename__ = "opportunity_line_item"
    sobject = "OpportunityLineItem"

    opportunity_id: Mapped[str | None] = mapped_column(SfId, index=True)
    product2_id: Mapped[str | None] = mapped_column(SfId, index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    quantity: Mapped[float | None]
    unit_price: Mapped[float | None]
    total_price: Mapped[float | None]


class OpportunityHistory(SObjectRow):
    """Insert-only: one row per change of stage, amount, probability or close date."""

    __tablename__ = "opportunity_history"
    sobject = "OpportunityHistory"

    opportunity_id: Mapped[str | None] = mapped_column(SfId)
    stage_name: Mapped[str | None] = mapped_column(String(255))
    close_date: Mapped[date | None]
    amount: Mapped[float | None]
    probability: Mapped[float | None]
    forecast_category: Mapped[str | None] = mapped_column(String(64))
    created_date: Mapped[datetime | None]
    created_by_id: Mapped[str | None] = mapped_column(SfId)

    __table_args__ = (
        Index("ix_opportunity_history_opp_created", "opportunity_id", "created_date", "id"),
    )


class Task(SObjectRow):
    __tablename__ = "task"
    sobject = "Task"

    what_id: Mapped[str | None] = mapped_column(SfId, index=True)
    owner_id: Mapped[str | None] = mapped_column(SfId)
    subject: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str | None] = mapped_column(String(64))
    activity_date: Mapped[date | None]
    is_closed: Mapped[bool | None]
    created_date: Mapped[datetime | None]
    created_by_id: Mapped[str | None] = mapped_column(SfId)
    last_modified_date: Mapped[datetime | None]
    sfsync_key: Mapped[str | None] = mapped_column(String(255), index=True)


def table_of(model: type[Base]) -> Table:
    """The Core table of a mapped class (typed as ``Table``, which it always is here)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _object_models() -> dict[str, type[SObjectRow]]:
    """One table per synced object (config.SYNC_OBJECTS, the catalogue), in its order."""
    by_object = {model.sobject: model for model in SObjectRow.__subclasses__()}
    missing = [name for name in SYNC_OBJECTS if name not in by_object]
    if missing:
        raise RuntimeError(f"no warehouse table for {', '.join(missing)}")
    return {name: by_object[name] for name in SYNC_OBJECTS}


OBJECT_MODELS: dict[str, type[SObjectRow]] = _object_models()


# Each object table's rows marked deleted, which are few: a partial index that holds
# only them. Live rows are then counted as every row (SQLite reads its smallest index)
# less these, instead of reading each row for its ``is_deleted``: 1 ms against 35 ms
# for 100,000 opportunities on SQLite. The predicates are spelled as SQLAlchemy writes
# ``WHERE is_deleted`` on each database: SQLite uses a partial index only for a query
# term written the same way.
for _model in OBJECT_MODELS.values():
    _table = table_of(_model)
    Index(
        f"ix_{_table.name}_deleted",
        _table.c.id,
        sqlite_where=text("is_deleted = 1"),
        postgresql_where=text("is_deleted"),
    )


def live_rows(table: Table) -> Select[int]:
    """The number of ``table``'s rows not marked deleted: all rows less those in the
    partial index of deleted rows (SQLite counts both from indexes alone; PostgreSQL's
    planner picks its own scan for the first)."""
    every = select(func.count()).select_from(table).scalar_subquery()
    deleted = select(func.count()).select_from(table).where(table.c.is_deleted).scalar_subquery()
    return select(every - deleted)


# --------------------------------------------------------------------------- bookkeeping


class SyncState(Base):
    """Per object: the incremental watermark and when deletes were last checked."""

    __tablename__ = "sync_state"

    object: Mapped[str] = mapped_column(String(64), primary_key=True)
    watermark: Mapped[datetime | None]
    watermark_field: Mapped[str] = mapped_column(String(64), default="SystemModstamp")
    last_full_sync_at: Mapped[datetime | None]
    deleted_checked_to: Mapped[datetime | None]
    last_reconciled_at: Mapped[datetime | None]
    rows: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_run_id: Mapped[int | None]
    updated_at: Mapped[datetime | None]
    # An unfinished Bulk 2.0 pull: job id, next locator and window, to resume after a crash.
    resume: Mapped[dict[str, Any] | None]
    # The fields (name, type) the last describe found that sfsync asks for: the next run
    # sends its first queries on this assumption, together with the new describe.
    described: Mapped[dict[str, Any] | None]


class Run(Base):
    """One recorded invocation: a sync, an audit, a write-back, or a whole run."""

    __tablename__ = "run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    as_of: Mapped[date | None]
    api_calls: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    hostname: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None]

    __table_args__ = (Index("ix_run_kind_started", "kind", "started_at"),)


class RunLock(Base):
    """The run lock on SQLite (PostgreSQL uses an advisory lock and records the holder here)."""

    __tablename__ = "run_lock"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    run_id: Mapped[int | None]
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    acquired_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


def _run_references() -> list[ForeignKeyConstraint]:
    """finding's references to ``run``, declared on SQLite only (migration 0004).

    A key is checked per row written, and a night rewrites most findings. On
    PostgreSQL the check is a trigger, about 7 µs a row (a night at 1,000,000
    opportunities 33 s against 26 s without); SQLite's own costs nothing measurable.
    """
    return [
        ForeignKeyConstraint([column], ["run.id"], name=f"fk_finding_{column}_run").ddl_if(
            dialect="sqlite"
        )
        for column in ("opened_run_id", "resolved_run_id", "last_seen_run_id")
    ]


class Finding(Base):
    """One occurrence of a rule holding for an opportunity, from opening to resolution."""

    __tablename__ = "finding"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    opportunity_id: Mapped[str] = mapped_column(SfId)
    status: Mapped[str] = mapped_column(String(16))
    profile: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(8))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    settings_hash: Mapped[str] = mapped_column(String(64))
    # The runs that opened, last saw and resolved it (see _run_references).
    opened_run_id: Mapped[int | None]
    resolved_run_id: Mapped[int | None]
    last_seen_run_id: Mapped[int | None]
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    opened_as_of: Mapped[date | None]
    resolved_as_of: Mapped[date | None]

    __table_args__ = (
        # At most one live (open or waived) finding per (rule, opportunity).
        Index(
            "uq_finding_live_rule_opportunity",
            "rule",
            "opportunity_id",
            unique=True,
            sqlite_where=text("status IN ('open', 'waived')"),
            postgresql_where=text("status IN ('open', 'waived')"),
        ),
        Index("ix_finding_opportunity_rule", "opportunity_id", "rule"),
        Index("ix_finding_status_rule", "status", "rule"),
        *_run_references(),
        # Room on each page for the nightly rewrite of findings (migration 0003).
        {"postgresql_with": {"fillfactor": 70}},
    )


class Waiver(Base):
    """An admin's decision that (rule, opportunity) is fine until a date."""

    __tablename__ = "waiver"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(64))
    opportunity_id: Mapped[str] = mapped_column(SfId)
    reason: Mapped[str] = mapped_column(Text)
    until: Mapped[date]
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (Index("ix_waiver_rule_opportunity", "rule", "opportunity_id"),)


class WritebackLedger(Base):
    """One row per intended write, committed *before* the call is made.

    ``state``: planned -> sent -> confirmed, or failed (with ``error_code``,
    retried up to ``writeback.max_attempts``), or abandoned. The idempotency key is
    also stored on the Task (``writeback.task_key_field``) so a crash between the
    call and the commit is reconciled by querying Salesforce, never re-sent blindly.
    """

    __tablename__ = "writeback_ledger"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id"))
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("finding.id"))
    rule: Mapped[str] = mapped_column(String(64))
    opportunity_id: Mapped[str] = mapped_column(SfId)
    action: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    salesforce_id: Mapped[str | None] = mapped_column(SfId)
    owner_id: Mapped[str | None] = mapped_column(SfId)
    original_owner_id: Mapped[str | None] = mapped_column(SfId)
    reassigned_reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_writeback_ledger_state", "state"),
        Index("ix_writeback_ledger_opportunity_rule", "opportunity_id", "rule"),
    )


class OpportunitySnapshot(Base):
    """The values of open opportunities as the warehouse saw them, kept per day.

    A row is written when close date or stage differs from the previous snapshot,
    so the table is the opportunity's own change log: the fallback for
    ``close_date_slipping`` when OpportunityHistory is missing.
    """

    __tablename__ = "opportunity_snapshot"

    opportunity_id: Mapped[str] = mapped_column(SfId, primary_key=True)
    captured_on: Mapped[date] = mapped_column(Date, primary_key=True)
    close_date: Mapped[date | None]
    stage_name: Mapped[str | None] = mapped_column(String(255))
    amount: Mapped[float | None]
    is_closed: Mapped[bool | None]
    captured_at: Mapped[datetime]
