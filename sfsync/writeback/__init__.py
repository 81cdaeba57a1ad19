"""Write-back: findings to Salesforce Tasks (and optional flags), previewed, capped, never twice.

``plan_writeback`` is a pure function of the warehouse state, the settings and a day.
"""

from sfsync.writeback._model import (
    ACTIONS,
    LEDGER_STATES,
    FindingView,
    LedgerView,
    OpportunityView,
    PlannedAction,
    RecordFailure,
    TaskView,
    UserView,
    WritebackPlan,
    WritebackResult,
    WritebackState,
)
from sfsync.writeback._plan import choose_owner, plan_writeback

__all__ = [
    "ACTIONS",
    "LEDGER_STATES",
    "FindingView",
    "LedgerView",
    "OpportunityView",
    "PlannedAction",
    "RecordFailure",
    "TaskView",
    "UserView",
    "WritebackPlan",
    "WritebackResult",
    "WritebackState",
    "choose_owner",
    "plan_writeback",
]
