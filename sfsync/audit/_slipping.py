"""Close-date month extensions and the two companion metrics, set-based.

The close-date sequence of an opportunity is its OpportunityHistory rows'
CloseDate values ordered by (CreatedDate, Id), then its current CloseDate. A
window function (``LAG`` over that order) compares each (year, month) with the
value before it; the current CloseDate is compared with the last history row
(``LEAD(...) IS NULL`` marks it), so one pass over history in index order does
it all. Opportunities without any history row use the warehouse's own
snapshots the same way, and the figure is then a lower bound.

The same pass finds the last stage change (a row whose StageName differs from
the previous row's; the creation row is not a change) and the last move into
a closed stage, for "days since last stage change" and "days open".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, case, false, func, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.sql.elements import ColumnElement

from sfsync.audit._calendar import local_date
from sfsync.audit._context import OPP, AuditContext
from sfsync.warehouse.dialect import month_key
from sfsync.warehouse.models import OpportunityHistory, OpportunitySnapshot, table_of

__all__ = ["SlipMetrics", "slip_select", "slip_values"]

_HISTORY = table_of(OpportunityHistory)
_SNAPSHOT = table_of(OpportunitySnapshot)


@dataclass(frozen=True)
class SlipMetrics:
    """The pipeline-quality figures of one opportunity (docs/rules.md, ``close_date_slipping``).

    ``lower_bound`` is true when the opportunity has no OpportunityHistory rows
    and the month extensions were counted from the warehouse's snapshots (or
    from nothing). ``days_open`` is None for a closed opportunity whose move
    into a closed stage was never seen.
    """

    opportunity_id: str
    month_extensions: int
    days_since_stage_change: int | None
    days_open: int | None
    lower_bound: bool
    source: str


def _in_set(column: ColumnElement[Any], values: tuple[str, ...]) -> ColumnElement[bool]:
    return column.in_(list(values)) if values else false()


def _history_aggregate(ctx: AuditContext, dialect: str, opportunities: Any) -> Any:
    h = _HISTORY
    part, order = h.c.opportunity_id, (h.c.created_date, h.c.id)
    conditions = [h.c.is_deleted.is_(False), h.c.created_date < ctx.created_before]
    if opportunities is not None:
        conditions.append(h.c.opportunity_id.in_(opportunities))
    month = month_key(h.c.close_date, dialect)
    rows = (
        select(
            h.c.opportunity_id,
            h.c.created_date.label("at"),
            month.label("m"),
            func.lag(month).over(partition_by=part, order_by=order).label("prev_m"),
            h.c.stage_name.label("stage"),
            func.lag(h.c.stage_name).over(partition_by=part, order_by=order).label("prev_stage"),
            func.lead(h.c.id).over(partition_by=part, order_by=order).label("next_id"),
        )
        .where(*conditions)
        .subquery("history_rows")
    )
    closed = ctx.closed_stages
    entered_closed = and_(
        _in_set(rows.c.stage, closed),
        or_(rows.c.prev_stage.is_(None), ~_in_set(rows.c.prev_stage, closed)),
    )
    stage_changed = and_(rows.c.prev_stage.is_not(None), rows.c.stage != rows.c.prev_stage)
    return (
        select(
            rows.c.opportunity_id,
            func.sum(case((rows.c.m > rows.c.prev_m, 1), else_=0)).label("extensions"),
            func.max(case((rows.c.next_id.is_(None), rows.c.m))).label("last_m"),
            func.max(case((stage_changed, rows.c.at))).label("stage_changed_at"),
            func.max(case((entered_closed, rows.c.at))).label("closed_at"),
        )
        .group_by(rows.c.opportunity_id)
        .subquery("history")
    )


def _snapshot_aggregate(ctx: AuditContext, dialect: str) -> Any:
    s = _SNAPSHOT
    part, order = s.c.opportunity_id, (s.c.captured_on,)
    month = month_key(s.c.close_date, dialect)
    rows = (
        select(
            s.c.opportunity_id,
            s.c.captured_on.label("on"),
            month.label("m"),
            func.lag(month).over(partition_by=part, order_by=order).label("prev_m"),
            s.c.stage_name.label("stage"),
            func.lag(s.c.stage_name).over(partition_by=part, order_by=order).label("prev_stage"),
            s.c.is_closed,
            func.lag(s.c.is_closed).over(partition_by=part, order_by=order).label("prev_closed"),
            func.lead(s.c.captured_on).over(partition_by=part, order_by=order).label("next_on"),
        )
        .where(s.c.captured_on <= ctx.as_of)
        .subquery("snapshot_rows")
    )
    stage_changed = and_(rows.c.prev_stage.is_not(None), rows.c.stage != rows.c.prev_stage)
    entered_closed = and_(
        rows.c.is_closed.is_(True), or_(rows.c.prev_closed.is_(None), rows.c.prev_closed.is_(False))
    )
    return (
        select(
            rows.c.opportunity_id,
            func.sum(case((rows.c.m > rows.c.prev_m, 1), else_=0)).label("extensions"),
            func.max(case((rows.c.next_on.is_(None), rows.c.m))).label("last_m"),
            func.max(case((stage_changed, rows.c.on))).label("stage_changed_on"),
            func.max(case((entered_closed, rows.c.on))).label("closed_on"),
        )
        .group_by(rows.c.opportunity_id)
        .subquery("snapshots")
    )


def slip_select(
    ctx: AuditContext, dialect: str, *, open_only: bool, min_extensions: int | None = None
) -> Select[Any]:
    """One row per (open) opportunity with its month extensions and metric inputs.

    With ``open_only``, the window functions see only the history of open
    opportunities: each opportunity's figures come from its own rows alone, and the
    history of closed deals (a third of it in the benchmark's org) is the costliest
    part of the query. The snapshots are few; filtering them costs more than it saves.
    """
    wanted = [OPP.c.is_deleted.is_(False), OPP.c.created_date < ctx.created_before]
    if open_only:
        wanted.append(OPP.c.is_closed == false())
    scope = select(OPP.c.id).where(*wanted).correlate(None) if open_only else None
    history = _history_aggregate(ctx, dialect, scope)
    snapshots = _snapshot_aggregate(ctx, dialect)
    current = month_key(OPP.c.close_date, dialect)
    has_history = history.c.opportunity_id.is_not(None)
    has_snapshots = snapshots.c.opportunity_id.is_not(None)
    extensions = case(
        (has_history, history.c.extensions + case((current > history.c.last_m, 1), else_=0)),
        (has_snapshots, snapshots.c.extensions + case((current > snapshots.c.last_m, 1), else_=0)),
        else_=0,
    )
    conditions = list(wanted)
    if min_extensions is not None:
        conditions.append(extensions >= min_extensions)
    return (
        select(
            OPP.c.id,
            OPP.c.scope_value,
            OPP.c.stage_name,
            OPP.c.close_date,
            OPP.c.created_date,
            OPP.c.is_closed,
            has_history.label("has_history"),
            has_snapshots.label("has_snapshots"),
            extensions.label("month_extensions"),
            history.c.stage_changed_at,
            history.c.closed_at,
            snapshots.c.stage_changed_on,
            snapshots.c.closed_on,
        )
        .select_from(
            OPP.outerjoin(history, history.c.opportunity_id == OPP.c.id).outerjoin(
                snapshots, snapshots.c.opportunity_id == OPP.c.id
            )
        )
        .where(*conditions)
    )


def slip_values(ctx: AuditContext, row: Row[Any]) -> SlipMetrics:
    """Turn one :func:`slip_select` row into day counts in the business time zone."""
    created: date | None = (
        None if row.created_date is None else local_date(row.created_date, ctx.tz)
    )
    changed: date | None
    closed: date | None
    if row.has_history:
        source = "history"
        changed_at: datetime | None = row.stage_changed_at
        changed = local_date(changed_at, ctx.tz) if changed_at is not None else created
        closed_at: datetime | None = row.closed_at
        closed = local_date(closed_at, ctx.tz) if closed_at is not None else None
    else:
        source = "snapshots" if row.has_snapshots else "none"
        changed = row.stage_changed_on if row.stage_changed_on is not None else created
        closed = row.closed_on
    end = closed if row.is_closed else ctx.as_of
    return SlipMetrics(
        opportunity_id=row.id,
        month_extensions=int(row.month_extensions or 0),
        days_since_stage_change=None if changed is None else (ctx.as_of - changed).days,
        days_open=None if created is None or end is None else (end - created).days,
        lower_bound=not row.has_history,
        source=source,
    )
