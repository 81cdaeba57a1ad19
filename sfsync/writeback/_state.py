"""Loading what the planner needs from the warehouse: a handful of set-based queries.

- findings: every live one (open or waived, with the waiver behind a waived one),
  plus resolved ones that still have a Task write to finish (an sfsync Task not
  known closed or deleted and not yet completed by us, or a ledger row never
  confirmed);
- the ledger rows of those findings' opportunities, plus every row not in a final
  state anywhere;
- the synced sfsync Tasks of those opportunities and of those ledger rows;
- those opportunities (and, with flags on, the ones whose flag fields are set);
- every user (owners, managers, the fallback owner).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, exists, or_, select
from sqlalchemy.engine import Connection

from sfsync.config import Settings
from sfsync.formats import parse_datetime
from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import (
    Finding,
    Opportunity,
    Task,
    User,
    Waiver,
    WritebackLedger,
    table_of,
)
from sfsync.writeback._model import (
    FindingView,
    LedgerState,
    LedgerView,
    OpportunityView,
    TaskView,
    UserView,
    WaiverView,
    WritebackState,
)
from sfsync.writeback._text import key_from_description

__all__ = ["load_writeback_state"]

F = table_of(Finding)
L = table_of(WritebackLedger)
T = table_of(Task)
O = table_of(Opportunity)  # noqa: E741 - the warehouse table, named like its siblings
U = table_of(User)
W = table_of(Waiver)

LIVE = ("open", "waived")
UNFINISHED = ("planned", "sent", "failed")
_CHUNK = 500
X = TypeVar("X")


def _chunks(items: Sequence[X], size: int = _CHUNK) -> Iterator[Sequence[X]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _resolved_with_work() -> Select[Any]:
    """Ids of resolved findings whose Task write is not finished."""
    done = L.alias("done")
    return (
        select(L.c.finding_id)
        .select_from(L.outerjoin(T, T.c.id == L.c.salesforce_id))
        .where(
            L.c.action == "create_task",
            L.c.state != "abandoned",
            L.c.finding_id.is_not(None),
            or_(
                T.c.id.is_(None),
                and_(
                    or_(T.c.is_closed.is_(None), T.c.is_closed.is_(False)),
                    T.c.is_deleted.is_(False),
                ),
            ),
            ~exists().where(
                done.c.action == "complete_task",
                done.c.salesforce_id == L.c.salesforce_id,
                or_(
                    done.c.state == "confirmed",
                    and_(done.c.state == "abandoned", done.c.error_code == "SUPERSEDED"),
                ),
            ),
        )
    )


def _finding_filter() -> Any:
    return or_(
        F.c.status.in_(LIVE),
        and_(F.c.status == "resolved", F.c.id.in_(_resolved_with_work())),
    )


def _findings(conn: Connection) -> list[FindingView]:
    rows = list(
        conn.execute(
            select(
                F.c.id,
                F.c.rule,
                F.c.opportunity_id,
                F.c.status,
                F.c.details,
                F.c.opened_at,
                F.c.resolved_at,
            ).where(_finding_filter())
        )
    )
    waived = {(str(r.rule), str(r.opportunity_id)) for r in rows if r.status == "waived"}
    waivers = _waivers(conn, waived) if waived else {}
    return [
        FindingView(
            int(r.id),
            str(r.rule),
            str(r.opportunity_id),
            str(r.status),
            dict(r.details or {}),
            r.opened_at,
            r.resolved_at,
            waiver=waivers.get((str(r.rule), str(r.opportunity_id))),
        )
        for r in rows
    ]


def _waivers(conn: Connection, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], WaiverView]:
    """The latest waiver of each (rule, opportunity) pair."""
    latest: dict[tuple[str, str], WaiverView] = {}
    opportunity_ids = sorted({opp for _, opp in pairs})
    for chunk in _chunks(opportunity_ids):
        query = select(W).where(W.c.opportunity_id.in_(chunk)).order_by(W.c.id)
        for r in conn.execute(query):
            pair = (str(r.rule), str(r.opportunity_id))
            if pair in pairs:
                latest[pair] = WaiverView(str(r.reason), r.until, r.created_at, r.created_by)
    return latest


def _ledger(conn: Connection, opportunity_ids: Sequence[str]) -> list[LedgerView]:
    rows: dict[int, Any] = {}
    for chunk in _chunks(opportunity_ids):
        for r in conn.execute(select(L).where(L.c.opportunity_id.in_(chunk))):
            rows[int(r.id)] = r
    for r in conn.execute(select(L).where(L.c.state.in_(UNFINISHED))):
        rows[int(r.id)] = r
    return [_ledger_view(r) for _, r in sorted(rows.items())]


def _ledger_view(r: Any) -> LedgerView:
    return LedgerView(
        id=int(r.id),
        key=str(r.idempotency_key),
        action=str(r.action),
        state=LedgerState(str(r.state)),
        rule=str(r.rule),
        opportunity_id=str(r.opportunity_id),
        finding_id=r.finding_id,
        salesforce_id=r.salesforce_id,
        owner_id=r.owner_id,
        original_owner_id=r.original_owner_id,
        reassigned_reason=r.reassigned_reason,
        attempts=int(r.attempts or 0),
        error_code=r.error_code,
        error_message=r.error_message,
        payload=dict(r.payload or {}),
        created_at=r.created_at,
        updated_at=r.updated_at,
        confirmed_at=r.confirmed_at,
    )


def _closed_at(raw: dict[str, Any], is_deleted: bool, r: Any) -> datetime | None:
    """When a Task was completed or deleted, as well as the synced fields tell."""
    if is_deleted:
        return r.system_modstamp or r.last_modified_date or r.synced_at  # type: ignore[no-any-return]
    if not r.is_closed:
        return None
    completed = raw.get("CompletedDateTime")
    if isinstance(completed, str):
        try:
            return parse_datetime(completed)
        except ValueError:
            pass
    return r.last_modified_date or r.system_modstamp  # type: ignore[no-any-return]


def _tasks(
    conn: Connection, opportunity_ids: Sequence[str], task_ids: Iterable[str], key_field: str | None
) -> list[TaskView]:
    found: dict[str, Any] = {}
    columns = (
        T.c.id,
        T.c.what_id,
        T.c.owner_id,
        T.c.subject,
        T.c.status,
        T.c.is_closed,
        T.c.is_deleted,
        T.c.sfsync_key,
        T.c.created_by_id,
        T.c.created_date,
        T.c.last_modified_date,
        T.c.system_modstamp,
        T.c.synced_at,
        T.c.raw,
    )
    for chunk in _chunks(opportunity_ids):
        for r in conn.execute(select(*columns).where(T.c.what_id.in_(chunk))):
            found[str(r.id)] = r
    missing = sorted({t for t in task_ids if t and t not in found})
    for chunk in _chunks(missing):
        for r in conn.execute(select(*columns).where(T.c.id.in_(chunk))):
            found[str(r.id)] = r
    tasks = []
    for task_id, r in sorted(found.items()):
        raw = dict(r.raw or {})
        description = raw.get("Description") if isinstance(raw.get("Description"), str) else None
        key = r.sfsync_key or (raw.get(key_field) if key_field else None)
        if not isinstance(key, str) or not key:
            key = key_from_description(description)
        deleted = bool(r.is_deleted)
        tasks.append(
            TaskView(
                id=task_id,
                what_id=r.what_id,
                owner_id=r.owner_id,
                subject=r.subject,
                status=r.status,
                is_closed=bool(r.is_closed),
                is_deleted=deleted,
                key=key,
                created_by_id=r.created_by_id,
                created_date=r.created_date,
                closed_at=_closed_at(raw, deleted, r),
                description=description,
            )
        )
    return tasks


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _opportunities(
    conn: Connection, ids: Sequence[str], settings: Settings
) -> dict[str, OpportunityView]:
    flags = settings.writeback.flags
    columns = (O.c.id, O.c.name, O.c.owner_id, O.c.is_closed, O.c.is_deleted, O.c.synced_at)
    rows: dict[str, Any] = {}
    raws: dict[str, dict[str, Any]] = {}
    wanted = columns + ((O.c.raw,) if flags.enabled else ())
    for chunk in _chunks(ids):
        for r in conn.execute(select(*wanted).where(O.c.id.in_(chunk))):
            rows[str(r.id)] = r
            if flags.enabled:
                raws[str(r.id)] = dict(r.raw or {})
    if flags.enabled:
        # Opportunities whose flags are set but that have no live finding: to clear them.
        # Only live, open ones are read (a Python filter on raw keeps this portable).
        query = select(*wanted).where(
            O.c.is_deleted.is_(False), or_(O.c.is_closed.is_(False), O.c.is_closed.is_(None))
        )
        for r in conn.execute(query, execution_options={"yield_per": 5000}):
            raw = dict(r.raw or {})
            if (
                raw.get(flags.rules_field) not in (None, "")
                or raw.get(flags.extensions_field) is not None
            ):
                rows.setdefault(str(r.id), r)
                raws.setdefault(str(r.id), raw)
    result = {}
    for opp_id, r in rows.items():
        raw = raws.get(opp_id, {})
        rules_value = raw.get(flags.rules_field)
        result[opp_id] = OpportunityView(
            id=opp_id,
            name=r.name,
            owner_id=r.owner_id,
            is_closed=bool(r.is_closed),
            is_deleted=bool(r.is_deleted),
            synced_at=r.synced_at,
            flag_rules=rules_value if isinstance(rules_value, str) else None,
            flag_extensions=_float(raw.get(flags.extensions_field)),
        )
    return result


def _users(conn: Connection) -> dict[str, UserView]:
    return {
        str(r.id): UserView(str(r.id), r.name, r.is_active, r.manager_id)
        for r in conn.execute(select(U.c.id, U.c.name, U.c.is_active, U.c.manager_id))
    }


def _with_extensions(
    warehouse: Warehouse,
    settings: Settings,
    opportunities: dict[str, OpportunityView],
    findings: Sequence[FindingView],
    today: date | None,
) -> dict[str, OpportunityView]:
    """Month extensions (for the extensions flag) of opportunities with an open finding."""
    from dataclasses import replace

    from sfsync.audit import slip_metrics

    flagged = {f.opportunity_id for f in findings if f.status == "open"}
    if not flagged:
        return opportunities
    for metrics in slip_metrics(warehouse, settings, as_of=today):
        opp = opportunities.get(metrics.opportunity_id)
        if opp is not None and metrics.opportunity_id in flagged:
            opportunities[opp.id] = replace(opp, month_extensions=metrics.month_extensions)
    return opportunities


def load_writeback_state(
    warehouse: Warehouse, settings: Settings, *, today: date | None = None
) -> WritebackState:
    """Read everything :func:`plan_writeback` needs (``today`` only matters for flags)."""
    with warehouse.engine.connect() as conn:
        findings = _findings(conn)
        opportunity_ids = sorted({f.opportunity_id for f in findings})
        ledger = _ledger(conn, opportunity_ids)
        task_ids = [r.salesforce_id for r in ledger if r.salesforce_id]
        tasks = _tasks(conn, opportunity_ids, task_ids, settings.writeback.task_key_field)
        opp_ids = sorted(set(opportunity_ids) | {r.opportunity_id for r in ledger})
        opportunities = _opportunities(conn, opp_ids, settings)
        users = _users(conn)
    if settings.writeback.flags.enabled:
        opportunities = _with_extensions(warehouse, settings, opportunities, findings, today)
    return WritebackState(
        findings=tuple(findings),
        opportunities=opportunities,
        users=users,
        ledger=tuple(ledger),
        tasks=tuple(tasks),
    )
