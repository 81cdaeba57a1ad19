"""``sfsync runs``: one flat row per recorded run, from its typed per-stage counts."""

from __future__ import annotations

from typing import Any

from sfsync.formats import rfc3339
from sfsync.warehouse import Warehouse
from sfsync.warehouse.counts import RunCounts
from sfsync.warehouse.recent import recent_runs

__all__ = ["run_rows"]


def run_rows(warehouse: Warehouse, limit: int = 20) -> list[dict[str, Any]]:
    """Recent runs, newest first, with sync/audit/write-back figures pulled up."""
    rows = []
    for run in recent_runs(warehouse, limit):
        counts = RunCounts.of(run.counts)
        sync, audit, writeback = counts.sync, counts.audit, counts.writeback
        seconds = (run.ended_at - run.started_at).total_seconds() if run.ended_at else None
        audited = audit is not None and bool(audit.rules)
        rows.append(
            {
                "id": run.id,
                "kind": run.kind,
                "status": run.status,
                "started_at": rfc3339(run.started_at),
                "ended_at": rfc3339(run.ended_at) if run.ended_at else None,
                "seconds": round(seconds, 1) if seconds is not None else None,
                "api_calls": run.api_calls,
                "as_of": run.as_of.isoformat() if run.as_of else None,
                "synced": sync.upserted if sync is not None else None,
                "open": audit.total("open") if audit is not None and audited else None,
                "new": audit.total("new") if audit is not None and audited else None,
                "resolved": audit.total("resolved") if audit is not None and audited else None,
                "tasks_created": writeback.created if writeback is not None else None,
                "tasks_completed": writeback.completed if writeback is not None else None,
                "tasks_failed": writeback.failed if writeback is not None else None,
                "reassigned": writeback.reassigned if writeback is not None else None,
                "stages": counts.stages or None,
                "error": run.error,
                "counts": counts.document(),
            }
        )
    return rows
