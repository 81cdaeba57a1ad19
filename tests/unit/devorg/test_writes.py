"""Salesforce's write rules as the dev org applies them (stamps, derived fields, errors)."""

# SOQL strings here are test constants.

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from sfsync.devorg import DevOrg, WriteError
from sfsync.devorg.testing import INACTIVE_USER_ID, REP_USER_ID, make_id, sample_org_data
from sfsync.formats import is_salesforce_id


@pytest.fixture
def org() -> DevOrg:
    data = sample_org_data(12)
    data["validation_rules"] = [
        {
            "object": "Opportunity",
            "name": "No_Past_Close",
            "condition": "IsClosed = false AND CloseDate < 2000-01-01",
            "message": "Close date cannot be in the past",
            "field": "CloseDate",
        },
    ]
    return DevOrg.from_data(data)


def one(org: DevOrg, soql: str) -> dict[str, Any]:
    rows = org.query(soql)
    assert len(rows) == 1
    return rows[0]


def error(call: Any) -> WriteError:
    with pytest.raises(WriteError) as info:
        call()
    return info.value


def test_new_ids_are_18_characters_with_the_key_prefix(org: DevOrg) -> None:
    ids = {org.create("Task", {"Subject": f"t{i}"}) for i in range(50)}
    assert len(ids) == 50
    assert all(i.startswith("00T") and len(i) == 18 and is_salesforce_id(i) for i in ids)
    opp = org.create(
        "Opportunity", {"Name": "N", "StageName": "Qualify", "CloseDate": "2030-01-01"}
    )
    assert opp.startswith("006")


def test_create_stamps_server_time_and_the_caller(org: DevOrg) -> None:
    task_id = org.create("Task", {"Subject": "x"}, as_user=REP_USER_ID)
    row = one(
        org,
        f"SELECT CreatedDate, LastModifiedDate, SystemModstamp, CreatedById, "
        f"LastModifiedById, OwnerId, Status, Priority, IsClosed FROM Task "
        f"WHERE Id = '{task_id}'",
    )
    assert row["CreatedDate"] == row["LastModifiedDate"] == row["SystemModstamp"]
    assert row["CreatedDate"].endswith(".000+0000")
    assert row["CreatedById"] == row["LastModifiedById"] == row["OwnerId"] == REP_USER_ID
    assert (row["Status"], row["Priority"], row["IsClosed"]) == ("Not Started", "Normal", False)


def test_server_clock_is_whole_seconds_and_can_be_set_back(org: DevOrg) -> None:
    assert org.now().microsecond == 0
    real = org.now()
    org.clock_offset = timedelta(days=-1)
    assert real - org.now() >= timedelta(hours=23)
    with pytest.raises(ValueError, match="only be set back"):
        org.clock_offset = timedelta(seconds=5)


def test_stage_change_derives_fields_and_writes_history(org: DevOrg) -> None:
    opp = make_id("006", 2)  # Prove, no line items
    org.update("Opportunity", opp, {"StageName": "Closed Won", "Amount": 1234.0})
    row = one(
        org,
        "SELECT StageName, IsClosed, IsWon, Probability, ForecastCategoryName, "
        "ForecastCategory, LastStageChangeDate, Amount, ExpectedRevenue, "
        f"LastAmountChangedHistoryId FROM Opportunity WHERE Id = '{opp}'",
    )
    assert row["IsClosed"] is True
    assert row["IsWon"] is True
    assert row["Probability"] == 100.0
    assert (row["ForecastCategoryName"], row["ForecastCategory"]) == ("Closed", "Closed")
    assert (
        row["LastStageChangeDate"]
        == org.query(f"SELECT LastModifiedDate FROM Opportunity WHERE Id = '{opp}'")[0][
            "LastModifiedDate"
        ]
    )
    assert row["ExpectedRevenue"] == 1234.0
    history = org.query(
        "SELECT Id, StageName, Amount, PrevAmount, CloseDate, PrevCloseDate FROM "
        f"OpportunityHistory WHERE OpportunityId = '{opp}' ORDER BY CreatedDate, Id"
    )
    assert history[-1]["StageName"] == "Closed Won"
    assert history[-1]["Amount"] == 1234.0
    assert history[-1]["PrevAmount"] == 2500.0
    assert history[-1]["CloseDate"] == history[-1]["PrevCloseDate"]
    assert row["LastAmountChangedHistoryId"] == history[-1]["Id"]


