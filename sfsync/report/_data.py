"""What the pipeline-hygiene report shows, read from the warehouse as plain values.

Every figure comes from a handful of set-based queries (grouped counts,
one streamed pass over the slip metrics, one over the open findings' deals,
``IN`` queries for the rows that are shown); nothing is queried per opportunity.
Long lists are capped by :class:`ReportLimits`, and the data always carries the
full count beside the rows shown, so the page can say what it left out.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, NullPool, QueuePool, and_, false, func, select
from sqlalchemy.sql.expression import alias

from sfsync import __version__
from sfsync.audit import SlipMetrics, currency_rates, slip_metrics
from sfsync.audit.rules import get_rule, rule_ids
from sfsync.config import Settings
from sfsync.logging import redact_text
from sfsync.report._deals import (
    PipelineAtRisk,
    RecordLinks,
    RuleDeals,
    flagged_deals,
    host_of,
    record_links,
)
from sfsync.warehouse._engine import Warehouse
from sfsync.warehouse.counts import AuditCounts, RuleTally, RunCounts, SyncCounts, WritebackCounts
from sfsync.warehouse.models import (
    Finding,
    Opportunity,
    Organization,
    Run,
    User,
    WritebackLedger,
    live_rows,
    table_of,
)

__all__ = [
    "Histogram",
    "LastAudit",
    "OrgInfo",
    "OwnerRow",
    "Reassignment",
    "ReportData",
    "ReportLimits",
    "RuleSummary",
    "RunRow",
    "SlipRow",
    "SlipSummary",
    "Totals",
    "TrendPoint",
    "build_report",
]

_OPP = table_of(Opportunity)
_USER = table_of(User)
_FINDING = table_of(Finding)
_RUN = table_of(Run)
_ORG = table_of(Organization)
_LEDGER = table_of(WritebackLedger)

_LIVE = ("open", "waived")


@dataclass(frozen=True)
class ReportLimits:
    """How many rows each long list keeps (the page states every cap it applied)."""

    slipping_rows: int = 200
    due_rows: int = 100
    owners: int = 50
    runs: int = 30
    trend_audits: int = 60
    runs_scanned: int = 2000
    reassignments: int = 100
    rule_rows: int = 200


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class OrgInfo:
    """Who the report is about. Host names only: no URL scheme, user or secret."""

    name: str | None
    org_id: str | None
    is_sandbox: bool | None
    instance: str | None
    instance_source: str
    default_currency: str | None
    warehouse: str
    fiscal_year_start_month: int
    fiscal_year_source: str


@dataclass(frozen=True)
class LastAudit:
    """The newest run that recorded audit counts, and the settings it says it used."""

    run_id: int
    kind: str
    status: str
    started_at: datetime
    as_of: date | None
    recorded_settings: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Totals:
    opportunities: int
    open_opportunities: int
    open_findings: int
    waived_findings: int
    opportunities_with_open_findings: int
    owners_with_live_findings: int
    last_sync_at: datetime | None


@dataclass(frozen=True)
class RuleSummary:
    """Findings of one rule: live counts now, and what the newest audit of the rule changed."""

    rule: str
    title: str
    severity: str
    enabled: bool
    open: int
    waived: int
    resolved_total: int
    new_last_audit: int | None
    resolved_last_audit: int | None


@dataclass(frozen=True)
class OwnerRow:
    """Live findings of the opportunities one user owns (``owner_id`` None: unknown owner)."""

    owner_id: str | None
    name: str | None
    is_active: bool | None
    open_by_rule: Mapping[str, int]
    waived: int
    # Converted amounts of the owner's deals with an open finding, each deal once.
    at_risk: Decimal = Decimal("0.00")

    @property
    def open(self) -> int:
        return sum(self.open_by_rule.values())


@dataclass(frozen=True)
class SlipRow:
    """One open opportunity with the three pipeline-quality metrics of seed 004."""

    opportunity_id: str
    name: str | None
    owner_name: str | None
    stage: str | None
    close_date: date | None
    amount: float | None
    currency: str | None
    month_extensions: int
    days_since_stage_change: int | None
    days_open: int | None
    lower_bound: bool
    source: str
    due_this_month: bool
    finding_status: str | None


@dataclass(frozen=True)
class Histogram:
    """Counts per bucket, split into exact figures and lower bounds."""

    title: str
    metric: str
    labels: tuple[str, ...]
    exact: tuple[int, ...]
    lower_bound: tuple[int, ...]
    unknown: int
    p50: int | None
    p90: int | None


@dataclass(frozen=True)
class SlipSummary:
    open_opportunities: int
    min_extensions: int
    slipping: int
    lower_bound: int
    month_start: date
    due_this_month: int
    due_this_month_slipping: int
    top: tuple[SlipRow, ...]
    due: tuple[SlipRow, ...]
    histograms: tuple[Histogram, ...]


@dataclass(frozen=True)
class TrendPoint:
    """Live findings per rule after one audit (None: the rule was not evaluated).

    ``label`` names the audit on the chart's x-axis: its day, with the start time
    (UTC) when several audits share the day, and the run id if even that repeats.
    """

    run_id: int
    kind: str
    started_at: datetime
    as_of: date | None
    open: Mapping[str, int | None]
    waived: Mapping[str, int | None]
    label: str = ""


@dataclass(frozen=True)
class RunRow:
    run_id: int
    kind: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    as_of: date | None
    api_calls: int
    stages: tuple[tuple[str, str], ...]
    error: str | None

    @property
    def seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return max(0.0, (self.ended_at - self.started_at).total_seconds())


@dataclass(frozen=True)
class Reassignment:
    """A Task that went to someone other than the opportunity's owner (docs/rules.md)."""

    run_id: int | None
    rule: str
    opportunity_id: str
    opportunity_name: str | None
    from_id: str | None
    from_name: str | None
    to_id: str | None
    to_name: str | None
    reason: str
    state: str
    created_at: datetime


