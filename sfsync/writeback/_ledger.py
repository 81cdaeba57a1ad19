"""The write-back ledger: one row per intended write, committed before it is sent.

The invariant it keeps is the write-back's promise: a (rule, opportunity) never gets a
second open Task, even across crashes. It rests on the states a row may take and
the only moves allowed between them (:data:`TRANSITIONS`); :class:`Ledger` is the
one place rows change state, and a move the table does not allow raises
:class:`IllegalTransition` (a bug) instead of corrupting the ledger::

    (new) --plan--> planned --send--> sent --answer: accepted--> confirmed
                       ^                |  \\--answer: refused--> failed --(a later run)--> planned
                       |                |   \\--no active owner left--> abandoned
                       |                \\--crash / ambiguous failure: stays sent (in doubt);
                       |                    the next run asks Salesforce: found --> confirmed,
                       +------------------- absent --> planned (sent again) or abandoned
    confirmed --plan--> planned   (the same flag values written again later: A -> B -> A)
    abandoned --plan--> planned   (its cause went away: the owner chain changed...)

``planned`` and ``failed`` rows were certainly not applied, so they may be sent again
with the same key; only ``sent`` rows are in doubt. When a failed write is retried
is the retry policy's business (``_retry``). Every method commits as one
transaction; the applier calls them around each batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import WritebackLedger, table_of
from sfsync.writeback._model import LedgerState, PlannedAction

__all__ = [
    "TRANSITIONS",
    "IllegalTransition",
    "Ledger",
    "LedgerOutcome",
    "LedgerState",
    "payload_of",
]

L = table_of(WritebackLedger)
_CHUNK = 500


P, S, C, F, A = (
    LedgerState.PLANNED,
    LedgerState.SENT,
    LedgerState.CONFIRMED,
    LedgerState.FAILED,
    LedgerState.ABANDONED,
)
# From a state (None: no row yet) to the states a row may move to.
TRANSITIONS: Mapping[LedgerState | None, frozenset[LedgerState]] = {
    None: frozenset({P}),
    P: frozenset({P, S, A}),
    S: frozenset({S, C, F, A, P}),
    F: frozenset({P, S, A}),
    C: frozenset({P}),
    A: frozenset({P}),
}


class IllegalTransition(RuntimeError):
    """A ledger move the state table forbids: a bug in sfsync, never a user's error."""


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _state(value: object) -> LedgerState | None:
    return None if value is None else LedgerState(str(value))


def _check(key: str, current: LedgerState | None, wanted: LedgerState) -> None:
    if wanted not in TRANSITIONS[current]:
        raise IllegalTransition(
            f"writeback ledger row {key!r}: {current or '(none)'} -> {wanted} is not allowed"
        )


def payload_of(action: PlannedAction) -> dict[str, Any]:
    """What a write sends (kept on its row: reconciliation compares with it)."""
    if action.action == "create_task":
        return {**action.task_record(), "key": action.key}
    if action.action == "complete_task":
        return {"Id": action.task_id, "Status": action.status, "Description": action.description}
    return {"Id": action.opportunity_id, **dict(action.fields)}


@dataclass(frozen=True)
class LedgerOutcome:
    """What happened to one sent write."""

    key: str
    state: LedgerState
    salesforce_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    owner_id: str | None = None
    original_owner_id: str | None = None
    reassigned_reason: str | None = None


