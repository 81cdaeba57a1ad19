"""The write-back's data: the warehouse state it plans from, the plan, and the result.

Everything here is an immutable value so :func:`~sfsync.writeback.plan_writeback`
stays a pure function: the same state, settings and day always give the same plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from sfsync.warehouse.counts import RunStatus, WritebackCounts

__all__ = [
    "ACTIONS",
    "WRITE_ACTIONS",
    "Action",
    "FindingView",
    "LedgerState",
    "LedgerView",
    "OpportunityView",
    "PlannedAction",
    "RecordFailure",
    "TaskView",
    "UserView",
    "WaiverView",
    "WritebackPlan",
    "WritebackResult",
    "WritebackState",
]

Action = Literal["create_task", "complete_task", "set_flag", "clear_flag", "skip"]
ACTIONS: tuple[Action, ...] = ("create_task", "complete_task", "set_flag", "clear_flag", "skip")
WRITE_ACTIONS: frozenset[str] = frozenset(ACTIONS) - {"skip"}


class LedgerState(StrEnum):
    PLANNED = "planned"  # committed intent, certainly not sent
    SENT = "sent"  # the call is (or was) being made: in doubt until answered or reconciled
    CONFIRMED = "confirmed"  # Salesforce accepted it (salesforce_id known)
    FAILED = "failed"  # Salesforce refused it: certainly not applied; a later run retries
    ABANDONED = "abandoned"  # not needed any more, or no owner can take it


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class UserView:
    id: str
    name: str | None
    is_active: bool | None
    manager_id: str | None


@dataclass(frozen=True)
class OpportunityView:
    id: str
    name: str | None
    owner_id: str | None
    is_closed: bool
    is_deleted: bool
    synced_at: datetime | None = None
    # Current values of the flag fields (writeback.flags.*) as last synced.
    flag_rules: str | None = None
    flag_extensions: float | None = None
    # Month extensions of the close date (for the extensions flag), when computed.
    month_extensions: int | None = None


@dataclass(frozen=True)
class WaiverView:
    """The admin's waiver behind a waived finding (the latest for its rule and deal)."""

    reason: str
    until: date
    created_at: datetime | None = None
    created_by: str | None = None


@dataclass(frozen=True)
class FindingView:
    id: int
    rule: str
    opportunity_id: str
    status: str  # open | waived | resolved
    details: Mapping[str, Any]
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    waiver: WaiverView | None = None


@dataclass(frozen=True)
class LedgerView:
    id: int
    key: str
    action: str
    state: LedgerState
    rule: str
    opportunity_id: str
    finding_id: int | None
    salesforce_id: str | None = None
    owner_id: str | None = None
    original_owner_id: str | None = None
    reassigned_reason: str | None = None
    attempts: int = 0
    error_code: str | None = None
    error_message: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    confirmed_at: datetime | None = None


@dataclass(frozen=True)
class TaskView:
    """An sfsync Task as the warehouse last saw it."""

    id: str
    what_id: str | None
    owner_id: str | None
    subject: str | None
    status: str | None
    is_closed: bool
    is_deleted: bool
    key: str | None  # the idempotency key (external-id field, or from the description)
    created_by_id: str | None = None
    created_date: datetime | None = None
    # When it was completed (is_closed) or deleted (is_deleted), as far as we know.
    closed_at: datetime | None = None
    description: str | None = None


@dataclass(frozen=True)
class WritebackState:
    """What the planner needs, loaded set-based from the warehouse."""

    findings: tuple[FindingView, ...]
    opportunities: Mapping[str, OpportunityView]
    users: Mapping[str, UserView]
    ledger: tuple[LedgerView, ...]
    tasks: tuple[TaskView, ...]