@dataclass(frozen=True)
class ReportData:
    """Everything the page shows; :func:`render_html` only formats it."""

    generated_at: datetime
    as_of: date
    sfsync_version: str
    org: OrgInfo
    settings: tuple[tuple[str, str], ...]
    last_audit: LastAudit | None
    totals: Totals
    rules: tuple[RuleSummary, ...]
    owners: tuple[OwnerRow, ...]
    slip: SlipSummary
    trends: tuple[TrendPoint, ...]
    runs: tuple[RunRow, ...]
    runs_total: int
    limits: ReportLimits
    # Per rule, the deals of its open findings; their converted amounts; where they link.
    deals: tuple[RuleDeals, ...]
    pipeline: PipelineAtRisk
    links: RecordLinks
    notes: tuple[str, ...] = field(default=())
    reassignments: tuple[Reassignment, ...] = field(default=())
    reassignments_total: int = 0

    @property
    def has_audit(self) -> bool:
        return self.last_audit is not None


# --------------------------------------------------------------------------- building


def build_report(
    warehouse: Warehouse,
    settings: Settings,
    *,
    as_of: date | None = None,
    limits: ReportLimits | None = None,
    now: datetime | None = None,
) -> ReportData:
    """Read the report's figures from the warehouse (read-only; nothing is written).

    ``as_of`` (default: today in ``audit.timezone``) is the day the slip
    metrics are computed for, as an as-of audit would see it. Findings, owners
    and trends are the warehouse's current state as the audits left it.
    """
    limits = limits or ReportLimits()
    generated_at = (now or datetime.now(UTC)).astimezone(UTC)
    day = as_of or generated_at.astimezone(ZoneInfo(settings.audit.timezone)).date()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sfsync-report") as pool:
        with warehouse.engine.connect() as conn:
            # The audit's context refuses a warehouse nothing was synced into; its metrics would
            # be empty anyway, and the report of an empty warehouse still renders.
            synced = conn.execute(select(_OPP.c.id).limit(1)).first() is not None
            due_ids = _due_this_month_ids(conn, _month_start(day))
            # The slip metrics are most of the work (one pass over every open opportunity and
            # its history): on a connection of their own, in a second thread, the database
            # computes them while this one runs the other queries (SQLite and psycopg let go
            # of the GIL while the database works).
            slip_pass = partial(
                _slip_summary, warehouse, settings, day, due_ids, limits, synced=synced
            )
            slip_later = pool.submit(slip_pass) if _connection_per_thread(warehouse) else None
            org = _org_info(conn, settings, warehouse.dialect)
            scan = _scan_runs(conn, limits)
            status_counts = _finding_counts(conn)
            owners, owners_total = _owners(conn, limits.owners)
            totals_base = _opportunity_totals(conn)
            with_findings = conn.execute(
                select(func.count(func.distinct(_FINDING.c.opportunity_id))).where(
                    _FINDING.c.status == "open"
                )
            ).scalar_one()
            reassignments, reassignments_total = _reassignments(conn, limits.reassignments)
            links = record_links(settings)
            currency = currency_rates(conn, settings.audit, org_currency=org.default_currency)
            deals, pipeline = flagged_deals(conn, currency, links, limits.rule_rows)
        slip = slip_pass() if slip_later is None else slip_later.result()
    owners = tuple(replace(o, at_risk=pipeline.by_owner.get(o.owner_id, o.at_risk)) for o in owners)
    rules = _rule_summaries(settings, status_counts, scan.last_rule_counts)
    totals = Totals(
        opportunities=totals_base,
        open_opportunities=slip.open_opportunities,
        open_findings=sum(r.open for r in rules),
        waived_findings=sum(r.waived for r in rules),
        opportunities_with_open_findings=int(with_findings or 0),
        owners_with_live_findings=owners_total,
        last_sync_at=scan.last_sync_at,
    )
    notes = _notes(settings, day, scan.last_audit, totals, rules) + _deal_notes(links, pipeline)
    return ReportData(
        generated_at=generated_at,
        as_of=day,
        sfsync_version=__version__,
        org=org,
        settings=_flatten("audit", settings.audit.model_dump(mode="json")),
        last_audit=scan.last_audit,
        totals=totals,
        rules=rules,
        owners=owners,
        slip=slip,
        trends=_labelled(tuple(reversed(scan.trends))),
        runs=tuple(scan.runs),
        runs_total=scan.runs_total,
        limits=limits,
        notes=notes,
        reassignments=reassignments,
        reassignments_total=reassignments_total,
        deals=deals,
        pipeline=pipeline,
        links=links,
    )


