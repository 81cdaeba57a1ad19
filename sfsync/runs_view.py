"""``sfsync runs``: one flat row per recorded run, from its per-stage counts."""

from __future__ import annotations

from typing import Any

from sfsync.warehouse import Warehouse
from sfsync.warehouse.runs import recent_runs

__all__ = ["run_rows"]


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _total(parts: dict[str, Any], key: str) -> int:
    """``key`` summed over the parts of a stage (its objects, its rules)."""
    return sum(_int(part.get(key)) for part in parts.values())


def run_rows(warehouse: Warehouse, limit: int = 20) -> list[dict[str, Any]]:
    """Recent runs, newest first, with sync/audit/write-back figures pulled up."""
    rows = []
    for run in recent_runs(warehouse, limit):
        counts = run.counts or {}
        sync = counts.get("sync") or {}
        audit_rules = (counts.get("audit") or {}).get("rules") or {}
        writeback = counts.get("writeback") or {}
        seconds = (run.ended_at - run.started_at).total_seconds() if run.ended_at else None
        rows.append(
            {
                "id": run.id,
                "kind": run.kind,
                "status": run.status,
                "started_at": run.started_at.isoformat(),
                "ended_at": run.ended_at.isoformat() if run.ended_at else None,
                "seconds": round(seconds, 1) if seconds is not None else None,
                "api_calls": run.api_calls,
                "as_of": run.as_of.isoformat() if run.as_of else None,
                "synced": _total(sync.get("objects") or {}, "upserted") if sync else None,
                "open": _total(audit_rules, "open") if audit_rules else None,
                "new": _total(audit_rules, "new") if audit_rules else None,
                "resolved": _total(audit_rules, "resolved") if audit_rules else None,
                "tasks_created": writeback.get("created"),
                "tasks_completed": writeback.get("completed"),
                "tasks_failed": writeback.get("failed"),
                "reassigned": writeback.get("reassigned"),
                "stages": counts.get("stages"),
                "error": run.error,
                "counts": counts,
            }
        )
    return rows
