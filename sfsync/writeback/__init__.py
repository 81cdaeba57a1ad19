"""Write-back: findings to Salesforce Tasks (and optional flags), previewed, capped, never twice.

``plan_writeback`` is a pure function of the warehouse state (``load_writeback_state``),
the settings and a day; ``run_writeback`` previews that plan or applies it, and
``apply_writeback`` executes exactly the plan it is given. The ledger
(``writeback_ledger``) records each write before it is sent, so a crash at any
point is reconciled with Salesforce on the next run instead of re-sent blindly.
For chaos testing, ``SFSYNC_CRASH_AT`` kills the process at named points (see
:mod:`sfsync.chaos`).
"""

from sfsync.writeback._apply import apply_writeback
from sfsync.writeback._ledger import TRANSITIONS, IllegalTransition, Ledger, LedgerState
from sfsync.writeback._model import (
    ACTIONS,
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
from sfsync.writeback._retry import next_attempt_day
from sfsync.writeback._run import (
    WritebackRefused,
    required_fields,
    run,
    run_writeback,
    safety_problems,
)
from sfsync.writeback._state import load_writeback_state

__all__ = [
    "ACTIONS",
    "TRANSITIONS",
    "FindingView",
    "IllegalTransition",
    "Ledger",
    "LedgerState",
    "LedgerView",
    "OpportunityView",
    "PlannedAction",
    "RecordFailure",
    "TaskView",
    "UserView",
    "WritebackPlan",
    "WritebackRefused",
    "WritebackResult",
    "WritebackState",
    "apply_writeback",
    "choose_owner",
    "load_writeback_state",
    "next_attempt_day",
    "plan_writeback",
    "required_fields",
    "run",
    "run_writeback",
    "safety_problems",
]