def _connection_per_thread(warehouse: Warehouse) -> bool:
    """Whether another thread gets a connection of its own to the same database.

    A file or a server: yes (a queue of connections, or one per checkout). An
    in-memory SQLite database lives in one connection, which its pool keeps per
    thread (another thread would get another, empty, database) or shares.
    """
    return isinstance(warehouse.engine.pool, QueuePool | NullPool)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


# --------------------------------------------------------------------------- header


def _org_info(conn: Connection, settings: Settings, dialect: str) -> OrgInfo:
    row = conn.execute(
        select(
            _ORG.c.id,
            _ORG.c.name,
            _ORG.c.is_sandbox,
            _ORG.c.default_currency_iso_code,
            _ORG.c.fiscal_year_start_month,
        )
        .where(_ORG.c.is_deleted.is_(False))
        .order_by(_ORG.c.id)
        .limit(1)
    ).first()
    sf = settings.salesforce
    if sf.instance_url:
        instance, source = host_of(sf.instance_url), "salesforce.instance_url"
    else:
        instance, source = host_of(sf.login_url), "salesforce.login_url"
    fiscal, fiscal_source = settings.audit.fiscal_year_start_month, "audit.fiscal_year_start_month"
    if row is not None and row.fiscal_year_start_month is not None:
        fiscal, fiscal_source = (
            int(row.fiscal_year_start_month),
            "Organization.FiscalYearStartMonth",
        )
    return OrgInfo(
        name=None if row is None else row.name,
        org_id=None if row is None else row.id,
        is_sandbox=None if row is None else row.is_sandbox,
        instance=instance,
        instance_source=source,
        default_currency=None if row is None else row.default_currency_iso_code,
        warehouse=dialect,
        fiscal_year_start_month=fiscal,
        fiscal_year_source=fiscal_source,
    )


def _flatten(prefix: str, value: Any) -> tuple[tuple[str, str], ...]:
    """Nested settings as (key path, display value) pairs, in declaration order."""
    out: list[tuple[str, str]] = []

    def walk(path: str, node: Any) -> None:
        if isinstance(node, Mapping) and node:
            for key, child in node.items():
                walk(f"{path}.{key}", child)
        else:
            out.append((path, _display(node)))

    walk(prefix, value)
    return tuple(out)


def _display(value: Any) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, list | tuple):
        return ", ".join(_display(v) for v in value) if value else "(none)"
    if isinstance(value, Mapping):
        return "(none)"
    return str(value)


