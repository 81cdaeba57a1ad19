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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from sfsync.config import Settings
from sfsync.errors import (
    EXIT_BUDGET,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_STOPPED,
    BudgetExhausted,
    SfsyncError,
)
from sfsync.logging import get_logger
from sfsync.warehouse import Warehouse
from sfsync.warehouse.counts import RunStatus
from sfsync.warehouse.lock import acquire_run_lock
from sfsync.warehouse.runs import record_counts, recorded_run, recording

if TYPE_CHECKING:
    from sfsync.audit import AuditSummary
    from sfsync.extract import SyncResult
    from sfsync.salesforce import SalesforceClient
    from sfsync.writeback import WritebackResult

__all__ = ["RunOutcome", "run_once"]

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


def run_once(
    warehouse: Warehouse,
    settings: Settings,
    *,
    as_of: date | None = None,
    apply: bool = False,
    force: bool = False,
    should_stop: Callable[[], bool] | None = None,
    client: SalesforceClient | None = None,
) -> RunOutcome:
    """Sync, audit and write back once, holding the run lock throughout.

    Raises :class:`~sfsync.errors.LockHeld` if another run holds the lock; other
    failures mark the run ``failed`` (with their text) and are raised after it is
    recorded.
    """
    from sfsync.salesforce import SalesforceClient

    stop = should_stop or (lambda: False)
    with (
        acquire_run_lock(warehouse) as lock,
        recorded_run(warehouse, "run", as_of=as_of) as record,
    ):
        lock.set_run(record.id)
        outcome = RunOutcome(record.id)
        started = time.monotonic()
        failing = False
        log.info("run.start", as_of=str(as_of) if as_of else None, apply=apply)
        try:
            with SalesforceClient.lease(
                settings.salesforce, settings.sync, client=client, should_stop=stop
            ) as sf:
                calls_before = sf.api_calls
                try:
                    _stages(warehouse, settings, sf, outcome, as_of, apply, force, stop)
                finally:
                    outcome.api_calls = sf.api_calls - calls_before
        except BaseException as exc:
            failing = True
            outcome.status = "failed"
            outcome.error = exc if isinstance(exc, SfsyncError) else None
            raise
        finally:
            outcome.seconds = time.monotonic() - started
            # A run failing on its database must report that, not the failure to record it.
            with recording(record.id, failing=failing):
                record_counts(warehouse, record.id, dict(outcome.stages))
            record.status = outcome.status
            record.api_calls = outcome.api_calls
            record.error = str(outcome.error) if outcome.error else None
            log.info(
                "run.done",
                status=outcome.status,
                stages=outcome.stages,
                api_calls=outcome.api_calls,
                seconds=round(outcome.seconds, 2),
            )
        return outcome


def _stages(
    warehouse: Warehouse,
    settings: Settings,
    client: SalesforceClient,
    outcome: RunOutcome,
    as_of: date | None,
    apply: bool,
    force: bool,
    stop: Callable[[], bool],
) -> None:
    """Sync, audit and write-back into ``outcome``; a stage that fails ends the run."""
    from sfsync.audit import run_audit
    from sfsync.extract import run_sync
    from sfsync.writeback import run_writeback

    run_id = outcome.run_id
    log.info("run.stage", stage="sync")
    outcome.sync = sync = run_sync(
        warehouse, settings, client=client, run_id=run_id, should_stop=stop
    )
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
    outcome.audit = run_audit(warehouse, settings, as_of=as_of, run_id=run_id)
    outcome.stages["audit"] = "ok"
    if stop():
        outcome.status = "interrupted"
        return

    log.info("run.stage", stage="writeback", apply=apply)
    outcome.writeback = writeback = run_writeback(
        warehouse,
        settings,
        client=client,
        apply=apply,
        force=force,
        run_id=run_id,
        today=as_of,
        should_stop=stop,
    )
    outcome.stages["writeback"] = writeback.status
    budget = writeback.budget_message()
    if budget is not None:
        outcome.error = BudgetExhausted(budget)
    if outcome.error is not None or writeback.status == "partial":
        outcome.status = "partial"
    elif stop():
        outcome.status = "interrupted"
    else:
        outcome.status = "ok"
