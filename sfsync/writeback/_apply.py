"""Executing a plan: reconcile what is in doubt, commit intents, send in batches, record.

Order of work (each step commits before the next starts):

1. ledger housekeeping: the plan's ``abandon`` keys (never sent, no longer needed);
2. one describe of Task: upsert on ``writeback.task_key_field`` when the org has it
   as an External ID (Salesforce then de-duplicates by itself); otherwise create,
   with the key on the description's last line, and reconcile by key or by
   Subject + WhatId + OwnerId + CreatedById = the integration user;
3. reconciliation: ledger rows left ``sent`` by an interrupted run are looked up in
   Salesforce (``queryAll``, keys quoted with ``soql_quote``, 100 a query); found
   ones are confirmed and not sent again;
4. every write of the plan is committed ``planned``;
5. completions, then creations, then flags, at most ``writeback.batch_size`` (≤200)
   records per sObject Collections call with ``allOrNone=false``; around each call
   the batch is committed ``sent`` and then its per-record outcomes.

``should_stop()`` is checked between batches: a SIGTERM finishes the current batch,
and unsent writes stay ``planned`` (safe to send next run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sfsync.chaos import crash_point
from sfsync.config import Settings
from sfsync.context import RunContext
from sfsync.errors import ApiError, BudgetExhausted, Interrupted, RetryableError, SfsyncError
from sfsync.formats import parse_datetime
from sfsync.logging import get_logger
from sfsync.salesforce import SalesforceClient, classify_record_error, soql
from sfsync.warehouse import Warehouse
from sfsync.warehouse.runs import RecordedRun
from sfsync.writeback._ledger import Ledger, LedgerOutcome, LedgerState
from sfsync.writeback._model import PlannedAction, RecordFailure, WritebackPlan, WritebackResult
from sfsync.writeback._text import key_from_description

__all__ = ["apply_writeback"]

log = get_logger()

_RECONCILE_CHUNK = 100
# Clock skew allowed between our ledger stamps and Salesforce's CreatedDate.
_SKEW = timedelta(minutes=15)


@dataclass
class _Item:
    """One write on its way, with the owner it currently goes to."""

    action: PlannedAction
    attempts: int
    owner_id: str | None
    next_owners: list[str] = field(default_factory=list)
    original_owner_id: str | None = None
    reassigned_reason: str | None = None
    reassigned_now: bool = False

    @property
    def key(self) -> str:
        assert self.action.key is not None
        return self.action.key


class _Halt(Exception):
    """Stop sending (an ambiguous failure, or a refused call that would repeat)."""


class _Applier:
    def __init__(
        self,
        warehouse: Warehouse,
        settings: Settings,
        plan: WritebackPlan,
        client: SalesforceClient,
        run_id: int | None,
        should_stop: Callable[[], bool],
        result: WritebackResult,
    ) -> None:
        self.warehouse = warehouse
        self.settings = settings
        self.wb = settings.writeback
        self.plan = plan
        self.client = client
        self.run_id = run_id
        self.should_stop = should_stop
        self.result = result
        self.key_field: str | None = None
        self.ledger = Ledger(warehouse)

    # ------------------------------------------------------------------ setup

    def detect_mode(self) -> None:
        """Upsert on the key field if Task has it as an External ID, else create."""
        wanted = self.wb.task_key_field
        if wanted is None:
            self.result.mode = "create"
            return
        describe = self.client.describe("Task")
        fields = {str(f.get("name", "")).lower(): f for f in describe.get("fields", [])}
        found = fields.get(wanted.lower())
        if found is None:
            message = (
                f"writeback.task_key_field: Task.{wanted} does not exist in this org; Tasks are "
                "created without it and reconciled by their key in the description, or Subject, "
                "WhatId, OwnerId and CreatedById"
            )
        elif not found.get("externalId"):
            message = (
                f"writeback.task_key_field: Task.{found['name']} is not an External ID field; "
                "Tasks are created and reconciled by description, Subject, WhatId and OwnerId"
            )
        else:
            self.key_field = str(found["name"])
            self.result.mode = "upsert"
            return
        self.result.mode = "create"
        self.result.warnings.append(message)
        log.warning("writeback.key_field_missing", field=wanted, message=message)

    def check_flag_fields(self, flags: list[PlannedAction]) -> list[PlannedAction]:
        """Flag writes whose fields the org has; the others are failures (config)."""
        if not flags:
            return flags
        describe = self.client.describe("Opportunity")
        names = {str(f.get("name", "")).lower(): f for f in describe.get("fields", [])}
        config = self.wb.flags
        missing = [
            name
            for name in (config.rules_field, config.extensions_field)
            if name.lower() not in names or not names[name.lower()].get("updateable", True)
        ]
        if not missing:
            return flags
        message = (
            f"Opportunity field(s) {', '.join(missing)} (writeback.flags) do not exist or are "
            "not updateable in this org: flags were not written"
        )
        self.result.warnings.append(message)
        log.warning("writeback.flag_fields_missing", fields=missing)
        kept = []
        for action in flags:
            if any(f in missing for f in action.fields):
                self._fail(action, "INVALID_FIELD", message, "gave_up", action.attempts)
            else:
                kept.append(action)
        return kept

    # ------------------------------------------------------------------ reconcile

    def reconcile(self, keys: Sequence[str], resend: set[str]) -> set[str]:
        """Ask Salesforce about ``sent`` create rows; return the keys found (confirmed)."""
        rows = {
            k: r
            for k, r in self.ledger.rows(keys).items()
            if r.state == "sent" and r.action == "create_task"
        }
        if not rows:
            return set()
        found = self._find_by_key(rows) if self.key_field else self._find_by_match(rows)
        outcomes = []
        for key in rows:
            if key in found:
                outcomes.append(LedgerOutcome(key, LedgerState.CONFIRMED, salesforce_id=found[key]))
            elif key in resend:
                outcomes.append(LedgerOutcome(key, LedgerState.PLANNED))
            else:
                outcomes.append(
                    LedgerOutcome(
                        key,
                        LedgerState.ABANDONED,
                        error_code="SUPERSEDED",
                        error_message="absent from Salesforce and no longer needed",
                    )
                )
        self.ledger.settle(outcomes)
        self.result.reconciled += len(found)
        for key, task_id in found.items():
            self.result.confirmed[key] = task_id
        log.info(
            "writeback.reconciled",
            in_doubt=len(rows),
            found=len(found),
            absent=len(rows) - len(found),
        )
        crash_point("writeback.after_reconcile")
        return set(found)

    def _find_by_key(self, rows: dict[str, Any]) -> dict[str, str]:
        assert self.key_field is not None
        found: dict[str, str] = {}
        keys = sorted(rows)
        for start in range(0, len(keys), _RECONCILE_CHUNK):
            chunk = keys[start : start + _RECONCILE_CHUNK]
            query = soql.select(
                ["Id", self.key_field], "Task", where=[soql.one_of(self.key_field, chunk)]
            )
            for record in self.client.query_all(query, include_deleted=True):
                value = record.get(self.key_field)
                if isinstance(value, str):
                    found[value] = str(record["Id"])
        return found

    def _find_by_match(self, rows: dict[str, Any]) -> dict[str, str]:
        """Without a key field: the key line in the description, else the fallback match."""
        what_ids = sorted({str(r.payload.get("WhatId")) for r in rows.values() if r.payload})
        creator = self.client.integration_user_id
        candidates: list[dict[str, Any]] = []
        for start in range(0, len(what_ids), _RECONCILE_CHUNK):
            chunk = what_ids[start : start + _RECONCILE_CHUNK]
            query = soql.select(
                ["Id", "WhatId", "OwnerId", "Subject", "Description", "CreatedDate", "CreatedById"],
                "Task",
                where=[
                    soql.one_of("WhatId", chunk),
                    soql.like_prefix("Subject", self.wb.subject_prefix),
                    soql.equals("CreatedById", creator) if creator else None,
                ],
                order_by=["CreatedDate", "Id"],
            )
            candidates.extend(self.client.query_all(query, include_deleted=True))
        claimed = self._claimed_ids([str(c["Id"]) for c in candidates])
        found: dict[str, str] = {}
        by_key: dict[str, str] = {}
        for record in candidates:
            key = key_from_description(record.get("Description"))
            if key:
                by_key.setdefault(key, str(record["Id"]))
        for key in rows:
            if key in by_key:
                found[key] = by_key[key]
                claimed.add(by_key[key])
        for key, row in sorted(rows.items(), key=lambda kv: kv[1].id):
            if key in found:
                continue
            payload = row.payload or {}
            since = (row.updated_at or row.created_at) - _SKEW
            for record in candidates:
                task_id = str(record["Id"])
                if task_id in claimed or key_from_description(record.get("Description")):
                    continue
                if (
                    record.get("Subject") == payload.get("Subject")
                    and record.get("WhatId") == payload.get("WhatId")
                    and record.get("OwnerId") == (row.owner_id or payload.get("OwnerId"))
                    and _created_at(record) >= since
                ):
                    found[key] = task_id
                    claimed.add(task_id)
                    break
        return found

    def _claimed_ids(self, task_ids: list[str]) -> set[str]:
        from sqlalchemy import select

        from sfsync.warehouse.models import WritebackLedger, table_of

        ledger = table_of(WritebackLedger)
        claimed: set[str] = set()
        with self.warehouse.engine.connect() as conn:
            for start in range(0, len(task_ids), 500):
                chunk = task_ids[start : start + 500]
                claimed.update(
                    str(v)
                    for v in conn.execute(
                        select(ledger.c.salesforce_id).where(
                            ledger.c.salesforce_id.in_(chunk), ledger.c.action == "create_task"
                        )
                    ).scalars()
                )
        return claimed

    # ------------------------------------------------------------------ sending

    def _records(self, kind: str, batch: Sequence[_Item]) -> list[dict[str, Any]]:
        records = []
        for item in batch:
            action = item.action
            if kind == "create_task":
                record: dict[str, Any] = {"attributes": {"type": "Task"}, **action.task_record()}
                record["OwnerId"] = item.owner_id
                if self.key_field:
                    record[self.key_field] = action.key
            elif kind == "complete_task":
                record = {
                    "attributes": {"type": "Task"},
                    "id": action.task_id,
                    "Status": action.status,
                    "Description": action.description,
                }
                if item.reassigned_now and item.owner_id:
                    record["OwnerId"] = item.owner_id
            else:
                record = {
                    "attributes": {"type": "Opportunity"},
                    "id": action.opportunity_id,
                    **dict(action.fields),
                }
            records.append(record)
        return records

    def _call(self, kind: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if kind == "create_task":
            if self.key_field:
                return self.client.collection_upsert("Task", self.key_field, records)
            return self.client.collection_create(records)
        return self.client.collection_update(records)

    def send(self, kind: str, items: list[_Item]) -> None:
        queue = items
        size = self.wb.batch_size
        while queue:
            requeue: list[_Item] = []
            for start in range(0, len(queue), size):
                if self.should_stop():
                    self.result.interrupted = True
                    log.warning("writeback.interrupted", left=len(queue) - start, kind=kind)
                    raise _Halt
                requeue += self._send_batch(kind, queue[start : start + size])
            queue = requeue

    def _send_batch(self, kind: str, batch: list[_Item]) -> list[_Item]:
        keys = [item.key for item in batch]
        self.ledger.send(keys, self.run_id)
        for item in batch:
            item.attempts += 1
        crash_point("writeback.before_send")
        started = time.monotonic()
        try:
            results = self._call(kind, self._records(kind, batch))
        except BudgetExhausted:
            # Refused before (or by) Salesforce's limit check: nothing was applied.
            self.ledger.move(keys, LedgerState.PLANNED, only_from=(LedgerState.SENT,))
            raise
        except RetryableError as exc:
            # A create whose outcome is unknown: the rows stay `sent`; the next run
            # reconciles them with Salesforce before anything is sent again.
            for item in batch:
                self._fail(
                    item.action,
                    exc.error_code or "IN_DOUBT",
                    exc.message,
                    "in_doubt",
                    item.attempts,
                )
            log.warning("writeback.in_doubt", kind=kind, records=len(batch), reason=exc.message)
            raise _Halt from None
        except ApiError as exc:
            # The whole call was refused (400...): not applied; it would fail again now,
            # so the batch waits for a later run (see _retry).
            code = exc.error_code or f"HTTP_{exc.status}"
            outcomes = [
                LedgerOutcome(
                    item.key, LedgerState.FAILED, error_code=code, error_message=exc.message
                )
                for item in batch
            ]
            for item in batch:
                self._fail(item.action, code, exc.message, _outcome_of(code), item.attempts)
            self.ledger.settle(outcomes)
            log.error("writeback.call_refused", kind=kind, records=len(batch), reason=exc.message)
            raise _Halt from None
        except SfsyncError as exc:
            # Unreachable after retries, or auth: idempotent calls may or may not have
            # landed; the rows stay `sent` and are settled next run.
            for item in batch:
                self._fail(item.action, "UNREACHABLE", exc.message, "in_doubt", item.attempts)
            raise
        crash_point("writeback.after_send")
        outcomes, requeue, exists = self._outcomes(kind, batch, results)
        self.ledger.settle(outcomes)
        if exists:
            self._settle_duplicates(exists)
        crash_point("writeback.after_confirm")
        log.info(
            "writeback.batch",
            kind=kind,
            records=len(batch),
            ok=sum(1 for o in outcomes if o.state is LedgerState.CONFIRMED),
            failed=sum(
                1 for o in outcomes if o.state in (LedgerState.FAILED, LedgerState.ABANDONED)
            ),
            reassigned=len(requeue),
            ms=round((time.monotonic() - started) * 1000),
        )
        return requeue

    def _outcomes(
        self, kind: str, batch: Sequence[_Item], results: Sequence[dict[str, Any]]
    ) -> tuple[list[LedgerOutcome], list[_Item], list[_Item]]:
        outcomes: list[LedgerOutcome] = []
        requeue: list[_Item] = []
        exists: list[_Item] = []
        for item, answer in zip(batch, results, strict=True):
            owner_fields = {
                "owner_id": item.owner_id,
                "original_owner_id": item.original_owner_id,
                "reassigned_reason": item.reassigned_reason,
            }
            if answer.get("success"):
                sid = str(answer.get("id") or item.action.task_id or item.action.opportunity_id)
                outcomes.append(
                    LedgerOutcome(
                        item.key, LedgerState.CONFIRMED, salesforce_id=sid, **owner_fields
                    )
                )
                self._count_success(kind, item, sid)
                continue
            errors = answer.get("errors") or [{}]
            first = errors[0] if isinstance(errors[0], dict) else {}
            code = str(first.get("statusCode") or first.get("errorCode") or "UNKNOWN")
            message = str(first.get("message") or "")
            kind_of = classify_record_error(code)
            if kind_of == "reassign" and item.next_owners:
                previous = item.owner_id
                item.owner_id = item.next_owners.pop(0)
                item.original_owner_id = item.original_owner_id or previous
                item.reassigned_reason = (
                    f"Salesforce refused owner {previous} ({code}: {message}): "
                    f"assigned to {item.owner_id}"
                )
                item.reassigned_now = True
                log.info(
                    "writeback.reassigned",
                    key=item.key,
                    previous_owner=previous,
                    owner=item.owner_id,
                )
                outcomes.append(
                    LedgerOutcome(
                        item.key,
                        LedgerState.FAILED,
                        error_code=code,
                        error_message=message,
                        owner_id=item.owner_id,
                        original_owner_id=item.original_owner_id,
                        reassigned_reason=item.reassigned_reason,
                    )
                )
                requeue.append(item)
                continue
            if kind_of == "exists" and kind == "create_task":
                outcomes.append(
                    LedgerOutcome(
                        item.key, LedgerState.SENT, error_code=code, error_message=message
                    )
                )
                exists.append(item)
                continue
            if kind_of == "reassign":
                # No owner left to try: abandoned until the owner chain changes (the
                # planner recomputes it from the warehouse every run).
                message = f"no active owner left to assign to: {message}"
                outcomes.append(
                    LedgerOutcome(
                        item.key, LedgerState.ABANDONED, error_code=code, error_message=message
                    )
                )
                self._fail(item.action, code, message, "gave_up", item.attempts)
                continue
            # Refused or transient: not sent again in this run, retried by a later one.
            outcomes.append(
                LedgerOutcome(item.key, LedgerState.FAILED, error_code=code, error_message=message)
            )
            self._fail(item.action, code, message, _outcome_of(code), item.attempts)
        return outcomes, requeue, exists

    def _settle_duplicates(self, items: list[_Item]) -> None:
        """``DUPLICATE_VALUE`` on the key: the Task exists; find it and confirm."""
        keys = [item.key for item in items]
        found = self.reconcile(keys, resend=set())
        for item in items:
            if item.key not in found:
                self._fail(
                    item.action,
                    "DUPLICATE_VALUE",
                    "duplicate key but not found",
                    "gave_up",
                    item.attempts,
                )

    def _count_success(self, kind: str, item: _Item, sid: str) -> None:
        self.result.confirmed[item.key] = sid
        if kind == "create_task":
            self.result.created += 1
        elif kind == "complete_task":
            self.result.completed += 1
        elif item.action.action == "set_flag":
            self.result.flags_set += 1
        else:
            self.result.flags_cleared += 1
        if item.reassigned_now:
            self.result.reassigned += 1
            self.result.reassignments.append(
                {
                    "key": item.key,
                    "opportunity_id": item.action.opportunity_id,
                    "rule": item.action.rule,
                    "owner_id": item.owner_id,
                    "original_owner_id": item.original_owner_id,
                    "reason": item.reassigned_reason,
                }
            )

    def _fail(
        self, action: PlannedAction, code: str, message: str, outcome: str, attempts: int
    ) -> None:
        self.result.failures.append(
            RecordFailure(
                key=action.key or "",
                action=action.action,
                rule=action.rule,
                opportunity_id=action.opportunity_id,
                code=code,
                message=message,
                outcome=outcome,
                attempts=attempts,
            )
        )
        log.warning(
            "writeback.record_failed",
            key=action.key,
            action=action.action,
            opportunity_id=action.opportunity_id,
            code=code,
            outcome=outcome,
        )

    # ------------------------------------------------------------------ the run

    def run(self) -> None:
        plan = self.plan
        if plan.abandon:
            self.ledger.abandon(
                plan.abandon,
                "SUPERSEDED",
                "never sent; its finding no longer needs it",
            )
        writes = list(plan.writes)
        in_doubt = [a.key for a in plan.actions if a.reconcile and a.key]
        if not writes and not in_doubt:
            return
        creates = [a for a in writes if a.action == "create_task"]
        if creates or in_doubt:
            self.detect_mode()
        flags = self.check_flag_fields(
            [a for a in writes if a.action in ("set_flag", "clear_flag")]
        )
        resend = {a.key for a in creates if a.key}
        found = self.reconcile(in_doubt, resend) if in_doubt else set()
        creates = [a for a in creates if a.key not in found]
        completes = [a for a in writes if a.action == "complete_task"]
        to_send = completes + creates + flags
        already = self.ledger.plan(to_send, self.run_id)
        crash_point("writeback.after_plan")
        creates = [a for a in creates if a.key not in already]
        try:
            self.send("complete_task", [self._item(a) for a in completes])
            self.send("create_task", [self._item(a) for a in creates])
            flag_items = [self._item(a) for a in flags]
            for kind in ("set_flag", "clear_flag"):
                self.send(kind, [i for i in flag_items if i.action.action == kind])
        except _Halt:
            return

    @staticmethod
    def _item(action: PlannedAction) -> _Item:
        return _Item(
            action,
            attempts=action.attempts,
            owner_id=action.owner_id,
            next_owners=list(action.next_owners),
            original_owner_id=action.original_owner_id,
            reassigned_reason=action.reassigned_reason,
        )


def _outcome_of(code: str) -> str:
    """``retry`` (the next run tries again) or ``retry_later`` (after a back-off)."""
    return "retry" if classify_record_error(code) == "transient" else "retry_later"


def _created_at(record: dict[str, Any]) -> datetime:
    value = record.get("CreatedDate")
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            pass
    return datetime.now(UTC)


def apply_writeback(
    ctx: RunContext, plan: WritebackPlan, *, record: RecordedRun | None = None
) -> WritebackResult:
    """Execute ``plan`` exactly: the writes it lists, with the keys and values it shows.

    Does not check the safety gates (cap, sync status): :func:`run_writeback` does.
    ``writeback.enabled: false`` writes nothing. A client is only leased when there
    is something to send or reconcile. With ``record`` (the recorded run it belongs
    to) the ledger rows name that run and the counts are stored in its
    ``counts['writeback']``, also when an error ends the apply.
    """
    run_id = record.id if record is not None else None
    result = WritebackResult(plan, applied=True, run_id=run_id)
    if record is not None:
        record.counts = result.counts
    if not ctx.settings.writeback.enabled:
        result.applied = False
        result.warnings.append("writeback.enabled is false: nothing was written")
        log.warning("writeback.disabled")
        return result
    started = time.monotonic()
    needs_client = bool(plan.writes) or any(a.reconcile for a in plan.actions)
    try:
        if not needs_client:
            # Nothing to send: only ledger housekeeping.
            if plan.abandon:
                Ledger(ctx.warehouse).abandon(
                    plan.abandon, "SUPERSEDED", "never sent; no longer needed"
                )
            return result
        with ctx.salesforce() as client:
            calls_before = client.api_calls
            applier = _Applier(ctx.warehouse, ctx.settings, plan, client, run_id, ctx.stop, result)
            try:
                applier.run()
            except BudgetExhausted as exc:
                # The batch it refused is planned again; what was confirmed stays confirmed.
                result.budget_stop = exc.message
                log.warning("writeback.budget_reached", written=result.written())
            except Interrupted:
                # Stopped during a retry's wait: that batch stays `sent`, reconciled next run.
                result.interrupted = True
                log.warning("writeback.interrupted", written=result.written())
            finally:
                result.api_calls = client.api_calls - calls_before
    finally:
        result.seconds = time.monotonic() - started
        if result.failures or result.interrupted or result.budget_stop:
            result.status = "partial"
        log.info(
            "writeback.applied",
            created=result.created,
            completed=result.completed,
            flags_set=result.flags_set,
            flags_cleared=result.flags_cleared,
            failed=result.failed,
            reconciled=result.reconciled,
            api_calls=result.api_calls,
        )
    return result