# --------------------------------------------------------------------------- runs


@dataclass
class _RunScan:
    runs: list[RunRow] = field(default_factory=list)
    trends: list[TrendPoint] = field(default_factory=list)
    last_audit: LastAudit | None = None
    # Per rule: its counts in the newest audit that evaluated it (``--rule`` runs skip some).
    last_rule_counts: dict[str, RuleTally] = field(default_factory=dict)
    last_sync_at: datetime | None = None
    runs_total: int = 0


def _scan_runs(conn: Connection, limits: ReportLimits) -> _RunScan:
    """Newest runs first, streamed, until the run log and the trend series are full."""
    scan = _RunScan()
    scan.runs_total = int(conn.execute(select(func.count()).select_from(_RUN)).scalar_one())
    query = (
        select(
            _RUN.c.id,
            _RUN.c.kind,
            _RUN.c.status,
            _RUN.c.started_at,
            _RUN.c.ended_at,
            _RUN.c.as_of,
            _RUN.c.api_calls,
            _RUN.c.counts,
            _RUN.c.error,
        )
        .order_by(_RUN.c.id.desc())
        .limit(limits.runs_scanned)
    )
    result = conn.execute(query.execution_options(yield_per=200))
    try:
        for row in result:
            counts = RunCounts.of(row.counts)
            if len(scan.runs) < limits.runs:
                scan.runs.append(_run_row(row, counts))
            if (
                scan.last_sync_at is None
                and counts.sync is not None
                and row.status in ("ok", "partial")
            ):
                scan.last_sync_at = row.ended_at or row.started_at
            audit = counts.audit
            if audit is not None and audit.rules:
                if scan.last_audit is None:
                    scan.last_audit = _last_audit(row, audit)
                for rule, tally in audit.rules.items():
                    scan.last_rule_counts.setdefault(rule, tally)
                if len(scan.trends) < limits.trend_audits:
                    scan.trends.append(_trend_point(row, audit))
            if (
                len(scan.runs) >= limits.runs
                and len(scan.trends) >= limits.trend_audits
                and scan.last_sync_at is not None
                and len(scan.last_rule_counts) >= len(rule_ids())
            ):
                break
    finally:
        result.close()
    return scan


def _trend_point(row: Any, audit: AuditCounts) -> TrendPoint:
    tallies = {rule: audit.rules.get(rule) for rule in rule_ids()}
    return TrendPoint(
        run_id=int(row.id),
        kind=str(row.kind),
        started_at=row.started_at,
        as_of=audit.as_of or row.as_of,
        open={rule: t.open if t is not None else None for rule, t in tallies.items()},
        waived={rule: t.waived if t is not None else None for rule, t in tallies.items()},
    )


def _labelled(points: Sequence[TrendPoint]) -> tuple[TrendPoint, ...]:
    """Each audit's x-axis label, unique across the series (several audits a day happen)."""

    def day(p: TrendPoint) -> str:
        return (p.as_of or p.started_at.date()).isoformat()

    def day_time(p: TrendPoint) -> str:
        return f"{day(p)} {p.started_at.astimezone(UTC):%H:%M}"

    per_day = Counter(day(p) for p in points)
    labels = [day(p) if per_day[day(p)] == 1 else day_time(p) for p in points]
    repeated = Counter(labels)
    return tuple(
        replace(p, label=label if repeated[label] == 1 else f"{label} run {p.run_id}")
        for p, label in zip(points, labels, strict=True)
    )


def _last_audit(row: Any, audit: AuditCounts) -> LastAudit:
    pairs: list[tuple[str, str]] = []
    for key, value in audit.settings.items():
        if key == "settings_hash" and isinstance(value, Mapping):
            for rule, hashes in value.items():
                if isinstance(hashes, Mapping):
                    shown = ", ".join(f"{p} {str(h)[:12]}" for p, h in hashes.items())
                    pairs.append((f"settings_hash.{rule}", shown))
            continue
        pairs.append((str(key), _display(value)))
    return LastAudit(
        run_id=int(row.id),
        kind=str(row.kind),
        status=str(row.status),
        started_at=row.started_at,
        as_of=audit.as_of or row.as_of,
        recorded_settings=tuple(pairs),
    )