# --------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class PlannedAction:
    """One entry of a plan: a write (with its idempotency key) or a skip with a reason."""

    action: Action
    opportunity_id: str
    rule: str | None = None
    finding_id: int | None = None
    opportunity_name: str | None = None
    key: str | None = None
    reason: str = ""
    skip_code: str | None = None
    owner_id: str | None = None
    original_owner_id: str | None = None
    reassigned_reason: str | None = None
    # Who gets the Task if Salesforce says ``owner_id`` is inactive after all, in order.
    next_owners: tuple[str, ...] = ()
    subject: str | None = None
    due_date: date | None = None
    priority: str | None = None
    status: str | None = None
    description: str | None = None
    task_id: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    # In doubt after an interrupted run: Salesforce is asked before anything is re-sent.
    reconcile: bool = False
    attempts: int = 0

    @property
    def is_write(self) -> bool:
        return self.action != "skip"

    def task_record(self) -> dict[str, Any]:
        """The Task fields a ``create_task`` sends (without the key field)."""
        return {
            "WhatId": self.opportunity_id,
            "OwnerId": self.owner_id,
            "Subject": self.subject,
            "ActivityDate": self.due_date.isoformat() if self.due_date else None,
            "Priority": self.priority,
            "Status": self.status,
            "Description": self.description,
        }

    def as_dict(self) -> dict[str, Any]:
        """The JSON form used by the preview (``--format json``)."""
        return {
            "action": self.action,
            "rule": self.rule,
            "opportunity_id": self.opportunity_id,
            "opportunity_name": self.opportunity_name,
            "finding_id": self.finding_id,
            "key": self.key,
            "reason": self.reason,
            "skip_code": self.skip_code,
            "owner_id": self.owner_id,
            "original_owner_id": self.original_owner_id,
            "reassigned_reason": self.reassigned_reason,
            "subject": self.subject,
            "due_date": self.due_date.isoformat() if self.due_date else None,
            "priority": self.priority,
            "status": self.status,
            "description": self.description,
            "task_id": self.task_id,
            "fields": dict(self.fields),
            "reconcile": self.reconcile,
            "attempts": self.attempts,
        }


@dataclass(frozen=True)
class WritebackPlan:
    """Every planned write and skip, plus ledger housekeeping, for one day."""

    today: date
    actions: tuple[PlannedAction, ...]
    # Ledger keys never sent (or reconciled as absent) whose finding no longer needs them.
    abandon: tuple[str, ...] = ()
    # Earlier failures still on record (failed: retried; abandoned: gave up).
    failures: tuple[LedgerView, ...] = ()
    max_tasks_per_run: int = 500
    enabled: bool = True
    # Tasks over the cap left for later runs (writeback.over_cap: spread).
    deferred: int = 0

    @property
    def writes(self) -> tuple[PlannedAction, ...]:
        return tuple(a for a in self.actions if a.is_write)

    @property
    def creates(self) -> int:
        return sum(1 for a in self.actions if a.action == "create_task")

    @property
    def over_cap(self) -> bool:
        return self.creates > self.max_tasks_per_run

    @property
    def reassignments(self) -> tuple[PlannedAction, ...]:
        return tuple(a for a in self.actions if a.is_write and a.reassigned_reason)

    def counts(self) -> dict[str, int]:
        counter = Counter(a.action for a in self.actions)
        return {action: counter.get(action, 0) for action in ACTIONS}

    def counts_by_rule(self) -> dict[str, dict[str, int]]:
        """``{rule: {action: n}}`` (flags, which span rules, under ``"flags"``)."""
        table: dict[str, dict[str, int]] = {}
        for entry in self.actions:
            rule = entry.rule or "flags"
            row = table.setdefault(rule, dict.fromkeys(ACTIONS, 0))
            row[entry.action] += 1
        return dict(sorted(table.items()))

    def skip_reasons(self) -> dict[str, int]:
        counter = Counter(a.skip_code or "other" for a in self.actions if a.action == "skip")
        return dict(sorted(counter.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "enabled": self.enabled,
            "max_tasks_per_run": self.max_tasks_per_run,
            "over_cap": self.over_cap,
            "deferred": self.deferred,
            "counts": self.counts(),
            "counts_by_rule": self.counts_by_rule(),
            "skip_reasons": self.skip_reasons(),
            "actions": [a.as_dict() for a in self.actions],
            "abandon": list(self.abandon),
            "failures": [_failure_dict(f) for f in self.failures],
        }


def _failure_dict(row: LedgerView) -> dict[str, Any]:
    return {
        "key": row.key,
        "action": row.action,
        "rule": row.rule,
        "opportunity_id": row.opportunity_id,
        "state": row.state,
        "attempts": row.attempts,
        "error_code": row.error_code,
        "error_message": row.error_message,
        "updated_at": row.updated_at.isoformat() if row.updated_at else None,
    }


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class RecordFailure:
    """One write Salesforce refused (or that could not be sent) in this run."""

    key: str
    action: str
    rule: str | None
    opportunity_id: str
    code: str
    message: str
    # "retry": failed transiently, retried next run; "retry_later": refused, retried
    # after a back-off (writeback.retry_max_days); "gave_up": abandoned (no active
    # owner left); "in_doubt": the call's outcome is unknown, reconciled next run.
    outcome: str
    attempts: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "action": self.action,
            "rule": self.rule,
            "opportunity_id": self.opportunity_id,
            "code": self.code,
            "message": self.message,
            "outcome": self.outcome,
            "attempts": self.attempts,
        }