class Ledger:
    """The ``writeback_ledger`` table, moved only along :data:`TRANSITIONS`."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    # ------------------------------------------------------------------ reading

    def rows(self, keys: Sequence[str]) -> dict[str, Any]:
        """Rows by idempotency key."""
        found: dict[str, Any] = {}
        with self.warehouse.engine.connect() as conn:
            for chunk in _chunks(sorted(set(keys))):
                for row in conn.execute(select(L).where(L.c.idempotency_key.in_(chunk))):
                    found[str(row.idempotency_key)] = row
        return found

    def _states(self, keys: Sequence[str]) -> dict[str, LedgerState | None]:
        rows = self.rows(keys)
        return {k: _state(rows[k].state) if k in rows else None for k in keys}

    # ------------------------------------------------------------------ moving

    def plan(self, actions: Sequence[PlannedAction], run_id: int | None) -> set[str]:
        """Commit every write as ``planned`` (new rows, or earlier rows for the same key).

        Returns the keys of creates already ``confirmed`` (the ledger knows the Task
        exists): those are not planned nor sent again.
        """
        now = _now()
        existing = self.rows([a.key for a in actions if a.key])
        already: set[str] = set()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for action in actions:
            assert action.key is not None
            row = existing.get(action.key)
            current = _state(row.state) if row is not None else None
            if current is C and action.action == "create_task":
                already.add(action.key)
                continue
            _check(action.key, current, P)
            values = {
                "run_id": run_id,
                "finding_id": action.finding_id,
                "rule": action.rule or "flags",
                "opportunity_id": action.opportunity_id,
                "action": action.action,
                "state": P.value,
                "salesforce_id": action.task_id,
                "owner_id": action.owner_id,
                "original_owner_id": action.original_owner_id,
                "reassigned_reason": action.reassigned_reason,
                "payload": payload_of(action),
                "updated_at": now,
            }
            if row is None:
                inserts.append(
                    {**values, "idempotency_key": action.key, "attempts": 0, "created_at": now}
                )
                continue
            # The same update again later (flags A -> B -> A) starts its count afresh.
            values["attempts"] = 0 if current is C else row.attempts
            values["error_code"] = row.error_code if current is F else None
            values["error_message"] = row.error_message if current is F else None
            updates.append({**values, "k": action.key})
        with self.warehouse.session() as session:
            for start in range(0, len(inserts), _CHUNK):
                session.execute(insert(L), inserts[start : start + _CHUNK])
            if updates:
                statement = (
                    update(L)
                    .where(L.c.idempotency_key == bindparam("k"))
                    .values({name: bindparam(name) for name in updates[0] if name != "k"})
                )
                session.connection().execute(statement, updates)
        return already

    def send(self, keys: Sequence[str], run_id: int | None) -> None:
        """``sent`` and one more attempt: from here until answered, the write is in doubt."""
        for key, current in self._states(keys).items():
            _check(key, current, S)
        now = _now()
        with self.warehouse.session() as session:
            for chunk in _chunks(list(keys)):
                session.execute(
                    update(L)
                    .where(L.c.idempotency_key.in_(chunk))
                    .values(state=S.value, attempts=L.c.attempts + 1, run_id=run_id, updated_at=now)
                )

    def move(
        self,
        keys: Sequence[str],
        state: LedgerState,
        *,
        only_from: Sequence[LedgerState],
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> int:
        """Move the rows of ``keys`` that are in ``only_from`` to ``state``; return how many."""
        for source in only_from:
            _check("(any)", source, state)
        now = _now()
        changed = 0
        with self.warehouse.session() as session:
            for chunk in _chunks(list(keys)):
                result = session.execute(
                    update(L)
                    .where(
                        L.c.idempotency_key.in_(chunk),
                        L.c.state.in_([s.value for s in only_from]),
                    )
                    .values(
                        state=state.value,
                        error_code=error_code,
                        error_message=error_message,
                        updated_at=now,
                    )
                )
                changed += int(getattr(result, "rowcount", 0) or 0)
        return changed

    def abandon(self, keys: Sequence[str], code: str, message: str) -> int:
        """Give up writes that were certainly never applied (``planned``/``failed``)."""
        return self.move(keys, A, only_from=(P, F), error_code=code, error_message=message)

    def settle(self, outcomes: Sequence[LedgerOutcome]) -> None:
        """Commit the answers of one batch (or a reconciliation) in one transaction."""
        if not outcomes:
            return
        current = self._states([o.key for o in outcomes])
        for outcome in outcomes:
            _check(outcome.key, current[outcome.key], outcome.state)
        now = _now()
        params = [
            {
                "k": o.key,
                "state": o.state.value,
                "error_code": o.error_code,
                "error_message": (o.error_message or "")[:2000] or None,
                "updated_at": now,
                "confirmed_at": now if o.state is C else None,
            }
            for o in outcomes
        ]
        with self.warehouse.session() as session:
            conn = session.connection()
            conn.execute(
                update(L)
                .where(L.c.idempotency_key == bindparam("k"))
                .values(
                    state=bindparam("state"),
                    error_code=bindparam("error_code"),
                    error_message=bindparam("error_message"),
                    updated_at=bindparam("updated_at"),
                    confirmed_at=bindparam("confirmed_at"),
                ),
                params,
            )
            ids = [{"k": o.key, "sid": o.salesforce_id} for o in outcomes if o.salesforce_id]
            if ids:
                conn.execute(
                    update(L)
                    .where(L.c.idempotency_key == bindparam("k"))
                    .values(salesforce_id=bindparam("sid")),
                    ids,
                )
            owners = [
                {
                    "k": o.key,
                    "owner": o.owner_id,
                    "original": o.original_owner_id,
                    "why": o.reassigned_reason,
                }
                for o in outcomes
                if o.reassigned_reason is not None
            ]
            if owners:
                conn.execute(
                    update(L)
                    .where(L.c.idempotency_key == bindparam("k"))
                    .values(
                        owner_id=bindparam("owner"),
                        original_owner_id=bindparam("original"),
                        reassigned_reason=bindparam("why"),
                    ),
                    owners,
                )
