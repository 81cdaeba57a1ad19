"""One recorded run: lock -> sync -> audit -> write-back.

The run row (kind ``run``) carries the status (ok / partial / failed /
interrupted), each stage's counts under ``counts[<stage>]``, the API calls used
and the duration. Exit codes follow docs/contracts.md: 4 when the API budget stopped the
sync (write-back is then skipped: it never acts on partial data), 5 when some
writes failed (recorded for retry), 6 when another run holds the lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sfsync.config import Settings
from sfsync.errors import (
    EXIT_BUDGET,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_STOPPED,
    BudgetExhausted,
    SfsyncError,
)
from sfsync.logging import bind_run, get_logger, unbind_run
from sfsync.warehouse import Warehouse
from sfsync.warehouse.lock import acquire_run_lock
from sfsync.warehouse.runs import (
    finish_run,
    merge_counts,
    recording,
    start_run,
)

__all__ = ["RunOutcome", "run_once"]

log = get_logger()


@dataclass
class RunOutcome:
    run_id: int
    status: str = "running"
    stages: dict[str, str] = field(default_factory=dict)
    sync: Any = None
    audit: Any = None
    writeback: Any = None
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
    client: Any = None,
) -> RunOutcome:
    """Sync, audit and write back once, holding the run lock throughout.

    Raises :class:`~sfsync.errors.LockHeld` if another run holds the lock; other
    failures mark the run ``failed`` and are raised after it is recorded.
    """
    from sfsync.audit import run_audit
    from sfsync.extract import run_sync
    from sfsync.salesforce import SalesforceClient

    stop = should_stop or (lambda: False)
    with acquire_run_lock(warehouse) as lock:
        run_id = start_run(warehouse, "run", as_of=as_of)
        lock.set_run(run_id)
        bind_run(run_id)
        outcome = RunOutcome(run_id)
        started = time.monotonic()
        owned_client = client is None
        calls_before = client.api_calls if client is not None else 0
        try:
            log.info("run.start", as_of=str(as_of) if as_of else None, apply=apply)
            if client is None:
                client = SalesforceClient.connect(
                    settings.salesforce, settings.sync, should_stop=stop
                )

            log.info("run.stage", stage="sync")
            outcome.sync = run_sync(
                warehouse, settings, client=client, run_id=run_id, should_stop=stop
            )
            outcome.stages["sync"] = outcome.sync.status
            if outcome.sync.status == "interrupted":
                outcome.status = "interrupted"
                return outcome
            if outcome.sync.status == "partial":
                outcome.error = outcome.sync.error
                if not force:
                    # A run stops at the first stage that fails: no audit of a warehouse
                    # the sync could not finish, no write-back from it.
                    outcome.stages["audit"] = "skipped (sync was partial)"
                    outcome.stages["writeback"] = "skipped (sync was partial)"
                    outcome.status = "partial"
                    log.warning("run.stopped", reason="the sync was partial; use --force")
                    return outcome

            log.info("run.stage", stage="audit")
            outcome.audit = run_audit(warehouse, settings, as_of=as_of, run_id=run_id)
            outcome.stages["audit"] = "ok"
            if stop():
                outcome.status = "interrupted"
                return outcome

            from sfsync.writeback import run_writeback

            log.info("run.stage", stage="writeback", apply=apply)
            outcome.writeback = run_writeback(
                warehouse,
                settings,
                client=client,
                apply=apply,
                force=force,
                run_id=run_id,
                today=as_of,
                should_stop=stop,
            )
            outcome.stages["writeback"] = outcome.writeback.status
            budget = outcome.writeback.budget_message()
            if budget is not None:
                outcome.error = BudgetExhausted(budget)
            if outcome.error is not None or outcome.stages.get("writeback") == "partial":
                outcome.status = "partial"
            elif stop():
                outcome.status = "interrupted"
            else:
                outcome.status = "ok"
            return outcome
        except SfsyncError as exc:
            outcome.status, outcome.error = "failed", exc
            raise
        except BaseException:
            outcome.status = "failed"
            raise
        finally:
            if client is not None:
                outcome.api_calls = client.api_calls - calls_before
                if owned_client:
                    client.close()
            outcome.seconds = time.monotonic() - started
            # A run failing on its database must report that, not the failure to record it.
            failing = outcome.status == "failed"
            with recording(run_id, failing=failing):
                merge_counts(warehouse, run_id, "stages", dict(outcome.stages))
            with recording(run_id, failing=failing):
                finish_run(
                    warehouse,
                    run_id,
                    outcome.status if outcome.status != "running" else "failed",
                    api_calls=outcome.api_calls,
                    error=str(outcome.error) if outcome.error else None,
                )
            log.info(
                "run.done",
                status=outcome.status,
                stages=outcome.stages,
                api_calls=outcome.api_calls,
                seconds=round(outcome.seconds, 2),
            )
            unbind_run()