def _run_row(row: Any, counts: RunCounts) -> RunRow:
    stages: list[tuple[str, str]] = []
    if counts.sync is not None:
        stages.append(("sync", _sync_summary(counts.sync)))
    if counts.audit is not None:
        stages.append(("audit", _audit_summary(counts.audit)))
    if counts.writeback is not None:
        stages.append(("writeback", _writeback_summary(counts.writeback)))
    if counts.stages:
        stages.append(("stages", ", ".join(f"{k} {v}" for k, v in counts.stages.items())))
    return RunRow(
        run_id=int(row.id),
        kind=str(row.kind),
        status=str(row.status),
        started_at=row.started_at,
        ended_at=row.ended_at,
        as_of=row.as_of,
        api_calls=int(row.api_calls or 0),
        stages=tuple(stages),
        error=None if not row.error else redact_text(str(row.error)),
    )


_WRITEBACK_FIGURES = (
    ("created", "Tasks created"),
    ("completed", "completed"),
    ("flags_set", "flags set"),
    ("flags_cleared", "flags cleared"),
    ("reassigned", "reassigned"),
    ("skipped", "skipped"),
    ("failed", "failed"),
    ("retry_later", "to retry"),
    ("gave_up", "given up"),
)


def _sync_summary(sync: SyncCounts) -> str:
    objects = sync.objects.values()
    deleted = sum(o.deleted for o in objects)
    problems = sum(o.problems for o in objects)
    return (
        f"{len(sync.objects)} objects, {sync.upserted:,} upserted, {deleted:,} deleted, "
        f"{problems:,} problems"
    )


def _audit_summary(audit: AuditCounts) -> str:
    prefix = f"as of {audit.as_of.isoformat()}: " if audit.as_of else ""
    totals = ", ".join(
        f"{audit.total(key):,} {key}" for key in ("open", "new", "resolved", "waived")
    )
    return prefix + totals


def _writeback_summary(writeback: WritebackCounts) -> str:
    figures = [f"{getattr(writeback, key):,} {label}" for key, label in _WRITEBACK_FIGURES]
    return f"{'applied' if writeback.applied else 'dry run'}: " + ", ".join(figures)


# --------------------------------------------------------------------------- findings


def _finding_counts(conn: Connection) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        select(_FINDING.c.rule, _FINDING.c.status, func.count()).group_by(
            _FINDING.c.rule, _FINDING.c.status
        )
    )
    return {(row[0], row[1]): int(row[2]) for row in rows}


def _rule_summaries(
    settings: Settings,
    counts: Mapping[tuple[str, str], int],
    last_rules: Mapping[str, RuleTally],
) -> tuple[RuleSummary, ...]:
    summaries = []
    for rule in rule_ids():
        rule_settings = settings.audit.rule(rule)
        last = last_rules.get(rule)
        summaries.append(
            RuleSummary(
                rule=rule,
                title=get_rule(rule).title,
                severity=rule_settings.severity,
                enabled=rule_settings.enabled,
                open=counts.get((rule, "open"), 0),
                waived=counts.get((rule, "waived"), 0),
                resolved_total=counts.get((rule, "resolved"), 0),
                new_last_audit=None if last is None else last.new,
                resolved_last_audit=None if last is None else last.resolved,
            )
        )
    return tuple(summaries)


def _owners(conn: Connection, cap: int) -> tuple[tuple[OwnerRow, ...], int]:
    """Live findings grouped by the owner of their opportunity, most open first."""
    query = (
        select(
            _OPP.c.owner_id,
            _USER.c.name,
            _USER.c.is_active,
            _FINDING.c.rule,
            _FINDING.c.status,
            func.count().label("n"),
        )
        .select_from(
            _FINDING.outerjoin(_OPP, _OPP.c.id == _FINDING.c.opportunity_id).outerjoin(
                _USER, _USER.c.id == _OPP.c.owner_id
            )
        )
        .where(_FINDING.c.status.in_(_LIVE))
        .group_by(
            _OPP.c.owner_id, _USER.c.name, _USER.c.is_active, _FINDING.c.rule, _FINDING.c.status
        )
    )
    grouped: dict[str | None, dict[str, Any]] = {}
    for row in conn.execute(query):
        entry = grouped.setdefault(
            row.owner_id,
            {"name": row.name, "active": row.is_active, "open": Counter(), "waived": 0},
        )
        if row.status == "open":
            entry["open"][row.rule] += int(row.n)
        else:
            entry["waived"] += int(row.n)
    rows = [
        OwnerRow(
            owner_id=owner_id,
            name=entry["name"],
            is_active=entry["active"],
            open_by_rule={rule: entry["open"].get(rule, 0) for rule in rule_ids()},
            waived=entry["waived"],
        )
        for owner_id, entry in grouped.items()
    ]
    rows.sort(key=lambda r: (-r.open, -r.waived, (r.name or "").lower(), r.owner_id or ""))
    return tuple(rows[:cap]), len(rows)


