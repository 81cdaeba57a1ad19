"""Recording runs: one ``run`` row per sync, audit, write-back, or whole run.

A run row is committed as ``running`` when the work starts, so a process that
dies leaves evidence (``sfsync runs`` shows it, and the next run marks it
``interrupted``); it is finished with a status, per-stage counts and API calls.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update

from sfsync.logging import get_logger
from sfsync.warehouse._engine import Warehouse, first_line
from sfsync.warehouse.models import Run

__all__ = [
    "RUN_STATUSES",
    "finish_run",
    "latest_run",
    "mark_interrupted_runs",
    "merge_counts",
    "recent_runs",
    "recording",
    "start_run",
]

RUN_STATUSES = ("running", "ok", "partial", "failed", "interrupted")


def utcnow() -> datetime:
    return datetime.now(UTC)


def start_run(warehouse: Warehouse, kind: str, *, as_of: date | None = None) -> int:
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


def merge_counts(warehouse: Warehouse, run_id: int, stage: str, counts: dict[str, Any]) -> None:
    """Store one stage's counts under ``counts[stage]`` (committed at once)."""
    with warehouse.session() as session:
        run = session.get(Run, run_id, with_for_update=warehouse.dialect == "postgresql")
        if run is None:
            raise LookupError(f"run {run_id} does not exist")
        run.counts = {**run.counts, stage: counts}


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


def recent_runs(warehouse: Warehouse, limit: int = 20) -> list[Run]:
    with warehouse.session() as session:
        return list(session.scalars(select(Run).order_by(Run.id.desc()).limit(limit)))
