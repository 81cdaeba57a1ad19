"""The planner: a pure function from warehouse state, settings and a day to a plan.

Per (opportunity, rule) it looks at the live finding (open or waived), findings
resolved while their Task is still open, the ledger's rows for them and the
sfsync Tasks the warehouse has synced, and decides one of:

- ``create_task``: no open Task and none in flight (a new finding, a retry of an
  unsent or refused write with the *same* key, a re-send after reconciliation,
  or a renotification once ``renotify_after_days`` have passed since a person
  completed or deleted the last one);
- ``complete_task``: the finding resolved and its Task is still open;
- ``skip`` with a code and a reason (waived, closed or deleted opportunity,
  rule disabled, Task already open, renotify pending, no active owner, gave up).

The invariant it keeps: never a second open sfsync Task for an (opportunity,
rule). An open Task from an earlier finding is kept for the new one rather than
completed and replaced, and a write whose outcome is unknown blocks new keys
until it is reconciled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sfsync.config import SEVERITY_RANK, Settings, TaskRuleSettings, WritebackSettings
from sfsync.formats import id15_to_18, is_salesforce_id
from sfsync.logging import get_logger
from sfsync.writeback._keys import complete_key, flag_key, parse_task_key, task_key
from sfsync.writeback._model import (
    Action,
    FindingView,
    LedgerView,
    OpportunityView,
    PlannedAction,
    TaskView,
    UserView,
    WritebackPlan,
    WritebackState,
)
from sfsync.writeback._retry import next_attempt_day
from sfsync.writeback._text import (
    completed_description,
    completion_note,
    task_description,
    task_subject,
    waiver_note,
)

__all__ = ["OwnerChoice", "choose_owner", "plan_writeback"]

log = get_logger()

SUPERSEDED = "SUPERSEDED"
# Give-ups that do not block a fresh attempt once the cause is gone (the owner chain
# is recomputed from the warehouse every run).
_NON_BLOCKING_GIVE_UPS = frozenset({SUPERSEDED, "INACTIVE_OWNER_OR_USER", "NO_ACTIVE_OWNER"})


# --------------------------------------------------------------------------- owners


@dataclass(frozen=True)
class OwnerChoice:
    """Who gets the Task, and why if it is not the opportunity owner."""

    owner_id: str | None
    original_owner_id: str | None
    reassigned_reason: str | None = None
    next_owners: tuple[str, ...] = ()
    problem: str | None = None


def _normalise_id(value: str | None) -> str | None:
    if value and len(value) == 15 and is_salesforce_id(value):
        return id15_to_18(value)
    return value


def choose_owner(
    owner_id: str | None, users: Mapping[str, UserView], fallback_id: str | None
) -> OwnerChoice:
    """Owner if active, else the owner's manager if active, else the fallback user.

    An owner the warehouse does not know is assumed active (Salesforce has the
    last word: ``INACTIVE_OWNER_OR_USER`` then moves the Task down ``next_owners``).
    A fallback that does not exist or is inactive is a per-record problem.
    """
    fallback_id = _normalise_id(fallback_id)
    owner = users.get(owner_id) if owner_id else None
    manager = users.get(owner.manager_id) if owner and owner.manager_id else None
    manager_ok = manager is not None and manager.is_active is not False
    fallback = users.get(fallback_id) if fallback_id else None
    fallback_problem: str | None = None
    if fallback_id and fallback is None:
        fallback_problem = (
            f"writeback.fallback_owner_id {fallback_id} does not exist in the org "
            "(not a synced User)"
        )
    elif fallback is not None and fallback.is_active is False:
        fallback_problem = f"writeback.fallback_owner_id {fallback_id} is inactive"
    fallback_ok = fallback_id is not None and fallback_problem is None

    def later(after: str | None) -> tuple[str, ...]:
        chain: list[str] = []
        if manager_ok and manager is not None and manager.id != after:
            chain.append(manager.id)
        if fallback_ok and fallback_id not in chain and fallback_id != after:
            assert fallback_id is not None
            chain.append(fallback_id)
        return tuple(chain)

    if owner_id is None:
        if fallback_ok:
            return OwnerChoice(
                fallback_id, None, "the opportunity has no owner: assigned to the fallback owner"
            )
        return OwnerChoice(None, None, problem="the opportunity has no owner")
    if owner is None or owner.is_active is not False:
        return OwnerChoice(owner_id, None, next_owners=later(owner_id))
    who = f"owner {owner.name or owner_id} ({owner_id}) is inactive"
    if manager_ok and manager is not None:
        reason = f"{who}: assigned to their manager {manager.name or manager.id} ({manager.id})"
        return OwnerChoice(manager.id, owner_id, reason, later(manager.id))
    no_manager = (
        "has no manager"
        if manager is None
        else f"their manager {manager.name or manager.id} ({manager.id}) is inactive"
    )
    if fallback_ok:
        assert fallback_id is not None
        reason = f"{who} and {no_manager}: assigned to the fallback owner {fallback_id}"
        return OwnerChoice(fallback_id, owner_id, reason)
    problem = f"{who}, {no_manager}, and " + (
        fallback_problem or "writeback.fallback_owner_id is not set"
    )
    return OwnerChoice(None, owner_id, problem=problem)


# --------------------------------------------------------------------------- indexes


@dataclass
class _Pair:
    """Everything the state holds about one (opportunity, rule)."""

    opportunity_id: str
    rule: str
    live: FindingView | None = None
    resolved: list[FindingView] = field(default_factory=list)
    rows: list[LedgerView] = field(default_factory=list)  # create_task rows
    orphans: list[TaskView] = field(default_factory=list)  # sfsync Tasks the ledger lacks


@dataclass(frozen=True)
class _TaskStatus:
    """One sfsync Task (or intended Task) of a pair and where it stands."""

    kind: str  # open | closed_by_us | closed_by_person | deleted | in_doubt | unsent | gave_up
    row: LedgerView | None
    task: TaskView | None
    task_id: str | None

    @property
    def finding_id(self) -> int | None:
        if self.row is not None:
            return self.row.finding_id
        parsed = parse_task_key(self.task.key if self.task else None)
        return parsed.finding_id if parsed else None


class _Index:
    def __init__(self, state: WritebackState) -> None:
        self.tasks_by_id = {t.id: t for t in state.tasks}
        self.tasks_by_key = {t.key: t for t in state.tasks if t.key}
        self.completions: dict[str, LedgerView] = {}
        self.flag_rows: dict[str, list[LedgerView]] = defaultdict(list)
        self.create_rows: list[LedgerView] = []
        for row in state.ledger:
            if row.action == "create_task":
                self.create_rows.append(row)
            elif row.action == "complete_task" and row.salesforce_id:
                self.completions[row.salesforce_id] = row
            elif row.action in ("set_flag", "clear_flag"):
                self.flag_rows[row.opportunity_id].append(row)

    def completed_by_us(self, task_id: str | None) -> bool:
        row = self.completions.get(task_id) if task_id else None
        return row is not None and row.state == "confirmed"

    def status(self, row: LedgerView | None, task: TaskView | None) -> _TaskStatus:
        if row is not None and row.state != "confirmed":
            kind = {
                "sent": "in_doubt",
                "planned": "unsent",
                "failed": "unsent",
            }.get(row.state, "gave_up")
            return _TaskStatus(kind, row, task, row.salesforce_id)
        task_id = (row.salesforce_id if row else None) or (task.id if task else None)
        if task is None and task_id:
            task = self.tasks_by_id.get(task_id)
        if task is None and row is not None:
            task = self.tasks_by_key.get(row.key)
        if self.completed_by_us(task_id):
            return _TaskStatus("closed_by_us", row, task, task_id)
        if task is None:
            # Confirmed but not synced yet: assume it is still open (never duplicate).
            return _TaskStatus("open", row, task, task_id)
        if task.is_deleted:
            return _TaskStatus("deleted", row, task, task_id)
        if task.is_closed:
            return _TaskStatus("closed_by_person", row, task, task_id)
        return _TaskStatus("open", row, task, task_id)


def _pairs(state: WritebackState, index: _Index) -> dict[tuple[str, str], _Pair]:
    pairs: dict[tuple[str, str], _Pair] = {}

    def pair(opportunity_id: str, rule: str) -> _Pair:
        key = (opportunity_id, rule)
        if key not in pairs:
            pairs[key] = _Pair(opportunity_id, rule)
        return pairs[key]

    for finding in sorted(state.findings, key=lambda f: f.id):
        p = pair(finding.opportunity_id, finding.rule)
        if finding.status in ("open", "waived"):
            p.live = finding
        else:
            p.resolved.append(finding)
    claimed: set[str] = set()
    for row in index.create_rows:
        p = pair(row.opportunity_id, row.rule)
        p.rows.append(row)
        if row.salesforce_id:
            claimed.add(row.salesforce_id)
        claimed.add(row.key)
    for task in sorted(index.tasks_by_id.values(), key=lambda t: t.id):
        parsed = parse_task_key(task.key)
        if parsed is None or task.id in claimed or (task.key and task.key in claimed):
            continue
        pair(parsed.opportunity_id, parsed.rule).orphans.append(task)
    return pairs


# --------------------------------------------------------------------------- planning


class _Planner:
    def __init__(self, state: WritebackState, settings: Settings, today: date) -> None:
        self.state = state
        self.settings = settings
        self.wb: WritebackSettings = settings.writeback
        self.today = today
        self.tz = ZoneInfo(settings.audit.timezone)
        self.index = _Index(state)
        self.actions: list[PlannedAction] = []
        self.abandon: list[str] = []

    # -- helpers

    def _task_settings(self, rule: str) -> TaskRuleSettings | None:
        """``writeback.rules.<rule>``; None for a rule no longer registered."""
        try:
            return self.wb.rule(rule)
        except KeyError:
            return None

    def _opp(self, opportunity_id: str) -> OpportunityView | None:
        return self.state.opportunities.get(opportunity_id)

    def _local_date(self, moment: datetime | None) -> date | None:
        if moment is None:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.tz).date()

    def _skip(
        self,
        p: _Pair,
        code: str,
        reason: str,
        finding: FindingView | None,
        *,
        key: str | None = None,
        reconcile: bool = False,
        owner_id: str | None = None,
        original_owner_id: str | None = None,
    ) -> None:
        opp = self._opp(p.opportunity_id)
        self.actions.append(
            PlannedAction(
                "skip",
                p.opportunity_id,
                rule=p.rule,
                finding_id=finding.id if finding else None,
                opportunity_name=opp.name if opp else None,
                key=key,
                reason=reason,
                skip_code=code,
                reconcile=reconcile,
                owner_id=owner_id,
                original_owner_id=original_owner_id,
            )
        )

    # -- one pair

    def plan_pair(self, p: _Pair) -> None:
        statuses = [self.index.status(row, None) for row in p.rows]
        statuses += [self.index.status(None, task) for task in p.orphans]
        live = p.live
        if live is None:
            self._resolved_pair(p, statuses)
            return
        own = [s for s in statuses if s.finding_id == live.id]
        others = [s for s in statuses if s.finding_id != live.id]
        # Unsent rows of older findings will never be sent: their finding is gone.
        for status in others:
            if status.kind == "unsent" and status.row is not None:
                self.abandon.append(status.row.key)
        for status in others:
            if status.kind == "in_doubt" and status.row is not None:
                self._skip(
                    p,
                    "in_doubt",
                    "a Task write for an earlier finding was interrupted: it is reconciled "
                    "with Salesforce before anything new is sent",
                    live,
                    key=status.row.key,
                    reconcile=True,
                )
        if live.status == "waived":
            # The admin decided the deal is fine: its open Tasks are completed with a note
            # saying who, why and until when; nothing new is written while the waiver holds.
            closing = own + [s for s in others if s.kind == "open"]
            if not self._close_pair(p, closing, live, opp=self._opp(p.opportunity_id)):
                self._skip(
                    p, "waived", "the finding is waived: no Task while the waiver holds", live
                )
            return
        opp = self._opp(p.opportunity_id)
        if opp is None or opp.is_deleted:
            self._skip(p, "deleted_opportunity", "the opportunity is deleted", live)
            return
        if opp.is_closed:
            self._skip(p, "closed_opportunity", "the opportunity is closed", live)
            return
        rule_settings = self._task_settings(p.rule)
        if rule_settings is not None and not rule_settings.enabled:
            self._skip(p, "rule_disabled", f"writeback.rules.{p.rule}.enabled is false", live)
            return
        if not self.wb.tasks:
            self._skip(p, "tasks_disabled", "writeback.tasks is false", live)
            return
        open_tasks = [s for s in statuses if s.kind == "open"]
        if open_tasks:
            # An unsent write left over next to an open Task will never be needed.
            self.abandon.extend(s.row.key for s in own if s.kind == "unsent" and s.row is not None)
            ids = ", ".join(sorted(s.task_id or "?" for s in open_tasks))
            extra = " (more than one: created outside this ledger)" if len(open_tasks) > 1 else ""
            self._skip(p, "task_open", f"an sfsync Task is open: {ids}{extra}", live)
            return
        if any(s.kind == "in_doubt" for s in others):
            self._skip(
                p,
                "in_doubt",
                "waiting for an interrupted write of an earlier finding to be reconciled",
                live,
            )
            return
        self._live_pair(p, live, opp, own)

    def _live_pair(
        self, p: _Pair, live: FindingView, opp: OpportunityView, own: list[_TaskStatus]
    ) -> None:
        # Rows given up by an older sfsync (refusals were final then) are retried too.
        pending = [
            s
            for s in own
            if s.row is not None
            and (
                s.kind in ("in_doubt", "unsent")
                or (s.kind == "gave_up" and (s.row.error_code or "") not in _NON_BLOCKING_GIVE_UPS)
            )
        ]
        if pending:
            row = max((s.row for s in pending if s.row is not None), key=lambda r: r.id)
            reason: str | None = (
                "an earlier run was interrupted while sending this Task: Salesforce is "
                "asked for its key first, and it is sent again only if absent"
                if row.state == "sent"
                else self._retry_reason(row)
            )
            if reason is None:
                self._wait(p, row, live)
                return
            self._create(p, live, opp, row.key, reason, retry=row)
            return
        # A live finding's own Task closed by sfsync was completed for a waiver that has
        # since expired: like a Task a person closed, a new one follows after renotify days.
        gone = [s for s in own if s.kind in ("closed_by_person", "closed_by_us", "deleted")]
        if gone:
            last = max(gone, key=lambda s: self._closed_at(s) or datetime.min.replace(tzinfo=UTC))
            closed_on = self._local_date(self._closed_at(last))
            verb = "deleted" if last.kind == "deleted" else "completed"
            who = (
                "sfsync (for a waiver, now expired)" if last.kind == "closed_by_us" else "a person"
            )
            if closed_on is not None:
                due = closed_on + timedelta(days=self.wb.renotify_after_days)
                if self.today < due:
                    self._skip(
                        p,
                        "renotify_pending",
                        f"{who} {verb} the Task on {closed_on.isoformat()} while the problem "
                        f"persists: a new one on {due.isoformat()} "
                        f"(writeback.renotify_after_days = {self.wb.renotify_after_days})",
                        live,
                    )
                    return
            reason = (
                f"renotify: the Task was {verb} on "
                f"{closed_on.isoformat() if closed_on else 'an unknown date'} "
                "but the problem persists"
            )
        else:
            reason = "new finding"
        n = 1 + max((self._n(s) for s in own), default=-1)
        self._create(p, live, opp, task_key(p.rule, p.opportunity_id, live.id, n), reason)

    def _retry_reason(self, row: LedgerView) -> str | None:
        """Why a failed write is sent again today, or None while it waits (see _retry)."""
        due = next_attempt_day(row, self.wb, self.tz) if row.state != "planned" else None
        if due is not None and self.today < due:
            return None
        code = f" after {row.error_code}" if row.error_code else ""
        return f"retry{code} (attempt {row.attempts + 1})"

    def _wait(self, p: _Pair, row: LedgerView, finding: FindingView | None) -> None:
        due = next_attempt_day(row, self.wb, self.tz)
        refused = self._local_date(row.updated_at)
        self._skip(
            p,
            "retry_later",
            f"Salesforce refused it on {refused.isoformat() if refused else 'an earlier run'} "
            f"({row.error_code}: {row.error_message}); attempt {row.attempts + 1} on "
            f"{due.isoformat() if due else 'the next run'}",
            finding,
            key=row.key,
        )

    def _closed_at(self, status: _TaskStatus) -> datetime | None:
        closed = status.task.closed_at if status.task else None
        if closed is None and status.kind == "closed_by_us" and status.task_id:
            completion = self.index.completions.get(status.task_id)
            closed = completion.updated_at if completion else None
        return closed

    @staticmethod
    def _n(status: _TaskStatus) -> int:
        key = status.row.key if status.row else (status.task.key if status.task else None)
        parsed = parse_task_key(key)
        return parsed.n if parsed else -1

    def _create(
        self,
        p: _Pair,
        live: FindingView,
        opp: OpportunityView,
        key: str,
        reason: str,
        *,
        retry: LedgerView | None = None,
    ) -> None:
        choice = choose_owner(opp.owner_id, self.state.users, self.wb.fallback_owner_id)
        if (
            retry is not None
            and retry.reassigned_reason
            and retry.owner_id
            and retry.original_owner_id == choice.owner_id
        ):
            # Salesforce said this owner is inactive on an earlier attempt; the warehouse
            # has not synced that yet. Keep the reassignment.
            choice = OwnerChoice(
                retry.owner_id,
                retry.original_owner_id,
                retry.reassigned_reason,
                tuple(o for o in choice.next_owners if o != retry.owner_id),
            )
        if choice.owner_id is None:
            self._skip(
                p,
                "no_active_owner",
                choice.problem or "no active owner",
                live,
                original_owner_id=choice.original_owner_id or opp.owner_id,
            )
            if retry is not None and retry.state != "sent":
                self.abandon.append(retry.key)
            return
        rule = self._task_settings(p.rule)
        due_in = rule.due_in_days if rule else 7
        priority = rule.priority if rule else "Normal"
        self.actions.append(
            PlannedAction(
                "create_task",
                p.opportunity_id,
                rule=p.rule,
                finding_id=live.id,
                opportunity_name=opp.name,
                key=key,
                reason=reason,
                owner_id=choice.owner_id,
                original_owner_id=choice.original_owner_id,
                reassigned_reason=choice.reassigned_reason,
                next_owners=choice.next_owners,
                subject=task_subject(self.wb.subject_prefix, p.rule, opp.name),
                due_date=self.today + timedelta(days=due_in),
                priority=priority,
                status=self.wb.open_status,
                description=task_description(p.rule, live.details, key),
                reconcile=retry is not None and retry.state == "sent",
                attempts=retry.attempts if retry is not None else 0,
            )
        )

    def _resolved_pair(self, p: _Pair, statuses: list[_TaskStatus]) -> None:
        finding = max(p.resolved, key=lambda f: f.id) if p.resolved else None
        self._close_pair(p, statuses, finding, opp=self._opp(p.opportunity_id))

    def _close_pair(
        self,
        p: _Pair,
        statuses: list[_TaskStatus],
        finding: FindingView | None,
        *,
        opp: OpportunityView | None,
    ) -> bool:
        """Complete the pair's open Tasks: its finding resolved, or is waived (then the note
        says who waived it, why and until when). Unsent writes are abandoned, writes in
        doubt reconciled first. True when an action (a completion, a wait) is planned."""
        waiver = finding.waiver if finding is not None and finding.status == "waived" else None
        what = "is waived" if waiver is not None else "resolved"
        for status in statuses:
            if status.kind == "unsent" and status.row is not None:
                self.abandon.append(status.row.key)
            elif status.kind == "in_doubt" and status.row is not None:
                self._skip(
                    p,
                    "in_doubt",
                    f"the finding {what} while its Task was being sent: reconciled now, "
                    "completed next run if it exists",
                    finding,
                    key=status.row.key,
                    reconcile=True,
                )
        before = len(self.actions)
        for status in statuses:
            if status.kind != "open" or status.task_id is None:
                continue
            if opp is None or opp.is_deleted:
                self._skip(
                    p,
                    "deleted_opportunity",
                    "the opportunity is deleted (its Tasks went with it)",
                    finding,
                )
                continue
            earlier = self.index.completions.get(status.task_id)
            if (
                earlier is not None
                and earlier.state in ("failed", "abandoned")
                and earlier.error_code != SUPERSEDED
                and self._retry_reason(earlier) is None
            ):
                self._wait(p, earlier, finding)
                continue
            previous = status.task.description if status.task else None
            if previous is None and status.row is not None:
                previous = _str_or_none(status.row.payload.get("Description"))
            finding_id = status.finding_id
            if waiver is not None:
                note = waiver_note(
                    self.today,
                    finding_id,
                    by=waiver.created_by,
                    reason=waiver.reason,
                    until=waiver.until,
                )
                by = f" by {waiver.created_by}" if waiver.created_by else ""
                reason = f"the finding is waived{by} until {waiver.until.isoformat()}"
            else:
                note, reason = completion_note(self.today, finding_id), "the finding resolved"
            self.actions.append(
                PlannedAction(
                    "complete_task",
                    p.opportunity_id,
                    rule=p.rule,
                    finding_id=finding_id,
                    opportunity_name=opp.name,
                    key=complete_key(status.task_id),
                    reason=reason,
                    owner_id=status.task.owner_id if status.task else None,
                    status=self.wb.completed_status,
                    description=completed_description(previous, note),
                    task_id=status.task_id,
                    attempts=self._completion_attempts(status.task_id),
                )
            )
        return len(self.actions) > before

    def _completion_attempts(self, task_id: str) -> int:
        row = self.index.completions.get(task_id)
        return row.attempts if row else 0

    # -- flags

    def plan_flags(self) -> None:
        flags = self.wb.flags
        if not flags.enabled:
            return
        wanted: dict[str, set[str]] = defaultdict(set)
        for finding in self.state.findings:
            rule = self._task_settings(finding.rule)
            if finding.status == "open" and (rule is None or rule.enabled):
                wanted[finding.opportunity_id].add(finding.rule)
        candidates = set(wanted) | {
            o.id
            for o in self.state.opportunities.values()
            if o.flag_rules not in (None, "") or o.flag_extensions is not None
        }
        for opportunity_id in sorted(candidates):
            opp = self._opp(opportunity_id)
            if opp is None:
                continue
            rules = ";".join(sorted(wanted.get(opportunity_id, ())))
            desired_rules = rules or None
            desired_ext: float | None = None
            if desired_rules and opp.month_extensions:
                desired_ext = float(opp.month_extensions)
            changes: dict[str, object] = {}
            if _rule_set(opp.flag_rules) != _rule_set(desired_rules):
                changes[flags.rules_field] = desired_rules
            if _number(opp.flag_extensions) != desired_ext:
                changes[flags.extensions_field] = desired_ext
            if not changes:
                continue
            action: Action = (
                "clear_flag" if all(v is None for v in changes.values()) else "set_flag"
            )
            key = flag_key(opportunity_id, changes)
            if opp.is_deleted or opp.is_closed:
                state = "deleted" if opp.is_deleted else "closed"
                self.actions.append(
                    PlannedAction(
                        "skip",
                        opportunity_id,
                        opportunity_name=opp.name,
                        reason=f"flags are never written to a {state} opportunity",
                        skip_code=f"{state}_opportunity",
                        fields=changes,
                    )
                )
                continue
            earlier = [r for r in self.index.flag_rows.get(opportunity_id, []) if r.key == key]
            row = earlier[-1] if earlier else None
            if (
                row is not None
                and row.state == "confirmed"
                and row.confirmed_at is not None
                and (opp.synced_at is None or row.confirmed_at > opp.synced_at)
            ):
                self.actions.append(
                    PlannedAction(
                        "skip",
                        opportunity_id,
                        opportunity_name=opp.name,
                        key=key,
                        reason="these flag values were written after the last sync",
                        skip_code="awaiting_sync",
                        fields=changes,
                    )
                )
                continue
            if (
                row is not None
                and row.state in ("failed", "abandoned")
                and row.error_code != SUPERSEDED
                and self._retry_reason(row) is None
            ):
                due = next_attempt_day(row, self.wb, self.tz)
                self.actions.append(
                    PlannedAction(
                        "skip",
                        opportunity_id,
                        opportunity_name=opp.name,
                        key=key,
                        reason=f"Salesforce refused it ({row.error_code}: {row.error_message}); "
                        f"attempt {row.attempts + 1} on {due.isoformat() if due else 'next run'}",
                        skip_code="retry_later",
                        fields=changes,
                    )
                )
                continue
            self.actions.append(
                PlannedAction(
                    action,
                    opportunity_id,
                    opportunity_name=opp.name,
                    key=key,
                    reason="flags changed" if action == "set_flag" else "no finding is open",
                    fields=changes,
                    attempts=row.attempts if row is not None and row.state != "confirmed" else 0,
                )
            )

    # -- all

    def plan(self) -> WritebackPlan:
        pairs = _pairs(self.state, self.index)
        for key in sorted(pairs, key=lambda k: (k[1], k[0])):
            self.plan_pair(pairs[key])
        self.plan_flags()
        deferred = self.spread() if self.wb.over_cap == "spread" else 0
        order = {"complete_task": 0, "create_task": 1, "set_flag": 2, "clear_flag": 2, "skip": 3}
        actions = sorted(
            self.actions,
            key=lambda a: (order[a.action], a.rule or "", a.opportunity_id, a.key or ""),
        )
        return WritebackPlan(
            today=self.today,
            actions=tuple(actions),
            abandon=tuple(sorted(set(self.abandon))),
            failures=tuple(_failures(self.state.ledger, pairs)),
            max_tasks_per_run=self.wb.max_tasks_per_run,
            enabled=self.wb.enabled,
            deferred=deferred,
        )

    def spread(self) -> int:
        """Keep at most ``max_tasks_per_run`` Task creations; the others wait for a later run.

        First the creations that finish earlier work (a retry, a write in doubt), then
        error-severity rules before warnings, then the oldest findings. Returns how many
        wait; each is a skip saying so.
        """
        cap = self.wb.max_tasks_per_run
        creates = [a for a in self.actions if a.action == "create_task"]
        if len(creates) <= cap:
            return 0

        def priority(action: PlannedAction) -> tuple[int, int, int, str]:
            earlier = 0 if (action.reconcile or action.attempts) else 1
            rule = action.rule
            severity = self.settings.audit.rule(rule).severity if rule else "warn"
            rank = SEVERITY_RANK[severity]
            return (earlier, -rank, action.finding_id or 0, action.opportunity_id)

        waiting = {id(a) for a in sorted(creates, key=priority)[cap:]}
        reason = (
            f"over the cap: writeback.max_tasks_per_run = {cap} Tasks per run and "
            f"{len(creates)} are due; this one waits for a later run (writeback.over_cap: spread)"
        )
        self.actions = [
            replace(a, action="skip", skip_code="over_cap", reason=reason)
            if id(a) in waiting
            else a
            for a in self.actions
        ]
        log.warning("writeback.capped", cap=cap, due=len(creates), deferred=len(waiting))
        return len(waiting)


def _failures(
    ledger: Iterable[LedgerView], pairs: Mapping[tuple[str, str], _Pair]
) -> list[LedgerView]:
    """Earlier failures worth showing: pending retries, and give-ups on live findings."""
    shown = []
    for row in ledger:
        if row.state == "failed":
            shown.append(row)
        elif row.state == "abandoned" and row.error_code not in (None, SUPERSEDED):
            p = pairs.get((row.opportunity_id, row.rule))
            if row.action in ("set_flag", "clear_flag") or (
                p is not None and p.live is not None and p.live.id == row.finding_id
            ):
                shown.append(row)
    return sorted(shown, key=lambda r: (r.updated_at or datetime.min.replace(tzinfo=UTC), r.id))


def _rule_set(value: str | None) -> frozenset[str]:
    if not value:
        return frozenset()
    return frozenset(part.strip() for part in value.replace(",", ";").split(";") if part.strip())


def _number(value: float | None) -> float | None:
    return None if value is None else float(value)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def plan_writeback(state: WritebackState, settings: Settings, today: date) -> WritebackPlan:
    """Every write (and skip) the write-back would make on ``today``. Pure: no I/O."""
    return _Planner(state, settings, today).plan()