def test_untracked_changes_write_no_history(org: DevOrg) -> None:
    opp = make_id("006", 4)
    before = org.query(f"SELECT COUNT() FROM OpportunityHistory WHERE OpportunityId = '{opp}'")
    org.update("Opportunity", opp, {"Name": "Renamed"})
    after = org.query(f"SELECT COUNT() FROM OpportunityHistory WHERE OpportunityId = '{opp}'")
    assert before == after


def test_amount_is_read_only_with_products(org: DevOrg) -> None:
    opp = make_id("006", 1)  # has a line item
    org.update("Opportunity", opp, {"Amount": 1.0})
    assert one(org, f"SELECT Amount FROM Opportunity WHERE Id = '{opp}'")["Amount"] == 1500.0


def test_tasks_never_change_the_opportunitys_last_modified(org: DevOrg) -> None:
    opp = make_id("006", 3)
    soql = f"SELECT LastModifiedDate, LastModifiedById, SystemModstamp, LastActivityDate FROM Opportunity WHERE Id = '{opp}'"
    before = one(org, soql)
    task = org.create("Task", {"Subject": "open", "WhatId": opp})
    org.update("Task", task, {"Status": "Completed", "ActivityDate": "2031-01-02"})
    after = one(org, soql)
    assert after["LastModifiedDate"] == before["LastModifiedDate"]
    assert after["LastModifiedById"] == before["LastModifiedById"]
    assert after["LastActivityDate"] == "2031-01-02"  # a system touch: SystemModstamp only
    assert after["SystemModstamp"] >= before["SystemModstamp"]
    closed = one(org, f"SELECT IsClosed, CompletedDateTime FROM Task WHERE Id = '{task}'")
    assert closed["IsClosed"] is True
    assert closed["CompletedDateTime"]


