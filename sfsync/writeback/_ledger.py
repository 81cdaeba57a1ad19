"""The write-back ledger: one row per intended write, committed before it is sent.

States (``writeback_ledger.state``)::

    planned --mark_sent--> sent --success--> confirmed
       ^                    |  \\--refused, transient--> failed --(next run)--> planned
       |                    |   \\--refused, permanent / max_attempts--> abandoned
       |                    \\--crash / ambiguous failure: stays sent (in doubt)
       |                          next run: reconciled with Salesforce:
       +-------- absent ----------+   found --> confirmed; absent --> planned (re-sent)
                                      or abandoned (its finding no longer needs it)

``planned`` and ``failed`` rows were certainly not applied, so they may be sent
again with the same key; only ``sent`` rows are in doubt. Every function here
commits (or not) as one transaction; the applier calls them around each batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update

from sfsync.warehouse import Warehouse
from sfsync.warehouse.models import WritebackLedger, table_of
from sfsync.writeback._model import PlannedAction

__all__ = [
    "LedgerOutcome",
    "abandon",
    "existing_rows",
    "mark_sent",
    "record_outcomes",
    "record_planned",
    "set_state",
]

L = table_of(WritebackLedger)
_CHUNK = 500


def _now() -> datetime:
    return datetime.now(UTC)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def existing_rows(warehouse: Warehouse, keys: Sequence[str]) -> dict[str, Any]:
    """Ledger rows by idempotency key."""
    found: dict[str, Any] = {}
    with warehouse.engine.connect() as conn:
        for chunk in _chunks(sorted(set(keys))):
            for row in conn.execute(select(L).where(L.c.idempotency_key.in_(chunk))):
                found[str(row.idempotency_key)] = row
    return found


def payload_of(action: PlannedAction) -> dict[str, Any]:
    if action.action == "create_task":
        return {**action.task_record(), "key": action.key}
    if action.action == "complete_task":
        return {"Id": action.task_id, "Status": action.status, "Description": action.description}
    return {"Id": action.opportunity_id, **dict(action.fields)}


def record_planned(
    warehouse: Warehouse, actions: Sequence[PlannedAction], run_id: int | None
) -> set[str]:
    """Commit every write as ``planned`` (new rows, or earlier rows for the same key).

    Returns the keys that are already ``confirmed`` (a create the ledger already
    knows was applied): those are not sent again.
    """
    now = _now()
    keys = [a.key for a in actions if a.key]
    existing = existing_rows(warehouse, keys)
    already: set[str] = set()
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for action in actions:
        assert action.key is not None
        row = existing.get(action.key)
        values = {
            "run_id": run_id,
            "finding_id": action.finding_id,
            "rule": action.rule or "flags",
            "opportunity_id": action.opportunity_id,
            "action": action.action,
            "state": "planned",
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
        if row.state == "confirmed" and action.action == "create_task":
            already.add(action.key)
            continue
        if row.state == "confirmed":
            values["attempts"] = 0  # the same update again later (flags A -> B -> A)
        else:
            values["attempts"] = row.attempts
        values["error_code"] = row.error_code if row.state == "failed" else None
        values["error_message"] = row.error_message if row.state == "failed" else None
        updates.append({**values, "k": action.key})
    with warehouse.session() as session:
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


def mark_sent(warehouse: Warehouse, keys: Sequence[str], run_id: int | None) -> None:
    """``sent`` and one more attempt: from here until confirmed, the write is in doubt."""
    now = _now()
    with warehouse.session() as session:
        for chunk in _chunks(list(keys)):
            session.execute(
                update(L)
                .where(L.c.idempotency_key.in_(chunk))
                .values(state="sent", attempts=L.c.attempts + 1, run_id=run_id, updated_at=now)
            )


def set_state(
    warehouse: Warehouse,
    keys: Sequence[str],
    state: str,
    *,
    error_code: str | None = None,
    error_message: str | None = None,
    only_from: Sequence[str] | None = None,
) -> int:
    """Move ``keys`` to ``state`` (optionally only rows now in ``only_from``)."""
    now = _now()
    changed = 0
    with warehouse.session() as session:
        for chunk in _chunks(list(keys)):
            statement = update(L).where(L.c.idempotency_key.in_(chunk))
            if only_from is not None:
                statement = statement.where(L.c.state.in_(list(only_from)))
            result = session.execute(
                statement.values(
                    state=state, error_code=error_code, error_message=error_message, updated_at=now
                )
            )
            changed += int(getattr(result, "rowcount", 0) or 0)
    return changed


def abandon(warehouse: Warehouse, keys: Sequence[str], code: str, message: str) -> int:
    """Give up on writes that were certainly never applied (``planned``/``failed``)."""
    return set_state(
        warehouse,
        keys,
        "abandoned",
        error_code=code,
        error_message=message,
        only_from=("planned", "failed"),
    )


@dataclass(frozen=True)
class LedgerOutcome:
    """What happened to one sent write."""

    key: str
    state: str  # confirmed | failed | abandoned | sent (still in doubt) | planned
    salesforce_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    owner_id: str | None = None
    original_owner_id: str | None = None
    reassigned_reason: str | None = None


def record_outcomes(warehouse: Warehouse, outcomes: Sequence[LedgerOutcome]) -> None:
    """Commit the results of one batch in one transaction."""
    if not outcomes:
        return
    now = _now()
    params: list[dict[str, Any]] = []
    for outcome in outcomes:
        params.append(
            {
                "k": outcome.key,
                "state": outcome.state,
                "error_code": outcome.error_code,
                "error_message": (outcome.error_message or "")[:2000] or None,
                "updated_at": now,
                "confirmed_at": now if outcome.state == "confirmed" else None,
            }
        )
    with warehouse.session() as session:
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
        ids = [
            {"k": o.key, "sid": o.salesforce_id} for o in outcomes if o.salesforce_id is not None
        ]
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


def update_payload_owner(
    warehouse: Warehouse, key: str, owner_id: str, payload: Mapping[str, Any]
) -> None:
    with warehouse.session() as session:
        session.execute(
            update(L)
            .where(L.c.idempotency_key == key)
            .values(owner_id=owner_id, payload=dict(payload), updated_at=_now())
        )
