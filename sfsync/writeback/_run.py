"""One write-back: load state, plan, check the safety gates, preview or apply, record."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sfsync.config import Settings
from sfsync.errors import UsageError
from sfsync.logging import get_logger
from sfsync.salesforce import SalesforceClient
from sfsync.warehouse import Warehouse
from sfsync.warehouse.counts import RunCounts
from sfsync.warehouse.runs import latest_run, record_counts, recorded_run
from sfsync.writeback._apply import apply_writeback
from sfsync.writeback._model import WritebackPlan, WritebackResult
from sfsync.writeback._plan import plan_writeback
from sfsync.writeback._state import load_writeback_state

__all__ = ["WritebackRefused", "run_writeback", "safety_problems"]

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


def safety_problems(warehouse: Warehouse, plan: WritebackPlan) -> list[str]:
    """Why ``--apply`` would refuse without ``--force`` (empty: it would go ahead)."""
    problems = []
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


def _today(settings: Settings) -> date:
    return datetime.now(ZoneInfo(settings.audit.timezone)).date()


def run_writeback(
    warehouse: Warehouse,
    settings: Settings,
    *,
    client: SalesforceClient | None = None,
    apply: bool = False,
    force: bool = False,
    run_id: int | None = None,
    today: date | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> WritebackResult:
    """Plan the write-back and preview it, or (``apply``) perform it.

    Apply refuses (:class:`WritebackRefused`, exit 2, nothing written) when the plan
    creates more than ``writeback.max_tasks_per_run`` Tasks or the latest sync was
    not ok, unless ``force``. Without ``run_id`` an apply takes the run lock *before*
    reading the warehouse (a plan must not be made from a ledger another process is
    changing) and records its own ``writeback`` run; with ``run_id`` (the runner,
    which holds the lock) the counts are merged into that run's
    ``counts['writeback']``, previews included (marked ``applied: false``).
    """
    day = today or _today(settings)
    if not apply or run_id is not None:
        return _plan_and_go(warehouse, settings, client, apply, force, run_id, day, should_stop)
    from sfsync.warehouse.lock import acquire_run_lock

    with (
        acquire_run_lock(warehouse) as lock,
        recorded_run(warehouse, "writeback", as_of=day) as record,
    ):
        lock.set_run(record.id)
        result = _plan_and_go(
            warehouse, settings, client, apply, force, record.id, day, should_stop
        )
        record.status = "interrupted" if result.interrupted else result.status
        record.api_calls = result.api_calls
        record.error = result.budget_message()
        return result


def _plan_and_go(
    warehouse: Warehouse,
    settings: Settings,
    client: SalesforceClient | None,
    apply: bool,
    force: bool,
    run_id: int | None,
    day: date,
    should_stop: Callable[[], bool] | None,
) -> WritebackResult:
    state = load_writeback_state(warehouse, settings, today=day)
    plan = plan_writeback(state, settings, day)
    problems = safety_problems(warehouse, plan)
    if not apply:
        result = WritebackResult(plan, applied=False, run_id=run_id)
        result.warnings.extend(f"--apply would refuse: {p}" for p in problems)
        if not settings.writeback.enabled:
            result.warnings.append("writeback.enabled is false: --apply would write nothing")
        if run_id is not None:
            record_counts(warehouse, run_id, result.counts())
        return result
    if problems and not force and settings.writeback.enabled:
        if run_id is not None:
            refused = WritebackResult(plan, applied=False, run_id=run_id, status="partial")
            refused.warnings.extend(problems)
            record_counts(warehouse, run_id, refused.counts())
        raise WritebackRefused("write-back refused, nothing was written: " + "; ".join(problems))
    for problem in problems:
        log.warning("writeback.forced", problem=problem)
    result = apply_writeback(
        warehouse, settings, plan, client=client, run_id=run_id, should_stop=should_stop
    )
    if problems:
        result.warnings[:0] = [f"forced: {p}" for p in problems]
        if run_id is not None:
            record_counts(warehouse, run_id, result.counts())
    return result
