"""One recorded run: lock -> sync -> audit -> write-back.

The run row (kind ``run``) carries the status (ok / partial / failed /
interrupted), each stage's typed counts (:mod:`sfsync.warehouse.counts`), the
API calls used and the duration. A run stops at the first stage that fails.
Exit codes follow docs/contracts.md: 4 when the API budget stopped it, 5 when some
writes failed (recorded for retry), 6 when another run holds the lock, 143 when it
was stopped on request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from sfsync.config import Settings
from sfsync.context import RunContext
from sfsync.errors import (
    EXIT_BUDGET,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_STOPPED,
    BudgetExhausted,
    SfsyncError,
)
from sfsync.logging import get_logger
from sfsync.stop import ShouldStop, never
from sfsync.warehouse import Warehouse
from sfsync.warehouse.counts import RunStatus
from sfsync.warehouse.runs import error_text

if TYPE_CHECKING:
    from sfsync.audit import AuditSummary
    from sfsync.extract import SyncResult
    from sfsync.salesforce import SalesforceClient
    from sfsync.writeback import WritebackResult

__all__ = ["RunOutcome", "run", "run_once"]

log = get_logger()


@dataclass
class RunOutcome:
    run_id: int
    status: RunStatus = "running"
    stages: dict[str, str] = field(default_factory=dict)
    sync: SyncResult | None = None
    audit: AuditSummary | None = None
    writeback: WritebackResult | None = None
    api_calls: int = 0
    seconds: float = 0.0
    error: SfsyncError | None = None

    def summary(self) -> str:
        """One dbt-style line: rows synced, findings per severity, Tasks written (or planned)."""
        parts = []
        if self.sync is not None:
            rows = sum(o.upserted for o in self.sync.objects.values())
            parts.append(f"synced {rows:,} rows")
        if self.audit is not None:
            open_total = sum(self.audit.open_by_severity.values())
            by_severity = ", ".join(
                f"{severity} {n:,}" for severity, n in sorted(self.audit.open_by_severity.items())
            )
            new = sum(c.new for c in self.audit.rules)
            resolved = sum(c.resolved for c in self.audit.rules)
            detail = f" ({by_severity})" if by_severity else ""
            parts.append(
                f"findings open {open_total:,}{detail}, new {new:,}, resolved {resolved:,}"
            )
        if self.writeback is not None:
            wb = self.writeback
            if wb.applied:
                parts.append(
                    f"Tasks created {wb.created:,}, completed {wb.completed:,}, "
                    f"failed {wb.failed:,}"
                )
            else:
                planned = wb.plan.counts()
                parts.append(
                    f"Tasks to create {planned['create_task']:,}, to complete "
                    f"{planned['complete_task']:,} (a preview: --apply writes them)"
                )
        return "Done. " + " | ".join(parts) if parts else f"Done. {self.status}"

    @property
    def exit_code(self) -> int:
        if isinstance(self.error, BudgetExhausted):
            return EXIT_BUDGET
        if self.error is not None:
            return self.error.exit_code
        if self.status == "partial":
            return EXIT_PARTIAL
        if self.status == "interrupted":
            return EXIT_STOPPED
        return EXIT_OK


def run(ctx: RunContext, *, apply: bool = False, force: bool = False) -> RunOutcome:
    """Sync, audit and write back once, holding the run lock throughout.

    The stages get ``ctx`` within this run: its id, and one Salesforce client lent
    to all three. Raises :class:`~sfsync.errors.LockHeld` if another run holds the
    lock; other failures mark the run ``failed`` (with their text) and are raised
    after it is recorded.
    """
    with ctx.stage("run") as record:
        outcome = RunOutcome(record.id)
        record.counts = lambda: dict(outcome.stages)
        started = time.monotonic()
        as_of = ctx.as_of.isoformat() if ctx.as_of else None
        log.info("run.start", as_of=as_of, apply=apply)
        try:
            with ctx.salesforce() as sf:
                calls_before = sf.api_calls
                try:
                    _stages(ctx.within(record.id, sf), outcome, apply=apply, force=force)
                finally:
                    outcome.api_calls = sf.api_calls - calls_before
        except BaseException as exc:
            outcome.status = "failed"
            outcome.error = exc if isinstance(exc, SfsyncError) else None
            raise
        finally:
            outcome.seconds = time.monotonic() - started
            record.api_calls = outcome.api_calls
            # A run that did not finish its work is not news at info level: a refused plan,
            # a partial sync or a failure is what an operator's alert should fire on.
            level = {"ok": "info", "failed": "error"}.get(outcome.status, "warning")
            getattr(log, level)(
                "run.done",
                status=outcome.status,
                stages=outcome.stages,
                api_calls=outcome.api_calls,
                seconds=round(outcome.seconds, 2),
                error=str(outcome.error) if outcome.error else None,
            )
        record.status = outcome.status
        record.error = error_text(outcome.error) if outcome.error else None
    return outcome


def run_once(
    warehouse: Warehouse,
    settings: Settings,
    *,
    as_of: date | None = None,
    apply: bool = False,
    force: bool = False,
    should_stop: ShouldStop | None = None,
    client: SalesforceClient | None = None,
) -> RunOutcome:
    """:func:`run` for a caller holding a warehouse and settings (scripts, tests)."""
    ctx = RunContext(settings, warehouse, should_stop or never, as_of=as_of, client=client)
    return run(ctx, apply=apply, force=force)


def _stages(ctx: RunContext, outcome: RunOutcome, *, apply: bool, force: bool) -> None:
    """Sync, audit and write-back into ``outcome``; a stage that fails ends the run."""
    from sfsync import audit, extract, writeback

    log.info("run.stage", stage="sync")
    outcome.sync = sync = extract.run(ctx)
    outcome.stages["sync"] = sync.status
    if sync.status == "interrupted":
        outcome.status = "interrupted"
        return
    if sync.status == "partial":
        outcome.error = sync.error
        if not force:
            # No audit of a warehouse the sync could not finish, no write-back from it.
            outcome.stages["audit"] = "skipped (sync was partial)"
            outcome.stages["writeback"] = "skipped (sync was partial)"
            outcome.status = "partial"
            log.warning("run.stopped", reason="the sync was partial; use --force")
            return

    log.info("run.stage", stage="audit")
    outcome.audit = audit.run(ctx)
    outcome.stages["audit"] = "ok"
    if ctx.stop():
        outcome.status = "interrupted"
        return

    log.info("run.stage", stage="writeback", apply=apply)
    outcome.writeback = result = writeback.run(ctx, apply=apply, force=force)
    outcome.stages["writeback"] = result.status
    budget = result.budget_message()
    if budget is not None:
        outcome.error = BudgetExhausted(budget)
    if outcome.error is not None or result.status == "partial":
        outcome.status = "partial"
    elif ctx.stop():
        outcome.status = "interrupted"
    else:
        outcome.status = "ok"
