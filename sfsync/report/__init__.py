"""The pipeline-hygiene report: one self-contained HTML page from the warehouse.

``build_report`` reads the figures (pure data, set-based queries), including the
deals behind each rule's open findings with their amounts in the corporate
currency and their Salesforce links; ``render_html`` turns them into a page that
loads nothing at view time, and ``write_report`` does both and writes the file
atomically.
"""

from sfsync.report._data import (
    Histogram,
    LastAudit,
    OrgInfo,
    OwnerRow,
    ReportData,
    ReportLimits,
    RuleSummary,
    RunRow,
    SlipRow,
    SlipSummary,
    Totals,
    TrendPoint,
    build_report,
)
from sfsync.report._deals import (
    DealValue,
    FlaggedDeal,
    PipelineAtRisk,
    RecordLinks,
    RuleDeals,
    ValueColumn,
)
from sfsync.report._html import render_html
from sfsync.report._write import write_report

__all__ = [
    "DealValue",
    "FlaggedDeal",
    "Histogram",
    "LastAudit",
    "OrgInfo",
    "OwnerRow",
    "PipelineAtRisk",
    "RecordLinks",
    "ReportData",
    "ReportLimits",
    "RuleDeals",
    "RuleSummary",
    "RunRow",
    "SlipRow",
    "SlipSummary",
    "Totals",
    "TrendPoint",
    "ValueColumn",
    "build_report",
    "render_html",
    "write_report",
]
