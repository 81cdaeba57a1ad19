"""One write-back: load state, plan, check the safety gates, preview or apply, record."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sfsync.config import Settings
from sfsync.context import RunContext
from sfsync.errors import UsageError
from sfsync.logging import get_logger
from sfsync.salesforce import SalesforceClient
from sfsync.stop import ShouldStop, never
from sfsync.warehouse import Warehouse
from sfsync.warehouse.counts import RunCounts
from sfsync.warehouse.runs import RecordedRun, latest_run
from sfsync.writeback._apply import apply_writeback
from sfsync.writeback._model import WritebackPlan, WritebackResult
from sfsync.writeback._plan import plan_writeback
from sfsync.writeback._state import load_writeback_state

__all__ = ["WritebackRefused", "required_fields", "run", "run_writeback", "safety_problems"]

log = get_logger()


class WritebackRefused(UsageError):
    """A safety gate stopped the write-back before anything was written (exit 2)."""


def _sync_status(warehouse: Warehouse) -> tuple[str | None, int | None]:
    """The status of the latest sync (a ``sync`` run, or the sync stage of a ``run``)."""
    run = latest_run(warehouse, "sync", "run")
    if run is None:
        return None, None
    sync = RunCounts.of(run.counts).sync
    if sync is not None:
        return sync.status, run.id
    if run.kind == "sync":
        return run.status, run.id
    return None, run.id


def _backfill(warehouse: Warehouse, timezone: str) -> str | None:
    """What the latest recorded audit is, when it is a backfill (of a day before it ran)."""
    run = latest_run(warehouse, "audit", "run")
    if run is None or run.as_of is None or run.started_at is None:
        return None
    started = run.started_at.astimezone(ZoneInfo(timezone)).date()
    if run.as_of >= started:
        return None
    return f"run {run.id}, an audit as of {run.as_of.isoformat()} recorded on {started.isoformat()}"


def safety_problems(
    warehouse: Warehouse, plan: WritebackPlan, *, timezone: str = "UTC"
) -> list[str]:
    """Why ``--apply`` would refuse without ``--force`` (empty: it would go ahead)."""
    problems = []
    backfill = _backfill(warehouse, timezone)
    if backfill is not None:
        problems.append(
            f"the latest audit is a backfill ({backfill}): write-back acts only on an audit "
            "of today (run `sfsync audit`, or use --force)"
        )
    if plan.over_cap:
        problems.append(
            f"the plan creates {plan.creates} Tasks, more than writeback.max_tasks_per_run = "
            f"{plan.max_tasks_per_run} (review the preview, then use --force or raise the limit)"
        )
    status, run_id = _sync_status(warehouse)
    if status is None:
        where = f" (run {run_id} has no sync stage)" if run_id else ""
        problems.append(
            f"no completed sync is on record{where}: write-back does not act on data it cannot "
            "vouch for (run `sfsync sync` first, or use --force)"
        )
    elif status != "ok":
        problems.append(
            f"the latest sync (run {run_id}) was {status}: write-back does not act on partial "
            "data (sync again, or use --force)"
        )
    return problems


def required_fields(settings: Settings) -> list[tuple[str, str]]:
    """``(config key, Opportunity field)`` pairs the write-back writes (the flags, when on)."""
    flags = settings.writeback.flags
    if not (settings.writeback.enabled and flags.enabled):
        return []
    return [
        ("writeback.flags.rules_field", flags.rules_field),
        ("writeback.flags.extensions_field", flags.extensions_field),
    ]


def _today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.audit.timezone)).date()


def run(ctx: RunContext, *, apply: bool = False, force: bool = False) -> WritebackResult:
    """The write-back stage: plan, and preview the plan or (``apply``) perform it.

    Apply refuses (:class:`WritebackRefused`, exit 2, nothing written) when the plan
    creates more than ``writeback.max_tasks_per_run`` Tasks or the latest sync was
    not ok, unless ``force``. The day is ``ctx.as_of`` (default: today in
    ``audit.timezone``). On its own (no ``ctx.run_id``) an apply takes the run lock
    *before* reading the warehouse (a plan must not be made from a ledger another
    process is changing) and is a ``writeback`` run, while a preview changes nothing
    and records nothing. Inside a whole run the counts go into its
    ``counts['writeback']``, previews included (marked ``applied: false``).
    """
    day = ctx.as_of or _today(ctx.settings)
    if not apply and ctx.run_id is None:
        return _plan_and_go(ctx, None, apply=False, force=force, day=day)
    with ctx.stage("writeback", as_of=day) as record:
        result = _plan_and_go(ctx, record, apply=apply, force=force, day=day)
        record.status = "interrupted" if result.interrupted else result.status
        record.api_calls = result.api_calls
        record.error = result.budget_message()
    return result


def run_writeback(
    warehouse: Warehouse,
    settings: Settings,
    *,
    client: SalesforceClient | None = None,
    apply: bool = False,
    force: bool = False,
    run_id: int | None = None,
    today: date | None = None,
    should_stop: ShouldStop | None = None,
) -> WritebackResult:
    """:func:`run` for a caller holding a warehouse and settings (scripts, tests)."""
    ctx = RunContext(
        settings, warehouse, should_stop or never, run_id=run_id, as_of=today, client=client
    )
    return run(ctx, apply=apply, force=force)


def _plan_and_go(
    ctx: RunContext, record: RecordedRun | None, *, apply: bool, force: bool, day: date
) -> WritebackResult:
    state = load_writeback_state(ctx.warehouse, ctx.settings, today=day)
    plan = plan_writeback(state, ctx.settings, day)
    problems = safety_problems(ctx.warehouse, plan, timezone=ctx.settings.audit.timezone)
    run_id = record.id if record is not None else None
    notes = []
    if plan.deferred:
        notes.append(
            f"{plan.deferred} Task(s) over writeback.max_tasks_per_run = "
            f"{plan.max_tasks_per_run} wait for later runs (writeback.over_cap: spread)"
        )
    if not apply:
        result = WritebackResult(plan, applied=False, run_id=run_id)
        result.warnings.extend(notes)
        result.warnings.extend(f"--apply would refuse: {p}" for p in problems)
        if not ctx.settings.writeback.enabled:
            result.warnings.append("writeback.enabled is false: --apply would write nothing")
        if record is not None:
            record.counts = result.counts
        return result
    if problems and not force and ctx.settings.writeback.enabled:
        refused = WritebackResult(plan, applied=False, run_id=run_id, status="partial")
        refused.warnings.extend(problems)
        if record is not None:
            record.counts = refused.counts
        raise WritebackRefused("write-back refused, nothing was written: " + "; ".join(problems))
    for problem in problems:
        log.warning("writeback.forced", problem=problem)
    result = apply_writeback(ctx, plan, record=record)
    result.warnings[:0] = [*notes, *(f"forced: {p}" for p in problems)]
    return result
