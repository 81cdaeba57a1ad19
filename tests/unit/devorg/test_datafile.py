"""The data file: every bad input is named by file, object, record index and field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from sfsync.devorg import DevOrg
from sfsync.devorg.testing import INTEGRATION_USER_ID, make_id, sample_org_data
from sfsync.errors import DataFileError


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return sample_org_data(5)


def write(tmp_path: Path, data: Any, name: str = "org.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=1))
    return path


def load_error(tmp_path: Path, data: Any) -> str:
    with pytest.raises(DataFileError) as info:
        DevOrg.load(write(tmp_path, data))
    assert info.value.exit_code == 2
    return info.value.message


def mutated(base: dict[str, Any], sobject: str, index: int, **fields: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    data["records"][sobject][index].update(fields)
    return data


def test_a_valid_file_loads(tmp_path: Path, base: dict[str, Any]) -> None:
    org = DevOrg.load(write(tmp_path, base))
    assert org.count("Opportunity") == 5
    assert org.integration_user_id == INTEGRATION_USER_ID


def test_not_json_names_line_and_column(tmp_path: Path) -> None:
    message = load_error(tmp_path, '{"records": {\n  "User": [\n    {"Id": 1,}\n]}}')
    assert message.startswith("org.json: not valid JSON at line 3 column")


def test_truncated_file(tmp_path: Path) -> None:
    message = load_error(tmp_path, '{"records": {"User": [{"Id": "005000000000001AAA"}')
    assert "org.json: not valid JSON" in message


def test_unknown_object(tmp_path: Path, base: dict[str, Any]) -> None:
    data = copy.deepcopy(base)
    data["records"]["Account"] = []
    assert load_error(tmp_path, data).startswith("org.json: records.Account: unknown object")


def test_record_without_id(tmp_path: Path, base: dict[str, Any]) -> None:
    data = copy.deepcopy(base)
    del data["records"]["Opportunity"][2]["Id"]
    assert load_error(tmp_path, data) == "org.json: Opportunity[2].Id: every record needs an Id"


def test_duplicate_id(tmp_path: Path, base: dict[str, Any]) -> None:
    data = mutated(base, "Opportunity", 3, Id=make_id("006", 1))
    assert load_error(tmp_path, data) == (
        f"org.json: Opportunity[3].Id: duplicate Id '{make_id('006', 1)}' (also Opportunity[0])"
    )


def test_wrong_date_format(tmp_path: Path, base: dict[str, Any]) -> None:
    data = mutated(base, "Opportunity", 3, CloseDate="2024/01/01")
    assert load_error(tmp_path, data) == (
        "org.json: Opportunity[3].CloseDate: expected a date YYYY-MM-DD, got '2024/01/01'"
    )


@pytest.mark.parametrize("value", ["2024-01-01", "yesterday", "2024-13-01T00:00:00.000+0000"])
def test_wrong_datetime_format(tmp_path: Path, base: dict[str, Any], value: str) -> None:
    data = mutated(base, "Opportunity", 1, LastModifiedDate=value)
    assert load_error(tmp_path, data) == (
        "org.json: Opportunity[1].LastModifiedDate: expected a datetime "
        f"YYYY-MM-DDTHH:MM:SS.000+0000, got {value!r}"
    )


def test_lenient_datetime_forms_are_normalised(tmp_path: Path, base: dict[str, Any]) -> None:
    data = mutated(base, "Opportunity", 0, LastModifiedDate="2024-08-01T12:00:00+02:00")
    org = DevOrg.load(write(tmp_path, data))
    rows = org.query(f"SELECT LastModifiedDate FROM Opportunity WHERE Id = '{make_id('006', 1)}'")
    assert rows[0]["LastModifiedDate"] == "2024-08-01T10:00:00.000+0000"


@pytest.mark.parametrize(
    ("sobject", "index", "field", "target"),
    [
        ("Opportunity", 2, "OwnerId", "User"),
        ("OpportunityLineItem", 0, "OpportunityId", "Opportunity"),
        ("OpportunityLineItem", 1, "Product2Id", "Product2"),
        ("Task", 0, "WhatId", "Opportunity"),
        ("User", 1, "ManagerId", "User"),
        ("OpportunityHistory", 4, "CreatedById", "User"),
    ],
)
def test_dangling_reference(
    tmp_path: Path, base: dict[str, Any], sobject: str, index: int, field: str, target: str
) -> None:
    prefix = {"User": "005", "Opportunity": "006", "Product2": "01t"}[target]
    missing = make_id(prefix, 999)
    data = mutated(base, sobject, index, **{field: missing})
    assert load_error(tmp_path, data) == (
        f"org.json: {sobject}[{index}].{field}: '{missing}' is not the Id of a {target} "
        "in this file"
    )


def test_dangling_record_type(tmp_path: Path) -> None:
    data = sample_org_data(3, record_types=True)
    data["records"]["Opportunity"][1]["RecordTypeId"] = make_id("012", 77)
    assert "Opportunity[1].RecordTypeId" in load_error(tmp_path, data)


def test_polymorphic_what_id_to_an_object_outside_the_file_is_accepted(
    tmp_path: Path, base: dict[str, Any]
) -> None:
    data = mutated(base, "Task", 0, WhatId=make_id("001", 5))  # an Account
    assert DevOrg.load(write(tmp_path, data)).count("Task") == 1


def test_wrong_key_prefix(tmp_path: Path, base: dict[str, Any]) -> None:
    data = mutated(base, "Task", 0, Id=make_id("006", 500))
    assert load_error(tmp_path, data) == (
        f"org.json: Task[0].Id: '{make_id('006', 500)}' does not start with '00T', "
        "the key prefix of Task"
    )


def test_malformed_id(tmp_path: Path, base: dict[str, Any]) -> None:
    data = mutated(base, "Opportunity", 0, OwnerId="not-an-id")
    assert load_error(tmp_path, data).startswith("org.json: Opportunity[0].OwnerId: expected a 15")


def test_unknown_standard_field(tmp_path: Path, base: dict[str, Any]) -> None:
    data = mutated(base, "Opportunity", 4, Colour="red")
    assert load_error(tmp_path, data) == (
        "org.json: Opportunity[4].Colour: unknown field 'Colour' on Opportunity "
        "(custom fields end in __c)"
    )


def test_wrong_value_types(tmp_path: Path, base: dict[str, Any]) -> None:
    assert "Opportunity[0].Amount: expected a number" in load_error(
        tmp_path, mutated(base, "Opportunity", 0, Amount="12")
    )
    assert "User[0].IsActive: expected true or false" in load_error(
        tmp_path, mutated(base, "User", 0, IsActive="yes")
    )


def test_unknown_stage_and_missing_required(tmp_path: Path, base: dict[str, Any]) -> None:
    assert "Opportunity[1].StageName: 'Nope' is not the ApiName" in load_error(
        tmp_path, mutated(base, "Opportunity", 1, StageName="Nope")
    )
    assert load_error(tmp_path, mutated(base, "Opportunity", 2, CloseDate=None)) == (
        "org.json: Opportunity[2].CloseDate: required"
    )


def test_currency_iso_code_needs_a_multi_currency_org(tmp_path: Path, base: dict[str, Any]) -> None:
    data = mutated(base, "Opportunity", 0, CurrencyIsoCode="EUR")
    assert "Opportunity[0].CurrencyIsoCode: the org is not multi-currency" in load_error(
        tmp_path, data
    )
    multi = sample_org_data(3, multi_currency=True)
    multi["records"]["Opportunity"][2]["CurrencyIsoCode"] = "JPY"
    assert "Opportunity[2].CurrencyIsoCode: 'JPY' is not the IsoCode" in load_error(tmp_path, multi)


def test_integration_user_must_exist(tmp_path: Path, base: dict[str, Any]) -> None:
    data = copy.deepcopy(base)
    data["integration_user_id"] = make_id("005", 99)
    assert "integration_user_id: no User record has Id" in load_error(tmp_path, data)


def test_bad_validation_rule(tmp_path: Path, base: dict[str, Any]) -> None:
    data = copy.deepcopy(base)
    data["validation_rules"] = [
        {"object": "Opportunity", "name": "x", "condition": "Amount >", "message": "m"}
    ]
    assert load_error(tmp_path, data).startswith("org.json: validation_rules[0].condition:")


def test_missing_system_fields_get_defaults(tmp_path: Path) -> None:
    data = {
        "records": {
            "User": [{"Id": make_id("005", 1), "Username": "u@x", "LastName": "U"}],
            "Opportunity": [
                {
                    "Id": make_id("006", 1),
                    "Name": "A",
                    "StageName": "Prospecting",
                    "CloseDate": "2024-01-01",
                    "LastModifiedDate": "2024-02-01T00:00:00.000+0000",
                }
            ],
        }
    }
    org = DevOrg.load(write(tmp_path, data))
    row = org.query(
        "SELECT CreatedDate, SystemModstamp, CreatedById, LastModifiedById, IsDeleted, IsClosed, "
        "ForecastCategory FROM Opportunity"
    )[0]
    assert row["CreatedDate"] == row["SystemModstamp"] == "2024-02-01T00:00:00.000+0000"
    assert row["CreatedById"] == row["LastModifiedById"] == make_id("005", 1)
    assert row["IsDeleted"] is False
    assert row["IsClosed"] is False  # derived from the default stages
    assert row["ForecastCategory"] == "Pipeline"
    assert org.organization["Id"].startswith("00D")


def test_custom_fields_declared_or_seen_appear_in_describe(tmp_path: Path) -> None:
    data = sample_org_data(3)
    data["records"]["Opportunity"][0]["Seen__c"] = True
    # Declared after the records that use it: still checked and typed.
    data = {"records": data["records"], **{k: v for k, v in data.items() if k != "records"}}
    data["custom_fields"]["Opportunity"]["Region__c"] = {"type": "picklist"}
    org = DevOrg.load(write(tmp_path, data))
    fields = org.objects["Opportunity"].fields
    assert fields["Seen__c"].type == "boolean"
    assert fields["Region__c"].type == "picklist"
    assert fields["Rev_Rec_Terms__c"].type == "picklist"
    assert org.objects["Task"].fields["Sfsync_Key__c"].external_id is True


def test_conditional_fields(tmp_path: Path) -> None:
    plain = DevOrg.from_data(sample_org_data(2))
    assert "CurrencyIsoCode" not in plain.objects["Opportunity"].fields
    assert "RecordTypeId" not in plain.objects["Opportunity"].fields
    assert "CurrencyType" not in plain.objects
    rich = DevOrg.from_data(sample_org_data(2, multi_currency=True, record_types=True))
    assert "CurrencyIsoCode" in rich.objects["Opportunity"].fields
    assert "RecordTypeId" in rich.objects["Opportunity"].fields
    assert rich.is_multi_currency


def test_save_round_trips_every_record_including_soft_deleted(tmp_path: Path) -> None:
    org = DevOrg.from_data(sample_org_data(10))
    org.soft_delete("Opportunity", make_id("006", 1))
    org.hard_delete("Opportunity", make_id("006", 2))
    new_task = org.create("Task", {"Subject": "saved", "Sfsync_Key__c": "k"})
    out = tmp_path / "saved.json"
    org.save(out)
    again = DevOrg.load(out)
    everything = again.query("SELECT Id, IsDeleted FROM Opportunity", include_deleted=True)
    assert len(everything) == 9
    assert {r["Id"]: r["IsDeleted"] for r in everything}[make_id("006", 1)] is True
    assert again.query(f"SELECT Sfsync_Key__c FROM Task WHERE Id = '{new_task}'")[0] == {
        "attributes": {"type": "Task", "url": f"/services/data/v62.0/sobjects/Task/{new_task}"},
        "Sfsync_Key__c": "k",
    }
    now = again.now()
    from datetime import timedelta

    deleted, _, _ = again.deleted_between("Opportunity", now - timedelta(hours=1), now)
    assert {d["id"] for d in deleted} == {make_id("006", 1), make_id("006", 2)}
    assert not list(tmp_path.glob(".saved.json.*"))  # the temp file was renamed


def test_big_files_stream_through_a_small_buffer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Records crossing the reader's buffer boundary parse correctly (and errors keep lines)."""
    from sfsync.devorg import _loader

    monkeypatch.setattr(_loader, "_CHUNK", 64)
    monkeypatch.setattr(_loader, "_LOOKAHEAD", 32)
    data = sample_org_data(40)
    org = DevOrg.load(write(tmp_path, data))
    assert org.count("OpportunityHistory") == 40
    data["records"]["Opportunity"][39]["CloseDate"] = "bad"
    assert load_error(tmp_path, data).endswith(
        "Opportunity[39].CloseDate: expected a date YYYY-MM-DD, got 'bad'"
    )
    text = json.dumps(data, indent=1).replace('"bad"', "bad")
    message = load_error(tmp_path, text)
    line = text[: text.index("bad")].count("\n") + 1
    assert f"not valid JSON at line {line} column" in message