def _opportunity_totals(conn: Connection) -> int:
    return int(conn.execute(live_rows(_OPP)).scalar_one())


def _due_this_month_ids(conn: Connection, month_start: date) -> frozenset[str]:
    """Open opportunities whose close date falls in the as-of month (seed 004's table)."""
    rows = conn.execute(
        select(_OPP.c.id).where(
            _OPP.c.is_deleted.is_(False),
            _OPP.c.is_closed == false(),
            and_(_OPP.c.close_date >= month_start, _OPP.c.close_date < _next_month(month_start)),
        )
    )
    return frozenset(row.id for row in rows)


def _reassignments(conn: Connection, cap: int) -> tuple[tuple[Reassignment, ...], int]:
    """Task writes that went to a manager or the fallback user, newest first."""
    reassigned = _LEDGER.c.reassigned_reason.is_not(None)
    total = int(
        conn.execute(select(func.count()).select_from(_LEDGER).where(reassigned)).scalar_one()
    )
    if total == 0 or cap <= 0:
        return (), total
    original, new_owner = alias(_USER, "original_owner"), alias(_USER, "new_owner")
    query = (
        select(
            _LEDGER.c.run_id,
            _LEDGER.c.rule,
            _LEDGER.c.opportunity_id,
            _OPP.c.name.label("opportunity_name"),
            _LEDGER.c.original_owner_id,
            original.c.name.label("from_name"),
            _LEDGER.c.owner_id,
            new_owner.c.name.label("to_name"),
            _LEDGER.c.reassigned_reason,
            _LEDGER.c.state,
            _LEDGER.c.created_at,
        )
        .select_from(
            _LEDGER.outerjoin(_OPP, _OPP.c.id == _LEDGER.c.opportunity_id)
            .outerjoin(original, original.c.id == _LEDGER.c.original_owner_id)
            .outerjoin(new_owner, new_owner.c.id == _LEDGER.c.owner_id)
        )
        .where(reassigned)
        .order_by(_LEDGER.c.id.desc())
        .limit(cap)
    )
    rows = tuple(
        Reassignment(
            run_id=row.run_id,
            rule=row.rule,
            opportunity_id=row.opportunity_id,
            opportunity_name=row.opportunity_name,
            from_id=row.original_owner_id,
            from_name=row.from_name,
            to_id=row.owner_id,
            to_name=row.to_name,
            reason=redact_text(str(row.reassigned_reason)),
            state=row.state,
            created_at=row.created_at,
        )
        for row in conn.execute(query)
    )
    return rows, total


# --------------------------------------------------------------------------- slip metrics

_EXTENSION_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    *((str(n), n, n) for n in range(8)),
    ("8+", 8, None),
)
_STAGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7", 0, 7),
    ("8-30", 8, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181-365", 181, 365),
    ("366-730", 366, 730),
    ("> 730", 731, None),
)
_OPEN_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-30", 0, 30),
    ("31-90", 31, 90),
    ("91-180", 91, 180),
    ("181-365", 181, 365),
    ("366-730", 366, 730),
    ("> 730", 731, None),
)


