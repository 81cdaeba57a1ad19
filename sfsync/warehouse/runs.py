"""Recording runs: one ``run`` row per sync, audit, write-back, or whole run.

A run row is committed as ``running`` when the work starts, so a process that
dies leaves evidence (``sfsync runs`` shows it, and the next run marks it
``interrupted``); it is finished with a status, per-stage counts and API calls.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlalchemy import select, update

from sfsync.logging import get_logger
from sfsync.warehouse._engine import Warehouse, first_line
from sfsync.warehouse.counts import RunCounts, RunStatus, StageCounts
from sfsync.warehouse.models import Run

__all__ = [
    "RUN_STATUSES",
    "RecordedRun",
    "RunKind",
    "error_text",
    "finish_run",
    "latest_run",
    "mark_interrupted_runs",
    "record_counts",
    "recorded_run",
    "recording",
    "run_counts",
    "start_run",
]

RunKind = Literal["run", "sync", "audit", "writeback"]
"""What a run row records: a whole run, or one stage run on its own."""

RUN_STATUSES: tuple[RunStatus, ...] = ("running", "ok", "partial", "failed", "interrupted")


def utcnow() -> datetime:
    return datetime.now(UTC)


def start_run(warehouse: Warehouse, kind: RunKind, *, as_of: date | None = None) -> int:
    """Insert a ``running`` row and return its id (committed at once)."""
    with warehouse.session() as session:
        run = Run(
            kind=kind,
            status="running",
            started_at=utcnow(),
            as_of=as_of,
            counts={},
            hostname=socket.gethostname(),
            pid=os.getpid(),
        )
        session.add(run)
        session.flush()
        return run.id


def record_counts(warehouse: Warehouse, run_id: int, counts: StageCounts | dict[str, str]) -> None:
    """Store one stage's counts (or, as a dict, each stage's outcome in words), at once."""
    with warehouse.session() as session:
        run = session.get(Run, run_id, with_for_update=warehouse.dialect == "postgresql")
        if run is None:
            raise LookupError(f"run {run_id} does not exist")
        document = RunCounts.of(run.counts)
        if isinstance(counts, dict):
            document = document.model_copy(update={"stages": dict(counts)})
        else:
            document = document.with_stage(counts)
        run.counts = document.document()


def run_counts(warehouse: Warehouse, run_id: int) -> RunCounts:
    """A run's counts, parsed."""
    with warehouse.session() as session:
        run = session.get(Run, run_id)
        return RunCounts.of(run.counts if run is not None else None)


def error_text(exc: BaseException) -> str:
    """What a run row says of the exception that ended it (sfsync's paragraph, or type: text)."""
    from sfsync.errors import SfsyncError
    from sfsync.logging import redact_text

    if isinstance(exc, SfsyncError):
        return redact_text(exc.message)
    return redact_text(f"{type(exc).__name__}: {first_line(exc)}")


@dataclass
class RecordedRun:
    """The run being recorded: its id, and what its end will say.

    ``counts`` (set by the block) is called when the block ends, however it ends,
    and what it returns is stored in ``run.counts``: a stage's typed counts, or for
    a whole run each stage's outcome in words.
    """

    id: int
    own: bool
    status: RunStatus = "ok"
    error: str | None = None
    api_calls: int | None = None
    counts: Callable[[], StageCounts | dict[str, str]] | None = field(default=None, repr=False)

    def _store_counts(self, warehouse: Warehouse, *, failing: bool) -> None:
        if self.counts is not None:
            with recording(self.id, failing=failing):
                record_counts(warehouse, self.id, self.counts())


@contextmanager
def recorded_run(
    warehouse: Warehouse, kind: RunKind, *, run_id: int | None = None, as_of: date | None = None
) -> Iterator[RecordedRun]:
    """Record a run the one way every stage and whole run does.

    Without ``run_id``: a ``running`` row is committed at once (a process that dies
    leaves evidence), ``run_id`` is bound to every log event, and the end records the
    counts, the status the block set (default ``ok``), the API calls and the error
    text. An exception records ``failed`` with its text (``interrupted`` for a stop
    request, ``partial`` for the API budget) and goes on. With ``run_id`` (a stage
    inside a whole run) the block runs within that run, which records its own end;
    the stage's counts are merged into it.
    """
    from sfsync.errors import BudgetExhausted, Interrupted
    from sfsync.logging import bind_run, unbind_run

    own = run_id is None
    number = start_run(warehouse, kind, as_of=as_of) if run_id is None else run_id
    record = RecordedRun(number, own=own)
    if own:
        bind_run(record.id)
    try:
        yield record
    except BaseException as exc:
        # The work is failing (the database, say): a failure to record it must not
        # replace the error the user should read.
        record._store_counts(warehouse, failing=True)
        if own:
            status: RunStatus = (
                "interrupted"
                if isinstance(exc, Interrupted)
                else "partial"
                if isinstance(exc, BudgetExhausted)
                else "failed"
            )
            with recording(record.id, failing=True):
                finish_run(
                    warehouse, record.id, status, api_calls=record.api_calls, error=error_text(exc)
                )
        raise
    else:
        record._store_counts(warehouse, failing=False)
        if own:
            finish_run(
                warehouse, record.id, record.status, api_calls=record.api_calls, error=record.error
            )
    finally:
        if own:
            unbind_run()


@contextmanager
def recording(run_id: int, *, failing: bool) -> Iterator[None]:
    """Around recording a run's counts or end in a ``finally:`` block.

    When the work itself is failing (``failing``), a failure to record it is most
    likely the same trouble (the disk is full, the server went away): it is logged,
    not raised, so the error the user reads is the original one. The row then keeps
    what it said before (``running``: the next run marks it ``interrupted``), never
    a status the work did not reach. When the work succeeded, the failure is raised.
    """
    try:
        yield
    except Exception as exc:
        if not failing:
            raise
        get_logger().warning(
            "run.not_recorded", run_id=run_id, error=f"{type(exc).__name__}: {first_line(exc)}"
        )


def finish_run(
    warehouse: Warehouse,
    run_id: int,
    status: str,
    *,
    api_calls: int | None = None,
    error: str | None = None,
) -> None:
    """Close a run with its final status."""
    if status not in RUN_STATUSES:
        raise ValueError(f"unknown run status {status!r}")
    values: dict[str, Any] = {"status": status, "ended_at": utcnow(), "error": error}
    if api_calls is not None:
        values["api_calls"] = api_calls
    with warehouse.session() as session:
        session.execute(update(Run).where(Run.id == run_id).values(**values))


def mark_interrupted_runs(warehouse: Warehouse, *, exclude: int | None = None) -> int:
    """Mark ``running`` rows left by dead processes as ``interrupted``; return how many.

    Only call this while holding the run lock: then no other run can be live.
    """
    with warehouse.session() as session:
        query = update(Run).where(Run.status == "running")
        if exclude is not None:
            query = query.where(Run.id != exclude)
        result = session.execute(
            query.values(status="interrupted", ended_at=utcnow()).execution_options(
                synchronize_session=False
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)


def latest_run(warehouse: Warehouse, *kinds: str, exclude: int | None = None) -> Run | None:
    """The newest run of one of ``kinds`` (any kind if none given)."""
    with warehouse.session() as session:
        query = select(Run).order_by(Run.id.desc()).limit(1)
        if kinds:
            query = query.where(Run.kind.in_(kinds))
        if exclude is not None:
            query = query.where(Run.id != exclude)
        return session.scalars(query).first()
