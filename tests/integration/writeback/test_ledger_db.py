"""The ledger state machine and the state loader on SQLite and PostgreSQL.

Salesforce is a small in-memory fake here (per-record answers chosen by the test),
so every error class can be forced; the dev-org tests cover the real wire.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

from sfsync.config import DatabaseSettings, Settings
from sfsync.context import RunContext
from sfsync.errors import ApiError, BudgetExhausted, RetryableError
from sfsync.stop import never
from sfsync.warehouse import Warehouse, open_warehouse, upgrade
from sfsync.warehouse.models import Finding, Opportunity, Task, User, WritebackLedger
from sfsync.writeback import apply_writeback, load_writeback_state, plan_writeback
from sfsync.writeback._keys import complete_key, task_key
from sfsync.writeback._text import key_from_description
from tests.unit.writeback.builders import BOSS, FALLBACK, GONE, REP, sfid

TODAY = date(2024, 8, 15)
NOW = datetime(2024, 8, 15, 3, 0, tzinfo=UTC)
INTEGRATION = sfid("005", 1)
OPPS = [sfid("006", n) for n in range(1, 8)]

Answer = Callable[[dict[str, Any]], tuple[str, str] | None]


class FakeSalesforce:
    """Just enough of SalesforceClient for the write-back, with scripted per-record errors."""

    def __init__(self, *, key_field: bool = True, answer: Answer | None = None) -> None:
        self.key_field = key_field
        self.answer: Answer = answer or (lambda record: None)
        self.tasks: dict[str, dict[str, Any]] = {}
        self.api_calls = 0
        self.calls: list[tuple[str, int]] = []
        self.integration_user_id = INTEGRATION
        self.raise_on_call: Exception | None = None
        self.apply_then_raise = False

    def describe(self, sobject: str) -> dict[str, Any]:
        self.api_calls += 1
        fields = [{"name": "Id"}, {"name": "Subject"}]
        if sobject == "Task" and self.key_field:
            fields.append({"name": "Sfsync_Key__c", "externalId": True})
        return {"fields": fields}

    def query_all(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        self.api_calls += 1
        values = set(re.findall(r"'((?:\\.|[^'])*)'", soql.split(" IN (", 1)[1].split(")")[0]))
        if "Sfsync_Key__c IN" in soql:
            return [t for t in self.tasks.values() if t.get("Sfsync_Key__c") in values]
        return [
            {**t, "CreatedDate": "2024-08-15T03:00:00.000+0000"}
            for t in self.tasks.values()
            if t["WhatId"] in values
        ]

    def _results(
        self, records: list[dict[str, Any]], write: Callable[[dict[str, Any]], str]
    ) -> list[dict[str, Any]]:
        self.api_calls += 1
        if self.raise_on_call is not None and not self.apply_then_raise:
            raise self.raise_on_call
        out = []
        for record in records:
            error = self.answer(record)
            if error:
                out.append(
                    {
                        "success": False,
                        "errors": [{"statusCode": error[0], "message": error[1], "fields": []}],
                    }
                )
            else:
                out.append({"id": write(record), "success": True, "errors": []})
        if self.raise_on_call is not None:
            raise self.raise_on_call
        return out

    def _create(self, record: dict[str, Any]) -> str:
        task_id = sfid("00T", 100 + len(self.tasks))
        self.tasks[task_id] = {k: v for k, v in record.items() if k != "attributes"} | {
            "Id": task_id
        }
        return task_id

    def collection_upsert(
        self, sobject: str, field: str, records: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        self.calls.append(("upsert", len(records)))

        def upsert(record: dict[str, Any]) -> str:
            for task in self.tasks.values():
                if task.get(field) == record[field]:
                    task.update({k: v for k, v in record.items() if k != "attributes"})
                    return str(task["Id"])
            return self._create(record)

        return self._results(records, upsert)

    def collection_create(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls.append(("create", len(records)))
        return self._results(records, self._create)

    def collection_update(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.calls.append(("update", len(records)))

        def update(record: dict[str, Any]) -> str:
            self.tasks.setdefault(record["id"], {"Id": record["id"]}).update(
                {k: v for k, v in record.items() if k not in ("attributes", "id")}
            )
            return str(record["id"])

        return self._results(records, update)

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def warehouse(db_url: str) -> Iterator[Warehouse]:
    warehouse = open_warehouse(DatabaseSettings(url=db_url), require_head=False, create=True)
    with warehouse.engine.begin() as conn:
        upgrade(conn)
        conn.execute(
            insert(User),
            [
                _row(REP, name="Ann", is_active=True, manager_id=BOSS),
                _row(GONE, name="Bob", is_active=False, manager_id=BOSS),
                _row(BOSS, name="Cy", is_active=True, manager_id=None),
                _row(FALLBACK, name="Gil", is_active=True, manager_id=None),
                _row(INTEGRATION, name="sfsync", is_active=True, manager_id=None),
            ],
        )
        conn.execute(
            insert(Opportunity),
            [
                _row(opp, name=f"Deal {n}", owner_id=REP, is_closed=False, stage_name="Prove")
                for n, opp in enumerate(OPPS, 1)
            ],
        )
    yield warehouse
    warehouse.dispose()


def _row(record_id: str, **values: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "raw": {"Id": record_id},
        "is_deleted": False,
        "system_modstamp": NOW,
        "synced_at": NOW,
        **values,
    }


def _findings(warehouse: Warehouse, opps: list[str], status: str = "open") -> list[int]:
    ids = []
    with warehouse.engine.begin() as conn:
        for opp in opps:
            result = conn.execute(
                insert(Finding).values(
                    rule="missing_rev_rec_terms",
                    opportunity_id=opp,
                    status=status,
                    profile="global",
                    severity="warn",
                    details={"stage": "Prove", "min_stage": "Prove", "has_instrument": True},
                    settings_hash="x",
                    opened_at=NOW,
                )
            )
            ids.append(int(result.inserted_primary_key[0]))
    return ids


def _settings(**writeback: Any) -> Settings:
    return Settings.model_validate({"writeback": writeback})


def _apply(
    warehouse: Warehouse,
    client: FakeSalesforce,
    settings: Settings,
    should_stop: Callable[[], bool] = never,
) -> Any:
    plan = plan_writeback(load_writeback_state(warehouse, settings), settings, TODAY)
    ctx = RunContext(settings, warehouse, should_stop, client=client)  # type: ignore[arg-type]
    return plan, apply_writeback(ctx, plan)


def _ledger(warehouse: Warehouse) -> dict[str, Any]:
    with warehouse.engine.connect() as conn:
        return {r.idempotency_key: r for r in conn.execute(select(WritebackLedger.__table__))}


def _lock_first_time() -> Answer:
    seen: set[str] = set()

    def answer(record: dict[str, Any]) -> tuple[str, str] | None:
        key = str(record.get("Sfsync_Key__c") or key_from_description(record.get("Description")))
        if key in seen:
            return None
        seen.add(key)
        return ("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access")

    return answer


# --------------------------------------------------------------------------- tests


def test_planned_sent_confirmed_with_one_call_per_200(warehouse: Warehouse) -> None:
    ids = _findings(warehouse, OPPS)
    client = FakeSalesforce()
    _, result = _apply(warehouse, client, _settings(batch_size=3))
    assert result.created == len(OPPS)
    assert client.calls == [("upsert", 3), ("upsert", 3), ("upsert", 1)]
    rows = _ledger(warehouse)
    assert set(rows) == {
        task_key("missing_rev_rec_terms", o, f, 0) for o, f in zip(OPPS, ids, strict=True)
    }
    assert {r.state for r in rows.values()} == {"confirmed"}
    assert all(r.attempts == 1 and r.salesforce_id and r.confirmed_at for r in rows.values())
    assert {r.salesforce_id for r in rows.values()} == set(client.tasks)


def test_lock_errors_are_failed_then_retried_with_the_same_key(warehouse: Warehouse) -> None:
    _findings(warehouse, OPPS[:2])
    client = FakeSalesforce(answer=_lock_first_time())
    _, first = _apply(warehouse, client, _settings())
    assert first.status == "partial"
    assert [f.outcome for f in first.failures] == ["retry", "retry"]
    assert {r.state for r in _ledger(warehouse).values()} == {"failed"}
    plan, second = _apply(warehouse, client, _settings())
    assert [a.reason for a in plan.writes] == ["retry after UNABLE_TO_LOCK_ROW (attempt 2)"] * 2
    assert second.created == 2
    rows = _ledger(warehouse)
    assert {(r.state, r.attempts) for r in rows.values()} == {("confirmed", 2)}
    assert len(client.tasks) == 2


def test_a_lock_that_never_clears_backs_off_instead_of_retrying_every_run(
    warehouse: Warehouse,
) -> None:
    """max_attempts runs in a row, then the write waits (shown in the plan), never abandoned."""
    _findings(warehouse, OPPS[:1])
    client = FakeSalesforce(answer=lambda r: ("UNABLE_TO_LOCK_ROW", "locked"))
    settings = _settings(max_attempts=3)
    outcomes, skips = [], []
    for _ in range(5):
        plan, result = _apply(warehouse, client, settings)
        outcomes.append([f.outcome for f in result.failures])
        skips.append([a.skip_code for a in plan.actions if a.action == "skip"])
    assert outcomes == [["retry"], ["retry"], ["retry"], [], []]
    assert skips == [[], [], [], ["retry_later"], ["retry_later"]]
    (row,) = _ledger(warehouse).values()
    assert (row.state, row.attempts) == ("failed", 3)


def test_an_inactive_owner_is_reassigned_in_the_same_run(warehouse: Warehouse) -> None:
    _findings(warehouse, OPPS[:2])
    client = FakeSalesforce(
        answer=lambda r: (
            ("INACTIVE_OWNER_OR_USER", "operation performed with inactive user")
            if r["OwnerId"] == REP
            else None
        )
    )
    _, result = _apply(warehouse, client, _settings(fallback_owner_id=FALLBACK))
    assert result.created == 2
    assert result.reassigned == 2
    assert {t["OwnerId"] for t in client.tasks.values()} == {BOSS}
    assert client.calls == [("upsert", 2), ("upsert", 2)]
    for row in _ledger(warehouse).values():
        assert (row.state, row.owner_id, row.original_owner_id) == ("confirmed", BOSS, REP)
        assert "INACTIVE_OWNER_OR_USER" in row.reassigned_reason


def test_no_owner_left_gives_up_with_the_reason(warehouse: Warehouse) -> None:
    _findings(warehouse, OPPS[:1])
    client = FakeSalesforce(answer=lambda r: ("INACTIVE_OWNER_OR_USER", "inactive user"))
    _, result = _apply(warehouse, client, _settings())
    assert [(f.code, f.outcome) for f in result.failures] == [("INACTIVE_OWNER_OR_USER", "gave_up")]
    assert "no active owner left" in result.failures[0].message


@pytest.mark.parametrize(
    "code",
    ["FIELD_CUSTOM_VALIDATION_EXCEPTION", "ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"],
)
def test_a_refused_record_waits_for_a_later_run_and_the_rest_of_the_batch_goes_on(
    warehouse: Warehouse, code: str
) -> None:
    _findings(warehouse, OPPS[:3])
    client = FakeSalesforce(answer=lambda r: (code, "no") if r["WhatId"] == OPPS[1] else None)
    _, result = _apply(warehouse, client, _settings())
    assert result.created == 2
    assert [(f.opportunity_id, f.code, f.outcome) for f in result.failures] == [
        (OPPS[1], code, "retry_later")
    ]
    states = {r.opportunity_id: r.state for r in _ledger(warehouse).values()}
    assert states == {OPPS[0]: "confirmed", OPPS[1]: "failed", OPPS[2]: "confirmed"}


def test_an_ambiguous_create_stays_in_doubt_and_is_reconciled_not_resent(
    warehouse: Warehouse,
) -> None:
    """Without the key field, a create that may have landed is looked up by its description key."""
    _findings(warehouse, OPPS[:3])
    client = FakeSalesforce(key_field=False)
    client.raise_on_call = RetryableError(
        "POST composite/sobjects failed: ReadTimeout", error_code=""
    )
    client.apply_then_raise = True  # Salesforce created them; we never heard back
    _, first = _apply(warehouse, client, _settings())
    assert first.status == "partial"
    assert {f.outcome for f in first.failures} == {"in_doubt"}
    assert {r.state for r in _ledger(warehouse).values()} == {"sent"}
    assert len(client.tasks) == 3

    client.raise_on_call = None
    client.calls.clear()
    plan, second = _apply(warehouse, client, _settings())
    assert all(a.reconcile for a in plan.writes)
    assert (second.reconciled, second.created) == (3, 0)
    assert client.calls == []  # nothing sent again
    assert len(client.tasks) == 3
    rows = _ledger(warehouse).values()
    assert {r.state for r in rows} == {"confirmed"}
    assert {r.salesforce_id for r in rows} == set(client.tasks)


def test_a_budget_refusal_puts_the_batch_back_to_planned(warehouse: Warehouse) -> None:
    _findings(warehouse, OPPS[:2])
    client = FakeSalesforce()
    client.raise_on_call = BudgetExhausted("limit")
    _, stopped = _apply(warehouse, client, _settings())
    assert (stopped.status, stopped.budget_stop, stopped.created) == ("partial", "limit", 0)
    # Refused before Salesforce applied anything: back to planned, not in doubt.
    assert {r.state for r in _ledger(warehouse).values()} == {"planned"}
    client.raise_on_call = None
    _, result = _apply(warehouse, client, _settings())
    assert result.created == 2
    assert len(client.tasks) == 2


def test_a_refused_call_fails_its_batch_and_stops(warehouse: Warehouse) -> None:
    _findings(warehouse, OPPS[:4])
    client = FakeSalesforce()
    client.raise_on_call = ApiError(
        "INVALID_FIELD: No such column", status=400, error_code="INVALID_FIELD"
    )
    _, result = _apply(warehouse, client, _settings(batch_size=2))
    assert len(client.calls) == 1
    assert [f.outcome for f in result.failures] == ["retry_later", "retry_later"]
    states = sorted(r.state for r in _ledger(warehouse).values())
    assert states == ["failed", "failed", "planned", "planned"]


def test_a_stop_request_leaves_the_rest_planned(warehouse: Warehouse) -> None:
    _findings(warehouse, OPPS[:5])
    client = FakeSalesforce()
    asked = iter([False, True])
    _, result = _apply(warehouse, client, _settings(batch_size=2), should_stop=lambda: next(asked))
    assert result.interrupted
    assert result.status == "partial"
    assert (
        sorted(r.state for r in _ledger(warehouse).values()) == ["confirmed"] * 2 + ["planned"] * 3
    )


def test_duplicate_value_means_the_task_exists(warehouse: Warehouse) -> None:
    (fid,) = _findings(warehouse, OPPS[:1])
    key = task_key("missing_rev_rec_terms", OPPS[0], fid, 0)
    client = FakeSalesforce()
    client.tasks["00T000000000001AAA"] = {
        "Id": "00T000000000001AAA",
        "Sfsync_Key__c": key,
        "WhatId": OPPS[0],
    }
    client.answer = lambda r: ("DUPLICATE_VALUE", "duplicate value found")
    _, result = _apply(warehouse, client, _settings())
    assert (result.reconciled, result.failed) == (1, 0)
    assert _ledger(warehouse)[key].salesforce_id == "00T000000000001AAA"


def test_resolving_completes_the_task_once(warehouse: Warehouse) -> None:
    (fid,) = _findings(warehouse, OPPS[:1])
    client = FakeSalesforce()
    _apply(warehouse, client, _settings())
    with warehouse.engine.begin() as conn:
        conn.execute(Finding.__table__.update().values(status="resolved", resolved_at=NOW))
    plan, result = _apply(warehouse, client, _settings())
    assert [a.action for a in plan.writes] == ["complete_task"]
    assert result.completed == 1
    (task,) = client.tasks.values()
    assert task["Status"] == "Completed"
    assert task["Description"].endswith(
        f"resolved, the problem is no longer present (finding {fid})."
    )
    assert _ledger(warehouse)[complete_key(task["Id"])].state == "confirmed"
    # The completion is on record: the resolved finding is no longer even loaded.
    state = load_writeback_state(warehouse, _settings())
    assert state.findings == ()


def test_the_loader_reads_live_findings_tasks_and_unfinished_rows(warehouse: Warehouse) -> None:
    open_ids = _findings(warehouse, OPPS[:2])
    done_ids = _findings(warehouse, OPPS[2:4], status="resolved")
    task_id = sfid("00T", 9)
    key = task_key("missing_rev_rec_terms", OPPS[2], done_ids[0], 0)
    with warehouse.engine.begin() as conn:
        conn.execute(
            insert(Task).values(
                **_row(
                    task_id,
                    what_id=OPPS[2],
                    owner_id=REP,
                    subject="[sfsync] x",
                    status="Not Started",
                    is_closed=False,
                    sfsync_key=key,
                )
            )
        )
        conn.execute(
            insert(WritebackLedger).values(
                idempotency_key=key,
                finding_id=done_ids[0],
                rule="missing_rev_rec_terms",
                opportunity_id=OPPS[2],
                action="create_task",
                state="confirmed",
                salesforce_id=task_id,
                payload={},
                created_at=NOW,
                updated_at=NOW,
            )
        )
    state = load_writeback_state(warehouse, _settings())
    assert sorted(f.id for f in state.findings) == sorted([*open_ids, done_ids[0]])
    assert [t.id for t in state.tasks] == [task_id]
    assert state.tasks[0].key == key
    assert [r.key for r in state.ledger] == [key]
    assert state.users[GONE].is_active is False
    assert set(state.opportunities) == set(OPPS[:3])


def test_flag_values_are_read_from_raw(warehouse: Warehouse) -> None:
    with warehouse.engine.begin() as conn:
        conn.execute(
            Opportunity.__table__.update()
            .where(Opportunity.id == OPPS[5])
            .values(
                raw={
                    "Id": OPPS[5],
                    "Sfsync_Flags__c": "close_date_past",
                    "Sfsync_Month_Extensions__c": 2,
                }
            )
        )
    state = load_writeback_state(warehouse, _settings(flags={"enabled": True}), today=TODAY)
    opp = state.opportunities[OPPS[5]]
    assert (opp.flag_rules, opp.flag_extensions) == ("close_date_past", 2.0)
    assert set(state.opportunities) == {OPPS[5]}


def test_disabled_writes_nothing(warehouse: Warehouse) -> None:
    _findings(warehouse, OPPS[:2])
    client = FakeSalesforce()
    _, result = _apply(warehouse, client, _settings(enabled=False))
    assert not result.applied
    assert "writeback.enabled is false: nothing was written" in result.warnings
    assert client.api_calls == 0
    assert _ledger(warehouse) == {}


@pytest.mark.parametrize("key_field", [True, False], ids=["by key", "by match"])
def test_in_doubt_writes_absent_from_salesforce_are_sent_again(
    warehouse: Warehouse, key_field: bool
) -> None:
    _findings(warehouse, OPPS[:2])
    client = FakeSalesforce(key_field=key_field)
    client.raise_on_call = RetryableError("connection reset", error_code="")  # never arrived
    _apply(warehouse, client, _settings())
    assert {r.state for r in _ledger(warehouse).values()} == {"sent"}
    client.raise_on_call = None
    _, result = _apply(warehouse, client, _settings())
    assert (result.reconciled, result.created) == (0, 2)
    assert len(client.tasks) == 2
    assert {(r.state, r.attempts) for r in _ledger(warehouse).values()} == {("confirmed", 2)}


def test_the_ledger_refuses_a_move_its_state_table_forbids(warehouse: Warehouse) -> None:
    """Confirming a write never sent, or sending a confirmed create, is a bug: it raises."""
    from sfsync.writeback import IllegalTransition, Ledger, LedgerState
    from sfsync.writeback._ledger import LedgerOutcome

    _findings(warehouse, OPPS[:1])
    settings = _settings()
    plan = plan_writeback(load_writeback_state(warehouse, settings), settings, TODAY)
    (key,) = [a.key for a in plan.writes if a.key]
    ledger = Ledger(warehouse)
    ledger.plan(list(plan.writes), run_id=None)
    with pytest.raises(IllegalTransition, match="planned -> confirmed"):
        ledger.settle([LedgerOutcome(key, LedgerState.CONFIRMED, salesforce_id="00T1")])
    ledger.send([key], run_id=None)
    ledger.settle([LedgerOutcome(key, LedgerState.CONFIRMED, salesforce_id="00T1")])
    with pytest.raises(IllegalTransition, match="confirmed -> sent"):
        ledger.send([key], run_id=None)
    assert {r.state for r in _ledger(warehouse).values()} == {"confirmed"}


def test_every_state_can_be_reached_and_left_as_documented() -> None:
    from sfsync.writeback import TRANSITIONS, LedgerState

    reachable = {s for targets in TRANSITIONS.values() for s in targets}
    assert reachable == set(LedgerState)
    assert set(TRANSITIONS) == {None, *LedgerState}
    assert LedgerState.CONFIRMED not in TRANSITIONS[LedgerState.PLANNED]  # never unsent