class _TopN:
    """The n largest items by key, first-seen winning ties (the stream is in id order)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._heap: list[tuple[tuple[int, int, int], int, SlipMetrics]] = []
        self._seq = 0

    def offer(self, metrics: SlipMetrics) -> None:
        if self.n <= 0:
            return
        self._seq += 1
        # Most opportunities were never extended: once the heap is full, one integer
        # comparison turns them away without building their rank (the first key).
        if len(self._heap) == self.n and metrics.month_extensions < self._heap[0][0][0]:
            return
        item = (_rank(metrics), -self._seq, metrics)
        if len(self._heap) < self.n:
            heapq.heappush(self._heap, item)
        elif item[:2] > self._heap[0][:2]:
            heapq.heapreplace(self._heap, item)

    def items(self) -> list[SlipMetrics]:
        return [m for *_, m in sorted(self._heap, key=lambda i: i[:2], reverse=True)]


def _rank(m: SlipMetrics) -> tuple[int, int, int]:
    def known(v: int | None) -> int:
        return -1 if v is None else v

    return (m.month_extensions, known(m.days_since_stage_change), known(m.days_open))


def _histogram(
    title: str,
    metric: str,
    buckets: Sequence[tuple[str, int, int | None]],
    exact: Counter[int],
    lower: Counter[int],
    unknown: int,
) -> Histogram:
    def bucket_counts(counter: Counter[int]) -> tuple[int, ...]:
        out = []
        for _, low, high in buckets:
            out.append(
                sum(n for v, n in counter.items() if v >= low and (high is None or v <= high))
            )
        return tuple(out)

    both = exact + lower
    return Histogram(
        title=title,
        metric=metric,
        labels=tuple(label for label, *_ in buckets),
        exact=bucket_counts(exact),
        lower_bound=bucket_counts(lower),
        unknown=unknown,
        p50=_percentile(both, 0.5),
        p90=_percentile(both, 0.9),
    )


def _percentile(counter: Counter[int], q: float) -> int | None:
    """The smallest value with at least ``q`` of the observations at or below it."""
    total = sum(counter.values())
    if total == 0:
        return None
    needed = q * total
    seen = 0
    for value in sorted(counter):
        seen += counter[value]
        if seen >= needed:
            return value
    return max(counter)  # pragma: no cover - the loop always returns


def _slip_summary(
    warehouse: Warehouse,
    settings: Settings,
    day: date,
    due_ids: frozenset[str],
    limits: ReportLimits,
    *,
    synced: bool = True,
) -> SlipSummary:
    minimum = get_rule("close_date_slipping").settings(settings.audit).min_extensions
    top, due_top = _TopN(limits.slipping_rows), _TopN(limits.due_rows)
    extensions: tuple[Counter[int], Counter[int]] = (Counter(), Counter())
    stage_days: tuple[Counter[int], Counter[int]] = (Counter(), Counter())
    open_days: tuple[Counter[int], Counter[int]] = (Counter(), Counter())
    unknown_stage = unknown_open = 0
    total = slipping = lower = due = due_slipping = 0
    for m in slip_metrics(warehouse, settings, day) if synced else ():
        total += 1
        side = 1 if m.lower_bound else 0
        lower += side
        extensions[side][m.month_extensions] += 1
        if m.days_since_stage_change is None:
            unknown_stage += 1
        else:
            stage_days[side][m.days_since_stage_change] += 1
        if m.days_open is None:
            unknown_open += 1
        else:
            open_days[side][m.days_open] += 1
        is_slipping = m.month_extensions >= minimum
        slipping += is_slipping
        top.offer(m)
        if m.opportunity_id in due_ids:
            due += 1
            due_slipping += is_slipping
            due_top.offer(m)
    top_items, due_items = top.items(), due_top.items()
    shown = _row_details(warehouse, {m.opportunity_id for m in (*top_items, *due_items)})
    return SlipSummary(
        open_opportunities=total,
        min_extensions=minimum,
        slipping=slipping,
        lower_bound=lower,
        month_start=_month_start(day),
        due_this_month=due,
        due_this_month_slipping=due_slipping,
        top=tuple(_slip_row(m, shown, due_ids) for m in top_items),
        due=tuple(_slip_row(m, shown, due_ids) for m in due_items),
        histograms=(
            _histogram(
                "Close-date month extensions",
                "month_extensions",
                _EXTENSION_BUCKETS,
                *extensions,
                unknown=0,
            ),
            _histogram(
                "Days since the last stage change",
                "days_since_stage_change",
                _STAGE_BUCKETS,
                *stage_days,
                unknown=unknown_stage,
            ),
            _histogram("Days open", "days_open", _OPEN_BUCKETS, *open_days, unknown=unknown_open),
        ),
    )


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _row_details(warehouse: Warehouse, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Name, owner, stage, close date, amount and slipping-finding status of the shown rows."""
    wanted = sorted(ids)
    details: dict[str, dict[str, Any]] = {}
    if not wanted:
        return details
    with warehouse.engine.connect() as conn:
        for chunk in _chunks(wanted, 500):
            rows = conn.execute(
                select(
                    _OPP.c.id,
                    _OPP.c.name,
                    _OPP.c.stage_name,
                    _OPP.c.close_date,
                    _OPP.c.amount,
                    _OPP.c.currency_iso_code,
                    _USER.c.name.label("owner_name"),
                )
                .select_from(_OPP.outerjoin(_USER, _USER.c.id == _OPP.c.owner_id))
                .where(_OPP.c.id.in_(list(chunk)))
            )
            for row in rows:
                details[row.id] = dict(row._mapping)
            findings = conn.execute(
                select(_FINDING.c.opportunity_id, _FINDING.c.status).where(
                    _FINDING.c.rule == "close_date_slipping",
                    _FINDING.c.status.in_(_LIVE),
                    _FINDING.c.opportunity_id.in_(list(chunk)),
                )
            )
            for finding in findings:
                details.setdefault(finding.opportunity_id, {})["finding_status"] = finding.status
    return details


