"""Audit the warehouse with the rules of docs/rules.md and keep the findings' history.

The rules (``sfsync.audit.rules``, one module each) are set-based SQL over the
warehouse (the same queries on SQLite and PostgreSQL); the fiscal calendar and the
business time zone are turned into bound parameters up front. Findings open,
update, resolve and reopen in one transaction per audit; waivers mark live
findings ``waived``.

Names are loaded on first use (PEP 562): the settings validate rule settings
through ``sfsync.audit.rules``, which should not pay for the audit machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sfsync.audit._api import (
        AuditSummary,
        RuleCounts,
        WaiverResult,
        WhatIf,
        run,
        run_audit,
        slip_metrics,
        waive_finding,
        what_if,
    )
    from sfsync.audit._calendar import today_in
    from sfsync.audit._context import CurrencyRates, currency_rates
    from sfsync.audit._findings import (
        FINDING_SORT_KEYS,
        FINDING_STATUSES,
        FindingColumn,
        FindingRecord,
        finding_columns,
        list_findings,
    )
    from sfsync.audit._slipping import SlipMetrics

_EXPORTS = {
    "CurrencyRates": "sfsync.audit._context",
    "currency_rates": "sfsync.audit._context",
    "FINDING_SORT_KEYS": "sfsync.audit._findings",
    "FINDING_STATUSES": "sfsync.audit._findings",
    "AuditSummary": "sfsync.audit._api",
    "FindingColumn": "sfsync.audit._findings",
    "FindingRecord": "sfsync.audit._findings",
    "RuleCounts": "sfsync.audit._api",
    "SlipMetrics": "sfsync.audit._slipping",
    "WaiverResult": "sfsync.audit._api",
    "WhatIf": "sfsync.audit._api",
    "finding_columns": "sfsync.audit._findings",
    "list_findings": "sfsync.audit._findings",
    "run": "sfsync.audit._api",
    "run_audit": "sfsync.audit._api",
    "slip_metrics": "sfsync.audit._api",
    "today_in": "sfsync.audit._calendar",
    "waive_finding": "sfsync.audit._api",
    "what_if": "sfsync.audit._api",
}

__all__ = [
    "FINDING_SORT_KEYS",
    "FINDING_STATUSES",
    "AuditSummary",
    "CurrencyRates",
    "FindingColumn",
    "FindingRecord",
    "RuleCounts",
    "SlipMetrics",
    "WaiverResult",
    "WhatIf",
    "currency_rates",
    "finding_columns",
    "list_findings",
    "run",
    "run_audit",
    "slip_metrics",
    "today_in",
    "waive_finding",
    "what_if",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
