"""Listing findings: what ``sfsync findings`` shows and exports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from sfsync.audit._context import OPP
from sfsync.audit._ids import record_id
from sfsync.audit._lifecycle import FINDING
from sfsync.audit.rules import check_rule_ids
from sfsync.errors import UsageError
from sfsync.warehouse._engine import Warehouse

__all__ = ["FINDING_STATUSES", "FindingRecord", "list_findings"]

FINDING_STATUSES = ("open", "resolved", "waived", "all")


@dataclass(frozen=True)
class FindingRecord:
    """A finding as listed and exported (``as_dict`` has the export's exact keys)."""

    id: int
    rule: str
    opportunity_id: str
    opportunity_name: str | None
    owner_id: str | None
    status: str
    profile: str
    severity: str
    opened_at: datetime
    resolved_at: datetime | None
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "opportunity_id": self.opportunity_id,
            "opportunity_name": self.opportunity_name,
            "owner_id": self.owner_id,
            "status": self.status,
            "profile": self.profile,
            "severity": self.severity,
            "opened_at": _iso_utc(self.opened_at),
            "resolved_at": None if self.resolved_at is None else _iso_utc(self.resolved_at),
            "details": self.details,
        }


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def list_findings(
    warehouse: Warehouse,
    *,
    status: str = "open",
    rules: Sequence[str] | None = None,
    owner_id: str | None = None,
) -> list[FindingRecord]:
    """Findings with their opportunity's current name and owner, oldest first per rule."""
    if status not in FINDING_STATUSES:
        raise UsageError(f"--status: {status!r} is not one of {', '.join(FINDING_STATUSES)}")
    f = FINDING
    query = (
        select(
            f.c.id,
            f.c.rule,
            f.c.opportunity_id,
            OPP.c.name.label("opportunity_name"),
            OPP.c.owner_id,
            f.c.status,
            f.c.profile,
            f.c.severity,
            f.c.opened_at,
            f.c.resolved_at,
            f.c.details,
        )
        .select_from(f.outerjoin(OPP, OPP.c.id == f.c.opportunity_id))
        .order_by(f.c.rule, f.c.opened_at, f.c.opportunity_id, f.c.id)
    )
    if status != "all":
        query = query.where(f.c.status == status)
    if rules:
        query = query.where(f.c.rule.in_(check_rule_ids(rules)))
    if owner_id is not None:
        query = query.where(OPP.c.owner_id == record_id(owner_id, "--owner"))
    with warehouse.engine.connect() as conn:
        return [
            FindingRecord(
                id=row.id,
                rule=row.rule,
                opportunity_id=row.opportunity_id,
                opportunity_name=row.opportunity_name,
                owner_id=row.owner_id,
                status=row.status,
                profile=row.profile,
                severity=row.severity,
                opened_at=row.opened_at,
                resolved_at=row.resolved_at,
                details=dict(row.details or {}),
            )
            for row in conn.execute(query)
        ]