def _slip_row(
    m: SlipMetrics, shown: Mapping[str, Mapping[str, Any]], due_ids: frozenset[str]
) -> SlipRow:
    d = shown.get(m.opportunity_id, {})
    amount = d.get("amount")
    return SlipRow(
        opportunity_id=m.opportunity_id,
        name=d.get("name"),
        owner_name=d.get("owner_name"),
        stage=d.get("stage_name"),
        close_date=d.get("close_date"),
        amount=None if amount is None else float(amount),
        currency=d.get("currency_iso_code"),
        month_extensions=m.month_extensions,
        days_since_stage_change=m.days_since_stage_change,
        days_open=m.days_open,
        lower_bound=m.lower_bound,
        source=m.source,
        due_this_month=m.opportunity_id in due_ids,
        finding_status=d.get("finding_status"),
    )


# --------------------------------------------------------------------------- notes


def _deal_notes(links: RecordLinks, pipeline: PipelineAtRisk) -> tuple[str, ...]:
    notes: list[str] = []
    if pipeline.deals and links.host is None:
        notes.append(f"The deals are not linked to Salesforce: {links.source}.")
    if pipeline.without_rate:
        notes.append(
            f"{pipeline.without_rate:,} deal(s) with an open finding have an amount in a currency "
            "without a conversion rate (CurrencyType): they are left out of the pipeline at risk."
        )
    if pipeline.deals and pipeline.currency is None:
        notes.append(
            "The corporate currency is not known (no CurrencyType marked corporate, no "
            "audit.corporate_currency, no Organization currency): amounts are summed as they are."
        )
    return tuple(notes)


def _notes(
    settings: Settings,
    day: date,
    last_audit: LastAudit | None,
    totals: Totals,
    rules: Sequence[RuleSummary],
) -> tuple[str, ...]:
    notes: list[str] = []
    if totals.opportunities == 0:
        notes.append("The warehouse holds no opportunities yet: run `sfsync sync` to fill it.")
    if last_audit is None:
        notes.append(
            "No audit has run on this warehouse yet, so there are no findings, owners or "
            "trends to show: run `sfsync audit`. The pipeline-quality metrics below are "
            "computed from the warehouse directly."
        )
        return tuple(notes)
    if last_audit.as_of is not None and last_audit.as_of != day:
        notes.append(
            f"The findings are those of the last audit (run {last_audit.run_id}, as of "
            f"{last_audit.as_of.isoformat()}); the pipeline-quality metrics are as of "
            f"{day.isoformat()}."
        )
    recorded = dict(last_audit.recorded_settings)
    for key in ("profile", "timezone"):
        current = str(getattr(settings.audit, key))
        if key in recorded and recorded[key] != current:
            notes.append(
                f"The last audit ran with {key} {recorded[key]!r}; the current settings say "
                f"{current!r}. Run `sfsync audit` to bring the findings in line."
            )
    disabled = [r.rule for r in rules if not r.enabled and (r.open or r.waived)]
    if disabled:
        notes.append(
            f"Rule(s) {', '.join(disabled)} are disabled in the current settings but still have "
            "live findings from earlier audits."
        )
    return tuple(notes)
