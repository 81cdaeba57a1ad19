"""Records become database-native rows; values that do not fit are reported, never fatal."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sfsync.config import Settings
from sfsync.extract import object_specs, plan_object
from sfsync.extract._convert import RowConverter, csv_records, parse_native_datetime

SYNCED = datetime(2024, 8, 1, 12, 0, tzinfo=UTC)
OPP = "0065g00000AbCdEAAV"
HUMAN = "0055g00000XYZabAAH"
INTEGRATION = "0055g00000INTEGAAH"


def describe(*names: str, types: dict[str, str] | None = None) -> dict[str, object]:
    types = types or {}
    return {"fields": [{"name": n, "type": types.get(n, "string")} for n in names]}


OPP_FIELDS = (
    "Id",
    "IsDeleted",
    "SystemModstamp",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "Name",
    "OwnerId",
    "StageName",
    "CloseDate",
    "Amount",
    "IsClosed",
    "Rev_Rec_Terms__c",
)
OPP_TYPES = {
    "IsDeleted": "boolean",
    "SystemModstamp": "datetime",
    "CreatedDate": "datetime",
    "LastModifiedDate": "datetime",
    "CloseDate": "date",
    "Amount": "currency",
    "IsClosed": "boolean",
}


def plan():  # type: ignore[no-untyped-def]
    return plan_object(
        object_specs(Settings())["Opportunity"], describe(*OPP_FIELDS, types=OPP_TYPES)
    )


def record(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "attributes": {"type": "Opportunity"},
        "Id": OPP,
        "IsDeleted": False,
        "SystemModstamp": "2024-07-30T09:12:44.000+0000",
        "CreatedDate": "2024-01-02T03:04:05.000+0000",
        "CreatedById": HUMAN,
        "LastModifiedDate": "2024-07-30T09:12:44.000+0000",
        "LastModifiedById": HUMAN,
        "Name": "Big deal",
        "OwnerId": HUMAN,
        "StageName": "Prove",
        "CloseDate": "2024-09-30",
        "Amount": 60000,
        "IsClosed": False,
        "Rev_Rec_Terms__c": None,
    }
    base.update(overrides)
    return base


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_rows_are_native_for_the_dialect(dialect: str) -> None:
    batch = RowConverter(plan(), integration_user_id=INTEGRATION, dialect=dialect).convert(
        [record()], SYNCED
    )
    row = batch.rows[0]
    assert json.loads(row["raw"])["Name"] == "Big deal"
    assert "attributes" not in json.loads(row["raw"])
    if dialect == "sqlite":
        assert row["system_modstamp"] == "2024-07-30 09:12:44.000000"
        assert row["close_date"] == "2024-09-30"
        assert row["synced_at"] == "2024-08-01 12:00:00.000000"
    else:
        assert row["system_modstamp"] == datetime(2024, 7, 30, 9, 12, 44, tzinfo=UTC)
    assert row["amount"] == 60000.0
    assert row["last_human_assumed"] is False
    assert batch.last_stamp == datetime(2024, 7, 30, 9, 12, 44, tzinfo=UTC)


def test_values_that_do_not_fit_are_reported_and_kept_in_raw() -> None:
    bad = record(Name="n" * 300, CloseDate="2024/09/30", Amount="lots")
    batch = RowConverter(plan(), integration_user_id=INTEGRATION).convert(
        [bad, record(Id="short"), record(Id="0065g00000AbCdFAAV")], SYNCED
    )
    assert [r["id"] for r in batch.rows] == [OPP, "0065g00000AbCdFAAV"]
    first = batch.rows[0]
    assert first["name"] is None
    assert first["close_date"] is None
    assert first["amount"] is None
    assert json.loads(first["raw"])["Name"] == "n" * 300
    problems = {(rid, field) for rid, field, _ in batch.problems}
    assert problems == {(OPP, "Name"), (OPP, "CloseDate"), (OPP, "Amount"), ("short", "Id")}


def test_integration_user_edit_is_marked_for_the_upsert_to_keep_the_human_value() -> None:
    batch = RowConverter(plan(), integration_user_id=INTEGRATION).convert(
        [record(LastModifiedById=INTEGRATION)], SYNCED
    )
    assert batch.rows[0]["last_human_assumed"] is True


def test_highest_stamp_wins_in_unordered_bulk_pages() -> None:
    rows = [
        record(Id="0065g00000AbCdEAAV", SystemModstamp="2024-07-30T09:12:44.000Z"),
        record(Id="0065g00000AbCdFAAV", SystemModstamp="2024-08-02T00:00:00.000Z"),
        record(Id="0065g00000AbCdGAAV", SystemModstamp="2024-07-01T00:00:00.000+0000"),
    ]
    batch = RowConverter(plan(), integration_user_id=None).convert(rows, SYNCED)
    assert batch.last_stamp == datetime(2024, 8, 2, tzinfo=UTC)


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_stamp_at_or_past_the_window_end_never_becomes_the_watermark(dialect: str) -> None:
    """A row edited during the pull arrives at its old place with a later stamp."""
    rows = [
        record(Id="0065g00000AbCdEAAV", SystemModstamp="2024-07-30T09:12:44.000+0000"),
        record(Id="0065g00000AbCdFAAV", SystemModstamp="2024-08-02T00:00:00.000+0000"),
        record(Id="0065g00000AbCdGAAV", SystemModstamp="2024-07-31T00:00:00.000+0000"),
    ]
    ceiling = datetime(2024, 8, 2, tzinfo=UTC)
    converter = RowConverter(
        plan(), integration_user_id=None, dialect=dialect, stamp_ceiling=ceiling
    )
    batch = converter.convert(rows, SYNCED)
    assert batch.last_stamp == datetime(2024, 7, 31, tzinfo=UTC)
    assert len(batch.rows) == 3  # the edited row is still written, only not a watermark
    only_late = converter.convert([rows[1]], SYNCED)
    assert only_late.last_stamp is None


def test_bulk_csv_values_become_rest_json() -> None:
    types = {"IsClosed": "boolean", "Amount": "currency", "FiscalYear": "int", "Name": "string"}
    header = ["IsClosed", "Amount", "FiscalYear", "Name", "Other"]
    assert csv_records(
        header, [["true", "12.5", "2024", "", "x"], ["false", "", "", "n", ""]], types
    ) == [
        {"IsClosed": True, "Amount": 12.5, "FiscalYear": 2024, "Name": None, "Other": "x"},
        {"IsClosed": False, "Amount": None, "FiscalYear": None, "Name": "n", "Other": None},
    ]


def test_native_datetimes_parse_back() -> None:
    assert parse_native_datetime("2024-07-30 09:12:44.000000") == datetime(
        2024, 7, 30, 9, 12, 44, tzinfo=UTC
    )


def test_plan_drops_missing_optional_fields_and_names_missing_required_ones() -> None:
    spec = object_specs(Settings())["Opportunity"]
    resolved = plan_object(
        spec,
        describe(
            *(f for f in OPP_FIELDS if f not in ("Rev_Rec_Terms__c", "CloseDate")), types=OPP_TYPES
        ),
    )
    assert any(
        "Rev_Rec_Terms__c (from audit.fields.rev_rec_terms) does not exist" in w
        for w in resolved.warnings
    )
    assert resolved.errors == ("Opportunity.CloseDate does not exist in this org",)


def test_plan_keeps_a_mistyped_field_in_raw_only() -> None:
    spec = object_specs(Settings())["Opportunity"]
    types = {**OPP_TYPES, "Amount": "string"}
    resolved = plan_object(spec, describe(*OPP_FIELDS, types=types))
    amount = next(f for f in resolved.fields if f.name == "Amount")
    assert amount.column is None
    assert any("Amount is a string field, not float" in w for w in resolved.warnings)


def test_task_plan_selects_sfsync_tasks_by_key_or_subject() -> None:
    spec = object_specs(Settings())["Task"]
    names = (
        "Id",
        "SystemModstamp",
        "WhatId",
        "OwnerId",
        "Subject",
        "Status",
        "Priority",
        "Sfsync_Key__c",
    )
    resolved = plan_object(spec, describe(*names), task_key_field="Sfsync_Key__c")
    assert resolved.spec.where == "(Sfsync_Key__c != null OR Subject LIKE '[sfsync]%')"


def test_tasks_the_integration_user_created_stay_sfsync_tasks_whatever_their_subject() -> None:
    """A rep may rename an sfsync Task; it must not fall out of the synced set."""
    spec = object_specs(Settings(), integration_user_id="005000000000001AAA")["Task"]
    resolved = plan_object(spec, describe("Id", "SystemModstamp", "Subject"), task_key_field=None)
    assert resolved.spec.where == (
        "(Subject LIKE '[sfsync]%' OR CreatedById = '005000000000001AAA')"
    )
