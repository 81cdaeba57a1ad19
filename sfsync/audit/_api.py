"""The audit's public operations: run the rules, waive, slip metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, select, update

from sfsync.audit._calendar import today_in
from sfsync.audit._context import (
    OPP,
    SEVERITY_RANK,
    AuditContext,
    audit_settings,
    build_context,
)
from sfsync.audit._findings import FindingRecord, list_findings
from sfsync.audit._ids import record_id
from sfsync.audit._lifecycle import (
    FINDING,
    FindingMerger,
    RuleMerge,
    no_jit,
    write_transaction,
)
from sfsync.audit._slipping import SlipMetrics, slip_select, slip_values
from sfsync.audit.rules import check_rule_ids, get_rule, select_rules
from sfsync.config import AuditSettings, Settings
from sfsync.context import RunContext
from sfsync.errors import UsageError
from sfsync.logging import get_logger
from sfsync.warehouse._engine import Warehouse
from sfsync.warehouse.counts import AuditCounts, RuleTally
from sfsync.warehouse.lock import acquire_run_lock
from sfsync.warehouse.models import Waiver, table_of

__all__ = [
    "AuditSummary",
    "RuleCounts",
    "WaiverResult",
    "WhatIf",
    "run",
    "run_audit",
    "slip_metrics",
    "waive_finding",
    "what_if",
]

_WAIVER = table_of(Waiver)


# --------------------------------------------------------------------------- run_audit


@dataclass(frozen=True)
class RuleCounts:
    """One rule's outcome: live open (not waived), newly opened, resolved, live waived."""

    rule: str
    severity: str
    open: int
    new: int
    resolved: int
    waived: int
    seconds: float = 0.0

    @property
    def title(self) -> str:
        return get_rule(self.rule).title


@dataclass(frozen=True)
class AuditSummary:
    """What one audit did (or, not ``recorded``, would do), per evaluated rule, and the
    settings it ran with. A what-if has no run: ``run_id`` is None."""

    run_id: int | None
    as_of: date
    rules: tuple[RuleCounts, ...]
    open_by_severity: dict[str, int]
    fiscal_year_start_month: int
    settings_used: dict[str, Any] = field(default_factory=dict)
    recorded: bool = True

    def open_at_or_above(self, severity: str) -> int:
        """Live open (not waived) findings of the evaluated rules at or above ``severity``."""
        floor = SEVERITY_RANK[severity]
        return sum(n for s, n in self.open_by_severity.items() if SEVERITY_RANK[s] >= floor)

    def as_counts(self) -> AuditCounts:
        """What ``run.counts`` records of this audit."""
        return AuditCounts(
            as_of=self.as_of,
            rules={
                c.rule: RuleTally(
                    open=c.open,
                    new=c.new,
                    resolved=c.resolved,
                    waived=c.waived,
                    severity=c.severity,
                )
                for c in self.rules
            },
            open_by_severity=dict(self.open_by_severity),
            settings=self.settings_used,
        )


def run(ctx: RunContext, *, rules: Sequence[str] | None = None) -> AuditSummary:
    """The audit stage: evaluate rules on the warehouse and update findings, atomically.

    Everything is validated before anything is written (exit 2 on a bad rule
    id, an unknown stage, a custom field never synced, a bad fiscal month). The
    audit day is ``ctx.as_of`` (default: today in ``audit.timezone``). On its own
    (no ``ctx.run_id``) the audit holds the run lock and is an ``audit`` run;
    either way its counts are stored in ``run.counts['audit']``.
    """
    audit = ctx.settings.audit
    chosen = select_rules(audit, rules)
    with ctx.warehouse.engine.connect() as conn:
        context = build_context(conn, audit, as_of=ctx.as_of, rules=chosen)
    with ctx.stage("audit", as_of=context.as_of) as record:
        summary = _audit(ctx.warehouse, context, record.id)
        record.counts = summary.as_counts
    get_logger().info(
        "audit.done",
        run_id=record.id,
        as_of=context.as_of.isoformat(),
        rules=list(chosen),
        open_by_severity=summary.open_by_severity,
    )
    return summary


def run_audit(
    warehouse: Warehouse,
    settings: Settings | AuditSettings,
    *,
    as_of: date | None = None,
    rules: Sequence[str] | None = None,
    run_id: int | None = None,
) -> AuditSummary:
    """:func:`run` for a caller holding a warehouse and settings (or only their ``audit``
    section: scripts, tests)."""
    whole = settings if isinstance(settings, Settings) else Settings(audit=settings)
    return run(RunContext(whole, warehouse, run_id=run_id, as_of=as_of), rules=rules)


@dataclass(frozen=True)
class WhatIf:
    """A what-if audit: what it would count, and the live findings it would leave."""

    summary: AuditSummary
    findings: list[FindingRecord]


def what_if(ctx: RunContext, *, rules: Sequence[str] | None = None) -> WhatIf:
    """The audit of ``ctx.as_of`` (default today) over ``rules``, changing nothing.

    The audit runs exactly as a recorded one, in a transaction that is rolled back
    once the live findings it would leave (open and waived) are read: no finding,
    run or waiver row changes, so neither the history nor the write-back sees it.
    It takes no run lock (nothing it writes is ever committed).
    """
    audit = ctx.settings.audit
    chosen = select_rules(audit, rules)
    with ctx.warehouse.engine.connect() as conn:
        context = build_context(conn, audit, as_of=ctx.as_of, rules=chosen)
    found: list[FindingRecord] = []

    def read(conn: Connection) -> None:
        for status in ("open", "waived"):
            found.extend(list_findings(conn, status=status, rules=chosen, settings=ctx.settings))

    summary = _audit(ctx.warehouse, context, None, then=read)
    get_logger().info(
        "audit.what_if",
        as_of=context.as_of.isoformat(),
        rules=list(chosen),
        open_by_severity=summary.open_by_severity,
    )
    return WhatIf(summary, found)


