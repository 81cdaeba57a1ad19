"""Small builders for write-back states: a few users, opportunities, findings, ledger rows."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from sfsync.config import Settings
from sfsync.formats import id15_to_18
from sfsync.writeback import (
    FindingView,
    LedgerView,
    OpportunityView,
    TaskView,
    UserView,
    WritebackState,
)

TODAY = date(2024, 8, 15)
NOW = datetime(2024, 8, 15, 9, 0, tzinfo=UTC)


def sfid(prefix: str, n: int) -> str:
    return id15_to_18(f"{prefix}{n:012d}")


REP = sfid("005", 2)
GONE = sfid("005", 3)  # inactive, manager BOSS
BOSS = sfid("005", 4)
GONE_BOSS = sfid("005", 5)  # inactive manager
ORPHAN_REP = sfid("005", 6)  # inactive, manager GONE_BOSS
NO_MANAGER = sfid("005", 7)  # inactive, no manager
FALLBACK = sfid("005", 8)
INACTIVE_FALLBACK = sfid("005", 9)
MISSING_USER = sfid("005", 99)

USERS = {
    REP: UserView(REP, "Ann Lee", True, BOSS),
    GONE: UserView(GONE, "Bob Gone", False, BOSS),
    BOSS: UserView(BOSS, "Cy Boss", True, None),
    GONE_BOSS: UserView(GONE_BOSS, "Di Left", False, None),
    ORPHAN_REP: UserView(ORPHAN_REP, "Ed Alone", False, GONE_BOSS),
    NO_MANAGER: UserView(NO_MANAGER, "Flo Solo", False, None),
    FALLBACK: UserView(FALLBACK, "Gil Ops", True, None),
    INACTIVE_FALLBACK: UserView(INACTIVE_FALLBACK, "Hal Old", False, None),
}

OPP = sfid("006", 1)
OPP2 = sfid("006", 2)


def opportunity(
    opp_id: str = OPP,
    *,
    owner: str | None = REP,
    name: str = "Acme 10 instruments",
    closed: bool = False,
    deleted: bool = False,
    **kw: Any,
) -> OpportunityView:
    return OpportunityView(opp_id, name, owner, closed, deleted, **kw)


DETAILS: dict[str, dict[str, Any]] = {
    "close_date_past": {
        "stage": "Negotiate",
        "close_date": "2024-08-01",
        "k": 0,
        "amount": 60000.0,
        "currency": "USD",
        "converted_amount": 60000.0,
        "amount_threshold": 50000.0,
        "big": True,
        "has_instrument": False,
        "today": "2024-08-15",
    },
    "stale_last_modified": {
        "stage": "Qualify",
        "close_date": "2024-09-20",
        "k": 0,
        "amount": 60000.0,
        "currency": "USD",
        "converted_amount": 60000.0,
        "amount_threshold": 50000.0,
        "big": True,
        "has_instrument": False,
        "min_stage": "Qualify",
        "threshold_days": 14,
        "days_since_last_human_modification": 16,
        "last_human_modified_date": "2024-07-30T10:00:00+00:00",
        "last_human_modified_by_id": REP,
        "last_human_assumed": False,
    },
    "missing_rev_rec_terms": {
        "stage": "Prove",
        "min_stage": "Prove",
        "has_instrument": True,
        "field": "Rev_Rec_Terms__c",
        "rev_rec_terms": None,
    },
    "close_date_slipping": {
        "stage": "Qualify",
        "close_date": "2025-01-05",
        "month_extensions": 4,
        "min_extensions": 3,
        "lower_bound": False,
        "close_date_source": "history",
        "days_since_stage_change": 100,
        "days_open": 237,
    },
}


def finding(
    fid: int = 1,
    rule: str = "missing_rev_rec_terms",
    opp_id: str = OPP,
    status: str = "open",
    **details: Any,
) -> FindingView:
    return FindingView(fid, rule, opp_id, status, {**DETAILS[rule], **details})


def ledger(
    key: str,
    *,
    row_id: int = 1,
    action: str = "create_task",
    state: str = "confirmed",
    rule: str = "missing_rev_rec_terms",
    opp_id: str = OPP,
    finding_id: int | None = 1,
    salesforce_id: str | None = None,
    **kw: Any,
) -> LedgerView:
    return LedgerView(
        row_id,
        key,
        action,
        state,
        rule,
        opp_id,
        finding_id,
        salesforce_id=salesforce_id,
        **kw,
    )


def task(
    task_id: str,
    *,
    key: str | None,
    what_id: str = OPP,
    closed: bool = False,
    deleted: bool = False,
    closed_at: datetime | None = None,
    owner: str = REP,
    description: str | None = None,
) -> TaskView:
    return TaskView(
        task_id,
        what_id,
        owner,
        "[sfsync] Rev Rec Terms not entered: Acme",
        "Completed" if closed else "Not Started",
        closed,
        deleted,
        key,
        closed_at=closed_at,
        description=description,
    )


@dataclass
class StateBuilder:
    findings: list[FindingView] = field(default_factory=list)
    opportunities: dict[str, OpportunityView] = field(
        default_factory=lambda: {OPP: opportunity(), OPP2: opportunity(OPP2, name="Beta")}
    )
    users: dict[str, UserView] = field(default_factory=lambda: dict(USERS))
    ledger: list[LedgerView] = field(default_factory=list)
    tasks: list[TaskView] = field(default_factory=list)

    def build(self) -> WritebackState:
        return WritebackState(
            tuple(self.findings),
            dict(self.opportunities),
            dict(self.users),
            tuple(self.ledger),
            tuple(self.tasks),
        )


def state(
    findings: list[FindingView] | None = None,
    *,
    opportunities: list[OpportunityView] | None = None,
    ledger_rows: list[LedgerView] | None = None,
    tasks: list[TaskView] | None = None,
) -> WritebackState:
    builder = StateBuilder()
    builder.findings = list(findings or [])
    for opp in opportunities or []:
        builder.opportunities[opp.id] = opp
    builder.ledger = list(ledger_rows or [])
    builder.tasks = list(tasks or [])
    return builder.build()


def settings(**writeback: Any) -> Settings:
    base = Settings().model_dump()
    wb = {**base["writeback"], **writeback}
    return Settings.model_validate({"writeback": wb})


__all__ = [
    "BOSS",
    "DETAILS",
    "FALLBACK",
    "GONE",
    "GONE_BOSS",
    "INACTIVE_FALLBACK",
    "MISSING_USER",
    "NOW",
    "NO_MANAGER",
    "OPP",
    "OPP2",
    "ORPHAN_REP",
    "REP",
    "TODAY",
    "USERS",
    "StateBuilder",
    "finding",
    "ledger",
    "opportunity",
    "replace",
    "settings",
    "sfid",
    "state",
    "task",
]