@dataclass
class WritebackResult:
    """What a preview or an apply did."""

    plan: WritebackPlan
    applied: bool = False
    status: RunStatus = "ok"  # ok | partial
    run_id: int | None = None
    mode: str | None = None  # upsert (external id) | create (fallback reconciliation)
    created: int = 0
    completed: int = 0
    flags_set: int = 0
    flags_cleared: int = 0
    reconciled: int = 0
    reassigned: int = 0
    api_calls: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    # The API budget ran out mid-apply: what was sent before is confirmed in the ledger,
    # the rest stays planned. The budget's own explanation.
    budget_stop: str | None = None
    failures: list[RecordFailure] = field(default_factory=list)
    reassignments: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # key -> Salesforce id of every write confirmed in this run.
    confirmed: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def reassigned_total(self) -> int:
        """Writes that went to someone else than the owner: planned so, or on Salesforce's word.

        In a preview, the planned ones; after an apply, those confirmed.
        """
        planned = self.plan.reassignments
        if self.applied:
            planned = tuple(a for a in planned if a.key in self.confirmed)
        return self.reassigned + len(planned)

    @property
    def skipped(self) -> int:
        return self.plan.counts()["skip"]

    def written(self) -> str:
        """What this apply wrote, in words ("30 Tasks created, 2 completed, 0 flags written")."""
        flags = self.flags_set + self.flags_cleared
        return f"{self.created} Tasks created, {self.completed} completed, {flags} flags written"

    def budget_message(self) -> str | None:
        """The exit-4 paragraph when the API budget stopped this apply, else None."""
        if self.budget_stop is None:
            return None
        return (
            f"the API budget ran out during the write-back: {self.written()} before it did; "
            "the writes not sent stay planned in the ledger for the next run "
            f"({self.budget_stop})"
        )

    def counts(self) -> WritebackCounts:
        """What ``run.counts`` records of this write-back (previews included)."""
        return WritebackCounts(
            status=self.status,
            applied=self.applied,
            mode=self.mode,
            created=self.created,
            completed=self.completed,
            flags_set=self.flags_set,
            flags_cleared=self.flags_cleared,
            failed=self.failed,
            retry_later=sum(1 for f in self.failures if f.outcome != "gave_up"),
            gave_up=sum(1 for f in self.failures if f.outcome == "gave_up"),
            waiting=self.plan.skip_reasons().get("retry_later", 0),
            reassigned=self.reassigned_total,
            reconciled=self.reconciled,
            skipped=self.skipped,
            planned=self.plan.counts(),
            api_calls=self.api_calls,
            seconds=round(self.seconds, 3),
            interrupted=self.interrupted,
            budget_stop=self.budget_stop,
            warnings=list(self.warnings),
        )

    def as_dict(self) -> dict[str, Any]:
        counts = self.counts().model_dump(mode="json", exclude={"stage"})
        return {
            "run_id": self.run_id,
            **counts,
            "plan": self.plan.as_dict(),
            "failures": [f.as_dict() for f in self.failures],
            "reassignments": list(self.reassignments),
        }