def _audit(
    warehouse: Warehouse,
    ctx: AuditContext,
    run_id: int | None,
    *,
    then: Callable[[Connection], None] | None = None,
) -> AuditSummary:
    """Evaluate and merge the findings in one transaction. With ``then`` (a what-if) the
    transaction is handed to it once the findings are merged, and then rolled back."""
    seconds: dict[str, float] = {}
    merged: dict[str, RuleMerge] = {}
    with write_transaction(warehouse, commit=then is None) as conn:
        merger = FindingMerger(conn, ctx, run_id=run_id)
        for rule in ctx.rules:
            started = time.perf_counter()
            merged[rule] = merger.merge(rule)
            seconds[rule] = time.perf_counter() - started
        merger.close()
        if then is not None:
            then(conn)
    per_rule = []
    by_severity: dict[str, int] = {}
    for rule in ctx.rules:
        severity = ctx.settings.rule(rule).severity
        m = merged[rule]
        per_rule.append(
            RuleCounts(
                rule=rule,
                severity=severity,
                open=m.live - m.waived,
                new=m.new,
                resolved=m.resolved,
                waived=m.waived,
                seconds=round(seconds[rule], 6),
            )
        )
        if m.live > m.waived:
            by_severity[severity] = by_severity.get(severity, 0) + m.live - m.waived
    return AuditSummary(
        run_id=run_id,
        recorded=then is None,
        as_of=ctx.as_of,
        rules=tuple(per_rule),
        open_by_severity=by_severity,
        fiscal_year_start_month=ctx.fiscal_year_start_month,
        settings_used={
            "profile": ctx.settings.profile,
            "timezone": ctx.settings.timezone,
            "fiscal_year_start_month": ctx.fiscal_year_start_month,
            "fiscal_year_source": ctx.fiscal_year_source,
            "stage_source": ctx.stage_source,
            "corporate_currency": ctx.currency.corporate,
            "settings_hash": {
                rule: {p: ctx.settings_hash(rule, p) for p in ctx.profiles()} for rule in ctx.rules
            },
        },
    )


# --------------------------------------------------------------------------- slip metrics


def slip_metrics(
    warehouse: Warehouse,
    settings: Settings | AuditSettings,
    as_of: date | None = None,
    *,
    include_closed: bool = False,
) -> Iterator[SlipMetrics]:
    """Month extensions and companion metrics of every open opportunity, streamed.

    For the pipeline-quality report. ``include_closed`` adds closed ones (their
    days open end at the last move into a closed stage).
    """
    audit = audit_settings(settings)
    with warehouse.engine.connect() as conn:
        ctx = build_context(conn, audit, as_of=as_of, rules=())
        if conn.dialect.name == "postgresql":
            no_jit(conn)
        query = slip_select(ctx, conn.dialect.name, open_only=not include_closed).order_by(OPP.c.id)
        for row in conn.execute(query, execution_options={"yield_per": 5000}):
            yield slip_values(ctx, row)


# --------------------------------------------------------------------------- waivers


@dataclass(frozen=True)
class WaiverResult:
    """The waiver recorded, and how many live findings it turned to ``waived`` at once."""

    waiver_id: int
    rule: str
    opportunity_id: str
    until: date
    findings_waived: int


def waive_finding(
    warehouse: Warehouse,
    settings: Settings | AuditSettings,
    rule: str,
    opportunity_id: str,
    *,
    reason: str,
    until: date,
    today: date | None = None,
    created_by: str | None = None,
) -> WaiverResult:
    """Waive (rule, opportunity) until a date; a live finding becomes ``waived`` at once.

    A waived finding is still reported; the next write-back completes its open Task.
    Bad input is a usage error naming the value (exit 2), and nothing is written.
    """
    from zoneinfo import ZoneInfo

    audit = audit_settings(settings)
    check_rule_ids([rule], "RULE")
    opp_id = record_id(opportunity_id, "OPP_ID")
    if not reason.strip():
        raise UsageError("--reason: must say why the finding is waived (got an empty reason)")
    today = today or today_in(ZoneInfo(audit.timezone))
    if until < today:
        raise UsageError(
            f"--until: {until.isoformat()} is in the past (today is {today.isoformat()} "
            f"in {audit.timezone})"
        )
    now = datetime.now(UTC)
    # A writer like any other: not while a run (or another command) holds the lock.
    with acquire_run_lock(warehouse), warehouse.session() as session:
        conn = session.connection()
        known = conn.execute(
            select(OPP.c.id).where(OPP.c.id == opp_id, OPP.c.is_deleted.is_(False))
        ).first()
        if known is None:
            raise UsageError(f"OPP_ID: opportunity {opp_id} is not in the warehouse")
        waiver_id = conn.execute(
            _WAIVER.insert()
            .values(
                rule=rule,
                opportunity_id=opp_id,
                reason=reason.strip(),
                until=until,
                created_at=now,
                created_by=created_by,
            )
            .returning(_WAIVER.c.id)
        ).scalar_one()
        changed = conn.execute(
            update(FINDING)
            .where(
                FINDING.c.rule == rule,
                FINDING.c.opportunity_id == opp_id,
                FINDING.c.status == "open",
            )
            .values(status="waived")
        )
    get_logger().info("audit.waived", rule=rule, opportunity_id=opp_id, until=until.isoformat())
    return WaiverResult(waiver_id, rule, opp_id, until, int(changed.rowcount or 0))