@pytest.mark.parametrize(
    ("sobject", "fields", "code", "bad_fields"),
    [
        ("Task", {"OwnerId": INACTIVE_USER_ID}, "INACTIVE_OWNER_OR_USER", []),
        ("Task", {"Colour__c": "red"}, "INVALID_FIELD", ["Colour__c"]),
        ("Task", {"IsClosed": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsClosed"]),
        ("Task", {"WhatId": make_id("006", 999)}, "INVALID_CROSS_REFERENCE_KEY", ["WhatId"]),
        ("Task", {"OwnerId": "xyz"}, "MALFORMED_ID", ["OwnerId"]),
        ("Task", {"Status": "Nope"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Status"]),
        ("Task", {"ActivityDate": "2024/01/01"}, "JSON_PARSER_ERROR", ["ActivityDate"]),
        ("Task", {"Subject": "x" * 256}, "STRING_TOO_LONG", ["Subject"]),
        ("Opportunity", {"Name": "x"}, "REQUIRED_FIELD_MISSING", ["StageName", "CloseDate"]),
        (
            "Opportunity",
            {"Name": "x", "StageName": "Qualify", "CloseDate": "1999-01-01"},
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            ["CloseDate"],
        ),
    ],
)
def test_refused_creates(
    org: DevOrg, sobject: str, fields: dict[str, Any], code: str, bad_fields: list[str]
) -> None:
    before = org.count(sobject)
    exc = error(lambda: org.create(sobject, fields))
    assert exc.code == code
    assert exc.fields == bad_fields
    assert org.count(sobject) == before  # nothing half-written


def test_validation_rule_message_is_the_rules_text(org: DevOrg) -> None:
    exc = error(lambda: org.update("Opportunity", make_id("006", 2), {"CloseDate": "1999-01-01"}))
    assert exc.message == "Close date cannot be in the past"


def test_duplicate_external_id(org: DevOrg) -> None:
    first = org.create("Task", {"Subject": "a", "Sfsync_Key__c": "K-1"})
    exc = error(lambda: org.create("Task", {"Subject": "b", "Sfsync_Key__c": "k-1"}))
    assert exc.code == "DUPLICATE_VALUE"
    assert exc.message == (
        f"duplicate value found: Sfsync_Key__c duplicates value on record with id: {first}"
    )


def test_upsert_creates_then_updates(org: DevOrg) -> None:
    new_id, created = org.api_upsert("Task", "Sfsync_Key__c", "u-1", {"Subject": "s"}, REP_USER_ID)
    assert created is True
    same_id, created_again = org.api_upsert(
        "Task", "Sfsync_Key__c", "u-1", {"Subject": "t"}, REP_USER_ID
    )
    assert (same_id, created_again) == (new_id, False)


def test_soft_delete_cascades_from_an_opportunity(org: DevOrg) -> None:
    opp = make_id("006", 5)  # has history, a line item and a task
    org.soft_delete("Opportunity", opp)
    for soql in (
        f"SELECT IsDeleted FROM OpportunityLineItem WHERE OpportunityId = '{opp}'",
        f"SELECT IsDeleted FROM OpportunityHistory WHERE OpportunityId = '{opp}'",
        f"SELECT IsDeleted FROM Task WHERE WhatId = '{opp}'",
    ):
        assert org.query(soql) == []
        rows = org.query(soql, include_deleted=True)
        assert rows
        assert all(r["IsDeleted"] for r in rows)
    assert error(lambda: org.soft_delete("Opportunity", opp)).code == "ENTITY_IS_DELETED"
    assert error(lambda: org.update("Opportunity", opp, {"Name": "x"})).code == "ENTITY_IS_DELETED"
    ref = error(lambda: org.create("Task", {"WhatId": opp}))
    assert ref.code == "INVALID_CROSS_REFERENCE_KEY"


def test_hard_delete_and_erase(org: DevOrg) -> None:
    now = org.now()
    org.hard_delete("Opportunity", make_id("006", 6))
    org.erase("Opportunity", make_id("006", 7))
    rows = org.query("SELECT Id FROM Opportunity", include_deleted=True)
    assert make_id("006", 6) not in [r["Id"] for r in rows]
    assert make_id("006", 7) not in [r["Id"] for r in rows]
    deleted, _, _ = org.deleted_between("Opportunity", now - timedelta(minutes=5), org.now())
    assert [d["id"] for d in deleted] == [make_id("006", 6)]
    assert error(lambda: org.erase("Opportunity", make_id("006", 7))).code == "NOT_FOUND"


def test_collections_batch_all_or_none(org: DevOrg) -> None:
    before = org.count("Task")
    results = org.batch(
        [
            lambda: org.api_create("Task", {"Subject": "ok"}, REP_USER_ID),
            lambda: org.api_create("Task", {"OwnerId": INACTIVE_USER_ID}, REP_USER_ID),
        ],
        all_or_none=True,
    )
    assert [r.code for r in results if isinstance(r, WriteError)] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "INACTIVE_OWNER_OR_USER",
    ]
    assert org.count("Task") == before


def test_read_only_objects_refuse_api_writes(org: DevOrg) -> None:
    exc = error(lambda: org.api_create("OpportunityHistory", {}, REP_USER_ID))
    assert exc.code == "INVALID_TYPE_FOR_OPERATION"
    assert error(lambda: org.api_create("Nope", {}, REP_USER_ID)).code == "NOT_FOUND"


def test_external_id_lookups_use_the_index_even_when_keys_were_null_at_load() -> None:
    """Upserts by Sfsync_Key__c stay O(log n): load-time statistics must not steer to a scan."""
    from sfsync.devorg import DevOrg
    from sfsync.devorg.testing import sample_org_data

    org = DevOrg.from_data(sample_org_data(30))
    plan = org._conn.execute(
        "EXPLAIN QUERY PLAN SELECT Id FROM Task WHERE Sfsync_Key__c = ? COLLATE NOCASE AND IsDeleted = 0 LIMIT 2",
        ("sfsync:x",),
    ).fetchall()
    assert "USING INDEX Task_Sfsync_Key__c" in plan[0][3]
