"""Audit the warehouse with the rules of docs/rules.md and keep the findings' history.

The rules are set-based SQL over the warehouse (the same queries on SQLite and
PostgreSQL); the fiscal calendar and the business time zone are turned into
bound parameters up front. Findings open, update, resolve and reopen in one
transaction per audit; waivers mark live findings ``waived``.
"""

from sfsync.audit._api import (
    FINDING_STATUSES,
    AuditSummary,
    FindingRecord,
    RuleCounts,
    WaiverResult,
    list_findings,
    run_audit,
    slip_metrics,
    waive_finding,
)
from sfsync.audit._context import RULE_TITLES
from sfsync.audit._slipping import SlipMetrics

__all__ = [
    "FINDING_STATUSES",
    "RULE_TITLES",
    "AuditSummary",
    "FindingRecord",
    "RuleCounts",
    "SlipMetrics",
    "WaiverResult",
    "list_findings",
    "run_audit",
    "slip_metrics",
    "waive_finding",
]
